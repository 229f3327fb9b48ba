"""Bad input leaves the executor as a receipt carrying the exit code ref-fvm gives, never as a
Python exception.

Every case goes through the public path: a machine built from a real mainnet conformance
vector's state (a network version 17 and an 18 send to a storage miner), the WebAssembly actor
invoker, and :meth:`~fvm.executor.Executor.execute_message` on the execution stack. The vector's
message is the template; each case changes its method, parameters, value or gas, or the state.

Which code may run. ref-fvm v2.12.1 (network versions 15-17) instantiates only modules its
engine preloaded, which are the builtin actors of the manifest (``DefaultMachine::new`` calls
``engine.preload(builtin_actor_codes)``; ``Engine::get_instance`` answers ``None`` for any other
code and ``send_resolved`` turns that into the fatal "actor code not found"). ref-fvm v3.13.3
(network version 18 on) loads any code CID it finds in the blockstore on a cache miss
(``Engine::instantiate``, vacant entry: ``blockstore.get`` then ``load_raw``). So a custom actor
runs through the public path at network version 18: its module is written as a RAW block and
an actor's code CID set to it. At network version 17 custom code can only ever give the fatal
receipt; the cases whose receipt does not depend on the code running are run at both.

Where the exit codes come from (ref-fvm v3.13.3 unless said otherwise):

* a fatal error (``ExecutionError::Fatal``) is ``SYS_ASSERTION_FAILED`` with the whole gas limit
  used (``DefaultExecutor::execute_message``, v2.12.1 and v3.13.3 alike): code that is not
  loadable wasm (``load_raw``: ``Module::validate`` with SIMD, threads, multi-value and
  multi-memory off, then instrumentation whose price list has no cost for ``ref.null``,
  ``ref.is_null`` and ``ref.func``, then compilation), a code CID without a block, a missing
  ``invoke`` export, and at network version 17 any code outside the manifest;
* a wasm trap is ``SYS_ILLEGAL_INSTRUCTION`` (``syscalls/error.rs``, ``From<Trap> for Abort``),
  and so is a failed instantiation (``Engine::instantiate``: "failed to instantiate module"),
  for example when the call stack's 2 GiB memory limit (``DefaultMemoryLimiter``) refuses the
  next instance's memory;
* running out of gas in wasm is ``SYS_OUT_OF_GAS`` with all gas used (the gas tracker sets the
  used gas to the limit); floats run, NaNs canonicalised (``cranelift_nan_canonicalization``);
* the call stack is at most ``max_call_depth`` (1024) deep: the send that would go deeper fails
  with the syscall error ``LimitExceeded`` (``DefaultCallManager::send``);
* ``memory.grow`` past the pooling allocator's 512 MiB per instance returns -1, and so does
  ``table.grow`` past its 20 000 elements; modules whose memory minimum exceeds 512 MiB, whose
  table exceeds 20 000 elements or that define two tables are refused when compiled (wasmtime
  36's pooling allocator validates every module it compiles), which is fatal;
* reference types are on in wasmtime 36, without GC types: ``externref`` anywhere is invalid
  (fatal), funcref values and the table instructions run; fvm-wasm-instrument 0.4.0 refuses
  typed ``select``, ``ref.null``, ``ref.is_null`` and ``ref.func`` (fatal);
* a receiver that does not exist is ``SYS_INVALID_RECEIVER`` (the send's ``NotFound``), a value
  the sender cannot pay ``SYS_INSUFFICIENT_FUNDS``, a negative value ``SYS_ASSERTION_FAILED``
  (the transfer's ``IllegalArgument``);
* builtin actors decide the rest: an unknown method is ``USR_UNHANDLED_MESSAGE`` and parameters
  that do not decode ``USR_SERIALIZATION`` (builtin-actors v9.0.3 ``invoke_method`` with
  ``cbor::deserialize_params``; v10.0.0 ``actor_dispatch!`` and ``dispatch``, where missing
  parameters are ``USR_ILLEGAL_ARGUMENT``).

A difference from ref-fvm v3.13.3 / v2.12.1 found later belongs here as a strict ``xfail``
naming it, so that it fails loudly once fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.address import Address
from fvm.conformance.runner import bundle_source, machine_for_variant, raw_length
from fvm.conformance.vector import load_vector
from fvm.engine.config import MAX_CALL_DEPTH
from fvm.engine.gas_rules import HYGGE_WASM_RULES, MILLIGAS_PER_GAS
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import ApplyKind, ApplyRet, Executor, MessageFailure
from fvm.gas.charge import round_up
from fvm.invocation import FatalCause, SyscallCause
from fvm.kernel.syscalls import REFERENCE_RELEASES
from fvm.machine import BURNT_FUNDS_ACTOR_ID, REWARD_ACTOR_ID, SYSTEM_ACTOR_ID, Machine
from fvm.message import Message
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.receipt import ExitCode
from fvm.state_tree import HAMT_BIT_WIDTH, INIT_ACTOR_ID, InitActorState, StateTree, hamt_layout
from fvm.syscalls.abi import AbiGeneration, ErrorNumber, Syscall, default_syscalls
from fvm.wasm_invoker import WasmActorInvoker
from store import dag_cbor
from store.blockstore import get_required, put
from store.buffered_blockstore import FlushError
from store.cid import CID, DAG_CBOR, RAW
from store.errors import CBORError
from store.hamt import Hamt

SHARK_MINER_SEND = (
    "extracted/0001-shark-01/fil_9_storageminer/Send/Ok/ext-0001-fil_9_storageminer-Send-Ok-1.json"
)
HYGGE_MINER_SEND = (
    "extracted/0002-hygge-01/fil_10_storageminer/Send/Ok/"
    "ext-0002-fil_10_storageminer-Send-Ok-1.json"
)
BOTH = pytest.mark.parametrize(
    "relative", [SHARK_MINER_SEND, HYGGE_MINER_SEND], ids=["nv17", "nv18"]
)
GAS_LIMIT = 1_000_000_000
METHOD_CHANGE_WORKER_ADDRESS = 3  # takes parameters in both miner actor versions
U64_MAX = (1 << 64) - 1
PAGE = 65536
MAX_INSTANCE_PAGES = (512 << 20) // PAGE  # the pooling allocator's memory per instance
MAX_TABLE_ELEMENTS = 20_000  # the pooling allocator's table elements per instance
CANONICAL_F32_NAN = 0x7FC0_0000
SYSCALL_ERROR_EXIT_BASE = 0x20  # test actors exit with this plus a send's error number
SYSTEM_CODE_EXIT_BASE = 0x100  # ... and with this plus a callee's system exit code


@pytest.fixture(scope="module")
def invoker(tmp_path_factory: pytest.TempPathFactory) -> WasmActorInvoker:
    """Actor code in WebAssembly, compiled modules cached in a folder of this module's own."""
    return WasmActorInvoker(AcceptAllProofVerifier(), tmp_path_factory.mktemp("modules"))


