"""Asking peers for chain segments: one validated answer, whichever peer gives it.

The syncer needs runs of headers and the messages of known headers; any peer that has the chain
can serve them, and some peers will not (they time out, send garbage, send too much, or answer
something else than was asked). Following Lotus's chain exchange client (``chain/exchange/
client.go``: ``doRequest`` tries the peers the peer tracker ranks best, one after the other,
until one answer passes ``processResponse``; ``GetBlocks`` and ``GetChainMessages``), a request
here goes to the peers :meth:`~node.peer_manager.PeerManager.best_peers` offers, each at most
once, under the configured deadline. A bad answer costs its peer a penalty (chosen by
:func:`~node.peer_manager.reason_for_error`) and is counted in the metrics; then the next peer
is asked. An error *status* (not found, go away, internal error) is an honest "I cannot" and is
counted but not penalised, as Lotus only logs it against the peer's cost.

Besides the chain exchange checks (:func:`~chainsync.chain_exchange.process_response`), the
messages of each block must hash to the header's ``Messages`` MsgMeta (Lotus ``sync.go``
``checkMsgMeta`` in ``iterFullTipsets``), so a peer that serves other messages is caught here,
where it can be blamed, rather than when the tipset is executed.

The transport itself is behind :class:`TipsetFetcher`: the node layer sends requests over
libp2p; tests answer from a second chain store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol, TypeVar

import trio
from libp2p.peer.id import ID as PeerID

from chainsync.chain_exchange import (
    HEADERS,
    MAX_REQUEST_LENGTH,
    MESSAGES,
    ExchangeResponseError,
    ExchangeStatusError,
    Request,
    Response,
    expand_compacted,
    process_response,
)
from chainsync.chain_store import MessagesRootMismatch
from chainsync.chain_types import FullBlock, TipSet, TipSetKey
from chainsync.messages_root import compute_msg_meta, message_storage_block
from metrics.node_metrics import Direction, NodeMetrics
from node.cbor_rpc import ExchangeTimeout, PeerExchangeError
from node.peer_manager import PeerManager, reason_for_error
from store.blockstore import MemoryBlockstore
from store.errors import FvmNodeError, MalformedInput

logger = logging.getLogger(__name__)

STATUS_ERROR_LABEL: Final = "status"
"""The metrics reason of an error-status answer (not a penalty)."""

T = TypeVar("T")


class TipsetFetcher(Protocol):
    """Sends one chain exchange request to one peer and returns its decoded response."""

    async def fetch(self, peer: PeerID, request: Request) -> Response:
        """Raises :class:`~node.cbor_rpc.PeerExchangeError` subclasses (timeout, oversized,
        stream failure) or :class:`~store.errors.MalformedInput` (undecodable bytes)."""
        ...


class NoPeerAnswered(FvmNodeError):
    """Every peer on offer failed to answer a request (or none was on offer)."""


FullTipset = tuple[FullBlock, ...]


def check_messages_roots(full_tipset: Sequence[FullBlock]) -> None:
    """Raise :class:`~chainsync.chain_store.MessagesRootMismatch` unless every block's messages
    give its header's ``Messages`` (the MsgMeta of their storage CIDs)."""
    for block in full_tipset:
        computed = compute_msg_meta(
            MemoryBlockstore(),
            [message_storage_block(message)[0] for message in block.bls_messages],
            [message_storage_block(signed)[0] for signed in block.secpk_messages],
        )
        if computed != block.header.messages:
            raise MessagesRootMismatch(
                f"the messages served give {computed}, the header says {block.header.messages}",
                f"block {block.cid()}",
            )


