"""The consensus-relevant settings of ref-fvm's WebAssembly engine, per ref-fvm generation.

ref-fvm validates an actor's module with wasmtime, instruments it with fvm-wasm-instrument
(stack limiter, then gas metering) and compiles the result. What it passes to each step is
recorded here as data, from ``fvm/src/machine/engine.rs`` (``default_wasmtime_config``) at
``fvm@v2.7.0`` and ``fvm/src/engine.rs`` (``wasmtime_config``, ``Engine::load_raw``) at
``fvm@v3.3.1``, and ``NetworkConfig::new`` in ``fvm/src/machine/mod.rs`` of both:

* network versions up to 17 run ref-fvm v2 with fvm-wasm-instrument 0.2.0 (built on
  parity-wasm with only its ``bulk`` feature), whose gas counter import is misspelt
  ``gas_couner``;
* network version 18 on run ref-fvm v3 (and later v4, which kept the same instrumentation
  and wasm prices) with fvm-wasm-instrument 0.4.0 (wasmparser based), importing
  ``gas_counter``.

Both import the gas counter (a mutable i64 global holding the milligas left) from the module
``gas`` and limit the instrumented stack height to 2048 (``max_wasm_stack``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import wasmtime

from fvm.engine import wasm_module as wm
from fvm.engine.gas_rules import (
    HYGGE_WASM_RULES,
    OH_SNAP_WASM_RULES,
    SKYR_WASM_RULES,
    WasmGasRules,
)

PYTHON_WASMTIME_MAX_STACK: Final = 2 << 20


class InstrumenterVersion(enum.Enum):
    """Which fvm-wasm-instrument release to reproduce (their quirks differ; see instrument)."""

    V0_2_0 = "0.2.0"
    V0_4_0 = "0.4.0"


GAS_MODULE_NAME: Final = "gas"
GAS_COUNTER_NAME_V0_2: Final = "gas_couner"
GAS_COUNTER_NAME_V0_4: Final = "gas_counter"


def gas_counter_name(version: InstrumenterVersion) -> str:
    """The field name of the gas counter import each instrumenter release writes."""
    return GAS_COUNTER_NAME_V0_2 if version is InstrumenterVersion.V0_2_0 else GAS_COUNTER_NAME_V0_4


@dataclass(frozen=True)
class WasmtimeSettings:
    """The ``wasmtime::Config`` choices ref-fvm makes that affect which modules load and how
    they behave. Sizes are in bytes."""

    wasm_threads: bool = False
    wasm_simd: bool = False
    wasm_multi_memory: bool = False
    wasm_memory64: bool = False
    wasm_bulk_memory: bool = True
    wasm_multi_value: bool = False
    wasm_reference_types: bool = False
    cranelift_nan_canonicalization: bool = True
    # The native stack wasmtime allows; far above the instrumented limit (which counts values).
    max_wasm_stack: int = 4 << 20
    consume_fuel: bool = False
    epoch_interruption: bool = False
    debug_info: bool = False
    cranelift_opt_level: str = "speed"
    # ref-fvm v3 on: copy-on-write memory initialisation off, and linear memories reserved up
    # to the per-instance limit (``max_inst_memory_bytes``); None where ref-fvm left the default.
    # The reservation is recorded, not applied: the limit itself is the engine's to enforce
    # (ref-fvm's ``ResourceLimiter``), which is what decides when memory.grow returns -1.
    memory_init_cow: bool | None = None
    static_memory_maximum_size: int | None = None

    def wasmtime_config(self) -> wasmtime.Config:
        """A ``wasmtime.Config`` with these settings (the Python binding's equivalents)."""
        config = wasmtime.Config()
        config.wasm_threads = self.wasm_threads
        config.wasm_simd = self.wasm_simd
        config.wasm_relaxed_simd = False
        config.wasm_multi_memory = self.wasm_multi_memory
        config.wasm_memory64 = self.wasm_memory64
        config.wasm_bulk_memory = self.wasm_bulk_memory
        config.wasm_multi_value = self.wasm_multi_value
        config.wasm_tail_call = False
        config.wasm_gc = False
        config.wasm_function_references = False
        config.wasm_exceptions = False
        # The binding's wasmtime always has the component-model-async feature, which needs
        # reference types: ref-fvm's "off" is enforced by ``check_disabled_features`` instead.
        config.wasm_reference_types = True
        config.cranelift_nan_canonicalization = self.cranelift_nan_canonicalization
        # The Python binding builds wasmtime with async support, which refuses a native stack
        # limit above its 2 MiB fiber stacks (ref-fvm asks for 4 MiB): take the largest allowed.
        config.max_wasm_stack = min(self.max_wasm_stack, PYTHON_WASMTIME_MAX_STACK)
        config.consume_fuel = self.consume_fuel
        config.epoch_interruption = self.epoch_interruption
        config.debug_info = self.debug_info
        config.cranelift_opt_level = self.cranelift_opt_level
        if self.memory_init_cow is not None:
            config.memory_init_cow = self.memory_init_cow
        return config


@dataclass(frozen=True)
class EngineConfig:
    """Everything about loading actor code that one ref-fvm generation fixes."""

    ref_fvm: str
    instrumenter: InstrumenterVersion
    wasm_rules: WasmGasRules
    max_wasm_stack: int  # the instrumented stack-height limit, in stack values
    max_call_depth: int
    gas_module: str
    gas_counter_name: str
    wasmtime: WasmtimeSettings
    max_inst_memory_bytes: int | None = None  # v3 on: linear memory limit per instance
    max_memory_bytes: int | None = None  # v3 on: memory limit of a whole call stack


MAX_WASM_STACK: Final = 2048
MAX_CALL_DEPTH: Final = 1024

REF_FVM_V2_SETTINGS: Final = WasmtimeSettings()
REF_FVM_V3_SETTINGS: Final = WasmtimeSettings(
    memory_init_cow=False, static_memory_maximum_size=512 << 20
)


def _v2(rules: WasmGasRules) -> EngineConfig:
    return EngineConfig(
        ref_fvm="v2",
        instrumenter=InstrumenterVersion.V0_2_0,
        wasm_rules=rules,
        max_wasm_stack=MAX_WASM_STACK,
        max_call_depth=MAX_CALL_DEPTH,
        gas_module=GAS_MODULE_NAME,
        gas_counter_name=GAS_COUNTER_NAME_V0_2,
        wasmtime=REF_FVM_V2_SETTINGS,
    )


OH_SNAP_ENGINE: Final = _v2(OH_SNAP_WASM_RULES)
SKYR_ENGINE: Final = _v2(SKYR_WASM_RULES)
HYGGE_ENGINE: Final = EngineConfig(
    ref_fvm="v3",
    instrumenter=InstrumenterVersion.V0_4_0,
    wasm_rules=HYGGE_WASM_RULES,
    max_wasm_stack=MAX_WASM_STACK,
    max_call_depth=MAX_CALL_DEPTH,
    gas_module=GAS_MODULE_NAME,
    gas_counter_name=GAS_COUNTER_NAME_V0_4,
    wasmtime=REF_FVM_V3_SETTINGS,
    max_inst_memory_bytes=512 << 20,
    max_memory_bytes=2 << 30,
)


def engine_config_for_network_version(network_version: int) -> EngineConfig:
    """The engine settings ref-fvm uses at ``network_version`` (15 and later)."""
    if network_version < 15:
        raise ValueError(f"network version {network_version} predates the FVM")
    if network_version == 15:
        return OH_SNAP_ENGINE
    if network_version <= 17:
        return SKYR_ENGINE
    return HYGGE_ENGINE


_REFERENCE_TYPE_OPCODES: Final = frozenset(
    (
        wm.SELECT_TYPED,
        wm.TABLE_GET,
        wm.TABLE_SET,
        wm.REF_NULL,
        wm.REF_IS_NULL,
        wm.REF_FUNC,
        wm.TABLE_GROW,
        wm.TABLE_SIZE,
        wm.TABLE_FILL,
    )
)
_REFERENCE_BLOCK_TYPES: Final = frozenset(
    (wm.block_type_of_value(wm.FUNCREF), wm.block_type_of_value(wm.EXTERNREF))
)


def check_disabled_features(module: wm.WasmModule) -> None:
    """Refuse what ref-fvm's wasmtime would refuse for the reference-types proposal being off.

    The Python binding cannot switch that proposal off (see ``wasmtime_config``), so this check
    stands in for it: reference-typed values, the table and reference instructions, typed
    ``select``, more than one table and non-zero table indices. Everything else ref-fvm turns
    off the binding's configuration refuses itself (or :mod:`fvm.engine.wasm_module` does).
    """

    def refuse(what: str) -> wm.WasmError:
        return wm.WasmError(f"{what} needs the reference-types proposal, which ref-fvm disables")

    references = wm.REFERENCE_TYPES
    for func_type in module.types:
        if references.intersection(func_type.params + func_type.results):
            raise refuse("a reference-typed parameter or result")
    tables = [entry.desc for entry in module.imports if isinstance(entry.desc, wm.TableType)]
    tables += module.tables
    if len(tables) > 1:
        raise refuse("more than one table")
    if any(table.element_type != wm.FUNCREF for table in tables):
        raise refuse("an externref table")
    global_types = [entry.desc for entry in module.imports if isinstance(entry.desc, wm.GlobalType)]
    global_types += [entry.type for entry in module.globals]
    if any(global_type.value_type in references for global_type in global_types):
        raise refuse("a reference-typed global")
    for segment in module.elements:
        if segment.table_index != 0 or segment.element_type != wm.FUNCREF:
            raise refuse("an element segment for another table or type")
        for expr in segment.expressions:
            if wm.decode_const_expr(expr).opcodes[0] in _REFERENCE_TYPE_OPCODES:
                raise refuse("a reference instruction")
    for index, body in enumerate(module.code):
        if references.intersection(value_type for _, value_type in body.locals):
            raise refuse(f"a reference-typed local (function {index})")
        decoded = wm.decode_instructions(body.code, f"defined function {index}")
        for opcode, immediate in zip(decoded.opcodes, decoded.immediates, strict=True):
            if opcode in _REFERENCE_TYPE_OPCODES:
                raise refuse(f"{wm.opcode_name(opcode)} (function {index})")
            if opcode == wm.CALL_INDIRECT or opcode == wm.TABLE_COPY or opcode == wm.TABLE_INIT:
                assert isinstance(immediate, tuple)
                table_indices = immediate[1:] if opcode != wm.TABLE_COPY else immediate
                if any(table_index != 0 for table_index in table_indices):
                    raise refuse(f"{wm.opcode_name(opcode)} on a table other than 0")
            elif opcode in (wm.BLOCK, wm.LOOP, wm.IF) and immediate in _REFERENCE_BLOCK_TYPES:
                raise refuse("a reference-typed block")