@dataclass
class Chain:
    """A vector's machine behind an executor, and the vector's message as the template."""

    machine: Machine
    executor: Executor
    message: Message

    @property
    def receiver(self) -> int:
        actor_id = self.machine.state_tree.lookup_id(self.message.to)
        assert actor_id is not None
        return actor_id

    def apply(self, **changes: Any) -> ApplyRet:
        """Apply the template with ``changes`` as an explicit message, on the deep stack."""
        message = self.message_with(**changes)
        apply = partial(
            self.executor.execute_message,
            message,
            ApplyKind.EXPLICIT,
            raw_length(message, message.encode()),
        )
        return run_on_execution_stack(apply)

    def install(self, wasm: bytes) -> CID:
        """Store ``wasm`` as a RAW block and make it the receiver's code."""
        code = CID.hash_of(wasm, codec=RAW)
        self.machine.blockstore.put_keyed(code, wasm)
        self.set_receiver_code(code)
        return code

    def set_receiver_code(self, code: CID) -> None:
        tree = self.machine.state_tree
        actor = tree.get_actor(self.receiver)
        assert actor is not None
        tree.set_actor(self.receiver, replace(actor, code=code))

    def message_with(self, **changes: Any) -> Message:
        return replace(self.message, **changes)

    def inclusion_gas(self, message: Message) -> int:
        charge = self.machine.context.price_list.on_chain_message(
            raw_length(message, message.encode())
        )
        return round_up(charge.total)


def chain_of(
    vectors_dir: Path, actors_dir: Path, relative: str, invoker: WasmActorInvoker
) -> Chain:
    """The vector's machine; the template calls method 2 with no value and a roomy limit."""
    vector = load_vector(vectors_dir / relative)
    machine = machine_for_variant(
        vector, vector.variants[0], vector.blockstore(), bundle_source(actors_dir)
    )
    message = replace(
        Message.decode(vector.messages[0].data), method_num=2, value=0, gas_limit=GAS_LIMIT
    )
    return Chain(machine, Executor(machine, invoker), message)


