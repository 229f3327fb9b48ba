"""Gossipsub peer scores with Lotus's parameters, computed as go-libp2p-pubsub does."""

from __future__ import annotations

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID as PeerID

from node.gossip_score import (
    BLOCKS_TOPIC_SCORE,
    LOTUS_THRESHOLDS,
    MESSAGES_TOPIC_SCORE,
    FilecoinPeerScorer,
    lotus_peer_score_params,
    score_parameter_decay,
)

BLOCKS = "/fil/blocks/testnet"
MESSAGES = "/fil/msgs/testnet"


def new_peer() -> PeerID:
    return PeerID.from_pubkey(create_new_key_pair().public_key)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scorer_at(clock: Clock, **options: object) -> FilecoinPeerScorer:
    params = lotus_peer_score_params("testnet", **options)  # type: ignore[arg-type]
    return FilecoinPeerScorer(params, clock=clock)


def test_decay_factor_takes_a_counter_to_one_percent_over_the_period() -> None:
    hourly = score_parameter_decay(3600)
    assert hourly == pytest.approx(0.998721, abs=1e-6)
    assert hourly**3600 == pytest.approx(0.01)
    assert score_parameter_decay(600) ** 600 == pytest.approx(0.01)


def test_lotus_table_values() -> None:
    assert LOTUS_THRESHOLDS.gossip == -500
    assert LOTUS_THRESHOLDS.publish == -1000
    assert LOTUS_THRESHOLDS.graylist == -2500
    assert LOTUS_THRESHOLDS.accept_px == 1000
    assert LOTUS_THRESHOLDS.opportunistic_graft == 3.5
    params = lotus_peer_score_params("testnet")
    assert params.topics == {BLOCKS: BLOCKS_TOPIC_SCORE, MESSAGES: MESSAGES_TOPIC_SCORE}
    assert (params.ip_colocation_factor_threshold, params.ip_colocation_factor_weight) == (5, -100)
    assert (params.behaviour_penalty_threshold, params.behaviour_penalty_weight) == (6, -10)
    assert params.retain_score == 6 * 3600
    assert MESSAGES_TOPIC_SCORE.first_message_deliveries_weight == 0.5
    assert BLOCKS_TOPIC_SCORE.first_message_deliveries_weight == 5
    assert lotus_peer_score_params(None).topics == {}


def test_invalid_deliveries_cost_their_square_times_the_topic_weight() -> None:
    scorer = scorer_at(Clock())
    peer = new_peer()
    scorer.mark_invalid_delivery(peer, BLOCKS)
    assert scorer.score(peer) == pytest.approx(-100)
    scorer.mark_invalid_delivery(peer, BLOCKS)
    assert scorer.score(peer) == pytest.approx(-400)
    scorer.mark_invalid_delivery(peer, MESSAGES)
    assert scorer.score(peer) == pytest.approx(-500)
    assert scorer.allow_gossip(peer, [BLOCKS])
    scorer.mark_invalid_delivery(peer, BLOCKS)
    assert scorer.score(peer) == pytest.approx(-1000)
    assert not scorer.allow_gossip(peer, [BLOCKS])
    assert scorer.allow_publish_to(peer)
    scorer.mark_invalid_delivery(peer, BLOCKS)
    assert scorer.score(peer) == pytest.approx(-1700)
    assert not scorer.allow_publish_to(peer)
    assert scorer.allow_publish(peer, [BLOCKS])  # its messages are still validated
    assert not scorer.is_graylisted(peer)
    for _ in range(2):
        scorer.mark_invalid_delivery(peer, BLOCKS)
    assert scorer.score(peer) == pytest.approx(-3700)
    assert scorer.is_graylisted(peer, [BLOCKS])
    assert not scorer.allow_publish(peer, [BLOCKS])


