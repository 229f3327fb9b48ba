"""The ``/fil/chain/xchg/0.0.1`` chain exchange protocol: wire types, server logic, client checks.

A syncing node asks a peer for a run of tipsets going *backwards* from a head it names, with
their headers, their messages, or both. Ported from Lotus ``chain/exchange``:

* types and constants from ``protocol.go`` (``Request``, ``Response``, ``BSTipSet``,
  ``CompactedMessages``, the option bits and status codes; ``MaxRequestLength`` is
  ``policy.ChainFinality``, 900 epochs);
* wire form from ``cbor_gen.go`` and ``protocol_encoding.go``, every type a DAG-CBOR tuple:
  ``Request [Head [CID…], Length uint64, Options uint64]``,
  ``Response [Status uint64, ErrorMessage text (≤ 8192 bytes), Chain [BSTipSet…]]``,
  ``BSTipSet [Blocks [BlockHeader…], Messages CompactedMessages | null]``,
  ``CompactedMessages [Bls [Message…] (≤ 150000), BlsIncludes [[uint64…]…],
  Secpk [SignedMessage…] (≤ 150000), SecpkIncludes [[uint64…]…]]``, an includes list holding
  at most ``BlockMessageLimit`` (10000) indices and other arrays at most 8192 elements;
* the server's ``validateRequest`` and ``collectChainSegment`` / ``gatherMessages``
  (``server.go``) as :func:`validate_request` and :func:`serve_request` over a
  :class:`ChainReader`, so the networking layer only moves bytes;
* the client's ``processResponse`` / ``validateCompressedIndices`` (``client.go``) as
  :func:`process_response`, and ``toFullTipSets`` as :func:`expand_compacted`.

Decoding is stricter than cbor-gen in one way: a ``null`` where Lotus's decoder would leave a
nil pointer inside a list (a block, a tipset, a message) is refused while decoding, where Lotus
refuses it later (``processResponse``: "nil tipset", "nil block") or would crash on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, Protocol, TypeVar

from chainsync.chain_store import ChainStore, TipSetNotFound
from chainsync.chain_types import BlockHeader, FullBlock, TipSet, TipSetKey
from fvm.message import Message, SignedMessage
from store import dag_cbor
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

CHAIN_EXCHANGE_PROTOCOL_ID: Final = "/fil/chain/xchg/0.0.1"
# policy.ChainFinality: the most tipsets one request may ask for.
MAX_REQUEST_LENGTH: Final = 900
# cbor-gen's default slice limit, the response's error text limit, the compacted message lists'
# limit (BlockMessageLimit times 15 blocks) and one block's message limit.
MAX_ARRAY_LENGTH: Final = 8192
MAX_ERROR_MESSAGE_BYTES: Final = 8192
MAX_COMPACTED_MESSAGES: Final = 150_000
BLOCK_MESSAGE_LIMIT: Final = 10_000
MAX_U64: Final = (1 << 64) - 1

# Request option bits.
HEADERS: Final = 1
MESSAGES: Final = 2


class Status(IntEnum):
    """Response status codes; OK and PARTIAL carry a chain, the others are errors."""

    OK = 0
    PARTIAL = 101
    NOT_FOUND = 201
    GO_AWAY = 202
    INTERNAL_ERROR = 203
    BAD_REQUEST = 204


class ExchangeCodecError(MalformedInput):
    """Bytes that are not a chain exchange request or response."""


class ExchangeResponseError(MalformedInput):
    """A well-formed response that does not answer the request (Lotus ``processResponse``)."""


class ExchangeStatusError(ExchangeResponseError):
    """A response whose status is an error (or unknown); ``status`` is the code received."""

    def __init__(self, status: int, what: str) -> None:
        self.status = status
        super().__init__(what)


# -- field checks -------------------------------------------------------------------------


def _decode(data: bytes, name: str, where: str | None) -> Any:
    try:
        return dag_cbor.decode(data, where)
    except MalformedInput as exc:
        raise ExchangeCodecError(f"{name}: {exc.what}", where) from None


def _array(
    value: Any, name: str, where: str | None, *, arity: int | None = None, limit: int = 0
) -> list[Any]:
    if type(value) is not list:
        raise ExchangeCodecError(f"{name} must be a CBOR array, not {type(value).__name__}", where)
    if arity is not None and len(value) != arity:
        raise ExchangeCodecError(f"{name} must have {arity} fields, got {len(value)}", where)
    if limit and len(value) > limit:
        raise ExchangeCodecError(f"{name} has {len(value)} elements, more than {limit}", where)
    return value


def _uint64(value: Any, name: str, where: str | None) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise ExchangeCodecError(f"{name} must be a 64-bit unsigned integer", where)
    return value


def _cids(value: Any, name: str, where: str | None) -> tuple[CID, ...]:
    items = _array(value, name, where, limit=MAX_ARRAY_LENGTH)
    for index, item in enumerate(items):
        if type(item) is not CID:
            raise ExchangeCodecError(f"{name}[{index}] must be a CID", where)
    return tuple(items)


T = TypeVar("T")


def _items(
    value: Any, name: str, where: str | None, limit: int, parse: Callable[[Any, str | None], T]
) -> tuple[T, ...]:
    out: list[T] = []
    for index, item in enumerate(_array(value, name, where, limit=limit)):
        if item is None:
            raise ExchangeCodecError(f"{name}[{index}] is null", where)
        try:
            out.append(parse(item, where))
        except ExchangeCodecError:
            raise
        except MalformedInput as exc:
            raise ExchangeCodecError(f"{name}[{index}]: {exc.what}", where) from None
    return tuple(out)


def _includes(value: Any, name: str, where: str | None) -> tuple[tuple[int, ...], ...]:
    per_block = _array(value, name, where, limit=MAX_ARRAY_LENGTH)
    out: list[tuple[int, ...]] = []
    for block_index, indices in enumerate(per_block):
        entry = f"{name}[{block_index}]"
        items = _array(indices, entry, where, limit=BLOCK_MESSAGE_LIMIT)
        out.append(tuple(_uint64(item, entry, where) for item in items))
    return tuple(out)


def _check_length(items: Sequence[object], name: str, limit: int) -> None:
    if len(items) > limit:
        raise ExchangeCodecError(f"{name} has {len(items)} elements, more than {limit}")


# -- request ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """Ask for ``length`` tipsets going back from ``head`` (inclusive) with what ``options``
    selects (:data:`HEADERS` | :data:`MESSAGES`)."""

    head: tuple[CID, ...]
    length: int
    options: int

    @property
    def include_headers(self) -> bool:
        return self.options & HEADERS != 0

    @property
    def include_messages(self) -> bool:
        return self.options & MESSAGES != 0

    def to_cbor(self) -> list[Any]:
        _check_length(self.head, "Request.Head", MAX_ARRAY_LENGTH)
        for name, number in (("Length", self.length), ("Options", self.options)):
            if not 0 <= number <= MAX_U64:
                raise ExchangeCodecError(f"Request.{name} does not fit a uint64")
        return [list(self.head), self.length, self.options]

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> Request:
        head, length, options = _array(_decode(data, "Request", where), "Request", where, arity=3)
        return cls(
            _cids(head, "Request.Head", where),
            _uint64(length, "Request.Length", where),
            _uint64(options, "Request.Options", where),
        )


# -- messages of a tipset, compacted -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompactedMessages:
    """A tipset's distinct messages once each, and for each block the indices of its own."""

    bls: tuple[Message, ...] = ()
    bls_includes: tuple[tuple[int, ...], ...] = ()
    secpk: tuple[SignedMessage, ...] = ()
    secpk_includes: tuple[tuple[int, ...], ...] = ()

    def to_cbor(self) -> list[Any]:
        _check_length(self.bls, "CompactedMessages.Bls", MAX_COMPACTED_MESSAGES)
        _check_length(self.secpk, "CompactedMessages.Secpk", MAX_COMPACTED_MESSAGES)
        for name, includes in (
            ("BlsIncludes", self.bls_includes),
            ("SecpkIncludes", self.secpk_includes),
        ):
            _check_length(includes, f"CompactedMessages.{name}", MAX_ARRAY_LENGTH)
            for indices in includes:
                _check_length(indices, f"CompactedMessages.{name}[]", BLOCK_MESSAGE_LIMIT)
        return [
            [message.to_cbor() for message in self.bls],
            [list(indices) for indices in self.bls_includes],
            [message.to_cbor() for message in self.secpk],
            [list(indices) for indices in self.secpk_includes],
        ]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> CompactedMessages:
        bls, bls_includes, secpk, secpk_includes = _array(
            value, "CompactedMessages", where, arity=4
        )
        return cls(
            _items(bls, "CompactedMessages.Bls", where, MAX_COMPACTED_MESSAGES, Message.from_cbor),
            _includes(bls_includes, "CompactedMessages.BlsIncludes", where),
            _items(
                secpk,
                "CompactedMessages.Secpk",
                where,
                MAX_COMPACTED_MESSAGES,
                SignedMessage.from_cbor,
            ),
            _includes(secpk_includes, "CompactedMessages.SecpkIncludes", where),
        )

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> CompactedMessages:
        return cls.from_cbor(_decode(data, "CompactedMessages", where), where)


