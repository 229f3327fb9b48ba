"""Wallet keys for the devnet: secp256k1 and BLS private keys, their addresses, signing, and
Lotus's key file format.

Lotus (``chain/wallet/key/key.go``, ``lib/sigs/secp``, ``lib/sigs/bls``) keeps a key as a
``KeyInfo``: a type (``"secp256k1"`` or ``"bls"``) and the private key bytes. secp256k1 keys are
32-byte big-endian scalars; BLS keys are the 32 bytes filecoin-ffi serialises, a little-endian
scalar (:mod:`fvm.crypto.bls` does the byte-order handling). ``lotus wallet export`` and the
``.key`` files ``lotus-seed`` writes hold the hex of the JSON ``{"Type":…,"PrivateKey":…}`` with
the key in standard base64 (Go's ``encoding/json`` for a ``[]byte``); ``lotus wallet import``
also takes the JSON itself, and so does :meth:`Key.load`.

What is signed: a message's CID bytes (Lotus ``WalletSignMessage``), for both key types; a block
header's signing bytes, its encoding with the signature field null (``chain/gen`` and the miner's
``WalletSign`` of ``SigningBytes``). secp256k1 signs the blake2b-256 digest of those bytes.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from chainsync.chain_types import BlockHeader
from fvm.address import Address
from fvm.crypto import InvalidPrivateKey, bls, secp256k1
from fvm.message import Message, SignedMessage
from fvm.signature import Signature
from store.errors import MalformedInput

PRIVATE_KEY_LEN: Final = 32
# The group orders the private scalars must stay below (and above zero).
SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
BLS12_381_ORDER: Final = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
_SEED_DOMAIN: Final = b"fvm-node devnet key "


class KeyType(enum.Enum):
    """Lotus's key type names (``types.KTSecp256k1``, ``types.KTBLS``)."""

    SECP256K1 = "secp256k1"
    BLS = "bls"


class KeyInfoError(MalformedInput):
    """A key file or key info that is not a Lotus ``KeyInfo`` of a supported type."""


@dataclass(frozen=True, slots=True)
class Key:
    """A private key and the address it signs for."""

    kind: KeyType
    private_key: bytes
    address: Address

    @classmethod
    def from_private_key(cls, kind: KeyType, private_key: bytes) -> Key:
        """The key for these private key bytes (raises :class:`KeyInfoError` when invalid)."""
        private_key = bytes(private_key)
        try:
            if kind is KeyType.SECP256K1:
                address = Address.new_secp256k1(secp256k1.public_key(private_key))
            else:
                address = Address.new_bls(bls.public_key(private_key))
        except InvalidPrivateKey as exc:
            raise KeyInfoError(f"invalid {kind.value} private key: {exc}") from None
        return cls(kind, private_key, address)

    @classmethod
    def generate(cls, kind: KeyType, seed: bytes | None = None) -> Key:
        """A new key: from the operating system's randomness, or derived from ``seed``.

        A seeded key is ``blake2b-256(domain ‖ type ‖ seed)`` reduced into the scalar range, so
        the same seed always gives the same key (devnet fixtures, tests).
        """
        if seed is None:
            material = os.urandom(64)
        else:
            material = hashlib.blake2b(
                _SEED_DOMAIN + kind.value.encode() + b"\x00" + seed, digest_size=64
            ).digest()
        number = int.from_bytes(material, "big")
        if kind is KeyType.SECP256K1:
            scalar = number % (SECP256K1_ORDER - 1) + 1
            return cls.from_private_key(kind, scalar.to_bytes(PRIVATE_KEY_LEN, "big"))
        scalar = number % (BLS12_381_ORDER - 1) + 1
        return cls.from_private_key(kind, scalar.to_bytes(PRIVATE_KEY_LEN, "little"))

    # -- signing ----------------------------------------------------------------------------

    def sign(self, data: bytes) -> Signature:
        """This key's signature of ``data`` as the chain stores it."""
        if self.kind is KeyType.SECP256K1:
            return Signature.new_secp256k1(secp256k1.sign(self.private_key, data))
        return Signature.new_bls(bls.sign(self.private_key, data))

    def sign_message(self, message: Message) -> SignedMessage:
        """Sign ``message`` (its CID bytes) as Lotus's wallet does; the sender must be this key."""
        if message.from_ != self.address:
            raise ValueError(f"message is from {message.from_}, not from this key {self.address}")
        return SignedMessage(message, self.sign(message.cid().to_bytes()))

    def sign_block(self, header: BlockHeader) -> BlockHeader:
        """``header`` with its BlockSig set to this key's signature of its signing bytes."""
        return replace(header, block_sig=self.sign(header.signing_bytes()))

    # -- Lotus KeyInfo ----------------------------------------------------------------------

    def to_key_info(self) -> dict[str, str]:
        """The ``KeyInfo`` JSON object, fields in Lotus's order."""
        return {
            "Type": self.kind.value,
            "PrivateKey": base64.b64encode(self.private_key).decode("ascii"),
        }

    def export_hex(self) -> str:
        """``lotus wallet export``'s output: the hex of the compact KeyInfo JSON."""
        text = json.dumps(self.to_key_info(), separators=(",", ":"))
        return text.encode("ascii").hex()

    @classmethod
    def from_key_info(cls, info: Any, where: str | None = None) -> Key:
        """The key a decoded ``KeyInfo`` JSON object describes."""
        if not isinstance(info, dict):
            raise KeyInfoError("key info must be a JSON object", where)
        kind_name = info.get("Type")
        encoded = info.get("PrivateKey")
        try:
            kind = KeyType(kind_name)
        except ValueError:
            raise KeyInfoError(f"unsupported key type {kind_name!r}", where) from None
        if not isinstance(encoded, str):
            raise KeyInfoError("key info PrivateKey must be a base64 string", where)
        try:
            private_key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise KeyInfoError("key info PrivateKey is not valid base64", where) from None
        if len(private_key) != PRIVATE_KEY_LEN:
            raise KeyInfoError(
                f"private key must be {PRIVATE_KEY_LEN} bytes, got {len(private_key)}", where
            )
        return cls.from_private_key(kind, private_key)

    @classmethod
    def import_text(cls, text: str, where: str | None = None) -> Key:
        """A key from ``lotus wallet export`` output (hex) or from the KeyInfo JSON itself."""
        stripped = text.strip()
        if not stripped.startswith("{"):
            try:
                stripped = bytes.fromhex(stripped).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise KeyInfoError("key file is neither hex nor JSON", where) from None
        try:
            info = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise KeyInfoError(f"key info is not valid JSON: {exc.msg}", where) from None
        return cls.from_key_info(info, where)

    @classmethod
    def load(cls, path: str | Path) -> Key:
        """Read a Lotus key file (hex KeyInfo, or KeyInfo JSON)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise KeyInfoError("key file is not ASCII text", str(path)) from None
        return cls.import_text(text, str(path))

    def save(self, path: str | Path) -> None:
        """Write this key as Lotus writes key files (hex KeyInfo), readable by the owner only."""
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(self.export_hex())

    def __repr__(self) -> str:
        return f"Key({self.kind.value}, {self.address})"
