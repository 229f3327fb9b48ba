"""Messages and signatures: real vector messages, Lotus's published CIDs, validity rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fvm.address import BLS_ZERO_ADDRESS, Address, Protocol
from fvm.conformance.vector import find_vectors, load_vector
from fvm.message import (
    BLOCK_GAS_LIMIT,
    LOTUS_MAX_BYTE_ARRAY,
    Message,
    MessageError,
    SignedMessage,
    address_valid_for_network_version,
)
from fvm.signature import (
    SIGNATURE_MAX_LENGTH,
    Signature,
    SignatureError,
    SignatureType,
)
from fvm.token import TOTAL_FILECOIN
from store import dag_cbor
from store.cid import CID
from store.errors import MalformedInput

# Lotus chain/types/message_test.go TestMessageJson / TestSignedMessageJson
LOTUS_MESSAGE = Message(
    to=Address.new_id(4),
    from_=Address.new_id(0),
    sequence=34,
    value=0,
    gas_limit=123,
    gas_fee_cap=234,
    gas_premium=234,
    method_num=6,
    params=b"hai",
)
LOTUS_MESSAGE_CID = "bafy2bzaced5rdpz57e64sc7mdwjn3blicglhpialnrph2dlbufhf6iha63dmc"
LOTUS_SIGNED_WITH_EMPTY_SIGNATURE_CID = (
    "bafy2bzacea5ainifngxj3rygaw2hppnyz2cw72x5pysqty2x6dxmjs5qg2uus"
)


def _recorded_message_cid(raw: dict[str, object]) -> str:
    meta = raw["_meta"]
    assert isinstance(meta, dict)
    sources = [g["source"] for g in meta["gen"] if g["source"].startswith("message:")]
    assert len(sources) == 1
    return str(sources[0]).removeprefix("message:")


def test_every_vector_message_decodes_re_encodes_and_has_the_recorded_cid(
    vectors_dir: Path,
) -> None:
    decoded = 0
    senders: set[Protocol] = set()
    for path in find_vectors(vectors_dir):
        vector = load_vector(path)
        for applied in vector.messages:
            message = Message.decode(applied.data, str(path))
            assert message.encode() == applied.data
            assert Message.from_cbor(message.to_cbor()) == message
            assert str(message.cid()) == _recorded_message_cid(vector.raw)
            assert message.chain_length() == len(applied.data)
            message.check()
            message.valid_for_block_inclusion(0, vector.variants[0].network_version)
            senders.add(message.from_.protocol)
            decoded += 1
    assert decoded == 309
    assert senders == {Protocol.BLS, Protocol.SECP256K1}


def test_first_shark_vector_message_fields() -> None:
    # ext-0001-fil_9_account-Send-Ok-1, the first shark vector
    message = Message.decode(
        bytes.fromhex(
            "8a0042006358310396957756e5ea5f5a65744a1f85db0025ee32eaa9502580e653dbb27340882d68c000"
            "9be196934851d31aabf3ef239bc21a000342af401a00040d1745006263de554500046faf670040"
        )
    )
    assert message.to == Address.new_id(99)
    assert str(message.from_) == (
        "f3s2kxovxf5jpvuzlujipylwyaexxdf2vjkasybzst3ozhgqeifvumaae34gljgscr2mnkx47peon4ebixmsya"
    )
    assert message.sequence == 213679
    assert message.gas_limit == 265495
    assert message.gas_fee_cap == 1650712149
    assert message.gas_premium == 74428263
    assert (message.value, message.method_num, message.params) == (0, 0, b"")


def test_message_cid_matches_lotus() -> None:
    assert str(LOTUS_MESSAGE.cid()) == LOTUS_MESSAGE_CID
    assert LOTUS_MESSAGE.nonce == 34


def test_signed_message_layout_matches_lotus_cid() -> None:
    # Lotus signs with a zero-value signature (type byte 0), which it encodes but never decodes.
    encoded = dag_cbor.encode([LOTUS_MESSAGE.to_cbor(), b"\x00"])
    assert str(CID.hash_of(encoded)) == LOTUS_SIGNED_WITH_EMPTY_SIGNATURE_CID
    with pytest.raises(SignatureError, match="invalid signature type byte 0"):
        SignedMessage.decode(encoded)


def test_bls_signed_message_cid_is_the_unsigned_message_cid() -> None:
    signed = SignedMessage(LOTUS_MESSAGE, Signature.new_bls(bytes(range(96))))
    assert signed.cid() == LOTUS_MESSAGE.cid()
    assert signed.chain_length() == LOTUS_MESSAGE.chain_length()
    assert SignedMessage.decode(signed.encode()) == signed


@pytest.mark.parametrize("sig_type", [SignatureType.SECP256K1, SignatureType.DELEGATED])
def test_other_signed_message_cids_cover_the_signature(sig_type: SignatureType) -> None:
    signed = SignedMessage(LOTUS_MESSAGE, Signature(sig_type, bytes(65)))
    encoded = signed.encode()
    assert encoded == dag_cbor.encode([LOTUS_MESSAGE.to_cbor(), bytes([sig_type]) + bytes(65)])
    assert signed.cid() == CID.hash_of(encoded)
    assert signed.cid() != LOTUS_MESSAGE.cid()
    assert signed.chain_length() == len(encoded)
    assert SignedMessage.decode(encoded) == signed


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ([0] * 9, "array of 10 fields"),
        ({"a": 1}, "array of 10 fields"),
    ],
)
def test_message_that_is_not_a_10_array_is_rejected(fields: object, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        Message.from_cbor(fields, "test")


def _fields(**changes: object) -> list[object]:
    fields = LOTUS_MESSAGE.to_cbor()
    names = ["version", "to", "from", "sequence", "value", "gas_limit", "fee_cap", "premium",
             "method", "params"]  # fmt: skip
    for name, value in changes.items():
        fields[names.index(name)] = value
    return fields


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"version": -1}, "version must be an unsigned"),
        ({"sequence": 1 << 64}, "sequence must be an unsigned"),
        ({"sequence": True}, "sequence must be an unsigned"),
        ({"method": "6"}, "method number must be an unsigned"),
        ({"gas_limit": 1 << 64}, "gas limit must be a 64-bit"),
        ({"params": "hai"}, "params must be a byte string"),
        ({"to": b"\x00"}, "too short"),
        ({"from": "f00"}, "byte string"),
        ({"value": b"\x02\x01"}, "sign byte"),
    ],
)
def test_message_with_a_malformed_field_is_rejected(changes: dict[str, object], error: str) -> None:
    with pytest.raises(MalformedInput, match=error) as err:
        Message.from_cbor(_fields(**changes), "msg")
    assert err.value.where == "msg"


def test_negative_gas_limit_decodes_and_fails_check_as_in_fvm_v2() -> None:
    message = Message.decode(dag_cbor.encode(_fields(gas_limit=-5)))
    assert message.gas_limit == -5
    with pytest.raises(MessageError, match="negative gas limit"):
        message.check()


@pytest.mark.parametrize(
    ("gas_limit", "error"),
    [(0, "no gas limit set"), ((1 << 63), "gas exceeds i64 max")],
)
def test_check_applies_the_reference_gas_limit_rules(gas_limit: int, error: str) -> None:
    with pytest.raises(MessageError, match=error):
        replace(LOTUS_MESSAGE, gas_limit=gas_limit).check()


@pytest.mark.parametrize(
    ("changes", "network_version", "error"),
    [
        ({"version": 1}, 17, "'Version' unsupported"),
        ({"to": BLS_ZERO_ADDRESS}, 7, "invalid 'To' address"),
        ({"to": Address.new_delegated(10, b"\x01" * 20)}, 17, "'To' address protocol"),
        ({"from_": Address.new_delegated(10, b"\x01" * 20)}, 17, "'From' address protocol"),
        ({"from_": Address.new_id(1 << 63)}, 18, "'From' address ID does not fit"),
        ({"value": -1}, 17, "'Value' field cannot be negative"),
        ({"value": TOTAL_FILECOIN + 1}, 17, "greater than total filecoin supply"),
        ({"gas_fee_cap": -1, "gas_premium": -2}, 17, "'GasFeeCap' field cannot be negative"),
        ({"gas_premium": -1}, 17, "'GasPremium' field cannot be negative"),
        ({"gas_premium": 235}, 17, "'GasFeeCap' less than 'GasPremium'"),
        ({"gas_limit": BLOCK_GAS_LIMIT + 1}, 17, "greater than a block's gas limit"),
        ({"gas_limit": 0}, 17, "must be positive"),
        ({"gas_limit": 99}, 17, "cannot be less than the cost of storing"),
        ({"params": bytes(LOTUS_MAX_BYTE_ARRAY + 1)}, 17, "too large for Lotus"),
    ],
)
def test_block_inclusion_rules_match_lotus(
    changes: dict[str, Any], network_version: int, error: str
) -> None:
    with pytest.raises(MessageError, match=error):
        replace(LOTUS_MESSAGE, **changes).valid_for_block_inclusion(100, network_version)


def test_block_inclusion_accepts_valid_messages_and_f4_from_nv18() -> None:
    LOTUS_MESSAGE.valid_for_block_inclusion(123, 17)
    replace(LOTUS_MESSAGE, to=BLS_ZERO_ADDRESS).valid_for_block_inclusion(0, 6)
    delegated = Address.new_delegated(10, b"\x01" * 20)
    replace(LOTUS_MESSAGE, to=delegated).valid_for_block_inclusion(0, 18)
    assert not address_valid_for_network_version(delegated, 17)
    assert address_valid_for_network_version(delegated, 18)


# Lotus chain/types/message_test.go TestEffectiveGasPremium
@pytest.mark.parametrize(
    ("base_fee", "fee_cap", "premium", "expected"),
    [
        (8, 8, 8, 0),
        (8, 16, 7, 7),
        (8, 19, 10, 10),
        (123456, 123455, 123455, 0),
        (123456, 1234567, 1111112, 1111111),
    ],
)
def test_effective_gas_premium_matches_lotus(
    base_fee: int, fee_cap: int, premium: int, expected: int
) -> None:
    message = replace(LOTUS_MESSAGE, gas_fee_cap=fee_cap, gas_premium=premium)
    assert message.effective_gas_premium(base_fee) == expected


def test_required_funds_is_fee_cap_times_gas_limit() -> None:
    assert LOTUS_MESSAGE.required_funds() == 234 * 123


def test_messages_compare_by_fields_and_cache_their_encoding() -> None:
    copy = Message.decode(LOTUS_MESSAGE.encode())
    assert copy == LOTUS_MESSAGE
    assert hash(copy) == hash(LOTUS_MESSAGE)
    assert replace(copy, sequence=35).cid() != LOTUS_MESSAGE.cid()


def test_signature_bytes_are_type_byte_then_data() -> None:
    signature = Signature.new_secp256k1(b"\x07" * 65)
    assert signature.to_bytes() == b"\x01" + b"\x07" * 65
    assert Signature.from_bytes(signature.to_bytes()) == signature
    assert Signature.decode(signature.encode()) == signature
    # Lotus chain/types/signature_test.go
    bls = Signature.new_bls(b"foo bar cat dog")
    assert Signature.decode(bls.encode()) == bls
    assert Signature.new_delegated(b"x").to_bytes() == b"\x03x"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "empty"),
        (b"\x04abc", "invalid signature type byte 4"),
        (b"\x01" + bytes(SIGNATURE_MAX_LENGTH), "exceeds 200"),
    ],
)
def test_malformed_signatures_are_rejected_as_lotus_does(raw: bytes, error: str) -> None:
    with pytest.raises(SignatureError, match=error):
        Signature.from_bytes(raw)


def test_signature_cbor_must_be_a_byte_string() -> None:
    with pytest.raises(SignatureError, match="byte string"):
        Signature.from_cbor([1, b""])
    assert Signature.from_bytes(b"\x02" + bytes(SIGNATURE_MAX_LENGTH - 1)).sig_type is (
        SignatureType.BLS
    )
