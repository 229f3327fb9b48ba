"""The libp2p host, CBOR stream framing, hello and chain exchange over real loopback TCP."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import socket
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.abc import INetConn, INetStream, INetwork
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID

from node.cbor_rpc import (
    CborItemScanner,
    ExchangeTimeout,
    MalformedFrame,
    OversizedMessage,
    PeerExchangeError,
    StreamFailure,
    TruncatedMessage,
)
from node.chain_exchange_service import (
    CHAIN_EXCHANGE_PROTOCOL,
    ChainExchangeClient,
    serve_chain_exchange,
)
from node.devnet.demo import CLI
from node.devnet.layout import init_devnet
from node.hello_service import HelloCallbacks, HelloService
from node.p2p_host import (
    IDENTITY_FILE_NAME,
    DialError,
    HostConfig,
    IdentityKeyError,
    ListenError,
    P2PHost,
    _ConnectionNotifee,
    load_or_create_identity,
    running_host,
)
from node.peer_manager import PeerManager, PenaltyReason
from store import dag_cbor
from store.errors import MalformedInput

TEST_DEADLINE_SECONDS = 20.0
CLI_TIMEOUT_SECONDS = 120.0


@asynccontextmanager
async def started_hosts(
    tmp_path: Path, count: int, **config: object
) -> AsyncIterator[list[P2PHost]]:
    async with AsyncExitStack() as stack:
        hosts = []
        for index in range(count):
            host_config = HostConfig(data_dir=tmp_path / f"node{index}", **config)  # type: ignore[arg-type]
            hosts.append(await stack.enter_async_context(running_host(host_config)))
        yield hosts


def run(test: object, *args: object) -> None:
    async def bounded() -> None:
        with trio.fail_after(TEST_DEADLINE_SECONDS):
            await test(*args)  # type: ignore[operator]

    trio.run(bounded)


# --- identity -------------------------------------------------------------------------------


def test_identity_is_created_once_private_and_reloaded(tmp_path: Path) -> None:
    first = load_or_create_identity(tmp_path)
    key_file = tmp_path / IDENTITY_FILE_NAME
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = load_or_create_identity(tmp_path)
    assert second.private_key.to_bytes() == first.private_key.to_bytes()
    assert PeerID.from_pubkey(second.public_key) == PeerID.from_pubkey(first.public_key)
    assert PeerID.from_pubkey(first.public_key).to_base58().startswith("12D3KooW")


def test_corrupt_identity_file_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / IDENTITY_FILE_NAME).write_bytes(b"\x08\x01\x12\x03abc")
    with pytest.raises(IdentityKeyError):
        load_or_create_identity(tmp_path)


# --- CBOR item framing ----------------------------------------------------------------------

cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=300)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(value=cbor_values, trailer=st.binary(max_size=20), cuts=st.lists(st.integers(0, 2000)))
def test_scanner_finds_the_exact_end_of_one_item_fed_in_pieces(
    value: object, trailer: bytes, cuts: list[int]
) -> None:
    encoded = dag_cbor.encode(value)
    stream = encoded + trailer
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    scanner = CborItemScanner()
    end = None
    for start, stop in itertools.pairwise(points):
        end = scanner.feed(stream[start:stop])
        if end is not None:
            break
    assert end == len(encoded)
    assert scanner.item() == encoded


def test_scanner_waits_for_a_truncated_item() -> None:
    encoded = dag_cbor.encode([1, b"x" * 100, {"a": [2, 3]}])
    assert CborItemScanner().feed(encoded[:-1]) is None


@pytest.mark.parametrize("header", [b"\x9f", b"\x5f", b"\x1c", b"\xbf"])
def test_scanner_refuses_indefinite_and_reserved_headers(header: bytes) -> None:
    with pytest.raises(MalformedFrame):
        CborItemScanner().feed(header + b"\x00")


# --- host lifecycle -------------------------------------------------------------------------


def test_two_hosts_listen_on_real_ports_and_connect(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (a, b):
            address = b.listen_addrs()[0]
            assert address.startswith("/ip4/127.0.0.1/tcp/")
            assert not address.startswith("/ip4/127.0.0.1/tcp/0/")
            assert address.endswith(f"/p2p/{b.peer_id.to_base58()}")
            assert await a.connect(address) == b.peer_id
            assert b.peer_id in a.connected_peers()
            with trio.fail_after(5):
                while a.peer_id not in b.connected_peers():
                    await trio.sleep(0.01)

    run(scenario)


def test_bootstrap_peers_are_dialled_and_bad_ones_only_logged(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 1) as (seed,):
            nobody = PeerID.from_pubkey(load_or_create_identity(tmp_path / "nobody").public_key)
            unreachable = f"/ip4/127.0.0.1/tcp/1/p2p/{nobody.to_base58()}"
            config = HostConfig(
                data_dir=tmp_path / "joiner",
                bootstrap_peers=(seed.listen_addrs()[0], unreachable),
                dial_timeout=3.0,
            )
            async with running_host(config) as joiner:
                joiner.start_bootstrap()
                await joiner.bootstrap_finished.wait()
                assert joiner.bootstrap_connected == [seed.peer_id]
                assert seed.peer_id in joiner.connected_peers()
                assert joiner.bootstrap_peer_ids() == {seed.peer_id, nobody}

    run(scenario)


def test_dialling_garbage_is_a_dial_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 1) as (host,):
            with pytest.raises(DialError):
                await host.connect("/ip4/127.0.0.1/tcp/1")

    run(scenario)


# --- hello ----------------------------------------------------------------------------------


class HelloLog:
    def __init__(self, own_hello: bytes, accept: bool = True) -> None:
        self.own_hello = own_hello
        self.accept = accept
        self.received: list[tuple[PeerID, bytes]] = []
        self.replies: list[tuple[PeerID, list[int], float]] = []
        self.failures: list[tuple[PeerID, Exception]] = []
        self.done = trio.Event()

    def callbacks(self) -> HelloCallbacks:
        return HelloCallbacks(
            local_hello=lambda: self.own_hello,
            on_hello=self.on_hello,
            encode_latency=lambda arrival, sent: dag_cbor.encode([arrival, sent]),
            on_latency=self.on_latency,
            on_failure=lambda peer, error: self.failures.append((peer, error)),
        )

    def on_hello(self, peer_id: PeerID, hello: bytes) -> bool:
        self.received.append((peer_id, hello))
        return self.accept

    def on_latency(self, peer_id: PeerID, reply: bytes, rtt: float) -> None:
        self.replies.append((peer_id, dag_cbor.decode(reply), rtt))
        self.done.set()


def test_hello_goes_both_ways_with_bytes_and_latency(tmp_path: Path) -> None:
    hello_a = dag_cbor.encode([[b"tipset-a"], 10, b"\x00\x64", b"genesis"])
    hello_b = dag_cbor.encode([[b"tipset-b"], 12, b"\x00\xc8", b"genesis"])

    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (a, b):
            log_a, log_b = HelloLog(hello_a), HelloLog(hello_b)
            HelloService(a, log_a.callbacks())
            HelloService(b, log_b.callbacks())
            before = time.time_ns()
            await a.connect(b.listen_addrs()[0])
            await log_a.done.wait()
            await log_b.done.wait()
            assert log_b.received == [(a.peer_id, hello_a)]
            assert log_a.received == [(b.peer_id, hello_b)]
            for log, remote in ((log_a, b), (log_b, a)):
                [(peer, (arrival, sent), rtt)] = log.replies
                assert peer == remote.peer_id
                assert before <= arrival <= sent <= time.time_ns()
                assert 0 < rtt < 5
            assert log_a.failures == log_b.failures == []

    run(scenario)


def test_rejected_hello_closes_the_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (a, b):
            log_a = HelloLog(dag_cbor.encode([1]))
            log_b = HelloLog(dag_cbor.encode([2]), accept=False)
            HelloService(a, log_a.callbacks())
            HelloService(b, log_b.callbacks())
            await a.connect(b.listen_addrs()[0])
            with trio.fail_after(5):
                while not log_b.received or a.connected_peers():
                    await trio.sleep(0.01)
            assert b.peer_id not in a.connected_peers()

    run(scenario)


def test_malformed_hello_is_reported_and_disconnected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (a, b):
            log_b = HelloLog(dag_cbor.encode([2]))
            HelloService(b, log_b.callbacks())
            log_a = HelloLog(b"\xff\xff")  # a reserved header, not a CBOR item
            HelloService(a, log_a.callbacks())
            await a.connect(b.listen_addrs()[0])
            with trio.fail_after(5):
                while not log_b.failures:
                    await trio.sleep(0.01)
            [(peer, error)] = [f for f in log_b.failures if isinstance(f[1], MalformedInput)]
            assert peer == a.peer_id
            assert isinstance(error, MalformedFrame)
            with trio.fail_after(5):
                while a.connected_peers():
                    await trio.sleep(0.01)
            assert log_b.received == []

    run(scenario)


# --- chain exchange -------------------------------------------------------------------------


def test_chain_exchange_round_trip(tmp_path: Path) -> None:
    seen: list[tuple[PeerID, bytes]] = []

    async def answer(peer_id: PeerID, request: bytes) -> bytes:
        seen.append((peer_id, request))
        [start, length, options] = dag_cbor.decode(request)
        return dag_cbor.encode([0, "", [[start, length, options, b"z" * 100_000]]])

    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (client_host, server_host):
            serve_chain_exchange(server_host, answer)
            await client_host.connect(server_host.listen_addrs()[0])
            client = ChainExchangeClient(client_host)
            request = dag_cbor.encode([[b"cid"], 5, 3])
            response = await client.request(server_host.peer_id, request, timeout=5)
            assert dag_cbor.decode(response) == [0, "", [[[b"cid"], 5, 3, b"z" * 100_000]]]
            assert seen == [(client_host.peer_id, request)]
            # one stream per request: a second request works the same way
            again = await client.request(server_host.peer_id, request, timeout=5)
            assert again == response
            assert client.outcomes == {"ok": 2}

    run(scenario)


def test_oversized_response_is_cut_off_with_a_typed_error(tmp_path: Path) -> None:
    async def huge(peer_id: PeerID, request: bytes) -> bytes:
        return dag_cbor.encode(b"\x01" * 50_000)

    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (client_host, server_host):
            serve_chain_exchange(server_host, huge)
            await client_host.connect(server_host.listen_addrs()[0])
            client = ChainExchangeClient(client_host)
            with pytest.raises(OversizedMessage) as caught:
                await client.request(
                    server_host.peer_id, dag_cbor.encode([1]), timeout=5, max_response_bytes=10_000
                )
            assert caught.value.limit == 10_000
            assert isinstance(caught.value, MalformedInput)
            exact = await client.request(
                server_host.peer_id,
                dag_cbor.encode([1]),
                timeout=5,
                max_response_bytes=len(dag_cbor.encode(b"\x01" * 50_000)),
            )
            assert exact == dag_cbor.encode(b"\x01" * 50_000)

    run(scenario)


def test_a_response_that_never_finishes_times_out(tmp_path: Path) -> None:
    async def trickle(stream: INetStream) -> None:
        await stream.read(100)
        await stream.write(b"\x59\x10\x00" + b"partial")  # announces 4096 bytes, sends 7
        await trio.sleep_forever()

    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (client_host, server_host):
            server_host.set_stream_handler(CHAIN_EXCHANGE_PROTOCOL, trickle)
            await client_host.connect(server_host.listen_addrs()[0])
            client = ChainExchangeClient(client_host)
            started = trio.current_time()
            with pytest.raises(ExchangeTimeout):
                await client.request(server_host.peer_id, dag_cbor.encode([1]), timeout=0.5)
            assert 0.5 <= trio.current_time() - started < 3
            assert client.outcomes == {"ExchangeTimeout": 1}

    run(scenario)


def test_server_cuts_off_oversized_and_slow_requests(tmp_path: Path) -> None:
    errors: list[tuple[PeerID, PeerExchangeError]] = []

    async def answer(peer_id: PeerID, request: bytes) -> bytes:
        return dag_cbor.encode(0)

    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (client_host, server_host):
            serve_chain_exchange(
                server_host,
                answer,
                max_request_bytes=1000,
                read_timeout=0.3,
                on_error=lambda peer, error: errors.append((peer, error)),
            )
            await client_host.connect(server_host.listen_addrs()[0])
            client = ChainExchangeClient(client_host)
            with pytest.raises((StreamFailure, TruncatedMessage)):
                await client.request(
                    server_host.peer_id, dag_cbor.encode(b"\x00" * 5000), timeout=5
                )
            stream = await client_host.libp2p_host.new_stream(
                server_host.peer_id, [TProtocol(CHAIN_EXCHANGE_PROTOCOL)]
            )
            await stream.write(b"\x82\x01")  # an array of two with only one element sent
            with trio.fail_after(5):
                while len(errors) < 2:
                    await trio.sleep(0.01)
            await stream.reset()
            assert [type(error) for _, error in errors] == [OversizedMessage, ExchangeTimeout]
            assert all(peer == client_host.peer_id for peer, _ in errors)

    run(scenario)


def test_leaving_the_block_closes_connections_and_listeners(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 1) as (stayer,):
            gone = trio.Event()

            async def on_disconnected(peer_id: PeerID) -> None:
                gone.set()

            stayer.on_disconnected(on_disconnected)
            async with running_host(HostConfig(data_dir=tmp_path / "leaver")) as leaver:
                leaver_address = leaver.listen_addrs()[0]
                await leaver.connect(stayer.listen_addrs()[0])
            with trio.fail_after(5):
                await gone.wait()
            assert stayer.connected_peers() == []
            with pytest.raises(DialError):
                await stayer.connect(leaver_address)

    run(scenario)


# --- refusing banned peers -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_banned_peer_is_refused_both_ways_until_its_ban_expires(tmp_path: Path) -> None:
    hello_a = dag_cbor.encode([[b"tipset-a"], 1, b"\x00\x01", b"genesis"])
    hello_b = dag_cbor.encode([[b"tipset-b"], 2, b"\x00\x02", b"genesis"])

    async def scenario() -> None:
        async with started_hosts(tmp_path, 2, dial_timeout=5.0) as (a, b):
            clock = FakeClock()
            peers_a = PeerManager(ban_seconds=60.0, clock=clock)
            a.refuse_peers(peers_a.is_banned)
            log_a, log_b = HelloLog(hello_a), HelloLog(hello_b)
            HelloService(a, log_a.callbacks())
            HelloService(b, log_b.callbacks())
            assert peers_a.penalize(b.peer_id, PenaltyReason.BAD_SIGNATURE)

            with pytest.raises(DialError):
                await b.connect(a.listen_addrs()[0])
            with pytest.raises(DialError, match="refused peer"):
                await a.connect(b.listen_addrs()[0])
            await trio.sleep(0.5)
            assert a.connected_peers() == []
            assert b.connected_peers() == []
            assert log_a.received == [] and log_a.failures == []
            assert log_b.received == []
            assert a.refused_connections >= 1  # py-libp2p retries a failed dial

            clock.now += 61.0
            assert await b.connect(a.listen_addrs()[0]) == a.peer_id
            await log_a.done.wait()
            await log_b.done.wait()
            assert log_a.received == [(b.peer_id, hello_b)]
            assert a.peer_id in b.connected_peers()

    run(scenario)


# --- listen failures -------------------------------------------------------------------------


@contextmanager
def busy_loopback_port() -> Iterator[int]:
    """A plain socket listening on a free 127.0.0.1 port, as another program would hold it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


