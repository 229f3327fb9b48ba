"""Fuzzed decoders: bad input raises a MalformedInput subclass naming what and where, never
anything else.

Every decoder that reads bytes from disk or from peers is fed random input and mutations of
real data (mainnet genesis blocks, a vector's CAR, real addresses): bit flips, truncations,
insertions, deletions. Each example must either decode — and then re-encode to the same bytes
where the format is canonical — or raise :class:`~store.errors.MalformedInput`. Across the
decoders more than 10 000 cases run. The named bad-input cases of the acceptance criteria
(truncated CAR, bad varint, non-canonical CBOR, a block that does not hash to its CID, a wrong
address checksum) are then checked one by one for the exact error type and its location.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fvm.address import Address, AddressError, AddressErrorKind, Network
from fvm.conformance.vector import load_vector
from store import dag_cbor
from store.bitfield import BitField
from store.car import CarReader, read_car
from store.cid import CID, DAG_CBOR
from store.errors import (
    BitfieldError,
    BlockHashMismatch,
    CARError,
    CIDError,
    MalformedInput,
    NonCanonicalCBOR,
    VarintError,
)
from store.varint import decode_uvarint, encode_uvarint

T = TypeVar("T")

SMALL_VECTOR = (
    "extracted/0001-shark-01/fil_9_multisig/Propose/Ok/ext-0001-fil_9_multisig-Propose-Ok-5.json"
)
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def fuzz(examples: int) -> settings:
    """Settings for one fuzz target; the per-target counts below add up to more than the
    10 000 cases the acceptance asks for."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def decode_or_reject(decode: Callable[[], T], *, needs_where: bool = True) -> T | None:
    """Run ``decode``; a MalformedInput (with a message, and a location when the decoder knows
    one) counts as a clean rejection. Any other exception fails the test."""
    try:
        return decode()
    except MalformedInput as exc:
        assert exc.what
        if needs_where:
            assert exc.where, f"{type(exc).__name__} without a location: {exc}"
        return None


MUTATIONS = ("flip", "overwrite", "truncate", "insert", "delete")