@pytest.fixture
def nv18(vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker) -> Chain:
    return chain_of(vectors_dir, actors_dir, HYGGE_MINER_SEND, invoker)


def frames(ret: ApplyRet) -> list[tuple[int, int, int]]:
    """The backtrace as ``(actor, method, exit code)``, innermost first."""
    assert isinstance(ret.failure_info, MessageFailure)
    return [(f.source, f.method, f.code) for f in ret.failure_info.backtrace.frames]


def assert_fatal(ret: ApplyRet, gas_limit: int = GAS_LIMIT) -> None:
    assert ret.receipt.exit_code == ExitCode.SYS_ASSERTION_FAILED
    assert ret.receipt.gas_used == gas_limit
    assert ret.receipt.return_data == b""
    assert isinstance(ret.failure_info, MessageFailure)
    assert isinstance(ret.failure_info.backtrace.cause, FatalCause)


# -- test actors -------------------------------------------------------------------------------

V3_IMPORTS = (
    '(import "vm" "exit" (func $exit (param i32 i32 i32 i32) (result i32)))'
    '(import "send" "send" (func $send (param i32 i32 i32 i64 i32 i64 i64 i64 i64) (result i32)))'
)


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{byte:02x}" for byte in data)


def exit_with(code: str) -> str:
    """Instructions that exit with the i32 ``code`` (an expression) and no return block."""
    return f"(drop (call $exit {code} (i32.const 0) (i32.const 0) (i32.const 0)))"


def actor_wasm(body: str, *, pages: int = 1, definitions: str = "", data: bytes = b"") -> bytes:
    """An actor module whose ``invoke`` runs ``body`` then returns no block."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(module {V3_IMPORTS}
              (memory (export "memory") {pages})
              (data (i32.const 0) "{wat_bytes(data)}")
              {definitions}
              (func (export "invoke") (param $params i32) (result i32) {body} (i32.const 0)))"""
        )
    )


def self_sending_actor(own_address: Address, pages: int = 1) -> bytes:
    """Sends method 2 to itself, then exits with what came back: a failed send as
    ``0x20 + error number``, a callee's system exit code as ``0x100 + code``, a user exit
    code as itself (the FVM refuses system exit codes from actors)."""
    address = own_address.to_bytes()
    send = (
        f"(call $send (i32.const 64) (i32.const 0) (i32.const {len(address)}) (i64.const 2) "
        "(i32.const 0) (i64.const 0) (i64.const 0) (i64.const -1) (i64.const 0))"
    )
    body = f"""
      (local $errno i32) (local $code i32)
      (local.set $errno {send})
      (if (local.get $errno)
        (then {exit_with(f"(i32.add (i32.const {SYSCALL_ERROR_EXIT_BASE}) (local.get $errno))")}))
      (local.set $code (i32.load (i32.const 64)))
      (if (i32.eqz (local.get $code)) (then (return (i32.const 0))))
      (if (i32.lt_u (local.get $code) (i32.const 16))
        (then (local.set $code
          (i32.add (local.get $code) (i32.const {SYSTEM_CODE_EXIT_BASE})))))
      {exit_with("(local.get $code)")}"""
    return actor_wasm(body, pages=pages, data=address)