def compact_messages(
    per_block: Sequence[tuple[Sequence[Message], Sequence[SignedMessage]]],
) -> CompactedMessages:
    """Lotus ``gatherMessages``: each distinct message (by CID) once, in first-seen order, and
    each block's messages as indices into those lists."""
    bls: list[Message] = []
    secpk: list[SignedMessage] = []
    bls_index: dict[CID, int] = {}
    secpk_index: dict[CID, int] = {}
    bls_includes: list[tuple[int, ...]] = []
    secpk_includes: list[tuple[int, ...]] = []
    for bls_messages, secpk_messages in per_block:
        block_bls: list[int] = []
        for message in bls_messages:
            cid = message.cid()
            if cid not in bls_index:
                bls_index[cid] = len(bls)
                bls.append(message)
            block_bls.append(bls_index[cid])
        block_secpk: list[int] = []
        for signed in secpk_messages:
            cid = signed.cid()
            if cid not in secpk_index:
                secpk_index[cid] = len(secpk)
                secpk.append(signed)
            block_secpk.append(secpk_index[cid])
        bls_includes.append(tuple(block_bls))
        secpk_includes.append(tuple(block_secpk))
    return CompactedMessages(tuple(bls), tuple(bls_includes), tuple(secpk), tuple(secpk_includes))


