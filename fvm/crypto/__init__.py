"""Filecoin's cryptography: hashes, secp256k1 and BLS signatures, signature verification.

Submodules: :mod:`fvm.crypto.hashes` (the FVM's ``hash`` syscall functions),
:mod:`fvm.crypto.secp256k1` (recoverable ECDSA over blake2b-256 or keccak-256 digests),
:mod:`fvm.crypto.bls` (BLS12-381 min-pubkey-size signatures as Filecoin's ``bls-signatures``
crate defines them) and :mod:`fvm.crypto.signature_verify` (dispatch on signature type, as
ref-fvm's ``shared/src/crypto/signature.rs`` and Lotus's ``lib/sigs`` do).

This module holds the errors they share.
"""

from __future__ import annotations

from store.errors import FvmNodeError, MalformedInput


class InvalidSignatureInput(MalformedInput):
    """Bytes that cannot be a signature, public key or digest of the expected kind.

    ref-fvm maps these failures to ``IllegalArgument`` in the syscalls that raise them
    (``recover_secp_public_key``); verification functions answer ``False`` instead.
    """


class InvalidPrivateKey(FvmNodeError, ValueError):
    """A private key of the wrong length or outside the curve's scalar range."""
