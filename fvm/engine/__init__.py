"""The FVM's WebAssembly engine: reading actor modules and preparing them the way ref-fvm does.

ref-fvm runs builtin-actor code under wasmtime after instrumenting it with fvm-wasm-instrument
(a stack-height limiter, then gas metering), so the gas an execution uses depends on exactly how
the instrumentation cuts code into metered blocks and prices instructions. This package holds:

* :mod:`fvm.engine.wasm_module` - a WebAssembly binary codec (modules, function bodies,
  instructions);
* :mod:`fvm.engine.instrument` - the port of both fvm-wasm-instrument releases ref-fvm used,
  built from :mod:`fvm.engine.stack_limiter` and :mod:`fvm.engine.gas_metering`;
* :mod:`fvm.engine.gas_rules` - the price lists' per-instruction costs (ref-fvm v2 and v3);
* :mod:`fvm.engine.config` - ref-fvm's engine settings per network version, including its
  wasmtime configuration.
"""

from fvm.engine.config import (
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
    WasmGasRules,
    WasmGasRulesV2,
    WasmGasRulesV3,
    wasm_rules_for_network_version,
)
from fvm.engine.instrument import (
    InstrumentationError,
    instrument,
    instrument_for,
    instrument_module,
)
from fvm.engine.wasm_module import WasmError, WasmModule, decode_module, encode_module

__all__ = [
    "HYGGE_ENGINE",
    "HYGGE_WASM_RULES",
    "SKYR_ENGINE",
    "SKYR_WASM_RULES",
    "EngineConfig",
    "InstrumentationError",
    "InstrumenterVersion",
    "WasmError",
    "WasmGasRules",
    "WasmGasRulesV2",
    "WasmGasRulesV3",
    "WasmModule",
    "check_disabled_features",
    "decode_module",
    "encode_module",
    "engine_config_for_network_version",
    "instrument",
    "instrument_for",
    "instrument_module",
    "wasm_rules_for_network_version",
]
