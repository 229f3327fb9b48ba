"""Token amounts: Filecoin's big-integer bytes and the FIL text forms of ref-fvm and Lotus."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.conformance.vector import find_vectors, load_vector
from fvm.token import (
    FILECOIN_PRECISION,
    MAX_BIGINT_SIZE,
    TOTAL_FILECOIN,
    BigIntError,
    bigint_from_cbor,
    decode_bigint,
    decode_biguint,
    encode_bigint,
    encode_biguint,
    format_decimal,
    format_fil,
    format_fil_nano,
    format_fil_short,
    from_nano,
    from_whole,
    parse_fil,
)
from store import dag_cbor


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b""),
        (1, b"\x00\x01"),
        (-1, b"\x01\x01"),
        (255, b"\x00\xff"),
        (256, b"\x00\x01\x00"),
        (-256, b"\x01\x01\x00"),
        (FILECOIN_PRECISION, b"\x00\x0d\xe0\xb6\xb3\xa7\x64\x00\x00"),
        # a gas fee cap from the first shark vector's message
        (1650712149, b"\x00\x62\x63\xde\x55"),
    ],
)
def test_bigint_encoding_matches_filecoin_bytes(value: int, encoded: bytes) -> None:
    assert encode_bigint(value) == encoded
    assert decode_bigint(encoded) == value


def test_bigint_cbor_is_a_byte_string() -> None:
    assert dag_cbor.encode(encode_bigint(1000)) == bytes([0x43, 0x00, 0x03, 0xE8])
    assert bigint_from_cbor(b"\x00\x03\xe8") == 1000
    with pytest.raises(BigIntError, match="byte string"):
        bigint_from_cbor(1000)


def test_bigint_decoding_is_as_lenient_as_the_references() -> None:
    # sign byte without magnitude and leading zero bytes decode (they do not re-encode alike)
    assert decode_bigint(b"\x00") == 0
    assert decode_bigint(b"\x01") == 0
    assert decode_bigint(b"\x00\x00\x05") == 5
    assert decode_bigint(b"\x01\x00\x05") == -5


def test_bigint_with_invalid_sign_byte_is_rejected() -> None:
    with pytest.raises(BigIntError, match="sign byte must be 0 or 1, got 2"):
        decode_bigint(b"\x02\x01", "somewhere")


def test_bigint_limit_is_128_bytes_including_the_sign() -> None:
    largest = (1 << (8 * (MAX_BIGINT_SIZE - 1))) - 1
    assert len(encode_bigint(largest)) == MAX_BIGINT_SIZE
    assert decode_bigint(encode_bigint(-largest)) == -largest
    with pytest.raises(BigIntError, match="exceeds 128"):
        encode_bigint(largest + 1)
    with pytest.raises(BigIntError, match="exceeds 128"):
        decode_bigint(b"\x00" + b"\xff" * MAX_BIGINT_SIZE)


def test_biguint_requires_the_positive_sign_byte() -> None:
    assert encode_biguint(7) == b"\x00\x07"
    assert decode_biguint(b"\x00\x07") == 7
    assert decode_biguint(b"") == 0
    with pytest.raises(BigIntError):
        decode_biguint(b"\x01\x07")
    with pytest.raises(BigIntError):
        encode_biguint(-7)


@given(st.integers(-(1 << 1000), 1 << 1000))
def test_bigint_round_trips(value: int) -> None:
    assert decode_bigint(encode_bigint(value)) == value


def test_every_message_amount_in_the_vectors_re_encodes_identically(vectors_dir: Path) -> None:
    checked = 0
    for path in find_vectors(vectors_dir):
        for message in load_vector(path).messages:
            fields = dag_cbor.decode(message.data)
            for raw in (fields[4], fields[6], fields[7]):
                assert encode_bigint(decode_bigint(raw)) == raw
                checked += 1
    assert checked >= 3 * 309


def test_constants_match_the_references() -> None:
    assert FILECOIN_PRECISION == 10**18
    assert TOTAL_FILECOIN == 2_000_000_000 * 10**18
    assert from_whole(3) == 3 * 10**18
    assert from_nano(1) == 10**9


# ref-fvm shared/src/econ/mod.rs tests (Display)
@pytest.mark.parametrize(
    ("atto", "precision", "expected"),
    [
        (0, None, "0.0"),
        (1, None, "0.000000000000000001"),
        (1000, None, "0.000000000000001"),
        (123_400_000_000_000_000, None, "0.1234"),
        (101_010_000_000_000_000, None, "0.10101"),
        (10**18, None, "1.0"),
        (1_100_000_000_000_000_000, None, "1.1"),
        (1_000_000_000_000_000_001, None, "1.000000000000000001"),
        (1234 * 10**18 + 123_456_789, None, "1234.000000000123456789"),
        (0, 1, "0.0"),
        (0, 3, "0.000"),
        (1, 3, "0.000"),
        (123_456_789_000_000_000, 3, "0.123"),
        (123_456_789_000_000_000, 12, "0.123456789000"),
        (-from_nano(1000), None, "-0.000001"),
    ],
)
def test_decimal_display_matches_ref_fvm(atto: int, precision: int | None, expected: str) -> None:
    assert format_decimal(atto, precision) == expected


# Lotus chain/types/fil_test.go TestFilShort
SHORT_CASES = [
    ("1", "1 FIL"), ("1.1", "1.1 FIL"), ("12", "12 FIL"), ("123", "123 FIL"),
    ("123456", "123456 FIL"), ("123.23", "123.23 FIL"), ("123456.234", "123456.234 FIL"),
    ("123456.2341234", "123456.234 FIL"), ("123456.234123445", "123456.234 FIL"),
    ("0.1", "100 mFIL"), ("0.01", "10 mFIL"), ("0.001", "1 mFIL"),
    ("0.0001", "100 μFIL"), ("0.00001", "10 μFIL"), ("0.000001", "1 μFIL"),
    ("0.0000001", "100 nFIL"), ("0.00000001", "10 nFIL"), ("0.000000001", "1 nFIL"),
    ("0.0000000001", "100 pFIL"), ("0.00000000001", "10 pFIL"), ("0.000000000001", "1 pFIL"),
    ("0.0000000000001", "100 fFIL"), ("0.00000000000001", "10 fFIL"),
    ("0.000000000000001", "1 fFIL"),
    ("0.0000000000000001", "100 aFIL"), ("0.00000000000000001", "10 aFIL"),
    ("0.000000000000000001", "1 aFIL"),
    ("0.0000012", "1.2 μFIL"), ("0.00000123", "1.23 μFIL"), ("0.000001234", "1.234 μFIL"),
    ("0.0000012344", "1.234 μFIL"), ("0.00000123444", "1.234 μFIL"),
    ("0.0002212", "221.2 μFIL"), ("0.00022123", "221.23 μFIL"), ("0.000221234", "221.234 μFIL"),
    ("0.0002212344", "221.234 μFIL"), ("0.00022123444", "221.234 μFIL"),
]  # fmt: skip


@pytest.mark.parametrize(("fil", "expected"), SHORT_CASES)
def test_short_fil_matches_lotus(fil: str, expected: str) -> None:
    assert format_fil_short(parse_fil(fil)) == expected
    assert format_fil_short(parse_fil("-" + fil)) == "-" + expected


def test_short_fil_rounds_half_away_from_zero_like_go() -> None:
    assert format_fil_short(parse_fil("0.0012345")) == "1.235 mFIL"
    assert format_fil_short(parse_fil("-0.0012345")) == "-1.235 mFIL"
    assert format_fil_short(0) == "0"


# Lotus chain/types/bigint_test.go TestFilRoundTrip
@pytest.mark.parametrize(
    "text",
    ["0 FIL", "1 FIL", "1.001 FIL", "100.10001 FIL", "101100 FIL", "5000.01 FIL", "5000 FIL"],
)
def test_fil_string_round_trips_like_lotus(text: str) -> None:
    assert format_fil(parse_fil(text)) == text


@pytest.mark.parametrize(
    ("text", "atto"),
    [
        ("1", 10**18),
        ("1.5", 15 * 10**17),
        ("-2 fil", -2 * 10**18),
        (".5", 5 * 10**17),
        ("100 attoFIL", 100),
        ("100 afil", 100),
        ("0.000000000000000001", 1),
    ],
)
def test_parse_fil_accepts_what_lotus_accepts(text: str, atto: int) -> None:
    assert parse_fil(text) == atto


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 BTC", "unrecognized suffix"),
        ("0.0000000000000000001", "invalid FIL value"),
        ("1.5 attofil", "invalid attoFIL value"),
        ("1.2.3", "failed to parse"),
        ("-", "failed to parse"),
        ("1" * 51, "string length too large"),
    ],
)
def test_parse_fil_rejects_what_lotus_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fil(text)


def test_fil_and_nano_strings_trim_trailing_zeros() -> None:
    assert format_fil(TOTAL_FILECOIN) == "2000000000 FIL"
    assert format_fil(-15 * 10**17) == "-1.5 FIL"
    assert format_fil_nano(1_500_000_000) == "1.5 nFIL"
    assert format_fil_nano(0) == "0"
