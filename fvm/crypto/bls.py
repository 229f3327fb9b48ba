"""BLS12-381 signatures as Filecoin defines them, on Chia's blspy (blst underneath).

Filecoin uses the minimal-pubkey-size variant: public keys are 48-byte compressed G1 points,
signatures 96-byte compressed G2 points, messages hashed to G2 with the ciphersuite
``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_`` (``CSUITE`` in filecoin-project's
``bls-signatures`` crate, ``DST`` in Lotus ``lib/sigs/bls``), which is blspy's
``BasicSchemeMPL``. Private keys are 32-byte scalars serialised *little-endian*
(``bls-signatures`` ``PrivateKey::from_bytes``; blspy wants big-endian, so they are reversed).

Verification follows ``bls-signatures`` ``verify_messages`` as ref-fvm
(``shared/src/crypto/signature.rs``: ``verify_bls_sig``, ``verify_bls_aggregate``) and Lotus
(``ffi.HashVerify``, ``chain/consensus`` ``VerifyBlsAggregate``) call it:

* bytes that are not a valid point of the right subgroup fail verification (``False``);
* an identity (all-zero key) public key never verifies;
* the messages must be pairwise distinct (the rogue-key countermeasure of the IRTF BLS draft,
  section 3.1), otherwise verification fails even for a correct aggregate;
* an aggregate over no messages verifies (both callers return success before pairing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from blspy import BasicSchemeMPL, G1Element, G2Element, PrivateKey

from fvm.crypto import InvalidPrivateKey, InvalidSignatureInput

SIGNATURE_LEN: Final = 96
PUBLIC_KEY_LEN: Final = 48
PRIVATE_KEY_LEN: Final = 32
# The compressed encoding of the G2 identity: Lotus's "zero signature" for a block without
# BLS messages (``ffi.CreateZeroSignature``).
IDENTITY_SIGNATURE: Final = bytes([0xC0]) + bytes(SIGNATURE_LEN - 1)


def _public_key_point(public_key: bytes) -> G1Element | None:
    if len(public_key) != PUBLIC_KEY_LEN:
        return None
    try:
        return G1Element.from_bytes(bytes(public_key))
    except (ValueError, RuntimeError):
        return None


def _signature_point(signature: bytes) -> G2Element | None:
    if len(signature) != SIGNATURE_LEN:
        return None
    try:
        return G2Element.from_bytes(bytes(signature))
    except (ValueError, RuntimeError):
        return None


def _private_key(private_key: bytes) -> PrivateKey:
    if len(private_key) != PRIVATE_KEY_LEN:
        raise InvalidPrivateKey(
            f"BLS private key must be {PRIVATE_KEY_LEN} bytes, got {len(private_key)}"
        )
    try:
        return PrivateKey.from_bytes(bytes(private_key)[::-1])
    except (ValueError, RuntimeError):
        raise InvalidPrivateKey("BLS private key is not below the group order") from None


def public_key(private_key: bytes) -> bytes:
    """The 48-byte compressed G1 public key of a 32-byte little-endian private key."""
    return bytes(_private_key(private_key).get_g1())


def sign(private_key: bytes, data: bytes) -> bytes:
    """The 96-byte compressed G2 signature of ``data`` under a little-endian private key."""
    return bytes(BasicSchemeMPL.sign(_private_key(private_key), bytes(data)))


def verify(signature: bytes, data: bytes, public_key: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``data``."""
    return _verify_points(signature, [data], [public_key])


def verify_aggregate(
    signature: bytes, datas: Sequence[bytes], public_keys: Sequence[bytes]
) -> bool:
    """Whether ``signature`` aggregates the signatures of ``datas[i]`` by ``public_keys[i]``.

    Unequal numbers of messages and keys is a caller error (ref-fvm's syscall raises
    ``IllegalArgument`` before verifying) and raises :class:`ValueError`. No messages at all
    verifies whatever the signature bytes, as in ref-fvm's ``verify_bls_aggregate`` and Lotus's
    ``VerifyBlsAggregate``.
    """
    if len(datas) != len(public_keys):
        raise ValueError(
            f"unequal numbers of BLS public keys ({len(public_keys)}) and messages ({len(datas)})"
        )
    if not datas:
        return True
    return _verify_points(signature, datas, public_keys)


def _verify_points(signature: bytes, datas: Sequence[bytes], public_keys: Sequence[bytes]) -> bool:
    sig_point = _signature_point(signature)
    if sig_point is None:
        return False
    identity = G1Element()
    key_points: list[G1Element] = []
    for key in public_keys:
        point = _public_key_point(key)
        if point is None or point == identity:
            return False
        key_points.append(point)
    messages = [bytes(data) for data in datas]
    if len(set(messages)) != len(messages):
        return False
    return bool(BasicSchemeMPL.aggregate_verify(key_points, messages, sig_point))


def aggregate(signatures: Sequence[bytes]) -> bytes:
    """The aggregate (G2 sum) of ``signatures``; the identity signature when there are none.

    ``bls-signatures`` refuses an empty list, and Lotus (``AggregateSignatures``) then uses the
    identity point, so that is what an empty list gives here. Bytes that are not a valid G2
    point raise :class:`InvalidSignatureInput`.
    """
    points: list[G2Element] = []
    for index, signature in enumerate(signatures):
        point = _signature_point(signature)
        if point is None:
            raise InvalidSignatureInput(f"BLS signature {index} is not a valid G2 point")
        points.append(point)
    if not points:
        return IDENTITY_SIGNATURE
    return bytes(BasicSchemeMPL.aggregate(points))
