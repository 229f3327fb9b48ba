"""The tipset pipeline on a real devnet genesis (v10 bundle, real FVM, real signatures).

A producer node makes a short chain (with a transfer and a null round); other nodes, each with
its own LMDB store, are fed those blocks or tampered copies: a wrong parent state or receipts
root signed by the worker is a recorded consensus mismatch that leaves the head alone, an
unsigned one is refused without a record, a lighter fork is stored without becoming the head,
a crash in the middle of accepting leaves a consistent store after reopening, and actors' beacon
randomness comes from the mock beacon entries the blocks carry.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from devnet_chain import DevnetKeys, DevnetNodes, signed_transfer

from chainsync.block_validation import BlockValidationError, Reason
from chainsync.chain_externs import ChainExterns
from chainsync.chain_types import BeaconEntry, FullBlock
from chainsync.devnet_beacon import BeaconEntryError, MockBeacon
from chainsync.tipset_pipeline import (
    ConsensusMismatch,
    InvalidTipsetBatch,
    UnknownParent,
)
from fvm.bundle import Bundle
from fvm.crypto.hashes import blake2b_256
from node.devnet.genesis import DevnetGenesis
from node.devnet.keys import Key
from store.cid import CID

KEYS = DevnetKeys.labelled("pipeline")
ALICE, BOB, OWNER, WORKER = KEYS.alice, KEYS.bob, KEYS.owner, KEYS.worker


@pytest.fixture(scope="module")
def genesis(devnet_bundle: Bundle) -> DevnetGenesis:
    return KEYS.genesis(devnet_bundle)


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, devnet_bundle: Bundle, genesis: DevnetGenesis
) -> DevnetNodes:
    return DevnetNodes.in_directory(tmp_path_factory.mktemp("devnet"), KEYS, devnet_bundle, genesis)


@pytest.fixture(scope="module")
def chain(nodes: DevnetNodes, tmp_path_factory: pytest.TempPathFactory) -> list[FullBlock]:
    """Blocks at epochs 1, 2, 4 (3 is a null round), 5; a secp256k1 transfer in block 1."""
    pipeline = nodes.open(tmp_path_factory.mktemp("producer") / "chain")
    producer = nodes.producer(pipeline)
    producer.message_pool.add(signed_transfer(ALICE, BOB.address, 0), local=True)
    return [producer.produce(epoch) for epoch in (1, 2, 4, 5)]


def resigned(block: FullBlock, key: Key = WORKER, **fields: object) -> FullBlock:
    """``block`` with header fields replaced, signed again by ``key``."""
    header = replace(block.header, block_sig=None, **fields)  # type: ignore[arg-type]
    return replace(block, header=key.sign_block(header))


OTHER_ROOT = CID.hash_of(b"not the state anyone computed")


def test_worker_signed_wrong_state_root_is_a_recorded_mismatch(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    node.accept([[chain[0]]])
    head_before = node.head().key
    tampered = resigned(chain[1], parent_state_root=OTHER_ROOT)

    with pytest.raises(ConsensusMismatch) as raised:
        node.accept([[tampered]])

    error = raised.value
    assert error.block == tampered.header
    assert error.tipset.key == head_before
    assert node.head().key == head_before
    [mismatch] = node.mismatches()
    assert mismatch == error.mismatch
    assert mismatch.key == head_before.to_bytes()
    assert mismatch.height == 1
    assert mismatch.expected_state_root == OTHER_ROOT
    assert mismatch.computed_state_root == chain[1].header.parent_state_root
    assert mismatch.expected_receipts_root == mismatch.computed_receipts_root
    assert str(OTHER_ROOT) in str(error)
    # the executed parent's result was kept; the genuine block is then accepted
    assert node.chain_store.index.execution_result(head_before.to_bytes()) is not None
    [outcome] = node.accept([[chain[1]]])
    assert outcome.became_head and outcome.executed is None


def test_worker_signed_wrong_receipts_root_is_a_mismatch(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    node.accept([[chain[0]]])
    tampered = resigned(chain[1], parent_message_receipts=OTHER_ROOT)
    with pytest.raises(ConsensusMismatch) as raised:
        node.accept([[tampered]])
    assert raised.value.mismatch.expected_receipts_root == OTHER_ROOT
    assert raised.value.mismatch.computed_receipts_root == chain[1].header.parent_message_receipts
    assert node.head().height == 1


def test_wrong_state_root_not_signed_by_the_worker_is_refused_without_a_record(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    forged = resigned(chain[0], key=OWNER, parent_state_root=OTHER_ROOT)
    with pytest.raises(BlockValidationError) as raised:
        node.accept([[forged]])
    assert raised.value.reason is Reason.BLOCK_SIGNATURE
    assert node.mismatches() == []
    assert node.head().height == 0


def test_tampered_messages_signature_and_beacon_are_refused(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    genesis_key = node.head().key
    unsigned_copy = replace(chain[0], header=replace(chain[0].header, fork_signaling=1))
    with pytest.raises(BlockValidationError) as raised:
        node.accept([[unsigned_copy]])
    assert raised.value.reason is Reason.BLOCK_SIGNATURE
    without_messages = replace(chain[0], secpk_messages=())
    with pytest.raises(BlockValidationError) as raised:
        node.accept([[without_messages]])
    assert raised.value.reason is Reason.MESSAGES_ROOT
    node.accept([[chain[0]]])
    wrong_beacon = resigned(chain[1], beacon_entries=(BeaconEntry(102, bytes(32)),))
    with pytest.raises(BeaconEntryError):
        node.accept([[wrong_beacon]])
    wrong_round = resigned(chain[1], beacon_entries=(MockBeacon.entry(101),))
    with pytest.raises(BeaconEntryError):
        node.accept([[wrong_round]])
    assert node.head().key != genesis_key and node.head().height == 1
    assert node.mismatches() == []


def test_unknown_parent_and_bad_batches_are_refused(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    with pytest.raises(UnknownParent):
        node.accept([[chain[1]]])
    with pytest.raises(InvalidTipsetBatch):
        node.accept([[chain[1]], [chain[0]]])
    with pytest.raises(InvalidTipsetBatch):
        node.accept([[]])
    with pytest.raises(InvalidTipsetBatch):
        node.accept([[chain[0], chain[0]]])
    assert node.head().height == 0


def test_accepting_again_changes_nothing(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    first = node.accept([[block] for block in chain])
    again = node.accept([[block] for block in chain])
    assert [outcome.became_head for outcome in first] == [True] * 4
    assert [outcome.became_head for outcome in again] == [False] * 4
    assert all(outcome.executed is None for outcome in again)
    assert node.head().key == first[-1].tipset.key


def test_lighter_fork_is_stored_but_does_not_become_the_head(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    forker = nodes.open(tmp_path / "forker")
    forker.accept([[chain[0]]])
    fork_block = nodes.producer(forker).produce(3)
    assert fork_block.header.parents == chain[1].header.parents

    node = nodes.open(tmp_path / "node")
    node.accept([[block] for block in chain])
    [outcome] = node.accept([[fork_block]])
    assert not outcome.became_head
    assert outcome.weight == 3 * 256 < node.weight(node.head())
    assert node.head().height == 5
    stored = node.chain_store.index.tipset_meta(outcome.tipset.key.to_bytes())
    assert stored is not None and stored.weight == 3 * 256


def test_crash_in_the_middle_of_accept_leaves_a_consistent_store(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node"
    node = nodes.open(path)
    node.accept([[chain[0]]])

    def crash(*args: object) -> None:
        raise RuntimeError("killed before the head moved")

    monkeypatch.setattr(node.chain_store, "advance_head", crash)
    with pytest.raises(RuntimeError):
        node.accept([[chain[1]]])
    node.chain_store.blockstore.close()

    reopened = nodes.open(path)
    assert reopened.head().key.cids == (chain[0].cid(),)
    # block 2 is stored, but block 1 has no execution result: the transaction never ran
    assert reopened.chain_store.blockstore.has(chain[1].cid())
    assert reopened.chain_store.index.execution_result(reopened.head().key.to_bytes()) is None
    outcomes = reopened.accept([[block] for block in chain[1:]])
    assert [outcome.became_head for outcome in outcomes] == [True, True, True]
    assert outcomes[0].executed is not None and outcomes[0].executed.height == 1
    assert reopened.head().key.cids == (chain[-1].cid(),)
    reopened.chain_store.blockstore.close()

    executions: list[int] = []
    again = nodes.open(path)
    again.on_execute = lambda tipset, result, seconds: executions.append(tipset.height)
    assert again.head().key.cids == (chain[-1].cid(),)
    assert again.execute_head().state_root != chain[-1].header.parent_state_root
    assert executions == [5]
    assert again.execute_head() == again.chain_store.index.execution_result(
        again.head().key.to_bytes()
    )
    assert executions == [5]


def test_actors_beacon_randomness_comes_from_the_blocks_entries(
    nodes: DevnetNodes, chain: list[FullBlock], tmp_path: Path
) -> None:
    node = nodes.open(tmp_path / "node")
    node.accept([[block] for block in chain])
    head = node.head()
    externs = ChainExterns(
        node.chain_store, head, nodes.preset.network_version_at, beacon_rounds=MockBeacon()
    )
    for epoch in (1, 2, 3, 4, 5):
        expected = blake2b_256(blake2b_256((epoch + 100).to_bytes(8, "big")))
        assert externs.get_beacon_randomness(epoch) == expected
    # the block after the null round carries the entries of epochs 3 and 4
    assert [entry.round for entry in chain[2].header.beacon_entries] == [103, 104]


def test_mock_beacon_entries_are_lotus_mock_entries_for_each_epoch_since_the_parent() -> None:
    beacon = MockBeacon()
    genesis_entry = BeaconEntry(0, bytes(32))
    assert beacon.entry(101) == BeaconEntry(101, blake2b_256(bytes.fromhex("0000000000000065")))
    assert beacon.entries_for_block(18, 1, 0, genesis_entry) == (beacon.entry(101),)
    after_nulls = beacon.entries_for_block(18, 7, 4, beacon.entry(104))
    assert after_nulls == (beacon.entry(105), beacon.entry(106), beacon.entry(107))
    assert beacon.entries_for_block(18, 7, 6, beacon.entry(107)) == ()
    with pytest.raises(ValueError):
        beacon.entries_for_block(18, 4, 4, genesis_entry)


def test_mock_beacon_check_follows_lotus_validate_block_values(chain: list[FullBlock]) -> None:
    beacon = MockBeacon()
    second = chain[1].header
    beacon.check_block_entries(18, second, beacon.entry(101))
    # right after genesis (round 0) any entries pass; none at all never does
    beacon.check_block_entries(
        18, replace(second, beacon_entries=(BeaconEntry(7, b"x"),)), BeaconEntry(0, bytes(32))
    )
    with pytest.raises(BeaconEntryError):
        beacon.check_block_entries(18, replace(second, beacon_entries=()), beacon.entry(101))
    # a block whose newest round was already carried must carry nothing
    with pytest.raises(BeaconEntryError):
        beacon.check_block_entries(18, second, beacon.entry(102))
    beacon.check_block_entries(18, replace(second, beacon_entries=()), beacon.entry(102))
