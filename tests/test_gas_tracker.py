"""The gas tracker against ref-fvm's ``GasTracker`` (``fvm/src/gas/mod.rs``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.gas import (
    SKYR_PRICES,
    GasCharge,
    GasLimitStackEmpty,
    GasTracker,
    OutOfGas,
    gas,
    round_down,
    round_up,
)
from fvm.gas.charge import I64_MAX
from fvm.receipt import ExitCode


def test_basic_gas_tracker_matches_ref_fvm() -> None:
    # mod.rs tests::basic_gas_tracker (v2.7.0 and v4.8.2).
    tracker = GasTracker(gas(20), gas(10))
    tracker.charge(GasCharge("", gas(5), 0))
    assert tracker.gas_used == gas(15)
    tracker.charge(GasCharge("", gas(5), 0))
    assert tracker.gas_used == gas(20)
    with pytest.raises(OutOfGas):
        tracker.charge(GasCharge("", gas(1), 0))


def test_milligas_rounding_matches_ref_fvm() -> None:
    # mod.rs tests::milligas_to_gas_round (v2.7.0, signed) and (v4.8.2, unsigned).
    assert (round_down(100), round_up(100)) == (0, 1)
    assert (round_down(-100), round_up(-100)) == (-1, 0)
    assert (round_down(0), round_up(0)) == (0, 0)
    assert (round_down(1000), round_up(1000)) == (1, 1)
    assert (round_down(1001), round_up(1001)) == (1, 2)


def test_running_out_of_gas_uses_all_of_it_and_reports_the_charge() -> None:
    tracker = GasTracker(gas(100))
    tracker.charge(GasCharge("first", gas(60), gas(10)))
    with pytest.raises(OutOfGas) as info:
        tracker.charge(GasCharge("OnBlockLink", gas(20), gas(20)))
    error = info.value
    assert error.exit_code == ExitCode.SYS_OUT_OF_GAS
    assert (error.name, error.requested, error.available) == ("OnBlockLink", gas(40), gas(30))
    assert tracker.gas_used == gas(100)
    assert tracker.gas_available == 0


def test_compute_and_other_gas_both_count_against_the_limit() -> None:
    tracker = GasTracker(gas(10))
    tracker.charge(GasCharge("split", gas(4), gas(6)))
    assert tracker.gas_available == 0
    with pytest.raises(OutOfGas):
        tracker.charge(GasCharge("one milligas", 0, 1))


def test_try_charge_has_the_same_effect_without_raising() -> None:
    tracker = GasTracker(gas(10))
    assert tracker.try_charge(GasCharge("fits", gas(10), 0)) is True
    assert tracker.gas_used == gas(10)
    assert tracker.try_charge(GasCharge("zero", 0, 0)) is True
    assert tracker.try_charge(GasCharge("too much", 1, 0)) is False
    assert tracker.gas_used == gas(10)
    other = GasTracker(gas(10))
    assert other.try_charge(GasCharge("too much", gas(11), 0)) is False
    assert other.gas_used == gas(10)


def test_v2_negative_charges_lower_the_gas_used() -> None:
    tracker = GasTracker(gas(10_000_000))
    tracker.charge(SKYR_PRICES.on_create_actor())
    used = tracker.gas_used
    tracker.charge(SKYR_PRICES.on_delete_actor())
    assert tracker.gas_used == used - gas(76 * 1300)


def test_limits_are_capped_at_i64_max_milligas_and_usage_at_the_limit() -> None:
    assert GasTracker(gas(1 << 62)).gas_limit == I64_MAX
    tracker = GasTracker(gas(5), gas(9))
    assert tracker.gas_used == gas(5)
    assert tracker.gas_available == 0


def test_tracing_records_every_charge_including_the_one_that_runs_out() -> None:
    tracker = GasTracker(gas(10), tracing=True)
    assert tracker.tracing
    tracker.charge(GasCharge("a", gas(3), gas(1)))
    tracker.charge_gas("wasm_exec", gas(5))
    with pytest.raises(OutOfGas):
        tracker.charge_gas("wasm_exec", gas(5))
    assert tracker.drain_trace() == [
        GasCharge("a", gas(3), gas(1)),
        GasCharge("wasm_exec", gas(5), 0),
        GasCharge("wasm_exec", gas(5), 0),
    ]
    assert tracker.drain_trace() == []


def test_without_tracing_nothing_is_recorded() -> None:
    tracker = GasTracker(gas(10))
    tracker.charge_gas("x", gas(1))
    assert not tracker.tracing
    assert tracker.drain_trace() == []


def test_nested_limits_count_from_zero_and_add_back_to_the_outer_usage() -> None:
    tracker = GasTracker(gas(100))
    tracker.charge_gas("outer", gas(30))
    tracker.push_limit(gas(50))
    assert (tracker.gas_limit, tracker.gas_used) == (gas(50), 0)
    tracker.charge_gas("inner", gas(20))
    # A nested limit larger than what is left is capped at what is left.
    tracker.push_limit(gas(1000))
    assert tracker.gas_limit == gas(30)
    with pytest.raises(OutOfGas):
        tracker.charge_gas("too much", gas(31))
    tracker.pop_limit()
    assert (tracker.gas_limit, tracker.gas_used) == (gas(50), gas(50))
    tracker.pop_limit()
    assert (tracker.gas_limit, tracker.gas_used) == (gas(100), gas(80))
    with pytest.raises(GasLimitStackEmpty):
        tracker.pop_limit()


@given(
    st.integers(min_value=0, max_value=I64_MAX),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=1 << 64), st.integers(0, 1 << 64)),
        max_size=30,
    ),
)
def test_tracker_never_goes_over_the_limit_and_fails_exactly_past_it(
    limit: int, charges: list[tuple[int, int]]
) -> None:
    tracker = GasTracker(limit)
    total = 0
    for compute, other in charges:
        total += compute + other
        fits = tracker.try_charge(GasCharge("c", compute, other))
        assert 0 <= tracker.gas_used <= limit
        assert fits == (total <= limit)
        if not fits:
            assert tracker.gas_used == limit
            break
        assert tracker.gas_used == total
