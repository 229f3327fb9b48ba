"""Strict DAG-CBOR, the encoding of every Filecoin block, on top of cbor2's C codec.

Data model: ``int`` (64-bit range), ``bytes``, ``str``, ``list``, ``dict`` with ``str`` keys,
``bool``, ``None`` and :class:`~store.cid.CID` (tag 42). Floats are refused: no Filecoin type
has one and cbor-gen / serde_ipld_dagcbor reject them in chain data.

Output is canonical (definite lengths, shortest integer heads, map keys sorted length-first).
Input is accepted only when it is exactly what this encoder would write for the decoded value:
that single round-trip check rejects non-minimal integers and lengths, duplicate map keys,
indefinite lengths, bignum tags and trailing bytes, as Filecoin's decoders do. Map key order is
the one thing not enforced on input (see :class:`WireMap`).
"""

from __future__ import annotations

from typing import Any, Final

import cbor2

from store.cid import CID
from store.errors import CBORError, CIDError, NonCanonicalCBOR

CID_TAG: Final = 42

# Tags cbor2 would otherwise decode natively; DAG-CBOR admits tag 42 alone.
_CBOR2_NATIVE_TAGS: Final = (
    0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799,
)


def _decode_link(value: Any, immutable: bool) -> CID:
    if not isinstance(value, bytes) or not value or value[0] != 0:
        raise CBORError("tag 42 must wrap a byte string starting with the 0x00 multibase prefix")
    try:
        return CID.from_bytes(value[1:])
    except CIDError as exc:
        raise CBORError(f"invalid link: {exc}") from None


def _reject_tag(value: Any, immutable: bool) -> Any:
    raise CBORError("CBOR tags other than 42 are not allowed in DAG-CBOR")


def _reject_unknown_tag(tag: cbor2.CBORTag, immutable: bool) -> Any:
    raise CBORError(f"CBOR tag {tag.tag} is not allowed in DAG-CBOR")


_SEMANTIC_DECODERS: Final[dict[int, Any]] = {t: _reject_tag for t in _CBOR2_NATIVE_TAGS}
_SEMANTIC_DECODERS[CID_TAG] = _decode_link


def _encode_extra(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, CID):
        encoder.encode_semantic(CID_TAG, b"\x00" + value.to_bytes())
    else:
        raise CBORError(f"cannot encode {type(value).__name__} as DAG-CBOR")


def _refuse(encoder: cbor2.CBOREncoder, value: Any) -> None:
    raise CBORError(f"cannot encode {type(value).__name__} as DAG-CBOR")


class WireMap(dict[str, Any]):
    """A decoded map that keeps its keys in the order they had on the wire.

    Filecoin's decoders do not check map key order, and real chain data has maps that are not
    in DAG-CBOR's length-first order (the mainnet genesis block's parent, written by
    go-ipld-cbor, has its keys in neither sorted order). Re-encoding keeps the wire order so
    such blocks round-trip to identical bytes; maps built in Python (plain ``dict``) are
    sorted.
    """

    __slots__ = ()


def _encode_dict(encoder: cbor2.CBOREncoder, value: dict[Any, Any]) -> None:
    """A map built in Python: string keys only, written in length-first canonical order."""
    keyed = []
    for key in value:
        if type(key) is not str:
            raise CBORError(f"DAG-CBOR map keys must be strings, got {type(key).__name__}")
        raw = key.encode("utf-8")
        keyed.append((len(raw), raw, key))
    keyed.sort()
    encoder.encode_length(5, len(keyed))
    for _, _, key in keyed:
        encoder.encode_string(key)
        encoder.encode(value[key])


def _encode_wire_map(encoder: cbor2.CBOREncoder, value: WireMap) -> None:
    encoder.encode_length(5, len(value))
    for key, item in value.items():
        encoder.encode_string(key)
        encoder.encode(item)


_INT_MIN: Final = -(1 << 64)
_INT_MAX: Final = (1 << 64) - 1


def _encode_int(encoder: cbor2.CBOREncoder, value: int) -> None:
    """Integers outside CBOR's major types 0/1 would become bignum tags, which DAG-CBOR refuses."""
    if _INT_MIN <= value <= _INT_MAX:
        encoder.encode_int(value)
    else:
        raise CBORError(f"integer {value} is outside DAG-CBOR's 64-bit range")


_ENCODERS: Final[dict[type, Any]] = {
    int: _encode_int,
    float: _refuse,
    set: _refuse,
    frozenset: _refuse,
    type(cbor2.undefined): _refuse,
    cbor2.CBORSimpleValue: _refuse,
    WireMap: _encode_wire_map,
    dict: _encode_dict,
}


def _check_map_keys(mapping: Any, immutable: bool) -> Any:
    for key in mapping:
        if not isinstance(key, str):
            raise CBORError(f"DAG-CBOR map keys must be strings, got {type(key).__name__}")
    return WireMap(mapping)


# Re-encoding a decoded value needs no integer range check: the decoder only produces integers
# from CBOR major types 0 and 1, and refuses bignum tags.
_DECODED_ENCODERS: Final = {t: f for t, f in _ENCODERS.items() if t is not int}


def encode(value: Any) -> bytes:
    """Encode ``value`` as canonical DAG-CBOR."""
    return _encode(value, _ENCODERS)


def _encode(value: Any, encoders: dict[type, Any]) -> bytes:
    try:
        return cbor2.dumps(value, canonical=True, default=_encode_extra, encoders=encoders)
    except CBORError:
        raise
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise CBORError(f"cannot encode value as DAG-CBOR: {exc}") from None


def decode(data: bytes, where: str | None = None) -> Any:
    """Decode one strict DAG-CBOR item that spans exactly ``data``.

    ``where`` names the source (a CID, a file offset) in error messages.
    """
    value = decode_lenient(data, where)
    try:
        again = _encode(value, _DECODED_ENCODERS)
    except CBORError as exc:
        raise CBORError(exc.what, where) from None
    if again != data:
        raise NonCanonicalCBOR(_describe_difference(data, again), where)
    return value


def decode_lenient(data: bytes, where: str | None = None) -> Any:
    """Decode without the canonical-form check: for data this node wrote itself."""
    try:
        return cbor2.loads(
            data,
            semantic_decoders=_SEMANTIC_DECODERS,
            tag_hook=_reject_unknown_tag,
            object_hook=_check_map_keys,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=512,
        )
    except CBORError as exc:
        raise CBORError(exc.what, where) from None
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        cause = exc.__cause__
        if isinstance(cause, CBORError):
            raise CBORError(cause.what, where) from None
        raise CBORError(f"invalid CBOR: {exc}", where) from None


def _describe_difference(original: bytes, canonical: bytes) -> str:
    if original.startswith(canonical):
        return f"{len(original) - len(canonical)} trailing bytes after the CBOR item"
    for i, (a, b) in enumerate(zip(original, canonical, strict=False)):
        if a != b:
            return f"non-canonical DAG-CBOR: first difference at byte {i}"
    return "non-canonical DAG-CBOR: encoding is longer than its canonical form"


def links(value: Any) -> list[CID]:
    """Every CID linked from a decoded value, in encounter order."""
    out: list[CID] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, CID):
            out.append(item)
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return out
