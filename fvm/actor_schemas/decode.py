"""Decoding DAG-CBOR actor state against a schema: named fields, checked types and arity.

A struct decodes to a ``dict`` of its fields in wire order; the array must have exactly as many
elements as the struct has fields (``Deserialize_tuple`` refuses any other length). Leaves are
checked the way the actors' deserializers check them and converted to Python values:
bigints and token amounts (fvm_shared ``bigint_ser``: empty for zero, else a sign byte 0/1 and
a big-endian magnitude, at most 128 bytes) to ``int``, addresses to
:class:`~fvm.address.Address`, bitfields to :class:`~store.bitfield.BitField`. Links and
collection roots stay :class:`~store.cid.CID`. HAMT keys decode with :func:`decode_key`.
"""

from __future__ import annotations

from typing import Any, Final

from fvm.actor_schemas.kinds import (
    Amt,
    Field,
    Hamt,
    Kamt,
    KeyType,
    Kind,
    Link,
    ListOf,
    Nullable,
    Scalar,
    ScalarType,
    Struct,
    VersionSchema,
)
from fvm.address import Address, decode_leb128_u64
from store.bitfield import BitField
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

# fvm_shared::bigint::MAX_BIGINT_SIZE: the serialized form, sign byte included.
MAX_BIGINT_SIZE: Final = 128
U256_SIZE: Final = 32
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1
_U64_MAX: Final = (1 << 64) - 1
# Address byte-form lengths by protocol for the fixed-size protocols (secp256k1, actor, BLS).
_FIXED_ADDRESS_SIZES: Final = {1: 21, 2: 21, 3: 49}


# What ``Default::default()`` gives for the scalar types a defaultable field may have.
_ZEROS: Final = {
    ScalarType.INT: 0,
    ScalarType.UINT: 0,
    ScalarType.BIGINT: 0,
    ScalarType.TOKEN: 0,
    ScalarType.BOOL: False,
}


class SchemaMismatch(MalformedInput):
    """Actor state that does not have the shape its schema gives it."""


