"""The node's libp2p host: TCP, Noise, yamux, identify and ping, with a persistent Ed25519 identity.

Lotus keeps one Ed25519 libp2p key in its keystore under the name ``libp2p-host``, stored as the
libp2p protobuf encoding of the private key and created on first start (lotus
``node/modules/lp2p/libp2p.go`` ``PrivKey``/``genLibp2pKey``); it builds the host with Noise
security and yamux (``node/modules/lp2p/smux.go``, ``security.go``).  This module does the same
with py-libp2p: ``new_host`` is given only Noise and only yamux, because py-libp2p's defaults also
offer plaintext and secio, which a Filecoin peer must never negotiate.  Identify and ping come
from py-libp2p's default protocol set.

:func:`running_host` owns the lifecycle: listeners are bound when it yields (so ``/tcp/0``
addresses report the real port), services spawn their tasks in its nursery, and leaving the block
cancels them and closes every connection.

Banned peers are refused at connect, as a go-libp2p ``ConnectionGater`` does (Lotus's
``node/modules/lp2p`` ``ConnGater``, ``InterceptPeerDial`` and ``InterceptSecured``): py-libp2p's
own gate filters addresses only, so the Noise transport is wrapped, and a connection to or from a
peer that :meth:`P2PHost.refuse_peers`'s predicate refuses is closed as soon as the handshake has
authenticated the peer (or, when we dial, before it starts) -- before yamux, identify, hello or
any other protocol runs on it.

A listen address that cannot be bound is fatal (:class:`ListenError`).  Lotus's
``node/modules/lp2p/addrs.go`` ``StartListening`` fails the start when the swarm cannot listen,
but go-libp2p's swarm, like py-libp2p's ``Swarm.listen``, reports failure only when no address
at all could be bound; this node is stricter and fails on any one, so it never runs unreachable
where the operator asked.  py-libp2p only logs the error, so the host is given its own TCP
transport whose listeners remember why they failed (and refuse a port another process already
listens on), and every configured address is checked against the swarm's bound listeners.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import (
    IHost,
    INetConn,
    INetStream,
    INetwork,
    INotifee,
    IRawConnection,
    ISecureConn,
    ISecureTransport,
)
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import THandler, TProtocol
from libp2p.peer.id import ID as PeerID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.transport.exceptions import OpenConnectionError
from libp2p.transport.tcp.tcp import TCP, TCPListener

from store.errors import FvmNodeError

logger = logging.getLogger(__name__)

IDENTITY_FILE_NAME = "libp2p-host.key"
DEFAULT_LISTEN_ADDRS = ("/ip4/127.0.0.1/tcp/0",)
CLOSE_TIMEOUT_SECONDS = 5.0


class IdentityKeyError(FvmNodeError):
    """The stored libp2p identity key cannot be read or is not an Ed25519 key."""


class DialError(FvmNodeError):
    """A peer address could not be parsed or dialled."""


class ListenError(FvmNodeError):
    """A configured listen address is malformed or could not be bound (port in use, no such
    interface); the node stops rather than run unreachable where the operator asked."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"cannot listen on {address}: {reason}")


def load_or_create_identity(data_dir: Path) -> KeyPair:
    """Returns the node's Ed25519 key pair, creating and saving it (mode 0600) on first use."""
    path = data_dir / IDENTITY_FILE_NAME
    if path.exists():
        try:
            private_key = deserialize_private_key(path.read_bytes())
        except Exception as error:  # protobuf and key-parsing errors have no common base
            raise IdentityKeyError(f"cannot read libp2p identity {path}: {error!r}") from error
        if private_key.get_type() != KeyType.Ed25519:
            raise IdentityKeyError(f"libp2p identity {path} is not an Ed25519 key")
        return KeyPair(private_key, private_key.get_public_key())
    key_pair = new_ed25519_key_pair()
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_pair.private_key.serialize())
    temporary.replace(path)
    return key_pair


@dataclass(frozen=True)
class HostConfig:
    data_dir: Path
    listen_addrs: tuple[str, ...] = DEFAULT_LISTEN_ADDRS
    bootstrap_peers: tuple[str, ...] = ()
    dial_timeout: float = 10.0


class PeerRefused(HandshakeFailure):
    """A connection to or from a peer the node refuses (banned); py-libp2p closes it."""