def module_wasm(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


MEMORY = '(memory (export "memory") 1)'
INVOKE = '(func (export "invoke") (param i32) (result i32) (i32.const 0))'

# Module bytes that ref-fvm refuses to load: each is fatal.
UNLOADABLE_CODE = {
    "not wasm": b"not a wasm module",
    "truncated": b"\x00asm\x01\x00\x00\x00\x01\x05\x01",
    "simd": module_wasm(
        f'(module {MEMORY} (func (export "invoke") (param i32) (result i32) '
        "(drop (v128.const i64x2 0 0)) (i32.const 0)))"
    ),
    "threads": module_wasm(
        '(module (memory (export "memory") 1 1 shared) '
        '(func (export "invoke") (param i32) (result i32) (i32.atomic.load (i32.const 0))))'
    ),
    "multi-value": module_wasm(
        f'(module {MEMORY} (func (export "invoke") (param i32) (result i32) '
        "(block (result i32 i32) (i32.const 1) (i32.const 2)) (drop)))"
    ),
    "two memories": module_wasm(f"(module {MEMORY} (memory 1) {INVOKE})"),
    "ref.func": module_wasm(
        f"(module {MEMORY} (elem declare func $f) (func $f) "
        '(func (export "invoke") (param i32) (result i32) (drop (ref.func $f)) (i32.const 0)))'
    ),
    "typed select": module_wasm(
        f'(module {MEMORY} (func (export "invoke") (param i32) (result i32) '
        "(select (result i32) (i32.const 0) (i32.const 1) (local.get 0))))"
    ),
    "externref": module_wasm(f"(module {MEMORY} (table 1 externref) {INVOKE})"),
    "externref block": module_wasm(
        f'(module {MEMORY} (func (export "invoke") (param i32) (result i32) '
        "(drop (block (result externref) unreachable)) (i32.const 0)))"
    ),
    "two tables": module_wasm(f"(module {MEMORY} (table 1 funcref) (table 1 funcref) {INVOKE})"),
    "no invoke export": module_wasm(f"(module {MEMORY} (func))"),
    "unknown import": module_wasm(
        f'(module (import "vm" "no_such_syscall" (func (param i32) (result i32))) {MEMORY} '
        f"{INVOKE})"
    ),
}


# -- builtin actors: both generations ---------------------------------------------------------


@BOTH
@pytest.mark.parametrize("method", [99, U64_MAX])
def test_unknown_method_of_a_builtin_actor_is_an_unhandled_message(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker, relative: str, method: int
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    ret = chain.apply(method_num=method)
    assert ret.receipt.exit_code == ExitCode.USR_UNHANDLED_MESSAGE
    assert ret.receipt.return_data == b""
    assert chain.inclusion_gas(chain.message) < ret.receipt.gas_used < GAS_LIMIT
    assert frames(ret) == [(chain.receiver, method, ExitCode.USR_UNHANDLED_MESSAGE)]
    sender = chain.machine.state_tree.get_actor(chain.message.from_)
    assert sender is not None and sender.sequence == chain.message.sequence + 1


@BOTH
@pytest.mark.parametrize(
    "params",
    [b"\xff", b"\x01", b"\x82\x01", b"\x82\x41"],
    ids=["not-cbor", "int-not-tuple", "short-tuple", "truncated"],
)
def test_parameters_a_builtin_method_cannot_decode_are_a_serialization_error(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker, relative: str, params: bytes
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    ret = chain.apply(method_num=METHOD_CHANGE_WORKER_ADDRESS, params=params)
    assert ret.receipt.exit_code == ExitCode.USR_SERIALIZATION
    assert ret.receipt.gas_used < GAS_LIMIT
    assert frames(ret) == [
        (chain.receiver, METHOD_CHANGE_WORKER_ADDRESS, ExitCode.USR_SERIALIZATION)
    ]


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        # v9: cbor::deserialize_params of no bytes fails to decode.
        (SHARK_MINER_SEND, ExitCode.USR_SERIALIZATION),
        # v10: dispatch refuses a method called without the parameters it expects.
        (HYGGE_MINER_SEND, ExitCode.USR_ILLEGAL_ARGUMENT),
    ],
    ids=["nv17", "nv18"],
)
def test_missing_parameters_are_refused_as_each_actors_version_refuses_them(
    vectors_dir: Path,
    actors_dir: Path,
    invoker: WasmActorInvoker,
    relative: str,
    expected: ExitCode,
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    ret = chain.apply(method_num=METHOD_CHANGE_WORKER_ADDRESS, params=b"")
    assert ret.receipt.exit_code == expected


@BOTH
@pytest.mark.parametrize("method", [0, 2])
def test_message_to_an_id_address_without_an_actor_is_an_invalid_receiver(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker, relative: str, method: int
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    missing = chain.receiver
    chain.machine.state_tree.delete_actor(missing)
    changes: dict[str, Any] = {"to": Address.new_id(missing), "method_num": method, "value": 1}
    ret = chain.apply(**changes)
    assert ret.receipt.exit_code == ExitCode.SYS_INVALID_RECEIVER
    # The pre-resolved receiver counts as looked up (v3) and v2 does not meter state: only
    # the inclusion gas is used.
    assert ret.receipt.gas_used == chain.inclusion_gas(chain.message_with(**changes))
    assert isinstance(ret.failure_info, MessageFailure)
    assert ret.failure_info.backtrace.frames == []
    cause = ret.failure_info.backtrace.cause
    assert isinstance(cause, SyscallCause) and cause.error is ErrorNumber.NOT_FOUND
    assert chain.machine.state_tree.get_actor(missing) is None


@BOTH
@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1, ExitCode.SYS_ASSERTION_FAILED), (10**30, ExitCode.SYS_INSUFFICIENT_FUNDS)],
    ids=["negative", "beyond-balance"],
)
def test_a_value_the_sender_cannot_send_fails_the_send(
    vectors_dir: Path,
    actors_dir: Path,
    invoker: WasmActorInvoker,
    relative: str,
    value: int,
    expected: ExitCode,
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    receiver_before = chain.machine.state_tree.get_actor(chain.receiver)
    ret = chain.apply(method_num=0, value=value)
    assert ret.receipt.exit_code == expected
    assert ret.receipt.gas_used < GAS_LIMIT  # a send error, not a fatal one
    assert chain.machine.state_tree.get_actor(chain.receiver) == receiver_before


@BOTH
@pytest.mark.parametrize("code", UNLOADABLE_CODE.values(), ids=UNLOADABLE_CODE.keys())
def test_code_ref_fvm_cannot_load_is_fatal_and_uses_all_gas(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker, relative: str, code: bytes
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    chain.install(code)
    ret = chain.apply()
    assert_fatal(ret)
    assert frames(ret) == [(chain.receiver, 2, ExitCode.SYS_ASSERTION_FAILED)]


@BOTH
def test_a_code_cid_without_a_block_is_fatal_and_uses_all_gas(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker, relative: str
) -> None:
    chain = chain_of(vectors_dir, actors_dir, relative, invoker)
    chain.set_receiver_code(CID.hash_of(b"code nobody stored", codec=RAW))
    assert_fatal(chain.apply())


# -- custom actors at network version 18 --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "unreachable",
        "(drop (i32.div_u (i32.const 1) (i32.const 0)))",
        "(drop (i32.load (i32.const 70000)))",
        "(drop (call $recurse))",
    ],
    ids=["unreachable", "divide-by-zero", "out-of-bounds", "stack-overflow"],
)
def test_nv18_a_trapping_actor_exits_with_illegal_instruction(nv18: Chain, body: str) -> None:
    recurse = "(func $recurse (result i32) (call $recurse))"
    nv18.install(actor_wasm(body, definitions=recurse))
    ret = nv18.apply()
    assert ret.receipt.exit_code == ExitCode.SYS_ILLEGAL_INSTRUCTION
    assert nv18.inclusion_gas(nv18.message) < ret.receipt.gas_used < GAS_LIMIT
    assert frames(ret) == [(nv18.receiver, 2, ExitCode.SYS_ILLEGAL_INSTRUCTION)]