class ChainSegmentClient:
    """Headers and messages from whichever peer answers well; see the module docstring."""

    def __init__(
        self,
        fetcher: TipsetFetcher,
        peers: PeerManager,
        *,
        timeout_seconds: float,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._peers = peers
        self._timeout = timeout_seconds
        self._metrics = metrics

    async def headers(
        self,
        head: TipSetKey,
        length: int,
        *,
        min_height: int,
        preferred: Sequence[PeerID] = (),
        child: TipSet | None = None,
    ) -> tuple[PeerID, tuple[TipSet, ...]]:
        """Up to ``length`` tipsets going back from ``head`` (head first, each the child of the
        next) and the peer that served them. ``child``, the tipset already fetched whose
        parents ``head`` names, must be a child of the first one (Lotus ``collectHeaders``:
        the segments of the chain must connect, heights falling)."""
        request = Request(head.cids, min(length, MAX_REQUEST_LENGTH), HEADERS)

        async def validate(response: Response) -> tuple[TipSet, ...]:
            tipsets = process_response(request, response).tipsets
            if child is not None and not child.is_child_of(tipsets[0]):
                raise ExchangeResponseError(
                    f"segments are not connected at heights {child.height}/{tipsets[0].height}"
                )
            return tipsets

        return await self.ask(request, validate, min_height=min_height, preferred=preferred)

    async def messages(
        self,
        ascending: Sequence[TipSet],
        *,
        min_height: int,
        preferred: Sequence[PeerID] = (),
    ) -> tuple[PeerID, list[FullTipset]]:
        """The blocks of ``ascending`` (consecutive tipsets of one chain, oldest first, at most
        :data:`MAX_REQUEST_LENGTH`) with their messages, oldest first, and the peer that served
        them."""
        known = tuple(reversed(ascending))
        request = Request(known[0].cids, len(known), MESSAGES)

        async def validate(response: Response) -> list[FullTipset]:
            validated = process_response(request, response, known)
            if len(validated.messages) != len(known):
                raise ExchangeResponseError(
                    f"messages for {len(validated.messages)} tipsets, {len(known)} were asked for"
                )
            full = [
                expand_compacted(tipset, compacted)
                for tipset, compacted in zip(known, validated.messages, strict=True)
            ]
            full.reverse()
            await trio.to_thread.run_sync(_check_all_roots, full)
            return full

        return await self.ask(request, validate, min_height=min_height, preferred=preferred)

    def candidates(self, min_height: int, preferred: Sequence[PeerID]) -> list[PeerID]:
        """Peers to ask, best first: those whose hello head reaches ``min_height``, then any
        other ``preferred`` peer (one that announced the target) that is not banned."""
        ordered = self._peers.best_peers(min_height)
        offered = set(ordered)
        available = set(self._peers.best_peers())
        ordered.extend(p for p in preferred if p in available and p not in offered)
        return ordered

    async def ask(
        self,
        request: Request,
        validate: Callable[[Response], Awaitable[T]],
        *,
        min_height: int,
        preferred: Sequence[PeerID] = (),
    ) -> tuple[PeerID, T]:
        """Send ``request`` to one peer after another until ``validate`` accepts an answer.

        Raises :class:`NoPeerAnswered` when no peer is left to ask.
        """
        asked: set[PeerID] = set()
        while True:
            remaining = [
                peer
                for peer in self.candidates(min_height, preferred)
                if peer not in asked and not self._peers.is_banned(peer)
            ]
            if not remaining:
                raise NoPeerAnswered(
                    f"no peer answered a request for {request.length} tipsets from "
                    f"{TipSetKey(request.head)} (asked {len(asked)})"
                )
            peer = remaining[0]
            asked.add(peer)
            started = trio.current_time()
            if self._metrics is not None:
                self._metrics.on_chain_exchange_request(Direction.CLIENT)
            try:
                with trio.fail_after(self._timeout):
                    response = await self._fetcher.fetch(peer, request)
                result = await validate(response)
            except trio.TooSlowError:
                self._failed(peer, request, started, ExchangeTimeout(self._timeout))
            except ExchangeStatusError as error:
                logger.debug("peer %s answered with status %d: %s", peer, error.status, error)
                if self._metrics is not None:
                    self._metrics.on_chain_exchange_error(Direction.CLIENT, STATUS_ERROR_LABEL)
            except (PeerExchangeError, MalformedInput) as error:
                self._failed(peer, request, started, error)
            else:
                self._peers.record_success(peer, trio.current_time() - started, request.length)
                return peer, result

    def penalize(self, peer: PeerID, error: PeerExchangeError | MalformedInput) -> None:
        """Penalise ``peer`` for ``error`` outside a request (data found bad later)."""
        reason = reason_for_error(error)
        self._peers.penalize(peer, reason)
        if self._metrics is not None:
            self._metrics.on_peer_penalty(reason.value)

    def _failed(
        self,
        peer: PeerID,
        request: Request,
        started: float,
        error: PeerExchangeError | MalformedInput,
    ) -> None:
        reason = reason_for_error(error)
        logger.info("chain exchange with %s failed (%s): %s", peer, reason.value, error)
        seconds = trio.current_time() - started
        self._peers.record_failure(peer, seconds, reason, request.length)
        if self._metrics is not None:
            self._metrics.on_chain_exchange_error(Direction.CLIENT, reason.value)
            self._metrics.on_peer_penalty(reason.value)


def _check_all_roots(full_tipsets: Sequence[FullTipset]) -> None:
    for full_tipset in full_tipsets:
        check_messages_roots(full_tipset)
