"""Gas units and gas charges: milligas, rounding to whole gas, and one named charge.

The FVM counts gas in milligas (1/1000 gas) so that per-byte prices below one gas can be
expressed; receipts and messages use whole gas. ref-fvm's ``Gas`` type (``fvm/src/gas/mod.rs``)
is a saturating integer of milligas: signed 64-bit in ref-fvm v2 (network versions 15-17, where
some prices are negative refunds) and unsigned 64-bit from v3 (network version 18 on). Here gas
is a plain ``int`` of milligas, and the price lists saturate exactly where the reference's
arithmetic would (see :func:`saturate_u64` and :func:`saturate_i64`).

A :class:`GasCharge` (``fvm/src/gas/charge.rs``) names one charge and splits it into compute gas
and "other" gas (storage, memory retention, deferred work; ref-fvm v2 calls it storage gas). The
split only matters for tracing and benchmarking: the tracker charges the sum.

The block gas limit is Lotus's ``buildconstants.BlockGasLimit`` (also ``BLOCK_GAS_LIMIT`` in
fvm_shared v2, dropped from later versions because the VM itself never uses it).
"""

from __future__ import annotations

from typing import Final, NamedTuple, TypeAlias

Milligas: TypeAlias = int
"""An amount of gas in thousandths of a gas unit."""

MILLIGAS_PRECISION: Final = 1000

U64_MAX: Final = (1 << 64) - 1
I64_MAX: Final = (1 << 63) - 1
I64_MIN: Final = -(1 << 63)

# Lotus build/buildconstants/params_shared_vals.go (mainnet): gas per block, and the target
# the base fee adjusts towards.
BLOCK_GAS_LIMIT: Final = 10_000_000_000
BLOCK_GAS_TARGET: Final = BLOCK_GAS_LIMIT // 2


def saturate_u64(milligas: int) -> Milligas:
    """Clamp a non-negative result to ref-fvm v3+'s ``u64`` gas range (saturating arithmetic)."""
    return milligas if milligas <= U64_MAX else U64_MAX


def saturate_i64(milligas: int) -> Milligas:
    """Clamp a result to ref-fvm v2's ``i64`` gas range (saturating arithmetic)."""
    if milligas > I64_MAX:
        return I64_MAX
    if milligas < I64_MIN:
        return I64_MIN
    return milligas


def gas(whole_gas: int) -> Milligas:
    """``Gas::new``: whole gas to milligas.

    The reference saturates this multiplication; every constant in the price lists is far from
    the bounds, so no clamping is needed here.
    """
    return whole_gas * MILLIGAS_PRECISION


def round_up(milligas: Milligas) -> int:
    """``Gas::round_up``: whole gas, any fraction counted as one more (ceiling).

    ref-fvm v2's signed version truncates negative amounts towards zero, which is also the
    ceiling, so this one function serves both generations.
    """
    return -(-milligas // MILLIGAS_PRECISION)


def round_down(milligas: Milligas) -> int:
    """``Gas::round_down``: whole gas, the fraction dropped (floor; v2 floors negatives too)."""
    return milligas // MILLIGAS_PRECISION


class GasCharge(NamedTuple):
    """One named charge, in milligas: ``compute_gas`` plus ``other_gas``.

    A named tuple because the VM builds one for every syscall; ``total`` is what is charged.
    """

    name: str
    compute_gas: Milligas
    other_gas: Milligas = 0

    @property
    def total(self) -> Milligas:
        """The amount charged.

        ref-fvm adds the parts with saturating arithmetic; a sum past the saturation bound
        exceeds every gas limit either way, so the tracker's outcome is the same.
        """
        return self.compute_gas + self.other_gas
