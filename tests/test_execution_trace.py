"""Execution traces (ref-fvm ``ExecutionEvent``) and Lotus-style gas traces built from them.

Real mainnet vectors of both FVM generations (v2 at network versions 16/17, v3 at 18) are applied
with tracing on: per message, the traced charges add up to the receipt's gas used, the call tree's
top call is the message, its exit code is the receipt's, and tracing changes no receipt and no
state root. A devnet chain with a forged state block replays into a mismatch report whose
``gas-traces.json`` holds every message's call tree and charges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from devnet_chain import DevnetKeys, DevnetNodes, forge_parent_state, signed_transfer
from hypothesis import given
from hypothesis import strategies as st

from chainsync.gas_trace import (
    CallTrace,
    GasTrace,
    build_call_tree,
    message_trace_json,
)
from chainsync.replay import (
    GAS_TRACES_FILE,
    SUMMARY_FILE,
    EpochStatus,
    chain_dir_of,
    replay_range,
)
from fvm.actor_state import ActorState
from fvm.address import REWARD_ACTOR_ADDR, Address
from fvm.bundle import Bundle
from fvm.conformance.runner import (
    bundle_source,
    conformance_invoker,
    machine_for_variant,
    raw_length,
    receipt_mismatch,
)
from fvm.conformance.vector import TestVector, load_vector
from fvm.execution_trace import (
    OUT_OF_GAS_ERROR,
    CallErrorEvent,
    CallEvent,
    CallReturnEvent,
    ExecutionEvent,
    InvokeActorEvent,
    charged_gas,
    charged_milligas,
    gas_charges,
)
from fvm.executor import ApplyKind, ApplyRet, Executor
from fvm.gas.charge import GasCharge, gas, round_up
from fvm.gas.gas_tracker import GasTracker
from fvm.invocation import Block
from fvm.message import Message
from fvm.receipt import ExitCode, Receipt
from fvm.state_tree import StateTree
from fvm.syscalls.abi import ErrorNumber
from fvm.token import FILECOIN_PRECISION
from fvm.wasm_invoker import WasmActorInvoker
from store.blockstore import Blockstore, MemoryBlockstore, put
from store.cid import CID

SHARK = "extracted/0001-shark-01"
HYGGE = "extracted/0002-hygge-01"
# Plain sends, nested calls (multisig, miner creation through the power and init actors), a
# send that cannot pay, an actor exiting with an error, and messages running out of gas.
VECTORS = (
    f"{SHARK}/fil_9_account/Send/Ok",
    f"{SHARK}/fil_9_multisig/Approve/Ok",
    f"{SHARK}/fil_9_storagepower/CreateMiner/Ok",
    f"{SHARK}/fil_9_storageminer/PreCommitSector/SysErrInsufficientFunds",
    f"{SHARK}/fil_9_storageminer/PreCommitSector/16",
    f"{SHARK}/fil_9_storageminer/ProveCommitSector/SysErrOutOfGas",
    f"{HYGGE}/fil_10_multisig/Propose/Ok",
    f"{HYGGE}/fil_10_storagepower/CreateMiner/Ok",
    f"{HYGGE}/fil_10_storagemarket/PublishStorageDeals/16",
    f"{HYGGE}/fil_10_storageminer/PreCommitSector/SysErrInsufficientFunds",
    f"{HYGGE}/fil_10_storageminer/PreCommitSector/SysErrOutOfGas",
)


@dataclass(frozen=True)
class AppliedVector:
    """One variant of a vector applied twice: without tracing and with it."""

    vector: TestVector
    network_version: int
    messages: list[Message]
    sender_ids: list[int]
    receiver_ids: list[int | None]
    untraced: list[ApplyRet]
    traced: list[ApplyRet]
    untraced_root: CID
    traced_root: CID


def _apply(
    vector: TestVector, actors_dir: Path, invoker: WasmActorInvoker, tracing: bool
) -> tuple[list[ApplyRet], CID, list[int], list[int | None]]:
    variant = vector.variants[0]
    machine = machine_for_variant(vector, variant, vector.blockstore(), bundle_source(actors_dir))
    machine.context = replace(machine.context, tracing=tracing)
    invoker.preload_builtin_actors(machine)
    executor = Executor(machine, invoker)
    rets: list[ApplyRet] = []
    senders: list[int] = []
    receivers: list[int | None] = []
    for index, apply in enumerate(vector.messages):
        message = Message.decode(apply.data, f"{vector.path} message {index}")
        sender = machine.state_tree.lookup_id(message.from_)
        assert sender is not None
        senders.append(sender)
        receivers.append(machine.state_tree.lookup_id(message.to))
        rets.append(
            executor.execute_message(message, ApplyKind.EXPLICIT, raw_length(message, apply.data))
        )
    return rets, executor.flush(), senders, receivers


@pytest.fixture(scope="module")
def applied(vectors_dir: Path, actors_dir: Path) -> list[AppliedVector]:
    invoker = conformance_invoker()
    results = []
    for folder in VECTORS:
        path = sorted((vectors_dir / folder).glob("*.json"))[0]
        vector = load_vector(path)
        untraced, untraced_root, senders, receivers = _apply(vector, actors_dir, invoker, False)
        traced, traced_root, _, _ = _apply(vector, actors_dir, invoker, True)
        messages = [Message.decode(apply.data, str(path)) for apply in vector.messages]
        results.append(
            AppliedVector(
                vector,
                vector.variants[0].network_version,
                messages,
                senders,
                receivers,
                untraced,
                traced,
                untraced_root,
                traced_root,
            )
        )
    return results


def _messages(applied: list[AppliedVector]) -> Iterator[tuple[AppliedVector, int]]:
    for run in applied:
        for index in range(len(run.messages)):
            yield run, index


def _ran_out_of_gas(trace: tuple[ExecutionEvent, ...]) -> bool:
    return any(
        event == OUT_OF_GAS_ERROR
        or (isinstance(event, CallReturnEvent) and event.exit_code == ExitCode.SYS_OUT_OF_GAS)
        for event in trace
    )


def test_the_selection_covers_both_generations_and_out_of_gas(
    applied: list[AppliedVector],
) -> None:
    versions = {run.network_version for run in applied}
    assert min(versions) <= 17 and max(versions) >= 18
    codes = {int(ret.receipt.exit_code) for run in applied for ret in run.traced}
    assert {ExitCode.OK, ExitCode.SYS_OUT_OF_GAS, ExitCode.SYS_INSUFFICIENT_FUNDS} <= codes
    assert any(code >= 16 for code in codes)


def test_tracing_changes_no_receipt_and_no_state_root(applied: list[AppliedVector]) -> None:
    for run in applied:
        assert run.traced_root == run.untraced_root == run.vector.post_state_root
        for index, (plain, traced) in enumerate(zip(run.untraced, run.traced, strict=True)):
            assert traced.receipt == plain.receipt
            assert receipt_mismatch(run.vector.receipts[index], traced, index) is None
            assert plain.exec_trace == ()
            assert traced.exec_trace != ()


def test_traced_charges_add_up_to_the_gas_used(applied: list[AppliedVector]) -> None:
    exact = 0
    for run, index in _messages(applied):
        ret = run.traced[index]
        trace = ret.exec_trace
        if _ran_out_of_gas(trace):
            # The refused charge is traced whole while the tracker stops at the limit.
            assert charged_gas(trace) >= ret.receipt.gas_used
            if ret.receipt.exit_code == ExitCode.SYS_OUT_OF_GAS:
                assert ret.receipt.gas_used == run.messages[index].gas_limit
        else:
            assert charged_gas(trace) == ret.receipt.gas_used, (run.vector.path, index)
            exact += 1
    assert exact >= 8


def test_the_inclusion_charge_comes_first(applied: list[AppliedVector]) -> None:
    for run, index in _messages(applied):
        first = run.traced[index].exec_trace[0]
        assert isinstance(first, GasCharge) and first.name == "OnChainMessage"
        assert isinstance(run.traced[index].exec_trace[1], CallEvent)


def test_the_top_call_is_the_message_and_returns_the_receipts_exit_code(
    applied: list[AppliedVector],
) -> None:
    for run, index in _messages(applied):
        message, ret = run.messages[index], run.traced[index]
        tree = build_call_tree(ret.exec_trace)
        assert tree.root is not None
        call = tree.root.call
        assert (call.from_id, call.to, call.method, call.value) == (
            run.sender_ids[index],
            message.to,
            message.method_num,
            message.value,
        )
        assert (call.params is None) == (message.params == b"")
        v2_out_of_gas = run.network_version < 18 and ret.exec_trace[-1] == OUT_OF_GAS_ERROR
        if v2_out_of_gas:
            # ref-fvm v2 traces running out of gas as a Forbidden syscall error, which ffi
            # turns into SYS_ASSERTION_FAILED.
            assert ret.receipt.exit_code == ExitCode.SYS_OUT_OF_GAS
            assert tree.root.exit_code == ExitCode.SYS_ASSERTION_FAILED
        else:
            assert tree.root.exit_code == ret.receipt.exit_code
            if ret.receipt.return_data:
                assert tree.root.return_value is not None
                assert tree.root.return_value.data == ret.receipt.return_data


def test_v3_traces_invoked_actors_and_call_gas_limits(applied: list[AppliedVector]) -> None:
    for run, index in _messages(applied):
        ret = run.traced[index]
        trace = ret.exec_trace
        tree = build_call_tree(trace)
        assert tree.root is not None
        call = tree.root.call
        if run.network_version < 18:
            assert call.gas_limit is None
            assert not any(isinstance(event, InvokeActorEvent) for event in trace)
            continue
        inclusion = gas_charges(trace)[0]
        assert call.gas_limit == round_up(gas(run.messages[index].gas_limit) - inclusion.total)
        invoked = tree.root.invoked_actor
        assert invoked is not None
        assert invoked.actor_id == run.receiver_ids[index]


def test_v2_charges_the_top_level_return_after_the_call(applied: list[AppliedVector]) -> None:
    for run, index in _messages(applied):
        ret = run.traced[index]
        tree = build_call_tree(ret.exec_trace)
        after = [charge.name for charge in tree.after_return]
        if run.network_version < 18 and ret.receipt.exit_code == ExitCode.OK:
            assert after == ["OnChainReturnValue"]
        else:
            assert after == []


def test_actor_code_charges_carry_ref_fvm_names(applied: list[AppliedVector]) -> None:
    names = {
        charge.name
        for run in applied
        for ret in run.traced
        for charge in gas_charges(ret.exec_trace)
    }
    assert {
        "OnChainMessage",
        "OnMethodInvocation",
        "wasm_exec",
        "OnBlockRead",
        "OnBlockOpenBase",
        "OnSyscall",
        "OnValueTransfer",
        "OnActorLookup",
    } <= names


def test_nested_sends_become_subcalls(applied: list[AppliedVector]) -> None:
    depths = []
    for run, index in _messages(applied):
        tree = build_call_tree(run.traced[index].exec_trace)
        assert tree.root is not None
        depths.append(_depth(tree.root))
        calls = sum(isinstance(e, CallEvent) for e in run.traced[index].exec_trace)
        assert _count(tree.root) == calls
    assert max(depths) >= 3


def _depth(call: CallTrace) -> int:
    return 1 + max((_depth(sub) for sub in call.subcalls), default=0)


def _count(call: CallTrace) -> int:
    return 1 + sum(_count(sub) for sub in call.subcalls)


# -- the call tree from synthetic traces -------------------------------------------------------


def _call(to: int, method: int = 2) -> CallEvent:
    return CallEvent(100, Address.new_id(to), method, Block(0x51, b"\x80"), 5, 1000, False)


def test_call_tree_attaches_charges_to_the_call_that_made_them() -> None:
    trace: list[ExecutionEvent] = [
        GasCharge("OnChainMessage", 1500, 250),
        _call(7),
        GasCharge("OnMethodInvocation", 75_000),
        _call(8),
        GasCharge("wasm_exec", 1),
        CallErrorEvent(ErrorNumber.INSUFFICIENT_FUNDS, "poor"),
        _call(9),
        CallErrorEvent(ErrorNumber.NOT_FOUND, "missing"),
        _call(10),
        CallErrorEvent(ErrorNumber.LIMIT_EXCEEDED, "depth"),
        CallReturnEvent(ExitCode.OK, Block(0x51, b"\x01")),
        GasCharge("OnChainReturnValue", 0, 3000),
    ]
    tree = build_call_tree(trace)
    root = tree.root
    assert root is not None
    assert [charge.name for charge in root.gas_charges] == ["OnChainMessage", "OnMethodInvocation"]
    assert root.gas_charges[0] == GasTrace("OnChainMessage", 2, 2, 1)
    assert [sub.call.to.number for sub in root.subcalls] == [8, 9, 10]
    assert [int(sub.exit_code) for sub in root.subcalls] == [
        ExitCode.SYS_INSUFFICIENT_FUNDS,
        ExitCode.SYS_INVALID_RECEIVER,
        ExitCode.SYS_ASSERTION_FAILED,
    ]
    assert root.subcalls[0].gas_charges == [GasTrace("wasm_exec", 1, 1, 0)]
    assert root.return_value == Block(0x51, b"\x01")
    assert tree.after_return == (GasTrace("OnChainReturnValue", 3, 0, 3),)
    assert root.total_gas() == 2 + 75 + 1
    assert charged_milligas(trace) == 1750 + 75_000 + 1 + 3000


def test_a_trace_without_a_closed_top_call_has_no_tree() -> None:
    assert build_call_tree([GasCharge("OnChainMessage", 1)]).root is None
    assert build_call_tree([_call(7), _call(8), CallReturnEvent(ExitCode.OK)]).root is None
    assert build_call_tree([]).root is None


@dataclass(frozen=True)
class Node:
    """A call in a generated trace: its charges (milligas), its exit code, its subcalls."""

    charges: tuple[int, ...]
    exit_code: int
    subcalls: tuple[Node, ...]


nodes = st.recursive(
    st.builds(Node, st.tuples(st.integers(0, 5000)), st.sampled_from([0, 16, 33]), st.just(())),
    lambda children: st.builds(
        Node,
        st.lists(st.integers(0, 5000), max_size=3).map(tuple),
        st.sampled_from([0, 16, 33]),
        st.lists(children, max_size=3).map(tuple),
    ),
    max_leaves=12,
)


def _events(node: Node, to: int) -> list[ExecutionEvent]:
    events: list[ExecutionEvent] = [_call(to)]
    for index, subcall in enumerate(node.subcalls):
        events.append(GasCharge("OnMethodInvocation", 75_000 + index))
        events.extend(_events(subcall, to + index + 1))
    events.extend(GasCharge("wasm_exec", milligas) for milligas in node.charges)
    events.append(CallReturnEvent(node.exit_code))
    return events


def _same_shape(call: CallTrace, node: Node) -> bool:
    return (
        call.exit_code == node.exit_code
        and len(call.subcalls) == len(node.subcalls)
        and all(
            _same_shape(sub, child) for sub, child in zip(call.subcalls, node.subcalls, strict=True)
        )
    )


@given(nodes, st.lists(st.integers(0, 10_000), max_size=3))
def test_call_tree_keeps_every_call_and_charge(node: Node, trailing: list[int]) -> None:
    trace = [GasCharge("OnChainMessage", 7), *_events(node, 10)]
    trace.extend(GasCharge("OnChainReturnValue", milligas) for milligas in trailing)
    tree = build_call_tree(trace)
    assert tree.root is not None and _same_shape(tree.root, node)
    charges = gas_charges(trace)
    assert tree.root.total_gas() + sum(c.total_gas for c in tree.after_return) == sum(
        round_up(charge.total) for charge in charges
    )
    assert len(tree.after_return) == len(trailing)


def test_message_json_uses_lotus_field_names() -> None:
    cid = put(MemoryBlockstore(), b"\x80")
    trace: tuple[ExecutionEvent, ...] = (
        GasCharge("OnChainMessage", 1000, 2000),
        _call(7),
        InvokeActorEvent(7, ActorState(cid, cid)),
        GasCharge("OnMethodInvocation", 75_000),
        CallReturnEvent(ExitCode.USR_ILLEGAL_ARGUMENT),
    )
    ret = ApplyRet(Receipt(ExitCode.USR_ILLEGAL_ARGUMENT, b"", 78), exec_trace=trace)
    document = json.loads(json.dumps(message_trace_json(3, ret, cid)))
    assert document["Index"] == 3
    assert document["MsgCid"] == {"/": str(cid)}
    assert document["MsgRct"]["GasUsed"] == document["ChargedGas"] == 78
    top = document["ExecutionTrace"]
    assert top["Msg"] == {
        "From": "f0100",
        "To": "f07",
        "Value": "5",
        "Method": 2,
        "Params": "gA==",
        "ParamsCodec": 0x51,
        "GasLimit": 1000,
        "ReadOnly": False,
    }
    assert top["MsgRct"] == {"ExitCode": 16, "Return": None, "ReturnCodec": 0}
    assert top["InvokedActor"] == {
        "Id": 7,
        "State": {
            "Code": {"/": str(cid)},
            "Head": {"/": str(cid)},
            "Nonce": 0,
            "Balance": "0",
            "Address": None,
        },
    }
    assert top["GasCharges"] == [
        {"Name": "OnChainMessage", "tg": 3, "cg": 1, "sg": 2},
        {"Name": "OnMethodInvocation", "tg": 75, "cg": 75, "sg": 0},
    ]
    assert top["Subcalls"] == []
    assert document["GasChargesAfterReturn"] == []


def test_an_untraced_message_has_no_trace_and_its_tracker_records_nothing() -> None:
    tracker = GasTracker(gas(100))
    tracker.charge(GasCharge("OnChainMessage", 5))
    assert not tracker.tracing and tracker.drain_trace() == []
    assert ApplyRet(Receipt(0, b"", 0)).exec_trace == ()


# -- a replay mismatch report ------------------------------------------------------------------

KEYS = DevnetKeys.labelled("gas-trace")
# Heights 1-3; transfers both ways land in 2, whose parent state is forged.
FORGED_EPOCH = 2
HEAD = 3


def _one_more_attofil_for_the_reward_actor(tree: StateTree, _store: Blockstore) -> None:
    tree.mutate_actor(REWARD_ACTOR_ADDR, lambda actor: replace(actor, balance=actor.balance + 1))


@pytest.fixture(scope="module")
def forged_report(
    tmp_path_factory: pytest.TempPathFactory, devnet_bundle: Bundle, actors_dir: Path
) -> Path:
    root = tmp_path_factory.mktemp("gas-trace-node")
    nodes = DevnetNodes.in_directory(root, KEYS, devnet_bundle, KEYS.genesis(devnet_bundle))
    pipeline = nodes.open(root / "chain")
    producer = nodes.producer(pipeline)
    for epoch in range(1, HEAD + 1):
        if epoch == FORGED_EPOCH:
            producer.message_pool.add(signed_transfer(KEYS.alice, KEYS.bob.address, 0), local=True)
            producer.message_pool.add(signed_transfer(KEYS.bob, KEYS.alice.address, 0), local=True)
        producer.produce(epoch)
    pipeline.chain_store.blockstore.close()
    forge_parent_state(chain_dir_of(root), FORGED_EPOCH, _one_more_attofil_for_the_reward_actor)
    reports = root / "reports"
    summary = replay_range(root, 1, HEAD, report_dir=reports, actors_dir=actors_dir)
    (bad,) = summary.failures
    assert bad.epoch == FORGED_EPOCH and bad.status is EpochStatus.MISMATCH
    assert bad.report is not None
    return bad.report


def test_a_mismatch_report_holds_the_tipsets_gas_traces(forged_report: Path) -> None:
    report = json.loads((forged_report / "report.json").read_text())
    assert report["gas_traces"] == GAS_TRACES_FILE and report["gas_traces_error"] is None
    summary_text = (forged_report / SUMMARY_FILE).read_text()
    assert summary_text.endswith(f"gas traces: {GAS_TRACES_FILE}\n")
    traces = json.loads((forged_report / GAS_TRACES_FILE).read_text())
    assert traces["same_result_as_untraced"] is True
    assert traces["state_root"] == report["epoch"]["computed_state_root"]
    messages = traces["messages"]
    assert [m["MsgCid"]["/"] for m in messages] == [g["message_cid"] for g in report["message_gas"]]
    expected_to = {KEYS.bob.address, KEYS.alice.address}
    assert {m["ExecutionTrace"]["Msg"]["To"] for m in messages} == {str(a) for a in expected_to}
    for message, gas_summary in zip(messages, report["message_gas"], strict=True):
        assert message["MsgRct"]["GasUsed"] == gas_summary["gas_used"] == message["ChargedGas"]
        top = message["ExecutionTrace"]
        assert top["MsgRct"]["ExitCode"] == 0 and top["Msg"]["Method"] == 0
        assert top["Msg"]["Value"] == str(FILECOIN_PRECISION)
        assert top["GasCharges"][0]["Name"] == "OnChainMessage"
        assert sum(charge["tg"] for charge in top["GasCharges"]) >= gas_summary["gas_used"]
    # the block reward and cron run actor code
    implicit = traces["implicit_messages"]
    assert [m["ExecutionTrace"]["Msg"]["To"] for m in implicit] == ["f02", "f03"]
    names = {
        charge["Name"]
        for m in messages + implicit
        for call in _calls(m["ExecutionTrace"])
        for charge in call["GasCharges"]
    }
    assert {"OnChainMessage", "OnValueTransfer", "OnMethodInvocation", "wasm_exec"} <= names
    assert {"OnBlockRead", "OnBlockOpenBase", "OnSyscall"} <= names
    assert all(m["MsgRct"]["ExitCode"] == 0 for m in implicit)
    assert max(len(list(_calls(m["ExecutionTrace"]))) for m in implicit) > 1


def _calls(call: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield call
    for sub in call["Subcalls"]:
        yield from _calls(sub)
