"""The fvm-wasm-instrument port: the reference's own test cases, exact gas under wasmtime with
ref-fvm's price lists (every expected value worked out by hand below), the stack limit, and
every module of the mainnet actor bundles v9 (instrumented as at network version 17) and v10
(as at network version 18)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import wasmtime

from fvm.bundle import load_bundle
from fvm.engine import gas_metering, stack_limiter
from fvm.engine import wasm_module as wm
from fvm.engine.config import (
    GAS_COUNTER_NAME_V0_2,
    GAS_COUNTER_NAME_V0_4,
    HYGGE_ENGINE,
    SKYR_ENGINE,
    EngineConfig,
    InstrumenterVersion,
    check_disabled_features,
    engine_config_for_network_version,
)
from fvm.engine.gas_rules import (
    HYGGE_WASM_RULES,
    SKYR_WASM_RULES,
    InstructionCost,
    wasm_rules_for_network_version,
)
from fvm.engine.instrument import InstrumentationError, instrument, instrument_for

V02 = InstrumenterVersion.V0_2_0
V04 = InstrumenterVersion.V0_4_0
BOTH = [V02, V04]
G = 4000  # milligas of one priced instruction under both Skyr and Hygge (4 gas)


def constant_costs(instruction: int = 1, grow_per_page: int = 0) -> dict[int, InstructionCost]:
    """The reference's ``ConstantCostRules``: every instruction costs the same; memory.grow
    is linear (base 1) when a per-page cost is given."""
    costs: dict[int, InstructionCost] = {opcode: instruction for opcode in wm.OPCODE_NAMES}
    if grow_per_page:
        costs[wm.MEMORY_GROW] = (1, grow_per_page)
    return costs


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def body(module_bytes: bytes, index: int) -> wm.FunctionBody:
    return wm.decode_module(module_bytes).code[index]


def names(function_body: wm.FunctionBody) -> list[str]:
    return wm.decode_instructions(function_body.code).names()


# -- the reference's gas-metering unit tests (src/gas_metering/mod.rs) ----------------------------

# (name, input, expected): ConstantCostRules::default(), gas module "env". Function 0 of the
# instrumented module must be byte-identical to function 0 of the expected module.
REFERENCE_GAS_CASES = [
    (
        "simple",
        "(module (func (result i32) (global.get 0)))",
        "(module (func (result i32) (call 1 (i64.const 1)) (global.get 1)))",
    ),
    (
        "nested",
        """(module (func (result i32)
            (global.get 0)
            (block (global.get 0) (global.get 0) (global.get 0))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 6))
            (global.get 1)
            (block (global.get 1) (global.get 1) (global.get 1))
            (global.get 1)))""",
    ),
    (
        "ifelse",
        """(module (func (result i32)
            (global.get 0)
            (if (then (global.get 0) (global.get 0) (global.get 0))
                (else (global.get 0) (global.get 0)))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 3))
            (global.get 1)
            (if (then (call 1 (i64.const 3)) (global.get 1) (global.get 1) (global.get 1))
                (else (call 1 (i64.const 2)) (global.get 1) (global.get 1)))
            (global.get 1)))""",
    ),
    (
        "branch_innermost",
        """(module (func (result i32)
            (global.get 0)
            (block (global.get 0) (drop) (br 0) (global.get 0) (drop))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 6))
            (global.get 1)
            (block (global.get 1) (drop) (br 0)
                   (call 1 (i64.const 2)) (global.get 1) (drop))
            (global.get 1)))""",
    ),
    (
        "branch_outer_block",
        """(module (func (result i32)
            (global.get 0)
            (block
                (global.get 0)
                (if (then (global.get 0) (global.get 0) (drop) (br_if 1)))
                (global.get 0)
                (drop))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 5))
            (global.get 1)
            (block
                (global.get 1)
                (if (then (call 1 (i64.const 4)) (global.get 1) (global.get 1) (drop)
                          (br_if 1)))
                (call 1 (i64.const 2))
                (global.get 1)
                (drop))
            (global.get 1)))""",
    ),
    (
        "branch_outer_loop",
        """(module (func (result i32)
            (global.get 0)
            (loop
                (global.get 0)
                (if (then (global.get 0) (br_if 0))
                    (else (global.get 0) (global.get 0) (drop) (br_if 1)))
                (global.get 0)
                (drop))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 3))
            (global.get 1)
            (loop
                (call 1 (i64.const 4))
                (global.get 1)
                (if (then (call 1 (i64.const 2)) (global.get 1) (br_if 0))
                    (else (call 1 (i64.const 4)) (global.get 1) (global.get 1) (drop)
                          (br_if 1)))
                (global.get 1)
                (drop))
            (global.get 1)))""",
    ),
    (
        "return_from_func",
        """(module (func (result i32)
            (global.get 0)
            (if (then (return)))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 2))
            (global.get 1)
            (if (then (call 1 (i64.const 1)) (return)))
            (call 1 (i64.const 1))
            (global.get 1)))""",
    ),
    (
        "branch_from_if_not_else",
        """(module (func (result i32)
            (global.get 0)
            (block
                (global.get 0)
                (if (then (br 1)) (else (br 0)))
                (global.get 0)
                (drop))
            (global.get 0)))""",
        """(module (func (result i32)
            (call 1 (i64.const 5))
            (global.get 1)
            (block
                (global.get 1)
                (if (then (call 1 (i64.const 1)) (br 1))
                    (else (call 1 (i64.const 1)) (br 0)))
                (call 1 (i64.const 2))
                (global.get 1)
                (drop))
            (global.get 1)))""",
    ),
    (
        "empty_loop",
        "(module (func (loop (br 0)) unreachable))",
        "(module (func (call 1 (i64.const 2)) (loop (call 1 (i64.const 1)) (br 0)) unreachable))",
    ),
]


@pytest.mark.parametrize("version", BOTH, ids=lambda v: v.value)
@pytest.mark.parametrize(
    ("name", "source", "expected"), REFERENCE_GAS_CASES, ids=[c[0] for c in REFERENCE_GAS_CASES]
)
def test_gas_metering_matches_reference_unit_tests(
    name: str, source: str, expected: str, version: InstrumenterVersion
) -> None:
    out = gas_metering.inject(wat(source), constant_costs(), version, "env")
    assert body(out, 0) == body(wat(expected), 0)


def test_gas_metering_call_index_case_charges_each_branch_of_if_else() -> None:
    source = """(module
        (type (func (result i32)))
        (func (type 0) (result i32) (i32.const 0))
        (func (type 0) (result i32)
            call 0
            if (result i32)
                call 0 call 0 call 0 drop drop
            else
                call 0 call 0 drop
            end)
        (global i32 (i32.const 0)))"""
    for version in BOTH:
        out = gas_metering.inject(wat(source), constant_costs(), version, "env")
        # call, if  |  call call call drop drop  |  call call drop  — gas function is 2
        assert names(body(out, 1)) == [
            "i64.const", "call", "call", "if",
            "i64.const", "call", "call", "call", "call", "drop", "drop",
            "else", "i64.const", "call", "call", "call", "drop", "end", "end",
        ]
        charges = _charges(body(out, 1), gas_function=2)
        assert charges == [2, 5, 3]


def _charges(function_body: wm.FunctionBody, gas_function: int) -> list[int]:
    """The constants of every ``i64.const c; call gas`` pair, in order."""
    decoded = wm.decode_instructions(function_body.code)
    found = []
    for i in range(len(decoded) - 1):
        if (
            decoded.opcodes[i] == wm.I64_CONST
            and decoded.opcodes[i + 1] == wm.CALL
            and decoded.immediates[i + 1] == gas_function
        ):
            value = decoded.immediates[i]
            assert isinstance(value, int)
            found.append(value)
    return found


def test_gas_metering_charges_for_calling_the_gas_function_when_rules_say_so() -> None:
    # Reference test gas_charge_charge: cost 1 per instruction plus 13 per gas charge.
    out = gas_metering.inject(
        wat("(module (func (result i32) i32.const 10) (memory 0 1))"),
        constant_costs(), V04, "env", gas_charge_cost=13, linear_calc_cost=99,
    )
    assert body(out, 0).code == bytes.fromhex("420e") + b"\x10\x01" + b"\x41\x0a\x0b"


def test_memory_grow_with_dynamic_operand_gets_runtime_charge_in_v04() -> None:
    # Reference test simple_grow: ConstantCostRules::new(1, 10_000).
    source = """(module
        (func (result i32) global.get 0 memory.grow)
        (global i32 (i32.const 42)) (memory 0 1))"""
    out = gas_metering.inject(wat(source), constant_costs(1, 10_000), V04, "env")
    expected = wat("""(module (func (result i32) (local i32)
        i64.const 2 call 1 global.get 1
        local.tee 0 local.get 0 i64.extend_i32_u i64.const 10000 i64.mul call 1
        memory.grow))""")
    assert body(out, 0) == body(expected, 0)


def test_memory_grow_after_constant_is_charged_statically_in_v04() -> None:
    # Reference tests grow_const (1 + 1 + 10 * 10_000) and gas_charge_charge_const_linear.
    out = gas_metering.inject(
        wat("(module (func (result i32) i32.const 10 memory.grow) (memory 0 1))"),
        constant_costs(1, 10_000), V04, "env",
    )
    assert _charges(body(out, 0), 1) == [100_002]
    costs = constant_costs(3)
    costs[wm.MEMORY_GROW] = (17, 7)
    out = gas_metering.inject(
        wat("(module (func (result i32) i32.const 10 memory.grow) (memory 0 1))"),
        costs, V04, "env", gas_charge_cost=13, linear_calc_cost=5,
    )
    assert _charges(body(out, 0), 1) == [3 * 1 + 17 + 10 * 7 + 13 * 1]
    out = gas_metering.inject(
        wat("(module (func (result i32) i32.const 10 i32.const 1 i32.mul memory.grow)"
            " (memory 0 1))"),
        costs, V04, "env", gas_charge_cost=13, linear_calc_cost=5,
    )
    # 3 instructions at 3, base 17, the block's charge 13, the dynamic charge 13 and 5.
    assert _charges(body(out, 0), 1) == [3 * 3 + 17 + 13 * 2 + 5]


def test_negative_constant_before_linear_instruction_fails_instrumentation() -> None:
    source = "(module (func (result i32) i32.const -10 memory.grow) (memory 0 1))"
    with pytest.raises(InstrumentationError):
        gas_metering.inject(wat(source), constant_costs(1, 10_000), V04, "env")


def test_two_linear_instructions_share_one_temporary_local() -> None:
    # Reference test simple_grow_two.
    costs = constant_costs(1)
    costs[wm.MEMORY_GROW] = (1, 10)
    costs[wm.MEMORY_INIT] = (3, 12)
    source = """(module
        (global i32 (i32.const 42))
        (memory 0 1)
        (func (param i32) (result i32)
            local.get 0 global.get 0 i32.mul memory.grow
            (memory.init 1 (i32.const 16) (i32.const 0) (i32.mul (i32.const 7) (i32.const 1)))
            (memory.init 0 (i32.const 8) (i32.const 0) (i32.mul (i32.const 2) (i32.const 1))))
        (data "gm") (data "goodbye"))"""
    out = gas_metering.inject(wat(source), costs, V04, "env")
    expected = wat("""(module (memory 0 1) (data "gm") (data "goodbye")
        (func (param i32) (result i32) (local i32)
        i64.const 20 call 1
        local.get 0 global.get 1 i32.mul
        local.tee 1 local.get 1 i64.extend_i32_u i64.const 10 i64.mul call 1
        memory.grow
        i32.const 16 i32.const 0 i32.const 7 i32.const 1 i32.mul
        local.tee 1 local.get 1 i64.extend_i32_u i64.const 12 i64.mul call 1
        memory.init 1
        i32.const 8 i32.const 0 i32.const 2 i32.const 1 i32.mul
        local.tee 1 local.get 1 i64.extend_i32_u i64.const 12 i64.mul call 1
        memory.init 0))""")
    assert body(out, 0) == body(expected, 0)


def test_gas_global_comes_after_imported_globals() -> None:
    # Reference test test_gas_error_fvm_fuzzin_5 (0.4.0): two imported globals, so the gas
    # global is global 2 and the gas function (after four imported functions) is function 5.
    source = """(module
        (type (func (result i32))) (type (func (param i32)))
        (type (func (param i64 i32) (result i64)))
        (import "env" "memory" (memory 256 256))
        (import "env" "DYNAMICTOP_PTR" (global i32))
        (import "env" "STACKTOP" (global i32))
        (import "env" "enlargeMemory" (func (type 0)))
        (import "env" "getTotalMemory" (func (type 0)))
        (import "env" "abortOnCannotGrowMemory" (func (type 0)))
        (import "env" "___setErrNo" (func (type 1)))
        (func (type 2) (param i64 i32) (result i64)
            local.get 0 i32.const 64 local.get 1 i32.sub i64.extend_i32_u i64.shl
            local.get 0 local.get 1 i64.extend_i32_u i64.shr_u i64.or))"""
    out = gas_metering.inject(wat(source), constant_costs(), V04, "other")
    assert _charges(body(out, 0), 5) == [11]
    assert names(body(out, 1))[:4] == ["global.get", "local.get", "i64.sub", "global.set"]
    assert wm.decode_instructions(body(out, 1).code).immediates[0] == 2
    # 0.2.0 refuses modules importing globals other than its own gas counter.
    with pytest.raises(InstrumentationError):
        gas_metering.inject(wat(source), constant_costs(), V02, "other")


def test_module_already_importing_the_gas_global_fails() -> None:
    source = """(module (import "other" "gas_counter" (global i64))
        (func (param i64 i32) (result i64) local.get 0))"""
    with pytest.raises(InstrumentationError, match="expected 1 gas global"):
        gas_metering.inject(wat(source), constant_costs(), V04, "other")


# -- the reference's stack-limiter expectations (tests/expectations/stack-height, 0.4.0) ----------

# name: (source, {defined function: (callee's stack cost, callee) of its wrapped call},
#        {export: the function its thunk calls})
STACK_FIXTURES: dict[str, tuple[str, dict[int, tuple[int, int]], dict[str, int]]] = {
    "simple": (
        '(module (func (export "simple") i32.const 123 drop))',
        {1: (3, 0)},  # the thunk; i32.const 123 makes the height 3
        {"simple": 0},
    ),
    "many_locals": (
        """(module
            (func $one-group-many-locals (local i64) (local i64) (local i32))
            (func $main (call $one-group-many-locals)))""",
        # 2 (activation frame) + 2 local groups (i64 x2, i32): 4 in 0.4.0, 5 in 0.2.0.
        {1: (4, 0)},
        {},
    ),
    "imports": (
        """(module
            (import "env" "foo" (func $foo))
            (import "env" "boo" (func $boo))
            (func (export "i32.add") (param i32 i32) (result i32)
                call $foo call $boo local.get 0 local.get 1 i32.add))""",
        {1: (4, 2)},  # the thunk; two local.gets on the frame: 4
        {"i32.add": 2},
    ),
    "empty_functions": (
        '(module (func call 0) (func (export "main") call 0))',
        {0: (2, 0), 1: (2, 0), 2: (2, 1)},
        {"main": 1},
    ),
}


@pytest.mark.parametrize("name", sorted(STACK_FIXTURES))
def test_stack_limiter_matches_reference_expectations(name: str) -> None:
    source, wrapped_calls, thunked_exports = STACK_FIXTURES[name]
    out = wm.decode_module(stack_limiter.inject(wat(source), 1024, V04))
    height_global = len(out.globals) - 1
    assert out.globals[height_global] == wm.Global(wm.GlobalType(wm.I32, True), b"\x41\x00\x0b")
    for function, (cost, callee) in wrapped_calls.items():
        decoded = wm.decode_instructions(out.code[function].code)
        start = decoded.opcodes.index(wm.GLOBAL_GET)
        assert decoded.names()[start : start + 15] == [
            "global.get", "i32.const", "i32.add", "global.set", "global.get", "i32.const",
            "i32.gt_u", "if", "unreachable", "end", "call", "global.get", "i32.const",
            "i32.sub", "global.set",
        ]
        immediates = decoded.immediates[start : start + 15]
        assert immediates[1] == immediates[12] == cost
        assert immediates[5] == 1024
        assert immediates[10] == callee
    exports = {e.name: e.index for e in out.exports}
    imported = out.imported_function_count
    for export, thunk_of in thunked_exports.items():
        thunk = exports[export]
        assert thunk >= imported + len(out.code) - len(thunked_exports)
        decoded = wm.decode_instructions(out.code[thunk - imported].code)
        assert decoded.immediates[decoded.opcodes.index(wm.CALL)] == thunk_of


def test_stack_limiter_table_fixture_redirects_table_and_export_to_thunks() -> None:
    source = """(module
        (import "env" "foo" (func $foo))
        (func (param i32) local.get 0 i32.const 0 call $i32.add drop)
        (func $i32.add (export "i32.add") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.add)
        (table 10 funcref)
        (elem (i32.const 0) 0 1 2))"""
    out = wm.decode_module(stack_limiter.inject(wat(source), 1024, V04))
    # Thunks in ascending order of what they wrap: 3 wraps function 1, 4 wraps function 2.
    assert out.elements[0].functions == (0, 3, 4)
    assert out.exports[0] == wm.Export("i32.add", wm.KIND_FUNCTION, 4)
    expected = wat("""(module (global (mut i32) (i32.const 0))
        (func (param i32) local.get 0
            global.get 0 i32.const 4 i32.add global.set 0
            global.get 0 i32.const 1024 i32.gt_u if unreachable end
            call 1
            global.get 0 i32.const 4 i32.sub global.set 0))""")
    assert out.code[2] == body(expected, 0)


def test_stack_limiter_start_fixture_wraps_start_function() -> None:
    source = """(module
        (import "env" "ext_return" (func $ext_return (param i32 i32)))
        (import "env" "memory" (memory 1 1))
        (start $start)
        (func $start (local i32))
        (func (export "call")))"""
    out = wm.decode_module(stack_limiter.inject(wat(source), 1024, V04))
    assert out.start == 3
    assert {e.name: e.index for e in out.exports}["call"] == 4
    start_thunk = wm.decode_instructions(out.code[2].code)
    assert start_thunk.immediates[1] == 3  # 2 + one local
    assert start_thunk.immediates[10] == 1


def test_stack_limiter_uses_defined_global_count_for_its_global() -> None:
    source = """(module
        (import "env" "foo" (func $foo))
        (global $counter (mut i32) (i32.const 1))
        (func $i32.add (export "i32.add") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.add)
        (func (param $arg i32) (local $tmp i32)
            global.get 0 i32.const 1 i32.add local.tee $tmp global.set $counter
            local.get $tmp local.get $arg call $i32.add drop))"""
    out = wm.decode_module(stack_limiter.inject(wat(source), 1024, V04))
    decoded = wm.decode_instructions(out.code[1].code)
    wrapper = decoded.opcodes.index(wm.CALL) - 10
    assert decoded.immediates[wrapper] == 1  # global 1: the one after $counter
    assert decoded.immediates[wrapper + 1] == 4  # 2 + max height 2 (no locals)


def test_stack_cost_counts_locals_in_v02_and_local_groups_in_v04() -> None:
    source = """(module
        (func $callee (local i32 i32 i32 i64 i64))
        (func (call $callee)))"""
    costs = {}
    for version in BOTH:
        out = wm.decode_module(stack_limiter.inject(wat(source), 1024, version))
        decoded = wm.decode_instructions(out.code[1].code)
        costs[version] = decoded.immediates[1]
    # 2 (activation) + 5 locals in 0.2.0; 2 + 2 local groups (i32 x3, i64 x2) in 0.4.0.
    assert costs == {V02: 7, V04: 4}


def test_max_height_ignores_unreachable_code_and_keeps_height_across_else() -> None:
    source = """(module (func (export "f") (param i32) (result i32)
        local.get 0
        if (result i32)
            i32.const 1
        else
            i32.const 2
        end))"""
    out = wm.decode_module(stack_limiter.inject(wat(source), 1024, V04))
    thunk = wm.decode_instructions(out.code[1].code)
    # Height before each instruction: local.get 2, if 3 (pops the condition: 2), i32.const 1
    # at 2 (-> 3), else at 3 (no reset), i32.const 2 at 3 (-> 4), end at 4. Maximum 4, where
    # a real machine never holds more than 3.
    assert thunk.immediates[2] == 4
    source = """(module (func (export "f")
        unreachable
        i32.const 1 i32.const 2 i32.const 3 drop drop drop))"""
    out = wm.decode_module(stack_limiter.inject(wat(source), 1024, V04))
    assert wm.decode_instructions(out.code[1].code).immediates[1] == 2


# -- exact gas under wasmtime with ref-fvm's rules ------------------------------------------------


@functools.cache
def _engine(config: EngineConfig) -> wasmtime.Engine:
    return wasmtime.Engine(config.wasmtime.wasmtime_config())


class Instrumented:
    """An instrumented module instantiated with a gas counter and trapping host imports."""

    def __init__(self, source: str, config: EngineConfig, gas: int = 10**15) -> None:
        raw = wat(source)
        engine = _engine(config)
        wasmtime.Module.validate(engine, raw)
        self.wasm = instrument_for(raw, config)
        self.module = wasmtime.Module(engine, self.wasm)
        self.store = wasmtime.Store(engine)
        self.start_gas = gas
        self.gas = wasmtime.Global(
            self.store, wasmtime.GlobalType(wasmtime.ValType.i64(), True), wasmtime.Val.i64(gas)
        )
        imports: list[wasmtime.Global | wasmtime.Func | wasmtime.Memory] = []
        for entry in self.module.imports:
            if (entry.module, entry.name) == (config.gas_module, config.gas_counter_name):
                imports.append(self.gas)
            elif isinstance(entry.type, wasmtime.MemoryType):
                imports.append(wasmtime.Memory(self.store, entry.type))
            else:
                assert isinstance(entry.type, wasmtime.FuncType)
                imports.append(wasmtime.Func(self.store, entry.type, lambda *args: None))
        self.instance = wasmtime.Instance(self.store, self.module, imports)

    def call(self, name: str, *args: int) -> object:
        function = self.instance.exports(self.store)[name]
        assert isinstance(function, wasmtime.Func)
        return function(self.store, *args)

    def used(self) -> int:
        value = self.gas.value(self.store)
        assert isinstance(value, int)
        return self.start_gas - value


CONFIGS = [SKYR_ENGINE, HYGGE_ENGINE]
CONFIG_IDS = ["skyr-v2", "hygge-v3"]

# Every call into an export goes through the thunk: local.get per parameter, then
# global.get, i32.const, i32.add, global.set, global.get, i32.const, i32.gt_u, if (8 priced),
# unreachable and end (free), call (1), global.get, i32.const, i32.sub, global.set (4).
THUNK_OVERHEAD = 13


def thunk(params: int) -> int:
    return (params + THUNK_OVERHEAD) * G


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_straight_line_code_charges_every_priced_instruction(config: EngineConfig) -> None:
    module = Instrumented(
        """(module (func (export "f") (param i32 i32) (result i32)
            local.get 0 local.get 1 i32.add i32.const 3 i32.mul nop drop i32.const 7))""",
        config,
    )
    assert module.call("f", 2, 5) == 7
    # local.get, local.get, i32.add, i32.const, i32.mul, i32.const priced (6); nop, drop free.
    assert module.used() == thunk(2) + 6 * G


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_loop_is_charged_once_per_iteration(config: EngineConfig) -> None:
    source = """(module (func (export "count") (param $n i32) (result i32) (local $i i32)
        block
            loop
                local.get $i local.get $n i32.ge_u br_if 1
                local.get $i i32.const 1 i32.add local.set $i
                br 0
            end
        end
        local.get $i))"""
    for n in (0, 1, 10):
        module = Instrumented(source, config)
        assert module.call("count", n) == n
        # Metered blocks: the loop header up to br_if (local.get, local.get, i32.ge_u,
        # br_if = 4) on each of n + 1 passes; the rest of the body (local.get, i32.const,
        # i32.add, local.set, br = 5) on each of n iterations; and the function's entry block,
        # charged once: block and loop are free, and the trailing local.get (1) joins it,
        # because the loop's br_if 1 only reaches the block's own end, which no branch skips.
        assert module.used() == thunk(1) + (4 * (n + 1) + 5 * n + 1) * G


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_if_else_charges_only_the_branch_taken(config: EngineConfig) -> None:
    source = """(module (func (export "pick") (param i32) (result i32)
        local.get 0
        if (result i32)
            i32.const 10 i32.const 20 i32.add
        else
            i32.const 1
        end
        i32.const 2 i32.mul))"""
    module = Instrumented(source, config)
    assert module.call("pick", 1) == 60
    # Entry block: local.get, if, and after the end (no branch out): i32.const, i32.mul = 4.
    # Then-branch: 3.
    assert module.used() == thunk(1) + (4 + 3) * G
    module = Instrumented(source, config)
    assert module.call("pick", 0) == 2
    assert module.used() == thunk(1) + (4 + 1) * G


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_br_if_out_of_block_starts_new_metered_blocks(config: EngineConfig) -> None:
    source = """(module (func (export "f") (param i32) (result i32)
        block
            local.get 0 br_if 0
            i32.const 5 drop i32.const 6 drop
        end
        i32.const 9))"""
    module = Instrumented(source, config)
    assert module.call("f", 1) == 9
    # Entry (the block's body joins it until the first branch): local.get, br_if = 2, plus
    # the trailing i32.const (1): br_if 0 only reaches the block's own end, which is always
    # followed by it. After br_if, its own metered block: 2 consts (drops are free).
    assert module.used() == thunk(1) + (2 + 1) * G
    module = Instrumented(source, config)
    assert module.call("f", 0) == 9
    assert module.used() == thunk(1) + (2 + 2 + 1) * G


def test_br_table_default_target_is_ignored_by_v04_but_not_v02() -> None:
    # br_table 0 1: explicit target 0 (the inner block), default 1 (the outer block).
    source = """(module (func (export "f") (param i32) (result i32)
        block
            block
                local.get 0
                br_table 0 1
            end
            i32.const 1 drop
        end
        i32.const 2))"""
    results = {}
    for config in CONFIGS:
        module = Instrumented(source, config)
        assert module.call("f", 0) == 2
        results[config.instrumenter] = module.used()
    # 0.2.0 counts the default (label 1: the outer block) as a forward branch out of the
    # inner block, so the code after the inner `end` (i32.const 1) is its own metered block;
    # the entry block holds local.get, br_table and, after the outer `end` (which no branch
    # skips), i32.const 2: 3. 0.4.0 only sees label 0, the inner block's own end, so nothing
    # after the inner `end` is skippable: one entry block of 4.
    # Label 0 runs everything after the inner end: 3 + 1 in 0.2.0, 4 in 0.4.0.
    assert results[V02] == thunk(1) + (3 + 1) * G
    assert results[V04] == thunk(1) + 4 * G
    # The default skips `i32.const 1 drop`: 0.2.0 charges 3, 0.4.0 still charges 4.
    for config in CONFIGS:
        module = Instrumented(source, config)
        assert module.call("f", 5) == 2
        results[config.instrumenter] = module.used()
    assert results[V02] == thunk(1) + 3 * G
    assert results[V04] == thunk(1) + 4 * G


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_calls_pay_for_the_stack_limiter_wrapper(config: EngineConfig) -> None:
    source = """(module
        (import "env" "host" (func $host (param i32)))
        (func $double (param i32) (result i32) local.get 0 i32.const 2 i32.mul)
        (func (export "f") (param i32) (result i32)
            local.get 0 call $host
            local.get 0 call $double))"""
    module = Instrumented(source, config)
    assert module.call("f", 21) == 42
    # f: local.get, call $host (an import's stack cost is 0: not wrapped) = 2; local.get = 1;
    # the wrapped call of $double: 8 priced before the call (unreachable and end are free),
    # the call, 4 after = 13. $double: local.get, i32.const, i32.mul = 3.
    assert module.used() == thunk(1) + (2 + 1 + 13 + 3) * G


def test_memory_grow_is_charged_per_page_from_v3() -> None:
    source = """(module (memory 1)
        (func (export "grow_const") (result i32) i32.const 3 memory.grow)
        (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))"""
    page = 400 * 65536  # Hygge: 0.4 gas per byte filled, 64 KiB per page
    module = Instrumented(source, HYGGE_ENGINE)
    assert module.call("grow_const") == 1
    # i32.const, then memory.grow: base 4 gas + 3 pages (static, the operand is a constant).
    assert module.used() == thunk(0) + G + (G + 3 * page)
    module = Instrumented(source, HYGGE_ENGINE)
    assert module.call("grow", 2) == 1
    # local.get, memory.grow base in the block; 2 pages charged at run time.
    assert module.used() == thunk(1) + 2 * G + 2 * page
    module = Instrumented(source, SKYR_ENGINE)
    assert module.call("grow", 2) == 1
    # Skyr: memory.grow is a plain instruction (MemoryGrowCost::Free).
    assert module.used() == thunk(1) + 2 * G


@pytest.mark.parametrize("length", [0, 1, 1000, 65520])
def test_memory_fill_and_copy_are_charged_per_byte_from_v3(length: int) -> None:
    source = """(module (memory 1)
        (func (export "fill") (param i32)
            i32.const 0 i32.const 255 local.get 0 memory.fill)
        (func (export "copy") (param i32)
            i32.const 0 i32.const 16 local.get 0 memory.copy)
        (func (export "copy_const")
            i32.const 0 i32.const 16 i32.const 100 memory.copy))"""
    per_byte = 400  # Hygge: 0.4 gas per byte filled or copied
    for name in ("fill", "copy"):
        module = Instrumented(source, HYGGE_ENGINE)
        module.call(name, length)
        # i32.const, i32.const, local.get, memory.fill/copy (base 4 gas) + length * 0.4 gas.
        assert module.used() == thunk(1) + 4 * G + length * per_byte
        module = Instrumented(source, SKYR_ENGINE)
        module.call(name, length)
        assert module.used() == thunk(1) + 4 * G
    module = Instrumented(source, HYGGE_ENGINE)
    module.call("copy_const")
    assert module.used() == thunk(0) + 4 * G + 100 * per_byte


def test_dynamic_charge_treats_negative_length_as_unsigned() -> None:
    source = """(module (memory 1)
        (func (export "fill") (param i32) i32.const 0 i32.const 0 local.get 0 memory.fill))"""
    module = Instrumented(source, HYGGE_ENGINE, gas=10**15)
    with pytest.raises(wasmtime.Trap):
        module.call("fill", -1)
    # The charge for 0xffffffff bytes is taken before memory.fill traps (out of bounds).
    assert module.used() == thunk(1) + 4 * G + 0xFFFFFFFF * 400


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_running_out_of_gas_traps_and_leaves_counter_negative(config: EngineConfig) -> None:
    source = """(module (func (export "spin") (loop (br 0))))"""
    module = Instrumented(source, config, gas=10 * G + thunk(0))
    with pytest.raises(wasmtime.Trap):
        module.call("spin")
    # Thunk, then the loop body (br, 1 priced) per iteration: the 11th charge goes negative.
    value = module.gas.value(module.store)
    assert value == -G


# -- stack limit ----------------------------------------------------------------------------------

RECURSION = """(module (func $down (export "down") (param $n i32)
    local.get $n
    if
        local.get $n i32.const 1 i32.sub
        call $down
    end))"""


def _recursion_depth_limit(cost: int, limit: int) -> int:
    """The largest n for which down(n) stays within the limit: the export's thunk adds `cost`
    and each of the n recursive calls adds `cost`; the trap comes when the height exceeds
    the limit."""
    return limit // cost - 1


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_deep_recursion_traps_at_the_stack_limit(config: EngineConfig) -> None:
    # $down's cost: no locals; heights: 2 (frame) + local.get = 3, if pops to 2, local.get 3,
    # i32.const 4, i32.sub 3, call pops 1 -> max 4. Cost 4; limit 2048 -> 2048 / 4 = 512
    # frames, one of which is the thunk's: down(511) fits, down(512) does not.
    cost = 4
    depth = _recursion_depth_limit(cost, config.max_wasm_stack)
    assert depth == 511
    module = Instrumented(RECURSION, config)
    module.call("down", depth)
    module = Instrumented(RECURSION, config)
    with pytest.raises(wasmtime.Trap):
        module.call("down", depth + 1)
    module = Instrumented(RECURSION, config)
    module.call("down", 10)


def test_locals_make_the_recursion_limit_differ_between_releases() -> None:
    source = """(module (func $down (export "down") (param $n i32)
        (local i64 i64 i64 i64 i64 i64)
        local.get $n
        if
            local.get $n i32.const 1 i32.sub
            call $down
        end))"""
    # Cost = max height 4 + locals: 6 in 0.2.0 (10 in all), one group in 0.4.0 (5 in all).
    for config, cost in ((SKYR_ENGINE, 10), (HYGGE_ENGINE, 5)):
        depth = _recursion_depth_limit(cost, config.max_wasm_stack)
        Instrumented(source, config).call("down", depth)
        with pytest.raises(wasmtime.Trap):
            Instrumented(source, config).call("down", depth + 1)
    assert _recursion_depth_limit(10, 2048) == 203
    assert _recursion_depth_limit(5, 2048) == 408


# -- what each release refuses --------------------------------------------------------------------


def test_v02_cannot_read_sign_extension_or_saturating_truncation() -> None:
    for instruction in ("i32.extend8_s", "i32.trunc_sat_f64_u"):
        operand = "f64.const 1" if "trunc" in instruction else "i32.const 1"
        source = f"(module (func (result i32) {operand} {instruction}))"
        with pytest.raises(InstrumentationError):
            instrument(wat(source), SKYR_WASM_RULES, 2048, V02)
        assert instrument(wat(source), HYGGE_WASM_RULES, 2048, V04)


def test_reference_instructions_are_refused() -> None:
    source = """(module (table 1 funcref) (elem declare func 0)
        (func (result i32) ref.func 0 ref.is_null))"""
    for version, rules in ((V02, SKYR_WASM_RULES), (V04, HYGGE_WASM_RULES)):
        with pytest.raises(InstrumentationError):
            instrument(wat(source), rules, 2048, version)


@pytest.mark.parametrize(
    "instructions",
    ["(drop (table.size 0))", "(drop (table.grow 0 (ref.null func) (i32.const 1)))",
     "(table.set 0 (i32.const 0) (table.get 0 (i32.const 0)))",
     "(table.fill 0 (i32.const 0) (local.get 0) (i32.const 1))"],
    ids=["size", "grow", "get-set", "fill"],
)
def test_table_instructions_are_read_by_0_4_0_only(instructions: str) -> None:
    """0.4.0 prices and runs them (``ref.null`` aside, which the grow's operand needs); the
    parity-wasm of 0.2.0 cannot read them."""
    source = f"""(module (table 1 funcref)
        (func (param funcref) {instructions}))"""
    with pytest.raises(InstrumentationError):
        instrument(wat(source), SKYR_WASM_RULES, 2048, V02)
    if "ref.null" in instructions:
        with pytest.raises(InstrumentationError):
            instrument(wat(source), HYGGE_WASM_RULES, 2048, V04)
    else:
        assert instrument(wat(source), HYGGE_WASM_RULES, 2048, V04)


@pytest.mark.parametrize(
    ("source", "refused_by"),
    [
        ("(module (func (param externref)))", (V02, V04)),
        ("(module (table 1 externref))", (V02, V04)),
        ("(module (global (mut externref) (ref.null extern)))", (V02, V04)),
        ("(module (func (local externref)))", (V02, V04)),
        ("(module (func (param funcref)))", (V02,)),
        ("(module (func (local funcref)))", (V02,)),
        ("(module (global funcref (ref.null func)))", (V02,)),
        ("(module (table 1 funcref) (func) (elem (i32.const 0) 0))", ()),
        ("(module (table 1 funcref) (func) (elem (table 0) (i32.const 0) func 0))", (V02,)),
        ("(module (table 1 funcref) (func) (elem func 0))", (V02,)),
        ("(module (table 1 funcref) (func) (elem declare func 0))", (V02,)),
        ("(module (table 2 funcref) (table 1 funcref))", ()),
    ],
)
def test_declarations_each_release_refuses(source: str, refused_by: tuple[object, ...]) -> None:
    """wasmtime 36 without GC types refuses externref in both generations; parity-wasm
    (0.2.0) reads numeric values and flags-0 element segments only. A second table is the
    pooling allocator's concern (v3), which on-demand allocation (v2) does not have."""
    module = wm.decode_module(wat(source))
    for version in (V02, V04):
        if version in refused_by:
            with pytest.raises(wm.WasmError, match="reference types"):
                check_disabled_features(module, version)
        else:
            check_disabled_features(module, version)


@pytest.mark.parametrize(
    ("block", "refused_by"),
    [("funcref", (V02,)), ("externref", (V02, V04)), ("i32", ())],
)
def test_reference_typed_blocks(block: str, refused_by: tuple[object, ...]) -> None:
    source = f"(module (func (block (result {block}) unreachable) drop))"
    for version, rules in ((V02, SKYR_WASM_RULES), (V04, HYGGE_WASM_RULES)):
        if version in refused_by:
            with pytest.raises(InstrumentationError, match="reference-typed block"):
                instrument(wat(source), rules, 2048, version)
        else:
            assert instrument(wat(source), rules, 2048, version)


def test_0_2_0_refuses_call_indirect_on_another_table() -> None:
    source = """(module (type $t (func)) (table 1 funcref) (table 1 funcref)
        (func (call_indirect 1 (type $t) (i32.const 0))))"""
    with pytest.raises(InstrumentationError, match="table other than 0"):
        instrument(wat(source), SKYR_WASM_RULES, 2048, V02)
    assert instrument(wat(source), HYGGE_WASM_RULES, 2048, V04)


def test_network_versions_select_ref_fvm_generation() -> None:
    assert engine_config_for_network_version(17) is SKYR_ENGINE
    assert engine_config_for_network_version(18) is HYGGE_ENGINE
    assert engine_config_for_network_version(21) is HYGGE_ENGINE
    assert SKYR_ENGINE.gas_counter_name == GAS_COUNTER_NAME_V0_2 == "gas_couner"
    assert HYGGE_ENGINE.gas_counter_name == GAS_COUNTER_NAME_V0_4 == "gas_counter"
    assert wasm_rules_for_network_version(16) is SKYR_WASM_RULES
    assert wasm_rules_for_network_version(20) is HYGGE_WASM_RULES
    assert SKYR_WASM_RULES.cost(wm.CALL) == 4000
    assert SKYR_WASM_RULES.cost(wm.DROP) == 0
    assert HYGGE_WASM_RULES.cost(wm.MEMORY_COPY) == (4000, 400)
    assert HYGGE_WASM_RULES.cost(wm.MEMORY_GROW) == (4000, 400 * 65536)
    assert HYGGE_WASM_RULES.cost(wm.TABLE_GROW) == (4000, 400 * 8)
    assert HYGGE_WASM_RULES.cost(wm.REF_FUNC) is None


# -- the mainnet actor bundles --------------------------------------------------------------------


@functools.cache
def _bundle_modules(actors_dir: Path, version: int) -> tuple[tuple[str, bytes], ...]:
    bundle = load_bundle(actors_dir / f"v{version}.tar.zst", "mainnet")
    by_code = dict(bundle.blocks)
    return tuple((name, by_code[code]) for name, code in bundle.actors.items())


DYNAMIC_CHARGE = [
    wm.LOCAL_TEE, wm.LOCAL_GET, wm.I64_EXTEND_I32_U, wm.I64_CONST, wm.I64_MUL, wm.CALL
]


def _strip_instrumentation(
    out: wm.WasmModule, function: int, gas_function: int, height_global: int
) -> tuple[list[int], list[wm.Immediate]]:
    """An instrumented body with the metering calls, dynamic charges and call wrappers taken
    out and global indices moved back: what must equal the original instructions."""
    decoded = wm.decode_instructions(out.code[function].code)
    ops, imms = decoded.opcodes, decoded.immediates
    kept_ops: list[int] = []
    kept_imms: list[wm.Immediate] = []
    i = 0
    while i < len(ops):
        if ops[i] == wm.I64_CONST and imms[i + 1] == gas_function and ops[i + 1] == wm.CALL:
            i += 2
            continue
        if ops[i : i + 6] == DYNAMIC_CHARGE and imms[i + 5] == gas_function:
            i += 6
            continue
        if ops[i] == wm.GLOBAL_GET and imms[i] == height_global:
            kept_ops.append(wm.CALL)
            kept_imms.append(imms[i + 10])
            i += 15
            continue
        immediate = imms[i]
        if ops[i] in (wm.GLOBAL_GET, wm.GLOBAL_SET):
            assert isinstance(immediate, int)
            immediate -= 1
        kept_ops.append(ops[i])
        kept_imms.append(immediate)
        i += 1
    return kept_ops, kept_imms


@pytest.mark.parametrize(("actors_version", "network_version"), [(9, 17), (10, 18)])
def test_every_mainnet_actor_instruments_to_a_valid_equivalent_module(
    actors_dir: Path, actors_version: int, network_version: int
) -> None:
    config = engine_config_for_network_version(network_version)
    engine = _engine(config)
    modules = _bundle_modules(actors_dir, actors_version)
    assert len(modules) == (12 if actors_version == 9 else 16)
    for name, raw in modules:
        original = wm.decode_module(raw)
        check_disabled_features(original, config.instrumenter)
        out_bytes = instrument_for(raw, config)
        wasmtime.Module.validate(engine, out_bytes)
        out = wm.decode_module(out_bytes)
        assert out.imports[-1] == wm.Import(
            "gas", config.gas_counter_name, wm.KIND_GLOBAL, wm.GlobalType(wm.I64, True)
        ), name
        defined = len(original.code)
        entry_points = {e.index for e in original.exports if e.kind == wm.KIND_FUNCTION}
        for segment in original.elements:
            entry_points.update(segment.functions)
        imported = original.imported_function_count
        thunks = len({i for i in entry_points if i >= imported})
        assert len(out.code) == defined + thunks + 1, name
        gas_function = imported + defined + thunks
        height_global = len(original.globals) + 1
        for index, function_body in enumerate(original.code):
            expected = wm.decode_instructions(function_body.code)
            assert _strip_instrumentation(out, index, gas_function, height_global) == (
                expected.opcodes, expected.immediates
            ), f"{name} function {index}"


def test_small_instrumented_actors_compile_and_link_with_the_gas_global(
    actors_dir: Path,
) -> None:
    for actors_version, config in ((9, SKYR_ENGINE), (10, HYGGE_ENGINE)):
        modules = dict(_bundle_modules(actors_dir, actors_version))
        for name in ("system", "account"):
            engine = _engine(config)
            compiled = wasmtime.Module(engine, instrument_for(modules[name], config))
            store = wasmtime.Store(engine)
            gas = wasmtime.Global(
                store, wasmtime.GlobalType(wasmtime.ValType.i64(), True), wasmtime.Val.i64(0)
            )
            imports: list[wasmtime.Global | wasmtime.Func] = []
            for entry in compiled.imports:
                if entry.module == "gas":
                    assert entry.name == config.gas_counter_name
                    imports.append(gas)
                else:
                    assert isinstance(entry.type, wasmtime.FuncType)
                    imports.append(wasmtime.Func(store, entry.type, lambda *args: None))
            instance = wasmtime.Instance(store, compiled, imports)
            assert isinstance(instance.exports(store)["invoke"], wasmtime.Func)


def test_v02_instrumenter_refuses_v3_rules_and_bad_stack_limits() -> None:
    raw = wat("(module (func))")
    with pytest.raises(ValueError, match=r"0\.2\.0"):
        instrument(raw, HYGGE_WASM_RULES, 2048, V02)
    with pytest.raises(ValueError, match="u32"):
        instrument(raw, SKYR_WASM_RULES, 1 << 32, V02)
    # A module without functions instruments to one with just the gas function.
    out = wm.decode_module(instrument(raw, SKYR_WASM_RULES, 2048, V02))
    assert len(out.code) == 2
    assert out.imports == [
        wm.Import("gas", "gas_couner", wm.KIND_GLOBAL, wm.GlobalType(wm.I64, True))
    ]