async def expect_listen_error(tmp_path: Path, *listen_addrs: str) -> ListenError:
    config = HostConfig(data_dir=tmp_path / "deaf", listen_addrs=listen_addrs)
    with pytest.raises(ListenError) as raised:
        async with running_host(config):
            pytest.fail("the host started although it could not listen")
    return raised.value


def test_a_port_another_socket_listens_on_is_a_listen_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        with busy_loopback_port() as port:
            address = f"/ip4/127.0.0.1/tcp/{port}"
            error = await expect_listen_error(tmp_path, address)
            assert error.address == address
            assert os.strerror(errno.EADDRINUSE) in error.reason
            assert str(error).startswith(f"cannot listen on {address}: ")

    run(scenario)


def test_one_unbindable_address_among_good_ones_fails_the_host(tmp_path: Path) -> None:
    async def scenario() -> None:
        with busy_loopback_port() as port:
            busy = f"/ip4/127.0.0.1/tcp/{port}"
            error = await expect_listen_error(tmp_path, "/ip4/127.0.0.1/tcp/0", busy)
            assert error.address == busy

    run(scenario)


def test_a_second_host_on_a_port_a_host_already_listens_on_is_refused(tmp_path: Path) -> None:
    """py-libp2p binds with SO_REUSEPORT, which would let both hosts share the port."""

    async def scenario() -> None:
        async with started_hosts(tmp_path, 1) as (first,):
            address = first.listen_addrs()[0].split("/p2p/")[0]
            error = await expect_listen_error(tmp_path, address)
            assert error.address == address
            assert os.strerror(errno.EADDRINUSE) in error.reason
            assert first.listen_addrs()[0].startswith(address)

    run(scenario)


