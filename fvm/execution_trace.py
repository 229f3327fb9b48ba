"""Execution traces: what happened while one message was applied, event by event.

Only for diagnosis (a replay mismatch report shows them); consensus never reads them. Built only
when the machine context asks for tracing (``MachineContext.tracing``); otherwise the call
manager records nothing and :attr:`fvm.executor.ApplyRet.exec_trace` is empty.

Port of ref-fvm's ``ExecutionEvent`` (``fvm/src/trace/mod.rs``) at ``fvm@v2.12.1`` (network
versions 15-17) and ``fvm@v3.13.3`` (18-20), as the call manager emits them
(``fvm/src/call_manager/default.rs``, ``send``, ``send_resolved``, ``trace`` and ``finish``):

* a :class:`~fvm.gas.charge.GasCharge` for every charge, in order; pending charges are flushed
  into the trace before each other event and when the call stack finishes;
* :class:`CallEvent` on every send, whether or not it is dispatched (v3 adds the gas limit the
  call may use, in whole gas, and the read-only flag);
* :class:`InvokeActorEvent` when a send reaches an existing receiver (v3 only);
* :class:`CallReturnEvent` when a send returns: v3's ``CallReturn(exit_code, value)``, which
  also stands for v2's ``CallReturn(bytes)`` (exit code 0) and ``CallAbort(exit_code)``;
* :class:`CallErrorEvent` when it could not be dispatched or failed fatally (``Forbidden``,
  "fatal"); running out of the message's gas is ``CallReturn(SYS_OUT_OF_GAS)`` in v3 and
  ``CallError(Forbidden, "out of gas")`` in v2.

ref-fvm v2 charges a successful top-level call's return value in the executor, after the call
returned, so that charge follows the top-level :class:`CallReturnEvent`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.gas.charge import GasCharge, Milligas, round_up
from fvm.invocation import Block
from fvm.syscalls.abi import ErrorNumber
from fvm.token import TokenAmount


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A send from actor ``from_id`` (ref-fvm ``ExecutionEvent::Call``).

    ``gas_limit`` is None in v2; in v3 it is the whole gas the call may use: the smaller of
    the limit the caller asked for and the gas left, each rounded up.
    """

    from_id: int
    to: Address
    method: int
    params: Block | None
    value: TokenAmount
    gas_limit: int | None = None
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class CallReturnEvent:
    """A send returned with ``exit_code`` and possibly a return block."""

    exit_code: int
    value: Block | None = None


@dataclass(frozen=True, slots=True)
class CallErrorEvent:
    """A send failed with a syscall error (it could not be dispatched, or a fatal error)."""

    number: ErrorNumber
    message: str


@dataclass(frozen=True, slots=True)
class InvokeActorEvent:
    """The send reached actor ``actor_id``, whose state was ``state`` (v3)."""

    actor_id: int
    state: ActorState


ExecutionEvent: TypeAlias = (
    GasCharge | CallEvent | CallReturnEvent | CallErrorEvent | InvokeActorEvent
)
"""One event of a trace."""

ExecutionTrace: TypeAlias = tuple[ExecutionEvent, ...]
"""Every event of one message's application, in order (ref-fvm ``ExecutionTrace``)."""

OUT_OF_GAS_ERROR: CallErrorEvent = CallErrorEvent(ErrorNumber.FORBIDDEN, "out of gas")
FATAL_ERROR: CallErrorEvent = CallErrorEvent(ErrorNumber.FORBIDDEN, "fatal")


def gas_charges(trace: Iterable[ExecutionEvent]) -> list[GasCharge]:
    """The trace's gas charges, in order."""
    return [event for event in trace if isinstance(event, GasCharge)]


def charged_milligas(trace: Iterable[ExecutionEvent]) -> Milligas:
    """The sum of every traced charge, in milligas."""
    return sum(charge.total for charge in gas_charges(trace))


def charged_gas(trace: Iterable[ExecutionEvent]) -> int:
    """Whole gas the traced charges add up to, rounded as the call manager rounds gas used
    (up; ref-fvm v2's refunds cannot take it below zero).

    Equals the receipt's gas used unless a charge ran out of gas (the tracker then counts only
    up to the limit, while the trace holds the whole refused charge) or the message failed
    fatally (which uses its whole gas limit).
    """
    return round_up(max(charged_milligas(trace), 0))
