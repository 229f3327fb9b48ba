"""The /fil/hello/1.0.0 messages: cbor-gen's bytes, round trips, strict refusal of bad input.

Expected bytes are assembled by hand from Lotus ``node/hello/cbor_gen.go`` (array header, then
each field's major type and value), independently of the encoder under test.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainsync.hello import (
    MAX_TIPSET_CIDS,
    HelloCodecError,
    HelloMessage,
    LatencyMessage,
)
from store import dag_cbor
from store.car import read_car
from store.cid import CID
from store.errors import MalformedInput

MAINNET_GENESIS = CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2")


def cbor_link(cid: CID) -> bytes:
    raw = b"\x00" + cid.to_bytes()
    return b"\xd8\x2a\x58" + bytes([len(raw)]) + raw


def test_hello_bytes_follow_cbor_gen_field_by_field() -> None:
    head = CID.hash_of(b"block")
    message = HelloMessage((head,), 1_000_000, 0x0102, MAINNET_GENESIS)
    expected = (
        b"\x84"  # array of 4
        + b"\x81"
        + cbor_link(head)  # HeaviestTipSet: array of 1 CID
        + b"\x1a\x00\x0f\x42\x40"  # height 1000000, uint32 head
        + b"\x43\x00\x01\x02"  # weight: byte string, sign byte 0 then big-endian 0x0102
        + cbor_link(MAINNET_GENESIS)
    )
    assert message.encode() == expected
    assert HelloMessage.decode(expected) == message


def test_latency_bytes_follow_cbor_gen_including_negative_times() -> None:
    message = LatencyMessage(t_arrival=1_700_000_000_000_000_000, t_sent=-1)
    expected = b"\x82" + b"\x1b" + (1_700_000_000_000_000_000).to_bytes(8, "big") + b"\x20"
    assert message.encode() == expected
    assert LatencyMessage.decode(expected) == message


def test_hello_announcing_the_real_mainnet_genesis(mainnet_genesis: Path) -> None:
    header, _ = read_car(mainnet_genesis)
    genesis = header.roots[0]
    assert genesis == MAINNET_GENESIS
    hello = HelloMessage((genesis,), 0, 0, genesis)
    decoded = HelloMessage.decode(hello.encode())
    assert decoded.genesis_hash == genesis
    assert decoded.heaviest_tipset_weight == 0
    # Zero weight is the empty byte string (0x40), as go-state-types writes it.
    assert hello.encode() == b"\x84\x81" + cbor_link(genesis) + b"\x00\x40" + cbor_link(genesis)


cids = st.binary(min_size=0, max_size=40).map(CID.hash_of)
int64s = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


@given(
    st.lists(cids, max_size=20),
    int64s,
    st.integers(min_value=-(1 << 600), max_value=1 << 600),
    cids,
)
def test_hello_round_trips(tipset: list[CID], height: int, weight: int, genesis: CID) -> None:
    message = HelloMessage(tuple(tipset), height, weight, genesis)
    encoded = message.encode()
    assert HelloMessage.decode(encoded) == message
    assert HelloMessage.decode(encoded).encode() == encoded


@given(int64s, int64s)
def test_latency_round_trips(arrival: int, sent: int) -> None:
    message = LatencyMessage(arrival, sent)
    assert LatencyMessage.decode(message.encode()) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[], 0, b"", MAINNET_GENESIS, 1], "4 fields"),
        ([[], 0, b""], "4 fields"),
        ({"HeaviestTipSet": []}, "array"),
        ([b"", 0, b"", MAINNET_GENESIS], "HeaviestTipSet must be a CBOR array"),
        ([[b"not a cid"], 0, b"", MAINNET_GENESIS], "HeaviestTipSet[0] must be a CID"),
        ([[], "0", b"", MAINNET_GENESIS], "HeaviestTipSetHeight"),
        ([[], 1 << 63, b"", MAINNET_GENESIS], "HeaviestTipSetHeight"),
        ([[], 0, 5, MAINNET_GENESIS], "HeaviestTipSetWeight"),
        ([[], 0, b"\x02\x01", MAINNET_GENESIS], "sign byte"),
        ([[], 0, b"\x00\x00\x01", MAINNET_GENESIS], "minimally encoded"),
        ([[], 0, b"", None], "GenesisHash must be a CID"),
    ],
)
def test_malformed_hello_is_refused_with_a_typed_error(value: object, message: str) -> None:
    with pytest.raises(HelloCodecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        HelloMessage.decode(dag_cbor.encode(value))


def test_hello_with_too_many_tipset_cids_is_refused_both_ways() -> None:
    too_many = [MAINNET_GENESIS] * (MAX_TIPSET_CIDS + 1)
    with pytest.raises(HelloCodecError, match="more than 8192"):
        HelloMessage.decode(dag_cbor.encode([too_many, 0, b"", MAINNET_GENESIS]))
    with pytest.raises(HelloCodecError, match="more than 8192"):
        HelloMessage(tuple(too_many), 0, 0, MAINNET_GENESIS).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x82\x00",  # truncated
        b"\x82\x00\x00\x00",  # trailing byte
        b"\x82\x18\x01\x00",  # non-minimal integer
        b"\x9f\x00\x00\xff",  # indefinite-length array
        b"\x82\x00\xf9\x3c\x00",  # a float
        b"\x82\x00\x41\x00",  # bytes instead of an integer
        b"\x83\x00\x00\x00",  # three fields
    ],
)
def test_malformed_latency_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(HelloCodecError) as info:
        LatencyMessage.decode(data, "peer X")
    assert isinstance(info.value, MalformedInput)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoders(data: bytes) -> None:
    for decoder in (HelloMessage.decode, LatencyMessage.decode):
        with contextlib.suppress(HelloCodecError):
            decoder(data)


def test_out_of_range_values_cannot_be_encoded() -> None:
    with pytest.raises(HelloCodecError):
        LatencyMessage(1 << 63, 0).encode()
    with pytest.raises(HelloCodecError):
        HelloMessage((), -(1 << 63) - 1, 0, MAINNET_GENESIS).encode()