PeerPredicate = Callable[[PeerID], bool]


class _PeerGatedSecurity(ISecureTransport):
    """Runs the wrapped security transport, then closes connections with refused peers."""

    def __init__(self, transport: ISecureTransport) -> None:
        self._transport = transport
        self.refuse: PeerPredicate = lambda peer_id: False
        self.refused = 0

    async def _refused(self, conn: IRawConnection | ISecureConn, peer_id: PeerID) -> PeerRefused:
        self.refused += 1
        logger.info("refusing connection with banned peer %s", peer_id)
        await conn.close()
        return PeerRefused(f"peer {peer_id} is refused")

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        secured = await self._transport.secure_inbound(conn)
        peer_id = secured.get_remote_peer()
        if self.refuse(peer_id):
            raise await self._refused(secured, peer_id)
        return secured

    async def secure_outbound(self, conn: IRawConnection, peer_id: PeerID) -> ISecureConn:
        if self.refuse(peer_id):
            raise await self._refused(conn, peer_id)
        return await self._transport.secure_outbound(conn, peer_id)


ConnectionCallback = Callable[[PeerID], Awaitable[None]]
StreamHandler = Callable[[INetStream], Awaitable[None]]


def _forward(events: trio.MemorySendChannel[PeerID], peer_id: PeerID, kind: str) -> None:
    """Queues one connection event without blocking the swarm.

    A full queue means the dispatcher has fallen behind while running, which loses an event
    someone waits for: a warning.  A closed one means the host is stopping -- its dispatchers
    are cancelled before ``close`` tears down the connections that raise these events -- and
    nobody is left to miss it.
    """
    try:
        events.send_nowait(peer_id)
    except trio.WouldBlock:
        logger.warning("%s event dropped for %s: event queue full", kind, peer_id)
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        logger.debug("%s event for %s after the host stopped dispatching", kind, peer_id)


class _ConnectionNotifee(INotifee):
    """Forwards connect/disconnect events into channels; swarm notifees must not block."""

    def __init__(
        self,
        connected: trio.MemorySendChannel[PeerID],
        disconnected: trio.MemorySendChannel[PeerID],
    ) -> None:
        self._connected = connected
        self._disconnected = disconnected

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        _forward(self._connected, conn.muxed_conn.peer_id, "connection")

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        _forward(self._disconnected, conn.muxed_conn.peer_id, "disconnection")

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


