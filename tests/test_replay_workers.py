"""Parallel replay hands out contiguous chunks to this process and spawned workers, and gives
exactly the results of one process, in the same order.

The chain is a real devnet chain (v10 bundle, real FVM) of 60 epochs with a secp256k1 and a BLS
transfer in every produced epoch and a null round, long enough that each process replays
several chunks.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from devnet_chain import DevnetKeys, produce_transfer_chain
from hypothesis import given
from hypothesis import strategies as st

from chainsync.chain_store import ChainStore
from chainsync.replay import (
    MAX_CHUNK,
    EpochResult,
    EpochStatus,
    Replayer,
    ReplayError,
    ReplaySummary,
    _Step,
    chunk_size,
    replay_range,
)
from config.settings import CHAIN_DIR
from fvm.bundle import Bundle
from node.replay_command import replay_command
from store.lmdb_blockstore import LmdbBlockstore

KEYS = DevnetKeys.labelled("replay workers")
HEAD = 60
NULL_ROUND = 33
PRODUCED = [height for height in range(1, HEAD + 1) if height != NULL_ROUND]


def chunks(steps: int, processes: int) -> list[int]:
    """The chunk sizes handed out, in order, for ``steps`` steps."""
    sizes = []
    handed_out = 0
    while handed_out < steps:
        sizes.append(chunk_size(steps - handed_out, processes))
        handed_out += sizes[-1]
    return sizes


@given(st.integers(min_value=0, max_value=5_000), st.integers(min_value=1, max_value=16))
def test_chunks_cover_the_range_exactly_and_shrink_towards_its_end(
    steps: int, processes: int
) -> None:
    sizes = chunks(steps, processes)
    assert sum(sizes) == steps
    assert all(1 <= size <= MAX_CHUNK for size in sizes)
    assert sizes == sorted(sizes, reverse=True)


def test_a_long_range_is_cut_into_many_chunks_ending_in_single_tipsets() -> None:
    sizes = chunks(1_000, 2)
    assert sizes[:3] == [MAX_CHUNK] * 3
    assert sizes[-4:] == [1, 1, 1, 1]
    assert len(sizes) > 60
    assert chunks(59, 2)[:4] == [14, 11, 8, 6]


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory, devnet_bundle: Bundle) -> Path:
    root = tmp_path_factory.mktemp("replay-workers")
    produce_transfer_chain(root, KEYS, devnet_bundle, CHAIN_DIR, PRODUCED)
    return root


@pytest.fixture(scope="module")
def one_process(node_dir: Path, actors_dir: Path) -> ReplaySummary:
    return replay_range(node_dir, 1, actors_dir=actors_dir)


def test_one_process_replays_every_epoch_ok(one_process: ReplaySummary) -> None:
    assert one_process.workers == 1
    assert [result.epoch for result in one_process.results] == PRODUCED
    assert [result.status for result in one_process.results] == [EpochStatus.OK] * (
        len(PRODUCED) - 1
    ) + [EpochStatus.UNCHECKED]
    assert all(result.messages == 2 and result.gas_used > 0 for result in one_process.results)


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_replay_gives_the_same_results_in_the_same_order(
    workers: int,
    node_dir: Path,
    actors_dir: Path,
    one_process: ReplaySummary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replayed_here: list[int] = []
    replay = Replayer.replay

    def counted(self: Replayer, step: _Step) -> EpochResult:
        result = replay(self, step)
        replayed_here.append(result.epoch)
        return result

    # Spawned workers import the module afresh: only this process's replays are counted.
    monkeypatch.setattr(Replayer, "replay", counted)
    heard: list[EpochResult] = []
    summary = replay_range(
        node_dir, 1, HEAD, workers=workers, actors_dir=actors_dir, on_epoch=heard.append
    )
    assert summary.workers == workers
    assert summary.results == one_process.results
    assert [result.to_json() | {"seconds": 0} for result in summary.results] == [
        result.to_json() | {"seconds": 0} for result in one_process.results
    ]
    assert heard == list(summary.results)
    # The children are handed the first two chunks each before this process takes one.
    sizes = chunks(len(PRODUCED), workers)
    children_first = sum(sizes[: 2 * (workers - 1)])
    assert sizes[2 * (workers - 1)] <= len(replayed_here) <= len(PRODUCED) - children_first
    assert sorted(replayed_here) == replayed_here


def test_the_command_prints_the_same_lines_with_two_workers_as_with_one(
    node_dir: Path, actors_dir: Path
) -> None:
    outputs = []
    for workers in ("1", "2"):
        result = CliRunner().invoke(
            replay_command,
            [
                "--data",
                str(node_dir),
                "--from",
                "1",
                "--to",
                "head",
                "--workers",
                workers,
                "--actors",
                str(actors_dir),
            ],
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output.splitlines())
    one, two = outputs
    assert one[:-1] == two[:-1]
    assert len(one) == len(PRODUCED) + 1
    assert one[-1].startswith(f"replayed {len(PRODUCED)} epochs with 1 worker(s): 0 mismatches")
    assert two[-1].startswith(f"replayed {len(PRODUCED)} epochs with 2 worker(s): 0 mismatches")


def test_worker_processes_do_not_import_the_callers_main_script(
    node_dir: Path, actors_dir: Path, tmp_path: Path
) -> None:
    """Spawned workers would import the caller's script (for ``fvm-node``, the whole command
    line); replay keeps them from it."""
    imports = tmp_path / "imports.txt"
    script = tmp_path / "caller.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            with open({str(imports)!r}, "a") as log:
                log.write(__name__ + "\\n")
            if __name__ == "__main__":
                from chainsync.replay import replay_range
                summary = replay_range(
                    Path({str(node_dir)!r}), 1, workers=2, actors_dir=Path({str(actors_dir)!r})
                )
                print(summary.workers, summary.ok, summary.epochs)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "True", str(len(PRODUCED))]
    assert imports.read_text().splitlines() == ["__main__"]


def test_a_worker_that_cannot_start_is_a_replay_error(
    node_dir: Path, actors_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "chain"
    shutil.copytree(node_dir / CHAIN_DIR, copy)
    with LmdbBlockstore(copy, readonly=True) as blockstore:
        store = ChainStore(blockstore)
        copy.rename(tmp_path / "moved")  # this process keeps it open; workers cannot find it
        with pytest.raises(ReplayError, match="worker process died"):
            replay_range(store, 1, workers=2, actors_dir=actors_dir)


def test_a_range_of_one_tipset_starts_no_worker_process(node_dir: Path) -> None:
    summary = replay_range(node_dir, HEAD, HEAD, workers=4)
    assert summary.workers == 1
    assert [result.epoch for result in summary.results] == [HEAD]


@pytest.mark.parametrize("to", ["soon", "-3"])
def test_the_command_refuses_a_last_height_that_is_neither_a_height_nor_head(
    node_dir: Path, to: str
) -> None:
    result = CliRunner().invoke(
        replay_command, ["--data", str(node_dir), "--from", "1", "--to", to]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: ") and "--to" in result.stderr
