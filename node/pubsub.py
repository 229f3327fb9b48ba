"""Gossipsub for Filecoin's block and message topics, with Lotus's message ids and validators.

Lotus (``node/modules/lp2p/pubsub.go`` ``GossipSub``) runs gossipsub with strict signing and
``WithMessageIdFn(HashMsgId)``: a message's id is the blake2b-256 of its data, so the same block or
message published by two peers is one message.  It registers a validator on each topic
(``node/modules/services.go`` ``HandleIncomingBlocks``/``HandleIncomingMessages``) that answers
accept, reject or ignore before the message is delivered or forwarded.  Topics are
``/fil/blocks/<network name>`` and ``/fil/msgs/<network name>`` (``build`` ``BlocksTopic``,
``MessagesTopic``).

py-libp2p 0.8.1 ``Pubsub`` takes a custom ``msg_id_constructor`` and async topic validators, and
runs them before delivering or forwarding, which is what we need.  Its validators return only a
bool, so the three-way result is folded: accept is True, reject and ignore are both False (neither
is delivered nor forwarded).  The difference that remains is scoring: py-libp2p counts every
False as an invalid delivery against the forwarder, where go-libp2p does that only for reject.
So scoring uses Lotus's parameters through :class:`node.gossip_score.FilecoinPeerScorer`, whose
py-libp2p hook for failed validations does nothing, and the validator wrapper here marks an
invalid delivery for rejections only.  As go-libp2p does (``score.go`` ``DuplicateMessage``), a
rejected message is held against every peer that forwards it while it is remembered, and an
ignored one against none; verdicts are remembered for go's seen-cache time (two minutes), and
py-libp2p's own validation cache is made stale at once so that every delivery reaches the
wrapper.

The score thresholds act as in go-libp2p's ``gossipsub.go`` as far as py-libp2p's router hooks
reach (:class:`ScoredGossipSub`): messages and control messages from graylisted peers are dropped
(``AcceptFrom``); our own messages are flooded to every topic peer (``WithFloodPublish``), and
messages go only to peers at or above the publish threshold; IHAVE and IWANT
from peers below the gossip threshold are ignored; a GRAFT from a negative-score peer is answered
with PRUNE; every heartbeat prunes negative-score peers from the mesh and never grafts them;
opportunistic grafting runs every 60 heartbeats when the mesh's median score is below the
threshold.  What py-libp2p cannot express: a graylisted peer's subscription changes are still
processed; mesh-delivery scoring (P3, off in Lotus anyway) and the topic score cap have no hook;
there is no peer gater (Lotus's validation-queue RED) and no topic subscription filter.
py-libp2p's own additions that go-libp2p lacks (a per-peer topic rate limit, IP-diversity
grafting, adaptive heartbeats) are switched off.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from libp2p.abc import ISubscriptionAPI
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from node.gossip_score import FilecoinPeerScorer, lotus_peer_score_params
from node.p2p_host import P2PHost
from store.errors import FvmNodeError, MalformedInput

logger = logging.getLogger(__name__)

GOSSIPSUB_PROTOCOLS = (TProtocol(PROTOCOL_ID_V11), TProtocol(PROTOCOL_ID))
# go-libp2p-pubsub ``TimeCacheDuration``: how long a message id counts as seen.
SEEN_MESSAGES_SECONDS: Final = 120.0
# go-libp2p-pubsub ``GossipSubOpportunisticGraftTicks`` and ``GossipSubOpportunisticGraftPeers``.
OPPORTUNISTIC_GRAFT_TICKS: Final = 60
OPPORTUNISTIC_GRAFT_PEERS: Final = 2
# A py-libp2p validation cache TTL below zero makes every cached result stale when read.
STALE_AT_ONCE: Final = -1


def blocks_topic(network_name: str) -> str:
    return f"/fil/blocks/{network_name}"


def messages_topic(network_name: str) -> str:
    return f"/fil/msgs/{network_name}"


def data_id(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def message_id(message: rpc_pb2.Message) -> bytes:
    """Lotus ``HashMsgId``: blake2b-256 of the message data, ignoring sender and sequence number."""
    return data_id(message.data)


class PublishRejected(FvmNodeError):
    """Our own topic validator did not accept data we tried to publish (go-libp2p errors too)."""


class Verdict(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


TopicValidator = Callable[[PeerID, bytes], Awaitable[Verdict]]


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    data: bytes
    origin: PeerID
    message_id: bytes


class Subscription:
    """Messages on one topic that passed validation, in arrival order."""

    def __init__(self, topic: str, subscription: ISubscriptionAPI) -> None:
        self.topic = topic
        self._subscription = subscription

    async def get(self) -> GossipMessage:
        raw = await self._subscription.get()
        return GossipMessage(self.topic, raw.data, PeerID(raw.from_id), message_id(raw))

    def __aiter__(self) -> AsyncIterator[GossipMessage]:
        return self

    async def __anext__(self) -> GossipMessage:
        return await self.get()


@dataclass(frozen=True)
class GossipConfig:
    """Lotus's non-bootstrapper mesh degrees (D=8, Dlo=6, Dhi=12) and a one-second heartbeat.

    ``network_name`` names the topics Lotus scores (``/fil/blocks/<name>``, ``/fil/msgs/<name>``);
    without it only the topic-independent score terms apply.  ``bootstrappers`` get Lotus's
    application score of 2500 (never pruned for score, peer exchange accepted).
    """

    degree: int = 8
    degree_low: int = 6
    degree_high: int = 12
    heartbeat_interval: int = 1
    validation_timeout: float = 5.0
    network_name: str | None = None
    bootstrappers: frozenset[PeerID] = frozenset()


class ScoredGossipSub(GossipSub):
    """py-libp2p's GossipSub with go-libp2p's score thresholds acting (see the module docstring).

    ``self.scorer`` is a :class:`FilecoinPeerScorer`, so every score here is go-libp2p's.
    """

    scorer: FilecoinPeerScorer

    def __init__(self, scorer: FilecoinPeerScorer, **options: Any) -> None:
        super().__init__(**options)
        self.scorer = scorer
        self._heartbeats = 0

    async def handle_rpc(self, rpc: rpc_pb2.RPC, sender_peer_id: PeerID) -> None:
        if self.scorer.is_graylisted(sender_peer_id):
            logger.debug("control message from graylisted peer %s dropped", sender_peer_id)
            return
        await super().handle_rpc(rpc, sender_peer_id)

    async def handle_ihave(self, ihave_msg: rpc_pb2.ControlIHave, sender_peer_id: PeerID) -> None:
        if self.scorer.allow_gossip(sender_peer_id, []):
            await super().handle_ihave(ihave_msg, sender_peer_id)

    async def handle_iwant(self, iwant_msg: rpc_pb2.ControlIWant, sender_peer_id: PeerID) -> None:
        if self.scorer.allow_gossip(sender_peer_id, []):
            await super().handle_iwant(iwant_msg, sender_peer_id)

    async def handle_graft(self, graft_msg: rpc_pb2.ControlGraft, sender_peer_id: PeerID) -> None:
        topic = graft_msg.topicID
        if topic in self.mesh and self.scorer.score(sender_peer_id) < 0:
            self._add_back_off(sender_peer_id, topic, False)
            await self.emit_prune(topic, sender_peer_id, False, False)
            return
        await super().handle_graft(graft_msg, sender_peer_id)

    def _get_peers_to_send(
        self,
        topic_ids: Iterable[str],
        msg_forwarder: PeerID,
        origin: PeerID,
        msg_id: bytes | None = None,
    ) -> Iterable[PeerID]:
        """Mesh (or fanout) peers, and for our own messages every gossipsub peer of the topic
        (Lotus's ``WithFloodPublish``), leaving out peers below the publish threshold."""
        topics = list(topic_ids)
        recipients = set(super()._get_peers_to_send(topics, msg_forwarder, origin, msg_id))
        if self.pubsub is not None and msg_forwarder == self.pubsub.my_id:
            for topic in topics:
                recipients.update(
                    peer
                    for peer in self.pubsub.peer_topics.get(topic, set())
                    if peer in self.peer_protocol
                )
            recipients.discard(msg_forwarder)
        return [peer for peer in recipients if self.scorer.allow_publish_to(peer)]

    def _notify_mesh_peer_added(self, peer_id: PeerID, topic: str) -> None:
        self.scorer.on_join_mesh(peer_id, topic)
        super()._notify_mesh_peer_added(peer_id, topic)

    def mesh_heartbeat(self) -> tuple[Any, Any]:
        """go's heartbeat order: prune negative-score mesh peers (with back-off), then fill."""
        self._heartbeats += 1
        score = self.scorer.score
        dropped: list[tuple[PeerID, str]] = []
        for topic, peers in self.mesh.items():
            for peer in [peer for peer in peers if score(peer) < 0]:
                peers.discard(peer)
                self.scorer.on_leave_mesh(peer, topic)
                self._add_back_off(peer, topic, False)
                dropped.append((peer, topic))
        grafts, prunes = super().mesh_heartbeat()
        for peer, topics in list(grafts.items()):
            if score(peer) < 0:
                for topic in topics:
                    self.mesh[topic].discard(peer)
                    self.scorer.on_leave_mesh(peer, topic)
                del grafts[peer]
        for peer, topic in dropped:
            prunes[peer].append(topic)
        return grafts, prunes

    def _perform_opportunistic_grafting(self, topic: str, peers_to_graft: Any) -> int:
        """go's opportunistic graft: every 60 heartbeats, if the mesh's median score is below the
        threshold, graft up to two peers scoring above that median."""
        if self._heartbeats % OPPORTUNISTIC_GRAFT_TICKS != 0 or self.pubsub is None:
            return 0
        mesh = self.mesh[topic]
        if len(mesh) <= 1:
            return 0
        score = self.scorer.score
        median = sorted(score(peer) for peer in mesh)[len(mesh) // 2]
        if median >= self.scorer.thresholds.opportunistic_graft:
            return 0
        candidates = [
            peer
            for peer in self.pubsub.peer_topics.get(topic, set())
            if peer not in mesh
            and peer in self.peer_protocol
            and peer not in self.direct_peers
            and not self._check_back_off(peer, topic)
            and score(peer) > median
        ]
        random.shuffle(candidates)
        for peer in candidates[:OPPORTUNISTIC_GRAFT_PEERS]:
            mesh.add(peer)
            self._notify_mesh_peer_added(peer, topic)
            peers_to_graft[peer].append(topic)
        return min(len(candidates), OPPORTUNISTIC_GRAFT_PEERS)


class FilecoinPubsub:
    """Gossipsub on the node's host with Filecoin message ids and three-way topic validators."""

    def __init__(self, pubsub: Pubsub, scorer: FilecoinPeerScorer) -> None:
        self._pubsub = pubsub
        self.scorer = scorer
        self.verdicts: Counter[tuple[str, Verdict]] = Counter()
        self.published: Counter[str] = Counter()
        self._own_verdicts: dict[bytes, Verdict] = {}
        self._remembered: dict[bytes, tuple[Verdict, float]] = {}

    def set_validator(self, topic: str, validator: TopicValidator) -> None:
        """Runs ``validator(forwarder, data)`` on every message of ``topic`` before it is used.

        A validator that raises :class:`MalformedInput` rejects the message.  One that has not
        answered within ``GossipConfig.validation_timeout`` drops it (py-libp2p's deadline), and
        that counts against no one.  A rejection counts as an invalid delivery by the forwarder.
        """

        async def validate(forwarder: PeerID, message: rpc_pb2.Message) -> bool:
            key = message_id(message)
            verdict = self._remembered_verdict(key)
            if verdict is None:
                try:
                    verdict = await validator(forwarder, message.data)
                except MalformedInput:
                    verdict = Verdict.REJECT
                self.verdicts[(topic, verdict)] += 1
                if verdict is not Verdict.ACCEPT:
                    self._remember(key, verdict)
            if forwarder == self._pubsub.my_id:
                self._own_verdicts[key] = verdict
            elif verdict is Verdict.REJECT:
                self.scorer.mark_invalid_delivery(forwarder, topic)
            return verdict is Verdict.ACCEPT

        self._pubsub.set_topic_validator(topic, validate, is_async_validator=True)

    def _remembered_verdict(self, key: bytes) -> Verdict | None:
        entry = self._remembered.get(key)
        if entry is None:
            return None
        verdict, expires = entry
        if time.monotonic() < expires:
            return verdict
        del self._remembered[key]
        return None

    def _remember(self, key: bytes, verdict: Verdict) -> None:
        now = time.monotonic()
        self._remembered[key] = (verdict, now + SEEN_MESSAGES_SECONDS)
        if len(self._remembered) % 1024 == 0:
            self._remembered = {
                key: entry for key, entry in self._remembered.items() if entry[1] > now
            }

    async def subscribe(self, topic: str) -> Subscription:
        return Subscription(topic, await self._pubsub.subscribe(topic))

    async def publish(self, topic: str, data: bytes) -> None:
        """Publishes ``data``; our own validator runs on it first, as in go-libp2p.

        Raises :class:`PublishRejected` when that validator does not accept it (py-libp2p itself
        drops such a message silently).  Data already seen is not validated again and is not sent
        again, as with any duplicate.
        """
        try:
            await self._pubsub.publish(topic, data)
        finally:
            verdict = self._own_verdicts.pop(data_id(data), Verdict.ACCEPT)
        if verdict is not Verdict.ACCEPT:
            raise PublishRejected(f"own {topic} validator answered {verdict.value}")
        self.published[topic] += 1

    def topic_peers(self, topic: str) -> set[PeerID]:
        return set(self._pubsub.peer_topics.get(topic, set()))

    def mesh_peers(self, topic: str) -> set[PeerID]:
        """The peers we forward ``topic`` to (our side of the mesh)."""
        router = self._pubsub.router
        assert isinstance(router, GossipSub)
        return set(router.mesh.get(topic, set()))

    async def wait_for_topic_peer(self, peer_id: PeerID, topic: str, timeout: float) -> None:
        """Returns once ``peer_id`` has announced a subscription to ``topic``."""
        await self._pubsub.wait_for_subscription(peer_id, topic, timeout=timeout)

    async def wait_for_mesh_peer(self, peer_id: PeerID, topic: str, timeout: float) -> None:
        """Returns once ``peer_id`` is in our gossipsub mesh for ``topic`` (we forward there)."""
        await self._pubsub.wait_for_mesh(peer_id, topic, timeout=timeout)


@asynccontextmanager
async def running_pubsub(
    host: P2PHost, config: GossipConfig | None = None
) -> AsyncIterator[FilecoinPubsub]:
    """Attaches gossipsub to ``host`` and runs it for the duration of the block.

    Enter this before dialling peers: py-libp2p's pubsub learns of peers only from connection
    events that happen after it is attached.
    """
    config = config or GossipConfig()
    scorer = FilecoinPeerScorer(lotus_peer_score_params(config.network_name, config.bootstrappers))
    router = ScoredGossipSub(
        scorer,
        protocols=list(GOSSIPSUB_PROTOCOLS),
        degree=config.degree,
        degree_low=config.degree_low,
        degree_high=config.degree_high,
        time_to_live=60,
        gossip_window=3,
        gossip_history=10,
        heartbeat_initial_delay=0.1,
        heartbeat_interval=config.heartbeat_interval,
        # py-libp2p extras with no go-libp2p-pubsub counterpart: a 10 msg/s per-peer topic rate
        # limit (the message topic carries more), IP-diversity grafting (every test peer shares
        # 127.0.0.1) and heartbeat retuning.  Off, so the mesh behaves as Lotus's does.
        adaptive_gossip_enabled=False,
        spam_protection_enabled=False,
        eclipse_protection_enabled=False,
    )
    pubsub = Pubsub(
        host=host.libp2p_host,
        router=router,
        strict_signing=True,
        msg_id_constructor=message_id,
        validation_timeout=config.validation_timeout,
        validation_cache_ttl=STALE_AT_ONCE,
    )
    async with background_trio_service(pubsub), background_trio_service(router):
        await pubsub.wait_until_ready()
        yield FilecoinPubsub(pubsub, scorer)
