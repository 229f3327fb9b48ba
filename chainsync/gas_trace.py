"""Gas traces as Lotus shows them: each message's call tree with the gas every call charged.

ref-fvm records a flat list of events (:mod:`fvm.execution_trace`); filecoin-ffi folds it into
the call tree Lotus serves as ``types.ExecutionTrace`` (``chain/types/execresult.go``: ``Msg``,
``MsgRct``, ``InvokedActor``, ``GasCharges``, ``Subcalls``; ``GasTrace`` with ``Name``, ``tg``,
``cg``, ``sg``). :func:`build_call_tree` ports ffi's ``build_lotus_trace`` and the loop before
it in ``fvm_machine_execute_message`` (``rust/src/fvm/machine.rs``):

* charges made before the first call (the inclusion charge, ``OnChainMessage``) belong to the
  top-level call; events before it that are not charges are skipped;
* every ``Call`` opens a subcall of the current call, ``InvokeActor`` names the actor reached,
  charges go to the current call, and ``CallReturn`` / ``CallError`` close it (a syscall error
  becomes the exit code a send failing with it gives: ``SYS_INSUFFICIENT_FUNDS``,
  ``SYS_INVALID_RECEIVER``, otherwise ``SYS_ASSERTION_FAILED``);
* each charge's total, compute and other ("storage") gas is rounded up to whole gas on its own,
  so the per-call sums may exceed the receipt's gas used by rounding;
* a trace without a call, or whose top-level call never closes, has no tree (ffi gives Lotus
  none).

ffi drops the charges made after the top-level call returned (ref-fvm v2 charges the top-level
return value there, ``OnChainReturnValue``); here they are kept beside the tree, so that the
charges of a report add up to the gas used. ffi's per-charge durations are not measured here and
not reported.

JSON follows Lotus's field names: addresses as strings, token amounts as decimal strings, bytes
as base64 (null when absent), CIDs as ``{"/": cid}``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chainsync.tipset_execution import TipsetResult
from fvm.actor_state import ActorState
from fvm.execution_trace import (
    CallEvent,
    CallReturnEvent,
    ExecutionEvent,
    InvokeActorEvent,
    charged_gas,
)
from fvm.executor import ApplyRet, send_error_exit_code
from fvm.gas.charge import GasCharge, round_up
from fvm.invocation import Block
from fvm.receipt import ExitCode
from store.cid import CID


@dataclass(frozen=True, slots=True)
class GasTrace:
    """One charge in whole gas, each part rounded up (Lotus ``GasTrace``)."""

    name: str
    total_gas: int
    compute_gas: int
    other_gas: int

    @classmethod
    def of(cls, charge: GasCharge) -> GasTrace:
        return cls(
            charge.name,
            round_up(charge.total),
            round_up(charge.compute_gas),
            round_up(charge.other_gas),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "tg": self.total_gas,
            "cg": self.compute_gas,
            "sg": self.other_gas,
        }


@dataclass(slots=True)
class CallTrace:
    """One call and what happened in it (Lotus ``ExecutionTrace``), built by
    :func:`build_call_tree`."""

    call: CallEvent
    exit_code: int = ExitCode.OK
    return_value: Block | None = None
    invoked_actor: InvokeActorEvent | None = None
    gas_charges: list[GasTrace] = field(default_factory=list)
    subcalls: list[CallTrace] = field(default_factory=list)

    def total_gas(self) -> int:
        """Whole gas of this call's charges and its subcalls' (each charge rounded up)."""
        own = sum(charge.total_gas for charge in self.gas_charges)
        return own + sum(subcall.total_gas() for subcall in self.subcalls)

    def to_json(self) -> dict[str, Any]:
        call = self.call
        document: dict[str, Any] = {
            "Msg": {
                "From": f"f0{call.from_id}",
                "To": str(call.to),
                "Value": str(call.value),
                "Method": call.method,
                "Params": _bytes_json(call.params),
                "ParamsCodec": 0 if call.params is None else call.params.codec,
                "GasLimit": call.gas_limit,
                "ReadOnly": call.read_only,
            },
            "MsgRct": {
                "ExitCode": int(self.exit_code),
                "Return": _bytes_json(self.return_value),
                "ReturnCodec": 0 if self.return_value is None else self.return_value.codec,
            },
        }
        if self.invoked_actor is not None:
            document["InvokedActor"] = {
                "Id": self.invoked_actor.actor_id,
                "State": _actor_json(self.invoked_actor.state),
            }
        document["GasCharges"] = [charge.to_json() for charge in self.gas_charges]
        document["Subcalls"] = [subcall.to_json() for subcall in self.subcalls]
        return document


@dataclass(frozen=True, slots=True)
class CallTree:
    """A message's call tree (None when the trace has none) and the charges made after its
    top-level call returned."""

    root: CallTrace | None
    after_return: tuple[GasTrace, ...] = ()


def build_call_tree(trace: Iterable[ExecutionEvent]) -> CallTree:
    """Fold a flat execution trace into its call tree (see the module docstring)."""
    events = iter(trace)
    initial: list[GasTrace] = []
    root: CallTrace | None = None
    for event in events:
        if isinstance(event, GasCharge):
            initial.append(GasTrace.of(event))
        elif isinstance(event, CallEvent):
            root = CallTrace(event, gas_charges=initial)
            break
    if root is None:
        return CallTree(None)
    open_calls = [root]
    for event in events:
        current = open_calls[-1]
        if isinstance(event, GasCharge):
            current.gas_charges.append(GasTrace.of(event))
        elif isinstance(event, CallEvent):
            subcall = CallTrace(event)
            current.subcalls.append(subcall)
            open_calls.append(subcall)
        elif isinstance(event, InvokeActorEvent):
            current.invoked_actor = event
        elif isinstance(event, CallReturnEvent):
            current.exit_code = event.exit_code
            current.return_value = event.value
            open_calls.pop()
        else:
            current.exit_code = send_error_exit_code(event.number)
            open_calls.pop()
        if not open_calls:
            break
    if open_calls:
        return CallTree(None)
    return CallTree(
        root, tuple(GasTrace.of(event) for event in events if isinstance(event, GasCharge))
    )


def _bytes_json(block: Block | None) -> str | None:
    return None if block is None else base64.b64encode(block.data).decode("ascii")


def _cid_json(cid: CID) -> dict[str, str]:
    return {"/": str(cid)}


def _actor_json(actor: ActorState) -> dict[str, Any]:
    delegated = actor.delegated_address
    return {
        "Code": _cid_json(actor.code),
        "Head": _cid_json(actor.state),
        "Nonce": actor.sequence,
        "Balance": str(actor.balance),
        "Address": None if delegated is None else str(delegated),
    }


def message_trace_json(index: int, ret: ApplyRet, cid: CID | None = None) -> dict[str, Any]:
    """One applied message as a Lotus ``InvocResult``-like document: its CID (explicit messages),
    receipt, failure, call tree, the charges after the top-level return, and ``ChargedGas``: the
    whole gas all traced charges add up to (see :func:`fvm.execution_trace.charged_gas`)."""
    tree = build_call_tree(ret.exec_trace)
    receipt = ret.receipt
    return {
        "Index": index,
        "MsgCid": None if cid is None else _cid_json(cid),
        "MsgRct": {
            "ExitCode": int(receipt.exit_code),
            "Return": base64.b64encode(receipt.return_data).decode("ascii"),
            "GasUsed": receipt.gas_used,
        },
        "Error": "" if ret.failure_info is None else str(ret.failure_info),
        "ChargedGas": charged_gas(ret.exec_trace),
        "ExecutionTrace": None if tree.root is None else tree.root.to_json(),
        "GasChargesAfterReturn": [charge.to_json() for charge in tree.after_return],
    }


def tipset_gas_traces_json(result: TipsetResult) -> dict[str, Any]:
    """The traces of a tipset executed with tracing: its explicit messages in order (with their
    CIDs), then the implicit ones (block rewards, cron) in order of application."""
    return {
        "state_root": str(result.state_root),
        "receipts_root": str(result.receipts_root),
        "messages": [
            message_trace_json(index, ret, cid)
            for index, (ret, cid) in enumerate(
                zip(result.apply_rets, result.message_cids, strict=True)
            )
        ],
        "implicit_messages": [
            message_trace_json(index, ret) for index, ret in enumerate(result.implicit_rets)
        ],
    }
