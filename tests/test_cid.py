"""CIDs: string and binary forms of real Filecoin CIDs, multihash computation, and rejection of
malformed binary and string forms."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.car import read_car
from store.cid import (
    BLAKE2B_256,
    CBOR,
    CID,
    DAG_CBOR,
    DAG_PB,
    FIL_COMMITMENT_SEALED,
    IDENTITY,
    RAW,
    SHA2_256,
)
from store.errors import CIDError

GENESIS_CID = "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"
# The digest of the mainnet genesis block, as its CID string encodes it.
GENESIS_DIGEST = "9a0640d0620af5d1c458effce4cbb8969779c9072b164d3fe6f5179d6378d8cd"
# go-ipfs' CIDv0 of the empty dag-pb block: sha2-256 of the empty string.
EMPTY_SHA256_CIDV0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"


def test_genesis_cid_parses_to_dag_cbor_blake2b_v1() -> None:
    cid = CID.parse(GENESIS_CID)
    assert cid.version == 1
    assert cid.codec == DAG_CBOR
    assert cid.mh_code == BLAKE2B_256
    assert cid.digest.hex() == GENESIS_DIGEST
    assert cid.to_bytes() == bytes.fromhex("0171a0e40220" + GENESIS_DIGEST)
    assert cid.multihash == bytes.fromhex("a0e40220" + GENESIS_DIGEST)
    assert str(cid) == GENESIS_CID
    assert repr(cid) == f"CID({GENESIS_CID})"


def test_cidv0_parses_and_formats_as_base58_multihash() -> None:
    cid = CID.parse(EMPTY_SHA256_CIDV0)
    assert cid.version == 0
    assert cid.codec == DAG_PB
    assert cid.mh_code == SHA2_256
    assert cid.digest == hashlib.sha256(b"").digest()
    assert cid.to_bytes() == b"\x12\x20" + hashlib.sha256(b"").digest()
    assert cid.multihash == cid.to_bytes()
    assert str(cid) == EMPTY_SHA256_CIDV0
    assert CID.from_bytes(cid.to_bytes()) == cid
    assert CID(0, DAG_PB, SHA2_256, hashlib.sha256(b"").digest()) == cid


def test_cidv1_base58_multibase_parses_to_same_cid() -> None:
    import base58

    cid = CID.parse(GENESIS_CID)
    text = "z" + base58.b58encode(cid.to_bytes()).decode()
    assert CID.parse(text) == cid


def test_every_cid_in_mainnet_genesis_reformats_to_same_string_and_bytes(
    mainnet_genesis: Path,
) -> None:
    header, blocks = read_car(mainnet_genesis)
    cids = [*header.roots, *(cid for cid, _ in blocks)]
    assert len(cids) == 1223
    for cid in cids:
        text = str(cid)
        assert CID.parse(text) == cid
        assert str(CID.parse(text)) == text
        assert CID.from_bytes(cid.to_bytes()).to_bytes() == cid.to_bytes()
        assert CID(cid.version, cid.codec, cid.mh_code, cid.digest) == cid
    assert str(header.roots[0]) == GENESIS_CID


def test_genesis_identity_cids_carry_actor_code_names(mainnet_genesis: Path) -> None:
    _, blocks = read_car(mainnet_genesis)
    identity = {str(cid): data for cid, data in blocks if cid.mh_code == IDENTITY}
    assert identity["bafkqaddgnfwc6mjpon4xg5dfnu"] == b"fil/1/system"
    assert identity["bafkqactgnfwc6mjpnfxgs5a"] == b"fil/1/init"
    assert len(identity) == 10
    for text, data in identity.items():
        cid = CID.parse(text)
        assert cid.codec == RAW
        assert cid.digest == data
        assert CID.hash_of(data, RAW, IDENTITY) == cid


def test_genesis_sha256_block_cid_matches_its_bytes(mainnet_genesis: Path) -> None:
    _, blocks = read_car(mainnet_genesis)
    sha = [(cid, data) for cid, data in blocks if cid.mh_code == SHA2_256]
    assert [str(cid) for cid, _ in sha] == [
        "bafyreiaqpwbbyjo4a42saasj36kkrpv4tsherf2e7bvezkert2a7dhonoi"
    ]
    cid, data = sha[0]
    assert CID.hash_of(data, DAG_CBOR, SHA2_256) == cid


def test_hash_of_blake2b_256_sha256_and_identity() -> None:
    blake = CID.hash_of(b"", RAW, BLAKE2B_256)
    assert blake.digest.hex() == (
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )
    assert blake.to_bytes()[:6] == bytes.fromhex("0155a0e40220")
    sha = CID.hash_of(b"beep boop", RAW, SHA2_256)
    assert str(sha) == "bafkreieq5jui4j25lacwomsqgjeswwl3y5zcdrresptwgmfylxo2depppq"
    ident = CID.hash_of(b"fil/1/system", RAW, IDENTITY)
    assert ident.to_bytes() == b"\x01\x55\x00\x0c" + b"fil/1/system"
    assert CID.hash_of(b"\xa0").codec == DAG_CBOR
    assert CID.hash_of(b"\xa0").mh_code == BLAKE2B_256


def test_verify_checks_bytes_against_digest() -> None:
    cid = CID.hash_of(b"\x82\x01\x02")
    assert cid.verify(b"\x82\x01\x02")
    assert not cid.verify(b"\x82\x01\x03")
    unknown = CID(1, FIL_COMMITMENT_SEALED, 0xB401, bytes(32))
    assert not unknown.verify(b"")


def test_cids_compare_hash_and_sort_by_bytes() -> None:
    a = CID.hash_of(b"a")
    b = CID.hash_of(b"b")
    assert CID.from_bytes(a.to_bytes()) == a
    assert hash(CID.from_bytes(a.to_bytes())) == hash(a)
    assert len({a, CID.parse(str(a)), b}) == 2
    assert sorted([a, b]) == sorted([b, a])
    assert (a < b) == (a.to_bytes() < b.to_bytes())
    assert a != a.to_bytes()


def test_cid_is_immutable() -> None:
    cid = CID.parse(GENESIS_CID)
    with pytest.raises(AttributeError):
        cid.codec = RAW  # type: ignore[misc]


def test_read_bytes_returns_offset_after_the_cid() -> None:
    cid = CID.parse(GENESIS_CID)
    data = b"\xff" + cid.to_bytes() + b"rest"
    parsed, end = CID.read_bytes(data, 1)
    assert parsed == cid
    assert data[end:] == b"rest"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty CID string"),
        ("x" + GENESIS_CID[1:], "unsupported multibase prefix"),
        ("f0171a0e40220" + GENESIS_DIGEST, "unsupported multibase prefix"),
        (GENESIS_CID[:-4], "invalid CID string"),
        ("b!!!!", "invalid CID string"),
        ("zQm", "unsupported CID version"),
    ],
)
def test_parse_rejects_malformed_strings(text: str, message: str) -> None:
    with pytest.raises(CIDError, match=message):
        CID.parse(text)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "truncated varint"),
        (b"\x02\x71\xa0\xe4\x02\x20" + bytes(32), "unsupported CID version 2"),
        (b"\x01\x71\xa0\xe4\x02\x20" + bytes(31), "truncated CID digest"),
        (b"\x01\x71\xa0\xe4\x02\x20" + bytes(33), "1 trailing bytes"),
        (b"\x01\x71\xa0\xe4\x02\x1f" + bytes(31), "digest must be 32 bytes"),
        (b"\x01\x71\x12\x10" + bytes(16), "digest must be 32 bytes"),
        (b"\x01\xf1\x00\xa0\xe4\x02\x20" + bytes(32), "not minimally encoded"),
        (b"\x01\x55\x00\x41" + bytes(65), "exceeds 64"),
        (b"\x01\x71", "truncated varint"),
    ],
)
def test_from_bytes_rejects_malformed_binary(raw: bytes, message: str) -> None:
    with pytest.raises(CIDError, match=message):
        CID.from_bytes(raw)


def test_constructor_rejects_inconsistent_fields() -> None:
    with pytest.raises(CIDError, match="CIDv0"):
        CID(0, DAG_CBOR, SHA2_256, bytes(32))
    with pytest.raises(CIDError, match="unsupported CID version 3"):
        CID(3, DAG_CBOR, BLAKE2B_256, bytes(32))
    with pytest.raises(CIDError, match="digest must be 32 bytes"):
        CID(1, DAG_CBOR, BLAKE2B_256, bytes(20))
    with pytest.raises(CIDError, match="cannot compute multihash"):
        CID.hash_of(b"", RAW, 0x1012)


_codecs = st.one_of(st.sampled_from([DAG_CBOR, RAW, CBOR, DAG_PB, FIL_COMMITMENT_SEALED]),
                    st.integers(0, 2**63 - 1))
_fixed_size_hash = st.builds(
    lambda code, digest: (code, digest),
    st.sampled_from([BLAKE2B_256, SHA2_256]),
    st.binary(min_size=32, max_size=32),
)
_variable_hash = st.builds(
    lambda code, digest: (code, digest),
    st.one_of(st.just(IDENTITY), st.integers(0x300000, 2**63 - 1)),
    st.binary(max_size=64),
)


@given(codec=_codecs, mh=st.one_of(_fixed_size_hash, _variable_hash))
def test_cidv1_round_trips_through_bytes_and_string(codec: int, mh: tuple[int, bytes]) -> None:
    mh_code, digest = mh
    cid = CID(1, codec, mh_code, digest)
    again = CID.from_bytes(cid.to_bytes())
    assert again == cid
    assert (again.version, again.codec, again.mh_code, again.digest) == (1, codec, mh_code, digest)
    assert CID.parse(str(cid)) == cid
    assert str(cid).startswith("b")
    assert str(cid) == str(cid).lower()


@given(digest=st.binary(min_size=32, max_size=32))
def test_cidv0_round_trips_through_bytes_and_string(digest: bytes) -> None:
    cid = CID(0, DAG_PB, SHA2_256, digest)
    assert CID.from_bytes(cid.to_bytes()) == cid
    assert CID.parse(str(cid)) == cid
    assert str(cid).startswith("Qm")


@given(data=st.binary(max_size=200))
def test_hash_of_matches_hashlib(data: bytes) -> None:
    assert CID.hash_of(data).digest == hashlib.blake2b(data, digest_size=32).digest()
    assert CID.hash_of(data, RAW, SHA2_256).digest == hashlib.sha256(data).digest()
    if len(data) <= 64:
        assert CID.hash_of(data, RAW, IDENTITY).digest == data


@given(junk=st.binary(max_size=80))
def test_from_bytes_raises_only_cid_error_on_arbitrary_bytes(junk: bytes) -> None:
    try:
        cid = CID.from_bytes(junk)
    except CIDError:
        return
    assert cid.to_bytes() == junk