def mutate(data: bytes, rng: random.Random, hot_spots: Sequence[int] = ()) -> bytes:
    """``data`` after one to three bit flips, byte overwrites, truncations, insertions or
    deletions, half of them near ``hot_spots`` (e.g. section boundaries) when given."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if hot_spots and rng.random() < 0.5:
            pos = min(max(rng.choice(hot_spots) + rng.randint(-2, 2), 0), len(out))
        else:
            pos = rng.randint(0, len(out))
        kind = rng.choice(MUTATIONS)
        if kind == "flip" and pos < len(out):
            out[pos] ^= 1 << rng.randrange(8)
        elif kind == "overwrite" and pos < len(out):
            out[pos] = rng.randrange(256)
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = rng.randbytes(rng.randint(1, 9))
        elif kind == "delete":
            del out[pos : pos + rng.randint(1, 9)]
    return bytes(out)


def mutated(originals: Sequence[bytes], hot_spots: Sequence[int] = ()) -> st.SearchStrategy[bytes]:
    """Mutations of ``originals``, driven by a seeded generator: two choices per example keep
    generation cheap enough for thousands of cases, and the seed reproduces a failure."""
    return st.builds(
        lambda original, rng: mutate(original, rng, hot_spots),
        st.sampled_from(originals),
        st.randoms(use_true_random=True),
    )


TEXT_NOISE = BASE32 + BASE58 + "ft+-=0\u00e9\u20ac\U0001f600\x00"


def mutate_text(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 2)):
        pos = rng.randint(0, len(chars))
        kind = rng.choice(("replace", "insert", "delete", "truncate"))
        char = rng.choice(TEXT_NOISE)
        if kind == "replace" and pos < len(chars):
            chars[pos] = char
        elif kind == "insert":
            chars.insert(pos, char)
        elif kind == "delete" and pos < len(chars):
            del chars[pos]
        elif kind == "truncate":
            del chars[pos:]
    return "".join(chars)


def mutated_text(originals: Sequence[str]) -> st.SearchStrategy[str]:
    return st.builds(mutate_text, st.sampled_from(originals), st.randoms(use_true_random=True))


# Fragments that steer random bytes into CBOR's corners: long heads, indefinite lengths,
# tags (42 among them), floats, simple values, deep nesting.
CBOR_FRAGMENTS = st.sampled_from(
    [
        b"\x18",
        b"\x19",
        b"\x1a",
        b"\x1b",
        b"\x1c",
        b"\x38",
        b"\x3b\xff\xff\xff\xff\xff\xff\xff",
        b"\x40",
        b"\x58",
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x5f",
        b"\x60",
        b"\x7f",
        b"\x81",
        b"\x82",
        b"\x9f",
        b"\x98\x02",
        b"\xa1",
        b"\xbf",
        b"\xff",
        b"\xd8\x2a",
        b"\xd8\x2a\x58\x27\x00\x01\x71\xa0\xe4\x02\x20",
        b"\xc2",
        b"\xd9\xd9\xf7",
        b"\xf4",
        b"\xf6",
        b"\xf7",
        b"\xf8\x20",
        b"\xf9\x3c\x00",
        b"\xfb",
        b"\x81" * 600,
        b"\x61a",
        b"\x62\xc3\x28",
    ]
)
cbor_soup = st.lists(st.one_of(CBOR_FRAGMENTS, st.binary(max_size=6)), max_size=8).map(b"".join)


# -- real data -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genesis_blocks(mainnet_genesis: Path) -> list[tuple[CID, bytes]]:
    _, blocks = read_car(mainnet_genesis)
    return [(cid, data) for cid, data in blocks if cid.codec == DAG_CBOR]


# Fixtures below hand out strategies, built once: building them for every example would cost
# more than the decoding under test.


@pytest.fixture(scope="module")
def binary_cids(genesis_blocks: list[tuple[CID, bytes]]) -> st.SearchStrategy[bytes]:
    return st.one_of(cid_like_bytes, mutated([cid.to_bytes() for cid, _ in genesis_blocks[:200]]))


@pytest.fixture(scope="module")
def cid_strings(genesis_blocks: list[tuple[CID, bytes]]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=70),
        st.text(BASE32 + BASE32.upper() + "=1", max_size=70).map(lambda s: "b" + s),
        st.text(BASE58, min_size=44, max_size=44).map(lambda s: "Qm" + s),
        st.text(BASE58 + "0", max_size=60).map(lambda s: "z" + s),
        mutated_text([str(cid) for cid, _ in genesis_blocks[:200]]),
    )


@pytest.fixture(scope="module")
def mutated_genesis_blocks(genesis_blocks: list[tuple[CID, bytes]]) -> st.SearchStrategy[bytes]:
    """Mutations of small and mid-sized genesis blocks: every kind of node without the cost of
    the largest."""
    samples = sorted((data for _, data in genesis_blocks), key=len)[: len(genesis_blocks) * 3 // 4]
    return mutated(samples)


@pytest.fixture(scope="module")
def vector_car(vectors_dir: Path) -> bytes:
    return load_vector(vectors_dir / SMALL_VECTOR).car


@pytest.fixture(scope="module")
def vector_car_raw(vector_car: bytes) -> bytes:
    return gzip.decompress(vector_car)


def section_offsets(car: bytes) -> list[int]:
    """Where each varint-framed section (the header first) starts, read independently of
    the CAR reader."""
    offsets = []
    pos = 0
    while pos < len(car):
        offsets.append(pos)
        size, pos = decode_uvarint(car, pos)
        pos += size
    assert pos == len(car)
    return offsets


@pytest.fixture(scope="module")
def mutated_vector_cars(vector_car_raw: bytes) -> st.SearchStrategy[bytes]:
    """Mutations of the vector's raw CAR, half of them near section boundaries."""
    return mutated([vector_car_raw], section_offsets(vector_car_raw))


