"""Filecoin chain exchange (``/fil/chain/xchg/0.0.1``) at the byte level: server and client.

Limits and deadlines follow lotus ``chain/exchange/protocol.go``, ``server.go`` and ``client.go``:
the server reads the request within 10 s (``streamReadDeadline``) and writes its answer within
60 s (``WriteResDeadline``); the client caps a response at 120 MiB (``maxExchangeMessageSize``)
and the caller chooses the deadline.  Requests and responses are single CBOR items with no length
prefix (see :mod:`node.cbor_rpc`).  Encoding and validating the messages is the codec's job
(``chainsync/chain_exchange.py``); the server here maps request bytes to response bytes through a
handler, and the client returns the raw response bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from libp2p.peer.id import ID as PeerID

from node.cbor_rpc import ExchangeErrorHook, PeerExchangeError, request, serving_handler
from node.p2p_host import P2PHost

CHAIN_EXCHANGE_PROTOCOL = "/fil/chain/xchg/0.0.1"
SERVER_READ_DEADLINE_SECONDS = 10.0
SERVER_WRITE_DEADLINE_SECONDS = 60.0
MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = (15 * 8) << 20
DEFAULT_REQUEST_TIMEOUT_SECONDS = 30.0

ChainExchangeHandler = Callable[[PeerID, bytes], Awaitable[bytes]]


def serve_chain_exchange(
    host: P2PHost,
    handler: ChainExchangeHandler,
    *,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    read_timeout: float = SERVER_READ_DEADLINE_SECONDS,
    write_timeout: float = SERVER_WRITE_DEADLINE_SECONDS,
    on_error: ExchangeErrorHook | None = None,
) -> None:
    """Answers chain exchange requests on ``host`` with ``handler(peer, request) -> response``."""
    host.set_stream_handler(
        CHAIN_EXCHANGE_PROTOCOL,
        serving_handler(
            handler,
            max_request_bytes=max_request_bytes,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            on_error=on_error,
        ),
    )


class ChainExchangeClient:
    """Sends one chain exchange request per stream and returns the response bytes."""

    def __init__(self, host: P2PHost) -> None:
        self._host = host
        self.outcomes: Counter[str] = Counter()

    async def request(
        self,
        peer_id: PeerID,
        request_bytes: bytes,
        timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> bytes:
        """Raises a :class:`node.cbor_rpc.PeerExchangeError` subclass when the exchange fails.

        ``outcomes`` counts ``"ok"`` and each failure by its error class name, for metrics.
        """
        try:
            response = await request(
                self._host.libp2p_host,
                peer_id,
                CHAIN_EXCHANGE_PROTOCOL,
                request_bytes,
                timeout=timeout,
                max_response_bytes=max_response_bytes,
            )
        except PeerExchangeError as error:
            self.outcomes[type(error).__name__] += 1
            raise
        self.outcomes["ok"] += 1
        return response
