"""Whole nodes over real TCP on loopback: a devnet producer and followers in one trio run.

The producer makes a block every second; a follower started with it keeps up through hello and
gossip, one started late catches up through chain exchange. Both execute every tipset
themselves, so equal execution results at every height mean equal state. The metrics endpoint
is scraped over HTTP and parsed as Prometheus text exposition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from node_harness import (
    BLOCK_TIME,
    follower_settings,
    one_second_devnet,
    producer_settings,
    quiet,
    results,
    scrape,
    wait_until,
)

from fvm.token import FILECOIN_PRECISION
from node.devnet.layout import Devnet, init_devnet
from node.devnet.load_generator import LoadPlan, run_load
from node.devnet.load_messages import MIN_GAS_PREMIUM, estimate_fee_cap, transfer
from node.filecoin_node import FilecoinNode
from store.cid import CID


@pytest.fixture
def devnet(tmp_path: Path, actors_dir: Path) -> Devnet:
    return one_second_devnet(tmp_path, actors_dir, seed=b"it")


async def wait_until_synced(follower: FilecoinNode, producer: FilecoinNode, height: int) -> None:
    await wait_until(
        f"the follower on the producer's head at {height} or above",
        lambda: follower.head().height >= height and follower.head().key == producer.head().key,
        poll=0.1,
    )


def included_secpk(node: FilecoinNode) -> set[CID]:
    store = node.chain_store
    head = node.head()
    return {
        signed.cid()
        for height in range(1, head.height + 1)
        for header in store.tipset_at_height(height, head).blocks
        for signed in store.get_block_messages(header)[1]
    }


async def _follower_keeps_up_with_the_producer_and_computes_the_same_state(
    devnet: Devnet, tmp_path: Path
) -> None:
    async with FilecoinNode(
        producer_settings(devnet), producer=devnet, progress=quiet()
    ) as producer:
        address = producer.listen_addrs()[0]
        settings = follower_settings(devnet, tmp_path / "follower", address)
        async with FilecoinNode(settings, progress=quiet()) as follower:
            assert follower.network_name == "devnet"
            # A signed transfer gossiped by the follower is included by the producer.
            sender = devnet.accounts[0]
            recipient = devnet.accounts[1].address
            message = replace(
                transfer(sender=sender.address, nonce=0, to=recipient, value=FILECOIN_PRECISION),
                gas_limit=10_000_000,
                gas_fee_cap=estimate_fee_cap(producer.head().parent_base_fee, MIN_GAS_PREMIUM),
                gas_premium=MIN_GAS_PREMIUM,
            )
            signed = sender.key.sign_message(message)
            await wait_until(
                "a peer on the messages topic",
                lambda: bool(follower.pubsub.topic_peers(follower.messages_topic)),
                poll=0.1,
            )
            await follower.pubsub.publish(follower.messages_topic, signed.encode())

            await wait_until(
                "the transfer on chain", lambda: signed.cid() in included_secpk(producer), poll=0.2
            )
            target = max(5, producer.head().height + 1)
            await wait_until_synced(follower, producer, target)

            height = follower.head().height - 1
            mine = dict(results(follower, height))
            theirs = dict(results(producer, height))
            assert all(result is not None for result in mine.values())
            assert {h: r.state_root for h, r in mine.items() if r} == {
                h: r.state_root for h, r in theirs.items() if r
            }
            assert {h: r.receipts_root for h, r in mine.items() if r} == {
                h: r.receipts_root for h, r in theirs.items() if r
            }
            assert sum(r.messages_applied for r in mine.values() if r) == 1

            assert follower.metrics_url is not None
            follower.metrics.set_head(follower.head().height)
            samples = await trio.to_thread.run_sync(scrape, follower.metrics_url)
            assert samples["fvmnode_head_epoch"] >= target
            assert 0 <= samples["fvmnode_epoch_lag"] <= 2
            assert samples["fvmnode_peers_connected"] == 1
            assert samples["fvmnode_sync_state{fvmnode_sync_state=following}"] == 1
            blocks_topic = f"/fil/blocks/{follower.network_name}"
            assert samples[f"fvmnode_gossip_messages_received_total{{topic={blocks_topic}}}"] >= 1
            assert samples["fvmnode_store_size_bytes"] > 0


def test_follower_keeps_up_with_the_producer_and_computes_the_same_state(
    devnet: Devnet, tmp_path: Path
) -> None:
    trio.run(_follower_keeps_up_with_the_producer_and_computes_the_same_state, devnet, tmp_path)


async def _a_node_started_late_catches_up_through_chain_exchange(
    devnet: Devnet, tmp_path: Path
) -> None:
    async with FilecoinNode(
        producer_settings(devnet), producer=devnet, progress=quiet()
    ) as producer:
        await wait_until("the producer at height 6", lambda: producer.head().height >= 6, poll=0.1)
        settings = follower_settings(devnet, tmp_path / "late", producer.listen_addrs()[0])
        async with FilecoinNode(settings, progress=quiet()) as late:
            assert late.head().height == 0
            await wait_until_synced(late, producer, 7)
            height = late.head().height - 1
            assert dict(results(late, height)) == dict(results(producer, height))

        assert producer.metrics_url is not None
        samples = await trio.to_thread.run_sync(scrape, producer.metrics_url)
        assert samples["fvmnode_chain_exchange_requests_total{direction=server}"] >= 1


def test_a_node_started_late_catches_up_through_chain_exchange(
    devnet: Devnet, tmp_path: Path
) -> None:
    trio.run(_a_node_started_late_catches_up_through_chain_exchange, devnet, tmp_path)


async def _a_node_of_another_devnet_is_dropped_after_hello(
    devnet: Devnet, tmp_path: Path, actors_dir: Path
) -> None:
    other = init_devnet(
        tmp_path / "other",
        accounts=1,
        block_delay_secs=BLOCK_TIME,
        seed=b"x",
        actors_dir=actors_dir,
    )
    async with FilecoinNode(
        producer_settings(devnet), producer=devnet, progress=quiet()
    ) as producer:
        settings = follower_settings(other, tmp_path / "stranger", producer.listen_addrs()[0])
        async with FilecoinNode(settings, progress=quiet()) as stranger:
            await wait_until(
                "a hello",
                lambda: producer.hello.hellos_received > 0 or stranger.hello.hellos_received > 0,
                poll=0.1,
            )
            await wait_until(
                "the disconnection", lambda: not stranger.host.connected_peers(), poll=0.1
            )
            await trio.sleep(2 * BLOCK_TIME)
            assert stranger.head().height == 0


def test_a_node_of_another_devnet_is_dropped_after_hello(
    devnet: Devnet, tmp_path: Path, actors_dir: Path
) -> None:
    trio.run(_a_node_of_another_devnet_is_dropped_after_hello, devnet, tmp_path, actors_dir)


async def _load_generator_gets_every_kind_of_message_on_chain(devnet: Devnet) -> None:
    async with FilecoinNode(
        producer_settings(devnet), producer=devnet, progress=quiet()
    ) as producer:
        summary = await run_load(devnet, producer.listen_addrs()[0], LoadPlan(count=36, rate=6.0))
        evm_calls = summary.succeeded["evm_increment"]
    assert summary.refused == Counter()
    assert summary.failed == Counter()
    assert summary.succeeded == summary.submitted
    assert set(summary.submitted) == {
        "transfer_secp256k1",
        "transfer_bls",
        "multisig_create",
        "multisig_propose",
        "multisig_approve",
        "evm_deploy",
        "evm_increment",
    }
    assert sum(summary.submitted.values()) == 36
    assert evm_calls >= 1
    assert "submitted 36, on chain 36 (0 failed), refused 0" in summary.describe()


def test_load_generator_gets_every_kind_of_message_on_chain(devnet: Devnet) -> None:
    trio.run(_load_generator_gets_every_kind_of_message_on_chain, devnet)
