"""Signatures as the chain stores them: a type byte followed by the signature bytes.

Data types only; verification lives in :mod:`fvm.crypto`. Layout from go-state-types
``crypto/signature.go`` (what Lotus decodes from blocks and messages) and ref-fvm's
``shared/src/crypto/signature.rs``: in DAG-CBOR a signature is one byte string, the type byte
(1 secp256k1, 2 BLS, 3 delegated) then the data. Lotus refuses empty strings, strings over 200
bytes and unknown type bytes. ref-fvm's own ``SignatureType`` knows only 1 and 2; the delegated
type (FIP-0055, Ethereum-style transactions from network version 18) exists on chain through
Lotus, which is why it is accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from store import dag_cbor
from store.errors import MalformedInput

SECP_SIG_LEN: Final = 65
BLS_SIG_LEN: Final = 96
# Longest CBOR byte string Lotus accepts for a signature, type byte included.
SIGNATURE_MAX_LENGTH: Final = 200


class SignatureType(IntEnum):
    SECP256K1 = 1
    BLS = 2
    DELEGATED = 3


class SignatureError(MalformedInput):
    """Bytes that are not a signature as Lotus decodes it."""


@dataclass(frozen=True, slots=True)
class Signature:
    sig_type: SignatureType
    data: bytes

    @classmethod
    def new_secp256k1(cls, data: bytes) -> Signature:
        return cls(SignatureType.SECP256K1, bytes(data))

    @classmethod
    def new_bls(cls, data: bytes) -> Signature:
        return cls(SignatureType.BLS, bytes(data))

    @classmethod
    def new_delegated(cls, data: bytes) -> Signature:
        return cls(SignatureType.DELEGATED, bytes(data))

    def to_bytes(self) -> bytes:
        """The type byte followed by the signature data."""
        return bytes((int(self.sig_type),)) + self.data

    @classmethod
    def from_bytes(cls, raw: bytes, where: str | None = None) -> Signature:
        if not raw:
            raise SignatureError("signature is empty", where)
        if len(raw) > SIGNATURE_MAX_LENGTH:
            raise SignatureError(
                f"signature of {len(raw)} bytes exceeds {SIGNATURE_MAX_LENGTH}", where
            )
        try:
            sig_type = SignatureType(raw[0])
        except ValueError:
            raise SignatureError(f"invalid signature type byte {raw[0]}", where) from None
        return cls(sig_type, bytes(raw[1:]))

    def to_cbor(self) -> bytes:
        """The DAG-CBOR data-model value (a byte string)."""
        return self.to_bytes()

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> Signature:
        if type(value) is not bytes:
            raise SignatureError(
                f"signature must be a CBOR byte string, not {type(value).__name__}", where
            )
        return cls.from_bytes(value, where)

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_bytes())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> Signature:
        return cls.from_cbor(dag_cbor.decode(data, where), where)