class P2PHost:
    """A started libp2p host plus the nursery its services run in."""

    def __init__(
        self,
        host: IHost,
        config: HostConfig,
        nursery: trio.Nursery,
        security: _PeerGatedSecurity,
    ) -> None:
        self.libp2p_host = host
        self.config = config
        self.nursery = nursery
        self._security = security
        self._on_connected: list[ConnectionCallback] = []
        self._on_disconnected: list[ConnectionCallback] = []
        self.bootstrap_finished = trio.Event()
        self.bootstrap_connected: list[PeerID] = []

    @property
    def peer_id(self) -> PeerID:
        return self.libp2p_host.get_id()

    def listen_addrs(self) -> list[str]:
        """The bound listen addresses (real ports), each ending in ``/p2p/<peer id>``."""
        return [
            f"{address}/p2p/{self.peer_id.to_base58()}"
            for address in self.libp2p_host.get_transport_addrs()
        ]

    def bootstrap_peer_ids(self) -> frozenset[PeerID]:
        """The peer ids named by the configured bootstrap addresses (unparsable ones skipped)."""
        peer_ids = set()
        for address in self.config.bootstrap_peers:
            try:
                peer_ids.add(info_from_p2p_addr(multiaddr.Multiaddr(address)).peer_id)
            except Exception:  # multiaddr and peer-id parsing errors share no base
                logger.warning("bootstrap address %r names no peer", address)
        return frozenset(peer_ids)

    def connected_peers(self) -> list[PeerID]:
        return list(self.libp2p_host.get_connected_peers())

    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        self.libp2p_host.set_stream_handler(TProtocol(protocol), handler)

    def on_connected(self, callback: ConnectionCallback) -> None:
        """Runs ``callback(peer)`` in its own task for every new connection, either direction."""
        self._on_connected.append(callback)

    def on_disconnected(self, callback: ConnectionCallback) -> None:
        self._on_disconnected.append(callback)

    def refuse_peers(self, predicate: PeerPredicate) -> None:
        """Refuses every connection, either direction, with peers for which ``predicate`` holds
        when the connection is made (e.g. ``PeerManager.is_banned``, which honours ban expiry).

        Connections already open are not touched; the node closes those when it bans.
        """
        self._security.refuse = predicate

    @property
    def refused_connections(self) -> int:
        return self._security.refused

    async def connect(self, address: str) -> PeerID:
        """Dials a ``/.../p2p/<peer id>`` multiaddr within the configured dial timeout."""
        try:
            peer_info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as error:
            raise DialError(f"not a dialable peer address {address!r}: {error!r}") from error
        if self._security.refuse(peer_info.peer_id):
            raise DialError(f"not dialling refused peer {peer_info.peer_id}")
        # An explicit dial clears the swarm's memory of earlier failures, as Lotus's
        # ``NetConnect`` clears the dial backoff (``node/impl/net/net.go``).
        unblock = getattr(self.libp2p_host.get_network(), "unblock_peer", None)
        if unblock is not None:
            unblock(peer_info.peer_id)
        with trio.move_on_after(self.config.dial_timeout) as deadline:
            try:
                await self.libp2p_host.connect(peer_info)
            except Exception as error:  # swarm, transport and security errors share no base
                raise DialError(f"dial {address} failed: {error!r}") from error
        if deadline.cancelled_caught:
            raise DialError(f"dial {address} timed out after {self.config.dial_timeout} s")
        return peer_info.peer_id

    async def disconnect(self, peer_id: PeerID) -> None:
        await self.libp2p_host.disconnect(peer_id)

    def start_bootstrap(self) -> None:
        """Dials every bootstrap peer in the background; sets ``bootstrap_finished`` when done.

        Called by the node once its protocol services are attached, so that hello and pubsub see
        the bootstrap connections.  Failures are logged, not fatal, as in Lotus.
        """
        self.nursery.start_soon(self._dial_bootstrap_peers)

    async def _dial_bootstrap_peers(self) -> None:
        async def dial_one(address: str) -> None:
            try:
                self.bootstrap_connected.append(await self.connect(address))
            except DialError as error:
                logger.warning("bootstrap peer unreachable: %s", error)

        async with trio.open_nursery() as dials:
            for address in self.config.bootstrap_peers:
                dials.start_soon(dial_one, address)
        self.bootstrap_finished.set()

    async def _dispatch(
        self, events: trio.MemoryReceiveChannel[PeerID], callbacks: list[ConnectionCallback]
    ) -> None:
        async with events:
            async for peer_id in events:
                for callback in callbacks:
                    self.nursery.start_soon(callback, peer_id)


def _refuse_shared_port(maddr: multiaddr.Multiaddr) -> None:
    """Fails if another socket already listens on ``maddr``'s fixed port.

    py-libp2p binds its listeners with ``SO_REUSEPORT`` (for hole punching, which this node does
    not do), so a second node of the same user on the same port would bind too and the kernel
    would split inbound connections between them.  A probe bound without ``SO_REUSEPORT``
    conflicts with any listener there; ``SO_REUSEADDR`` keeps our own lingering TIME_WAIT
    sockets from a restart out of the way.
    """
    names = {protocol.name for protocol in maddr.protocols()}
    family = socket.AF_INET if "ip4" in names else socket.AF_INET6 if "ip6" in names else None
    port = maddr.value_for_protocol("tcp")
    if family is None or port is None or int(port) == 0:
        return
    ip = maddr.value_for_protocol("ip4" if family == socket.AF_INET else "ip6")
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, int(port)))
        except OSError as error:
            raise OpenConnectionError(f"cannot bind {ip}:{port}: {error}") from error


class _CheckedTCPListener(TCPListener):
    """A TCP listener that refuses a port another socket listens on and records why ``listen``
    failed before py-libp2p's swarm swallows the error."""

    def __init__(self, handler: THandler, failures: dict[str, OpenConnectionError]) -> None:
        super().__init__(handler)
        self._failures = failures

    async def listen(self, maddr: multiaddr.Multiaddr) -> None:
        try:
            _refuse_shared_port(maddr)
            await super().listen(maddr)
        except OpenConnectionError as error:
            self._failures[str(maddr)] = error
            raise


