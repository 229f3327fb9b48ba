"""The consensus-relevant settings of ref-fvm's WebAssembly engine, per ref-fvm generation.

ref-fvm validates an actor's module with wasmtime, instruments it with fvm-wasm-instrument
(stack limiter, then gas metering) and compiles the result. What it passes to each step is
recorded here as data, from ``fvm/src/machine/engine.rs`` (``default_wasmtime_config``,
``Engine::get_instance``) at ``fvm@v2.12.1`` and ``fvm/src/engine/mod.rs`` (``wasmtime_config``,
``Engine::load_raw``, ``Engine::instantiate``) at ``fvm@v3.13.3`` (both on wasmtime 36), and
``NetworkConfig::new`` in ``fvm/src/machine/mod.rs`` of both:

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
    # wasmtime 36's default, which ref-fvm keeps (without the ``gc`` feature: funcref only).
    wasm_reference_types: bool = True
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
        # The binding's wasmtime has GC types (externref), which ref-fvm's lacks:
        # ``check_disabled_features`` refuses them instead.
        config.wasm_reference_types = self.wasm_reference_types
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
class PoolingLimits:
    """What wasmtime's pooling instance allocator admits, as ref-fvm v3 configures it
    (``wasmtime_config`` in ``fvm/src/engine/mod.rs`` at ``fvm@v3.13.3``: one memory and one
    table per module, ``table_elements(20_000)``, ``max_memory_size`` the instance memory limit).

    wasmtime checks every module it compiles against these (``Module::from_parts_raw`` calls
    the allocator's ``validate_module``: ``MemoryPool::validate_memories`` and
    ``TablePool::validate`` at wasmtime 36), so a module beyond them never loads.
    """

    max_memory_bytes: int
    table_elements: int
    memories_per_module: int = 1
    tables_per_module: int = 1


@dataclass(frozen=True)
class EngineConfig:
    """Everything about loading and instantiating actor code that one ref-fvm generation fixes.

    * ``pooling``: the pooling allocator's limits (None: v2 allocates on demand, unlimited);
    * ``loads_code_on_demand``: a code CID missing from the engine's module cache is loaded
      from the blockstore (v3 ``Engine::instantiate``); v2's ``Engine::get_instance`` only
      finds the builtin actors the machine preloaded (``DefaultMachine::new`` calls
      ``engine.preload`` with the manifest's codes), anything else is "actor code not found";
    * ``meters_instantiation``: instantiation charges the initial memory and table, runs a
      start function with the message's gas and charges what it used, and a failed
      instantiation exits with ``SYS_ILLEGAL_INSTRUCTION`` (v3.13.3 ``Engine::instantiate``);
      without it (v2) nothing is charged, the gas global is 0 while a start function runs and
      any instantiation failure is fatal.
    """

    ref_fvm: str
    instrumenter: InstrumenterVersion
    wasm_rules: WasmGasRules
    max_wasm_stack: int  # the instrumented stack-height limit, in stack values
    max_call_depth: int
    gas_module: str
    gas_counter_name: str
    wasmtime: WasmtimeSettings
    loads_code_on_demand: bool
    meters_instantiation: bool
    pooling: PoolingLimits | None = None
    max_inst_memory_bytes: int | None = None  # v3 on: linear memory limit per instance
    max_memory_bytes: int | None = None  # v3 on: memory limit of a whole call stack


MAX_WASM_STACK: Final = 2048
MAX_CALL_DEPTH: Final = 1024
MAX_INSTANCE_MEMORY_BYTES: Final = 512 << 20
MAX_TABLE_ELEMENTS: Final = 20_000

REF_FVM_V2_SETTINGS: Final = WasmtimeSettings()
REF_FVM_V3_SETTINGS: Final = WasmtimeSettings(
    memory_init_cow=False, static_memory_maximum_size=MAX_INSTANCE_MEMORY_BYTES
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
        loads_code_on_demand=False,
        meters_instantiation=False,
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
    loads_code_on_demand=True,
    meters_instantiation=True,
    pooling=PoolingLimits(
        max_memory_bytes=MAX_INSTANCE_MEMORY_BYTES, table_elements=MAX_TABLE_ELEMENTS
    ),
    max_inst_memory_bytes=MAX_INSTANCE_MEMORY_BYTES,
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


def check_disabled_features(module: wm.WasmModule, version: InstrumenterVersion) -> None:
    """Refuse, from the module's declarations, what ref-fvm's wasmtime and instrumenter refuse
    about reference types; the instructions are the instrumentation's to refuse.

    ref-fvm v2.12.1 and v3.13.3 build on wasmtime 36 without its ``gc`` feature: the
    reference-types proposal is on, but GC types are off, so ``externref`` is invalid wherever
    it appears (wasmparser ``WasmFeatures::GC_TYPES``). The Python binding accepts it, so this
    check stands in (``externref`` block types are refused by the stack limiter, which reads
    every block). Beyond that:

    * fvm-wasm-instrument 0.2.0 (network versions up to 17) reads modules with parity-wasm
      0.42, which knows no reference-typed values (``ValueType``: numbers only) and reads only
      element segments of flags 0 (flags 1 and 2 lack its elemkind byte, 3 to 7 are
      ``InvalidSegmentFlags``);
    * fvm-wasm-instrument 0.4.0 (network version 18 on) reads funcref values, tables and
      element segments; a second table is the pooling allocator's to refuse.
    """

    def refuse(what: str) -> wm.WasmError:
        return wm.WasmError(f"{what} is not loadable by ref-fvm (reference types)")

    function_types = [value for t in module.types for value in t.params + t.results]
    globals_ = [entry.desc for entry in module.imports if isinstance(entry.desc, wm.GlobalType)]
    globals_ += [entry.type for entry in module.globals]
    global_types = [global_type.value_type for global_type in globals_]
    tables = [entry.desc for entry in module.imports if isinstance(entry.desc, wm.TableType)]
    tables += module.tables
    element_types = [table.element_type for table in tables]
    element_types += [segment.element_type for segment in module.elements]
    local_types = [value for body in module.code for _, value in body.locals]
    if wm.EXTERNREF in (*function_types, *global_types, *element_types, *local_types):
        raise refuse("externref (wasmtime without GC types)")
    if version is InstrumenterVersion.V0_2_0:
        if wm.FUNCREF in (*function_types, *global_types, *local_types):
            raise refuse("a funcref value (parity-wasm)")
        if any(segment.flags != 0 for segment in module.elements):
            raise refuse("an element segment other than flags 0 (parity-wasm)")
