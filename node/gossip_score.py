"""Gossipsub peer scoring with Lotus's parameters, computed as go-libp2p-pubsub computes it.

Lotus (``node/modules/lp2p/pubsub.go`` ``GossipSub``, the same values at v1.20 and today) passes
``pubsub.WithPeerScore`` the thresholds and weights tabled below.  go-libp2p-pubsub's ``score.go``
(``peerScore.score``, ``refreshScores``, ``RemovePeer``, ``ipColocationFactor``) turns them into a
score per peer: per scored topic, P1 time in mesh (quanta, capped) + P2 first deliveries (capped at
delivery) + P4 invalid deliveries *squared* times a negative weight, each topic's sum scaled by its
topic weight; then P5 an application score, P6 the squared surplus of peers sharing an IP, P7 the
squared excess of behaviour penalties.  Counters decay once per decay interval and drop to zero
below ``DecayToZero``; a peer that leaves with a non-positive score keeps it for ``RetainScore``,
so disconnecting does not launder a bad score.

py-libp2p 0.8.1's ``PeerScorer`` has one set of P1-P4 weights for all topics, no topic weight, a
linear P4 that it caps, adds a point per graft instead of measuring mesh time, decays once per
heartbeat regardless of its length and forgets a peer on disconnect.  :class:`FilecoinPeerScorer`
subclasses it, keeping its hook names (which py-libp2p's router and pubsub call) but computing the
go-libp2p score.  Two hooks change meaning on purpose:

* ``on_invalid_message`` is called by py-libp2p for every failed validation, so also for
  ``Verdict.IGNORE`` and for validator timeouts, which go-libp2p never penalises.  It does nothing
  here; :meth:`FilecoinPeerScorer.mark_invalid_delivery` is called by our validator wrapper for
  rejections only (``node/pubsub.py``).
* py-libp2p's behaviour reports (broken IWANT promises, GRAFT floods, IHAVE/IWANT spam) all feed
  the single P7 counter, as go-libp2p's ``AddPenalty`` does, with the amounts py-libp2p chooses.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from libp2p.peer.id import ID as PeerID
from libp2p.pubsub.score import PeerScorer, ScoreParams

# go-libp2p-pubsub ``DefaultDecayInterval`` and ``DefaultDecayToZero``.
DEFAULT_DECAY_INTERVAL_SECONDS: Final = 1.0
DEFAULT_DECAY_TO_ZERO: Final = 0.01
HOUR: Final = 3600.0


def score_parameter_decay(
    decay_seconds: float,
    decay_interval: float = DEFAULT_DECAY_INTERVAL_SECONDS,
    decay_to_zero: float = DEFAULT_DECAY_TO_ZERO,
) -> float:
    """go-libp2p ``ScoreParameterDecayWithBase``: the per-interval factor that takes a counter
    to ``decay_to_zero`` after ``decay_seconds``."""
    ticks = float(int(decay_seconds / decay_interval))
    return float(decay_to_zero ** (1 / ticks))


@dataclass(frozen=True)
class PeerScoreThresholds:
    """go-libp2p ``PeerScoreThresholds``."""

    gossip: float
    publish: float
    graylist: float
    accept_px: float
    opportunistic_graft: float


@dataclass(frozen=True)
class TopicScoreParams:
    """go-libp2p ``TopicScoreParams`` without the mesh-delivery terms (P3, P3b), which Lotus
    leaves switched off for every topic."""

    topic_weight: float
    time_in_mesh_weight: float
    time_in_mesh_quantum: float
    time_in_mesh_cap: float
    first_message_deliveries_weight: float
    first_message_deliveries_decay: float
    first_message_deliveries_cap: float
    invalid_message_deliveries_weight: float
    invalid_message_deliveries_decay: float


@dataclass(frozen=True)
class PeerScoreParams:
    """go-libp2p ``PeerScoreParams`` (``TopicScoreCap`` is zero, i.e. off, in Lotus)."""

    topics: Mapping[str, TopicScoreParams]
    app_specific_score: Callable[[PeerID], float]
    app_specific_weight: float
    ip_colocation_factor_weight: float
    ip_colocation_factor_threshold: int
    ip_colocation_factor_whitelist: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    behaviour_penalty_threshold: float
    behaviour_penalty_weight: float
    behaviour_penalty_decay: float
    decay_interval: float
    decay_to_zero: float
    retain_score: float


# Lotus's ``GossipScoreThreshold`` .. ``OpportunisticGraftScoreThreshold``.
LOTUS_THRESHOLDS: Final = PeerScoreThresholds(
    gossip=-500.0,
    publish=-1000.0,
    graylist=-2500.0,
    accept_px=1000.0,
    opportunistic_graft=3.5,
)

# Lotus's topic parameters.  Blocks: ~10 a minute, first deliveries decay over an hour and cap at
# 100 (max +50 after the topic weight), one invalid block costs 0.1 * -1000 * 1^2 = -100.
BLOCKS_TOPIC_SCORE: Final = TopicScoreParams(
    topic_weight=0.1,
    time_in_mesh_weight=0.00027,
    time_in_mesh_quantum=1.0,
    time_in_mesh_cap=1.0,
    first_message_deliveries_weight=5.0,
    first_message_deliveries_decay=score_parameter_decay(HOUR),
    first_message_deliveries_cap=100.0,
    invalid_message_deliveries_weight=-1000.0,
    invalid_message_deliveries_decay=score_parameter_decay(HOUR),
)
# Messages: more than one a second, first deliveries decay over ten minutes (max +5).
MESSAGES_TOPIC_SCORE: Final = TopicScoreParams(
    topic_weight=0.1,
    time_in_mesh_weight=0.0002778,
    time_in_mesh_quantum=1.0,
    time_in_mesh_cap=1.0,
    first_message_deliveries_weight=0.5,
    first_message_deliveries_decay=score_parameter_decay(10 * 60),
    first_message_deliveries_cap=100.0,
    invalid_message_deliveries_weight=-1000.0,
    invalid_message_deliveries_decay=score_parameter_decay(HOUR),
)
# Lotus's application score for its bootstrap peers (when it is not a bootstrapper itself), so
# they are neither pruned unilaterally nor refused for peer exchange.
BOOTSTRAPPER_APP_SCORE: Final = 2500.0


def lotus_peer_score_params(
    network_name: str | None,
    bootstrappers: frozenset[PeerID] = frozenset(),
    *,
    is_bootstrapper: bool = False,
    ip_colocation_whitelist: tuple[str, ...] = (),
) -> PeerScoreParams:
    """Lotus's ``PeerScoreParams`` for ``/fil/blocks/<network>`` and ``/fil/msgs/<network>``.

    With no ``network_name`` no topic is scored, only the peer-wide terms.  Drand topics are not
    scored: this node does not subscribe to them.
    """

    def app_specific_score(peer: PeerID) -> float:
        if peer in bootstrappers and not is_bootstrapper:
            return BOOTSTRAPPER_APP_SCORE
        return 0.0

    return PeerScoreParams(
        topics={}
        if network_name is None
        else {
            f"/fil/blocks/{network_name}": BLOCKS_TOPIC_SCORE,
            f"/fil/msgs/{network_name}": MESSAGES_TOPIC_SCORE,
        },
        app_specific_score=app_specific_score,
        app_specific_weight=1.0,
        ip_colocation_factor_weight=-100.0,
        ip_colocation_factor_threshold=5,
        ip_colocation_factor_whitelist=tuple(
            ipaddress.ip_network(cidr) for cidr in ip_colocation_whitelist
        ),
        behaviour_penalty_threshold=6.0,
        behaviour_penalty_weight=-10.0,
        behaviour_penalty_decay=score_parameter_decay(HOUR),
        decay_interval=DEFAULT_DECAY_INTERVAL_SECONDS,
        decay_to_zero=DEFAULT_DECAY_TO_ZERO,
        retain_score=6 * HOUR,
    )


@dataclass
class _TopicStats:
    in_mesh: bool = False
    graft_time: float = 0.0
    mesh_time: float = 0.0
    first_message_deliveries: float = 0.0
    invalid_message_deliveries: float = 0.0


@dataclass
class _PeerStats:
    topics: dict[str, _TopicStats] = field(default_factory=dict)
    connected: bool = True
    expire: float = 0.0
    behaviour_penalty: float = 0.0


class FilecoinPeerScorer(PeerScorer):
    """go-libp2p-pubsub's peer score behind py-libp2p's ``PeerScorer`` hooks."""

    def __init__(
        self,
        params: PeerScoreParams,
        thresholds: PeerScoreThresholds = LOTUS_THRESHOLDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # py-libp2p's router reads the gossip and graylist thresholds from ``self.params``.
        super().__init__(
            ScoreParams(
                publish_threshold=thresholds.publish,
                gossip_threshold=thresholds.gossip,
                graylist_threshold=thresholds.graylist,
                accept_px_threshold=thresholds.accept_px,
            )
        )
        self.score_params = params
        self.thresholds = thresholds
        self._clock = clock
        self._stats: dict[PeerID, _PeerStats] = {}
        self._last_refresh = clock()

    # -- counters ---------------------------------------------------------------------------

    def _peer(self, peer: PeerID) -> _PeerStats:
        stats = self._stats.get(peer)
        if stats is None:
            stats = self._stats[peer] = _PeerStats()
        stats.connected = True
        return stats

    def _topic(self, peer: PeerID, topic: str) -> _TopicStats | None:
        if topic not in self.score_params.topics:
            return None
        topics = self._peer(peer).topics
        stats = topics.get(topic)
        if stats is None:
            stats = topics[topic] = _TopicStats()
        return stats

    def on_join_mesh(self, peer: PeerID, topic: str) -> None:
        stats = self._topic(peer, topic)
        if stats is not None and not stats.in_mesh:
            stats.in_mesh = True
            stats.graft_time = self._clock()
            stats.mesh_time = 0.0

    def on_leave_mesh(self, peer: PeerID, topic: str) -> None:
        stats = self._topic(peer, topic)
        if stats is not None:
            stats.in_mesh = False

    def on_first_delivery(self, peer: PeerID, topic: str) -> None:
        stats = self._topic(peer, topic)
        if stats is not None:
            cap = self.score_params.topics[topic].first_message_deliveries_cap
            stats.first_message_deliveries = min(stats.first_message_deliveries + 1, cap)

    def on_mesh_delivery(self, peer: PeerID, topic: str) -> None:
        """P3 is off in Lotus's parameters."""

    def on_invalid_message(self, peer: PeerID, topic: str) -> None:
        """Ignored: py-libp2p reports ignores and timeouts here too (see the module docstring)."""

    def mark_invalid_delivery(self, peer: PeerID, topic: str) -> None:
        """``peer`` delivered a message our validator rejected (``markInvalidMessageDelivery``)."""
        stats = self._topic(peer, topic)
        if stats is not None:
            stats.invalid_message_deliveries += 1

    def penalize_behavior(self, peer: PeerID, amount: float = 1.0) -> None:
        self._peer(peer).behaviour_penalty += amount

    def penalize_graft_flood(self, peer: PeerID, amount: float = 10.0) -> None:
        self.penalize_behavior(peer, amount)

    def penalize_iwant_spam(self, peer: PeerID, amount: float = 5.0) -> None:
        self.penalize_behavior(peer, amount)

    def penalize_ihave_spam(self, peer: PeerID, amount: float = 5.0) -> None:
        self.penalize_behavior(peer, amount)

    def penalize_equivocation(self, peer: PeerID, amount: float = 100.0) -> None:
        self.penalize_behavior(peer, amount)

    def add_peer_ip(self, peer: PeerID, ip_str: str) -> None:
        super().add_peer_ip(peer, ip_str)
        self._peer(peer)

    def remove_peer(self, peer: PeerID) -> None:
        """go ``RemovePeer``: keep a non-positive score for ``retain_score`` seconds."""
        stats = self._stats.get(peer)
        if stats is None:
            return
        if self.score(peer, []) > 0:
            del self._stats[peer]
            self.remove_peer_ip(peer)
            return
        for topic_stats in stats.topics.values():
            topic_stats.first_message_deliveries = 0.0
            topic_stats.in_mesh = False
        stats.connected = False
        stats.expire = self._clock() + self.score_params.retain_score

    def on_heartbeat(self, dt_seconds: float = 1.0) -> None:
        """Runs go's ``refreshScores`` once per elapsed decay interval."""
        now = self._clock()
        intervals = int((now - self._last_refresh) / self.score_params.decay_interval)
        if intervals <= 0:
            return
        self._last_refresh += intervals * self.score_params.decay_interval
        for _ in range(min(intervals, 10_000)):
            self._refresh(now)

    def _refresh(self, now: float) -> None:
        params = self.score_params
        floor = params.decay_to_zero
        for peer, stats in list(self._stats.items()):
            if not stats.connected:
                if now > stats.expire:
                    del self._stats[peer]
                    self.remove_peer_ip(peer)
                continue
            for topic, topic_stats in stats.topics.items():
                topic_params = params.topics[topic]
                topic_stats.first_message_deliveries = _decayed(
                    topic_stats.first_message_deliveries,
                    topic_params.first_message_deliveries_decay,
                    floor,
                )
                topic_stats.invalid_message_deliveries = _decayed(
                    topic_stats.invalid_message_deliveries,
                    topic_params.invalid_message_deliveries_decay,
                    floor,
                )
                if topic_stats.in_mesh:
                    topic_stats.mesh_time = now - topic_stats.graft_time
            stats.behaviour_penalty = _decayed(
                stats.behaviour_penalty, params.behaviour_penalty_decay, floor
            )

    # -- the score --------------------------------------------------------------------------

    def topic_score(self, peer: PeerID, topic: str) -> float:
        """One topic's contribution, already scaled by its topic weight."""
        stats = self._stats.get(peer)
        topic_params = self.score_params.topics.get(topic)
        if stats is None or topic_params is None or topic not in stats.topics:
            return 0.0
        topic_stats = stats.topics[topic]
        score = 0.0
        if topic_stats.in_mesh:
            quanta = math.floor(topic_stats.mesh_time / topic_params.time_in_mesh_quantum)
            score += min(quanta, topic_params.time_in_mesh_cap) * topic_params.time_in_mesh_weight
        score += topic_stats.first_message_deliveries * topic_params.first_message_deliveries_weight
        score += (
            topic_stats.invalid_message_deliveries**2
            * topic_params.invalid_message_deliveries_weight
        )
        return score * topic_params.topic_weight

    def ip_colocation_factor(self, peer: PeerID) -> float:
        """go ``ipColocationFactor``: the squared surplus of peers on this peer's IP."""
        ip_text = self.ip_by_peer.get(peer)
        if ip_text is None:
            return 0.0
        try:
            address = ipaddress.ip_address(ip_text)
        except ValueError:
            return 0.0
        if any(address in network for network in self.score_params.ip_colocation_factor_whitelist):
            return 0.0
        surplus = (
            len(self.peer_ips.get(ip_text, ())) - self.score_params.ip_colocation_factor_threshold
        )
        return float(surplus * surplus) if surplus > 0 else 0.0

    def score(self, peer: PeerID, topics: list[str] | None = None) -> float:
        """The peer's whole score; like go-libp2p it covers every scored topic, so ``topics``
        (py-libp2p's argument) is not used."""
        stats = self._stats.get(peer)
        if stats is None:
            return 0.0
        params = self.score_params
        score = sum(self.topic_score(peer, topic) for topic in stats.topics)
        score += params.app_specific_score(peer) * params.app_specific_weight
        score += self.ip_colocation_factor(peer) * params.ip_colocation_factor_weight
        excess = stats.behaviour_penalty - params.behaviour_penalty_threshold
        if excess > 0:
            score += excess * excess * params.behaviour_penalty_weight
        return score

    # -- the gates py-libp2p consults -------------------------------------------------------

    def allow_publish(self, peer: PeerID, topics: list[str]) -> bool:
        """Whether to accept messages from ``peer``: go-libp2p's ``AcceptFrom`` graylist gate.

        py-libp2p asks this before validating a peer's message as well as before sending to it;
        go-libp2p gates the first at the graylist threshold and the second at the publish
        threshold, so this answers the first and :meth:`allow_publish_to` the second (which
        ``node.pubsub.ScoredGossipSub`` applies when choosing recipients).
        """
        return not self.is_graylisted(peer)

    def allow_publish_to(self, peer: PeerID) -> bool:
        return self.score(peer) >= self.thresholds.publish

    def allow_gossip(self, peer: PeerID, topics: list[str]) -> bool:
        return self.score(peer) >= self.thresholds.gossip

    def is_graylisted(self, peer: PeerID, topics: list[str] | None = None) -> bool:
        return self.score(peer) < self.thresholds.graylist

    def allow_px_from(self, peer: PeerID, topics: list[str]) -> bool:
        return self.score(peer) >= self.thresholds.accept_px

    def scores(self) -> dict[PeerID, float]:
        """Every tracked peer's score (connected or retained), for metrics and tests."""
        return {peer: self.score(peer) for peer in self._stats}


def _decayed(value: float, factor: float, floor: float) -> float:
    value *= factor
    return 0.0 if value < floor else value