def check_compacted_indices(block_count: int, messages: CompactedMessages) -> None:
    """Lotus ``validateCompressedIndices`` for one tipset: one includes list per block, every
    index inside the message lists. Raises :class:`ExchangeResponseError`."""
    for name, includes, available in (
        ("BlsIncludes", messages.bls_includes, len(messages.bls)),
        ("SecpkIncludes", messages.secpk_includes, len(messages.secpk)),
    ):
        if len(includes) != block_count:
            raise ExchangeResponseError(
                f"{name} ({len(includes)}) does not match number of blocks ({block_count})"
            )
        for indices in includes:
            for index in indices:
                if index >= available:
                    raise ExchangeResponseError(
                        f"index in {name} ({index}) exceeds number of messages ({available})"
                    )


def expand_compacted(tipset: TipSet, messages: CompactedMessages) -> tuple[FullBlock, ...]:
    """Lotus ``toFullTipSets`` for one tipset: each block with its own messages, in order.

    The indices are checked first (:func:`check_compacted_indices`).
    """
    check_compacted_indices(len(tipset), messages)
    return tuple(
        FullBlock(
            header,
            tuple(messages.bls[index] for index in messages.bls_includes[block_index]),
            tuple(messages.secpk[index] for index in messages.secpk_includes[block_index]),
        )
        for block_index, header in enumerate(tipset.blocks)
    )


