"""Replay of a real devnet chain (v10 bundle, real FVM, signed blocks) stored in LMDB.

The chain is produced in the test by the devnet producer (transfers from secp256k1 and BLS
accounts, a null round), the store closed, and replayed read-only from its data directory:
every epoch agrees with its child; any number of worker processes gives the same results; a
forged parent state makes one epoch disagree, with a report naming the actor and the field.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from devnet_chain import DevnetKeys, DevnetNodes, forge_parent_state
from devnet_chain import signed_transfer as transfer

from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.replay import (
    EpochStatus,
    ReplayError,
    ReplaySummary,
    chain_dir_of,
    replay_range,
)
from fvm.actor_schemas import decode_state
from fvm.address import REWARD_ACTOR_ADDR
from fvm.bundle import Bundle
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION, encode_bigint
from metrics.node_metrics import NodeMetrics
from node.devnet.genesis import (
    DevnetGenesis,
)
from node.replay_command import replay_command
from store import dag_cbor
from store.blockstore import Blockstore, put
from store.lmdb_blockstore import LmdbBlockstore

KEYS = DevnetKeys.labelled("replay")
ALICE, BOB = KEYS.alice, KEYS.bob
NETWORK = KEYS.network
# Heights produced: 1-3, 5-9 (4 is a null round); transfers land in 1, 3, 6, 8.
HEIGHTS = [0, 1, 2, 3, 5, 6, 7, 8, 9]
HEAD = 9
FORGED_EPOCH = 6
FORGED_DELTA = 12_345


@pytest.fixture(scope="module")
def genesis(devnet_bundle: Bundle) -> DevnetGenesis:
    return KEYS.genesis(devnet_bundle)


@pytest.fixture(scope="module")
def node_dir(
    tmp_path_factory: pytest.TempPathFactory, devnet_bundle: Bundle, genesis: DevnetGenesis
) -> Path:
    """A node data directory (``chain/`` LMDB store) holding the produced chain, closed."""
    root = tmp_path_factory.mktemp("replay-node")
    nodes = DevnetNodes.in_directory(root, KEYS, devnet_bundle, genesis)
    pipeline = nodes.open(root / "chain")
    producer = nodes.producer(pipeline)
    pool = producer.message_pool
    nonces = {ALICE.address: 0, BOB.address: 0}
    for epoch in HEIGHTS[1:]:
        if epoch in (1, 3, 6, 8):
            for sender, receiver in ((ALICE, BOB), (BOB, ALICE)):
                nonce = nonces[sender.address]
                nonces[sender.address] += 1
                pool.add(
                    transfer(sender, receiver.address, nonce, (epoch + 1) * FILECOIN_PRECISION),
                    local=True,
                )
        producer.produce(epoch)
    assert pipeline.head().height == HEAD
    pipeline.chain_store.blockstore.close()
    return root


def chain(store: ChainStore) -> list[TipSet]:
    head = store.heaviest()
    assert head is not None
    tipsets = [head]
    while tipsets[-1].height > 0:
        tipsets.append(store.get_tipset(tipsets[-1].parents))
    return tipsets[::-1]


@pytest.fixture(scope="module")
def full_replay(node_dir: Path, actors_dir: Path) -> ReplaySummary:
    return replay_range(node_dir, 0, HEAD, actors_dir=actors_dir)


def test_every_stored_epoch_agrees_with_its_child(
    full_replay: ReplaySummary, node_dir: Path
) -> None:
    results = full_replay.results
    assert [result.epoch for result in results] == HEIGHTS
    assert [result.status for result in results] == [EpochStatus.OK] * (len(HEIGHTS) - 1) + [
        EpochStatus.UNCHECKED
    ]
    assert full_replay.ok and full_replay.mismatches == 0
    store = ChainStore(LmdbBlockstore(node_dir / "chain", readonly=True))
    try:
        tipsets = chain(store)
        for result, tipset, child in zip(results, tipsets, tipsets[1:], strict=False):
            assert result.tipset_key == tipset.key
            assert result.computed_state_root == child.parent_state
            assert result.computed_receipts_root == child.parent_message_receipts
            # what the node itself recorded when it accepted the child
            stored = store.index.execution_result(tipset.key.to_bytes())
            assert stored is not None
            assert (stored.gas_used, stored.messages_applied) == (
                result.gas_used,
                result.messages,
            )
        head_result = results[-1]
        assert head_result.expected_state_root is None
        assert head_result.computed_state_root is not None
    finally:
        store.blockstore.close()
    by_epoch = {result.epoch: result for result in results}
    assert [by_epoch[epoch].messages for epoch in HEIGHTS] == [0, 2, 0, 2, 0, 2, 0, 2, 0]
    assert all(by_epoch[epoch].gas_used > 0 for epoch in (1, 3, 6, 8))
    assert full_replay.gas_used == sum(by_epoch[epoch].gas_used for epoch in (1, 3, 6, 8))


def test_replay_writes_nothing_to_the_store(full_replay: ReplaySummary, node_dir: Path) -> None:
    with LmdbBlockstore(node_dir / "chain", readonly=True) as blockstore:
        before = blockstore.stats().blocks
        store = ChainStore(blockstore)
        head = store.heaviest()
        assert head is not None and head.height == HEAD
        # the head's own execution was never stored by the producer and replay did not store it
        assert store.index.execution_result(head.key.to_bytes()) is None
    replay_range(node_dir, HEAD - 1, HEAD)
    with LmdbBlockstore(node_dir / "chain", readonly=True) as blockstore:
        assert blockstore.stats().blocks == before


def test_two_workers_give_the_same_results_as_one(
    full_replay: ReplaySummary, node_dir: Path, actors_dir: Path
) -> None:
    parallel = replay_range(node_dir, 0, HEAD, workers=2, actors_dir=actors_dir)
    assert parallel.workers == 2
    assert parallel.results == full_replay.results
    partial = replay_range(node_dir, 2, 7, workers=3, actors_dir=actors_dir)
    assert [result.epoch for result in partial.results] == [2, 3, 5, 6, 7]
    assert partial.results == full_replay.results[2:7]
    null_round = replay_range(node_dir, 4, 4, workers=2)
    assert null_round.results == () and null_round.ok


def test_metrics_count_every_replayed_epoch(node_dir: Path, full_replay: ReplaySummary) -> None:
    metrics = NodeMetrics(version="test", network="devnet")
    seen: list[int] = []
    summary = replay_range(
        node_dir, 5, 8, metrics=metrics, on_epoch=lambda result: seen.append(result.epoch)
    )
    assert seen == [5, 6, 7, 8]
    assert metrics.replay_epochs._value.get() == 4
    assert metrics.replay_gas_used._value.get() == summary.gas_used
    assert metrics.replay_mismatches._value.get() == 0


def raise_total_storage_power_reward(chain_dir: Path, epoch: int) -> None:
    """Forge the parent state of the tipset at ``epoch``: the reward actor's
    ``total_storage_power_reward`` raised by ``FORGED_DELTA``."""

    def change(tree: StateTree, blockstore: Blockstore) -> None:
        reward = tree.get_actor(REWARD_ACTOR_ADDR)
        assert reward is not None
        state = dag_cbor.decode(blockstore.get(reward.state) or b"")
        total = decode_state(10, "reward", state)["total_storage_power_reward"]
        state[8] = encode_bigint(total + FORGED_DELTA)
        head = put(blockstore, dag_cbor.encode(state))
        tree.mutate_actor(REWARD_ACTOR_ADDR, lambda actor: replace(actor, state=head))

    forge_parent_state(chain_dir, epoch, change)


@pytest.fixture(scope="module")
def forged_dir(tmp_path_factory: pytest.TempPathFactory, node_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("forged") / "node"
    shutil.copytree(node_dir, root)
    raise_total_storage_power_reward(chain_dir_of(root), FORGED_EPOCH)
    return root


def test_a_forged_parent_state_is_one_mismatch_with_a_report(
    forged_dir: Path, full_replay: ReplaySummary, tmp_path: Path, actors_dir: Path
) -> None:
    reports = tmp_path / "reports"
    summary = replay_range(forged_dir, 0, HEAD, report_dir=reports, actors_dir=actors_dir)
    assert not summary.ok
    assert summary.mismatches == 1
    (bad,) = summary.failures
    assert bad.epoch == FORGED_EPOCH and bad.status is EpochStatus.MISMATCH
    honest = {result.epoch: result for result in full_replay.results}[FORGED_EPOCH]
    assert bad.expected_state_root == honest.computed_state_root
    assert bad.computed_state_root != bad.expected_state_root
    # the transfers' receipts do not depend on the reward actor
    assert bad.computed_receipts_root == bad.expected_receipts_root
    assert bad.report == reports / f"epoch-{FORGED_EPOCH}"

    report = json.loads((bad.report / "report.json").read_text())
    assert report["epoch"]["epoch"] == FORGED_EPOCH
    actors = report["state_diff"]["actors"]
    assert [actor["address"] for actor in actors] == ["f02"]
    (reward,) = actors
    assert reward["actor_type"] == "reward"
    assert reward["changed"] == ["head"]
    (field,) = reward["fields"]
    assert field["path"] == "total_storage_power_reward"
    assert field["computed"] - field["expected"] == FORGED_DELTA
    assert report["receipts_diff"] == []
    assert [gas["exit_code"] for gas in report["message_gas"]] == [0, 0]
    assert all(gas["gas_used"] > 0 for gas in report["message_gas"])
    summary_text = (bad.report / "summary.txt").read_text()
    assert f"epoch {FORGED_EPOCH} MISMATCH state" in summary_text
    assert "f02 (reward): head" in summary_text
    assert "total_storage_power_reward" in summary_text
    listed = json.loads((reports / "replay.json").read_text())
    assert [entry["status"] for entry in listed["results"]].count("MISMATCH") == 1


def test_the_forged_epoch_is_found_by_either_worker_split(
    forged_dir: Path, tmp_path: Path, actors_dir: Path
) -> None:
    one = replay_range(forged_dir, 3, 8, actors_dir=actors_dir)
    two = replay_range(
        forged_dir, 3, 8, workers=2, report_dir=tmp_path / "r", actors_dir=actors_dir
    )
    assert [r.epoch for r in two.failures] == [FORGED_EPOCH]
    assert [(r.epoch, r.status, r.computed_state_root) for r in two.results] == [
        (r.epoch, r.status, r.computed_state_root) for r in one.results
    ]
    assert (tmp_path / "r" / f"epoch-{FORGED_EPOCH}" / "report.json").is_file()


def test_bad_ranges_and_missing_stores_are_refused(node_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no chain store"):
        replay_range(tmp_path, 0, 1)
    with pytest.raises(ReplayError, match="above the head"):
        replay_range(node_dir, HEAD + 1, HEAD + 5)
    with pytest.raises(ReplayError, match="bad range"):
        replay_range(node_dir, 5, 2)
    with pytest.raises(ReplayError, match="workers"):
        replay_range(node_dir, 0, 1, workers=0)
    with pytest.raises(ReplayError, match="supports devnet only"):
        replay_range(node_dir, 0, 1, network="mainnet")


# -- the command ------------------------------------------------------------------------------


def test_command_prints_a_line_per_epoch_and_a_summary(node_dir: Path, actors_dir: Path) -> None:
    result = CliRunner().invoke(
        replay_command,
        ["--data", str(node_dir), "--from", "1", "--to", "5", "--actors", str(actors_dir)],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:4] == ["epoch 1 OK", "epoch 2 OK", "epoch 3 OK", "epoch 5 OK"]
    assert lines[4].startswith("replayed 4 epochs with 1 worker(s): 0 mismatches, 0 errors, gas ")
    assert "gas/s" in lines[4] and lines[4].endswith(" s")
    assert len(lines) == 5


def test_command_exits_non_zero_on_a_mismatch(
    forged_dir: Path, tmp_path: Path, actors_dir: Path
) -> None:
    result = CliRunner().invoke(
        replay_command,
        [
            "--data",
            str(forged_dir),
            "--from",
            "5",
            "--to",
            "7",
            "--workers",
            "2",
            "--report",
            str(tmp_path / "rep"),
            "--actors",
            str(actors_dir),
        ],
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "epoch 5 OK"
    assert lines[1].startswith(f"epoch {FORGED_EPOCH} MISMATCH state ")
    assert " != " in lines[1]
    assert lines[2] == f"  report: {tmp_path / 'rep' / f'epoch-{FORGED_EPOCH}'}"
    assert lines[3] == "epoch 7 OK"
    assert "1 mismatches" in lines[4]


def test_command_serves_metrics_when_asked(node_dir: Path) -> None:
    result = CliRunner().invoke(
        replay_command,
        ["--data", str(node_dir), "--from", "2", "--to", "2", "--metrics", "127.0.0.1:0"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("metrics on http://127.0.0.1:") and lines[0].endswith("/metrics")
    assert lines[1] == "epoch 2 OK"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "0", "--to", "1"], "Missing option '--data'"),
        (["--data", "{missing}", "--from", "0", "--to", "1"], "does not exist"),
        (["--data", "{node}", "--from", "3", "--to", "1"], "below --from"),
        (["--data", "{node}", "--from", "x", "--to", "1"], "'x' is not a valid integer"),
        (["--data", "{node}", "--from", "0", "--to", "1", "--workers", "0"], "--workers"),
        (["--data", "{node}", "--from", "0", "--to", "1", "--network", "mars"], "mars"),
        (["--data", "{node}", "--from", "0", "--to", "1", "--metrics", "nope"], "HOST:PORT"),
        (["--data", "{empty}", "--from", "0", "--to", "1"], "no chain store"),
    ],
)
def test_command_bad_arguments_are_one_line_with_status_2(
    node_dir: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    paths = {"node": str(node_dir), "missing": str(tmp_path / "nope"), "empty": str(tmp_path)}
    result = CliRunner().invoke(replay_command, [arg.format(**paths) for arg in arguments])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


def test_an_exported_chain_imported_into_an_empty_directory_replays_and_answers_the_same(
    node_dir: Path, actors_dir: Path, tmp_path: Path
) -> None:
    """Issue 5's round trip: export (state for every epoch), import into an empty data
    directory, replay every epoch there; the imported store answers as the original."""
    from config.settings import CHAIN_DIR
    from node.snapshot_export import export_snapshot
    from node.snapshot_import import import_snapshot

    snapshot = tmp_path / "devnet.car.zst"
    with LmdbBlockstore(node_dir / CHAIN_DIR) as original_blocks:
        original = ChainStore(original_blocks)
        export_snapshot(original, snapshot, None, HEAD + 1)
        original_chain = chain(original)
        original_messages = [
            original.get_block_messages(header)
            for tipset in original_chain
            for header in tipset.blocks
        ]
    imported_dir = tmp_path / "imported"
    with LmdbBlockstore(imported_dir / CHAIN_DIR, map_size=1 << 30) as imported_blocks:
        imported = ChainStore(imported_blocks)
        result = import_snapshot(snapshot, imported)
        assert result.head.height == HEAD
        assert chain(imported) == original_chain
        assert [
            imported.get_block_messages(header)
            for tipset in chain(imported)
            for header in tipset.blocks
        ] == original_messages
    summary = replay_range(imported_dir, 0, HEAD, actors_dir=actors_dir)
    assert summary.ok and summary.mismatches == 0 and not summary.failures
    assert [r.epoch for r in summary.results] == HEIGHTS
    assert [r.status.value for r in summary.results].count("OK") == len(HEIGHTS) - 1
