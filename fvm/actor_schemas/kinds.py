"""The vocabulary actor-state schemas are written in: what one DAG-CBOR field holds.

Builtin-actors serializes every state struct as a CBOR array of its fields in declaration order
(``Serialize_tuple``), so a struct is described by an ordered list of :class:`Field`. Each field
has a *kind*:

- a :class:`Scalar` (int, uint, bigint, token, bytes, string, address, CID, bitfield, …);
- a :class:`Struct` defined elsewhere in the same version's schema, by name;
- :class:`Nullable` (``Option<T>``: CBOR null or the value), :class:`ListOf` (``Vec<T>``);
- :class:`Link`: a CID whose block holds a value of the target kind (miner info, deadlines…);
- :class:`Hamt` / :class:`Amt` / :class:`Kamt`: a CID that roots a collection, with the exact
  bit width the actor code creates it with, the key encoding and the value kind. A HAMT whose
  width is stored in the state itself (the FRC-46 token state) names that field with
  :class:`BitWidthFromField`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class ScalarType(Enum):
    """Leaf value types, as the actors' serde attributes put them on the wire."""

    INT = "int"  # i64: ChainEpoch, TxnID, proof types
    UINT = "uint"  # u64: ActorID, DealID, SectorNumber, sizes, nonces
    BIGINT = "bigint"  # fvm_shared bigint_ser: sign byte + big-endian magnitude, zero is b""
    TOKEN = "token"  # TokenAmount: a bigint in attoFIL
    BYTES = "bytes"  # RawBytes, strict_bytes/serde_bytes Vec<u8>, BytesDe
    STRING = "string"
    ADDRESS = "address"  # Address: its byte form in a byte string
    CID = "cid"  # a link the schema does not follow (piece CIDs, sealed CIDs, bytecode)
    BITFIELD = "bitfield"  # RLE+ in a byte string
    BOOL = "bool"
    UNIT = "unit"  # (): the value of set-like HAMTs
    LABEL = "label"  # market deal label: a text string or a byte string
    U256 = "u256"  # EVM word: big-endian bytes without leading zeros, at most 32


@dataclass(frozen=True, slots=True)
class Scalar:
    type: ScalarType

    def __str__(self) -> str:
        return self.type.value


@dataclass(frozen=True, slots=True)
class Struct:
    """A tuple-serialized struct, defined in the version's ``structs`` table."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Nullable:
    inner: Kind

    def __str__(self) -> str:
        return f"optional({self.inner})"


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Kind

    def __str__(self) -> str:
        return f"list({self.item})"


@dataclass(frozen=True, slots=True)
class Link:
    """A CID whose DAG-CBOR block decodes to ``target``."""

    target: Kind

    def __str__(self) -> str:
        return f"link({self.target})"


class KeyType(Enum):
    """How a HAMT/KAMT key is made from what it indexes."""

    ADDRESS = "address"  # Address::to_bytes
    UVARINT = "uvarint"  # u64_key / FRC-46 actor_id_key: unsigned LEB128
    VARINT = "varint"  # i64 encode_var_vec: zigzag LEB128 (power's epoch_key, multisig TxnID)
    CID = "cid"  # Cid::to_bytes
    ADDRESS_PAIR = "address_pair"  # verifreg AddrPairKey: both addresses' bytes, concatenated
    U256 = "u256"  # EVM storage slot (the KAMT key)


@dataclass(frozen=True, slots=True)
class BitWidthFromField:
    """A HAMT bit width read from a field of the struct that holds the HAMT."""

    field: str

    def __str__(self) -> str:
        return f"<{self.field}>"


@dataclass(frozen=True, slots=True)
class Hamt:
    bit_width: int | BitWidthFromField
    key: KeyType
    value: Kind

    def __str__(self) -> str:
        return f"hamt({self.bit_width}, {self.key.value}, {self.value})"


@dataclass(frozen=True, slots=True)
class Amt:
    bit_width: int
    value: Kind

    def __str__(self) -> str:
        return f"amt({self.bit_width}, {self.value})"


@dataclass(frozen=True, slots=True)
class Kamt:
    """fvm_ipld_kamt's map with keys stored unhashed (the EVM's contract storage)."""

    bit_width: int
    min_data_depth: int
    max_array_width: int
    key: KeyType
    value: Kind

    def __str__(self) -> str:
        return (
            f"kamt({self.bit_width}, depth {self.min_data_depth}, width {self.max_array_width}, "
            f"{self.key.value}, {self.value})"
        )


Kind = Scalar | Struct | Nullable | ListOf | Link | Hamt | Amt | Kamt
Collection = Hamt | Amt | Kamt


@dataclass(frozen=True, slots=True)
class Field:
    """One struct field. ``defaultable`` marks a trailing ``#[serde(default)]`` field, which
    encodings written before it existed lack (the decoder then gives the type's zero)."""

    name: str
    kind: Kind
    defaultable: bool = False


@dataclass(frozen=True, slots=True)
class VersionSchema:
    """Every state struct of one actors version, and which struct is each actor's state."""

    version: int
    structs: Mapping[str, tuple[Field, ...]]
    states: Mapping[str, str]

    def state_fields(self, actor_name: str) -> tuple[Field, ...]:
        return self.structs[self.states[actor_name]]


# Shorthands the version tables are written with.
INT: Scalar = Scalar(ScalarType.INT)
UINT: Scalar = Scalar(ScalarType.UINT)
BIGINT: Scalar = Scalar(ScalarType.BIGINT)
TOKEN: Scalar = Scalar(ScalarType.TOKEN)
BYTES: Scalar = Scalar(ScalarType.BYTES)
STRING: Scalar = Scalar(ScalarType.STRING)
ADDRESS: Scalar = Scalar(ScalarType.ADDRESS)
CID_: Scalar = Scalar(ScalarType.CID)
BITFIELD: Scalar = Scalar(ScalarType.BITFIELD)
BOOL: Scalar = Scalar(ScalarType.BOOL)
UNIT: Scalar = Scalar(ScalarType.UNIT)
LABEL: Scalar = Scalar(ScalarType.LABEL)
U256: Scalar = Scalar(ScalarType.U256)


def fields(*items: tuple[str, Kind] | Field) -> tuple[Field, ...]:
    """A struct's fields from ``(name, kind)`` pairs (or :class:`Field`), in wire order."""
    return tuple(item if isinstance(item, Field) else Field(*item) for item in items)