# -- response -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BSTipSet:
    """One tipset of a response: its blocks (if asked for) and its messages (if asked for)."""

    blocks: tuple[BlockHeader, ...] = ()
    messages: CompactedMessages | None = None

    def to_cbor(self) -> list[Any]:
        _check_length(self.blocks, "BSTipSet.Blocks", MAX_ARRAY_LENGTH)
        return [
            [block.to_cbor() for block in self.blocks],
            None if self.messages is None else self.messages.to_cbor(),
        ]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> BSTipSet:
        blocks, messages = _array(value, "BSTipSet", where, arity=2)
        return cls(
            _items(blocks, "BSTipSet.Blocks", where, MAX_ARRAY_LENGTH, BlockHeader.from_cbor),
            None if messages is None else CompactedMessages.from_cbor(messages, where),
        )


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    error_message: str = ""
    chain: tuple[BSTipSet, ...] = ()

    def to_cbor(self) -> list[Any]:
        if not 0 <= self.status <= MAX_U64:
            raise ExchangeCodecError("Response.Status does not fit a uint64")
        if len(self.error_message.encode("utf-8")) > MAX_ERROR_MESSAGE_BYTES:
            raise ExchangeCodecError("Response.ErrorMessage is too long")
        _check_length(self.chain, "Response.Chain", MAX_ARRAY_LENGTH)
        return [self.status, self.error_message, [tipset.to_cbor() for tipset in self.chain]]

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> Response:
        status, error_message, chain = _array(
            _decode(data, "Response", where), "Response", where, arity=3
        )
        if type(error_message) is not str:
            raise ExchangeCodecError("Response.ErrorMessage must be a CBOR text string", where)
        if len(error_message.encode("utf-8")) > MAX_ERROR_MESSAGE_BYTES:
            raise ExchangeCodecError(
                f"Response.ErrorMessage is longer than {MAX_ERROR_MESSAGE_BYTES} bytes", where
            )
        return cls(
            _uint64(status, "Response.Status", where),
            error_message,
            _items(chain, "Response.Chain", where, MAX_ARRAY_LENGTH, BSTipSet.from_cbor),
        )


# -- server -------------------------------------------------------------------------------


class ChainReader(Protocol):
    """What the server needs from the chain store."""

    def get_tipset(self, key: TipSetKey) -> TipSet | None:
        """The tipset with this key, or None if it is not known."""

    def block_messages(
        self, header: BlockHeader
    ) -> tuple[Sequence[Message], Sequence[SignedMessage]]:
        """The BLS and the secp256k1 messages of one block, in the block's order. May raise
        :class:`~store.errors.FvmNodeError` (a missing or malformed block)."""


class ChainStoreReader(ChainReader):
    """:class:`ChainReader` over a :class:`~chainsync.chain_store.ChainStore`: what the node's
    chain-exchange server serves from."""

    def __init__(self, chain_store: ChainStore) -> None:
        self._chain_store = chain_store

    def get_tipset(self, key: TipSetKey) -> TipSet | None:
        try:
            return self._chain_store.get_tipset(key)
        except TipSetNotFound:
            return None

    def block_messages(self, header: BlockHeader) -> tuple[list[Message], list[SignedMessage]]:
        return self._chain_store.get_block_messages(header)


def validate_request(request: Request) -> Response | None:
    """Lotus ``validateRequest``: None if the request can be served, else the BadRequest
    response to send back."""
    if not request.include_headers and not request.include_messages:
        return Response(Status.BAD_REQUEST, "no options set")
    if request.length > MAX_REQUEST_LENGTH:
        return Response(
            Status.BAD_REQUEST, f"request length over maximum allowed ({MAX_REQUEST_LENGTH})"
        )
    if request.length == 0:
        return Response(Status.BAD_REQUEST, "invalid request length of zero")
    if not request.head:
        return Response(Status.BAD_REQUEST, "no cids in request")
    return None


def serve_request(request: Request, reader: ChainReader) -> Response:
    """Lotus ``processRequest``: validate, then walk back from the head collecting what was
    asked for, stopping after ``length`` tipsets or at genesis (status PARTIAL if fewer).

    An unknown tipset or unreadable messages give an INTERNAL_ERROR response, as in Lotus.
    """
    refusal = validate_request(request)
    if refusal is not None:
        return refusal
    chain: list[BSTipSet] = []
    key = TipSetKey(request.head)
    while True:
        tipset = reader.get_tipset(key)
        if tipset is None:
            return Response(Status.INTERNAL_ERROR, f"failed loading tipset {key}: not found")
        messages: CompactedMessages | None = None
        if request.include_messages:
            try:
                messages = compact_messages([reader.block_messages(h) for h in tipset.blocks])
            except FvmNodeError as exc:
                return Response(Status.INTERNAL_ERROR, f"gather messages failed: {exc}")
        chain.append(BSTipSet(tipset.blocks if request.include_headers else (), messages))
        if len(chain) >= request.length or tipset.height == 0:
            break
        key = tipset.parents
    status = Status.PARTIAL if len(chain) < request.length else Status.OK
    return Response(status, "", tuple(chain))