def test_an_address_of_no_local_interface_is_a_listen_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        address = "/ip4/192.0.2.7/tcp/0"  # TEST-NET-1, assigned to no interface here
        error = await expect_listen_error(tmp_path, address)
        assert error.address == address
        assert os.strerror(errno.EADDRNOTAVAIL) in error.reason

    run(scenario)


@pytest.mark.parametrize(
    ("address", "reason"),
    [("not-a-multiaddr", "not a multiaddr"), ("/ip4/127.0.0.1/udp/4001", "no TCP listener")],
)
def test_malformed_and_non_tcp_listen_addresses_are_listen_errors(
    tmp_path: Path, address: str, reason: str
) -> None:
    async def scenario() -> None:
        error = await expect_listen_error(tmp_path, address)
        assert error.address == address
        assert reason in error.reason

    run(scenario)


def test_the_host_is_usable_again_on_a_port_it_left(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 1) as (other,):
            config = HostConfig(data_dir=tmp_path / "restarted")
            async with running_host(config) as before:
                address = before.listen_addrs()[0].split("/p2p/")[0]
                await other.connect(before.listen_addrs()[0])
            async with running_host(replace(config, listen_addrs=(address,))) as after:
                assert after.listen_addrs()[0].startswith(address)

    run(scenario)