@pytest.fixture(scope="module")
def real_addresses(vectors_dir: Path) -> list[Address]:
    """The BLS zero (burn) address, a delegated address, then the receivers and senders of a
    vector's messages."""
    vector = load_vector(vectors_dir / SMALL_VECTOR)
    found = [
        Address.parse(
            "f3yaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaby2smx7a"
        ),
        Address.new_delegated(10, bytes(range(20))),
    ]
    for message in vector.messages:
        fields = dag_cbor.decode(message.data)
        found.extend(Address.from_bytes(raw) for raw in fields[1:3])
    return found


# -- varints ---------------------------------------------------------------------------------


@fuzz(1000)
@given(st.binary(max_size=12), st.integers(0, 12))
def test_fuzzed_varints_decode_canonically_or_raise_varint_errors(data: bytes, offset: int) -> None:
    try:
        value, end = decode_uvarint(data, offset)
    except VarintError as exc:
        assert exc.where == f"offset {offset}"
        return
    assert encode_uvarint(value) == data[offset:end]
    assert value < 1 << 63


# -- CIDs ------------------------------------------------------------------------------------

cid_like_bytes = st.one_of(
    st.binary(max_size=80),
    st.tuples(
        st.sampled_from([0, 1, 2, 0x12, 0x80]),
        st.sampled_from([0x55, 0x70, 0x71, 0xF101, 1 << 40]),
        st.sampled_from([0x00, 0x12, 0x1B, 0xB220, 0x1012, 0x99]),
        st.integers(0, 70),
        st.binary(max_size=70),
    ).map(lambda t: b"".join(encode_uvarint(n) for n in t[:4]) + t[4]),
)


@fuzz(1200)
@given(st.data())
def test_fuzzed_binary_cids_round_trip_or_raise_cid_errors(
    binary_cids: st.SearchStrategy[bytes], data: st.DataObject
) -> None:
    raw = data.draw(binary_cids)
    cid = decode_or_reject(lambda: CID.from_bytes(raw))
    if cid is not None:
        assert cid.to_bytes() == raw
        assert CID.parse(str(cid)) == cid


@fuzz(1200)
@given(st.data())
def test_fuzzed_cid_strings_parse_or_raise_cid_errors(
    cid_strings: st.SearchStrategy[str], data: st.DataObject
) -> None:
    text = data.draw(cid_strings)
    cid = decode_or_reject(lambda: CID.parse(text), needs_where=False)
    if cid is not None:
        assert CID.parse(str(cid)) == cid


# -- DAG-CBOR --------------------------------------------------------------------------------


@fuzz(1500)
@given(st.one_of(st.binary(max_size=48), cbor_soup))
def test_fuzzed_bytes_decode_as_canonical_dag_cbor_or_raise_cbor_errors(data: bytes) -> None:
    value = decode_or_reject(lambda: dag_cbor.decode(data, "fuzz"))
    if value is not None:
        assert dag_cbor.encode(value) == data


@fuzz(2000)
@given(st.data())
def test_mutated_genesis_blocks_decode_canonically_or_raise_cbor_errors(
    mutated_genesis_blocks: st.SearchStrategy[bytes], data: st.DataObject
) -> None:
    block = data.draw(mutated_genesis_blocks)
    value = decode_or_reject(lambda: dag_cbor.decode(block, "mutated block"))
    if value is not None:
        assert dag_cbor.encode(value) == block


# -- CAR -------------------------------------------------------------------------------------


@fuzz(1000)
@given(st.data())
def test_mutated_vector_car_reads_or_raises_car_errors(
    mutated_vector_cars: st.SearchStrategy[bytes], data: st.DataObject
) -> None:
    car = data.draw(mutated_vector_cars)

    def read_all() -> tuple[CarReader, list[tuple[CID, bytes]]]:
        reader = CarReader.from_bytes(car, source="fuzz.car")
        return reader, list(reader)

    result = decode_or_reject(read_all)
    if result is not None:
        reader, blocks = result
        assert all(cid.verify(block) for cid, block in blocks)
        framed = b"".join(
            encode_uvarint(len(cid.to_bytes()) + len(block)) + cid.to_bytes() + block
            for cid, block in blocks
        )
        assert car.endswith(framed) and reader.offset == len(car)


