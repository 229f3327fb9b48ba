"""The actor runtime: syscall binding, the gas bridge, traps and limits, as ref-fvm runs them.

Hand-written modules exercise each rule; the real account actor checks that a builtin actor
links against the full syscall table and runs until its first syscalls.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from fvm.bundle import load_bundle
from fvm.engine import engine_config_for_network_version
from fvm.engine.config import EngineConfig
from fvm.engine.module_cache import CompiledModule, ModuleCache, ModuleLoadError
from fvm.engine.runtime import (
    AbortExit,
    Exited,
    Failed,
    FatalError,
    Invocation,
    InvocationOutcome,
    MemoryLimiter,
    RanOutOfGas,
    Returned,
    Runtime,
    SyscallContext,
    SyscallHandler,
    run_on_execution_stack,
)
from fvm.gas.charge import GasCharge
from fvm.gas.gas_tracker import GasTracker
from fvm.gas.price_list import price_list_for
from fvm.receipt import ExitCode
from fvm.syscalls.abi import (
    RANDOMNESS,
    SEND,
    AbiGeneration,
    ErrorNumber,
    SyscallError,
    default_syscalls,
)
from store.cid import CID, RAW

HYGGE = engine_config_for_network_version(18)
SKYR = engine_config_for_network_version(17)
PAGE = 65536
ON_SYSCALL = 14_000 * 1000  # Skyr and Hygge: 14000 gas per syscall, in milligas
MEMORY_BYTE = 400  # Hygge memory_fill_per_byte_cost, milligas
LOOP_ITERATION = 8 * 4000  # 8 instructions at 4 gas each (see the loop in GAS_BETWEEN_CALLS)
Context = SyscallContext[None]


@pytest.fixture(scope="module")
def hygge_modules() -> ModuleCache:
    return ModuleCache(HYGGE, persist=False)


@pytest.fixture(scope="module")
def skyr_modules() -> ModuleCache:
    return ModuleCache(SKYR, persist=False)


def compile_wat(modules: ModuleCache, wat: str) -> CompiledModule:
    wasm = bytes(wasmtime.wat2wasm(wat))
    return modules.get(CID.hash_of(wasm, codec=RAW), wasm)


def network_version(config: EngineConfig, generation: AbiGeneration) -> int:
    if generation is AbiGeneration.V4:
        return 21
    return 17 if config is SKYR else 18


def run(
    modules: ModuleCache,
    wat: str,
    handlers: dict[tuple[str, str], SyscallHandler],
    params: int = 0,
    *,
    generation: AbiGeneration | None = None,
    gas_limit: int = 10**15,
    limiter: MemoryLimiter | None = None,
) -> tuple[InvocationOutcome, GasTracker, Invocation[None]]:
    if generation is None:
        generation = AbiGeneration.V2 if modules.config is SKYR else AbiGeneration.V3
    runtime: Runtime[None] = Runtime(modules, generation, handlers)
    gas = GasTracker(gas_limit, tracing=True)
    if limiter is None:
        limiter = MemoryLimiter.for_engine(modules.config)
    prices = price_list_for(network_version(modules.config, generation))
    invocation = runtime.new_invocation(None, gas, prices, limiter)
    outcome = invocation.run(compile_wat(modules, wat), params)
    return outcome, gas, invocation


def trace(gas: GasTracker) -> list[tuple[str, int]]:
    return [(charge.name, charge.compute_gas + charge.other_gas) for charge in gas.drain_trace()]


# -- arguments, results and error numbers --------------------------------------------------------

SEND_AND_RANDOMNESS = """
(module
  (import "send" "send"
    (func $send (param i32 i32 i32 i64 i32 i64 i64 i64 i64) (result i32)))
  (import "rand" "get_chain_randomness"
    (func $rand (param i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "invoke") (param $params i32) (result i32)
    (call $send (i32.const 256) (i32.const -16) (i32.const 3) (i64.const -1) (local.get $params)
      (i64.const 0x0123456789abcdef) (i64.const -2) (i64.const 5) (i64.const 1))
    (call $rand (i32.const 512) (i64.const -1) (i64.const -5) (i32.const 7) (i32.const 8))
    (i32.add)))
"""


def test_arguments_arrive_with_their_declared_signedness_and_results_are_written_out(
    hygge_modules: ModuleCache,
) -> None:
    received: list[tuple[int, ...]] = []

    def send(ctx: Context, *args: int) -> tuple[int, int, int, int]:
        received.append(args)
        return (16, 7, 0x71, 300)

    def randomness(ctx: Context, *args: int) -> bytes:
        received.append(args)
        return bytes(range(32))

    outcome, _, invocation = run(
        hygge_modules,
        SEND_AND_RANDOMNESS,
        {("send", "send"): send, ("rand", "get_chain_randomness"): randomness},
        params=9,
    )
    assert outcome == Returned(0)
    assert received == [
        ((1 << 32) - 16, 3, (1 << 64) - 1, 9, 0x0123456789ABCDEF, (1 << 64) - 2, 5, 1),
        (-1, -5, 7, 8),
    ]
    memory = invocation.memory
    assert memory is not None
    assert SEND.unpack(memory.read(256, SEND.size)) == (16, 7, 0x71, 300)
    assert RANDOMNESS.unpack(memory.read(512, 32)) == bytes(range(32))


def test_syscall_errors_reach_the_actor_as_error_numbers_and_nothing_is_written(
    hygge_modules: ModuleCache,
) -> None:
    def send(ctx: Context, *args: int) -> object:
        raise SyscallError(ErrorNumber.NOT_FOUND, "no such actor")

    def randomness(ctx: Context, *args: int) -> object:
        raise SyscallError(ErrorNumber.LIMIT_EXCEEDED, "lookback too far")

    outcome, _, invocation = run(
        hygge_modules,
        SEND_AND_RANDOMNESS,
        {("send", "send"): send, ("rand", "get_chain_randomness"): randomness},
    )
    assert outcome == Returned(ErrorNumber.NOT_FOUND + ErrorNumber.LIMIT_EXCEEDED)
    assert invocation.memory is not None and invocation.last_error is not None
    assert invocation.memory.read(256, SEND.size) == bytes(SEND.size)
    assert (invocation.last_error.name, invocation.last_error.number) == (
        "get_chain_randomness",
        ErrorNumber.LIMIT_EXCEEDED,
    )


OUT_POINTER = """
(module
  (import "debug" "enabled" (func $enabled (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "invoke") (param $out i32) (result i32)
    (call $enabled (local.get $out))
    (call $enabled (i32.const 16))
    (drop)))
"""


def test_an_out_pointer_without_room_for_the_result_is_an_illegal_argument(
    hygge_modules: ModuleCache,
) -> None:
    calls: list[int] = []

    def enabled(ctx: Context) -> int:
        calls.append(1)
        return 0

    outcome, _, _ = run(hygge_modules, OUT_POINTER, {("debug", "enabled"): enabled}, PAGE - 3)
    assert outcome == Returned(ErrorNumber.ILLEGAL_ARGUMENT)
    assert calls == [1]  # only the second call reached the handler
    outcome, _, _ = run(hygge_modules, OUT_POINTER, {("debug", "enabled"): enabled}, PAGE - 4)
    assert outcome == Returned(0)


@pytest.mark.parametrize("modules_fixture", ["skyr_modules", "hygge_modules"])
def test_a_refused_out_pointer_leaves_the_gas_global_stale_as_in_ref_fvm(
    modules_fixture: str, request: pytest.FixtureRequest
) -> None:
    """ref-fvm returns before ``update_gas_available``. From v3 the next syscall then charges
    the wasm gas spent before the refused one a second time; v2 charged from the global's
    last value, so nothing changes there."""
    modules: ModuleCache = request.getfixturevalue(modules_fixture)
    handlers: dict[tuple[str, str], SyscallHandler] = {("debug", "enabled"): lambda ctx: 0}
    _, fine, _ = run(modules, OUT_POINTER, handlers, 16)
    charges = trace(fine)
    # What the first syscall charged for the wasm before it.
    first_exec = charges[charges.index(next(c for c in charges if c[0] == "OnSyscall")) - 1][1]
    _, refused, _ = run(modules, OUT_POINTER, handlers, 0xFFFF_FFF0)
    assert first_exec > 0
    expected = 0 if modules.config is SKYR else first_exec
    assert refused.gas_used - fine.gas_used == expected


# -- the gas bridge ------------------------------------------------------------------------------

GAS_BETWEEN_CALLS = """
(module
  (import "debug" "enabled" (func $enabled (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "invoke") (param $n i32) (result i32)
    (drop (call $enabled (i32.const 0)))
    (block $done (loop $again
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $again)))
    (drop (call $enabled (i32.const 8)))
    (i32.const 0)))
"""


@pytest.mark.parametrize("modules_fixture", ["skyr_modules", "hygge_modules"])
def test_wasm_gas_is_charged_at_each_syscall_exactly_as_metered(
    modules_fixture: str, request: pytest.FixtureRequest
) -> None:
    modules: ModuleCache = request.getfixturevalue(modules_fixture)
    handlers: dict[tuple[str, str], SyscallHandler] = {("debug", "enabled"): lambda ctx: 0}
    traces = {}
    for iterations in (0, 1, 25):
        outcome, gas, _ = run(modules, GAS_BETWEEN_CALLS, handlers, iterations)
        assert outcome == Returned(0)
        charges = trace(gas)
        assert sum(amount for _, amount in charges) == gas.gas_used
        traces[iterations] = charges
    names = [name for name, _ in traces[0]]
    execution = ["wasm_exec", "OnSyscall", "wasm_exec", "OnSyscall", "wasm_exec"]
    if modules.config is SKYR:
        assert names == execution
        instantiation = 0
    else:
        # Charged before instantiating, then what instantiating ran (nothing here).
        assert names == ["wasm_memory_init", "wasm_exec", *execution]
        assert traces[0][:2] == [("wasm_memory_init", PAGE * MEMORY_BYTE), ("wasm_exec", 0)]
        instantiation = 1
    syscall_charges = [amount for name, amount in traces[25] if name == "OnSyscall"]
    assert syscall_charges == [ON_SYSCALL, ON_SYSCALL]
    between = {
        n: [amount for name, amount in charges if name == "wasm_exec"][1 + instantiation]
        for n, charges in traces.items()
    }
    assert between[1] - between[0] == LOOP_ITERATION
    assert between[25] - between[0] == 25 * LOOP_ITERATION
    first = {
        n: next(amount for name, amount in charges if name == "wasm_exec")
        for n, charges in traces.items()
    }
    assert first[0] == first[25]


@pytest.mark.parametrize("generation", [AbiGeneration.V3, AbiGeneration.V4])
def test_ref_fvm_v3_and_v4_set_and_charge_gas_around_instantiation(
    hygge_modules: ModuleCache, generation: AbiGeneration
) -> None:
    handlers: dict[tuple[str, str], SyscallHandler] = {("debug", "enabled"): lambda ctx: 0}
    outcome, gas, _ = run(hygge_modules, GAS_BETWEEN_CALLS, handlers, 3, generation=generation)
    assert outcome == Returned(0)
    charges = trace(gas)
    assert [name for name, _ in charges] == [
        "wasm_memory_init", "wasm_exec", "wasm_exec", "OnSyscall", "wasm_exec", "OnSyscall",
        "wasm_exec",
    ]
    assert charges[1] == ("wasm_exec", 0)  # instantiation runs no wasm


RUNAWAY = """
(module
  (memory (export "memory") 1)
  (func (export "invoke") (param i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
"""


@pytest.mark.parametrize("modules_fixture", ["skyr_modules", "hygge_modules"])
def test_a_runaway_loop_stops_when_the_gas_runs_out(
    modules_fixture: str, request: pytest.FixtureRequest
) -> None:
    modules: ModuleCache = request.getfixturevalue(modules_fixture)
    limit = 50_000_000_000  # 50 million gas, wasm runs out after about 6 million iterations
    outcome, gas, _ = run(modules, RUNAWAY, {}, gas_limit=limit)
    assert isinstance(outcome, RanOutOfGas)
    assert gas.gas_used == limit
    assert trace(gas)[-1][0] == "wasm_exec"


def test_running_out_of_gas_in_the_syscall_charge_aborts(hygge_modules: ModuleCache) -> None:
    limit = PAGE * MEMORY_BYTE + ON_SYSCALL
    outcome, gas, _ = run(
        hygge_modules, GAS_BETWEEN_CALLS, {("debug", "enabled"): lambda ctx: 0}, gas_limit=limit
    )
    assert isinstance(outcome, RanOutOfGas)
    assert gas.gas_used == limit
    # As in ref-fvm, execution gas is charged once more after the trap (and fails again).
    assert [name for name, _ in trace(gas)] == [
        "wasm_memory_init", "wasm_exec", "wasm_exec", "OnSyscall", "wasm_exec"
    ]


MEMORY_GROWTH = """
(module
  (import "debug" "enabled" (func $enabled (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "invoke") (param $pages i32) (result i32)
    (drop (call $enabled (i32.const 0)))
    (memory.grow (local.get $pages))))
"""


def test_memory_growth_is_charged_as_wasm_memory_grow(hygge_modules: ModuleCache) -> None:
    """The grow's per-page price is charged just before it, the function's other instructions
    when it starts: the last execution charge is exactly the pages' price, which ref-fvm books
    as ``wasm_memory_grow``."""
    outcome, gas, _ = run(hygge_modules, MEMORY_GROWTH, {("debug", "enabled"): lambda ctx: 0}, 2)
    assert outcome == Returned(1)  # the old size, in pages
    charges = trace(gas)
    assert [name for name, _ in charges] == [
        "wasm_memory_init", "wasm_exec", "wasm_exec", "OnSyscall", "wasm_exec",
        "wasm_memory_grow",
    ]
    assert charges[-2:] == [("wasm_exec", 0), ("wasm_memory_grow", 2 * PAGE * MEMORY_BYTE)]


def test_memory_cannot_grow_past_the_call_stack_limit(hygge_modules: ModuleCache) -> None:
    handlers: dict[tuple[str, str], SyscallHandler] = {("debug", "enabled"): lambda ctx: 0}
    limiter = MemoryLimiter(max_memory_bytes=4 * PAGE)
    outcome, _, _ = run(hygge_modules, MEMORY_GROWTH, handlers, 3, limiter=limiter)
    assert outcome == Returned(1)
    assert limiter.memory_used() == 4 * PAGE
    limiter = MemoryLimiter(max_memory_bytes=4 * PAGE)
    outcome, gas, _ = run(hygge_modules, MEMORY_GROWTH, handlers, 4, limiter=limiter)
    assert outcome == Returned(0xFFFF_FFFF)  # memory.grow answered -1
    assert limiter.memory_used() == PAGE
    # The pages were paid for although the memory did not grow.
    assert trace(gas)[-1] == ("wasm_exec", 4 * PAGE * MEMORY_BYTE)


@pytest.mark.parametrize(
    ("definitions", "refusal"),
    [
        ('(memory (export "memory") 8193)', "memory index 0 has a minimum byte size of 536936448"),
        ('(memory (export "memory") 1) (table 20001 funcref)', "table index 0 has a minimum"),
    ],
    ids=["memory-above-512-MiB", "table-above-20000-elements"],
)
def test_v3_modules_beyond_the_pooling_allocators_limits_do_not_load(
    hygge_modules: ModuleCache, definitions: str, refusal: str
) -> None:
    """wasmtime's pooling allocator validates every module ref-fvm v3 compiles."""
    wat = f'(module {definitions} (func (export "invoke") (param i32) (result i32) (i32.const 0)))'
    with pytest.raises(ModuleLoadError, match=refusal):
        compile_wat(hygge_modules, wat)


def test_v3_modules_at_the_pooling_allocators_limits_load(hygge_modules: ModuleCache) -> None:
    wat = """(module (memory (export "memory") 8192) (table 20000 funcref)
      (func (export "invoke") (param i32) (result i32) (i32.const 0)))"""
    compiled = compile_wat(hygge_modules, wat)
    assert (compiled.layout.memory_pages, compiled.layout.table_elements) == (8192, 20000)


def test_v2_allocates_on_demand_without_the_pooling_limits(skyr_modules: ModuleCache) -> None:
    wat = """(module (memory (export "memory") 8193) (table 20001 funcref)
      (func (export "invoke") (param i32) (result i32) (i32.const 0)))"""
    compiled = compile_wat(skyr_modules, wat)
    assert (compiled.layout.memory_pages, compiled.layout.table_elements) == (8193, 20001)


# -- traps and aborts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("(unreachable)", "wasm `unreachable` instruction executed"),
        ("(drop (i32.div_u (i32.const 1) (local.get 0)))", "integer divide by zero"),
        ("(drop (i32.load (i32.const 70000)))", "out of bounds memory access"),
        ("(drop (call $deep (i32.const 0)))", "wasm `unreachable` instruction executed"),
    ],
)
@pytest.mark.parametrize("modules_fixture", ["skyr_modules", "hygge_modules"])
def test_traps_exit_with_illegal_instruction(
    body: str, message: str, modules_fixture: str, request: pytest.FixtureRequest
) -> None:
    modules: ModuleCache = request.getfixturevalue(modules_fixture)
    wat = f"""
    (module
      (memory (export "memory") 1)
      (func $deep (param i32) (result i32)
        (call $deep (i32.add (local.get 0) (i32.const 1))))
      (func (export "invoke") (param i32) (result i32)
        {body}
        (i32.const 0)))
    """
    outcome, _, _ = run(modules, wat, {})
    assert outcome == Exited(ExitCode.SYS_ILLEGAL_INSTRUCTION, message, 0)


EXIT = """
(module
  (import "vm" "exit" (func $exit (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "not payable")
  (func (export "invoke") (param i32) (result i32)
    (drop (call $exit (i32.const 26) (i32.const 3) (i32.const 32) (i32.const 11)))
    (i32.const 99)))
"""


def test_an_exit_syscall_ends_the_invocation_with_its_code_message_and_block(
    hygge_modules: ModuleCache,
) -> None:
    def exit_(ctx: Context, code: int, block: int, offset: int, length: int) -> object:
        raise AbortExit(code, ctx.memory.read(offset, length).decode(), block)

    outcome, gas, _ = run(hygge_modules, EXIT, {("vm", "exit"): exit_})
    assert outcome == Exited(26, "not payable", 3)
    # The gas global is refreshed after the aborting syscall, so the final charge is zero.
    charges = trace(gas)
    assert [name for name, _ in charges] == [
        "wasm_memory_init", "wasm_exec", "wasm_exec", "OnSyscall", "wasm_exec"
    ]
    assert charges[-1] == ("wasm_exec", 0)


def test_an_unexpected_handler_exception_is_fatal(hygge_modules: ModuleCache) -> None:
    def broken(ctx: Context, *args: int) -> object:
        raise KeyError("bug in the kernel")

    outcome, _, _ = run(hygge_modules, EXIT, {("vm", "exit"): broken})
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, KeyError)


@pytest.mark.parametrize(
    "import_",
    [
        '(import "vm" "no_such_syscall" (func (param i32) (result i32)))',
        '(import "vm" "exit" (func (param i32) (result i32)))',
        '(import "debug" "enabled" (func (param i32) (result i32)))',  # bound to nothing
    ],
)
def test_modules_that_do_not_link_fail_fatally(hygge_modules: ModuleCache, import_: str) -> None:
    wat = RUNAWAY.replace("(memory", import_ + " (memory", 1)
    outcome, gas, _ = run(hygge_modules, wat, {("vm", "exit"): lambda ctx, *args: None})
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, FatalError)
    assert [name for name, _ in trace(gas)] == ["wasm_memory_init"]


@pytest.mark.parametrize("modules_fixture", ["skyr_modules", "hygge_modules"])
def test_a_module_without_memory_export_fails_fatally(
    modules_fixture: str, request: pytest.FixtureRequest
) -> None:
    modules: ModuleCache = request.getfixturevalue(modules_fixture)
    wat = RUNAWAY.replace('(memory (export "memory") 1)', "(memory 1)")
    outcome, gas, _ = run(modules, wat, {})
    assert isinstance(outcome, Failed)
    assert trace(gas) == []


# -- nesting -------------------------------------------------------------------------------------

NESTED = """
(module
  (import "send" "send"
    (func $send (param i32 i32 i32 i64 i32 i64 i64 i64 i64) (result i32)))
  (memory (export "memory") 2)
  (func (export "invoke") (param $depth i32) (result i32)
    (drop (call $send (i32.const 64) (i32.const 0) (i32.const 0) (i64.const 0)
      (local.get $depth) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0)))
    (i32.add (i32.load (i32.const 68)) (i32.const 1000))))
"""


def test_nested_invocations_route_syscalls_to_the_innermost_actor(
    hygge_modules: ModuleCache,
) -> None:
    gas = GasTracker(10**15)
    limiter = MemoryLimiter(2 << 30)
    prices = price_list_for(18)
    module = compile_wat(hygge_modules, NESTED)
    depths: list[int] = []
    peak: list[int] = []

    def send(ctx: Context, *args: int) -> tuple[int, int, int, int]:
        depth = args[3]
        depths.append(depth)
        if depth == 5:
            peak.append(limiter.memory_used())
            return (0, 7, 0, 0)
        with limiter.stack_frame():
            outcome = runtime.invoke(module, depth + 1, None, gas, prices, limiter)
        assert isinstance(outcome, Returned)
        return (0, outcome.block_id, 0, 0)

    runtime: Runtime[None] = Runtime(hygge_modules, AbiGeneration.V3, {("send", "send"): send})
    outcome = runtime.invoke(module, 0, None, gas, prices, limiter)
    assert outcome == Returned(7 + 6 * 1000)
    assert depths == [0, 1, 2, 3, 4, 5]
    assert peak == [6 * 2 * PAGE]
    assert limiter.memory_used() == 2 * PAGE  # the outer instance, still accounted


def test_1024_nested_calls_fit_on_the_execution_stack(hygge_modules: ModuleCache) -> None:
    """ref-fvm's maximum call depth, each level an actor calling the next through a syscall."""
    gas = GasTracker(10**15)
    limiter = MemoryLimiter(2 << 30)
    prices = price_list_for(18)
    module = compile_wat(hygge_modules, NESTED)
    depth_limit = HYGGE.max_call_depth

    def send(ctx: Context, *args: int) -> tuple[int, int, int, int]:
        depth = args[3]
        if depth == depth_limit:
            return (0, 0, 0, 0)
        with limiter.stack_frame():
            outcome = runtime.invoke(module, depth + 1, None, gas, prices, limiter)
        assert isinstance(outcome, Returned), outcome
        return (0, outcome.block_id, 0, 0)

    runtime: Runtime[None] = Runtime(hygge_modules, AbiGeneration.V3, {("send", "send"): send})
    outcome = run_on_execution_stack(
        lambda: runtime.invoke(module, 0, None, gas, prices, limiter)
    )
    assert outcome == Returned((depth_limit + 1) * 1000)


# -- real actors ---------------------------------------------------------------------------------


def _recording_stubs(
    generation: AbiGeneration, calls: list[tuple[str, str]]
) -> dict[tuple[str, str], SyscallHandler]:
    def stub(module: str, name: str) -> Callable[..., object]:
        syscall = default_syscalls(generation)[(module, name)]

        def handler(ctx: Context, *args: int) -> object:
            calls.append((module, name))
            if syscall.diverges:
                raise AbortExit(args[0], "exit", NO_BLOCK)
            if syscall.result is None:
                return None
            return syscall.result.unpack(bytes(syscall.result.size))

        return handler

    return {key: stub(*key) for key in default_syscalls(generation)}


NO_BLOCK = 0


@pytest.mark.parametrize(
    ("actors_version", "config", "generation", "context_syscall"),
    [
        (9, SKYR, AbiGeneration.V2, ("vm", "context")),
        (10, HYGGE, AbiGeneration.V3, ("vm", "message_context")),
    ],
)
def test_the_account_actor_links_the_full_table_and_reaches_its_first_syscalls(
    actors_dir: Path,
    tmp_path: Path,
    actors_version: int,
    config: EngineConfig,
    generation: AbiGeneration,
    context_syscall: tuple[str, str],
) -> None:
    bundle = load_bundle(actors_dir / f"v{actors_version}.tar.zst")
    code = bundle.actors["account"]
    modules = ModuleCache(config, tmp_path)
    compiled = modules.get(code, dict(bundle.blocks)[code])
    calls: list[tuple[str, str]] = []
    runtime: Runtime[None] = Runtime(modules, generation, _recording_stubs(generation, calls))
    gas = GasTracker(10**13, tracing=True)
    network = 17 if config is SKYR else 18
    outcome = runtime.invoke(
        compiled, 1, None, gas, price_list_for(network), MemoryLimiter.for_engine(config)
    )
    assert calls[:2] == [("debug", "enabled"), context_syscall]
    # Zero-filled answers make the actor give up; it says so through its exit syscall.
    assert calls[-1] in {("vm", "exit"), ("vm", "abort")}
    assert isinstance(outcome, Exited)
    charges = gas.drain_trace()
    assert sum(charge.total for charge in charges) == gas.gas_used
    if config is HYGGE:
        assert charges[0] == GasCharge("wasm_memory_init", 17 * PAGE * MEMORY_BYTE, 0)
    assert [charge.name for charge in charges].count("OnSyscall") == len(calls)


def test_a_runtime_refuses_handlers_for_syscalls_of_another_generation(
    hygge_modules: ModuleCache,
) -> None:
    with pytest.raises(Exception, match="not a v3 syscall"):
        Runtime(hygge_modules, AbiGeneration.V3, {("vm", "abort"): lambda ctx, *a: None})
    with pytest.raises(Exception, match="cannot run"):
        Runtime(hygge_modules, AbiGeneration.V2, {})


START_FUNCTION = """
(module
  (import "vm" "exit" (func $exit (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $start (drop (call $exit (i32.const 30) (i32.const 0) (i32.const 0) (i32.const 0))))
  (start $start)
  (func (export "invoke") (param i32) (result i32) (i32.const 0)))
"""


def _exit_with_code(ctx: Context, code: int, block: int, offset: int, length: int) -> object:
    ctx.memory.read(offset, length)  # an empty message reads from the placeholder memory
    raise AbortExit(code, "exit from start", block)


START_WITHOUT_SYSCALLS = """
(module
  (memory (export "memory") 1)
  (global $started (mut i32) (i32.const 0))
  (func $start (global.set $started (i32.const 1)))
  (start $start)
  (func (export "invoke") (param i32) (result i32) (global.get $started)))
"""


def test_in_v2_a_start_function_runs_without_gas_and_its_trap_is_fatal(
    skyr_modules: ModuleCache,
) -> None:
    """The gas global is still 0 while instantiating, so the first metered block traps."""
    outcome, gas, _ = run(skyr_modules, START_WITHOUT_SYSCALLS, {})
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, FatalError)
    assert trace(gas) == []


@pytest.mark.parametrize("generation", [AbiGeneration.V3, AbiGeneration.V4])
def test_from_v3_a_start_function_runs_on_gas_and_its_abort_fails_instantiation(
    hygge_modules: ModuleCache, generation: AbiGeneration
) -> None:
    """ref-fvm v3.13.3 and v4 set the gas global before instantiating and charge after."""
    outcome, gas, _ = run(hygge_modules, START_WITHOUT_SYSCALLS, {}, generation=generation)
    assert outcome == Returned(1)
    # What the start function ran, charged after instantiating; the instance's new memory in
    # the limiter books it as memory growth (up to the execution charge, as ref-fvm does).
    charges = trace(gas)
    assert [name for name, _ in charges[:3]] == [
        "wasm_memory_init", "wasm_exec", "wasm_memory_grow"
    ]
    assert charges[1][1] == 0 and charges[2][1] > 0
    outcome, gas, _ = run(
        hygge_modules,
        START_FUNCTION,
        {("vm", "exit"): _exit_with_code},
        generation=generation,
    )
    assert isinstance(outcome, Exited)
    assert outcome.exit_code == ExitCode.SYS_ILLEGAL_INSTRUCTION
    assert outcome.message.startswith("failed to instantiate module")
    assert [name for name, _ in trace(gas)] == [
        "wasm_memory_init", "wasm_exec", "OnSyscall", "wasm_exec"
    ]
