"""Issue 4's acceptance over real libp2p: a misbehaving peer is penalised and never stops sync
from an honest one, and the metrics show it.

Three parties on loopback TCP, each a real libp2p host: a devnet producer (a
:class:`~node.filecoin_node.FilecoinNode` making a block a second), the misbehaving peer of
:mod:`misbehaving_peer`, and a syncing ``FilecoinNode`` that first knows only the bad peer. The
node takes the bad peer's announced head as its target and asks it first:

* a forged chain (wrong state root, bad block or message signature) is served faithfully; the
  node refuses it, bans the peer and disconnects it; then it meets the producer and syncs;
* a broken server holds its first answer until the node has also met the producer, then answers
  with malformed CBOR, too many bytes, or bytes that never end; the node penalises it and the
  same request goes to the producer.

Either way the node ends on the producer's head with the producer's execution results, and its
metrics endpoint (scraped over HTTP) counts the offence under the penalty's reason.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID as PeerID
from misbehaving_peer import (
    MALFORMED_REQUEST,
    ForgedChain,
    MisbehavingPeer,
    Misbehaviour,
    forge_chain,
    running_misbehaving_peer,
)
from node_harness import (
    WAIT_TIMEOUT,
    follower_settings,
    one_second_devnet,
    producer_settings,
    quiet,
    results,
    scrape,
    wait_until,
)

from chainsync.chain_types import BlockMsg
from chainsync.hello import HelloMessage
from config.settings import NodeSettings
from fvm.bundle import Bundle
from fvm.message import Message
from node.cbor_rpc import PeerExchangeError
from node.chain_exchange_service import MAX_RESPONSE_BYTES
from node.devnet.layout import Devnet
from node.filecoin_node import FilecoinNode
from node.peer_manager import PENALTY_POINTS, PenaltyReason
from node.pubsub import Verdict

REQUEST_TIMEOUT_SECONDS = {
    # Long enough for the held answer (the node meets the producer meanwhile).
    Misbehaviour.MALFORMED_CBOR: 20.0,
    Misbehaviour.OVERSIZED_RESPONSE: 20.0,
    # The endless answer ends only when the node's deadline cuts it off.
    Misbehaviour.ENDLESS_RESPONSE: 8.0,
}
PENALTY = {
    Misbehaviour.WRONG_STATE_ROOT: PenaltyReason.WRONG_STATE_ROOT,
    Misbehaviour.BAD_BLOCK_SIGNATURE: PenaltyReason.BAD_SIGNATURE,
    Misbehaviour.BAD_MESSAGE_SIGNATURE: PenaltyReason.BAD_SIGNATURE,
    Misbehaviour.MALFORMED_CBOR: PenaltyReason.MALFORMED_CBOR,
    Misbehaviour.OVERSIZED_RESPONSE: PenaltyReason.OVERSIZED_RESPONSE,
    Misbehaviour.ENDLESS_RESPONSE: PenaltyReason.TIMEOUT,
}


@pytest.fixture
def devnet(tmp_path: Path, actors_dir: Path) -> Devnet:
    return one_second_devnet(tmp_path, actors_dir, seed=b"misbehaving")


def syncing_node_settings(
    devnet: Devnet, data_dir: Path, bad_peer: str, misbehaviour: Misbehaviour
) -> NodeSettings:
    settings = follower_settings(devnet, data_dir, bad_peer)
    timeout = REQUEST_TIMEOUT_SECONDS.get(misbehaviour, settings.sync.request_timeout_secs)
    return replace(settings, sync=replace(settings.sync, request_timeout_secs=timeout))


async def meet_the_producer(node: FilecoinNode, producer: FilecoinNode) -> PeerID:
    """Connect the node to the producer and wait until the producer's hello is recorded."""
    producer_id = await node.host.connect(producer.listen_addrs()[0])

    def hello_recorded() -> bool:
        record = node.peers.peer(producer_id)
        return record is not None and record.head_height is not None

    await wait_until("the producer's hello", hello_recorded)
    return producer_id


async def wait_until_on_producer_head(node: FilecoinNode, producer: FilecoinNode) -> None:
    await wait_until(
        "the producer's head",
        lambda: node.head().height >= 3 and node.head().key == producer.head().key,
    )