def test_fvm_node_run_on_a_busy_port_exits_2_with_one_error_line(
    tmp_path: Path, actors_dir: Path
) -> None:
    init_devnet(tmp_path / "devnet", accounts=1, seed=b"busy-port", actors_dir=actors_dir)
    with busy_loopback_port() as port:
        address = f"/ip4/127.0.0.1/tcp/{port}"
        arguments = ["run", "--config", str(tmp_path / "devnet" / "node.toml")]
        arguments += ["--data", str(tmp_path / "node"), "--listen", address]
        finished = subprocess.run(
            [*CLI, *arguments], capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
        )
    assert finished.returncode == 2
    errors = [line for line in finished.stderr.splitlines() if line.startswith("error:")]
    reason = f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}"
    assert errors == [f"error: cannot listen on {address}: {reason}"]
    assert "listening on" not in finished.stdout


# --- connection events -----------------------------------------------------------------------


def fake_connection(peer_id: PeerID) -> INetConn:
    return cast(INetConn, SimpleNamespace(muxed_conn=SimpleNamespace(peer_id=peer_id)))


NO_NETWORK = cast(INetwork, None)


def test_a_full_event_queue_drops_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    peer = PeerID.from_pubkey(load_or_create_identity(tmp_path).public_key)

    async def scenario() -> None:
        connected, _connected_events = trio.open_memory_channel[PeerID](1)
        disconnected, disconnected_events = trio.open_memory_channel[PeerID](1)
        notifee = _ConnectionNotifee(connected, disconnected)
        await notifee.disconnected(NO_NETWORK, fake_connection(peer))
        with caplog.at_level(logging.DEBUG, logger="node.p2p_host"):
            await notifee.disconnected(NO_NETWORK, fake_connection(peer))
        assert disconnected_events.receive_nowait() == peer
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            f"disconnection event dropped for {peer}: event queue full"
        ]

    run(scenario)


def test_an_event_after_dispatch_stopped_is_dropped_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    peer = PeerID.from_pubkey(load_or_create_identity(tmp_path).public_key)

    async def scenario() -> None:
        connected, connected_events = trio.open_memory_channel[PeerID](1)
        disconnected, disconnected_events = trio.open_memory_channel[PeerID](1)
        notifee = _ConnectionNotifee(connected, disconnected)
        await connected_events.aclose()
        await disconnected_events.aclose()
        with caplog.at_level(logging.DEBUG, logger="node.p2p_host"):
            await notifee.connected(NO_NETWORK, fake_connection(peer))
            await notifee.disconnected(NO_NETWORK, fake_connection(peer))
        assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.DEBUG]

    run(scenario)


def test_stopping_connected_hosts_logs_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with started_hosts(tmp_path, 2) as (a, b):
            await a.connect(b.listen_addrs()[0])
            with trio.fail_after(5):
                while a.peer_id not in b.connected_peers():
                    await trio.sleep(0.01)

    with caplog.at_level(logging.DEBUG, logger="node.p2p_host"):
        run(scenario)
    ours = [r for r in caplog.records if r.name == "node.p2p_host"]
    assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == []
    assert any("after the host stopped dispatching" in r.getMessage() for r in ours)
