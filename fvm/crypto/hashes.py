"""The hash functions the FVM offers actors, keyed by their multihash codes.

ref-fvm's ``hash`` syscall accepts exactly the functions of its ``SupportedHashes`` enum
(``fvm/src/kernel/hash.rs`` and ``shared/src/crypto/hash.rs``): sha2-256 (0x12), blake2b-256
(0xb220), blake2b-512 (0xb240), keccak-256 (0x1b, the original Keccak padding Ethereum uses, not
SHA3-256) and ripemd-160 (0x1053). Any other code is an illegal argument there, and
:func:`digest` raises :class:`UnsupportedHash` for it so the syscall layer can map it.

Keccak and RIPEMD-160 come from pycryptodome: ``hashlib`` has no Keccak, and offers RIPEMD-160
only when the linked OpenSSL still ships its legacy provider.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

from Crypto.Hash import RIPEMD160, keccak

from store.errors import FvmNodeError

SHA2_256: Final = 0x12
KECCAK_256: Final = 0x1B
RIPEMD_160: Final = 0x1053
BLAKE2B_256: Final = 0xB220
BLAKE2B_512: Final = 0xB240


class UnsupportedHash(FvmNodeError, ValueError):
    """A multihash code that is not one of the FVM's supported hash functions."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"unsupported hash code 0x{code:x}")


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def blake2b_512(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def keccak_256(data: bytes) -> bytes:
    return bytes(keccak.new(data=data, digest_bits=256).digest())


def ripemd_160(data: bytes) -> bytes:
    return bytes(RIPEMD160.new(data).digest())


SUPPORTED_HASHES: Final[dict[int, Callable[[bytes], bytes]]] = {
    SHA2_256: sha256,
    BLAKE2B_256: blake2b_256,
    BLAKE2B_512: blake2b_512,
    KECCAK_256: keccak_256,
    RIPEMD_160: ripemd_160,
}


def digest(code: int, data: bytes) -> bytes:
    """The digest of ``data`` under the hash function with multihash code ``code``."""
    hasher = SUPPORTED_HASHES.get(code)
    if hasher is None:
        raise UnsupportedHash(code)
    return hasher(data)