def metric(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sample of ``name`` with ``labels``, which the exposition must hold."""
    rendered = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return samples[f"{name}{{{rendered}}}" if labels else name]


def nonzero_by_last_label(samples: dict[str, float], prefix: str) -> dict[str, float]:
    """The nonzero samples named ``prefix...}``, keyed by the rest of the name (the value of
    the last label)."""
    return {
        name[len(prefix) : -1]: value
        for name, value in samples.items()
        if name.startswith(prefix) and value
    }


def client_exchange_errors(samples: dict[str, float]) -> dict[str, float]:
    return nonzero_by_last_label(
        samples, "fvmnode_chain_exchange_errors_total{direction=client,reason="
    )


def penalty_counts(samples: dict[str, float]) -> dict[str, float]:
    return nonzero_by_last_label(samples, "fvmnode_peer_penalties_total{reason=")


async def scenario(
    devnet: Devnet,
    tmp_path: Path,
    misbehaviour: Misbehaviour,
    chain: ForgedChain | None,
) -> None:
    async with FilecoinNode(
        producer_settings(devnet), producer=devnet, progress=quiet()
    ) as producer:
        # Above the forged block too, so the node never offers the bad peer (whose hello head
        # is that block) a request for the producer's chain.
        floor = 2 if chain is None else max(2, chain.tipset.height + 1)
        await wait_until("the producer's blocks", lambda: producer.head().height >= floor)
        head = producer.head()
        if chain is not None:
            hello = chain.hello()
        else:
            hello = HelloMessage(
                head.cids, head.height, producer.pipeline.weight(head), devnet.genesis_cid
            )
        async with running_misbehaving_peer(
            tmp_path / "bad", misbehaviour, hello, chain=chain, head=head
        ) as bad:
            if chain is None:
                bad.hold()
            settings = syncing_node_settings(devnet, tmp_path / "node", bad.address, misbehaviour)
            async with FilecoinNode(settings, progress=quiet()) as node:
                await check_node(node, producer, bad, chain)


async def check_node(
    node: FilecoinNode,
    producer: FilecoinNode,
    bad: MisbehavingPeer,
    chain: ForgedChain | None,
) -> None:
    misbehaviour = bad.misbehaviour
    reason = PENALTY[misbehaviour]
    await bad.wait_for_request()
    assert node.syncer is not None
    if chain is not None:
        # The forged chain is fetched and refused, and its server banned at once and dropped
        # (its good answers before do not help it); only then does the node meet the producer.
        await wait_until("the penalty", lambda: node.peers.penalties[reason] > 0)
        assert node.peers.is_banned(bad.peer_id)
        await wait_until(
            "the disconnection", lambda: bad.peer_id not in node.host.connected_peers()
        )
        assert node.head() == node.genesis
        await meet_the_producer(node, producer)
    else:
        await meet_the_producer(node, producer)
        bad.release()
    await wait_until_on_producer_head(node, producer)

    # The honest chain, executed by the node itself, agrees with the producer's execution.
    height = node.head().height - 1
    mine = dict(results(node, height))
    assert all(result is not None for result in mine.values())
    assert mine == dict(results(producer, height))

    record = node.peers.peer(bad.peer_id)
    assert record is not None
    assert node.peers.penalties == {reason: 1}
    # One offence costs its points, and forged chain data is charged from a score of zero
    # whatever good answers came before it.
    assert record.score == -PENALTY_POINTS[reason]
    if chain is not None:
        assert record.successes == 2  # the headers and the messages of the forged tipset
        assert node.syncer.is_bad(chain.tipset.cids[0])
        assert node.chain_store.index.tipset_meta(chain.tipset.key.to_bytes()) is None
    else:
        assert (record.successes, record.failures) == (0, 1)
        assert [request.head for _, request in bad.requests] == [bad.hello_message.heaviest_tipset]
    if misbehaviour is Misbehaviour.OVERSIZED_RESPONSE:
        assert bad.bytes_written > MAX_RESPONSE_BYTES

    mismatches = node.chain_store.index.mismatches()
    if misbehaviour is Misbehaviour.WRONG_STATE_ROOT:
        assert chain is not None
        [mismatch] = mismatches
        assert mismatch.height == 0
        assert mismatch.key == node.genesis.key.to_bytes()
        assert mismatch.expected_state_root == chain.wrong_state_root
        assert mismatch.computed_state_root == node.genesis.parent_state
    else:
        assert mismatches == []

    assert node.metrics_url is not None
    scraped_after = node.head().height
    samples = await trio.to_thread.run_sync(scrape, node.metrics_url)
    assert samples["fvmnode_head_epoch"] >= scraped_after
    assert penalty_counts(samples) == {reason.value: 1.0}
    expected_mismatches = 1.0 if misbehaviour is Misbehaviour.WRONG_STATE_ROOT else 0.0
    assert metric(samples, "fvmnode_consensus_mismatches_total") == expected_mismatches
    if chain is None:
        assert client_exchange_errors(samples) == {reason.value: 1.0}
    else:
        assert client_exchange_errors(samples) == {}


@pytest.mark.parametrize("misbehaviour", list(Misbehaviour), ids=lambda m: m.value)
def test_a_misbehaving_peer_is_penalised_and_sync_completes_from_the_honest_producer(
    misbehaviour: Misbehaviour, devnet: Devnet, devnet_bundle: Bundle, tmp_path: Path
) -> None:
    if not misbehaviour.forges_chain:
        trio.run(scenario, devnet, tmp_path, misbehaviour, None)
        return
    # The forged block's epoch must have come (the node refuses blocks from the future).
    first_epoch_time = devnet.genesis_timestamp + devnet.block_delay_secs
    time.sleep(max(0.0, first_epoch_time - time.time()))
    epoch = int(time.time() - devnet.genesis_timestamp) // devnet.block_delay_secs
    with forge_chain(devnet, devnet_bundle, tmp_path / "forged", misbehaviour, epoch) as chain:
        trio.run(scenario, devnet, tmp_path, misbehaviour, chain)


async def _a_peer_sending_garbage_is_counted_by_penalty_reason_on_every_path(
    devnet: Devnet, tmp_path: Path
) -> None:
    async with FilecoinNode(follower_settings(devnet, tmp_path / "node"), progress=quiet()) as node:
        genesis = node.genesis
        # A head no heavier than the node's: the syncer never asks for it.
        hello = HelloMessage(genesis.cids, 0, node.pipeline.weight(genesis), devnet.genesis_cid)
        misbehaviour = Misbehaviour.MALFORMED_CBOR
        async with running_misbehaving_peer(
            tmp_path / "bad", misbehaviour, hello, head=genesis
        ) as bad:
            await node.host.connect(bad.address)
            await wait_until("the connection", lambda: node.peers.peer(bad.peer_id) is not None)
            # A gossiped block whose message the node lacks: asked of its forwarder, which
            # answers garbage.
            sender = devnet.accounts[0].address
            unknown = Message(to=sender, from_=sender, sequence=7, value=1, gas_limit=1)
            header = replace(genesis.blocks[0], height=1)
            block = BlockMsg(header, (unknown.cid(),), ())
            assert await node._validate_block(bad.peer_id, block.encode()) is Verdict.IGNORE
            assert [request.head for _, request in bad.requests] == [(header.cid(),)]
            # Then a request the node's server cannot decode.
            with pytest.raises(PeerExchangeError):
                await bad.send_request(node.host.peer_id, MALFORMED_REQUEST, timeout=WAIT_TIMEOUT)
            # Two malformed answers cost 2 x 50 points: banned and disconnected.
            await wait_until(
                "the disconnection", lambda: bad.peer_id not in node.host.connected_peers()
            )
            assert node.peers.is_banned(bad.peer_id)
            samples = await trio.to_thread.run_sync(scrape, node.metrics_url or "")

    reason = PenaltyReason.MALFORMED_CBOR.value
    assert client_exchange_errors(samples) == {reason: 1.0}
    errors = "fvmnode_chain_exchange_errors_total"
    assert metric(samples, errors, direction="server", reason=reason) == 1
    assert penalty_counts(samples) == {reason: 2.0}
    rejected = "fvmnode_gossip_messages_rejected_total"
    topic = node.blocks_topic
    assert metric(samples, rejected, topic=topic, reason="messages_unavailable") == 1


def test_a_peer_sending_garbage_is_counted_by_penalty_reason_on_every_path(
    devnet: Devnet, tmp_path: Path
) -> None:
    trio.run(_a_peer_sending_garbage_is_counted_by_penalty_reason_on_every_path, devnet, tmp_path)