@fuzz(300)
@given(st.data())
def test_mutated_gzip_car_reads_or_raises_car_errors(
    vector_car: bytes, data: st.DataObject
) -> None:
    car = data.draw(mutated([vector_car]))
    decode_or_reject(lambda: list(CarReader.from_bytes(car, source="fuzz.car.gz")))


# -- bitfields -------------------------------------------------------------------------------

REAL_SHAPED_BITFIELDS = [
    BitField.from_ranges(ranges).to_bytes()
    for ranges in (
        [(0, 1)],
        [(1, 3), (4, 6)],
        [(0, 2349)],
        [(5, 6), (17, 40), (41, 42), (100, 2000), (1 << 40, (1 << 40) + 3)],
        [(i, i + 1) for i in range(0, 200, 3)],
    )
]


@fuzz(1500)
@given(st.one_of(st.binary(max_size=40), mutated(REAL_SHAPED_BITFIELDS)))
def test_fuzzed_bitfields_re_encode_identically_or_raise_bitfield_errors(data: bytes) -> None:
    field = decode_or_reject(lambda: BitField.from_bytes(data))
    if field is not None:
        assert field.to_bytes() == data


# -- addresses -------------------------------------------------------------------------------

address_like_bytes = st.one_of(
    st.binary(max_size=70),
    st.tuples(st.integers(0, 5), st.binary(max_size=66)).map(lambda t: bytes([t[0]]) + t[1]),
)


@pytest.fixture(scope="module")
def address_bytes(real_addresses: list[Address]) -> st.SearchStrategy[bytes]:
    return st.one_of(address_like_bytes, mutated([addr.to_bytes() for addr in real_addresses]))


@pytest.fixture(scope="module")
def address_strings(real_addresses: list[Address]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=90),
        st.tuples(
            st.sampled_from("ftx"), st.sampled_from("012345"), st.text(BASE32 + "0189f+")
        ).map("".join),
        mutated_text([addr.to_string(Network.MAINNET) for addr in real_addresses]),
    )


@fuzz(1000)
@given(st.data())
def test_fuzzed_address_bytes_decode_or_raise_address_errors(
    address_bytes: st.SearchStrategy[bytes], data: st.DataObject
) -> None:
    raw = data.draw(address_bytes)
    addr = decode_or_reject(lambda: Address.from_bytes(raw), needs_where=False)
    if addr is not None:
        assert Address.from_bytes(addr.to_bytes()) == addr
        assert Address.parse(str(addr)) == addr


@fuzz(1000)
@given(st.data())
def test_fuzzed_address_strings_parse_or_raise_address_errors(
    address_strings: st.SearchStrategy[str], data: st.DataObject
) -> None:
    text = data.draw(address_strings)
    addr = decode_or_reject(lambda: Address.parse(text), needs_where=False)
    if addr is not None:
        assert Address.parse(addr.to_string(Network.TESTNET)) == addr


# -- the named bad-input cases ---------------------------------------------------------------


def test_truncated_vector_car_names_the_section_it_cut(vector_car_raw: bytes) -> None:
    offsets = section_offsets(vector_car_raw)
    cut = offsets[7] + 12
    with pytest.raises(CARError) as raised:
        list(CarReader.from_bytes(vector_car_raw[:cut], source="vector.car"))
    assert raised.value.what.startswith("truncated CAR section")
    assert raised.value.where == f"vector.car offset {offsets[7]}"


