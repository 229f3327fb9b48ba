"""Peer bookkeeping: Lotus's request-cost ordering, penalties by reason, bans and their expiry."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID as PeerID

from node.cbor_rpc import (
    ExchangeTimeout,
    MalformedFrame,
    OversizedMessage,
    StreamFailure,
    TruncatedMessage,
)
from node.chain_exchange_service import ChainExchangeClient, serve_chain_exchange
from node.p2p_host import HostConfig, running_host
from node.peer_manager import (
    DEFAULT_BAN_THRESHOLD,
    PENALTY_POINTS,
    PeerManager,
    PenaltyReason,
    reason_for_error,
)
from store import dag_cbor
from store.errors import CBORError


def peer(number: int) -> PeerID:
    return PeerID(bytes([0x00, 0x03, 0x01, 0x02, number]))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_new_peers_are_priced_below_the_global_average_and_slow_peers_sink() -> None:
    manager = PeerManager()
    fast, slow, fresh = peer(1), peer(2), peer(3)
    for p in (fast, slow, fresh):
        manager.add_peer(p)
    manager.record_success(fast, 1.0)
    manager.record_success(slow, 4.0)
    # global average: 1.0, then 1.0 + (4.0 - 1.0) / 25
    assert manager.global_average_seconds == pytest.approx(1.12)
    assert manager.expected_cost(manager.peer(fresh)) == pytest.approx(1.12 * 0.9)  # type: ignore[arg-type]
    assert manager.best_peers() == [fast, fresh, slow]


def test_per_peer_average_moves_by_a_tenth_and_counts_per_item() -> None:
    manager = PeerManager()
    p = peer(1)
    manager.record_success(p, 10.0, items_requested=5)
    manager.record_success(p, 22.0, items_requested=2)
    record = manager.peer(p)
    assert record is not None
    assert record.average_seconds_per_item == pytest.approx(2.0 + (11.0 - 2.0) / 10)


def test_failures_raise_the_expected_cost() -> None:
    manager = PeerManager()
    steady, flaky = peer(1), peer(2)
    manager.record_success(steady, 1.5)
    manager.record_success(flaky, 1.0)
    manager.record_failure(flaky, 1.0, PenaltyReason.TIMEOUT)
    # global average 1.5 -> 1.5 + (1.0 - 1.5) / 25 = 1.48 (failures do not move it)
    # flaky: 1.0 per item + 50 % failures x 1.48 = 1.74 > steady's 1.5
    assert manager.expected_cost(manager.peer(flaky)) == pytest.approx(1.0 + 0.5 * 1.48)  # type: ignore[arg-type]
    assert manager.best_peers() == [steady, flaky]


def test_hello_heads_break_ties_and_filter_by_height() -> None:
    manager = PeerManager()
    light, heavy, short = peer(1), peer(2), peer(3)
    manager.record_hello(light, head_height=100, head_weight=10)
    manager.record_hello(heavy, head_height=100, head_weight=20)
    manager.record_hello(short, head_height=50, head_weight=99)
    assert manager.best_peers() == [short, heavy, light]
    assert manager.best_peers(min_height=100) == [heavy, light]
    manager.record_latency(heavy, 0.25)
    assert manager.peer(heavy).latency_seconds == 0.25  # type: ignore[union-attr]


def test_penalties_by_reason_ban_at_the_threshold_and_call_on_ban() -> None:
    banned: list[PeerID] = []
    manager = PeerManager(on_ban=banned.append)
    bad, good = peer(1), peer(2)
    manager.add_peer(bad)
    manager.add_peer(good)
    assert not manager.penalize(bad, PenaltyReason.MALFORMED_CBOR)
    assert manager.peer(bad).score == -PENALTY_POINTS[PenaltyReason.MALFORMED_CBOR]  # type: ignore[union-attr]
    assert manager.penalize(bad, PenaltyReason.OVERSIZED_RESPONSE)
    assert manager.peer(bad).score <= DEFAULT_BAN_THRESHOLD  # type: ignore[union-attr]
    assert banned == [bad]
    assert manager.is_banned(bad)
    assert manager.best_peers() == [good]
    assert not manager.penalize(bad, PenaltyReason.TIMEOUT)  # already banned: no second ban
    assert banned == [bad]
    assert manager.bans_total == 1
    assert manager.banned_peers == 1
    assert manager.penalties[PenaltyReason.MALFORMED_CBOR] == 1
    assert manager.penalties[PenaltyReason.TIMEOUT] == 1


def test_one_bad_signature_or_state_root_is_enough_for_a_ban() -> None:
    for reason in (PenaltyReason.BAD_SIGNATURE, PenaltyReason.WRONG_STATE_ROOT):
        manager = PeerManager()
        assert manager.penalize(peer(1), reason)


def test_good_answers_before_a_forged_chain_do_not_save_its_server_from_the_ban() -> None:
    manager = PeerManager()
    for _ in range(3):
        manager.record_success(peer(1), seconds=0.1)
    assert manager.penalize(peer(1), PenaltyReason.WRONG_STATE_ROOT)
    assert manager.is_banned(peer(1))
    manager.record_success(peer(2), seconds=0.1)
    assert not manager.penalize(peer(2), PenaltyReason.MALFORMED_CBOR)


def test_bans_expire_and_leave_the_peer_on_probation() -> None:
    clock = FakeClock()
    manager = PeerManager(ban_seconds=60, clock=clock)
    p = peer(1)
    manager.add_peer(p)
    manager.penalize(p, PenaltyReason.BAD_SIGNATURE)
    clock.now += 59
    assert manager.is_banned(p)
    clock.now += 2
    assert not manager.is_banned(p)
    assert manager.best_peers() == [p]
    assert manager.peer(p).score == DEFAULT_BAN_THRESHOLD / 2  # type: ignore[union-attr]
    assert manager.penalize(p, PenaltyReason.OVERSIZED_RESPONSE)


def test_rewards_are_capped_and_disconnected_peers_are_not_offered() -> None:
    manager = PeerManager()
    p = peer(1)
    for _ in range(500):
        manager.record_success(p, 0.1)
    assert manager.peer(p).score == 100.0  # type: ignore[union-attr]
    manager.mark_disconnected(p)
    assert manager.best_peers() == []
    assert manager.known_peers == 1
    assert manager.connected_peers == 0


def test_exchange_errors_map_to_named_reasons() -> None:
    assert reason_for_error(OversizedMessage(10)) is PenaltyReason.OVERSIZED_RESPONSE
    assert reason_for_error(ExchangeTimeout(1.0)) is PenaltyReason.TIMEOUT
    assert reason_for_error(StreamFailure("reset")) is PenaltyReason.STREAM_FAILURE
    assert reason_for_error(TruncatedMessage("eof")) is PenaltyReason.STREAM_FAILURE
    assert reason_for_error(MalformedFrame("indefinite")) is PenaltyReason.MALFORMED_CBOR
    assert reason_for_error(CBORError("bad map key")) is PenaltyReason.MALFORMED_CBOR


def test_a_peer_serving_oversized_responses_gets_banned_and_disconnected(tmp_path: Path) -> None:
    async def oversized(peer_id: PeerID, request: bytes) -> bytes:
        return dag_cbor.encode(b"\x00" * 20_000)

    async def scenario() -> None:
        async with (
            running_host(HostConfig(data_dir=tmp_path / "client")) as client_host,
            running_host(HostConfig(data_dir=tmp_path / "server")) as server_host,
        ):
            manager = PeerManager(
                on_ban=lambda p: client_host.nursery.start_soon(client_host.disconnect, p)
            )
            serve_chain_exchange(server_host, oversized)
            await client_host.connect(server_host.listen_addrs()[0])
            manager.add_peer(server_host.peer_id)
            client = ChainExchangeClient(client_host)
            while not manager.is_banned(server_host.peer_id):
                started = trio.current_time()
                try:
                    await client.request(
                        server_host.peer_id, b"\x80", timeout=5, max_response_bytes=1000
                    )
                except OversizedMessage as error:
                    manager.record_failure(
                        server_host.peer_id, trio.current_time() - started, reason_for_error(error)
                    )
            assert manager.penalties[PenaltyReason.OVERSIZED_RESPONSE] == 2
            with trio.fail_after(5):
                while server_host.peer_id in client_host.connected_peers():
                    await trio.sleep(0.01)
            assert manager.best_peers() == []

    trio.run(scenario)
