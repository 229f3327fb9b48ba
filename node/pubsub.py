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
The counters here keep the three outcomes apart.  py-libp2p also caches a validation result per
message id for ``validation_cache_ttl`` seconds, so a message ignored once stays ignored for that
long; go-libp2p's seen-cache has the same effect.  py-libp2p's own additions that go-libp2p
lacks (a per-peer topic rate limit, IP-diversity grafting, adaptive heartbeats) are switched off.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from libp2p.abc import ISubscriptionAPI
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID as PeerID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from node.p2p_host import P2PHost
from store.errors import FvmNodeError, MalformedInput

logger = logging.getLogger(__name__)

GOSSIPSUB_PROTOCOLS = (TProtocol(PROTOCOL_ID_V11), TProtocol(PROTOCOL_ID))


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
    """Lotus's non-bootstrapper mesh degrees (D=8, Dlo=6, Dhi=12) and a one-second heartbeat."""

    degree: int = 8
    degree_low: int = 6
    degree_high: int = 12
    heartbeat_interval: int = 1
    validation_timeout: float = 5.0


class FilecoinPubsub:
    """Gossipsub on the node's host with Filecoin message ids and three-way topic validators."""

    def __init__(self, pubsub: Pubsub) -> None:
        self._pubsub = pubsub
        self.verdicts: Counter[tuple[str, Verdict]] = Counter()
        self.published: Counter[str] = Counter()
        self._own_verdicts: dict[bytes, Verdict] = {}

    def set_validator(self, topic: str, validator: TopicValidator) -> None:
        """Runs ``validator(forwarder, data)`` on every message of ``topic`` before it is used.

        A validator that raises :class:`MalformedInput` rejects the message.  One that has not
        answered within ``GossipConfig.validation_timeout`` drops it (py-libp2p's deadline).
        """

        async def validate(forwarder: PeerID, message: rpc_pb2.Message) -> bool:
            try:
                verdict = await validator(forwarder, message.data)
            except MalformedInput:
                verdict = Verdict.REJECT
            self.verdicts[(topic, verdict)] += 1
            if forwarder == self._pubsub.my_id:
                self._own_verdicts[message_id(message)] = verdict
            return verdict is Verdict.ACCEPT

        self._pubsub.set_topic_validator(topic, validate, is_async_validator=True)

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
    router = GossipSub(
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
    )
    async with background_trio_service(pubsub), background_trio_service(router):
        await pubsub.wait_until_ready()
        yield FilecoinPubsub(pubsub)
