"""The WebAssembly actor invoker: real builtin actors on mainnet vectors, and hand-written
actors for each way an invocation can end (return, exit, trap, missing blocks, nested sends,
gas limits), under ref-fvm v2 (network version 17) and v3 (18).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
import wasmtime

from fvm.address import Address
from fvm.bundle import load_bundle
from fvm.call_manager import CallManager
from fvm.conformance.runner import bundle_source, machine_for_variant, raw_length
from fvm.conformance.vector import TestVector, load_vector
from fvm.engine import wasm_module as wm
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import ApplyKind, Executor
from fvm.gas.gas_tracker import OutOfGas
from fvm.invocation import Block, FatalError, InvocationResult
from fvm.kernel.default import KernelUnavailable, KernelV2, KernelV3
from fvm.kernel.syscalls import REFERENCE_RELEASES, syscall_handlers
from fvm.machine import FVM_V2, INIT_ACTOR_ID, BuiltinActors, Machine
from fvm.message import Message
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.receipt import ExitCode
from fvm.syscalls.abi import AbiGeneration, ErrorNumber, SyscallError, default_syscalls
from fvm.wasm_invoker import WasmActorInvoker
from store.cid import CID, DAG_CBOR, RAW

HYGGE_MULTISIG = (
    "extracted/0002-hygge-01/fil_10_multisig/Propose/Ok/ext-0002-fil_10_multisig-Propose-Ok-1.json"
)
SHARK_INIT_EXEC = "extracted/0001-shark-01/fil_9_init/Exec/Ok/ext-0001-fil_9_init-Exec-Ok-1.json"
PARAMS = Block(DAG_CBOR, b"\x82\x01\x02")
RECEIVER = -1  # in ``codes``: the vector's receiver
WASM_TYPES = {wm.I32: "i32", wm.I64: "i64"}
ResultT = TypeVar("ResultT")


@pytest.fixture(scope="module")
def invoker(tmp_path_factory: pytest.TempPathFactory) -> WasmActorInvoker:
    return WasmActorInvoker(AcceptAllProofVerifier(), tmp_path_factory.mktemp("modules"))


def on_stack(function: Callable[[], ResultT]) -> ResultT:
    return run_on_execution_stack(function)


# -- the syscall tables ------------------------------------------------------------------------


@pytest.mark.parametrize("generation", [AbiGeneration.V2, AbiGeneration.V3])
def test_each_generation_binds_exactly_the_syscalls_of_its_reference_release(
    generation: AbiGeneration,
) -> None:
    bound = default_syscalls(generation, REFERENCE_RELEASES[generation])
    assert set(syscall_handlers(generation)) == set(bound)
    assert (("crypto", "verify_seal") in bound) is (generation is AbiGeneration.V2)


@pytest.mark.parametrize(
    ("actors_version", "generation"), [(9, AbiGeneration.V2), (10, AbiGeneration.V3)]
)
def test_every_builtin_actor_import_has_a_handler_of_its_signature(
    actors_dir: Path, actors_version: int, generation: AbiGeneration
) -> None:
    bundle = load_bundle(actors_dir / f"v{actors_version}.tar.zst")
    bound = default_syscalls(generation, REFERENCE_RELEASES[generation])
    handlers = syscall_handlers(generation)
    codes = dict(bundle.blocks)
    imported = 0
    for name, code in bundle.actors.items():
        module = wm.decode_module(codes[code])
        for entry in module.imports:
            assert entry.kind == wm.KIND_FUNCTION, (name, entry)
            key = (entry.module, entry.name)
            assert key in handlers, (name, key)
            assert isinstance(entry.desc, int)
            func_type = module.types[entry.desc]
            syscall = bound[key]
            assert tuple(WASM_TYPES[t] for t in func_type.params) == syscall.wasm_params
            assert tuple(WASM_TYPES[t] for t in func_type.results) == syscall.wasm_results
            imported += 1
    assert imported > 100


# -- real actors -------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [SHARK_INIT_EXEC, HYGGE_MULTISIG])
def test_builtin_actors_reproduce_the_recorded_receipts_and_post_state(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker, relative: str
) -> None:
    vector = load_vector(vectors_dir / relative)
    machine = machine_for_variant(
        vector, vector.variants[0], vector.blockstore(), bundle_source(actors_dir)
    )
    executor = Executor(machine, invoker)
    for apply, expected in zip(vector.messages, vector.receipts, strict=True):
        message = Message.decode(apply.data)
        apply_message = partial(
            executor.execute_message, message, ApplyKind.EXPLICIT, raw_length(message, apply.data)
        )
        receipt = on_stack(apply_message).receipt
        assert (receipt.exit_code, receipt.return_data, receipt.gas_used) == (
            expected.exit_code,
            expected.return_data,
            expected.gas_used,
        )
    assert executor.flush() == vector.post_state_root


# -- hand-written actors -----------------------------------------------------------------------

V3_EXIT = '(import "vm" "exit" (func $exit (param i32 i32 i32 i32) (result i32)))'
V2_ABORT = '(import "vm" "abort" (func $abort (param i32 i32 i32) (result i32)))'
V3_SEND = (
    '(import "send" "send" (func $send (param i32 i32 i32 i64 i32 i64 i64 i64 i64) '
    "(result i32)))"
)


def actor(imports: str, body: str) -> bytes:
    """An actor module: memory holding "bad things" at 0 and f01's address at 20."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(module {imports}
              (memory (export "memory") 1)
              (data (i32.const 0) "bad things")
              (data (i32.const 20) "\\00\\01")
              (func (export "invoke") (param $p i32) (result i32) {body}))"""
        )
    )


def add_to_manifest(machine: Machine, code: CID) -> None:
    builtin = machine.builtin_actors
    entries = [(builtin.name_of(known) or "", known) for known in builtin.codes()]
    entries.append((f"test actor {len(entries) + 1}", code))
    machine.builtin_actors = BuiltinActors(
        builtin.data_cid, entries, machine.generation.required_actors
    )


def setup_call(
    vectors_dir: Path,
    actors_dir: Path,
    relative: str,
    codes: dict[int, bytes],
    gas_limit: int = 10_000_000_000,
) -> tuple[Machine, CallManager, int]:
    """The vector's machine with the code of some actors (by ID, or :data:`RECEIVER`) replaced.

    ref-fvm v2 runs only the code of the manifest's builtin actors, so there the new code is
    added to the manifest (as a bundle shipping it would). Returns the machine, a call manager
    for the vector's message and the receiver's ID.
    """
    vector: TestVector = load_vector(vectors_dir / relative)
    machine = machine_for_variant(
        vector, vector.variants[0], vector.blockstore(), bundle_source(actors_dir)
    )
    message = Message.decode(vector.messages[0].data)
    receiver = machine.state_tree.lookup_id(message.to)
    origin = machine.state_tree.lookup_id(message.from_)
    assert receiver is not None and origin is not None
    for actor_id, wasm in codes.items():
        target = receiver if actor_id < 0 else actor_id
        code = CID.hash_of(wasm, codec=RAW)
        machine.blockstore.put_keyed(code, wasm)
        current = machine.state_tree.get_actor(target)
        assert current is not None
        machine.state_tree.set_actor(target, replace(current, code=code))
        if machine.generation is FVM_V2:
            add_to_manifest(machine, code)
    call_manager = CallManager(
        machine,
        WasmActorInvoker(AcceptAllProofVerifier(), persist=False),
        gas_limit=gas_limit,
        origin=origin,
        origin_address=message.from_,
        receiver=receiver,
        receiver_address=message.to,
        nonce=message.sequence,
    )
    return machine, call_manager, receiver


def call(
    vectors_dir: Path,
    actors_dir: Path,
    relative: str,
    codes: dict[int, bytes],
    params: Block | None = PARAMS,
    gas_limit: int = 10_000_000_000,
) -> tuple[InvocationResult, CallManager]:
    _, call_manager, receiver = setup_call(vectors_dir, actors_dir, relative, codes, gas_limit)
    result = on_stack(
        lambda: call_manager.send(call_manager.origin, Address.new_id(receiver), 2, params, 0)
    )
    return result, call_manager


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("(local.get $p)", InvocationResult(ExitCode.OK, PARAMS)),
        ("(i32.const 0)", InvocationResult(ExitCode.OK, None)),
        ("(i32.const 7)", InvocationResult(ExitCode.SYS_MISSING_RETURN, None)),
        (
            "(drop (call $exit (i32.const 16) (local.get $p) (i32.const 0) (i32.const 10))) "
            "(i32.const 0)",
            InvocationResult(ExitCode.USR_ILLEGAL_ARGUMENT, PARAMS),
        ),
        (
            "(drop (call $exit (i32.const 0) (local.get $p) (i32.const 0) (i32.const 0))) "
            "(i32.const 0)",
            InvocationResult(ExitCode.OK, PARAMS),
        ),
        (
            "(drop (call $exit (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0))) "
            "(i32.const 0)",
            InvocationResult(ExitCode.SYS_ILLEGAL_EXIT_CODE, None),
        ),
        ("unreachable", InvocationResult(ExitCode.SYS_ILLEGAL_INSTRUCTION, None)),
    ],
)
def test_v3_invocations_end_as_ref_fvm_settles_them(
    vectors_dir: Path, actors_dir: Path, body: str, expected: InvocationResult
) -> None:
    wasm = actor(V3_EXIT, body)
    result, call_manager = call(vectors_dir, actors_dir, HYGGE_MULTISIG, {RECEIVER: wasm})
    assert result == expected
    if expected.exit_code == ExitCode.USR_ILLEGAL_ARGUMENT:
        assert call_manager.backtrace.frames[-1].message == "bad things"


def test_v3_exit_naming_a_missing_block_is_fatal(vectors_dir: Path, actors_dir: Path) -> None:
    body = "(drop (call $exit (i32.const 16) (i32.const 9) (i32.const 0) (i32.const 0))) "
    wasm = actor(V3_EXIT, body + "(i32.const 0)")
    with pytest.raises(FatalError, match="does not exist"):
        call(vectors_dir, actors_dir, HYGGE_MULTISIG, {RECEIVER: wasm})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("(local.get $p)", InvocationResult(ExitCode.OK, PARAMS)),
        (
            "(drop (call $abort (i32.const 17) (i32.const 0) (i32.const 10))) (i32.const 0)",
            InvocationResult(ExitCode.USR_NOT_FOUND, None),
        ),
        (
            "(drop (call $abort (i32.const 0) (i32.const 0) (i32.const 0))) (i32.const 0)",
            InvocationResult(ExitCode.SYS_ILLEGAL_EXIT_CODE, None),
        ),
    ],
)
def test_v2_invocations_abort_without_return_blocks(
    vectors_dir: Path, actors_dir: Path, body: str, expected: InvocationResult
) -> None:
    wasm = actor(V2_ABORT, body)
    result, _ = call(vectors_dir, actors_dir, SHARK_INIT_EXEC, {RECEIVER: wasm})
    assert result == expected


def test_v2_refuses_parameters_of_codecs_it_cannot_register(
    vectors_dir: Path, actors_dir: Path
) -> None:
    wasm = actor(V2_ABORT, "(local.get $p)")
    with pytest.raises(SyscallError) as raised:
        call(vectors_dir, actors_dir, SHARK_INIT_EXEC, {RECEIVER: wasm}, Block(RAW, b"raw"))
    assert raised.value.number is ErrorNumber.ILLEGAL_CODEC


def send_to_init(gas_limit: int) -> str:
    """Send the parameters to f01, method 2, with a gas limit; the result goes to 100."""
    return (
        "(drop (call $send (i32.const 100) (i32.const 20) (i32.const 2) (i64.const 2) "
        f"(local.get $p) (i64.const 0) (i64.const 0) (i64.const {gas_limit}) (i64.const 0)))"
    )


def test_v3_nested_send_hands_the_callee_return_block_to_the_caller(
    vectors_dir: Path, actors_dir: Path
) -> None:
    caller = actor(V3_SEND, send_to_init(-1) + "(i32.load (i32.const 104))")
    callee = actor("", "(local.get $p)")
    result, call_manager = call(
        vectors_dir, actors_dir, HYGGE_MULTISIG, {RECEIVER: caller, INIT_ACTOR_ID: callee}
    )
    assert result == InvocationResult(ExitCode.OK, PARAMS)
    assert call_manager.invocation_count == 2


def test_v3_a_send_gas_limit_turns_the_callees_exhaustion_into_an_exit_code(
    vectors_dir: Path, actors_dir: Path
) -> None:
    expect_out_of_gas = (
        "(if (i32.ne (i32.load (i32.const 100)) (i32.const 7)) (then unreachable)) (i32.const 0)"
    )
    caller = actor(V3_SEND, send_to_init(1_000_000) + expect_out_of_gas)
    callee = actor("", "(loop $forever (br $forever)) (i32.const 0)")
    result, call_manager = call(
        vectors_dir, actors_dir, HYGGE_MULTISIG, {RECEIVER: caller, INIT_ACTOR_ID: callee}
    )
    assert result == InvocationResult(ExitCode.OK, None)
    assert call_manager.gas_tracker.gas_used > 1_000_000 * 1000


def test_running_out_of_the_message_gas_aborts_the_call(
    vectors_dir: Path, actors_dir: Path
) -> None:
    wasm = actor("", "(loop $forever (br $forever)) (i32.const 0)")
    with pytest.raises(OutOfGas):
        call(vectors_dir, actors_dir, HYGGE_MULTISIG, {RECEIVER: wasm}, gas_limit=50_000_000)



def test_network_versions_without_a_kernel_here_are_refused_rather_than_failed() -> None:
    invoker = WasmActorInvoker(AcceptAllProofVerifier(), persist=False)
    with pytest.raises(KernelUnavailable, match="v4"):
        invoker.engine_for(21)
    assert invoker.engine_for(18).kernel_class is KernelV3
    assert invoker.engine_for(17).kernel_class is KernelV2
