"""DAG-CBOR: every real block re-encodes to its exact bytes, output is canonical, and each
non-canonical or non-DAG-CBOR form is rejected with a typed error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.conformance.vector import find_vectors, load_vector
from store import dag_cbor
from store.car import CarReader, read_car
from store.cid import BLAKE2B_256, CID, DAG_CBOR, IDENTITY, RAW, SHA2_256
from store.dag_cbor import WireMap
from store.errors import CBORError, NonCanonicalCBOR

GENESIS_CID = CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2")
GENESIS_PARENT_CID = CID.parse("bafyreiaqpwbbyjo4a42saasj36kkrpv4tsherf2e7bvezkert2a7dhonoi")


def _genesis_blocks(path: Path) -> dict[CID, bytes]:
    header, blocks = read_car(path)
    assert header.roots == (GENESIS_CID,)
    return dict(blocks)


# -- the real corpus ------------------------------------------------------------------------


@pytest.mark.slow
def test_every_dag_cbor_block_in_the_vector_cars_reencodes_to_identical_bytes(
    vectors_dir: Path,
) -> None:
    paths = list(find_vectors(vectors_dir / "extracted"))
    assert len(paths) == 309
    total = 0
    unique: dict[CID, bytes] = {}
    for path in paths:
        vector = load_vector(path)
        for cid, data in CarReader.from_bytes(vector.car, source=str(path)):
            total += 1
            assert cid.codec == DAG_CBOR
            unique.setdefault(cid, data)
    assert total == 34528
    assert len(unique) == 27900
    for cid, data in unique.items():
        assert dag_cbor.encode(dag_cbor.decode(data, str(cid))) == data, cid


def test_every_dag_cbor_block_in_mainnet_genesis_reencodes_to_identical_bytes(
    mainnet_genesis: Path,
) -> None:
    blocks = _genesis_blocks(mainnet_genesis)
    assert len(blocks) == 1222
    dag_cbor_blocks = {cid: data for cid, data in blocks.items() if cid.codec == DAG_CBOR}
    assert len(dag_cbor_blocks) == 1212
    assert {cid.mh_code for cid in dag_cbor_blocks} == {BLAKE2B_256, SHA2_256}
    for cid, data in dag_cbor_blocks.items():
        assert dag_cbor.encode(dag_cbor.decode(data, str(cid))) == data, cid
    others = {(cid.codec, cid.mh_code) for cid in blocks if cid.codec != DAG_CBOR}
    assert others == {(RAW, IDENTITY)}


def test_mainnet_genesis_block_reencodes_identically_and_hashes_to_its_cid(
    mainnet_genesis: Path,
) -> None:
    data = _genesis_blocks(mainnet_genesis)[GENESIS_CID]
    header = dag_cbor.decode(data, "genesis")
    assert isinstance(header, list)
    assert len(header) == 16
    assert header[5] == [GENESIS_PARENT_CID]
    assert header[7] == 0  # height
    assert header[12] == 1598306400  # timestamp: 2020-08-24 22:00 UTC
    assert all(isinstance(header[i], CID) for i in (8, 9, 10))
    encoded = dag_cbor.encode(header)
    assert encoded == data
    assert CID.hash_of(encoded) == GENESIS_CID
    assert str(CID.hash_of(encoded)) == (
        "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"
    )


def test_genesis_parent_block_keeps_its_non_canonical_key_order(mainnet_genesis: Path) -> None:
    data = _genesis_blocks(mainnet_genesis)[GENESIS_PARENT_CID]
    value = dag_cbor.decode(data, str(GENESIS_PARENT_CID))
    assert isinstance(value, WireMap)
    wire_order = ["Datetime", "Network", "Token", "TokenAmounts", "Message"]
    assert list(value) == wire_order
    assert value["Network"] == "Filecoin"
    assert list(value["TokenAmounts"]) == ["TotalSupply", "Miners", "ProtocolLabs"]
    assert dag_cbor.encode(value) == data
    assert CID.hash_of(dag_cbor.encode(value), DAG_CBOR, SHA2_256) == GENESIS_PARENT_CID
    # The same map built in Python is written in canonical order, so it differs.
    as_plain = _plain(value)
    canonical = dag_cbor.encode(as_plain)
    assert canonical != data
    assert list(dag_cbor.decode(canonical)) == [
        "Token", "Message", "Network", "Datetime", "TokenAmounts",
    ]
    assert dag_cbor.decode(canonical) == value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- canonical output -----------------------------------------------------------------------


def test_map_keys_are_written_length_first_then_bytewise() -> None:
    encoded = dag_cbor.encode({"ccc": 3, "bb": 2, "b": 1, "a": 0, "ab": 4})
    assert encoded == bytes.fromhex("a5" "616100" "616201" "62616204" "62626202" "63636363" "03")


@pytest.mark.parametrize(
    ("value", "hex_bytes"),
    [
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (255, "18ff"),
        (256, "190100"),
        (65535, "19ffff"),
        (65536, "1a00010000"),
        (2**32 - 1, "1affffffff"),
        (2**32, "1b0000000100000000"),
        (2**64 - 1, "1bffffffffffffffff"),
        (-1, "20"),
        (-24, "37"),
        (-25, "3818"),
        (-257, "390100"),
        (-(2**64), "3bffffffffffffffff"),
    ],
)
def test_integers_use_the_shortest_head(value: int, hex_bytes: str) -> None:
    assert dag_cbor.encode(value).hex() == hex_bytes
    assert dag_cbor.decode(bytes.fromhex(hex_bytes)) == value


def test_scalars_strings_and_links_encode_as_dag_cbor() -> None:
    assert dag_cbor.encode(None) == b"\xf6"
    assert dag_cbor.encode(True) == b"\xf5"
    assert dag_cbor.encode(False) == b"\xf4"
    assert dag_cbor.encode(b"") == b"\x40"
    assert dag_cbor.encode(b"\x00" * 24) == b"\x58\x18" + b"\x00" * 24
    assert dag_cbor.encode("Filecoin") == b"\x68Filecoin"
    assert dag_cbor.encode([]) == b"\x80"
    assert dag_cbor.encode({}) == b"\xa0"
    assert dag_cbor.encode(GENESIS_CID) == b"\xd8\x2a\x58\x27\x00" + GENESIS_CID.to_bytes()
    assert dag_cbor.decode(b"\xd8\x2a\x58\x27\x00" + GENESIS_CID.to_bytes()) == GENESIS_CID


def test_links_lists_every_cid_in_encounter_order() -> None:
    a, b, c = (CID.hash_of(bytes([i])) for i in range(3))
    value = {"x": [a, {"y": b}], "z": c, "n": 5}
    assert dag_cbor.links(value) == [a, b, c]
    assert dag_cbor.links({"z": c, "x": [a, {"y": b}]}) == [c, a, b]
    assert dag_cbor.links(dag_cbor.decode(dag_cbor.encode({"z": c, "x": [a, {"y": b}]}))) == [
        a, b, c,
    ]


# -- rejected input -------------------------------------------------------------------------

_VALID_LINK = b"\xd8\x2a\x58\x27\x00" + GENESIS_CID.to_bytes()


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (bytes.fromhex("1801"), NonCanonicalCBOR, "first difference at byte 0"),
        (bytes.fromhex("1900ff"), NonCanonicalCBOR, "first difference at byte 0"),
        (bytes.fromhex("1a0000ffff"), NonCanonicalCBOR, "first difference"),
        (bytes.fromhex("1b00000000ffffffff"), NonCanonicalCBOR, "first difference"),
        (bytes.fromhex("3800"), NonCanonicalCBOR, "first difference"),
        (bytes.fromhex("580100"), NonCanonicalCBOR, "first difference"),
        (bytes.fromhex("79000161"), NonCanonicalCBOR, "first difference"),
        (bytes.fromhex("98020102"), NonCanonicalCBOR, "first difference"),
        (bytes.fromhex("82" "01" "1802"), NonCanonicalCBOR, "first difference at byte 2"),
        (bytes.fromhex("0102"), NonCanonicalCBOR, "1 trailing bytes"),
        (bytes.fromhex("9f01ff"), CBORError, "indefinite"),
        (bytes.fromhex("5f4100ff"), CBORError, "indefinite"),
        (bytes.fromhex("7f6161ff"), CBORError, "indefinite"),
        (bytes.fromhex("bfff"), CBORError, "indefinite"),
        (bytes.fromhex("f93c00"), CBORError, "float"),
        (bytes.fromhex("fa3f800000"), CBORError, "float"),
        (bytes.fromhex("fb3ff0000000000000"), CBORError, "float"),
        (bytes.fromhex("f7"), CBORError, "Undefined"),
        (bytes.fromhex("f0"), CBORError, "SimpleValue"),
        (bytes.fromhex("c101"), CBORError, "tags other than 42"),
        (bytes.fromhex("c24101"), CBORError, "tags other than 42"),
        (bytes.fromhex("d903e801"), CBORError, "tag 1000"),
        (bytes.fromhex("d9d9f701"), CBORError, "tags other than 42"),
        (bytes.fromhex("d82a6161"), CBORError, "byte string starting with the 0x00"),
        (bytes.fromhex("d82a40"), CBORError, "byte string starting with the 0x00"),
        (b"\xd8\x2a\x58\x26" + GENESIS_CID.to_bytes(), CBORError, "0x00 multibase prefix"),
        (bytes.fromhex("d82a43000171"), CBORError, "invalid link"),
        (b"\xd8\x2a\x58\x26\x00" + GENESIS_CID.to_bytes()[:-1], CBORError, "invalid link"),
        (bytes.fromhex("a10102"), CBORError, "map keys must be strings"),
        (bytes.fromhex("a1416101"), CBORError, "map keys must be strings"),
        (bytes.fromhex("a2616101616102"), CBORError, "Duplicate map key"),
        (bytes.fromhex("8201"), CBORError, "premature end"),
        (b"", CBORError, "premature end"),
        (bytes.fromhex("61ff"), CBORError, "text string"),
        (bytes.fromhex("1c"), CBORError, "invalid CBOR"),
        (b"\x81" * 600 + b"\x01", CBORError, "nesting depth"),
    ],
)
def test_decode_rejects_non_canonical_and_non_dag_cbor_forms(
    data: bytes, error: type[CBORError], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        dag_cbor.decode(data, "test block")
    assert raised.value.where == "test block"


def test_decode_accepts_a_valid_link_and_a_wire_ordered_map() -> None:
    assert dag_cbor.decode(_VALID_LINK) == GENESIS_CID
    unsorted = bytes.fromhex("a2626262016161" "02")
    value = dag_cbor.decode(unsorted)
    assert list(value) == ["bb", "a"]
    assert dag_cbor.encode(value) == unsorted


def test_decode_lenient_accepts_non_minimal_heads() -> None:
    assert dag_cbor.decode_lenient(bytes.fromhex("1801")) == 1
    assert dag_cbor.decode_lenient(bytes.fromhex("580100")) == b"\x00"
    with pytest.raises(CBORError, match="map keys must be strings"):
        dag_cbor.decode_lenient(bytes.fromhex("a10102"))


@pytest.mark.parametrize("value", [1.5, float("nan"), {1, 2}, object()])
def test_encode_refuses_values_outside_the_data_model(value: object) -> None:
    with pytest.raises(CBORError, match="cannot encode"):
        dag_cbor.encode(value)


@pytest.mark.parametrize("value", [2**64, -(2**64) - 1, [1, {"a": 2**70}]])
def test_encode_refuses_integers_beyond_64_bits(value: object) -> None:
    with pytest.raises(CBORError):
        dag_cbor.encode(value)


@pytest.mark.parametrize("value", [{1: 2}, {b"a": 1}])
def test_encode_refuses_non_string_map_keys(value: object) -> None:
    with pytest.raises(CBORError):
        dag_cbor.encode(value)


# -- round trips over the data model --------------------------------------------------------

_links = st.binary(min_size=1, max_size=16).map(CID.hash_of)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64 - 1),
    st.binary(max_size=64),
    st.text(max_size=32),
    _links,
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=12), children, max_size=6),
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(value=_values)
def test_data_model_values_round_trip_to_identical_bytes(value: Any) -> None:
    encoded = dag_cbor.encode(value)
    decoded = dag_cbor.decode(encoded)
    assert decoded == value
    assert dag_cbor.encode(decoded) == encoded
    assert sorted(dag_cbor.links(decoded)) == sorted(dag_cbor.links(value))


@given(junk=st.binary(max_size=64))
def test_decode_raises_only_cbor_errors_on_arbitrary_bytes(junk: bytes) -> None:
    try:
        value = dag_cbor.decode(junk)
    except CBORError:
        return
    assert dag_cbor.encode(value) == junk