def test_py_libp2p_failed_validation_hook_is_not_a_penalty() -> None:
    scorer = scorer_at(Clock())
    peer = new_peer()
    scorer.on_invalid_message(peer, BLOCKS)
    assert scorer.score(peer) == 0


def test_first_deliveries_are_capped_and_unscored_topics_ignored() -> None:
    scorer = scorer_at(Clock())
    peer = new_peer()
    for _ in range(150):
        scorer.on_first_delivery(peer, BLOCKS)
        scorer.on_first_delivery(peer, "/some/other/topic")
    assert scorer.score(peer) == pytest.approx(0.1 * 5 * 100)


def test_counters_decay_each_interval_and_vanish_below_decay_to_zero() -> None:
    clock = Clock()
    scorer = scorer_at(clock)
    peer = new_peer()
    scorer.mark_invalid_delivery(peer, BLOCKS)
    clock.now += 1800
    scorer.on_heartbeat()
    assert scorer.score(peer) == pytest.approx(-100 * 0.1**2, rel=1e-6)
    clock.now += 1801
    scorer.on_heartbeat()
    assert scorer.score(peer) == 0


def test_time_in_mesh_counts_quanta_up_to_the_cap() -> None:
    clock = Clock()
    scorer = scorer_at(clock)
    peer = new_peer()
    scorer.on_join_mesh(peer, BLOCKS)
    clock.now += 10.5
    scorer.on_heartbeat()
    assert scorer.score(peer) == pytest.approx(0.1 * 0.00027 * 1)
    scorer.on_leave_mesh(peer, BLOCKS)
    assert scorer.score(peer) == 0


def test_bootstrappers_get_the_application_score_unless_we_bootstrap() -> None:
    peer = new_peer()
    assert scorer_at(Clock(), bootstrappers=frozenset({peer})).score(peer) == 0
    scorer = scorer_at(Clock(), bootstrappers=frozenset({peer}))
    scorer.on_first_delivery(peer, MESSAGES)
    assert scorer.score(peer) == pytest.approx(2500 + 0.05)
    assert scorer.allow_px_from(peer, [MESSAGES])
    bootstrapper = scorer_at(Clock(), bootstrappers=frozenset({peer}), is_bootstrapper=True)
    bootstrapper.on_first_delivery(peer, MESSAGES)
    assert bootstrapper.score(peer) == pytest.approx(0.05)


def test_more_than_five_peers_on_one_ip_pay_the_squared_surplus() -> None:
    scorer = scorer_at(Clock())
    peers = [new_peer() for _ in range(7)]
    for peer in peers:
        scorer.add_peer_ip(peer, "10.0.0.7")
    assert scorer.score(peers[0]) == pytest.approx(-100 * 2**2)
    whitelisted = scorer_at(Clock(), ip_colocation_whitelist=("10.0.0.0/8",))
    for peer in peers:
        whitelisted.add_peer_ip(peer, "10.0.0.7")
    assert whitelisted.score(peers[0]) == 0


def test_behaviour_penalties_past_the_threshold_cost_their_squared_excess() -> None:
    scorer = scorer_at(Clock())
    peer = new_peer()
    scorer.penalize_behavior(peer, 6)
    assert scorer.score(peer) == 0
    scorer.penalize_graft_flood(peer, 4)
    assert scorer.score(peer) == pytest.approx(-160)


def test_a_bad_score_survives_reconnection_until_the_retention_ends() -> None:
    clock = Clock()
    scorer = scorer_at(clock)
    bad, good = new_peer(), new_peer()
    scorer.mark_invalid_delivery(bad, BLOCKS)
    scorer.on_first_delivery(good, BLOCKS)
    scorer.remove_peer(bad)
    scorer.remove_peer(good)
    assert set(scorer.scores()) == {bad}
    clock.now += 3600
    scorer.on_heartbeat()
    assert scorer.score(bad) == pytest.approx(-100)
    clock.now += 5 * 3600 + 1
    scorer.on_heartbeat()
    assert scorer.scores() == {}
