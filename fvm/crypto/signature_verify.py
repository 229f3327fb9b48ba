"""Check a chain signature against the address that claims to have made it.

Dispatch on the signature type as ref-fvm's ``shared/src/crypto/signature.rs`` (``verify``) and
Lotus's ``lib/sigs`` (``sigs.Verify``) do:

* secp256k1 (1): the signer must be an f1 address; the signature recovers, over
  blake2b-256(data), to the key whose f1 address it is (Lotus ``lib/sigs/secp``);
* BLS (2): the signer must be an f3 address, whose payload is the public key
  (Lotus ``lib/sigs/bls``);
* delegated (3, from network version 18, FIP-0055): a 65-byte secp256k1 signature over
  keccak-256(data), whose recovered key's Ethereum address (the last 20 bytes of the keccak-256
  of the uncompressed key without its 0x04 prefix) is the sub-address of the signer, an f4
  address in the Ethereum Address Manager's namespace (actor 10). Lotus
  ``lib/sigs/delegated``; ref-fvm's ``SignatureType`` has no such variant, so the FVM's
  ``verify_signature`` syscall must refuse type 3 before calling this.

``data`` is what was signed: a message's CID bytes for secp256k1 and BLS, the RLP-encoded
unsigned Ethereum transaction for delegated signatures (built by the chain layer). Every
malformed input answers ``False``.
"""

from __future__ import annotations

from fvm.address import EAM_ACTOR_ADDR, Address, Protocol
from fvm.crypto import InvalidSignatureInput, bls, secp256k1
from fvm.crypto.hashes import keccak_256
from fvm.signature import Signature, SignatureType

ETH_ADDRESS_LEN = 20


def eth_address_of_public_key(public_key: bytes) -> bytes:
    """The 20-byte Ethereum address of a 65-byte uncompressed secp256k1 public key."""
    return keccak_256(public_key[1:])[-ETH_ADDRESS_LEN:]


def delegated_address_of_public_key(public_key: bytes) -> Address:
    """The f410 address (EAM namespace) of a 65-byte uncompressed secp256k1 public key."""
    return Address.new_delegated(EAM_ACTOR_ADDR.id, eth_address_of_public_key(public_key))


def verify_delegated(signature: bytes, data: bytes, signer: Address) -> bool:
    """Whether ``signature`` over keccak-256(``data``) is by the key behind f410 ``signer``."""
    if signer.protocol is not Protocol.DELEGATED:
        return False
    try:
        public_key = secp256k1.recover_public_key(signature, keccak_256(data))
    except InvalidSignatureInput:
        return False
    return delegated_address_of_public_key(public_key) == signer


def verify_signature(signature: Signature, signer: Address, data: bytes) -> bool:
    """Whether ``signature`` is ``signer``'s signature of ``data``."""
    sig_type = signature.sig_type
    if sig_type is SignatureType.SECP256K1:
        return secp256k1.verify(signature.data, data, signer)
    if sig_type is SignatureType.BLS:
        if signer.protocol is not Protocol.BLS:
            return False
        return bls.verify(signature.data, data, signer.payload)
    if sig_type is SignatureType.DELEGATED:
        return verify_delegated(signature.data, data, signer)
    return False
