"""The WebAssembly codec: the real actor modules round-trip, every section kind and instruction
family decodes to the right values, and malformed bytes raise WasmError."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.bundle import load_bundle
from fvm.engine import wasm_module as wm
from fvm.engine.config import HYGGE_ENGINE, SKYR_ENGINE
from store.errors import MalformedInput


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


@functools.cache
def _modules(actors_dir: Path, version: int) -> tuple[tuple[str, bytes], ...]:
    bundle = load_bundle(actors_dir / f"v{version}.tar.zst", "mainnet")
    by_code = dict(bundle.blocks)
    return tuple((name, by_code[code]) for name, code in bundle.actors.items())


@pytest.mark.parametrize("version", [9, 10])
def test_every_mainnet_actor_module_round_trips_byte_for_byte(
    actors_dir: Path, version: int
) -> None:
    config = SKYR_ENGINE if version == 9 else HYGGE_ENGINE
    engine = wasmtime.Engine(config.wasmtime.wasmtime_config())
    modules = _modules(actors_dir, version)
    assert [name for name, _ in modules][:3] == ["system", "init", "cron"]
    for name, raw in modules:
        module = wm.decode_module(raw)
        encoded = wm.encode_module(module)
        assert encoded == raw, name
        wasmtime.Module.validate(engine, encoded)
        # What the Rust toolchain emits for an actor: memory, globals, one table, the
        # invoke entry point, and syscalls imported as functions only.
        assert {e.name for e in module.exports} >= {"memory", "invoke"}, name
        assert all(i.kind == wm.KIND_FUNCTION for i in module.imports), name
        assert len(module.tables) == 1 and len(module.memories) == 1, name


@pytest.mark.parametrize("version", [9, 10])
def test_every_instruction_of_the_actors_re_encodes_to_the_same_instruction(
    actors_dir: Path, version: int
) -> None:
    for name, raw in _modules(actors_dir, version):
        module = wm.decode_module(raw)
        for index, function_body in enumerate(module.code):
            decoded = wm.decode_instructions(function_body.code)
            assert decoded.offsets[-1] == len(function_body.code)
            again = wm.decode_instructions(
                wm.encode_instructions(decoded.opcodes, decoded.immediates)
            )
            assert (again.opcodes, again.immediates) == (
                decoded.opcodes, decoded.immediates
            ), f"{name} function {index}"


def test_actor_code_pads_its_stack_pointer_index_as_the_linker_leaves_it(
    actors_dir: Path,
) -> None:
    # rustc/lld leave `global.get __stack_pointer` with a 5-byte LEB128 index; the codec
    # accepts it, and re-encoding an instruction writes the minimal form.
    raw = dict(_modules(actors_dir, 10))["account"]
    first = wm.decode_module(raw).code[0]
    decoded = wm.decode_instructions(first.code)
    assert decoded.opcodes[0] == wm.GLOBAL_GET and decoded.immediates[0] == 0
    assert first.code[: decoded.offsets[1]] == bytes.fromhex("238080808000")
    assert wm.encode_instructions(decoded.opcodes[:1], decoded.immediates[:1]) == b"\x23\x00"


ALL_SECTIONS = """(module
  (type $t (func (param i32 i64) (result i32)))
  (import "env" "f" (func $imported (type $t)))
  (import "env" "g" (global $g i32))
  (import "env" "m" (memory 1 5))
  (func $defined (type $t) (local i32 i32) (local f64)
    local.get 0)
  (func $start)
  (table 3 10 funcref)
  (global $mutable (mut i64) (i64.const -5))
  (global $float f32 (f32.const nan:0x200000))
  (export "defined" (func $defined))
  (export "global" (global $mutable))
  (start $start)
  (elem (i32.const 1) $defined $imported)
  (elem func $start)
  (elem declare func $defined)
  (data (i32.const 16) "hello")
  (data "passive")
  (@custom "first" (before type) "abc")
  (@custom "last" (after data) "xyz"))"""


def test_module_with_every_section_kind_decodes_and_round_trips() -> None:
    raw = wat(ALL_SECTIONS)
    module = wm.decode_module(raw)
    assert module.types[0] == wm.FuncType((wm.I32, wm.I64), (wm.I32,))
    assert module.imports == [
        wm.Import("env", "f", wm.KIND_FUNCTION, 0),
        wm.Import("env", "g", wm.KIND_GLOBAL, wm.GlobalType(wm.I32, False)),
        wm.Import("env", "m", wm.KIND_MEMORY, wm.MemoryType(wm.Limits(1, 5))),
    ]
    assert module.imported_function_count == 1 and module.imported_global_count == 1
    assert module.function_type(1) == module.types[0]
    assert module.tables == [wm.TableType(wm.FUNCREF, wm.Limits(3, 10))]
    assert module.globals[0] == wm.Global(wm.GlobalType(wm.I64, True), b"\x42\x7b\x0b")
    assert module.globals[1].init == b"\x43\x00\x00\xa0\x7f\x0b"  # the NaN payload survives
    assert module.exports == [
        wm.Export("defined", wm.KIND_FUNCTION, 1),
        wm.Export("global", wm.KIND_GLOBAL, 1),
    ]
    assert module.start == 2
    active, passive, declared = module.elements
    assert active.is_active and active.offset == b"\x41\x01\x0b" and active.functions == (1, 0)
    assert not passive.is_active and passive.flags == 1 and passive.functions == (2,)
    assert declared.flags == 3 and declared.functions == (1,)
    assert module.data[0] == wm.DataSegment(0, b"hello", 0, b"\x41\x10\x0b")
    assert module.data[1] == wm.DataSegment(1, b"passive")
    assert module.code[0].locals == ((2, wm.I32), (1, wm.F64))
    assert module.code[0].local_count == 3
    # The text format's symbolic names come back as a "name" section at the end.
    assert [(c.name, c.data, c.after) for c in module.custom_sections[:2]] == [
        ("first", b"abc", 0),
        ("last", b"xyz", wm.SECTION_DATA),
    ]
    assert module.custom_sections[2].name == "name"
    assert wm.encode_module(module) == raw


def test_element_expressions_and_data_count_round_trip() -> None:
    raw = wat("""(module
        (table 2 funcref)
        (func $f)
        (elem (table 0) (i32.const 0) funcref (ref.func $f) (ref.null func))
        (memory 1)
        (func (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 1)) (data.drop 0))
        (data "x"))""")
    module = wm.decode_module(raw)
    assert module.elements[0].uses_expressions
    assert module.elements[0].expressions == (b"\xd2\x00\x0b", b"\xd0\x70\x0b")
    assert module.data_count == 1
    assert wm.encode_module(module) == raw


def test_instruction_families_decode_with_their_immediates() -> None:
    raw = wat("""(module (memory 1) (table 1 funcref) (type $v (func))
        (func (param i32) (result i32) (local i64)
            block $out (result i32)
                loop $again
                    local.get 0
                    br_table $again $out $again
                end
                i32.const -1
            end
            i64.const 0x7fffffffffffffff local.set 1
            f64.const -0.5 drop
            i32.const 0 i64.load32_u offset=8 align=4 drop
            i32.const 0 i32.extend8_s drop
            f32.const 1 i32.trunc_sat_f32_u drop
            i32.const 0 i32.const 0 i32.const 0 memory.copy
            i32.const 0 i32.const 7 i32.const 9 memory.fill
            memory.size memory.grow drop
            i32.const 0 call_indirect (type $v)
            i32.const 0 i32.const 1 local.get 0 select))""")
    decoded = wm.decode_instructions(wm.decode_module(raw).code[0].code)
    pairs = list(zip(decoded.names(), decoded.immediates, strict=True))
    assert pairs[:6] == [
        ("block", wm.block_type_of_value(wm.I32)),
        ("loop", wm.BLOCK_EMPTY),
        ("local.get", 0),
        ("br_table", ((0, 1), 0)),
        ("end", None),
        ("i32.const", -1),
    ]
    assert ("i64.const", 0x7FFFFFFFFFFFFFFF) in pairs
    assert ("f64.const", bytes.fromhex("000000000000e0bf")) in pairs
    assert ("i64.load32_u", (2, 8)) in pairs
    assert ("i32.extend8_s", None) in pairs
    assert ("i32.trunc_sat_f32_u", None) in pairs
    assert ("memory.copy", (0, 0)) in pairs
    assert ("memory.fill", 0) in pairs
    assert ("memory.grow", 0) in pairs
    assert ("call_indirect", (0, 0)) in pairs
    assert pairs[-2:] == [("select", None), ("end", None)]
    assert decoded.opcodes[decoded.names().index("memory.copy")] == wm.MEMORY_COPY == 0xFC0A


@pytest.mark.parametrize(
    ("value", "bits"),
    [(0, 32), (127, 32), (128, 32), (2**32 - 1, 32), (2**64 - 1, 64), (624485, 32)],
)
def test_unsigned_leb128_round_trips(value: int, bits: int) -> None:
    encoded = wm.encode_uleb(value)
    assert wm.read_uleb(encoded, 0, bits) == (value, len(encoded))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_signed_leb128_round_trips(value: int) -> None:
    encoded = wm.encode_sleb(value)
    assert wm.read_sleb(encoded, 0, 64) == (value, len(encoded))
    if -(2**31) <= value < 2**31:
        assert wm.read_sleb(encoded, 0, 32) == (value, len(encoded))


def test_leb128_limits_follow_the_specification() -> None:
    assert wm.read_uleb(bytes.fromhex("e58e26"), 0) == (624485, 3)
    assert wm.read_sleb(bytes.fromhex("c0bb78"), 0, 32) == (-123456, 3)
    # Padding up to the maximum length is allowed...
    assert wm.read_uleb(bytes.fromhex("8080808000"), 0) == (0, 5)
    assert wm.read_sleb(bytes.fromhex("ffffffff7f"), 0, 32) == (-1, 5)
    # ...but not beyond it, nor unused bits set in the last byte.
    for bad in ("808080808000", "ffffffff1f"):
        with pytest.raises(wm.WasmError):
            wm.read_uleb(bytes.fromhex(bad), 0)
    with pytest.raises(wm.WasmError):
        wm.read_sleb(bytes.fromhex("ffffffff4f"), 0, 32)
    with pytest.raises(wm.WasmError):
        wm.read_uleb(b"\x80", 0)


MALFORMED = {
    "bad magic": b"\x00wasm\x01\x00\x00\x00",
    "bad version": b"\x00asm\x02\x00\x00\x00",
    "truncated section": b"\x00asm\x01\x00\x00\x00\x01\x05\x01\x60",
    "unknown section": b"\x00asm\x01\x00\x00\x00\x0e\x00",
    "repeated section": b"\x00asm\x01\x00\x00\x00\x01\x01\x00\x01\x01\x00",
    "out of order": b"\x00asm\x01\x00\x00\x00\x03\x01\x00\x01\x01\x00",
    "trailing bytes in section": b"\x00asm\x01\x00\x00\x00\x01\x02\x00\x00",
    "bad type form": b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x61\x00\x00",
    "bad value type": b"\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x01\x11\x00",
    "shared memory": b"\x00asm\x01\x00\x00\x00\x05\x04\x01\x03\x01\x01",
    "bodies without functions": (
        b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x0a\x04\x01\x02\x00\x0b"
    ),
    "invalid utf-8 name": b"\x00asm\x01\x00\x00\x00\x00\x03\x02\xff\xfe",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_modules_raise_wasm_error(name: str) -> None:
    with pytest.raises(wm.WasmError) as raised:
        wm.decode_module(MALFORMED[name])
    assert isinstance(raised.value, MalformedInput)


def _one_function(code: bytes) -> bytes:
    """A module of one ``(func)`` whose body (after its empty locals) is ``code``."""
    body = b"\x00" + code
    entry = wm.encode_uleb(len(body)) + body
    section = b"\x01" + entry
    return (
        b"\x00asm\x01\x00\x00\x00"
        + b"\x01\x04\x01\x60\x00\x00"
        + b"\x03\x02\x01\x00"
        + b"\x0a" + wm.encode_uleb(len(section)) + section
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (b"\xfd\x0c" + bytes(16) + b"\x1a\x0b", "SIMD"),
        (b"\xfe\x03\x00\x0b", "atomic"),
        (b"\x06\x40\x0b\x0b", "exception"),
        (b"\x12\x00\x0b", "tail call"),
        (b"\xfc\x13\x0b", "0xfc 19"),
        (b"\x02\x40\x0b", "missing end"),
        (b"\x0b\x01\x0b", "after the final end"),
        (b"\x28\x0b", "past the end"),
        (b"\x44\x00\x0b", "past the end"),
        (b"\x3f\x01\x1a\x0b", "memory index"),
        (b"\x28\xc0\x00\x00\x1a\x0b", "multi-memory"),
    ],
)
def test_unsupported_or_malformed_instructions_raise_wasm_error(code: bytes, message: str) -> None:
    module = wm.decode_module(_one_function(code))
    with pytest.raises(wm.WasmError, match=message):
        wm.decode_instructions(module.code[0].code)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_modules_either_decode_or_raise_wasm_error(data: st.DataObject) -> None:
    raw = bytearray(wat(ALL_SECTIONS))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(raw)))
    try:
        module = wm.decode_module(bytes(raw[:cut]))
        for function_body in module.code:
            wm.decode_instructions(function_body.code)
    except wm.WasmError:
        return
    assert wm.decode_module(wm.encode_module(module)) == module
