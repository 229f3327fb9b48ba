"""The /fil/chain/xchg/0.0.1 protocol: cbor-gen's bytes, strict decoding, the server's request
handling over a chain reader and the client's response checks, on headers derived from the real
mainnet genesis header."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsync.chain_exchange import (
    BLOCK_MESSAGE_LIMIT,
    HEADERS,
    MAX_REQUEST_LENGTH,
    MESSAGES,
    BSTipSet,
    CompactedMessages,
    ExchangeCodecError,
    ExchangeResponseError,
    ExchangeStatusError,
    Request,
    Response,
    Status,
    compact_messages,
    expand_compacted,
    process_response,
    serve_request,
    validate_request,
)
from chainsync.chain_types import BlockHeader, ElectionProof, Ticket, TipSet, TipSetKey
from fvm.address import Address
from fvm.message import Message, SignedMessage
from fvm.signature import Signature
from store import dag_cbor
from store.car import read_car
from store.cid import CID
from store.errors import BlockNotFound


def cbor_link(cid: CID) -> bytes:
    raw = b"\x00" + cid.to_bytes()
    return b"\xd8\x2a\x58" + bytes([len(raw)]) + raw


@pytest.fixture(scope="module")
def genesis(mainnet_genesis: Path) -> BlockHeader:
    car_header, blocks = read_car(mainnet_genesis)
    store = dict(blocks)
    root = car_header.roots[0]
    return BlockHeader.decode(store[root], str(root))


def child(parent: TipSet, miner: int, height: int | None = None) -> BlockHeader:
    base = parent.blocks[0]
    return dataclasses.replace(
        base,
        miner=Address.new_id(miner),
        ticket=Ticket(miner.to_bytes(4, "big") * 8),
        election_proof=ElectionProof(1, b"\x01" * 96),
        beacon_entries=(),
        parents=parent.cids,
        height=parent.height + 1 if height is None else height,
        timestamp=base.timestamp + 30,
    )


def bls_message(sender: int, nonce: int) -> Message:
    return Message(
        to=Address.new_id(99), from_=Address.new_id(sender), sequence=nonce, gas_limit=1_000_000
    )


def secp_message(sender: int, nonce: int) -> SignedMessage:
    return SignedMessage(bls_message(sender, nonce), Signature.new_secp256k1(bytes([nonce]) * 65))


class DictChain:
    """A ChainReader over dictionaries."""

    def __init__(self, tipsets: Sequence[TipSet]) -> None:
        self.tipsets = {tipset.key: tipset for tipset in tipsets}
        self.messages: dict[CID, tuple[list[Message], list[SignedMessage]]] = {}
        self.broken: set[CID] = set()

    def get_tipset(self, key: TipSetKey) -> TipSet | None:
        return self.tipsets.get(key)

    def block_messages(
        self, header: BlockHeader
    ) -> tuple[Sequence[Message], Sequence[SignedMessage]]:
        if header.cid() in self.broken:
            raise BlockNotFound(header.messages)
        return self.messages.get(header.cid(), ([], []))


@pytest.fixture(scope="module")
def chain(genesis: BlockHeader) -> list[TipSet]:
    """Head first: a one-block tipset at 2, a two-block tipset at 1, the genesis."""
    ts0 = TipSet([genesis])
    ts1 = TipSet([child(ts0, 1000), child(ts0, 1001)])
    ts2 = TipSet([child(ts1, 1002)])
    return [ts2, ts1, ts0]


@pytest.fixture
def reader(chain: list[TipSet]) -> DictChain:
    reader = DictChain(chain)
    first, second = chain[1].blocks
    shared = bls_message(5, 0)
    reader.messages[first.cid()] = ([shared, bls_message(6, 0)], [secp_message(7, 0)])
    reader.messages[second.cid()] = ([shared], [secp_message(7, 0), secp_message(7, 1)])
    return reader


# -- bytes ----------------------------------------------------------------------------------


def test_request_bytes_follow_cbor_gen(chain: list[TipSet]) -> None:
    head = chain[0].cids[0]
    request = Request((head,), MAX_REQUEST_LENGTH, HEADERS | MESSAGES)
    expected = b"\x83" + b"\x81" + cbor_link(head) + b"\x19\x03\x84" + b"\x03"
    assert request.encode() == expected
    assert Request.decode(expected) == request


def test_response_bytes_follow_cbor_gen_with_nil_messages_as_null() -> None:
    response = Response(Status.PARTIAL, "", (BSTipSet((), None),))
    expected = b"\x83" + b"\x18\x65" + b"\x60" + b"\x81" + b"\x82\x80\xf6"
    assert response.encode() == expected
    assert Response.decode(expected) == response


def test_compacted_messages_bytes_follow_cbor_gen() -> None:
    message = bls_message(5, 0)
    compacted = CompactedMessages((message,), ((0,), ()), (), ((), ()))
    expected = (
        b"\x84" + b"\x81" + message.encode() + b"\x82\x81\x00\x80" + b"\x80" + b"\x82\x80\x80"
    )
    assert compacted.encode() == expected
    assert CompactedMessages.decode(expected) == compacted


def test_a_full_response_with_real_derived_headers_round_trips(
    chain: list[TipSet], reader: DictChain
) -> None:
    response = serve_request(Request(chain[0].cids, 3, HEADERS | MESSAGES), reader)
    encoded = response.encode()
    decoded = Response.decode(encoded, "peer")
    assert decoded == response
    assert decoded.encode() == encoded
    assert [bs.blocks for bs in decoded.chain] == [ts.blocks for ts in chain]


cids = st.binary(max_size=16).map(CID.hash_of)
u64s = st.integers(min_value=0, max_value=(1 << 64) - 1)
messages = st.builds(
    bls_message, st.integers(min_value=0, max_value=1 << 40), st.integers(0, 1 << 20)
)
signed = st.builds(secp_message, st.integers(min_value=0, max_value=1 << 40), st.integers(0, 255))
includes = st.lists(st.lists(u64s, max_size=5).map(tuple), max_size=4).map(tuple)


@given(st.lists(cids, max_size=10), u64s, u64s)
def test_requests_round_trip(head: list[CID], length: int, options: int) -> None:
    request = Request(tuple(head), length, options)
    assert Request.decode(request.encode()) == request


@settings(max_examples=50)
@given(
    st.lists(messages, max_size=4).map(tuple),
    includes,
    st.lists(signed, max_size=4).map(tuple),
    includes,
    st.sampled_from(list(Status)),
    st.text(max_size=30),
)
def test_responses_with_compacted_messages_round_trip(
    bls: tuple[Message, ...],
    bls_includes: tuple[tuple[int, ...], ...],
    secpk: tuple[SignedMessage, ...],
    secpk_includes: tuple[tuple[int, ...], ...],
    status: Status,
    error: str,
) -> None:
    compacted = CompactedMessages(bls, bls_includes, secpk, secpk_includes)
    response = Response(status, error, (BSTipSet((), compacted), BSTipSet((), None)))
    assert Response.decode(response.encode()) == response


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoders(data: bytes) -> None:
    for decoder in (Request.decode, Response.decode, CompactedMessages.decode):
        with contextlib.suppress(ExchangeCodecError):
            decoder(data)


# -- strict decoding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[], 1], "3 fields"),
        ([[], 1, 1, 1], "3 fields"),
        ([[b"x"], 1, 1], "must be a CID"),
        ([[], -1, 1], "Length must be a 64-bit unsigned"),
        ([[], 1, "1"], "Options must be a 64-bit unsigned"),
        ([None, 1, 1], "Head must be a CBOR array"),
    ],
)
def test_malformed_requests_are_refused(value: object, message: str) -> None:
    with pytest.raises(ExchangeCodecError, match=message):
        Request.decode(dag_cbor.encode(value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([0, "", []], None),
        ([0, b"", []], "ErrorMessage must be a CBOR text string"),
        ([0, "x" * 8193, []], "longer than 8192"),
        ([-1, "", []], "Status must be a 64-bit unsigned"),
        ([0, "", [None]], r"Chain\[0\] is null"),
        ([0, "", [[[], None, None]]], "BSTipSet must have 2 fields"),
        ([0, "", [[[None], None]]], r"Blocks\[0\] is null"),
        ([0, "", [[[[1, 2]], None]]], "BlockHeader"),
        ([0, "", [[[], [[], [], []]]]], "CompactedMessages must have 4 fields"),
        ([0, "", [[[], [[None], [], [], []]]]], r"Bls\[0\] is null"),
        ([0, "", [[[], [[[0]], [], [], []]]]], r"Bls\[0\]"),
        ([0, "", [[[], [[], [[-1]], [], []]]]], "BlsIncludes"),
        ([0, "", [[[], [[], [0], [], []]]]], "BlsIncludes"),
        (
            [0, "", [[[], [[], [], [], [[BLOCK_MESSAGE_LIMIT] * (BLOCK_MESSAGE_LIMIT + 1)]]]]],
            "more than 10000",
        ),
    ],
)
def test_malformed_responses_are_refused(value: object, message: str | None) -> None:
    data = dag_cbor.encode(value)
    if message is None:
        Response.decode(data)
        return
    with pytest.raises(ExchangeCodecError, match=message):
        Response.decode(data)


def test_oversized_chain_is_refused() -> None:
    data = dag_cbor.encode([0, "", [[[], None]] * 8193])
    with pytest.raises(ExchangeCodecError, match="more than 8192"):
        Response.decode(data)


def test_non_canonical_bytes_are_refused() -> None:
    with pytest.raises(ExchangeCodecError):
        Request.decode(b"\x83\x80\x18\x01\x01")  # Length as a two-byte integer


# -- server ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (Request((CID.hash_of(b"h"),), 1, 0), "no options set"),
        (Request((CID.hash_of(b"h"),), 1, 4), "no options set"),
        (Request((CID.hash_of(b"h"),), 901, HEADERS), "request length over maximum allowed (900)"),
        (Request((CID.hash_of(b"h"),), 0, HEADERS), "invalid request length of zero"),
        (Request((), 1, HEADERS), "no cids in request"),
    ],
)
def test_bad_requests_get_lotus_bad_request_answers(request_: Request, text: str) -> None:
    assert validate_request(request_) == Response(Status.BAD_REQUEST, text)
    assert serve_request(request_, DictChain([])) == Response(Status.BAD_REQUEST, text)


def test_headers_only_walk_back_from_the_head(chain: list[TipSet], reader: DictChain) -> None:
    response = serve_request(Request(chain[0].cids, 2, HEADERS), reader)
    assert response.status == Status.OK
    assert [bs.blocks for bs in response.chain] == [chain[0].blocks, chain[1].blocks]
    assert all(bs.messages is None for bs in response.chain)


def test_serving_stops_at_genesis_with_a_partial_status(
    chain: list[TipSet], reader: DictChain
) -> None:
    response = serve_request(Request(chain[1].cids, 10, HEADERS), reader)
    assert response.status == Status.PARTIAL
    assert len(response.chain) == 2
    assert response.chain[-1].blocks[0].height == 0


def test_messages_are_compacted_once_per_tipset(chain: list[TipSet], reader: DictChain) -> None:
    response = serve_request(Request(chain[1].cids, 1, MESSAGES), reader)
    (bs,) = response.chain
    assert bs.blocks == ()
    assert bs.messages is not None
    first, second = chain[1].blocks
    assert [m.from_.id for m in bs.messages.bls] == [5, 6]
    assert [m.message.sequence for m in bs.messages.secpk] == [0, 1]
    assert bs.messages.bls_includes == ((0, 1), (0,))
    assert bs.messages.secpk_includes == ((0,), (0, 1))
    full = expand_compacted(chain[1], bs.messages)
    for block, header in zip(full, (first, second), strict=True):
        bls, secp = reader.messages[header.cid()]
        assert block.header == header
        assert list(block.bls_messages) == bls
        assert list(block.secpk_messages) == secp


def test_compaction_then_expansion_restores_each_blocks_messages(chain: list[TipSet]) -> None:
    per_block = [
        ([bls_message(1, 0), bls_message(1, 1)], [secp_message(2, 0)]),
        ([bls_message(1, 1)], [secp_message(2, 0), secp_message(3, 4)]),
    ]
    compacted = compact_messages(per_block)
    assert len(compacted.bls) == 2 and len(compacted.secpk) == 2
    restored = expand_compacted(chain[1], compacted)
    assert [(list(b.bls_messages), list(b.secpk_messages)) for b in restored] == per_block


def test_unknown_head_is_an_internal_error(reader: DictChain) -> None:
    response = serve_request(Request((CID.hash_of(b"nowhere"),), 1, HEADERS), reader)
    assert response.status == Status.INTERNAL_ERROR
    assert "failed loading tipset" in response.error_message
    assert response.chain == ()


def test_unreadable_messages_are_an_internal_error(chain: list[TipSet], reader: DictChain) -> None:
    reader.broken.add(chain[1].blocks[1].cid())
    response = serve_request(Request(chain[0].cids, 2, MESSAGES), reader)
    assert response.status == Status.INTERNAL_ERROR
    assert response.error_message.startswith("gather messages failed")


# -- client ----------------------------------------------------------------------------------


def test_a_served_response_passes_the_client_checks_after_the_wire(
    chain: list[TipSet], reader: DictChain
) -> None:
    request = Request(chain[0].cids, 3, HEADERS | MESSAGES)
    wire = serve_request(Request.decode(request.encode()), reader).encode()
    validated = process_response(request, Response.decode(wire))
    assert validated.tipsets == tuple(chain)
    full = validated.full_tipsets()
    assert [len(blocks) for blocks in full] == [1, 2, 1]
    assert [len(b.bls_messages) for b in full[1]] == [2, 1]


def test_messages_only_are_checked_against_the_callers_tipsets(
    chain: list[TipSet], reader: DictChain
) -> None:
    request = Request(chain[0].cids, 2, MESSAGES)
    response = serve_request(request, reader)
    validated = process_response(request, response, chain[:2])
    assert validated.tipsets == ()
    assert validated.full_tipsets() == ()
    with pytest.raises(ExchangeResponseError, match="not enough tipsets provided"):
        process_response(request, response, chain[:1])
    with pytest.raises(ExchangeResponseError, match="does not match number of blocks"):
        process_response(request, response, [chain[1], chain[0]])


def test_head_given_in_another_order_still_matches(chain: list[TipSet], reader: DictChain) -> None:
    reversed_head = tuple(reversed(chain[1].cids))
    request = Request(reversed_head, 1, HEADERS)
    response = Response(Status.OK, "", (BSTipSet(chain[1].blocks),))
    assert process_response(request, response).tipsets == (chain[1],)


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (Status.NOT_FOUND, "not found"),
        (Status.GO_AWAY, "go away"),
        (Status.INTERNAL_ERROR, "block sync peer errored: boom"),
        (Status.BAD_REQUEST, "block sync request invalid: boom"),
        (77, "unrecognized response code: 77"),
    ],
)
def test_error_statuses_become_typed_errors(status: int, text: str) -> None:
    with pytest.raises(ExchangeStatusError, match=text) as info:
        process_response(Request((CID.hash_of(b"h"),), 1, HEADERS), Response(status, "boom"))
    assert info.value.status == status


def test_responses_that_do_not_answer_the_request_are_refused(chain: list[TipSet]) -> None:
    head = chain[0].cids
    ok = Status.OK

    def refused(request: Request, response: Response, text: str) -> None:
        with pytest.raises(ExchangeResponseError, match=text):
            process_response(request, response)

    full = [BSTipSet(ts.blocks, compact_messages([([], [])] * len(ts))) for ts in chain]
    refused(Request(head, 1, 0), Response(ok, "", tuple(full[:1])), "nothing was requested")
    refused(Request(head, 1, HEADERS), Response(ok), "got no chain")
    refused(Request(head, 1, HEADERS), Response(ok, "", tuple(full[:2])), "longer response")
    refused(Request(head, 3, HEADERS), Response(ok, "", tuple(full[:2])), "without a proper")
    refused(Request(chain[1].cids, 1, HEADERS), Response(ok, "", tuple(full[:1])), "head does")
    refused(
        Request(head, 2, HEADERS),
        Response(ok, "", (full[0], full[2])),
        r"not connected at height \(head - 0\)/\(head - 1\)",
    )
    refused(Request(head, 1, HEADERS), Response(ok, "", (BSTipSet(()),)), "invalid tipset blocks")
    refused(
        Request(head, 1, MESSAGES | HEADERS),
        Response(ok, "", (BSTipSet(chain[0].blocks),)),
        "no messages included",
    )
    out_of_range = CompactedMessages((), ((3,),), (), ((),))
    refused(
        Request(head, 1, MESSAGES | HEADERS),
        Response(ok, "", (BSTipSet(chain[0].blocks, out_of_range),)),
        r"index in BlsIncludes \(3\) exceeds number of messages \(0\)",
    )
    two_blocks_apart = (chain[0].blocks[0], chain[1].blocks[0])
    refused(
        Request(head, 1, HEADERS),
        Response(ok, "", (BSTipSet(two_blocks_apart),)),
        "invalid tipset blocks at height",
    )
