"""Addresses: byte, string and CBOR forms against ref-fvm's and go-address's published vectors."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.address import (
    BLS_PUB_LEN,
    BLS_ZERO_ADDRESS,
    MAX_SUBADDRESS_LEN,
    PAYLOAD_HASH_LEN,
    SECP_PUB_LEN,
    Address,
    AddressError,
    AddressErrorKind,
    Network,
    Protocol,
    current_network,
    decode_leb128_u64,
    encode_leb128,
    set_current_network,
)
from store.errors import MalformedInput

# ref-fvm shared/tests/address_test.rs (the same keys as go-address's address_test.go)
SECP_VECTORS = [
    (
        bytes([4, 148, 2, 250, 195, 126, 100, 50, 164, 22, 163, 160, 202, 84, 38, 181, 24, 90,
               179, 178, 79, 97, 52, 239, 162, 92, 228, 135, 200, 45, 46, 78, 19, 191, 69, 37,
               17, 224, 210, 36, 84, 33, 248, 97, 59, 193, 13, 114, 250, 33, 102, 102, 169, 108,
               59, 193, 57, 32, 211, 255, 35, 63, 208, 188, 5]),
        "f15ihq5ibzwki2b4ep2f46avlkrqzhpqgtga7pdrq",
    ),
    (
        bytes([4, 118, 135, 185, 16, 55, 155, 242, 140, 190, 58, 234, 103, 75, 18, 0, 12, 107,
               125, 186, 70, 255, 192, 95, 108, 148, 254, 42, 34, 187, 204, 38, 2, 255, 127, 92,
               118, 242, 28, 165, 93, 54, 149, 145, 82, 176, 225, 232, 135, 145, 124, 57, 53, 118,
               238, 240, 147, 246, 30, 189, 58, 208, 111, 127, 218]),
        "f12fiakbhe2gwd5cnmrenekasyn6v5tnaxaqizq6a",
    ),
    (
        bytes([4, 222, 253, 208, 16, 1, 239, 184, 110, 1, 222, 213, 206, 52, 248, 71, 167, 58,
               20, 129, 158, 230, 65, 188, 182, 11, 185, 41, 147, 89, 111, 5, 220, 45, 96, 95, 41,
               133, 248, 209, 37, 129, 45, 172, 65, 99, 163, 150, 52, 155, 35, 193, 28, 194, 255,
               53, 157, 229, 75, 226, 135, 234, 98, 49, 155]),
        "f1wbxhu3ypkuo6eyp6hjx6davuelxaxrvwb2kuwva",
    ),
    (
        bytes([4, 3, 237, 18, 200, 20, 182, 177, 13, 46, 224, 157, 149, 180, 104, 141, 178, 209,
               128, 208, 169, 163, 122, 107, 106, 125, 182, 61, 41, 129, 30, 233, 115, 4, 121,
               216, 239, 145, 57, 233, 18, 73, 202, 189, 57, 50, 145, 207, 229, 210, 119, 186,
               118, 222, 69, 227, 224, 133, 163, 118, 129, 191, 54, 69, 210]),
        "f1xtwapqc6nh4si2hcwpr3656iotzmlwumogqbuaa",
    ),
    (
        bytes([4, 247, 150, 129, 154, 142, 39, 22, 49, 175, 124, 24, 151, 151, 181, 69, 214, 2,
               37, 147, 97, 71, 230, 1, 14, 101, 98, 179, 206, 158, 254, 139, 16, 20, 65, 97, 169,
               30, 208, 180, 236, 137, 8, 0, 37, 63, 166, 252, 32, 172, 144, 251, 241, 251, 242,
               113, 48, 164, 236, 195, 228, 3, 183, 5, 118]),
        "f1xcbgdhkgkwht3hrrnui3jdopeejsoatkzmoltqy",
    ),
    (
        bytes([4, 66, 131, 43, 248, 124, 206, 158, 163, 69, 185, 3, 80, 222, 125, 52, 149, 133,
               156, 164, 73, 5, 156, 94, 136, 221, 231, 66, 133, 223, 251, 158, 192, 30, 186, 188,
               95, 200, 98, 104, 207, 234, 235, 167, 174, 5, 191, 184, 214, 142, 183, 90, 82, 104,
               120, 44, 248, 111, 200, 112, 43, 239, 138, 31, 224]),
        "f17uoq6tp427uzv7fztkbsnn64iwotfrristwpryy",
    ),
]  # fmt: skip

ACTOR_VECTORS = [
    (
        bytes([118, 18, 129, 144, 205, 240, 104, 209, 65, 128, 68, 172, 192, 62, 11, 103, 129,
               151, 13, 96]),
        "f24vg6ut43yw2h2jqydgbg2xq7x6f4kub3bg6as6i",
    ),
    (
        bytes([44, 175, 184, 226, 224, 107, 186, 152, 234, 101, 124, 92, 245, 244, 32, 35, 170,
               35, 232, 142]),
        "f25nml2cfbljvn4goqtclhifepvfnicv6g7mfmmvq",
    ),
    (
        bytes([2, 44, 158, 14, 162, 157, 143, 64, 197, 106, 190, 195, 92, 141, 88, 125, 160, 166,
               76, 24]),
        "f2nuqrg7vuysaue2pistjjnt3fadsdzvyuatqtfei",
    ),
    (
        bytes([223, 236, 3, 14, 32, 79, 15, 89, 216, 15, 29, 94, 233, 29, 253, 6, 109, 127, 99,
               189]),
        "f24dd4ox4c2vpf5vk5wkadgyyn6qtuvgcpxxon64a",
    ),
    (
        bytes([61, 58, 137, 232, 221, 171, 84, 120, 50, 113, 108, 109, 70, 140, 53, 96, 201, 244,
               127, 216]),
        "f2gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr23y",
    ),
]  # fmt: skip

BLS_VECTORS = [
    (
        bytes([173, 88, 223, 105, 110, 45, 78, 145, 234, 134, 200, 129, 233, 56, 186, 78, 168, 27,
               57, 94, 18, 121, 123, 132, 185, 207, 49, 75, 149, 70, 112, 94, 131, 156, 122, 153,
               214, 6, 178, 71, 221, 180, 249, 172, 122, 52, 20, 221]),
        "f3vvmn62lofvhjd2ugzca6sof2j2ubwok6cj4xxbfzz4yuxfkgobpihhd2thlanmsh3w2ptld2gqkn2jvlss4a",
    ),
    (
        bytes([179, 41, 79, 10, 46, 41, 224, 198, 110, 188, 35, 93, 47, 237, 202, 86, 151, 191,
               120, 74, 246, 5, 199, 90, 246, 8, 230, 166, 61, 92, 211, 142, 168, 92, 168, 152,
               158, 14, 253, 233, 24, 139, 56, 47, 147, 114, 70, 13]),
        "f3wmuu6crofhqmm3v4enos73okk2l366ck6yc4owxwbdtkmpk42ohkqxfitcpa57pjdcftql4tojda2poeruwa",
    ),
    (
        bytes([150, 161, 163, 228, 234, 122, 20, 212, 153, 133, 230, 97, 178, 36, 1, 212, 79, 237,
               64, 45, 29, 9, 37, 178, 67, 201, 35, 88, 156, 15, 188, 126, 50, 205, 4, 226, 158,
               215, 141, 21, 211, 125, 58, 170, 63, 230, 218, 51]),
        "f3s2q2hzhkpiknjgmf4zq3ejab2rh62qbndueslmsdzervrhapxr7dftie4kpnpdiv2n6tvkr743ndhrsw6d3a",
    ),
    (
        bytes([134, 180, 84, 37, 140, 88, 148, 117, 247, 209, 111, 90, 172, 1, 138, 121, 246, 193,
               22, 157, 32, 252, 51, 146, 29, 216, 181, 206, 28, 172, 108, 52, 143, 144, 163, 96,
               54, 36, 246, 174, 185, 27, 100, 81, 140, 46, 128, 149]),
        "f3q22fijmmlckhl56rn5nkyamkph3mcfu5ed6dheq53c244hfmnq2i7efdma3cj5voxenwiummf2ajlsbxc65a",
    ),
    (
        bytes([167, 114, 107, 3, 128, 34, 247, 90, 56, 70, 23, 88, 83, 96, 206, 230, 41, 7, 10,
               45, 157, 40, 113, 41, 101, 229, 242, 110, 204, 64, 133, 131, 130, 128, 55, 36, 237,
               52, 242, 114, 3, 54, 240, 157, 182, 49, 240, 116]),
        "f3u5zgwa4ael3vuocgc5mfgygo4yuqocrntuuhcklf4xzg5tcaqwbyfabxetwtj4tsam3pbhnwghyhijr5mixa",
    ),
]  # fmt: skip

DELEGATED_VECTORS = [
    (32, b"\xff" * 5, "f432f77777777x32lpna"),
    ((1 << 64) - 1, b"", "f418446744073709551615ftnkyfaq"),
    (
        (1 << 64) - 1,
        bytes(MAX_SUBADDRESS_LEN),
        "f418446744073709551615faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaafbbuagu",
    ),
]

ID_VECTORS = [
    (0, "f00"),
    (1, "f01"),
    (10, "f010"),
    (150, "f0150"),
    (499, "f0499"),
    (1024, "f01024"),
    (1729, "f01729"),
    (999999, "f0999999"),
    ((1 << 64) - 1, "f018446744073709551615"),
]

# ref-fvm cbor_encoding: the full DAG-CBOR bytes (byte-string header + byte form)
CBOR_VECTORS = [
    ("f00", bytes([66, 0, 0])),
    ("f01", bytes([66, 0, 1])),
    ("f010", bytes([66, 0, 10])),
    ("f0150", bytes([67, 0, 150, 1])),
    ("f0499", bytes([67, 0, 243, 3])),
    ("f01024", bytes([67, 0, 128, 8])),
    ("f01729", bytes([67, 0, 193, 13])),
    ("f0999999", bytes([68, 0, 191, 132, 61])),
    (
        "f15ihq5ibzwki2b4ep2f46avlkrqzhpqgtga7pdrq",
        bytes([85, 1, 234, 15, 14, 160, 57, 178, 145, 160, 240, 143, 209, 121, 224, 85, 106, 140,
               50, 119, 192, 211]),
    ),
    (
        "f12fiakbhe2gwd5cnmrenekasyn6v5tnaxaqizq6a",
        bytes([85, 1, 209, 80, 5, 4, 228, 209, 172, 62, 137, 172, 137, 26, 69, 2, 88, 111, 171,
               217, 180, 23]),
    ),
    (
        "f24vg6ut43yw2h2jqydgbg2xq7x6f4kub3bg6as6i",
        bytes([85, 2, 229, 77, 234, 79, 155, 197, 180, 125, 38, 24, 25, 130, 109, 94, 31, 191,
               139, 197, 80, 59]),
    ),
    (
        "f2gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr23y",
        bytes([85, 2, 49, 107, 76, 31, 245, 212, 175, 183, 130, 108, 234, 181, 187, 15, 44, 62,
               15, 54, 64, 83]),
    ),
    (
        "f3vvmn62lofvhjd2ugzca6sof2j2ubwok6cj4xxbfzz4yuxfkgobpihhd2thlanmsh3w2ptld2gqkn2jvlss4a",
        bytes([88, 49, 3, 173, 88, 223, 105, 110, 45, 78, 145, 234, 134, 200, 129, 233, 56, 186,
               78, 168, 27, 57, 94, 18, 121, 123, 132, 185, 207, 49, 75, 149, 70, 112, 94, 131,
               156, 122, 153, 214, 6, 178, 71, 221, 180, 249, 172, 122, 52, 20, 221]),
    ),
]  # fmt: skip


@pytest.fixture
def testnet() -> Iterator[None]:
    previous = current_network()
    set_current_network(Network.TESTNET)
    try:
        yield
    finally:
        set_current_network(previous)


def _assert_round_trips(addr: Address, protocol: Protocol, expected: str) -> None:
    assert str(addr) == expected
    parsed = Address.parse(expected)
    assert parsed == addr
    assert parsed.protocol is protocol
    assert parsed.payload == addr.payload
    assert Address.from_bytes(parsed.to_bytes()) == parsed


@pytest.mark.parametrize(("pubkey", "expected"), SECP_VECTORS)
def test_secp256k1_address_from_pubkey_matches_reference_string(
    pubkey: bytes, expected: str
) -> None:
    _assert_round_trips(Address.new_secp256k1(pubkey), Protocol.SECP256K1, expected)


@pytest.mark.parametrize(("data", "expected"), ACTOR_VECTORS)
def test_actor_address_from_data_matches_reference_string(data: bytes, expected: str) -> None:
    _assert_round_trips(Address.new_actor(data), Protocol.ACTOR, expected)


@pytest.mark.parametrize(("pubkey", "expected"), BLS_VECTORS)
def test_bls_address_from_pubkey_matches_reference_string(pubkey: bytes, expected: str) -> None:
    addr = Address.new_bls(pubkey)
    _assert_round_trips(addr, Protocol.BLS, expected)
    assert addr.payload == pubkey


@pytest.mark.parametrize(("namespace", "subaddress", "expected"), DELEGATED_VECTORS)
def test_delegated_address_matches_reference_string(
    namespace: int, subaddress: bytes, expected: str
) -> None:
    addr = Address.new_delegated(namespace, subaddress)
    _assert_round_trips(addr, Protocol.DELEGATED, expected)
    assert addr.namespace == namespace
    assert addr.subaddress == subaddress


@pytest.mark.parametrize(("actor_id", "expected"), ID_VECTORS)
def test_id_address_matches_reference_string(actor_id: int, expected: str) -> None:
    addr = Address.new_id(actor_id)
    _assert_round_trips(addr, Protocol.ID, expected)
    assert addr.id == actor_id


@pytest.mark.parametrize(("text", "encoded"), CBOR_VECTORS)
def test_address_dag_cbor_matches_reference_bytes(text: str, encoded: bytes) -> None:
    addr = Address.parse(text)
    assert addr.encode() == encoded
    assert Address.decode(encoded) == addr


def test_testnet_prefix_is_written_when_testnet_is_current(testnet: None) -> None:
    assert str(Address.new_id(1024)) == "t01024"
    assert str(Address.new_actor(ACTOR_VECTORS[0][0])) == (
        "t24vg6ut43yw2h2jqydgbg2xq7x6f4kub3bg6as6i"
    )
    assert Address.new_id(5).to_string(Network.MAINNET) == "f05"


def test_parse_with_network_requires_the_named_prefix() -> None:
    assert Address.parse("t01", Network.TESTNET) == Address.new_id(1)
    assert Address.parse_with_network("t01") == (Address.new_id(1), Network.TESTNET)
    with pytest.raises(AddressError) as err:
        Address.parse("t01", Network.MAINNET)
    assert err.value.kind is AddressErrorKind.UNKNOWN_NETWORK


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Q2gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr23y", AddressErrorKind.UNKNOWN_NETWORK),
        ("f5gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr23y", AddressErrorKind.UNKNOWN_PROTOCOL),
        ("f2gfvuyh7v2sx3patm5k23wdzmhyhtmqctasbr24y", AddressErrorKind.INVALID_CHECKSUM),
        ("f0banananananannnnnnnnn", AddressErrorKind.INVALID_LENGTH),
        ("f0banananananannnnnnnn", AddressErrorKind.INVALID_PAYLOAD),
        ("f2gfvuyh7v2sx3patm1k23wdzmhyhtmqctasbr24y", AddressErrorKind.BASE32_DECODING),
        ("f2gfvuyh7v2sx3paTm1k23wdzmhyhtmqctasbr24y", AddressErrorKind.BASE32_DECODING),
        ("f2", AddressErrorKind.INVALID_LENGTH),
        ("f1mzxqu", AddressErrorKind.INVALID_LENGTH),
        ("f018446744073709551616", AddressErrorKind.INVALID_PAYLOAD),
        ("f0-1", AddressErrorKind.INVALID_PAYLOAD),
        ("f0+", AddressErrorKind.INVALID_PAYLOAD),
        ("f4" + "1" * 21 + "faaaa", AddressErrorKind.INVALID_LENGTH),
        ("f410", AddressErrorKind.INVALID_PAYLOAD),
        ("f" + "a" * 138, AddressErrorKind.INVALID_LENGTH),
        ("fömk3zcefvlgpay4f32c5vmruk5gqig6dumc7pz6q", AddressErrorKind.UNKNOWN_PROTOCOL),
        ("ö", AddressErrorKind.INVALID_LENGTH),
    ],
)
def test_invalid_address_strings_fail_with_the_reference_error(
    text: str, kind: AddressErrorKind
) -> None:
    with pytest.raises(AddressError) as err:
        Address.parse(text)
    assert err.value.kind is kind
    assert err.value.where == text
    assert isinstance(err.value, MalformedInput)


def test_base32_error_names_the_offending_position() -> None:
    with pytest.raises(AddressError, match="position 16"):
        Address.parse("f2gfvuyh7v2sx3patm1k23wdzmhyhtmqctasbr24y")


def test_base32_with_nonzero_trailing_bits_is_rejected() -> None:
    good = "f24vg6ut43yw2h2jqydgbg2xq7x6f4kub3bg6as6i"
    # 24 bytes in 39 symbols leave 3 unused bits in the last symbol: 'i' has them clear.
    with pytest.raises(AddressError) as err:
        Address.parse(good[:-1] + "j")
    assert err.value.kind is AddressErrorKind.BASE32_DECODING


def test_leading_plus_and_zeros_in_id_strings_parse_as_rust_does() -> None:
    assert Address.parse("f0+7") == Address.new_id(7)
    assert Address.parse("f0007") == Address.new_id(7)
    assert str(Address.parse("f0007")) == "f07"


def _padded(protocol: int, size: int) -> bytes:
    return bytes([protocol]) + bytes(size)


@pytest.mark.parametrize(
    ("raw", "kind", "detail"),
    [
        (bytes([5, 4, 4]), AddressErrorKind.UNKNOWN_PROTOCOL, "protocol byte 5"),
        (bytes([0]), AddressErrorKind.INVALID_LENGTH, "1 bytes"),
        (b"", AddressErrorKind.INVALID_LENGTH, "0 bytes"),
        (_padded(1, PAYLOAD_HASH_LEN + 1), AddressErrorKind.INVALID_PAYLOAD_LENGTH, "got 21"),
        (_padded(1, PAYLOAD_HASH_LEN - 1), AddressErrorKind.INVALID_PAYLOAD_LENGTH, "got 19"),
        (_padded(2, PAYLOAD_HASH_LEN + 1), AddressErrorKind.INVALID_PAYLOAD_LENGTH, "got 21"),
        (_padded(2, PAYLOAD_HASH_LEN - 1), AddressErrorKind.INVALID_PAYLOAD_LENGTH, "got 19"),
        (_padded(3, BLS_PUB_LEN + 1), AddressErrorKind.INVALID_PAYLOAD_LENGTH, "got 49"),
        (_padded(3, BLS_PUB_LEN - 1), AddressErrorKind.INVALID_PAYLOAD_LENGTH, "got 47"),
        (
            bytes([4, 0]) + b"\xff" * (MAX_SUBADDRESS_LEN + 1),
            AddressErrorKind.INVALID_PAYLOAD_LENGTH,
            "55 bytes",
        ),
        (bytes([4, 0xFF]), AddressErrorKind.INVALID_PAYLOAD, "truncated"),
        # ref-fvm's leb128 tests: trailing bytes and non-minimal encodings
        (bytes([0, 67, 0, 1, 2]), AddressErrorKind.INVALID_PAYLOAD, "after the ID"),
        (bytes([0, 67, 0, 130, 0]), AddressErrorKind.INVALID_PAYLOAD, "after the ID"),
        (bytes([0, 0x81, 0x00]), AddressErrorKind.INVALID_PAYLOAD, "minimally"),
        (bytes([0]) + b"\xff" * 10, AddressErrorKind.INVALID_PAYLOAD, "longer than 10"),
    ],
)
def test_invalid_address_bytes_fail_with_the_reference_error(
    raw: bytes, kind: AddressErrorKind, detail: str
) -> None:
    with pytest.raises(AddressError, match=detail) as err:
        Address.from_bytes(raw)
    assert err.value.kind is kind


def test_id_varint_of_ten_bytes_drops_bits_beyond_64_like_unsigned_varint() -> None:
    canonical_max = bytes([0]) + b"\xff" * 9 + b"\x01"
    assert Address.from_bytes(canonical_max).id == (1 << 64) - 1
    overflowing = bytes([0]) + b"\xff" * 9 + b"\x7f"
    addr = Address.from_bytes(overflowing)
    assert addr.id == (1 << 64) - 1
    assert addr.to_bytes() == canonical_max
    assert not addr.lotus_accepts()
    assert Address.new_id((1 << 63) - 1).lotus_accepts()


def test_key_length_validation_matches_reference() -> None:
    with pytest.raises(AddressError) as err:
        Address.new_bls(bytes(BLS_PUB_LEN - 1))
    assert err.value.kind is AddressErrorKind.INVALID_BLS_LENGTH
    with pytest.raises(AddressError) as err:
        Address.new_secp256k1(bytes(SECP_PUB_LEN + 1))
    assert err.value.kind is AddressErrorKind.INVALID_SECP_LENGTH
    assert Address.new_bls(bytes(BLS_PUB_LEN)).protocol is Protocol.BLS


def test_secp_and_actor_addresses_of_the_same_data_differ() -> None:
    data = bytes(SECP_PUB_LEN)
    secp = Address.new_secp256k1(data)
    assert Address.from_bytes(secp.to_bytes()) == secp
    assert secp != Address.new_actor(data)
    assert secp.payload == Address.new_actor(data).payload


def test_id_of_a_non_id_address_is_an_error() -> None:
    with pytest.raises(AddressError) as err:
        _ = Address.new_actor(b"x").id
    assert err.value.kind is AddressErrorKind.NON_ID_ADDRESS


def test_bls_zero_address_is_recognised() -> None:
    assert BLS_ZERO_ADDRESS.is_bls_zero_address()
    assert BLS_ZERO_ADDRESS.payload[0] == 0xC0
    assert not Address.new_bls(bytes(BLS_PUB_LEN)).is_bls_zero_address()


def test_cbor_value_must_be_a_byte_string() -> None:
    with pytest.raises(AddressError):
        Address.from_cbor("f01")
    with pytest.raises(AddressError):
        Address.decode(bytes([0x62]) + b"\x00\x01")


def test_addresses_order_as_rust_derives_it() -> None:
    ordered = [
        Address.new_id(2),
        Address.new_id(300),
        Address.new_actor(b"a"),
        Address.new_delegated(10, b"\xff"),
        Address.new_delegated(10, b"\x00\x00"),
        Address.new_delegated(300, b""),
    ]
    assert sorted(reversed(ordered)) == ordered


def test_addresses_are_hashable_immutable_and_picklable() -> None:
    addr = Address.parse(SECP_VECTORS[0][1])
    table = {addr: 1, Address.new_id(1): 2}
    assert table[Address.parse(SECP_VECTORS[0][1])] == 1
    with pytest.raises(AttributeError):
        addr.protocol = Protocol.ID
    assert pickle.loads(pickle.dumps(addr)) == addr


_any_address = st.one_of(
    st.integers(0, (1 << 64) - 1).map(Address.new_id),
    st.binary(min_size=SECP_PUB_LEN, max_size=SECP_PUB_LEN).map(Address.new_secp256k1),
    st.binary(max_size=64).map(Address.new_actor),
    st.binary(min_size=BLS_PUB_LEN, max_size=BLS_PUB_LEN).map(Address.new_bls),
    st.builds(
        Address.new_delegated,
        st.integers(0, (1 << 64) - 1),
        st.binary(max_size=MAX_SUBADDRESS_LEN),
    ),
)


@given(_any_address, st.sampled_from(Network))
def test_every_address_round_trips_through_bytes_string_and_cbor(
    addr: Address, network: Network
) -> None:
    assert Address.from_bytes(addr.to_bytes()) == addr
    assert Address.parse(addr.to_string(network), network) == addr
    assert Address.decode(addr.encode()) == addr


@given(st.integers(0, (1 << 64) - 1))
def test_leb128_round_trips_every_u64(value: int) -> None:
    encoded = encode_leb128(value)
    assert decode_leb128_u64(encoded, 0) == (value, len(encoded))


@given(st.binary(max_size=70))
def test_arbitrary_bytes_either_parse_or_raise_address_error(raw: bytes) -> None:
    try:
        addr = Address.from_bytes(raw)
    except AddressError:
        return
    assert Address.from_bytes(addr.to_bytes()) == addr
