"""``make bench`` / ``python -m bench``: print every benchmark figure the issues ask for.

Figures are measured here, never asserted in tests; they vary with the machine's load, so each
suite reports the best of a few repetitions where that is cheap.
"""

from __future__ import annotations

import sys
import time

from bench import store_bench


def main() -> int:
    print(f"fvm-node benchmarks (python {sys.version.split()[0]})")
    started = time.perf_counter()
    for name, value, unit in store_bench.run():
        print(f"  {name:<48} {value:>14,.1f} {unit}")
    print(f"total benchmark time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