def test_corrupt_gzip_car_names_its_source(vector_car: bytes) -> None:
    corrupt = bytearray(vector_car)
    corrupt[len(corrupt) // 2] ^= 0xFF
    with pytest.raises(CARError) as raised:
        list(CarReader.from_bytes(bytes(corrupt), source="vector.car.gz"))
    assert raised.value.where == "vector.car.gz"
    assert "gzip" in raised.value.what


def test_corrupt_gzip_car_file_read_as_a_stream_raises_car_errors(
    vector_car: bytes, tmp_path: Path
) -> None:
    stream_errors = 0
    for pos in range(100, 2000, 37):
        corrupt = bytearray(vector_car)
        corrupt[pos] ^= 0xFF
        path = tmp_path / f"corrupt-{pos}.car.gz"
        path.write_bytes(corrupt)
        with pytest.raises(MalformedInput) as raised:
            read_car(path)
        assert raised.value.where is not None and raised.value.where.startswith(str(path))
        if raised.value.what.startswith("cannot read"):  # the deflate stream itself broke
            assert isinstance(raised.value, CARError)
            stream_errors += 1
    assert stream_errors > 0


@pytest.mark.parametrize(
    ("data", "offset", "message"),
    [
        (b"\x05\x80", 1, "truncated varint"),
        (b"\x05\x80\x00", 1, "varint is not minimally encoded"),
        (b"\x05" + b"\xff" * 9 + b"\x01", 1, "varint longer than 9 bytes"),
    ],
)
def test_bad_varint_names_its_offset(data: bytes, offset: int, message: str) -> None:
    with pytest.raises(VarintError) as raised:
        decode_uvarint(data, offset)
    assert raised.value.what == message
    assert raised.value.where == f"offset {offset}"


def test_non_canonical_cbor_names_the_block_and_first_bad_byte(
    genesis_blocks: list[tuple[CID, bytes]],
) -> None:
    cid, block = next((c, b) for c, b in genesis_blocks if 0x82 <= b[0] <= 0x97)
    widened = bytes([0x98, block[0] - 0x80]) + block[1:]  # array length in a needless extra byte
    assert dag_cbor.decode_lenient(widened) == dag_cbor.decode(block)
    with pytest.raises(NonCanonicalCBOR) as raised:
        dag_cbor.decode(widened, str(cid))
    assert raised.value.where == str(cid)
    assert raised.value.what == "non-canonical DAG-CBOR: first difference at byte 0"


def test_block_that_does_not_hash_to_its_cid_is_named_with_its_offset(
    vector_car_raw: bytes,
) -> None:
    offsets = section_offsets(vector_car_raw)
    corrupt = bytearray(vector_car_raw)
    corrupt[offsets[4] - 1] ^= 0x01  # last byte of the third block
    blocks = list(CarReader.from_bytes(vector_car_raw))
    with pytest.raises(BlockHashMismatch) as raised:
        list(CarReader.from_bytes(bytes(corrupt), source="vector.car"))
    assert str(blocks[2][0]) in raised.value.what
    assert raised.value.where == f"vector.car offset {offsets[3]}"


def test_cid_with_a_wrong_digest_length_names_its_offset() -> None:
    cid = CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2")
    raw = cid.to_bytes()
    short = raw[:5] + bytes([31]) + raw[6:-1]  # digest length byte follows 01 71 a0e402
    with pytest.raises(CIDError) as raised:
        CID.from_bytes(short)
    assert "must be 32 bytes, got 31" in raised.value.what
    assert raised.value.where == "offset 0"


def test_wrong_address_checksum_is_an_address_error_naming_the_text(
    real_addresses: list[Address],
) -> None:
    sender = next(addr for addr in real_addresses[2:] if not addr.is_id)
    text = sender.to_string(Network.MAINNET)
    bad = text[:5] + ("a" if text[5] != "a" else "b") + text[6:]  # a payload symbol changed
    with pytest.raises(AddressError) as raised:
        Address.parse(bad)
    assert raised.value.kind is AddressErrorKind.INVALID_CHECKSUM
    assert raised.value.where == bad


def test_bitfield_error_names_the_bit_where_decoding_failed() -> None:
    with pytest.raises(BitfieldError) as raised:
        BitField.from_bytes(bytes([0b0000_0001]))
    assert raised.value.where == "bit 0"
