"""Compiled-module cache: compile once, read back from disk, rebuild what does not read back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import wasmtime

from fvm.bundle import load_bundle
from fvm.engine import engine_config_for_network_version
from fvm.engine.module_cache import ModuleCache, ModuleLayout, ModuleLoadError
from store.cid import CID, RAW
from store.errors import MalformedInput

HYGGE = engine_config_for_network_version(18)
SKYR = engine_config_for_network_version(17)

SMALL_MODULE = """
(module
  (import "vm" "exit" (func $exit (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (table 3 funcref)
  (func (export "invoke") (param i32) (result i32)
    (i32.add (local.get 0) (i32.const 1))))
"""


def _wasm(wat: str) -> tuple[CID, bytes]:
    wasm = bytes(wasmtime.wat2wasm(wat))
    return CID.hash_of(wasm, codec=RAW), wasm


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.iterdir())


def _call_invoke(cache: ModuleCache, code: CID, wasm: bytes, argument: int) -> int:
    compiled = cache.get(code, wasm)
    store = wasmtime.Store(cache.engine)
    linker = wasmtime.Linker(cache.engine)
    linker.define_func(
        "vm",
        "exit",
        wasmtime.FuncType([wasmtime.ValType.i32()] * 4, [wasmtime.ValType.i32()]),
        lambda *args: 0,
    )
    gas = wasmtime.Global(store, wasmtime.GlobalType(wasmtime.ValType.i64(), True), 1 << 40)
    linker.define(store, "gas", HYGGE.gas_counter_name, gas)
    instance = linker.instantiate(store, compiled.module)
    invoke = instance.exports(store)["invoke"]
    assert isinstance(invoke, wasmtime.Func)
    result = invoke(store, argument)
    assert isinstance(result, int)
    return result


def test_a_module_is_compiled_once_then_read_back_from_disk(tmp_path: Path) -> None:
    code, wasm = _wasm(SMALL_MODULE)
    cold = ModuleCache(HYGGE, tmp_path)
    compiled = cold.get(code, wasm)
    assert (cold.compiled, cold.loaded) == (1, 0)
    assert cold.get(code, wasm) is compiled
    assert compiled.layout == ModuleLayout(table_elements=3, memory_pages=2)
    assert _entries(tmp_path) == [cold.path_for(code)]

    warm = ModuleCache(HYGGE, tmp_path)
    again = warm.get(code, wasm)
    assert (warm.compiled, warm.loaded) == (0, 1)
    assert again.layout == compiled.layout
    assert again.instrumented_size == compiled.instrumented_size
    assert _call_invoke(warm, code, wasm, 41) == 42


def test_the_instrumented_module_imports_the_gas_counter(tmp_path: Path) -> None:
    code, wasm = _wasm(SMALL_MODULE)
    compiled = ModuleCache(HYGGE, tmp_path).get(code, wasm)
    imports = {(item.module, item.name) for item in compiled.module.imports}
    assert imports == {("vm", "exit"), ("gas", "gas_counter")}
    skyr = ModuleCache(SKYR, tmp_path).get(code, wasm)
    assert ("gas", "gas_couner") in {(item.module, item.name) for item in skyr.module.imports}


def test_engine_configurations_do_not_share_disk_entries(tmp_path: Path) -> None:
    code, wasm = _wasm(SMALL_MODULE)
    hygge = ModuleCache(HYGGE, tmp_path)
    skyr = ModuleCache(SKYR, tmp_path)
    assert hygge.key != skyr.key
    assert hygge.path_for(code) != skyr.path_for(code)
    hygge.get(code, wasm)
    skyr.get(code, wasm)
    assert skyr.compiled == 1
    assert len(_entries(tmp_path)) == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_a_damaged_disk_entry_is_ignored_and_rebuilt(tmp_path: Path, damage: str) -> None:
    code, wasm = _wasm(SMALL_MODULE)
    ModuleCache(HYGGE, tmp_path).get(code, wasm)
    path = ModuleCache(HYGGE, tmp_path).path_for(code)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-100] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"\x00asm" + os.urandom(200))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))

    rebuilt = ModuleCache(HYGGE, tmp_path)
    assert _call_invoke(rebuilt, code, wasm, 1) == 2
    assert (rebuilt.compiled, rebuilt.loaded) == (1, 0)
    assert ModuleCache(HYGGE, tmp_path).get(code, wasm) is not None
    reread = ModuleCache(HYGGE, tmp_path)
    reread.get(code, wasm)
    assert (reread.compiled, reread.loaded) == (0, 1)


def test_an_entry_for_another_code_cid_is_not_used(tmp_path: Path) -> None:
    code, wasm = _wasm(SMALL_MODULE)
    other_code, other_wasm = _wasm(SMALL_MODULE.replace("i32.const 1", "i32.const 2"))
    cache = ModuleCache(HYGGE, tmp_path)
    cache.get(other_code, other_wasm)
    cache.path_for(other_code).rename(cache.path_for(code))
    fresh = ModuleCache(HYGGE, tmp_path)
    assert _call_invoke(fresh, code, wasm, 1) == 2
    assert fresh.compiled == 1


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    cache = ModuleCache(HYGGE, tmp_path)
    for increment in range(3):
        code, wasm = _wasm(SMALL_MODULE.replace("i32.const 1", f"i32.const {increment}"))
        cache.get(code, wasm)
    assert [path.suffix for path in _entries(tmp_path)] == [".cwasm"] * 3


def test_an_unwritable_cache_directory_only_costs_recompilation(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-directory"
    blocked.write_bytes(b"")
    code, wasm = _wasm(SMALL_MODULE)
    cache = ModuleCache(HYGGE, blocked / "cache")
    assert _call_invoke(cache, code, wasm, 5) == 6
    assert cache.compiled == 1


def test_memory_only_cache_writes_nothing(tmp_path: Path) -> None:
    code, wasm = _wasm(SMALL_MODULE)
    cache = ModuleCache(HYGGE, tmp_path, persist=False)
    cache.get(code, wasm)
    assert _entries(tmp_path) == []


def test_code_that_does_not_hash_to_its_cid_is_refused(tmp_path: Path) -> None:
    code, _ = _wasm(SMALL_MODULE)
    _, other = _wasm(SMALL_MODULE.replace("i32.const 1", "i32.const 9"))
    with pytest.raises(ModuleLoadError):
        ModuleCache(HYGGE, tmp_path).get(code, other)


def test_invalid_wasm_is_refused_as_malformed_input(tmp_path: Path) -> None:
    wasm = bytes(wasmtime.wat2wasm('(module (func (export "f") (result i32) (i32.const 1)))'))
    ill_typed = wasm.replace(b"\x41\x01", b"\x42\x01")  # i32.const 1 -> i64.const 1
    with pytest.raises(MalformedInput):
        ModuleCache(HYGGE, tmp_path).get(CID.hash_of(ill_typed, codec=RAW), ill_typed)


def test_reference_instructions_the_instrumenters_cannot_price_are_refused(
    tmp_path: Path,
) -> None:
    wat = "(module (func (export \"f\") (result i32) (ref.is_null (ref.null func))))"
    wasm = bytes(wasmtime.wat2wasm(wat))
    for config in (SKYR, HYGGE):
        with pytest.raises(MalformedInput):
            ModuleCache(config, tmp_path).get(CID.hash_of(wasm, codec=RAW), wasm)


def test_modules_beyond_the_pooling_limits_are_refused_and_never_written(
    tmp_path: Path,
) -> None:
    code, wasm = _wasm(SMALL_MODULE.replace("(table 3 funcref)", "(table 20001 funcref)"))
    with pytest.raises(ModuleLoadError, match="exceeds the limit of 20000"):
        ModuleCache(HYGGE, tmp_path).get(code, wasm)
    assert _entries(tmp_path) == []
    # ref-fvm v2 allocates on demand: no such limit.
    assert ModuleCache(SKYR, tmp_path).get(code, wasm).layout.table_elements == 20001


def test_real_actor_module_round_trips_through_the_disk_cache(
    actors_dir: Path, tmp_path: Path
) -> None:
    bundle = load_bundle(actors_dir / "v10.tar.zst")
    code = bundle.actors["account"]
    wasm = dict(bundle.blocks)[code]
    cold = ModuleCache(HYGGE, tmp_path)
    compiled = cold.preload([(code, wasm)])[0]
    warm = ModuleCache(HYGGE, tmp_path)
    reloaded = warm.preload([(code, wasm), (code, wasm)], workers=2)
    assert (warm.compiled, warm.loaded) == (0, 1)
    assert len(reloaded) == 1
    assert reloaded[0].layout == compiled.layout == ModuleLayout(288, 17)
    exports = {item.name for item in reloaded[0].module.exports}
    assert {"memory", "invoke"} <= exports
