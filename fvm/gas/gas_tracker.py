"""Counting the gas a message uses against its limit, as ref-fvm's ``GasTracker`` does.

Port of ``GasTracker`` in ref-fvm ``fvm/src/gas/mod.rs`` (v2 at ``fvm@v2.7.0``; v3/v4 at
``fvm@v3.3.1`` .. ``fvm@v4.8.2``, which add nested limits). Amounts are milligas. A charge that
takes the used gas past the limit fails with :class:`OutOfGas` and, as in the reference, sets
the used gas to exactly the limit: a message that runs out has used all of its gas. A charge
that lands exactly on the limit succeeds.

The reference's gas arithmetic saturates (signed 64-bit in v2, unsigned in v3+), and v3+ caps
the limit at ``i64::MAX`` milligas. Here the sum is exact; since the used gas never exceeds the
limit, a sum beyond the saturation bound exceeds the limit either way, so every charge succeeds
or fails exactly as in the reference. (v2's negative prices can lower the used gas; that stays
exact too.)

:meth:`GasTracker.charge` is on the path of every syscall, so it does the least it can: one
addition, one comparison, and an append when tracing.
"""

from __future__ import annotations

from typing import Final

from fvm.gas.charge import I64_MAX, GasCharge, Milligas
from fvm.receipt import ExitCode
from store.errors import FvmNodeError

# ref-fvm v3+: limits above this many milligas are lowered to it.
MAX_GAS_LIMIT: Final = I64_MAX


class OutOfGas(FvmNodeError):
    """A charge exceeded the gas limit; the message exits with ``SYS_OUT_OF_GAS``."""

    exit_code: Final = ExitCode.SYS_OUT_OF_GAS

    def __init__(self, name: str, requested: Milligas, available: Milligas) -> None:
        self.name = name
        self.requested = requested
        self.available = available
        super().__init__(
            f"out of gas charging {name}: {requested} milligas requested, {available} available"
        )


class GasLimitStackEmpty(FvmNodeError, RuntimeError):
    """``pop_limit`` without a matching ``push_limit`` (a fatal error in the reference)."""


class GasTracker:
    """Gas used and the gas limit, in milligas, with an optional trace of the charges."""

    __slots__ = ("_limit", "_snapshots", "_trace", "_used")

    def __init__(
        self, gas_limit: Milligas, gas_used: Milligas = 0, *, tracing: bool = False
    ) -> None:
        """Limit and starting usage in milligas (``gas()`` converts whole gas).

        As in ref-fvm v3+, the limit is capped at ``i64::MAX`` milligas and the starting usage
        at the limit.
        """
        self._limit = min(gas_limit, MAX_GAS_LIMIT)
        self._used = min(gas_used, self._limit)
        self._snapshots: list[tuple[Milligas, Milligas]] = []
        self._trace: list[GasCharge] | None = [] if tracing else None

    def charge(self, charge: GasCharge) -> None:
        """Apply ``charge`` (ref-fvm ``apply_charge``); raise :class:`OutOfGas` past the limit.

        When tracing, the charge is recorded whether or not it fits, as the reference does.
        """
        if self._trace is not None:
            self._trace.append(charge)
        used = self._used + charge.compute_gas + charge.other_gas
        if used > self._limit:
            available = self._limit - self._used
            self._used = self._limit
            raise OutOfGas(charge.name, charge.compute_gas + charge.other_gas, available)
        self._used = used

    def charge_gas(self, name: str, milligas: Milligas) -> None:
        """Charge a bare amount (ref-fvm ``charge_gas``), traced as compute gas under ``name``."""
        self.charge(GasCharge(name, milligas, 0))

    def try_charge(self, charge: GasCharge) -> bool:
        """Like :meth:`charge`, with the same effect, but answer False instead of raising."""
        if self._trace is not None:
            self._trace.append(charge)
        used = self._used + charge.compute_gas + charge.other_gas
        if used > self._limit:
            self._used = self._limit
            return False
        self._used = used
        return True

    def push_limit(self, new_limit: Milligas) -> None:
        """Start a nested limit: at most ``new_limit`` more, counted from zero (ref-fvm v3+)."""
        self._snapshots.append((self._limit, self._used))
        self._limit = min(self._limit - self._used, new_limit)
        self._used = 0

    def pop_limit(self) -> None:
        """End the innermost nested limit, adding what it used to the outer usage."""
        if not self._snapshots:
            raise GasLimitStackEmpty("no gas limits to pop")
        limit, used = self._snapshots.pop()
        self._limit = limit
        self._used += used

    @property
    def gas_limit(self) -> Milligas:
        return self._limit

    @property
    def gas_used(self) -> Milligas:
        return self._used

    @property
    def gas_available(self) -> Milligas:
        return self._limit - self._used

    @property
    def tracing(self) -> bool:
        return self._trace is not None

    def drain_trace(self) -> list[GasCharge]:
        """The charges recorded since the last drain (empty when not tracing)."""
        if self._trace is None:
            return []
        drained = self._trace
        self._trace = []
        return drained
