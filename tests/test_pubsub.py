"""Gossipsub with Filecoin message ids and topic validators, over real loopback TCP."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID as PeerID
from libp2p.pubsub.pb import rpc_pb2
from node_harness import wait_until

from node.p2p_host import HostConfig, P2PHost, running_host
from node.pubsub import (
    FilecoinPubsub,
    GossipConfig,
    GossipMessage,
    PublishRejected,
    Subscription,
    Verdict,
    blocks_topic,
    message_id,
    messages_topic,
    running_pubsub,
)
from store.errors import CBORError

NETWORK = "devnet"
TOPIC = blocks_topic(NETWORK)
SETTLE_SECONDS = 5.0


def run(test: object) -> None:
    async def bounded() -> None:
        with trio.fail_after(30):
            await test()  # type: ignore[operator]

    trio.run(bounded)


@asynccontextmanager
async def gossip_nodes(
    tmp_path: Path, count: int, config: GossipConfig | None = None
) -> AsyncIterator[list[tuple[P2PHost, FilecoinPubsub]]]:
    async with AsyncExitStack() as stack:
        nodes = []
        for index in range(count):
            host = await stack.enter_async_context(
                running_host(HostConfig(data_dir=tmp_path / f"node{index}"))
            )
            pubsub = await stack.enter_async_context(running_pubsub(host, config))
            nodes.append((host, pubsub))
        yield nodes


async def link_in_a_line(
    nodes: list[tuple[P2PHost, FilecoinPubsub]], topic: str
) -> list[Subscription]:
    """Subscribes everyone, connects node i to node i+1 only and waits for the mesh links."""
    subscriptions = [await pubsub.subscribe(topic) for _, pubsub in nodes]
    for (left, _), (right, _) in itertools.pairwise(nodes):
        await left.connect(right.listen_addrs()[0])
    for (left, left_pubsub), (right, right_pubsub) in itertools.pairwise(nodes):
        await left_pubsub.wait_for_mesh_peer(right.peer_id, topic, SETTLE_SECONDS)
        await right_pubsub.wait_for_mesh_peer(left.peer_id, topic, SETTLE_SECONDS)
    return subscriptions


async def next_or_none(subscription: Subscription, seconds: float) -> GossipMessage | None:
    with trio.move_on_after(seconds):
        return await subscription.get()
    return None


def test_topic_names_follow_lotus() -> None:
    assert blocks_topic("mainnet") == "/fil/blocks/mainnet"
    assert messages_topic("calibrationnet") == "/fil/msgs/calibrationnet"


def test_message_id_is_blake2b_256_of_the_data_alone() -> None:
    data = b"\x82\x01\x02"
    one = rpc_pb2.Message(data=data, from_id=b"peer-one", seqno=b"\x00" * 8, topicIDs=["a"])
    two = rpc_pb2.Message(data=data, from_id=b"peer-two", seqno=b"\x07" * 8, topicIDs=["b"])
    expected = hashlib.blake2b(data, digest_size=32).digest()
    assert message_id(one) == message_id(two) == expected
    empty = rpc_pb2.Message(data=b"", from_id=b"x", seqno=b"\x01")
    assert message_id(empty).hex() == (
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )


def test_message_reaches_c_through_b_only_when_b_accepts(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gossip_nodes(tmp_path, 3) as nodes:
            (host_a, pubsub_a), (_host_b, pubsub_b), (host_c, _) = nodes
            judged_at_b: list[tuple[PeerID, bytes]] = []

            async def judge(forwarder: PeerID, data: bytes) -> Verdict:
                judged_at_b.append((forwarder, data))
                if data.startswith(b"good"):
                    return Verdict.ACCEPT
                if data.startswith(b"ugly"):
                    raise CBORError("not a block")
                return Verdict.REJECT if data.startswith(b"bad") else Verdict.IGNORE

            pubsub_b.set_validator(TOPIC, judge)
            _, sub_b, sub_c = await link_in_a_line(nodes, TOPIC)
            assert host_c.peer_id not in host_a.connected_peers()

            await pubsub_a.publish(TOPIC, b"bad block")
            await pubsub_a.publish(TOPIC, b"dull block")
            await pubsub_a.publish(TOPIC, b"ugly block")
            await pubsub_a.publish(TOPIC, b"good block")
            at_c = await sub_c.get()
            assert at_c.data == b"good block"
            assert at_c.origin == host_a.peer_id
            assert at_c.message_id == hashlib.blake2b(b"good block", digest_size=32).digest()
            assert (await sub_b.get()).data == b"good block"
            assert await next_or_none(sub_c, 0.5) is None
            assert await next_or_none(sub_b, 0.1) is None
            assert judged_at_b == [
                (host_a.peer_id, b"bad block"),
                (host_a.peer_id, b"dull block"),
                (host_a.peer_id, b"ugly block"),
                (host_a.peer_id, b"good block"),
            ]
            assert pubsub_b.verdicts[(TOPIC, Verdict.REJECT)] == 2
            assert pubsub_b.verdicts[(TOPIC, Verdict.IGNORE)] == 1
            assert pubsub_b.verdicts[(TOPIC, Verdict.ACCEPT)] == 1
            assert pubsub_a.published[TOPIC] == 4

    run(scenario)


def test_same_data_from_two_publishers_is_one_message(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gossip_nodes(tmp_path, 3) as nodes:
            (_, pubsub_a), (_, pubsub_b), _ = nodes
            _, _, sub_c = await link_in_a_line(nodes, TOPIC)
            await pubsub_a.publish(TOPIC, b"the same block")
            first = await sub_c.get()
            await pubsub_b.publish(TOPIC, b"the same block")
            assert await next_or_none(sub_c, 0.5) is None
            assert first.message_id == hashlib.blake2b(b"the same block", digest_size=32).digest()

    run(scenario)


def test_local_publish_runs_the_validator_and_rejected_data_stays_local(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with gossip_nodes(tmp_path, 2) as nodes:
            (_, pubsub_a), _ = nodes

            async def refuse(forwarder: PeerID, data: bytes) -> Verdict:
                return Verdict.REJECT

            pubsub_a.set_validator(TOPIC, refuse)
            sub_a, sub_b = await link_in_a_line(nodes, TOPIC)
            with pytest.raises(PublishRejected, match="answered reject"):
                await pubsub_a.publish(TOPIC, b"anything")
            assert pubsub_a.published[TOPIC] == 0
            assert await next_or_none(sub_b, 0.5) is None
            assert await next_or_none(sub_a, 0.05) is None
            assert pubsub_a.verdicts[(TOPIC, Verdict.REJECT)] == 1

    run(scenario)


def test_a_peer_publishing_invalid_blocks_is_scored_down_pruned_and_graylisted(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with gossip_nodes(tmp_path, 2, GossipConfig(network_name=NETWORK)) as nodes:
            (host_a, pubsub_a), (_host_b, pubsub_b) = nodes
            judged_at_b: list[bytes] = []

            async def judge(forwarder: PeerID, data: bytes) -> Verdict:
                judged_at_b.append(data)
                return Verdict.REJECT if data.startswith(b"bad") else Verdict.IGNORE

            pubsub_b.set_validator(TOPIC, judge)
            _, sub_b = await link_in_a_line(nodes, TOPIC)

            for index in range(3):
                await pubsub_a.publish(TOPIC, b"dull block %d" % index)
            await wait_until(
                "three judged blocks", lambda: len(judged_at_b) == 3, timeout=SETTLE_SECONDS
            )
            assert pubsub_b.scorer.score(host_a.peer_id) >= 0
            assert host_a.peer_id in pubsub_b.mesh_peers(TOPIC)

            for index in range(6):
                await pubsub_a.publish(TOPIC, b"bad block %d" % index)
            await wait_until(
                "six rejections",
                lambda: pubsub_b.verdicts[(TOPIC, Verdict.REJECT)] == 6,
                timeout=SETTLE_SECONDS,
            )
            # six invalid blocks: 0.1 * -1000 * 6^2, plus at most 0.1 * 0.00027 for mesh time
            assert pubsub_b.scorer.score(host_a.peer_id) == pytest.approx(-3600, abs=0.01)
            assert pubsub_b.scorer.is_graylisted(host_a.peer_id)
            await wait_until(
                "A pruned from B's mesh",
                lambda: host_a.peer_id not in pubsub_b.mesh_peers(TOPIC),
                timeout=SETTLE_SECONDS,
            )

            # A still floods its own messages to B (B's score at A is fine), but B drops them
            # unvalidated now.
            judged = len(judged_at_b)
            await pubsub_a.publish(TOPIC, b"dull block after")
            assert await next_or_none(sub_b, 1.0) is None
            assert len(judged_at_b) == judged

    run(scenario)
