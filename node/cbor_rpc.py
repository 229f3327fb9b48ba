"""One-request-per-stream CBOR RPC over libp2p streams, as Filecoin's hello and chain exchange use.

Lotus frames these protocols with go-cbor-util's ``WriteCborRPC``/``ReadCborRPC``: the writer puts
exactly one CBOR data item on the stream with no length prefix, and the reader decodes exactly one
item, so the item's own structure is the frame (lotus ``node/hello/hello.go`` ``HandleStream`` and
``SayHello``; ``chain/exchange/server.go`` ``handleStream``; ``chain/exchange/client.go``
``sendRequestToPeer``, where the requester half-closes after writing and the responder closes the
stream after its answer).

The byte layer here finds where that one item ends without decoding it (:class:`CborItemScanner`),
under a byte cap, so a peer cannot make us buffer more than the cap, and every exchange runs under a
deadline, so a peer that trickles or never finishes is cut off.  Both failures reset the stream and
raise a typed error that the peer manager can turn into a penalty.  Indefinite-length items are
refused: DAG-CBOR (and cbor-gen, which Lotus decodes with) does not allow them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamError
from libp2p.network.stream.net_stream import NetStream
from libp2p.peer.id import ID as PeerID

from store.errors import CBORError, FvmNodeError, MalformedInput

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024


class PeerExchangeError(FvmNodeError):
    """A request/response exchange with a peer that did not complete."""


class OversizedMessage(PeerExchangeError, MalformedInput):
    """The peer sent more bytes than the limit before its CBOR item ended."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"message exceeds {limit} bytes")


class TruncatedMessage(PeerExchangeError):
    """The stream ended (EOF or connection closed) before one complete CBOR item arrived."""


class MalformedFrame(PeerExchangeError, CBORError):
    """The bytes cannot start a DAG-CBOR item (reserved header, indefinite length)."""


