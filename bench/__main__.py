"""``make bench`` / ``python -m bench``: print every benchmark figure the issues ask for.

Figures are measured here, never asserted in tests; they vary with the machine's load, so each
suite reports the best of a few repetitions where that is cheap.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from bench import fvm_bench, replay_bench, store_bench, sync_bench
from bench.store_bench import Figure

NAME_WIDTH = 48
SUITES: tuple[tuple[str, Callable[[], list[Figure]]], ...] = (
    ("storage", store_bench.run),
    ("FVM message execution (conformance vectors)", fvm_bench.run),
    ("devnet catch-up sync", sync_bench.run),
    ("devnet replay, 1 and 2 worker processes", replay_bench.run),
)


def main() -> int:
    print(f"fvm-node benchmarks (python {sys.version.split()[0]})")
    started = time.perf_counter()
    for title, run in SUITES:
        suite_started = time.perf_counter()
        figures = run()
        width = max([NAME_WIDTH, *(len(name) for name, _, _ in figures)])
        print(f"{title} ({time.perf_counter() - suite_started:.1f} s):")
        for name, value, unit in figures:
            print(f"  {name:<{width}} {value:>14,.1f} {unit}")
    print(f"total benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
