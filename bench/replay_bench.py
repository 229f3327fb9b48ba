"""Replay speed with one and two worker processes on a devnet chain (issue 5's benchmark).

The chain is the sync benchmark's (:func:`bench.sync_bench._produce_chain`): the real v10 devnet
bundle, ``FVM_NODE_BENCH_EPOCHS`` epochs (default 1000), a secp256k1 and a BLS transfer in
every epoch, in a node data directory. It is built in a temporary folder, or kept in and reused
from the folder named by ``FVM_NODE_BENCH_REPLAY_CHAIN`` (built there when it does not exist).

Every epoch from 1 to the head is replayed with ``workers=1`` and ``workers=2``, alternately,
twice each; the best wall time of each is reported, with the speed-up, and the results of every
run must be identical (epochs, tipsets, roots, gas, statuses). The CPU seconds of each run
(this process and its children) are reported beside the wall times: the machine may be shared,
and when other work holds the cores the wall times say more about that than about replay.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.store_bench import Figure
from bench.sync_bench import EPOCHS, _produce_chain
from chainsync.replay import ReplaySummary, chain_dir_of, replay_range

CHAIN_ENV: Final = "FVM_NODE_BENCH_REPLAY_CHAIN"
WORKER_COUNTS: Final = (1, 2)
ROUNDS: Final = 2


class ReplayBenchError(RuntimeError):
    """A replay run disagreed with the chain or with another run."""


@dataclass(frozen=True, slots=True)
class Timing:
    workers: int
    wall_seconds: float
    cpu_seconds: float
    summary: ReplaySummary


def _cpu_seconds() -> float:
    """User and system time of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def chain_data_dir(data_dir: Path) -> Path:
    """``data_dir``, a node data directory holding a benchmark chain: produced first when the
    folder does not exist, checked to hold a chain store when it does."""
    if not data_dir.exists():
        _produce_chain(data_dir, EPOCHS, None)
    chain_dir_of(data_dir)
    return data_dir


def time_replay(store: Path, workers: int) -> Timing:
    cpu = _cpu_seconds()
    started = time.perf_counter()
    summary = replay_range(store, 1, workers=workers)
    wall = time.perf_counter() - started
    if not summary.ok:
        raise ReplayBenchError(f"replay with {workers} worker(s) failed: {summary.line()}")
    return Timing(workers, wall, _cpu_seconds() - cpu, summary)


def compare(store: Path) -> list[Timing]:
    """Every run of :data:`ROUNDS` rounds of one replay per worker count; all must agree."""
    timings = [time_replay(store, workers) for _ in range(ROUNDS) for workers in WORKER_COUNTS]
    reference = timings[0].summary.results
    for timing in timings[1:]:
        if timing.summary.results != reference:
            raise ReplayBenchError(
                f"replay with {timing.workers} worker(s) differs from one with {timings[0].workers}"
            )
    return timings


def best(timings: list[Timing], workers: int) -> Timing:
    return min((t for t in timings if t.workers == workers), key=lambda t: t.wall_seconds)


def _figures(store: Path) -> list[Figure]:
    load_before = os.getloadavg()[0]
    timings = compare(store)
    load_after = os.getloadavg()[0]
    one, two = best(timings, 1), best(timings, 2)
    epochs = one.summary.epochs
    return [
        ("replayed epochs (1..head)", float(epochs), "epochs"),
        ("replay gas per run", one.summary.gas_used / 1e9, "Ggas"),
        ("replay, 1 worker (best of 2)", one.wall_seconds, "s"),
        ("replay, 2 workers (best of 2)", two.wall_seconds, "s"),
        ("replay speed-up, 2 workers over 1", one.wall_seconds / two.wall_seconds, "x"),
        ("replay, 1 worker: CPU time", one.cpu_seconds, "s"),
        ("replay, 2 workers: CPU time (both processes)", two.cpu_seconds, "s"),
        ("replay, 2 workers", epochs / two.wall_seconds, "epochs/s"),
        ("1-minute load average before the runs", load_before, "runnable"),
        ("1-minute load average after the runs", load_after, "runnable"),
    ]


def run() -> list[Figure]:
    kept = os.environ.get(CHAIN_ENV)
    if kept:
        return _figures(chain_data_dir(Path(kept)))
    with tempfile.TemporaryDirectory(prefix="fvm-node-replay-bench-") as tmp:
        return _figures(chain_data_dir(Path(tmp) / "node"))


if __name__ == "__main__":
    print(f"replay benchmark on a {EPOCHS}-epoch devnet chain")
    for name, value, unit in run():
        print(f"{name:<48} {value:>12,.2f} {unit}")