class ExchangeTimeout(PeerExchangeError):
    """The peer did not finish the exchange before the deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"exchange did not finish within {seconds} s")


class StreamFailure(PeerExchangeError):
    """The stream or connection failed (reset, refused protocol, dial error)."""


class CborItemScanner:
    """Finds the end of one CBOR data item in bytes that arrive in pieces, without decoding it.

    The scanner counts the items still owed: each header consumes one and announces its children
    (array entries, map keys and values, a tag's content), so the item ends when nothing is owed.
    Progress is kept between calls, so feeding a long item chunk by chunk costs linear time.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0
        self._items_owed = 1

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> int | None:
        """Adds bytes; returns the item's length once it is complete, else None."""
        self._buffer += chunk
        while self._items_owed > 0:
            consumed = self._scan_header(self._position)
            if consumed is None:
                return None
            self._position += consumed
            self._items_owed -= 1
        return self._position

    def item(self) -> bytes:
        return bytes(self._buffer[: self._position])

    def _scan_header(self, at: int) -> int | None:
        buffer = self._buffer
        if at >= len(buffer):
            return None
        initial = buffer[at]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            argument, header_length = info, 1
        elif info <= 27:
            width = 1 << (info - 24)
            if at + 1 + width > len(buffer):
                return None
            argument = int.from_bytes(buffer[at + 1 : at + 1 + width], "big")
            header_length = 1 + width
        elif info == 31:
            raise MalformedFrame("indefinite-length CBOR item", f"byte {at}")
        else:
            raise MalformedFrame(f"reserved CBOR additional info {info}", f"byte {at}")
        if major in (2, 3):
            if at + header_length + argument > len(buffer):
                return None
            return header_length + argument
        if major == 4:
            self._items_owed += argument
        elif major == 5:
            self._items_owed += 2 * argument
        elif major == 6:
            self._items_owed += 1
        return header_length


async def read_cbor_item(stream: INetStream, max_bytes: int) -> bytes:
    """Reads one complete CBOR item from ``stream``; bytes after it are left unread.

    Raises :class:`OversizedMessage` past ``max_bytes``, :class:`TruncatedMessage` at an early
    EOF and :class:`MalformedFrame` for a header no DAG-CBOR item can have.  The caller owns
    the deadline.
    """
    scanner = CborItemScanner()
    while True:
        want = min(READ_CHUNK_BYTES, max_bytes + 1 - scanner.buffered)
        try:
            chunk = await stream.read(want)
        except StreamEOF:
            chunk = b""
        if not chunk:
            raise TruncatedMessage(f"stream ended after {scanner.buffered} bytes of a CBOR item")
        # Everything up to and including the chunk that passes the cap is scanned, so an item
        # that ends exactly at the cap is accepted and one that runs past it is not.
        end = scanner.feed(chunk)
        if end is not None and end <= max_bytes:
            return scanner.item()
        if end is not None or scanner.buffered > max_bytes:
            raise OversizedMessage(max_bytes)


async def _reset_quietly(stream: INetStream) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.reset()
        except Exception:  # the stream is being abandoned; nothing useful to do with the error
            logger.debug("reset of a failed stream raised", exc_info=True)


async def _close_quietly(stream: INetStream) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.close()
        except Exception:
            logger.debug("close of a finished stream raised", exc_info=True)


async def request(
    host: IHost,
    peer_id: PeerID,
    protocol: str,
    request_bytes: bytes,
    *,
    timeout: float,
    max_response_bytes: int,
) -> bytes:
    """Opens a stream, writes ``request_bytes``, half-closes and reads one CBOR item back.

    The whole exchange (stream open, write, read) shares one deadline.  On any failure the stream
    is reset and a :class:`PeerExchangeError` subclass is raised.
    """
    stream: INetStream | None = None
    succeeded = False
    try:
        with trio.move_on_after(timeout):
            try:
                stream = await host.new_stream(peer_id, [TProtocol(protocol)])
                await stream.write(request_bytes)
                await cast(NetStream, stream).close_write()
                response = await read_cbor_item(stream, max_response_bytes)
            except PeerExchangeError:
                raise
            except Exception as error:  # libp2p raises many unrelated types on dial/stream failure
                raise StreamFailure(f"{protocol} to {peer_id}: {error!r}") from error
            succeeded = True
            return response
        raise ExchangeTimeout(timeout)
    finally:
        if stream is not None:
            await (_close_quietly(stream) if succeeded else _reset_quietly(stream))


RequestHandler = Callable[[PeerID, bytes], Awaitable[bytes]]
ExchangeErrorHook = Callable[[PeerID, PeerExchangeError], None]


def serving_handler(
    handler: RequestHandler,
    *,
    max_request_bytes: int,
    read_timeout: float,
    write_timeout: float,
    on_error: ExchangeErrorHook | None = None,
) -> Callable[[INetStream], Awaitable[None]]:
    """Wraps ``handler`` into a libp2p stream handler for the responder side.

    Reads one request item (capped, with ``read_timeout``), awaits ``handler(peer, request)``,
    writes its bytes within ``write_timeout`` and closes.  A request the handler rejects with
    :class:`MalformedInput`, or any framing failure, resets the stream and is reported to
    ``on_error``.
    """

    async def handle_stream(stream: INetStream) -> None:
        peer_id: PeerID = stream.muxed_conn.peer_id
        try:
            with trio.move_on_after(read_timeout) as read_deadline:
                request_bytes = await read_cbor_item(stream, max_request_bytes)
            if read_deadline.cancelled_caught:
                raise ExchangeTimeout(read_timeout)
            try:
                response_bytes = await handler(peer_id, request_bytes)
            except PeerExchangeError:
                raise
            except MalformedInput as error:
                raise MalformedFrame(f"request rejected: {error}") from error
            with trio.move_on_after(write_timeout) as write_deadline:
                await stream.write(response_bytes)
            if write_deadline.cancelled_caught:
                raise ExchangeTimeout(write_timeout)
        except PeerExchangeError as error:
            await _reset_quietly(stream)
            if on_error is not None:
                on_error(peer_id, error)
            return
        except (StreamError, OSError) as error:
            await _reset_quietly(stream)
            if on_error is not None:
                on_error(peer_id, StreamFailure(repr(error)))
            return
        except BaseException:
            await _reset_quietly(stream)
            raise
        await _close_quietly(stream)

    return handle_stream
