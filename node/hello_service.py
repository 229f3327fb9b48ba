"""Filecoin's hello protocol (``/fil/hello/1.0.0``) at the byte level.

Following lotus ``node/hello/hello.go``: whenever a connection opens, in either direction, the node
opens a hello stream, writes its HelloMessage (one CBOR item), half-closes and reads the peer's
LatencyMessage ``[TArrival, TSent]`` (unix nanoseconds) back, measuring the round trip.  The
responder notes the arrival time, reads the hello (10 s deadline), and if it accepts it answers
with the latency message and closes; if it cannot read the hello or rejects it (another genesis),
it closes the whole connection.

Message codecs live elsewhere (``chainsync/hello.py``); this service moves bytes and calls back:
``local_hello()`` supplies our hello, ``on_hello(peer, bytes)`` judges a peer's,
``encode_latency(arrival_ns, sent_ns)`` builds the answer and ``on_latency(peer, reply, rtt)``
receives the answer to ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio
from libp2p.abc import INetStream
from libp2p.peer.id import ID as PeerID

from node.cbor_rpc import ExchangeTimeout, PeerExchangeError, read_cbor_item, request
from node.p2p_host import P2PHost
from store.errors import MalformedInput

logger = logging.getLogger(__name__)

HELLO_PROTOCOL = "/fil/hello/1.0.0"
STREAM_DEADLINE_SECONDS = 10.0
MAX_HELLO_BYTES = 64 * 1024
MAX_LATENCY_BYTES = 64


@dataclass(frozen=True)
class HelloCallbacks:
    local_hello: Callable[[], bytes]
    on_hello: Callable[[PeerID, bytes], bool]
    encode_latency: Callable[[int, int], bytes]
    on_latency: Callable[[PeerID, bytes, float], None]
    on_failure: Callable[[PeerID, PeerExchangeError | MalformedInput], None] | None = None


class HelloService:
    """Says hello on every new connection and answers the hellos of others."""

    def __init__(
        self,
        host: P2PHost,
        callbacks: HelloCallbacks,
        *,
        deadline_seconds: float = STREAM_DEADLINE_SECONDS,
    ) -> None:
        self._host = host
        self._callbacks = callbacks
        self._deadline = deadline_seconds
        self.hellos_sent = 0
        self.hellos_received = 0
        host.set_stream_handler(HELLO_PROTOCOL, self._handle_stream)
        host.on_connected(self.say_hello)

    async def say_hello(self, peer_id: PeerID) -> None:
        """Sends our hello to ``peer_id`` and hands the latency answer to ``on_latency``."""
        started = time.monotonic()
        try:
            reply = await request(
                self._host.libp2p_host,
                peer_id,
                HELLO_PROTOCOL,
                self._callbacks.local_hello(),
                timeout=self._deadline,
                max_response_bytes=MAX_LATENCY_BYTES,
            )
        except PeerExchangeError as error:
            logger.debug("hello to %s failed: %s", peer_id, error)
            self._report_failure(peer_id, error)
            return
        self.hellos_sent += 1
        self._callbacks.on_latency(peer_id, reply, time.monotonic() - started)

    async def _handle_stream(self, stream: INetStream) -> None:
        arrival_ns = time.time_ns()
        peer_id: PeerID = stream.muxed_conn.peer_id
        accepted = False
        try:
            with trio.move_on_after(self._deadline) as deadline:
                hello = await read_cbor_item(stream, MAX_HELLO_BYTES)
                self.hellos_received += 1
                accepted = self._callbacks.on_hello(peer_id, hello)
                if accepted:
                    await stream.write(self._callbacks.encode_latency(arrival_ns, time.time_ns()))
            if deadline.cancelled_caught:
                accepted = False
                raise ExchangeTimeout(self._deadline)
        except (PeerExchangeError, MalformedInput) as error:
            logger.debug("bad hello from %s: %s", peer_id, error)
            self._report_failure(peer_id, error)
        except Exception as error:  # stream errors from libp2p: there is no one left to answer
            logger.debug("hello stream from %s failed: %r", peer_id, error)
        if accepted:
            with trio.CancelScope(shield=True):
                try:
                    await stream.close()
                except Exception:
                    logger.debug("closing hello stream raised", exc_info=True)
            return
        with trio.CancelScope(shield=True):
            try:
                await self._host.disconnect(peer_id)
            except Exception:  # already gone, or the swarm is closing
                logger.debug("disconnecting %s after its hello raised", peer_id, exc_info=True)

    def _report_failure(self, peer_id: PeerID, error: PeerExchangeError | MalformedInput) -> None:
        if self._callbacks.on_failure is not None:
            self._callbacks.on_failure(peer_id, error)