def test_nv18_an_endless_loop_runs_out_of_gas_using_the_whole_limit(nv18: Chain) -> None:
    nv18.install(actor_wasm("(loop $forever (br $forever))"))
    gas_limit = 100_000_000
    ret = nv18.apply(gas_limit=gas_limit)
    assert ret.receipt.exit_code == ExitCode.SYS_OUT_OF_GAS
    assert ret.receipt.gas_used == gas_limit
    assert frames(ret) == [(nv18.receiver, 2, ExitCode.SYS_OUT_OF_GAS)]


def test_nv18_floats_run_and_their_nans_are_canonical(nv18: Chain) -> None:
    """0/0 in f32 is a NaN whose bits the hardware chooses (x86: 0xffc00000); with NaN
    canonicalisation it is always 0x7fc00000. The actor exits with those bits."""
    zero_over_zero = "(f32.div (f32.load (i32.const 0)) (f32.load (i32.const 0)))"
    nv18.install(actor_wasm(exit_with(f"(i32.reinterpret_f32 {zero_over_zero})"), data=bytes(4)))
    assert nv18.apply().receipt.exit_code == CANONICAL_F32_NAN


def test_nv18_an_actor_sending_to_itself_stops_at_the_call_depth_limit(nv18: Chain) -> None:
    nv18.install(self_sending_actor(Address.new_id(nv18.receiver)))
    ret = nv18.apply(gas_limit=10_000_000_000)
    # The deepest actor's send failed with LimitExceeded; every actor above exited with that.
    assert ret.receipt.exit_code == SYSCALL_ERROR_EXIT_BASE + ErrorNumber.LIMIT_EXCEEDED
    assert len(frames(ret)) == MAX_CALL_DEPTH
    assert ret.receipt.gas_used < 10_000_000_000