class UnknownSchema(FvmNodeError, KeyError):
    """No schema for this actors version or actor type."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(what)

    def __str__(self) -> str:
        return self.what


def decode_fields(
    schema: VersionSchema, struct_fields: tuple[Field, ...], value: Any, where: str
) -> dict[str, Any]:
    """Map a tuple-serialized struct to ``{field name: decoded value}``.

    Trailing ``defaultable`` fields may be absent; they then decode to their type's zero.
    """
    if type(value) is not list:
        raise SchemaMismatch(f"expected an array of {len(struct_fields)} fields", where)
    required = required_fields(struct_fields)
    if not required <= len(value) <= len(struct_fields):
        expected = str(required)
        if required != len(struct_fields):
            expected = f"{required}-{len(struct_fields)}"
        raise SchemaMismatch(f"expected {expected} fields, found {len(value)}", where)
    decoded = {
        field.name: decode_value(schema, field.kind, item, f"{where}.{field.name}")
        for field, item in zip(struct_fields, value, strict=False)
    }
    for field in struct_fields[len(value) :]:
        decoded[field.name] = _zero_of(field.kind, where)
    return decoded


def required_fields(struct_fields: tuple[Field, ...]) -> int:
    """How many leading fields every encoding has (all but the trailing defaultable ones)."""
    count = len(struct_fields)
    while count and struct_fields[count - 1].defaultable:
        count -= 1
    return count


def _zero_of(kind: Kind, where: str) -> Any:
    if isinstance(kind, Scalar) and kind.type in _ZEROS:
        return _ZEROS[kind.type]
    raise UnknownSchema(f"no default value for a field of kind {kind} at {where}")


def decode_value(schema: VersionSchema, kind: Kind, value: Any, where: str) -> Any:
    """Check ``value`` against ``kind`` and convert it (see the module docstring)."""
    if isinstance(kind, Scalar):
        return decode_scalar(kind.type, value, where)
    if isinstance(kind, Struct):
        try:
            struct_fields = schema.structs[kind.name]
        except KeyError:
            raise UnknownSchema(f"struct {kind.name} in actors v{schema.version}") from None
        return decode_fields(schema, struct_fields, value, where)
    if isinstance(kind, Nullable):
        return None if value is None else decode_value(schema, kind.inner, value, where)
    if isinstance(kind, ListOf):
        if type(value) is not list:
            raise SchemaMismatch(f"expected a list of {kind.item}", where)
        return [
            decode_value(schema, kind.item, item, f"{where}[{index}]")
            for index, item in enumerate(value)
        ]
    if isinstance(kind, Link | Hamt | Amt | Kamt):
        if type(value) is not CID:
            raise SchemaMismatch(f"expected a CID ({kind})", where)
        return value
    raise AssertionError(f"unhandled kind {kind!r}")


def decode_scalar(scalar: ScalarType, value: Any, where: str) -> Any:
    """Check and convert one leaf value."""
    kind = type(value)
    if scalar is ScalarType.INT:
        if kind is not int or not _I64_MIN <= value <= _I64_MAX:
            raise SchemaMismatch("expected a 64-bit signed integer", where)
        return value
    if scalar is ScalarType.UINT:
        if kind is not int or not 0 <= value <= _U64_MAX:
            raise SchemaMismatch("expected a 64-bit unsigned integer", where)
        return value
    if scalar is ScalarType.BIGINT or scalar is ScalarType.TOKEN:
        return decode_bigint(value, where)
    if scalar is ScalarType.BYTES:
        if kind is not bytes:
            raise SchemaMismatch("expected a byte string", where)
        return value
    if scalar is ScalarType.STRING:
        if kind is not str:
            raise SchemaMismatch("expected a text string", where)
        return value
    if scalar is ScalarType.ADDRESS:
        if kind is not bytes:
            raise SchemaMismatch("expected an address byte string", where)
        return _address(value, where)
    if scalar is ScalarType.CID:
        if kind is not CID:
            raise SchemaMismatch("expected a CID", where)
        return value
    if scalar is ScalarType.BITFIELD:
        if kind is not bytes:
            raise SchemaMismatch("expected an RLE+ bitfield byte string", where)
        try:
            return BitField.from_bytes(value)
        except MalformedInput as exc:
            raise SchemaMismatch(f"bad bitfield: {exc.what}", where) from None
    if scalar is ScalarType.BOOL:
        if kind is not bool:
            raise SchemaMismatch("expected a boolean", where)
        return value
    if scalar is ScalarType.UNIT:
        if value is not None:
            raise SchemaMismatch("expected null (the unit value)", where)
        return None
    if scalar is ScalarType.LABEL:
        if kind is not str and kind is not bytes:
            raise SchemaMismatch("expected a deal label (text or byte string)", where)
        return value
    if scalar is ScalarType.U256:
        if kind is not bytes or len(value) > U256_SIZE:
            raise SchemaMismatch(f"expected at most {U256_SIZE} bytes of a 256-bit word", where)
        return int.from_bytes(value, "big")
    raise AssertionError(f"unhandled scalar {scalar!r}")


def decode_bigint(value: Any, where: str) -> int:
    """fvm_shared ``bigint_ser``: b"" is zero, else sign byte (0 +, 1 -) and magnitude."""
    if type(value) is not bytes:
        raise SchemaMismatch("expected a big integer byte string", where)
    if not value:
        return 0
    if len(value) > MAX_BIGINT_SIZE:
        raise SchemaMismatch(f"big integer of {len(value)} bytes exceeds {MAX_BIGINT_SIZE}", where)
    sign = value[0]
    if sign > 1:
        raise SchemaMismatch(f"big integer sign byte must be 0 or 1, not {sign}", where)
    magnitude = int.from_bytes(value[1:], "big")
    return -magnitude if sign == 1 else magnitude


def decode_key(key_type: KeyType, key: bytes, where: str) -> Any:
    """Decode a HAMT/KAMT key: an int, an Address, a CID, an address pair or a 256-bit int."""
    if type(key) is not bytes:
        raise SchemaMismatch("keys must be byte strings", where)
    if key_type is KeyType.ADDRESS:
        return _address(key, where)
    if key_type is KeyType.UVARINT:
        return _whole_varint(key, where)
    if key_type is KeyType.VARINT:
        raw = _whole_varint(key, where)
        return (raw >> 1) ^ -(raw & 1)
    if key_type is KeyType.CID:
        try:
            return CID.from_bytes(key)
        except MalformedInput as exc:
            raise SchemaMismatch(f"key is not a CID: {exc.what}", where) from None
    if key_type is KeyType.ADDRESS_PAIR:
        split = _first_address_size(key, where)
        return _address(key[:split], where), _address(key[split:], where)
    if key_type is KeyType.U256:
        return decode_scalar(ScalarType.U256, key, where)
    raise AssertionError(f"unhandled key type {key_type!r}")


def _address(data: bytes, where: str) -> Address:
    try:
        return Address.from_bytes(data, where)
    except MalformedInput as exc:
        raise SchemaMismatch(f"bad address: {exc.what}", where) from None


def _whole_varint(key: bytes, where: str) -> int:
    try:
        value, end = decode_leb128_u64(key, 0, where)
    except MalformedInput as exc:
        raise SchemaMismatch(f"key is not a varint: {exc.what}", where) from None
    if end != len(key):
        raise SchemaMismatch(f"{len(key) - end} bytes after the varint key", where)
    return value


def _first_address_size(key: bytes, where: str) -> int:
    """Where the first address of a concatenated pair ends (its protocol fixes its size)."""
    if not key:
        raise SchemaMismatch("empty address-pair key", where)
    protocol = key[0]
    if protocol == 0:
        try:
            return decode_leb128_u64(key, 1, where)[1]
        except MalformedInput as exc:
            raise SchemaMismatch(f"bad ID address in key: {exc.what}", where) from None
    size = _FIXED_ADDRESS_SIZES.get(protocol)
    if size is None or size > len(key):
        raise SchemaMismatch(
            f"cannot split an address pair starting with protocol {protocol}", where
        )
    return size


def format_key(key: Any) -> str:
    """A decoded key as it appears in collection paths."""
    if isinstance(key, tuple):
        return ",".join(str(part) for part in key)
    return str(key)