class _CheckedTCP(TCP):
    """py-libp2p's TCP transport whose listeners keep their failures in ``listen_failures``."""

    def __init__(self) -> None:
        super().__init__()
        self.listen_failures: dict[str, OpenConnectionError] = {}

    def create_listener(self, handler_function: THandler) -> TCPListener:
        return _CheckedTCPListener(handler_function, self.listen_failures)


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _parse_listen_addrs(addresses: Sequence[str]) -> list[multiaddr.Multiaddr]:
    parsed = []
    for address in addresses:
        try:
            parsed.append(multiaddr.Multiaddr(address))
        except Exception as error:  # multiaddr's parse errors share no base with ours
            raise ListenError(address, f"not a multiaddr: {error}") from error
    return parsed


def _listen_failure(
    network: INetwork,
    listen_addrs: Sequence[multiaddr.Multiaddr],
    failures: dict[str, OpenConnectionError],
) -> ListenError | None:
    """The first configured address the swarm holds no bound listener for, with its reason."""
    for address in listen_addrs:
        listener = network.listeners.get(str(address))
        if listener is not None and listener.get_addrs():
            continue
        failure = failures.get(str(address))
        reason = (
            str(_root_cause(failure))
            if failure is not None
            else "no TCP listener was started for it (only /ip4 or /ip6 TCP addresses work)"
        )
        return ListenError(str(address), reason)
    return None


def _build_libp2p_host(
    key_pair: KeyPair,
    listen_addrs: Sequence[multiaddr.Multiaddr],
    security: ISecureTransport,
    tcp: TCP,
) -> IHost:
    return new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): security},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        transports=[tcp],
        listen_addrs=listen_addrs,
    )


async def _stop_auto_connector(libp2p_host: IHost) -> None:
    """Stops py-libp2p's auto-connector, which has no configuration switch.

    While the swarm holds fewer connections than the midpoint of its watermarks (150 by default)
    it redials every peer in the peerstore, which would also bring back peers the node banned.
    The node decides whom to dial (bootstrap list, peer manager), as Lotus does.
    """
    auto_connector = getattr(libp2p_host.get_network(), "auto_connector", None)
    if auto_connector is not None:
        await auto_connector.stop()


@asynccontextmanager
async def running_host(config: HostConfig) -> AsyncIterator[P2PHost]:
    """Starts a host listening on ``config.listen_addrs``; stops it when the block exits.

    Raises :class:`ListenError` (after closing the host) if any listen address is not bound.
    """
    key_pair = load_or_create_identity(config.data_dir)
    listen_addrs = _parse_listen_addrs(config.listen_addrs)
    security = _PeerGatedSecurity(
        NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    )
    tcp = _CheckedTCP()
    libp2p_host = _build_libp2p_host(key_pair, listen_addrs, security, tcp)
    connected_send, connected_receive = trio.open_memory_channel[PeerID](256)
    disconnected_send, disconnected_receive = trio.open_memory_channel[PeerID](256)
    libp2p_host.get_network().register_notifee(
        _ConnectionNotifee(connected_send, disconnected_send)
    )
    listen_failure: ListenError | None = None
    async with libp2p_host.run(listen_addrs):
        try:
            listen_failure = _listen_failure(
                libp2p_host.get_network(), listen_addrs, tcp.listen_failures
            )
            if listen_failure is None:
                async with trio.open_nursery() as nursery:
                    host = P2PHost(libp2p_host, config, nursery, security)
                    await _stop_auto_connector(libp2p_host)
                    nursery.start_soon(host._dispatch, connected_receive, host._on_connected)
                    nursery.start_soon(host._dispatch, disconnected_receive, host._on_disconnected)
                    logger.info("libp2p host %s listening on %s", host.peer_id, host.listen_addrs())
                    try:
                        yield host
                    finally:
                        nursery.cancel_scope.cancel()
        finally:
            # Leaving ``run`` only cancels the swarm's tasks; ``close`` is what closes the
            # connections and listeners, so peers see us go instead of a silent socket.
            with trio.move_on_after(CLOSE_TIMEOUT_SECONDS) as closing:
                closing.shield = True
                await libp2p_host.close()
    # Raised outside ``run`` so that it reaches the caller alone, not in a nursery's group.
    if listen_failure is not None:
        raise listen_failure
