"""The catch-up sync benchmark runs end to end on a short chain and its figures add up.

A real ``fvm-node run`` process serves the chain over loopback TCP; only sanity is asserted
(speeds depend on the machine), so the benchmark cannot silently rot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.sync_bench import Interval, _length, _length_outside, _merged, measure_catch_up

EPOCHS = 30


def test_catch_up_over_loopback_syncs_every_tipset_and_its_shares_add_up(
    actors_dir: Path,
) -> None:
    catch_up = measure_catch_up(EPOCHS, actors_dir)

    assert catch_up.tipsets == EPOCHS
    shares = catch_up.shares()
    assert sum(shares.values()) == pytest.approx(100.0)
    assert all(share >= -1e-6 for share in shares.values())
    assert shares["network wait"] > 0
    assert shares["execution"] > 0
    assert shares["validation"] > 0
    assert shares["store"] > 0
    assert catch_up.in_flight_seconds >= catch_up.network_wait_seconds
    # At least one headers request and one messages request, each answered with bytes.
    assert catch_up.requests >= 2
    assert catch_up.bytes_received > 1000
    figures = {name: (value, unit) for name, value, unit in catch_up.figures()}
    assert figures["catch-up over loopback TCP: tipsets synced"] == (EPOCHS, "tipsets")
    assert figures["catch-up sync"][0] > 0


def test_interval_union_and_difference() -> None:
    intervals: list[Interval] = [(3.0, 5.0), (0.0, 1.0), (0.5, 2.0), (5.0, 6.0)]
    assert _merged(intervals) == [(0.0, 2.0), (3.0, 6.0)]
    assert _length(intervals) == 5.0
    assert _length_outside(intervals, [(1.0, 4.0)]) == 3.0
    assert _length_outside(intervals, []) == 5.0


finite_intervals = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 100)).map(
        lambda pair: (float(pair[0]), float(pair[0] + pair[1]))
    ),
    max_size=20,
)


@given(finite_intervals, finite_intervals)
def test_union_is_the_part_outside_plus_the_rest(a: list[Interval], b: list[Interval]) -> None:
    assert _length(a + b) == pytest.approx(_length_outside(a, b) + _length(b))
    assert 0.0 <= _length_outside(a, b) <= _length(a)