@pytest.mark.parametrize(
    ("pages", "expected"),
    [
        (MAX_INSTANCE_PAGES - 1, SYSTEM_CODE_EXIT_BASE + 1),  # grown: the old size, 1 page
        (MAX_INSTANCE_PAGES, SYSTEM_CODE_EXIT_BASE - 1),  # refused: -1
    ],
    ids=["to-512-MiB", "beyond-512-MiB"],
)
def test_nv18_memory_grows_to_the_instance_limit_and_no_further(
    nv18: Chain, pages: int, expected: int
) -> None:
    grow = f"(memory.grow (i32.const {pages}))"
    nv18.install(actor_wasm(exit_with(f"(i32.add (i32.const {SYSTEM_CODE_EXIT_BASE}) {grow})")))
    ret = nv18.apply()
    assert ret.receipt.exit_code == expected
    # The pages were paid for whether or not the memory grew.
    page_price = PAGE * HYGGE_WASM_RULES.memory_fill_per_byte_cost // MILLIGAS_PER_GAS
    assert ret.receipt.gas_used > pages * page_price


def test_nv18_an_instance_beyond_the_call_stacks_memory_fails_to_instantiate(nv18: Chain) -> None:
    """Four nested instances of 512 MiB fill the call stack's 2 GiB; the fifth cannot be
    instantiated and ends with SYS_ILLEGAL_INSTRUCTION, which the fourth reports."""
    nv18.install(self_sending_actor(Address.new_id(nv18.receiver), pages=MAX_INSTANCE_PAGES))
    ret = nv18.apply(gas_limit=10_000_000_000)
    assert ret.receipt.exit_code == SYSTEM_CODE_EXIT_BASE + ExitCode.SYS_ILLEGAL_INSTRUCTION
    assert frames(ret)[0] == (nv18.receiver, 2, ExitCode.SYS_ILLEGAL_INSTRUCTION)
    assert len(frames(ret)) == 5


def test_nv18_a_table_within_the_pooling_limit_instantiates(nv18: Chain) -> None:
    table = f"(table {MAX_TABLE_ELEMENTS} funcref)"
    nv18.install(actor_wasm("", definitions=table))
    assert nv18.apply().receipt.exit_code == ExitCode.OK


@pytest.mark.parametrize(
    ("grow", "expected"),
    [(MAX_TABLE_ELEMENTS - 2, MAX_TABLE_ELEMENTS), (MAX_TABLE_ELEMENTS - 1, 2)],
    ids=["to-20000-elements", "beyond-20000-elements"],
)
def test_nv18_funcref_tables_grow_to_the_pooling_limit_and_no_further(
    nv18: Chain, grow: int, expected: int
) -> None:
    """Reference types are on in ref-fvm v3.13.3's wasmtime: the table instructions and
    funcref locals run (only ``ref.null``, ``ref.is_null``, ``ref.func`` and typed ``select``
    are refused, by the instrumentation). The actor grows its 2-element table by ``grow``
    with its first element and exits with the table's size."""
    body = f"""(local $f funcref)
      (local.set $f (table.get 0 (i32.const 0)))
      (drop (table.grow 0 (local.get $f) (i32.const {grow})))
      {exit_with(f"(i32.add (i32.const {SYSTEM_CODE_EXIT_BASE}) (table.size 0))")}"""
    nv18.install(actor_wasm(body, definitions="(table 2 funcref)"))
    ret = nv18.apply()
    assert ret.receipt.exit_code == SYSTEM_CODE_EXIT_BASE + expected
    # The elements were paid for whether or not the table grew.
    element_price = 8 * HYGGE_WASM_RULES.memory_fill_per_byte_cost // MILLIGAS_PER_GAS
    assert ret.receipt.gas_used > grow * element_price


@pytest.mark.parametrize(
    "definitions",
    [f"(table {MAX_TABLE_ELEMENTS + 1} funcref)", ""],
    ids=["table", "memory"],
)
def test_nv18_modules_beyond_the_instance_limits_are_refused_when_loaded(
    nv18: Chain, definitions: str
) -> None:
    pages = 1 if definitions else MAX_INSTANCE_PAGES + 1
    nv18.install(actor_wasm("", pages=pages, definitions=definitions))
    ret = nv18.apply()
    assert_fatal(ret)
    assert frames(ret) == [(nv18.receiver, 2, ExitCode.SYS_ASSERTION_FAILED)]
    assert isinstance(ret.failure_info, MessageFailure)
    cause = ret.failure_info.backtrace.cause
    assert isinstance(cause, FatalCause) and "which exceeds the limit of" in cause.error_msg


