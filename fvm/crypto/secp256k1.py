"""Recoverable secp256k1 ECDSA signatures as Filecoin uses them, on libsecp256k1 (coincurve).

A Filecoin secp256k1 signature is 65 bytes, ``r ‖ s ‖ v`` with ``v`` the recovery id (0..3),
over the blake2b-256 digest of the signed bytes (for a message: its CID bytes). Verification
recovers the public key and compares the f1 address it hashes to with the signer's
(ref-fvm ``shared/src/crypto/signature.rs``: ``ops::verify_secp256k1_sig``, ``ecrecover``;
Lotus ``lib/sigs/secp``). Delegated (Ethereum) signatures use the same recovery over a
keccak-256 digest (Lotus ``lib/sigs/delegated``); see :mod:`fvm.crypto.signature_verify`.

Malleability: neither reference rejects a high ``s``. ref-fvm v3 parsed with the ``libsecp256k1``
crate (rejects only ``r``/``s`` >= n) and recovered without a low-s check; later versions use
``k256`` and normalise ``s``, flipping the recovery id, which recovers the same key. Lotus goes
through go-ethereum's binding of C libsecp256k1, which likewise recovers from either form. C
libsecp256k1's recovery, used here, behaves the same way: ``r`` or ``s`` zero or >= n, a
recovery id above 3, or an ``r`` that is not the x coordinate of a curve point all fail.

Signing uses libsecp256k1's RFC 6979 nonces and low-s output, as go-ethereum's ``Sign`` (under
Lotus's wallet) does, so the same key and digest give the same 65 bytes.
"""

from __future__ import annotations

from typing import Final

from coincurve import PrivateKey, PublicKey

from fvm.address import Address, Protocol
from fvm.crypto import InvalidPrivateKey, InvalidSignatureInput
from fvm.crypto.hashes import blake2b_256

SIGNATURE_LEN: Final = 65
PUBLIC_KEY_LEN: Final = 65
MESSAGE_HASH_LEN: Final = 32
PRIVATE_KEY_LEN: Final = 32


def recover_public_key(signature: bytes, msg_hash: bytes) -> bytes:
    """The 65-byte uncompressed public key that made ``signature`` over the digest ``msg_hash``.

    The semantics of ref-fvm's ``recover_secp_public_key`` syscall; every failure raises
    :class:`InvalidSignatureInput` (the syscall's ``IllegalArgument``).
    """
    if len(signature) != SIGNATURE_LEN:
        raise InvalidSignatureInput(
            f"secp256k1 signature must be {SIGNATURE_LEN} bytes, got {len(signature)}"
        )
    if len(msg_hash) != MESSAGE_HASH_LEN:
        raise InvalidSignatureInput(
            f"secp256k1 message hash must be {MESSAGE_HASH_LEN} bytes, got {len(msg_hash)}"
        )
    if signature[64] > 3:
        raise InvalidSignatureInput(f"invalid secp256k1 recovery id {signature[64]}")
    try:
        key = PublicKey.from_signature_and_message(bytes(signature), bytes(msg_hash), hasher=None)
    except ValueError as exc:
        raise InvalidSignatureInput(f"secp256k1 public key recovery failed: {exc}") from None
    return bytes(key.format(compressed=False))


def recover_address(signature: bytes, msg_hash: bytes) -> Address:
    """The f1 address of the key that signed ``msg_hash`` (ref-fvm ``ecrecover``)."""
    return Address.new_secp256k1(recover_public_key(signature, msg_hash))


def verify(signature: bytes, data: bytes, signer: Address) -> bool:
    """Whether ``signature`` over blake2b-256(``data``) was made by the key of f1 ``signer``.

    Any malformed input (a signer that is not an f1 address, a signature of the wrong length,
    an unrecoverable signature) answers ``False``, as ref-fvm's ``verify_signature`` syscall does.
    """
    if signer.protocol != Protocol.SECP256K1 or len(signature) != SIGNATURE_LEN:
        return False
    try:
        return recover_address(signature, blake2b_256(data)) == signer
    except InvalidSignatureInput:
        return False


def _private_key(private_key: bytes) -> PrivateKey:
    if len(private_key) != PRIVATE_KEY_LEN:
        raise InvalidPrivateKey(
            f"secp256k1 private key must be {PRIVATE_KEY_LEN} bytes, got {len(private_key)}"
        )
    try:
        return PrivateKey(bytes(private_key))
    except ValueError:
        raise InvalidPrivateKey(
            "secp256k1 private key is zero or not below the group order"
        ) from None


def public_key(private_key: bytes) -> bytes:
    """The 65-byte uncompressed public key of a 32-byte big-endian private key."""
    return bytes(_private_key(private_key).public_key.format(compressed=False))


def sign_digest(private_key: bytes, msg_hash: bytes) -> bytes:
    """The 65-byte recoverable signature ``r ‖ s ‖ v`` over a 32-byte digest."""
    if len(msg_hash) != MESSAGE_HASH_LEN:
        raise ValueError(f"message hash must be {MESSAGE_HASH_LEN} bytes, got {len(msg_hash)}")
    return bytes(_private_key(private_key).sign_recoverable(bytes(msg_hash), hasher=None))


def sign(private_key: bytes, data: bytes) -> bytes:
    """Sign ``data`` the Filecoin way: over its blake2b-256 digest (Lotus ``secpSigner.Sign``)."""
    return sign_digest(private_key, blake2b_256(data))
