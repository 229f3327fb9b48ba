"""The devnet producer on a real devnet genesis (v10 bundle, real FVM, real signatures).

Blocks carrying secp256k1 and BLS transfers from genesis-funded keys, with a null round, are
produced on one LMDB chain store; a second store fed the same blocks through its own pipeline
reaches the same head with the same state and receipts roots at every tipset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from devnet_chain import BALANCE, GENESIS_TIME, DevnetKeys, DevnetNodes
from devnet_chain import signed_transfer as transfer

from chainsync.chain_types import FullBlock, TipSet
from chainsync.devnet_beacon import MockBeacon
from chainsync.messages_root import load_receipts
from chainsync.tipset_pipeline import TipsetPipeline
from fvm.address import Address
from fvm.bundle import Bundle
from fvm.message import SignedMessage
from fvm.receipt import ExitCode
from fvm.signature import SignatureType
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION
from node.devnet.genesis import DevnetGenesis
from node.devnet.producer import DevnetProducer, ProducerError, head_state_view
from node.message_pool import MessagePool
from store.chain_index import ExecutionResult

KEYS = DevnetKeys.labelled("producer")
ALICE, BOB, OWNER, WORKER = KEYS.alice, KEYS.bob, KEYS.owner, KEYS.worker


@pytest.fixture(scope="module")
def genesis(devnet_bundle: Bundle) -> DevnetGenesis:
    return KEYS.genesis(devnet_bundle)


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, devnet_bundle: Bundle, genesis: DevnetGenesis
) -> DevnetNodes:
    return DevnetNodes.in_directory(tmp_path_factory.mktemp("devnet"), KEYS, devnet_bundle, genesis)


def balance(pipeline: TipsetPipeline, address: Address) -> int:
    tree = StateTree(pipeline.chain_store.blockstore, pipeline.execute_head().state_root)
    actor = tree.get_actor(address)
    assert actor is not None
    return actor.balance


def chain_of(pipeline: TipsetPipeline) -> list[TipSet]:
    """The head's chain from genesis."""
    store = pipeline.chain_store
    tipsets = [pipeline.head()]
    while tipsets[-1].height > 0:
        tipsets.append(store.get_tipset(tipsets[-1].parents))
    return tipsets[::-1]


@pytest.fixture(scope="module")
def produced(
    tmp_path_factory: pytest.TempPathFactory, nodes: DevnetNodes
) -> tuple[TipsetPipeline, list[FullBlock], list[SignedMessage]]:
    """Epochs 1, 2, 3, 5, 6, 7 (4 is a null round) with four transfers."""
    pipeline = nodes.open(tmp_path_factory.mktemp("producer") / "chain")
    producer = nodes.producer(pipeline)
    pool = producer.message_pool
    first = [
        transfer(ALICE, BOB.address, 0),
        transfer(BOB, ALICE.address, 0, 2 * FILECOIN_PRECISION),
    ]
    later = [
        transfer(ALICE, BOB.address, 1, 3 * FILECOIN_PRECISION),
        transfer(BOB, ALICE.address, 1),
    ]
    for signed in first:
        pool.add(signed, local=True)
    blocks = [producer.produce(), producer.produce()]
    for signed in later:
        pool.add(signed, local=True)
    blocks.append(producer.produce())
    blocks.extend(producer.produce(epoch) for epoch in (5, 6, 7))
    return pipeline, blocks, first + later


def test_blocks_carry_the_pool_messages_bls_unsigned_and_aggregated(
    produced: tuple[TipsetPipeline, list[FullBlock], list[SignedMessage]],
) -> None:
    pipeline, blocks, sent = produced
    assert [block.header.height for block in blocks] == [1, 2, 3, 5, 6, 7]
    first, _, third = blocks[0], blocks[1], blocks[2]
    assert [signed.cid() for signed in first.secpk_messages] == [sent[0].cid()]
    assert [message.cid() for message in first.bls_messages] == [sent[1].message.cid()]
    assert first.header.bls_aggregate is not None
    assert first.header.bls_aggregate.sig_type is SignatureType.BLS
    assert first.header.bls_aggregate.data == sent[1].signature.data
    assert [signed.cid() for signed in third.secpk_messages] == [sent[2].cid()]
    assert [message.cid() for message in third.bls_messages] == [sent[3].message.cid()]
    assert all(not block.bls_messages and not block.secpk_messages for block in blocks[3:])
    assert pipeline.chain_store.get_block_messages(first.header) == (
        [sent[1].message],
        [sent[0]],
    )


