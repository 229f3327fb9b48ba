"""Unsigned LEB128 varints as multiformats (CIDs, multihash, CAR framing) use them.

Written by hand: it is a dozen lines, sits on the CAR-reading hot path, and must reject
non-minimal encodings, which general-purpose varint packages accept.
"""

from __future__ import annotations

from store.errors import VarintError

MAX_VARINT_BYTES = 9  # multiformats caps unsigned varints at 63 bits / 9 bytes


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("uvarint must be non-negative")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a varint at ``offset``; return ``(value, offset_after)``."""
    value = 0
    shift = 0
    pos = offset
    end = len(data)
    while True:
        if pos >= end:
            raise VarintError("truncated varint", f"offset {offset}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and pos - offset > 1:
                raise VarintError("varint is not minimally encoded", f"offset {offset}")
            return value, pos
        shift += 7
        if pos - offset >= MAX_VARINT_BYTES:
            raise VarintError("varint longer than 9 bytes", f"offset {offset}")