# -- client -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidatedResponse:
    """A response checked against its request: tipsets (if headers were asked for) and each
    tipset's messages (if messages were asked for), head first."""

    tipsets: tuple[TipSet, ...]
    messages: tuple[CompactedMessages, ...]

    def full_tipsets(self) -> tuple[tuple[FullBlock, ...], ...]:
        """Each tipset's blocks with their messages; empty unless both were returned."""
        if not self.tipsets or len(self.tipsets) != len(self.messages):
            return ()
        return tuple(
            expand_compacted(tipset, messages)
            for tipset, messages in zip(self.tipsets, self.messages, strict=True)
        )


def status_error(response: Response) -> ExchangeStatusError | None:
    """Lotus ``statusToError``: None for OK and PARTIAL, else the error to raise."""
    status = response.status
    if status in (Status.OK, Status.PARTIAL):
        return None
    texts: dict[int, str] = {
        Status.NOT_FOUND: "not found",
        Status.GO_AWAY: "not handling 'go away' chainxchg responses yet",
        Status.INTERNAL_ERROR: f"block sync peer errored: {response.error_message}",
        Status.BAD_REQUEST: f"block sync request invalid: {response.error_message}",
    }
    return ExchangeStatusError(status, texts.get(status, f"unrecognized response code: {status}"))


def process_response(
    request: Request, response: Response, known_tipsets: Sequence[TipSet] = ()
) -> ValidatedResponse:
    """Lotus ``processResponse``: check that ``response`` answers ``request``.

    The status must be OK or PARTIAL (fewer tipsets than asked only with PARTIAL), at least one
    and at most ``length`` tipsets; with headers, each tipset's blocks must form a tipset, the
    first must be the requested head (the same CIDs in any order, as Lotus's ``CidArrsEqual``
    compares) and each must be the child of the next; with messages,
    each tipset must carry them and their indices must fit the blocks — the blocks returned,
    or, when only messages were asked for, ``known_tipsets`` (the caller's, head first).
    Raises :class:`ExchangeStatusError` or :class:`ExchangeResponseError`.
    """
    error = status_error(response)
    if error is not None:
        raise error
    if not request.include_headers and not request.include_messages:
        raise ExchangeResponseError("nothing was requested")
    count = len(response.chain)
    if count == 0:
        raise ExchangeResponseError("got no chain in successful response")
    if count > request.length:
        raise ExchangeResponseError(
            f"got longer response ({count}) than requested ({request.length})"
        )
    if count < request.length and response.status != Status.PARTIAL:
        raise ExchangeResponseError(
            f"got less than requested without a proper status: {response.status}"
        )
    tipsets: tuple[TipSet, ...] = ()
    if request.include_headers:
        tipsets = tuple(_tipset_at(index, bs) for index, bs in enumerate(response.chain))
        head = request.head
        if len(tipsets[0].cids) != len(head) or not set(head) <= set(tipsets[0].cids):
            raise ExchangeResponseError("returned chain head does not match request")
        for index in range(count - 1):
            if not tipsets[index].is_child_of(tipsets[index + 1]):
                raise ExchangeResponseError(
                    f"tipsets are not connected at height (head - {index})/(head - {index + 1})"
                )
    messages: tuple[CompactedMessages, ...] = ()
    if request.include_messages:
        collected: list[CompactedMessages] = []
        for index, bs in enumerate(response.chain):
            if bs.messages is None:
                raise ExchangeResponseError(
                    f"no messages included for tipset at height (head - {index})"
                )
            collected.append(bs.messages)
        messages = tuple(collected)
        blocks_per_tipset = tipsets if request.include_headers else tuple(known_tipsets)
        if len(blocks_per_tipset) < count:
            raise ExchangeResponseError(
                "not enough tipsets provided for message response validation, "
                f"needed {count}, have {len(blocks_per_tipset)}"
            )
        for tipset, compacted in zip(blocks_per_tipset, messages, strict=False):
            check_compacted_indices(len(tipset), compacted)
    return ValidatedResponse(tipsets, messages)


def _tipset_at(index: int, bs: BSTipSet) -> TipSet:
    try:
        return TipSet(bs.blocks)
    except MalformedInput as exc:
        raise ExchangeResponseError(
            f"invalid tipset blocks at height (head - {index}): {exc.what}"
        ) from None