def test_nv17_code_outside_the_manifest_never_runs(
    vectors_dir: Path, actors_dir: Path, invoker: WasmActorInvoker
) -> None:
    """The same module runs at network version 18 (see the next test)."""
    chain = chain_of(vectors_dir, actors_dir, SHARK_MINER_SEND, invoker)
    code = chain.install(module_wasm(f"(module {MEMORY} {INVOKE})"))
    ret = chain.apply()
    assert_fatal(ret)
    assert frames(ret) == [(chain.receiver, 2, ExitCode.SYS_ASSERTION_FAILED)]
    assert isinstance(ret.failure_info, MessageFailure)
    cause = ret.failure_info.backtrace.cause
    assert isinstance(cause, FatalCause) and f"actor code {code} not found" in cause.error_msg


def test_nv18_code_outside_the_manifest_runs(nv18: Chain) -> None:
    nv18.install(module_wasm(f"(module {MEMORY} {INVOKE})"))
    ret = nv18.apply()
    assert ret.receipt.exit_code == ExitCode.OK
    assert nv18.inclusion_gas(nv18.message) < ret.receipt.gas_used < GAS_LIMIT


# -- random syscalls from a custom actor --------------------------------------------------------

FUZZED_SYSCALLS: tuple[Syscall, ...] = tuple(
    syscall
    for syscall in default_syscalls(AbiGeneration.V3, REFERENCE_RELEASES[AbiGeneration.V3]).values()
    if not syscall.diverges
)
UNKNOWN_SECP = Address.new_secp256k1(bytes([4]) + bytes(range(64)))
EMPTY_ARRAY = CID.hash_of(dag_cbor.encode([]), codec=DAG_CBOR)
# What the fuzzed actor's memory holds, at offsets the fuzzer likes to pass.
FUZZ_MEMORY = (
    (0, Address.new_id(INIT_ACTOR_ID).to_bytes()),
    (16, EMPTY_ARRAY.to_bytes()),
    (64, UNKNOWN_SECP.to_bytes()),
    (128, dag_cbor.encode([1, b"x", "y"])),
    (176, Address.new_delegated(10, bytes(20)).to_bytes()),
)
I32_ARGUMENTS = st.one_of(
    st.sampled_from(
        [0, 1, 2, 4, 16, 20, 21, 22, 32, 38, 64, 128, 176, 200, 256, 1024, PAGE - 1, PAGE, -1]
    ),
    st.integers(-(1 << 31), (1 << 31) - 1),
)
I64_ARGUMENTS = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, 0x12, 0x51, 0x55, 0x71, 0xB220, 10**18]),
    st.integers(-(1 << 63), (1 << 63) - 1),
)


@st.composite
def syscall_sequences(draw: st.DrawFn) -> list[tuple[Syscall, tuple[int, ...]]]:
    calls = []
    for _ in range(draw(st.integers(1, 25))):
        syscall = draw(st.sampled_from(FUZZED_SYSCALLS))
        arguments = tuple(
            draw(I32_ARGUMENTS if wasm_type == "i32" else I64_ARGUMENTS)
            for wasm_type in syscall.wasm_params
        )
        calls.append((syscall, arguments))
    return calls


def fuzzing_actor(calls: list[tuple[Syscall, tuple[int, ...]]]) -> bytes:
    """Imports every v3 syscall, makes ``calls`` ignoring their results and returns."""
    imports: list[str] = []
    names: dict[tuple[str, str], str] = {}
    for index, syscall in enumerate(FUZZED_SYSCALLS):
        name = names[syscall.key] = f"$syscall{index}"
        results = f"(result {' '.join(syscall.wasm_results)})" if syscall.wasm_results else ""
        imports.append(
            f'(import "{syscall.module}" "{syscall.name}" '
            f"(func {name} (param {' '.join(syscall.wasm_params)}) {results}))"
        )
    body: list[str] = []
    for syscall, arguments in calls:
        values = " ".join(
            f"({wasm_type}.const {value})"
            for wasm_type, value in zip(syscall.wasm_params, arguments, strict=True)
        )
        call = f"(call {names[syscall.key]} {values})"
        body.append(f"(drop {call})" if syscall.wasm_results else call)
    memory = bytearray(256)
    for offset, data in FUZZ_MEMORY:
        memory[offset : offset + len(data)] = data
    return module_wasm(
        f"""(module {" ".join(imports)}
          (memory (export "memory") 1)
          (data (i32.const 0) "{wat_bytes(bytes(memory))}")
          (func (export "invoke") (param i32) (result i32) {" ".join(body)} (i32.const 0)))"""
    )


