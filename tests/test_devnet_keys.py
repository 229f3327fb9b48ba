"""Devnet wallet keys: addresses, signatures and Lotus's key file format.

Known answers: Lotus-serialised (little-endian) BLS private keys with their addresses from
filecoin-project ``serialization-vectors`` ``message_signing.json``; the secp256k1 wallet key,
message and signature Zondax's ``signed_message.json`` records (also in ``test_crypto.py``); the
KeyInfo JSON layout of Lotus ``cli/wallet_test.go`` (Go's ``json.Marshal`` of ``KeyInfo``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsync.chain_types import BlockHeader, ElectionProof, Ticket
from fvm.address import Address
from fvm.crypto.signature_verify import verify_signature
from fvm.message import Message
from fvm.signature import SignatureType
from node.devnet.keys import Key, KeyInfoError, KeyType
from store.cid import CID

LOTUS_BLS_KEYS = [
    (
        "pyBOAP9camcZANKedHE+oaqPgtsOd/qBvOAO1YfvLVY=",
        "t3sogjuub37grt2tuvvlxbiamthwxenf2dwgq6sn7gpj72c5omg7gojjplsdsovgq6g3aagwerkght3e7boqfq",
    ),
    (
        "up1tp2I6oAPrSyiAW1chA9Uo32DiPy+nDb5Sl7BXmT0=",
        "t3unbjghaftrz676njfgakmfwvirbu5kxpafb57ex2s4sd7p2e5un2mru5fn3l2hnahcqsxtvwxy5j2cdtlaaa",
    ),
]
WALLET_SECP_PRIVATE_KEY = "8VcW07ADswS4BV2cxi5rnIadVsyTDDhY1NfDH19T8Uo="
WALLET_SECP_ADDRESS = "t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba"
WALLET_SECP_SIGNATURE = base64.b64decode(
    "nFuTI7MxEXqTQ0QmmQTmqbUsNZfHFXlNjz+susVDkAk1SrRCdJKxlVZZrM4vUtVBSYgtMIeigNfpqdKGIFhoWQA="
)


def wallet_message() -> Message:
    return Message(
        to=Address.parse("t17uoq6tp427uzv7fztkbsnn64iwotfrristwpryy"),
        from_=Address.parse(WALLET_SECP_ADDRESS),
        sequence=1,
        value=100000,
        gas_limit=25000,
        gas_fee_cap=1,
        gas_premium=1,
    )


@pytest.mark.parametrize(("private_key", "address"), LOTUS_BLS_KEYS)
def test_lotus_bls_key_info_gives_the_lotus_address(private_key: str, address: str) -> None:
    key = Key.from_key_info({"Type": "bls", "PrivateKey": private_key})
    assert key.kind is KeyType.BLS
    assert key.address == Address.parse(address)


def test_secp_wallet_key_gives_its_address_and_signs_the_message_cid_as_lotus() -> None:
    key = Key.from_key_info({"Type": "secp256k1", "PrivateKey": WALLET_SECP_PRIVATE_KEY})
    assert key.address == Address.parse(WALLET_SECP_ADDRESS)
    signed = key.sign_message(wallet_message())
    assert signed.signature.sig_type is SignatureType.SECP256K1
    assert signed.signature.data == WALLET_SECP_SIGNATURE


def test_bls_message_signature_verifies_over_the_message_cid() -> None:
    key = Key.from_key_info({"Type": "bls", "PrivateKey": LOTUS_BLS_KEYS[0][0]})
    message = Message(to=Address.new_id(1000), from_=key.address, gas_limit=1)
    signed = key.sign_message(message)
    assert signed.signature.sig_type is SignatureType.BLS
    assert verify_signature(signed.signature, key.address, message.cid().to_bytes())
    assert signed.cid() == message.cid()


def test_signing_a_message_from_another_sender_is_refused() -> None:
    key = Key.generate(KeyType.SECP256K1, b"one")
    with pytest.raises(ValueError, match="not from this key"):
        key.sign_message(wallet_message())


def test_block_signature_covers_the_signing_bytes() -> None:
    key = Key.generate(KeyType.BLS, b"worker")
    cid = CID.hash_of(b"\x80")
    header = BlockHeader(
        miner=Address.new_id(1000),
        ticket=Ticket(bytes(32)),
        election_proof=ElectionProof(1, bytes(96)),
        parents=(cid,),
        parent_weight=0,
        height=1,
        parent_state_root=cid,
        parent_message_receipts=cid,
        messages=cid,
        bls_aggregate=None,
        timestamp=1,
        block_sig=None,
        parent_base_fee=100,
    )
    signed = key.sign_block(header)
    assert signed.block_sig is not None
    assert signed.signing_bytes() == header.signing_bytes()
    assert verify_signature(signed.block_sig, key.address, header.signing_bytes())


def test_export_is_the_hex_of_lotus_compact_key_info_json() -> None:
    private_key = bytes(range(1, 33))
    key = Key.from_private_key(KeyType.SECP256K1, private_key)
    expected = '{"Type":"secp256k1","PrivateKey":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}'
    assert bytes.fromhex(key.export_hex()).decode() == expected
    assert Key.import_text(key.export_hex()) == key
    assert Key.import_text(expected + "\n") == key


@pytest.mark.parametrize("kind", list(KeyType))
def test_key_file_round_trip_is_private_to_its_owner(kind: KeyType, tmp_path: Path) -> None:
    key = Key.generate(kind)
    path = tmp_path / "key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Key.load(path) == key
    info = json.loads(bytes.fromhex(path.read_text()))
    assert info["Type"] == kind.value


@pytest.mark.parametrize("kind", list(KeyType))
def test_seeded_generation_is_deterministic_and_seed_dependent(kind: KeyType) -> None:
    first = Key.generate(kind, b"seed")
    assert Key.generate(kind, b"seed") == first
    assert Key.generate(kind, b"other seed") != first
    assert Key.generate(kind) != Key.generate(kind)
    assert first.address.protocol.name == ("SECP256K1" if kind is KeyType.SECP256K1 else "BLS")


def test_repr_hides_the_private_key() -> None:
    key = Key.generate(KeyType.SECP256K1, b"secret")
    assert key.private_key.hex() not in repr(key)
    assert str(key.address) in repr(key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zz",
        "7b7d",  # {}
        '{"Type":"delegated","PrivateKey":"AQID"}',
        '{"Type":"bls","PrivateKey":"not base64!"}',
        '{"Type":"bls","PrivateKey":"AQID"}',
        '{"Type":"secp256k1","PrivateKey":"' + base64.b64encode(bytes(32)).decode() + '"}',
        '["bls"]',
    ],
)
def test_malformed_key_info_is_refused(text: str) -> None:
    with pytest.raises(KeyInfoError):
        Key.import_text(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=120), st.binary(max_size=80).map(bytes.hex)))
def test_import_of_arbitrary_text_raises_only_key_info_errors(text: str) -> None:
    with contextlib.suppress(KeyInfoError):
        Key.import_text(text)
