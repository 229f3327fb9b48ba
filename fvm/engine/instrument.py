"""Instrument an actor's WebAssembly module the way ref-fvm does before compiling it.

ref-fvm's ``Engine::load_raw`` (``fvm/src/machine/engine.rs`` in v2, ``fvm/src/engine.rs`` in
v3) runs fvm-wasm-instrument's stack limiter first (so that its call wrappers are metered too)
and its gas metering second, with the price list's wasm rules, a stack limit of 2048 and the
gas counter imported from module ``gas``. :func:`instrument` does the same with a port of either
release ref-fvm used (0.2.0 up to network version 17, 0.4.0 from 18 on); see
:mod:`fvm.engine.stack_limiter` and :mod:`fvm.engine.gas_metering` for the algorithms and the
reference's quirks, which are reproduced because they decide how much gas every execution
costs. The output is not byte-identical to the Rust output (section layout, type
deduplication) but behaves identically: same traps, same gas charged at the same points.
"""

from __future__ import annotations

from fvm.engine import wasm_module as wm
from fvm.engine.config import (
    GAS_MODULE_NAME,
    EngineConfig,
    InstrumenterVersion,
    gas_counter_name,
)
from fvm.engine.function_code import FunctionCode
from fvm.engine.gas_metering import inject_gas_metering
from fvm.engine.gas_rules import WasmGasRules, WasmGasRulesV3
from fvm.engine.stack_limiter import InstrumentationError, inject_stack_limiter

__all__ = [
    "InstrumentationError",
    "InstrumenterVersion",
    "WasmGasRules",
    "instrument",
    "instrument_for",
    "instrument_module",
]


def instrument_module(
    module: wm.WasmModule,
    rules: WasmGasRules,
    stack_limit: int,
    version: InstrumenterVersion,
    gas_module: str = GAS_MODULE_NAME,
    counter_name: str | None = None,
) -> wm.WasmModule:
    """Instrument ``module`` in place (and return it)."""
    if not 0 <= stack_limit < 1 << 32:
        raise ValueError(f"stack limit {stack_limit} is not a u32")
    if version is InstrumenterVersion.V0_2_0 and isinstance(rules, WasmGasRulesV3):
        raise ValueError("fvm-wasm-instrument 0.2.0 cannot apply ref-fvm v3 gas rules")
    imported = module.imported_function_count
    bodies = [FunctionCode.decode(body, imported + i) for i, body in enumerate(module.code)]
    inject_stack_limiter(module, bodies, stack_limit, version)
    inject_gas_metering(
        module,
        bodies,
        rules.costs,
        version,
        gas_module,
        counter_name if counter_name is not None else gas_counter_name(version),
    )
    return module


def instrument(
    module_bytes: bytes,
    rules: WasmGasRules,
    stack_limit: int,
    version: InstrumenterVersion,
    gas_module: str = GAS_MODULE_NAME,
    counter_name: str | None = None,
) -> bytes:
    """The instrumented form of a WebAssembly binary.

    Raises :class:`~fvm.engine.wasm_module.WasmError` for bytes that are not a module this
    codec reads, and :class:`InstrumentationError` (a subclass) where fvm-wasm-instrument
    would refuse the module.
    """
    module = wm.decode_module(module_bytes)
    instrument_module(module, rules, stack_limit, version, gas_module, counter_name)
    return wm.encode_module(module)


def instrument_for(module_bytes: bytes, config: EngineConfig) -> bytes:
    """Instrument with everything one ref-fvm generation fixes (rules, limit, names)."""
    return instrument(
        module_bytes,
        config.wasm_rules,
        config.max_wasm_stack,
        config.instrumenter,
        config.gas_module,
        config.gas_counter_name,
    )