def complete_state(chain: Chain, code: CID) -> Chain:
    """A new state tree holding only the actors a message needs (system, init with an address
    map of the sender only, reward, burnt funds, sender, receiver running ``code``), so that
    every actor or address absent from it is simply absent, where the vector's partial tree
    would fail with missing blocks."""
    old = chain.machine.state_tree
    store = chain.machine.blockstore
    sender = old.lookup_id(chain.message.from_)
    receiver = chain.receiver
    assert sender is not None
    tree = StateTree(store, version=old.version)
    init = old.get_actor(INIT_ACTOR_ID)
    assert init is not None
    init_state = InitActorState.from_cbor(dag_cbor.decode(get_required(store, init.state)))
    addresses = Hamt(store, bit_width=HAMT_BIT_WIDTH, version=hamt_layout(tree.version))
    addresses.set(chain.message.from_.to_bytes(), sender)
    new_init = InitActorState(addresses.flush(), init_state.next_id, init_state.network_name)
    tree.set_actor(
        INIT_ACTOR_ID, replace(init, state=put(store, dag_cbor.encode(new_init.to_cbor())))
    )
    for actor_id in (SYSTEM_ACTOR_ID, REWARD_ACTOR_ID, BURNT_FUNDS_ACTOR_ID, sender, receiver):
        actor = old.get_actor(actor_id)
        assert actor is not None
        tree.set_actor(actor_id, replace(actor, code=code) if actor_id == receiver else actor)
    context = replace(chain.machine.context, initial_state_root=tree.flush())
    machine = Machine.create(context, store, chain.machine.externs)
    return Chain(machine, Executor(machine, chain.executor.invoker), chain.message)


# ref-fvm v3.13.3's kernel treats a block it cannot find as a bug: ``block_open`` of a CID that
# is not in the store is fatal ("missing state"). Every other fatal error would be ours.
EXPECTED_FATAL_CAUSES = ("missing state: ",)


@pytest.fixture(scope="module")
def deep_stack_ready() -> None:
    """Raise the interpreter's recursion limit as message execution does, before hypothesis
    records it (it warns when a test changes the limit)."""
    run_on_execution_stack(lambda: None)


@settings(max_examples=25, deadline=None)
@given(calls=syscall_sequences())
def test_nv18_random_syscalls_from_an_actor_always_end_in_a_receipt(
    vectors_dir: Path,
    actors_dir: Path,
    invoker: WasmActorInvoker,
    deep_stack_ready: None,
    calls: list[tuple[Syscall, tuple[int, ...]]],
) -> None:
    chain = chain_of(vectors_dir, actors_dir, HYGGE_MINER_SEND, invoker)
    wasm = fuzzing_actor(calls)
    code = CID.hash_of(wasm, codec=RAW)
    chain.machine.blockstore.put_keyed(code, wasm)
    chain = complete_state(chain, code)
    receiver_before = chain.machine.state_tree.get_actor(chain.receiver)
    assert receiver_before is not None
    state_root_before = receiver_before.state
    gas_limit = 300_000_000
    ret = chain.apply(gas_limit=gas_limit)
    exit_code = ret.receipt.exit_code
    assert exit_code in (ExitCode.OK, ExitCode.SYS_OUT_OF_GAS, ExitCode.SYS_ASSERTION_FAILED)
    if exit_code != ExitCode.OK:
        assert ret.receipt.gas_used == gas_limit
    if exit_code == ExitCode.SYS_ASSERTION_FAILED:
        assert isinstance(ret.failure_info, MessageFailure)
        cause = ret.failure_info.backtrace.cause
        assert isinstance(cause, FatalCause)
        assert cause.error_msg.startswith(EXPECTED_FATAL_CAUSES), cause.error_msg
    sender = chain.machine.state_tree.get_actor(chain.message.from_)
    assert sender is not None and sender.sequence == chain.message.sequence + 1
    assert not chain.machine.state_tree.in_transaction
    receiver = chain.machine.state_tree.get_actor(chain.receiver)
    assert receiver is not None
    try:
        chain.executor.flush()
    except (FlushError, CBORError):
        # ref-fvm's flush (``take_reachable``) fails as well when the actor made its state
        # root a CID of a codec or hash the FVM never stores, or DAG-CBOR without scannable
        # links: only ``self.set_root`` can put such a root in the tree.
        assert receiver.state != state_root_before
