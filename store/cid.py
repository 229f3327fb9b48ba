"""Content identifiers (CIDv0 and CIDv1) with the multihashes and codecs Filecoin uses.

Written by hand rather than on a multiformats package: CIDs are parsed on every HAMT/AMT node
and every chain block, so the type is a thin immutable wrapper over the binary form, and parsing
must reject the malformed shapes (non-minimal varints, wrong digest lengths) a lenient parser
lets through. Spec: multiformats CID, multihash and multicodec tables.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

import base58

from store.errors import CIDError, VarintError
from store.varint import decode_uvarint, encode_uvarint

# multicodec content types
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
RAW: Final = 0x55
CBOR: Final = 0x51  # plain CBOR, no links: ref-fvm's IPLD "CBOR" codec
FIL_COMMITMENT_UNSEALED: Final = 0xF101
FIL_COMMITMENT_SEALED: Final = 0xF102

# multihash functions
IDENTITY: Final = 0x00
SHA2_256: Final = 0x12
KECCAK_256: Final = 0x1B
BLAKE2B_256: Final = 0xB220
SHA2_256_TRUNC254_PADDED: Final = 0x1012
POSEIDON_BLS12_381_A1_FC1: Final = 0xB401

CODEC_NAMES: Final = {
    DAG_PB: "dag-pb",
    DAG_CBOR: "dag-cbor",
    RAW: "raw",
    CBOR: "cbor",
    FIL_COMMITMENT_UNSEALED: "fil-commitment-unsealed",
    FIL_COMMITMENT_SEALED: "fil-commitment-sealed",
}

HASH_NAMES: Final = {
    IDENTITY: "identity",
    SHA2_256: "sha2-256",
    KECCAK_256: "keccak-256",
    BLAKE2B_256: "blake2b-256",
    SHA2_256_TRUNC254_PADDED: "sha2-256-trunc254-padded",
    POSEIDON_BLS12_381_A1_FC1: "poseidon-bls12_381-a2-fc1",
}

# Fixed digest sizes where the function defines one (identity is variable).
_DIGEST_SIZES: Final = {
    SHA2_256: 32,
    KECCAK_256: 32,
    BLAKE2B_256: 32,
    SHA2_256_TRUNC254_PADDED: 32,
    POSEIDON_BLS12_381_A1_FC1: 32,
}

# Largest digest accepted: ref-fvm's CIDs carry multihashes of at most 64 bytes.
MAX_DIGEST_SIZE: Final = 64


def _blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _identity(data: bytes) -> bytes:
    return bytes(data)


def _keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak

    return bytes(keccak.new(data=data, digest_bits=256).digest())


HASHERS: Final = {
    BLAKE2B_256: _blake2b_256,
    SHA2_256: _sha256,
    IDENTITY: _identity,
    KECCAK_256: _keccak256,
}


# The prefix of nearly every CID on chain: v1, dag-cbor, blake2b-256, 32-byte digest.
_FILECOIN_PREFIX: Final = b"\x01\x71\xa0\xe4\x02\x20"
_FILECOIN_CID_LEN: Final = len(_FILECOIN_PREFIX) + 32

_set = object.__setattr__


class CID:
    """An immutable CID, compared and hashed by its binary form.

    Only the binary form is stored; version, codec and multihash parts are parsed from it on
    first use. Construction from bytes is on the hot path of every HAMT/AMT node decode.
    """

    __slots__ = ("_bytes", "_hash", "_parts")

    _bytes: bytes
    _hash: int
    _parts: tuple[int, int, int, bytes] | None

    def __init__(self, version: int, codec: int, mh_code: int, digest: bytes) -> None:
        if version == 0:
            if codec != DAG_PB or mh_code != SHA2_256 or len(digest) != 32:
                raise CIDError("CIDv0 must be dag-pb with a 32-byte sha2-256 digest")
            raw = bytes((SHA2_256, 32)) + digest
        elif version == 1:
            _check_digest(mh_code, len(digest), "CID")
            raw = (
                b"\x01"
                + encode_uvarint(codec)
                + encode_uvarint(mh_code)
                + encode_uvarint(len(digest))
                + digest
            )
        else:
            raise CIDError(f"unsupported CID version {version}")
        _set(self, "_bytes", raw)
        _set(self, "_hash", hash(raw))
        _set(self, "_parts", (version, codec, mh_code, bytes(digest)))

    @classmethod
    def _wrap(cls, raw: bytes) -> CID:
        """A CID over binary form already known to be well formed."""
        cid = object.__new__(cls)
        _set(cid, "_bytes", raw)
        _set(cid, "_hash", hash(raw))
        _set(cid, "_parts", None)
        return cid

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CID is immutable")

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def hash_of(cls, data: bytes, codec: int = DAG_CBOR, mh_code: int = BLAKE2B_256) -> CID:
        """The CIDv1 of ``data`` under ``codec``, hashed with ``mh_code``."""
        if codec == DAG_CBOR and mh_code == BLAKE2B_256:
            return cls._wrap(_FILECOIN_PREFIX + hashlib.blake2b(data, digest_size=32).digest())
        hasher = HASHERS.get(mh_code)
        if hasher is None:
            raise CIDError(f"cannot compute multihash 0x{mh_code:x}")
        return cls(1, codec, mh_code, hasher(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> CID:
        """Parse a whole binary CID; every byte must belong to it."""
        if len(data) == _FILECOIN_CID_LEN and data.startswith(_FILECOIN_PREFIX):
            return cls._wrap(bytes(data))
        cid, end = cls.read_bytes(data, 0)
        if end != len(data):
            raise CIDError(f"{len(data) - end} trailing bytes after CID", f"offset {end}")
        return cid

    @classmethod
    def read_bytes(cls, data: bytes | memoryview, offset: int = 0) -> tuple[CID, int]:
        """Parse a binary CID starting at ``offset``; return it and the offset after it."""
        end = offset + _FILECOIN_CID_LEN
        if data[offset : offset + 6] == _FILECOIN_PREFIX and len(data) >= end:
            return cls._wrap(bytes(data[offset:end])), end
        try:
            if len(data) - offset >= 34 and data[offset] == SHA2_256 and data[offset + 1] == 32:
                return cls._wrap(bytes(data[offset : offset + 34])), offset + 34
            version, pos = decode_uvarint(data, offset)
            if version != 1:
                raise CIDError(f"unsupported CID version {version}", f"offset {offset}")
            _, pos = decode_uvarint(data, pos)
            mh_code, pos = decode_uvarint(data, pos)
            size, pos = decode_uvarint(data, pos)
        except VarintError as exc:
            raise CIDError(f"malformed CID: {exc.what}", exc.where) from None
        _check_digest(mh_code, size, f"offset {offset}")
        end = pos + size
        if end > len(data):
            raise CIDError("truncated CID digest", f"offset {offset}")
        return cls._wrap(bytes(data[offset:end])), end

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse the string form: base58btc ``Qm…`` (v0) or multibase base32 ``b…`` (v1)."""
        if not text:
            raise CIDError("empty CID string")
        try:
            if len(text) == 46 and text.startswith("Qm"):
                return cls.from_bytes(base58.b58decode(text))
            prefix, body = text[0], text[1:]
            if prefix == "b":
                pad = "=" * (-len(body) % 8)
                return cls.from_bytes(base64.b32decode(body.upper() + pad))
            if prefix == "z":
                return cls.from_bytes(base58.b58decode(body))
        except (ValueError, TypeError) as exc:
            raise CIDError(f"invalid CID string {text!r}: {exc}") from None
        raise CIDError(f"unsupported multibase prefix {text[0]!r} in CID {text!r}")

    # -- views ----------------------------------------------------------------------------

    def _parsed(self) -> tuple[int, int, int, bytes]:
        parts = self._parts
        if parts is None:
            raw = self._bytes
            if raw[0] == SHA2_256 and len(raw) == 34:
                parts = (0, DAG_PB, SHA2_256, raw[2:])
            else:
                _, pos = decode_uvarint(raw, 0)
                codec, pos = decode_uvarint(raw, pos)
                mh_code, pos = decode_uvarint(raw, pos)
                _, pos = decode_uvarint(raw, pos)
                parts = (1, codec, mh_code, raw[pos:])
            _set(self, "_parts", parts)
        return parts

    @property
    def version(self) -> int:
        return self._parsed()[0]

    @property
    def codec(self) -> int:
        return self._parsed()[1]

    @property
    def mh_code(self) -> int:
        return self._parsed()[2]

    @property
    def digest(self) -> bytes:
        return self._parsed()[3]

    def to_bytes(self) -> bytes:
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    @property
    def multihash(self) -> bytes:
        return self._bytes if self.version == 0 else self._bytes[1 + _varint_len(self.codec) :]

    def verify(self, data: bytes) -> bool:
        """True when ``data`` hashes to this CID's digest (unknown hash functions: False)."""
        hasher = HASHERS.get(self.mh_code)
        return hasher is not None and hasher(data) == self.digest

    def __str__(self) -> str:
        if self.version == 0:
            return str(base58.b58encode(self._bytes).decode("ascii"))
        return "b" + base64.b32encode(self._bytes).decode("ascii").lower().rstrip("=")

    def __repr__(self) -> str:
        return f"CID({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other._bytes == self._bytes

    def __lt__(self, other: CID) -> bool:
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return (CID.from_bytes, (self._bytes,))


def _varint_len(value: int) -> int:
    return len(encode_uvarint(value))


def _check_digest(mh_code: int, size: int, where: str) -> None:
    expected = _DIGEST_SIZES.get(mh_code)
    if expected is not None and size != expected:
        raise CIDError(
            f"{HASH_NAMES.get(mh_code, hex(mh_code))} digest must be {expected} bytes, got {size}",
            where,
        )
    if size > MAX_DIGEST_SIZE:
        raise CIDError(f"digest of {size} bytes exceeds {MAX_DIGEST_SIZE}", where)