def test_headers_follow_the_devnet_rules(
    produced: tuple[TipsetPipeline, list[FullBlock], list[SignedMessage]],
    genesis: DevnetGenesis,
    nodes: DevnetNodes,
) -> None:
    pipeline, blocks, _ = produced
    beacon = MockBeacon()
    for block in blocks:
        header = block.header
        assert header.miner == genesis.miner
        assert header.timestamp == GENESIS_TIME + header.height * nodes.preset.block_delay_secs
        assert header.election_proof is not None and header.election_proof.win_count == 1
        assert header.fork_signaling == 0
    # weight: 256 per block, genesis included
    assert [block.header.parent_weight for block in blocks] == [256, 512, 768, 1024, 1280, 1536]
    assert pipeline.weight(pipeline.head()) == 7 * 256
    # the block after the null round carries the beacon entries of epochs 4 and 5
    assert blocks[3].header.beacon_entries == (beacon.entry(104), beacon.entry(105))
    assert blocks[1].header.beacon_entries == (beacon.entry(102),)
    # an empty genesis lowers the base fee by the most a tipset can: 1/8
    assert genesis.header.parent_base_fee == 100_000_000
    assert blocks[0].header.parent_base_fee == 87_500_000


def test_transfers_are_applied_with_success_receipts(
    produced: tuple[TipsetPipeline, list[FullBlock], list[SignedMessage]],
) -> None:
    pipeline, blocks, _ = produced
    store = pipeline.chain_store.blockstore
    receipts_after_1 = load_receipts(store, blocks[1].header.parent_message_receipts)
    receipts_after_3 = load_receipts(store, blocks[3].header.parent_message_receipts)
    assert [r.exit_code for r in receipts_after_1] == [ExitCode.OK, ExitCode.OK]
    assert [r.exit_code for r in receipts_after_3] == [ExitCode.OK, ExitCode.OK]
    assert all(receipt.gas_used > 0 for receipt in receipts_after_1 + receipts_after_3)
    alice = balance(pipeline, ALICE.address)
    bob = balance(pipeline, BOB.address)
    # Alice sent 1 + 3 FIL and received 2 + 1; Bob the reverse; both paid gas.
    gas_bound = FILECOIN_PRECISION // 100
    assert BALANCE - FILECOIN_PRECISION - gas_bound < alice < BALANCE - FILECOIN_PRECISION
    assert BALANCE + FILECOIN_PRECISION - gas_bound < bob < BALANCE + FILECOIN_PRECISION


def test_second_store_replays_to_the_same_roots_at_every_epoch(
    produced: tuple[TipsetPipeline, list[FullBlock], list[SignedMessage]],
    tmp_path: Path,
    nodes: DevnetNodes,
) -> None:
    producer_pipeline, blocks, _ = produced
    executed: list[int] = []
    syncer = nodes.open(tmp_path / "syncer")
    syncer.on_execute = lambda tipset, result, seconds: executed.append(tipset.height)
    outcomes = syncer.accept([[block] for block in blocks])

    assert [outcome.became_head for outcome in outcomes] == [True] * 6
    assert [o.executed.height if o.executed else None for o in outcomes] == [
        None,
        1,
        2,
        3,
        5,
        6,
    ]
    assert [outcome.messages_applied for outcome in outcomes] == [0, 2, 0, 2, 0, 0]
    assert outcomes[1].gas_used > 0 and outcomes[1].apply_seconds > 0
    assert executed == [1, 2, 3, 5, 6]
    assert syncer.head().key == producer_pipeline.head().key
    assert syncer.execute_head() == producer_pipeline.execute_head()
    producer_chain = chain_of(producer_pipeline)
    assert [tipset.height for tipset in producer_chain] == [0, 1, 2, 3, 5, 6, 7]
    assert chain_of(syncer) == producer_chain
    for tipset in producer_chain:
        key = tipset.key.to_bytes()
        mine = producer_pipeline.chain_store.index.execution_result(key)
        theirs = syncer.chain_store.index.execution_result(key)
        assert isinstance(mine, ExecutionResult)
        assert mine == theirs
    assert syncer.chain_store.tipset_at_height(4).height == 5


def test_producing_at_or_below_the_head_is_refused(
    produced: tuple[TipsetPipeline, list[FullBlock], list[SignedMessage]],
    genesis: DevnetGenesis,
) -> None:
    pipeline, _, _ = produced
    producer = DevnetProducer(
        pipeline, MessagePool(head_state_view(pipeline)), genesis.miner, WORKER
    )
    with pytest.raises(ProducerError):
        producer.produce(pipeline.head().height)
    with pytest.raises(ProducerError):
        DevnetProducer(pipeline, MessagePool(head_state_view(pipeline)), genesis.miner, OWNER)
