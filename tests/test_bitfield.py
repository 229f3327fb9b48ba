"""RLE+ bitfields: the reference's own cases, real bitfields from the vectors' actor state,
and properties against Python sets.

The hand-written cases are ported from ref-fvm's ``ipld/bitfield`` (``rleplus`` decoder cases,
range combinator cases, ``tests/bitfield_tests.rs``); expected values are the reference's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.conformance.vector import find_vectors, load_vector
from store.bitfield import (
    BIT_LIMIT,
    MAX_ENCODED_SIZE,
    BitField,
    BitfieldNotMinimal,
    BitfieldOverflow,
    InvalidBitfieldVarint,
    UnsupportedBitfieldVersion,
)
from store.car import CarReader
from store.cid import DAG_CBOR
from store.errors import BitfieldError, MalformedInput

U64_MAX = (1 << 64) - 1


def pack_bits(bits: list[int]) -> bytes:
    """Pack bits least-significant first, keeping a final partial byte even when it is zero
    (what the reference's ``BitWriter::finish_test`` does to build its decoder cases)."""
    out = bytearray()
    for i in range(0, len(bits), 8):
        out.append(sum(bit << k for k, bit in enumerate(bits[i : i + 8])))
    return bytes(out)


def from_bit_vector(bits: list[int]) -> BitField:
    """The reference's ``bitfield![…]`` macro: bit ``i`` is set when ``bits[i]`` is 1."""
    return BitField.from_indices(i for i, bit in enumerate(bits) if bit)


_BYTE_BITS = [[(byte >> k) & 1 for k in range(8)] for byte in range(256)]


def spec_runs(data: bytes) -> tuple[int, list[int]]:
    """An independent, bit-at-a-time reading of the RLE+ grammar in the Filecoin spec:
    returns the first run's value and the run lengths, checking nothing beyond the grammar."""
    bits = [bit for byte in data for bit in _BYTE_BITS[byte]]
    last_one = len(bits) - 1 - bits[::-1].index(1) if 1 in bits else -1
    pos = 0

    def take(count: int) -> list[int]:
        nonlocal pos
        chunk = bits[pos : pos + count]
        pos += count
        return chunk + [0] * (count - len(chunk))

    def number(chunk: list[int]) -> int:
        return sum(bit << k for k, bit in enumerate(chunk))

    assert take(2) == [0, 0]
    first_value = take(1)[0]
    runs: list[int] = []
    while pos <= last_one:
        if take(1) == [1]:
            runs.append(1)
        elif take(1) == [1]:
            runs.append(number(take(4)))
        else:
            value, shift = 0, 0
            while True:
                byte = number(take(8))
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            runs.append(value)
    return first_value, runs


def ranges_of_runs(first_value: int, runs: list[int]) -> list[tuple[int, int]]:
    out = []
    index, value = 0, first_value
    for length in runs:
        if value:
            out.append((index, index + length))
        index += length
        value ^= 1
    return out


# -- the reference's RLE+ decoder cases (rleplus/mod.rs `test`) -----------------------------

LONG_RUN_2_63_MINUS_1 = [0, 0] + [1] * 71 + [0]  # block_long, varint ff ff ff ff ff ff ff ff 7f

DECODER_CASES: list[tuple[str, list[int], list[tuple[int, int]] | type[BitfieldError]]] = [
    ("empty", [], []),
    ("incorrect version", [1, 0, 1, 0, 1, 0, 0, 0, 1], UnsupportedBitfieldVersion),
    ("one short run of 8 ones", [0, 0, 1, 0, 1, 0, 0, 0, 1], [(0, 8)]),
    (
        "short, single, short",
        [0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0],
        [(0, 4), (5, 8)],
    ),
    ("long run of 25 ones", [0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0], [(0, 25)]),
    ("short block of 0", [0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1], BitfieldNotMinimal),
    ("long block of 0", [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], BitfieldNotMinimal),
    (
        "trailing zero byte",
        [0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        BitfieldNotMinimal,
    ),
    ("valid varint", [0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [(0, 17)]),
    (
        "varint not minimally encoded",
        [0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        InvalidBitfieldVarint,
    ),
    ("ten-byte varint spans 0..u64::MAX", [0, 0, 1, 0, 0] + [1] * 73 + [0, 0], [(0, U64_MAX)]),
    (
        "varint overflows u64 by one",
        [0, 0, 1, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 1] * 9 + [0, 1, 0],
        InvalidBitfieldVarint,
    ),
    (
        "total running length overflows",
        [0, 0, 1, *LONG_RUN_2_63_MINUS_1, *LONG_RUN_2_63_MINUS_1, 0, 1, 0, 1, 0, 0],
        BitfieldOverflow,
    ),
    (
        "block_long that fits block_short",
        [0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        BitfieldNotMinimal,
    ),
    (
        "block_long that fits block_single",
        [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        BitfieldNotMinimal,
    ),
    (
        "block_short that fits block_single",
        [0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
        BitfieldNotMinimal,
    ),
    ("trailing zeros after header 0", [0, 0, 0, 1], BitfieldNotMinimal),
    ("trailing short run of zeros after header 0", [0, 0, 0, 0, 1, 0, 0, 1, 0], BitfieldNotMinimal),
    ("trailing run of zeros after ones", [0, 0, 1, 0, 1, 0, 0, 1, 0, 1], BitfieldNotMinimal),
    (
        "trailing short run of zeros after runs",
        [0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0],
        BitfieldNotMinimal,
    ),
]


@pytest.mark.parametrize(
    ("bits", "expected"), [c[1:] for c in DECODER_CASES], ids=[c[0] for c in DECODER_CASES]
)
def test_decoder_matches_reference_cases(
    bits: list[int], expected: list[tuple[int, int]] | type[BitfieldError]
) -> None:
    data = pack_bits(bits)
    if isinstance(expected, list):
        assert list(BitField.from_bytes(data).ranges()) == expected
    else:
        with pytest.raises(expected) as info:
            BitField.from_bytes(data)
        assert info.value.where is not None


def test_running_length_overflow_names_the_offending_block() -> None:
    bits = [0, 0, 1, *LONG_RUN_2_63_MINUS_1, *LONG_RUN_2_63_MINUS_1, 0, 1, 0, 1, 0, 0]
    with pytest.raises(BitfieldOverflow) as info:
        BitField.from_bytes(pack_bits(bits))
    assert info.value.where == f"bit {3 + 2 * len(LONG_RUN_2_63_MINUS_1)}"


def test_last_of_a_bitfield_with_two_to_the_64_minus_2_bits() -> None:
    rle = bytes.fromhex("e4ffffffffffffffff2fffffffffffffffff7f")
    field = BitField.from_bytes(rle)
    assert field.last() == 18446744073709551614
    assert field.count() == U64_MAX - 1
    assert field.to_bytes() == rle


def test_set_bits_1_2_4_5_encode_as_reference_bytes() -> None:
    # bitfield_tests.rs bit_vec_unset_vector: CBOR 0x42 0xa8 0x54 around these two bytes.
    field = BitField.from_indices([1, 2, 3, 4, 5]) - BitField.from_indices([3])
    assert 3 not in field
    assert len(field) == 4
    assert field.to_bytes() == bytes([0xA8, 0x54])
    assert BitField.from_bytes(bytes([0xA8, 0x54])) == field


def test_small_bitfields_round_trip() -> None:
    padded = BitField.from_indices([1, 3])  # rle+ 0001111: a padding zero follows
    assert BitField.from_bytes(padded.to_bytes()) == padded
    symmetric = from_bit_vector([0, 1, 0, 1, 1, 1, 1, 1, 1])
    again = BitField.from_bytes(symmetric.to_bytes())
    assert len(again) == 7
    assert again == symmetric


def test_u64_max_is_not_a_valid_bit() -> None:
    with pytest.raises(BitfieldOverflow):
        BitField.from_indices([0, 1, 4, 99, U64_MAX])
    assert BitField.from_indices([0, 1, 4, 99, U64_MAX - 1]).last() == U64_MAX - 1
    with pytest.raises(BitfieldOverflow):
        BitField.from_ranges([(5, U64_MAX + 1)])
    with pytest.raises(BitfieldOverflow):
        BitField.from_indices([-1])
    assert BitField.from_ranges([(5, U64_MAX)]).last() == U64_MAX - 1


def test_encoding_over_32_kib_is_refused_both_ways() -> None:
    # bitfield_tests.rs bitfield_custom: every other bit below one million.
    field = BitField.from_ranges((i, i + 1) for i in range(0, 1_000_000, 2))
    assert len(field) == 500_000
    with pytest.raises(BitfieldError):
        field.to_bytes()
    encoded = field.to_bytes(max_size=None)
    assert len(encoded) > MAX_ENCODED_SIZE
    with pytest.raises(BitfieldError) as info:
        BitField.from_bytes(encoded)
    assert "32768" in info.value.what
    assert BitField.from_bytes(encoded, max_size=None) == field


@pytest.mark.parametrize(
    ("bits", "lengths"),
    [
        ([0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1], [2, 4, 3, 2]),  # lib.rs json tests
        ([1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1], [0, 6, 3, 2]),
        ([], [0]),
    ],
)
def test_run_lengths_form_matches_the_reference_json(bits: list[int], lengths: list[int]) -> None:
    field = from_bit_vector(bits)
    assert field.to_run_lengths() == lengths
    assert BitField.from_run_lengths(lengths) == field


def test_run_lengths_may_only_start_with_an_empty_run() -> None:
    assert list(BitField.from_run_lengths([0, 3, 5, 2, 4]).ranges()) == [(0, 3), (8, 10)]
    with pytest.raises(BitfieldNotMinimal):
        BitField.from_run_lengths([1, 0, 2])
    with pytest.raises(BitfieldOverflow):
        BitField.from_run_lengths([0, U64_MAX, 1])


# -- range combinators (iter/mod.rs `test_combinators`) -------------------------------------

Ranges = list[tuple[int, int]]
COMBINATOR_CASES: list[tuple[Ranges, Ranges, Ranges, Ranges, Ranges, Ranges, Ranges]] = [
    # lhs, rhs, union, intersection, difference, symmetric difference, cut
    ([(2, 5)], [], [(2, 5)], [], [(2, 5)], [(2, 5)], [(2, 5)]),
    (
        [(0, 3), (10, 13)],
        [(5, 8)],
        [(0, 3), (5, 8), (10, 13)],
        [],
        [(0, 3), (10, 13)],
        [(0, 3), (5, 8), (10, 13)],
        [(0, 3), (7, 10)],
    ),
    (
        [(0, 3), (8, 11)],
        [(2, 5)],
        [(0, 5), (8, 11)],
        [(2, 3)],
        [(0, 2), (8, 11)],
        [(0, 2), (3, 5), (8, 11)],
        [(0, 2), (5, 8)],
    ),
    (
        [(0, 3), (4, 7), (8, 11)],
        [(2, 5), (6, 9), (10, 13)],
        [(0, 13)],
        [(2, 3), (4, 5), (6, 7), (8, 9), (10, 11)],
        [(0, 2), (5, 6), (9, 10)],
        [(0, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 13)],
        [(0, 4)],
    ),
    ([(0, 6)], [(1, 3)], [(0, 6)], [(1, 3)], [(0, 1), (3, 6)], [(0, 1), (3, 6)], [(0, 4)]),
    (
        [(0, 6)],
        [(1, 3), (5, 7), (9, 11)],
        [(0, 7), (9, 11)],
        [(1, 3), (5, 6)],
        [(0, 1), (3, 5)],
        [(0, 1), (3, 5), (6, 7), (9, 11)],
        [(0, 3)],
    ),
    (
        [(3, 6)],
        [(0, 2), (4, 5), (8, 10)],
        [(0, 2), (3, 6), (8, 10)],
        [(4, 5)],
        [(3, 4), (5, 6)],
        [(0, 2), (3, 4), (5, 6), (8, 10)],
        [(1, 3)],
    ),
    (
        [(3, 6), (8, 10)],
        [(2, 7), (8, 11)],
        [(2, 7), (8, 11)],
        [(3, 6), (8, 10)],
        [],
        [(2, 3), (6, 7), (10, 11)],
        [],
    ),
    (
        [(3, 6), (8, 10)],
        [(2, 4)],
        [(2, 6), (8, 10)],
        [(3, 4)],
        [(4, 6), (8, 10)],
        [(2, 3), (4, 6), (8, 10)],
        [(2, 4), (6, 8)],
    ),
]


@pytest.mark.parametrize("case", COMBINATOR_CASES)
def test_set_operations_match_reference_combinator_cases(
    case: tuple[Ranges, Ranges, Ranges, Ranges, Ranges, Ranges, Ranges],
) -> None:
    lhs_ranges, rhs_ranges, union, intersection, difference, symmetric, cut = case
    lhs, rhs = BitField.from_ranges(lhs_ranges), BitField.from_ranges(rhs_ranges)
    assert list(lhs.union(rhs).ranges()) == union
    assert list(rhs.union(lhs).ranges()) == union
    assert list(lhs.intersection(rhs).ranges()) == intersection
    assert list(rhs.intersection(lhs).ranges()) == intersection
    assert list(lhs.difference(rhs).ranges()) == difference
    assert list(lhs.symmetric_difference(rhs).ranges()) == symmetric
    assert list(lhs.cut(rhs).ranges()) == cut


@pytest.mark.parametrize(
    ("indices", "ranges"),
    [([], []), ([10], [(10, 11)]), ([2, 3, 4, 7, 9, 11, 12], [(2, 5), (7, 8), (9, 10), (11, 13)])],
)
def test_indices_group_into_runs(indices: list[int], ranges: Ranges) -> None:
    assert list(BitField.from_indices(indices).ranges()) == ranges


@pytest.mark.parametrize(
    ("n", "skipped", "taken"),
    [
        (0, [(1, 3), (4, 6)], []),
        (1, [(2, 3), (4, 6)], [(1, 2)]),
        (2, [(4, 6)], [(1, 3)]),
        (3, [(5, 6)], [(1, 3), (4, 5)]),
    ],
)
def test_slice_skips_and_takes_bits(n: int, skipped: Ranges, taken: Ranges) -> None:
    field = BitField.from_ranges([(1, 3), (4, 6)])
    skip = field.slice(n, len(field) - n)
    take = field.slice(0, n)
    assert skip is not None and list(skip.ranges()) == skipped
    assert take is not None and list(take.ranges()) == taken


def test_slice_of_every_window_of_a_small_bitfield() -> None:
    field = from_bit_vector([0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0])
    window = field.slice(1, 3)
    assert window is not None and list(window) == [4, 7, 9]
    values = [1, 5, 6, 7, 10, 11, 12, 15]
    field = BitField.from_indices(values)
    for start in range(len(values)):
        for count in range(len(values) - start + 1):
            window = field.slice(start, count)
            assert window is not None and list(window) == values[start : start + count]
    assert field.slice(5, 4) is None


def test_subtracting_a_superset_leaves_nothing() -> None:
    have = BitField.from_indices([5, 6, 8, 10, 11, 13, 14, 17])
    parts = [BitField.from_indices(p) - have for p in ([5, 6], [8, 10], [11, 13], [14, 17])]
    union = BitField()
    for part in parts:
        union = union | part
    assert len(union) == 0 and union.is_empty()


def test_contains_any_and_contains_all() -> None:
    assert not BitField.from_indices([0, 4]).contains_any(BitField.from_indices([1, 3, 5]))
    assert BitField.from_indices([0, 2, 5, 6]).contains_any(BitField.from_indices([1, 3, 5]))
    assert BitField.from_indices([1, 2, 3]).contains_any(BitField.from_indices([1, 2, 3]))
    assert not BitField.from_indices([0, 2, 4]).contains_all(BitField.from_indices([0, 2, 4, 5]))
    assert BitField.from_indices([0, 2, 4, 5]).contains_all(BitField.from_indices([0, 2, 4]))
    assert BitField.from_indices([1, 2, 3]).contains_all(BitField.from_indices([1, 2, 3]))


def test_operators_with_empty_bitfields() -> None:
    a, b, empty = BitField.from_indices([1, 2, 3]), BitField.from_indices([1, 3, 4]), BitField()
    assert list(a & b) == [1, 3] and list(a | b) == [1, 2, 3, 4]
    assert list(a ^ b) == [2, 4] and list(a - b) == [2]
    assert list(b & empty) == [] and list(empty & b) == []
    assert list(b | empty) == [1, 3, 4] and list(empty | b) == [1, 3, 4]
    assert list(b ^ empty) == [1, 3, 4] and list(empty ^ b) == [1, 3, 4]
    assert list(b - empty) == [1, 3, 4] and list(empty - b) == []
    assert empty.first() is None and empty.last() is None and empty.to_bytes() == b""


def test_membership_first_last_and_length() -> None:
    field = BitField.from_ranges([(10, 20), (30, 40), (50, 55)])
    assert len(field) == 25
    assert field.first() == 10 and field.last() == 54
    assert 10 in field and 19 in field and 20 not in field and 9 not in field
    assert 54 in field and 55 not in field and -1 not in field
    assert BitField.from_ranges([(3, 8), (0, 4), (8, 9), (12, 12)]) == BitField.from_ranges(
        [(0, 9)]
    )


# -- properties ----------------------------------------------------------------------------

small_sets = st.frozensets(st.integers(min_value=0, max_value=150), max_size=60)


@st.composite
def run_lists(draw: st.DrawFn) -> Ranges:
    """Ranges with run and gap lengths drawn across every block size, up to the u64 limit."""
    lengths = st.one_of(st.integers(1, 20), st.integers(16, 1 << 20), st.integers(1 << 20, 1 << 62))
    out: Ranges = []
    index = draw(st.one_of(st.just(0), lengths))
    for _ in range(draw(st.integers(0, 30))):
        end = index + draw(lengths)
        if end > BIT_LIMIT:
            break
        out.append((index, end))
        index = end + draw(lengths)
    return out


@given(run_lists())
@settings(max_examples=300, deadline=None)
def test_ranges_round_trip_through_rle_plus(ranges: Ranges) -> None:
    field = BitField.from_ranges(ranges)
    assert list(field.ranges()) == ranges
    encoded = field.to_bytes()
    decoded = BitField.from_bytes(encoded)
    assert list(decoded.ranges()) == ranges
    assert decoded.to_bytes() == encoded
    assert BitField.from_run_lengths(field.to_run_lengths()) == field
    assert ranges_of_runs(*spec_runs(encoded)) == ranges if ranges else encoded == b""


@given(small_sets, small_sets)
@settings(max_examples=300, deadline=None)
def test_set_operations_agree_with_python_sets(a: frozenset[int], b: frozenset[int]) -> None:
    fa, fb = BitField.from_indices(a), BitField.from_indices(b)
    assert set(fa | fb) == a | b
    assert set(fa & fb) == a & b
    assert set(fa - fb) == a - b
    assert set(fa ^ fb) == a ^ b
    assert len(fa) == len(a) and list(fa) == sorted(a)
    assert fa.first() == min(a, default=None) and fa.last() == max(a, default=None)
    assert all((i in fa) == (i in a) for i in range(152))
    assert fa.contains_any(fb) == bool(a & b) and fa.contains_all(fb) == (b <= a)
    kept = sorted(a - b)
    assert list(fa.cut(fb)) == [i - sum(1 for j in b if j < i) for i in kept]


@given(st.binary(max_size=40))
@settings(max_examples=500, deadline=None)
def test_whatever_decodes_strictly_re_encodes_identically(data: bytes) -> None:
    try:
        field = BitField.from_bytes(data)
    except BitfieldError:
        return
    assert field.to_bytes() == data
    if data:
        assert ranges_of_runs(*spec_runs(data)) == list(field.ranges())


# -- real bitfields in the vectors' actor state --------------------------------------------


def byte_strings(value: Any) -> Iterator[bytes]:
    if isinstance(value, bytes):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from byte_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from byte_strings(item)


def _ignore_tag(tag: cbor2.CBORTag, immutable: bool) -> None:
    return None


@pytest.fixture(scope="module")
def vector_byte_strings(vectors_dir: Path) -> set[bytes]:
    """Every byte string inside every DAG-CBOR block of every vector.

    Only byte strings matter here, so links (tag 42) are skipped instead of parsed.
    """
    seen = set()
    found: set[bytes] = set()
    for path in find_vectors(vectors_dir / "extracted"):
        vector = load_vector(path)
        for cid, block in CarReader.from_bytes(vector.car, source=str(path)):
            if cid.codec != DAG_CBOR or cid in seen:
                continue
            seen.add(cid)
            found.update(byte_strings(cbor2.loads(block, tag_hook=_ignore_tag)))
    return found


@pytest.mark.slow
def test_real_bitfields_in_vector_state_re_encode_identically(
    vector_byte_strings: set[bytes],
) -> None:
    decoded = 0
    largest_runs = 0
    for data in vector_byte_strings:
        if not data or data[0] & 0b11:
            continue
        try:
            field = BitField.from_bytes(data)
        except BitfieldError:
            continue
        decoded += 1
        assert field.to_bytes() == data
        ranges = list(field.ranges())
        assert ranges_of_runs(*spec_runs(data)) == ranges
        largest_runs = max(largest_runs, len(ranges))
    # The corpus holds tens of thousands of such values, among them miner bitfields (allocated
    # sectors) with more than ten thousand runs.
    assert decoded > 10_000
    assert largest_runs > 10_000


def test_decoding_errors_are_malformed_input_naming_the_bit() -> None:
    with pytest.raises(MalformedInput) as info:
        BitField.from_bytes(pack_bits([0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1]))
    assert info.value.where == "bit 3"
    assert "short block" in str(info.value)
