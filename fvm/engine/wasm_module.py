"""A WebAssembly binary codec: modules to Python values and back.

The FVM instruments every actor module before it runs it (see :mod:`fvm.engine.instrument`), so
the node needs to read a module's sections, take its function bodies apart instruction by
instruction, and write a module back. The format is the WebAssembly core specification's binary
format (chapter 5, "Binary Format"), version 1, with the proposals the actor modules and ref-fvm's
wasmtime configuration can contain: bulk memory, sign extension, non-trapping float-to-int,
multi-value block types and the reference-types instructions. SIMD, threads, exception handling,
tail calls, memory64 and multi-memory are rejected with :class:`WasmError`, as is anything that is
not well-formed. Validation (typing) is left to wasmtime, as ref-fvm does.

Function bodies keep their raw bytes; :func:`decode_instructions` turns one into parallel lists
(opcode, immediate, byte offset), which is compact and fast enough for the 1.5 MB actor modules.
Opcodes of the ``0xFC`` family are numbered ``0xFC00 | sub-opcode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from store.errors import MalformedInput


class WasmError(MalformedInput):
    """Bytes that are not a well-formed WebAssembly module this node supports."""


MAGIC: Final = b"\x00asm"
VERSION: Final = b"\x01\x00\x00\x00"

# -- value and reference types (their binary encodings) -------------------------------------------

I32: Final = 0x7F
I64: Final = 0x7E
F32: Final = 0x7D
F64: Final = 0x7C
V128: Final = 0x7B
FUNCREF: Final = 0x70
EXTERNREF: Final = 0x6F
VALUE_TYPES: Final = frozenset((I32, I64, F32, F64, V128, FUNCREF, EXTERNREF))
REFERENCE_TYPES: Final = frozenset((FUNCREF, EXTERNREF))

# Block types are kept as the signed 33-bit integer the binary format encodes: -64 (the byte
# 0x40) for "no result", a negative number for a single value type (0x7F -> -1 ...) and a type
# index (>= 0) for a multi-value signature.
BLOCK_EMPTY: Final = -64


def block_type_of_value(value_type: int) -> int:
    """The block type of a block yielding one ``value_type``."""
    return value_type - 0x80


# -- section ids ----------------------------------------------------------------------------------

SECTION_CUSTOM: Final = 0
SECTION_TYPE: Final = 1
SECTION_IMPORT: Final = 2
SECTION_FUNCTION: Final = 3
SECTION_TABLE: Final = 4
SECTION_MEMORY: Final = 5
SECTION_GLOBAL: Final = 6
SECTION_EXPORT: Final = 7
SECTION_START: Final = 8
SECTION_ELEMENT: Final = 9
SECTION_CODE: Final = 10
SECTION_DATA: Final = 11
SECTION_DATA_COUNT: Final = 12
# The order the specification requires for non-custom sections (data count sits before code).
SECTION_ORDER: Final = (
    SECTION_TYPE,
    SECTION_IMPORT,
    SECTION_FUNCTION,
    SECTION_TABLE,
    SECTION_MEMORY,
    SECTION_GLOBAL,
    SECTION_EXPORT,
    SECTION_START,
    SECTION_ELEMENT,
    SECTION_DATA_COUNT,
    SECTION_CODE,
    SECTION_DATA,
)
_SECTION_RANK: Final = {section_id: rank for rank, section_id in enumerate(SECTION_ORDER, 1)}

# External kinds (imports and exports).
KIND_FUNCTION: Final = 0
KIND_TABLE: Final = 1
KIND_MEMORY: Final = 2
KIND_GLOBAL: Final = 3

# -- opcodes --------------------------------------------------------------------------------------

UNREACHABLE: Final = 0x00
NOP: Final = 0x01
BLOCK: Final = 0x02
LOOP: Final = 0x03
IF: Final = 0x04
ELSE: Final = 0x05
END: Final = 0x0B
BR: Final = 0x0C
BR_IF: Final = 0x0D
BR_TABLE: Final = 0x0E
RETURN: Final = 0x0F
CALL: Final = 0x10
CALL_INDIRECT: Final = 0x11
DROP: Final = 0x1A
SELECT: Final = 0x1B
SELECT_TYPED: Final = 0x1C
LOCAL_GET: Final = 0x20
LOCAL_SET: Final = 0x21
LOCAL_TEE: Final = 0x22
GLOBAL_GET: Final = 0x23
GLOBAL_SET: Final = 0x24
TABLE_GET: Final = 0x25
TABLE_SET: Final = 0x26
MEMORY_SIZE: Final = 0x3F
MEMORY_GROW: Final = 0x40
I32_CONST: Final = 0x41
I64_CONST: Final = 0x42
F32_CONST: Final = 0x43
F64_CONST: Final = 0x44
I32_ADD: Final = 0x6A
I32_SUB: Final = 0x6B
I32_GT_U: Final = 0x4B
I64_LT_S: Final = 0x53
I64_SUB: Final = 0x7D
I64_MUL: Final = 0x7E
I64_EXTEND_I32_U: Final = 0xAD
REF_NULL: Final = 0xD0
REF_IS_NULL: Final = 0xD1
REF_FUNC: Final = 0xD2
PREFIX_FC: Final = 0xFC
MEMORY_INIT: Final = 0xFC08
DATA_DROP: Final = 0xFC09
MEMORY_COPY: Final = 0xFC0A
MEMORY_FILL: Final = 0xFC0B
TABLE_INIT: Final = 0xFC0C
ELEM_DROP: Final = 0xFC0D
TABLE_COPY: Final = 0xFC0E
TABLE_GROW: Final = 0xFC0F
TABLE_SIZE: Final = 0xFC10
TABLE_FILL: Final = 0xFC11

# Immediate kinds: how the bytes after an opcode are laid out.
_IMM_NONE: Final = 0
_IMM_U32: Final = 1  # one index or label
_IMM_BLOCK: Final = 2  # block type
_IMM_MEMARG: Final = 3  # (align, offset)
_IMM_I32: Final = 4
_IMM_I64: Final = 5
_IMM_F32: Final = 6  # 4 raw bytes, kept as bytes so NaN payloads survive
_IMM_F64: Final = 7
_IMM_BR_TABLE: Final = 8  # (targets, default)
_IMM_CALL_INDIRECT: Final = 9  # (type index, table index)
_IMM_ZERO_BYTE: Final = 10  # memory.size / memory.grow: the memory index byte, must be 0
_IMM_SELECT_TYPES: Final = 11  # tuple of value types
_IMM_REF_TYPE: Final = 12  # ref.null: one reference type byte
_IMM_TWO_U32: Final = 13  # (a, b) e.g. table.init, table.copy
_IMM_DATA_MEMORY: Final = 14  # memory.init: (data index, memory byte 0)
_IMM_TWO_ZERO_BYTES: Final = 15  # memory.copy: (0, 0)

_OPCODE_TABLE: Final[tuple[tuple[int, str, int], ...]] = (
    (0x00, "unreachable", _IMM_NONE),
    (0x01, "nop", _IMM_NONE),
    (0x02, "block", _IMM_BLOCK),
    (0x03, "loop", _IMM_BLOCK),
    (0x04, "if", _IMM_BLOCK),
    (0x05, "else", _IMM_NONE),
    (0x0B, "end", _IMM_NONE),
    (0x0C, "br", _IMM_U32),
    (0x0D, "br_if", _IMM_U32),
    (0x0E, "br_table", _IMM_BR_TABLE),
    (0x0F, "return", _IMM_NONE),
    (0x10, "call", _IMM_U32),
    (0x11, "call_indirect", _IMM_CALL_INDIRECT),
    (0x1A, "drop", _IMM_NONE),
    (0x1B, "select", _IMM_NONE),
    (0x1C, "select_typed", _IMM_SELECT_TYPES),
    (0x20, "local.get", _IMM_U32),
    (0x21, "local.set", _IMM_U32),
    (0x22, "local.tee", _IMM_U32),
    (0x23, "global.get", _IMM_U32),
    (0x24, "global.set", _IMM_U32),
    (0x25, "table.get", _IMM_U32),
    (0x26, "table.set", _IMM_U32),
    (0x28, "i32.load", _IMM_MEMARG),
    (0x29, "i64.load", _IMM_MEMARG),
    (0x2A, "f32.load", _IMM_MEMARG),
    (0x2B, "f64.load", _IMM_MEMARG),
    (0x2C, "i32.load8_s", _IMM_MEMARG),
    (0x2D, "i32.load8_u", _IMM_MEMARG),
    (0x2E, "i32.load16_s", _IMM_MEMARG),
    (0x2F, "i32.load16_u", _IMM_MEMARG),
    (0x30, "i64.load8_s", _IMM_MEMARG),
    (0x31, "i64.load8_u", _IMM_MEMARG),
    (0x32, "i64.load16_s", _IMM_MEMARG),
    (0x33, "i64.load16_u", _IMM_MEMARG),
    (0x34, "i64.load32_s", _IMM_MEMARG),
    (0x35, "i64.load32_u", _IMM_MEMARG),
    (0x36, "i32.store", _IMM_MEMARG),
    (0x37, "i64.store", _IMM_MEMARG),
    (0x38, "f32.store", _IMM_MEMARG),
    (0x39, "f64.store", _IMM_MEMARG),
    (0x3A, "i32.store8", _IMM_MEMARG),
    (0x3B, "i32.store16", _IMM_MEMARG),
    (0x3C, "i64.store8", _IMM_MEMARG),
    (0x3D, "i64.store16", _IMM_MEMARG),
    (0x3E, "i64.store32", _IMM_MEMARG),
    (0x3F, "memory.size", _IMM_ZERO_BYTE),
    (0x40, "memory.grow", _IMM_ZERO_BYTE),
    (0x41, "i32.const", _IMM_I32),
    (0x42, "i64.const", _IMM_I64),
    (0x43, "f32.const", _IMM_F32),
    (0x44, "f64.const", _IMM_F64),
    (0x45, "i32.eqz", _IMM_NONE),
    (0x46, "i32.eq", _IMM_NONE),
    (0x47, "i32.ne", _IMM_NONE),
    (0x48, "i32.lt_s", _IMM_NONE),
    (0x49, "i32.lt_u", _IMM_NONE),
    (0x4A, "i32.gt_s", _IMM_NONE),
    (0x4B, "i32.gt_u", _IMM_NONE),
    (0x4C, "i32.le_s", _IMM_NONE),
    (0x4D, "i32.le_u", _IMM_NONE),
    (0x4E, "i32.ge_s", _IMM_NONE),
    (0x4F, "i32.ge_u", _IMM_NONE),
    (0x50, "i64.eqz", _IMM_NONE),
    (0x51, "i64.eq", _IMM_NONE),
    (0x52, "i64.ne", _IMM_NONE),
    (0x53, "i64.lt_s", _IMM_NONE),
    (0x54, "i64.lt_u", _IMM_NONE),
    (0x55, "i64.gt_s", _IMM_NONE),
    (0x56, "i64.gt_u", _IMM_NONE),
    (0x57, "i64.le_s", _IMM_NONE),
    (0x58, "i64.le_u", _IMM_NONE),
    (0x59, "i64.ge_s", _IMM_NONE),
    (0x5A, "i64.ge_u", _IMM_NONE),
    (0x5B, "f32.eq", _IMM_NONE),
    (0x5C, "f32.ne", _IMM_NONE),
    (0x5D, "f32.lt", _IMM_NONE),
    (0x5E, "f32.gt", _IMM_NONE),
    (0x5F, "f32.le", _IMM_NONE),
    (0x60, "f32.ge", _IMM_NONE),
    (0x61, "f64.eq", _IMM_NONE),
    (0x62, "f64.ne", _IMM_NONE),
    (0x63, "f64.lt", _IMM_NONE),
    (0x64, "f64.gt", _IMM_NONE),
    (0x65, "f64.le", _IMM_NONE),
    (0x66, "f64.ge", _IMM_NONE),
    (0x67, "i32.clz", _IMM_NONE),
    (0x68, "i32.ctz", _IMM_NONE),
    (0x69, "i32.popcnt", _IMM_NONE),
    (0x6A, "i32.add", _IMM_NONE),
    (0x6B, "i32.sub", _IMM_NONE),
    (0x6C, "i32.mul", _IMM_NONE),
    (0x6D, "i32.div_s", _IMM_NONE),
    (0x6E, "i32.div_u", _IMM_NONE),
    (0x6F, "i32.rem_s", _IMM_NONE),
    (0x70, "i32.rem_u", _IMM_NONE),
    (0x71, "i32.and", _IMM_NONE),
    (0x72, "i32.or", _IMM_NONE),
    (0x73, "i32.xor", _IMM_NONE),
    (0x74, "i32.shl", _IMM_NONE),
    (0x75, "i32.shr_s", _IMM_NONE),
    (0x76, "i32.shr_u", _IMM_NONE),
    (0x77, "i32.rotl", _IMM_NONE),
    (0x78, "i32.rotr", _IMM_NONE),
    (0x79, "i64.clz", _IMM_NONE),
    (0x7A, "i64.ctz", _IMM_NONE),
    (0x7B, "i64.popcnt", _IMM_NONE),
    (0x7C, "i64.add", _IMM_NONE),
    (0x7D, "i64.sub", _IMM_NONE),
    (0x7E, "i64.mul", _IMM_NONE),
    (0x7F, "i64.div_s", _IMM_NONE),
    (0x80, "i64.div_u", _IMM_NONE),
    (0x81, "i64.rem_s", _IMM_NONE),
    (0x82, "i64.rem_u", _IMM_NONE),
    (0x83, "i64.and", _IMM_NONE),
    (0x84, "i64.or", _IMM_NONE),
    (0x85, "i64.xor", _IMM_NONE),
    (0x86, "i64.shl", _IMM_NONE),
    (0x87, "i64.shr_s", _IMM_NONE),
    (0x88, "i64.shr_u", _IMM_NONE),
    (0x89, "i64.rotl", _IMM_NONE),
    (0x8A, "i64.rotr", _IMM_NONE),
    (0x8B, "f32.abs", _IMM_NONE),
    (0x8C, "f32.neg", _IMM_NONE),
    (0x8D, "f32.ceil", _IMM_NONE),
    (0x8E, "f32.floor", _IMM_NONE),
    (0x8F, "f32.trunc", _IMM_NONE),
    (0x90, "f32.nearest", _IMM_NONE),
    (0x91, "f32.sqrt", _IMM_NONE),
    (0x92, "f32.add", _IMM_NONE),
    (0x93, "f32.sub", _IMM_NONE),
    (0x94, "f32.mul", _IMM_NONE),
    (0x95, "f32.div", _IMM_NONE),
    (0x96, "f32.min", _IMM_NONE),
    (0x97, "f32.max", _IMM_NONE),
    (0x98, "f32.copysign", _IMM_NONE),
    (0x99, "f64.abs", _IMM_NONE),
    (0x9A, "f64.neg", _IMM_NONE),
    (0x9B, "f64.ceil", _IMM_NONE),
    (0x9C, "f64.floor", _IMM_NONE),
    (0x9D, "f64.trunc", _IMM_NONE),
    (0x9E, "f64.nearest", _IMM_NONE),
    (0x9F, "f64.sqrt", _IMM_NONE),
    (0xA0, "f64.add", _IMM_NONE),
    (0xA1, "f64.sub", _IMM_NONE),
    (0xA2, "f64.mul", _IMM_NONE),
    (0xA3, "f64.div", _IMM_NONE),
    (0xA4, "f64.min", _IMM_NONE),
    (0xA5, "f64.max", _IMM_NONE),
    (0xA6, "f64.copysign", _IMM_NONE),
    (0xA7, "i32.wrap_i64", _IMM_NONE),
    (0xA8, "i32.trunc_f32_s", _IMM_NONE),
    (0xA9, "i32.trunc_f32_u", _IMM_NONE),
    (0xAA, "i32.trunc_f64_s", _IMM_NONE),
    (0xAB, "i32.trunc_f64_u", _IMM_NONE),
    (0xAC, "i64.extend_i32_s", _IMM_NONE),
    (0xAD, "i64.extend_i32_u", _IMM_NONE),
    (0xAE, "i64.trunc_f32_s", _IMM_NONE),
    (0xAF, "i64.trunc_f32_u", _IMM_NONE),
    (0xB0, "i64.trunc_f64_s", _IMM_NONE),
    (0xB1, "i64.trunc_f64_u", _IMM_NONE),
    (0xB2, "f32.convert_i32_s", _IMM_NONE),
    (0xB3, "f32.convert_i32_u", _IMM_NONE),
    (0xB4, "f32.convert_i64_s", _IMM_NONE),
    (0xB5, "f32.convert_i64_u", _IMM_NONE),
    (0xB6, "f32.demote_f64", _IMM_NONE),
    (0xB7, "f64.convert_i32_s", _IMM_NONE),
    (0xB8, "f64.convert_i32_u", _IMM_NONE),
    (0xB9, "f64.convert_i64_s", _IMM_NONE),
    (0xBA, "f64.convert_i64_u", _IMM_NONE),
    (0xBB, "f64.promote_f32", _IMM_NONE),
    (0xBC, "i32.reinterpret_f32", _IMM_NONE),
    (0xBD, "i64.reinterpret_f64", _IMM_NONE),
    (0xBE, "f32.reinterpret_i32", _IMM_NONE),
    (0xBF, "f64.reinterpret_i64", _IMM_NONE),
    (0xC0, "i32.extend8_s", _IMM_NONE),
    (0xC1, "i32.extend16_s", _IMM_NONE),
    (0xC2, "i64.extend8_s", _IMM_NONE),
    (0xC3, "i64.extend16_s", _IMM_NONE),
    (0xC4, "i64.extend32_s", _IMM_NONE),
    (0xD0, "ref.null", _IMM_REF_TYPE),
    (0xD1, "ref.is_null", _IMM_NONE),
    (0xD2, "ref.func", _IMM_U32),
    (0xFC00, "i32.trunc_sat_f32_s", _IMM_NONE),
    (0xFC01, "i32.trunc_sat_f32_u", _IMM_NONE),
    (0xFC02, "i32.trunc_sat_f64_s", _IMM_NONE),
    (0xFC03, "i32.trunc_sat_f64_u", _IMM_NONE),
    (0xFC04, "i64.trunc_sat_f32_s", _IMM_NONE),
    (0xFC05, "i64.trunc_sat_f32_u", _IMM_NONE),
    (0xFC06, "i64.trunc_sat_f64_s", _IMM_NONE),
    (0xFC07, "i64.trunc_sat_f64_u", _IMM_NONE),
    (0xFC08, "memory.init", _IMM_DATA_MEMORY),
    (0xFC09, "data.drop", _IMM_U32),
    (0xFC0A, "memory.copy", _IMM_TWO_ZERO_BYTES),
    (0xFC0B, "memory.fill", _IMM_ZERO_BYTE),
    (0xFC0C, "table.init", _IMM_TWO_U32),
    (0xFC0D, "elem.drop", _IMM_U32),
    (0xFC0E, "table.copy", _IMM_TWO_U32),
    (0xFC0F, "table.grow", _IMM_U32),
    (0xFC10, "table.size", _IMM_U32),
    (0xFC11, "table.fill", _IMM_U32),
)

OPCODE_NAMES: Final[dict[int, str]] = {code: name for code, name, _ in _OPCODE_TABLE}
OPCODES_BY_NAME: Final[dict[str, int]] = {name: code for code, name, _ in _OPCODE_TABLE}
# Immediate kind by single-byte opcode (-1: not an opcode we support) and by 0xFC sub-opcode.
_KIND: Final[list[int]] = [-1] * 256
_FC_KIND: Final[list[int]] = [-1] * 18

def _fill_kind_tables() -> None:
    for code, _, kind in _OPCODE_TABLE:
        if code < 0x100:
            _KIND[code] = kind
        else:
            _FC_KIND[code & 0xFF] = kind
    _KIND[PREFIX_FC] = -2


_fill_kind_tables()

# A decoded immediate: None, an int, raw float bytes, a tuple of ints, or (targets, default).
Immediate = int | bytes | tuple[int, ...] | tuple[tuple[int, ...], int] | None


def opcode_name(opcode: int) -> str:
    return OPCODE_NAMES.get(opcode, f"<opcode {opcode:#x}>")


# -- LEB128 ---------------------------------------------------------------------------------------


def read_uleb(data: bytes, pos: int, bits: int = 32) -> tuple[int, int]:
    """Decode an unsigned LEB128 of at most ``bits`` bits at ``pos``; ``(value, new_pos)``.

    As the specification demands, the encoding may use at most ceil(bits / 7) bytes and the
    unused high bits of its last byte must be zero.
    """
    result = 0
    shift = 0
    start = pos
    max_bytes = (bits + 6) // 7
    end = len(data)
    while True:
        if pos >= end:
            raise WasmError("truncated LEB128 integer", f"offset {start}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            # In the last permitted byte only the low (bits - shift) bits may be set.
            if pos - start == max_bytes and byte >> (bits - shift):
                raise WasmError(f"LEB128 integer exceeds {bits} bits", f"offset {start}")
            return result, pos
        shift += 7
        if pos - start >= max_bytes:
            raise WasmError(f"LEB128 integer longer than {max_bytes} bytes", f"offset {start}")


def read_sleb(data: bytes, pos: int, bits: int) -> tuple[int, int]:
    """Decode a signed LEB128 of at most ``bits`` bits at ``pos``; ``(value, new_pos)``."""
    result = 0
    shift = 0
    start = pos
    max_bytes = (bits + 6) // 7
    end = len(data)
    while True:
        if pos >= end:
            raise WasmError("truncated LEB128 integer", f"offset {start}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if pos - start == max_bytes and shift > bits:
                # The unused bits of the last byte must all equal the sign bit.
                spare = shift - bits
                top = (byte & 0x7F) >> (7 - spare - 1)
                if top not in (0, (1 << (spare + 1)) - 1):
                    raise WasmError(f"LEB128 integer exceeds {bits} bits", f"offset {start}")
            if byte & 0x40:
                result -= 1 << shift
            return result, pos
        if pos - start >= max_bytes:
            raise WasmError(f"LEB128 integer longer than {max_bytes} bytes", f"offset {start}")


def encode_uleb(value: int) -> bytes:
    if value < 0:
        raise ValueError("unsigned LEB128 of a negative number")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_sleb(value: int) -> bytes:
    if -0x40 <= value < 0x40:
        return bytes((value & 0x7F,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


# -- module structure -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    minimum: int
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class TableType:
    element_type: int
    limits: Limits


@dataclass(frozen=True, slots=True)
class MemoryType:
    limits: Limits


@dataclass(frozen=True, slots=True)
class GlobalType:
    value_type: int
    mutable: bool


ImportDesc = int | TableType | MemoryType | GlobalType


@dataclass(frozen=True, slots=True)
class Import:
    """An import; ``desc`` is a type index for functions, else the imported entity's type."""

    module: str
    name: str
    kind: int
    desc: ImportDesc


@dataclass(frozen=True, slots=True)
class Global:
    type: GlobalType
    init: bytes  # constant expression, including its final ``end``


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    kind: int
    index: int


@dataclass(frozen=True, slots=True)
class ElementSegment:
    """An element segment in any of the eight encodings (``flags`` 0-7 of the spec).

    ``functions`` holds function indices for the index forms (flags 0-3); ``expressions``
    holds raw constant expressions for the expression forms (flags 4-7).
    """

    flags: int
    table_index: int = 0
    offset: bytes | None = None  # constant expression of active segments
    element_type: int = FUNCREF  # reference type (or the elemkind 0x00 -> funcref)
    functions: tuple[int, ...] = ()
    expressions: tuple[bytes, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.flags & 1 == 0

    @property
    def uses_expressions(self) -> bool:
        return bool(self.flags & 4)


@dataclass(frozen=True, slots=True)
class DataSegment:
    """A data segment: flags 0 (active, memory 0), 1 (passive) or 2 (active, explicit memory)."""

    flags: int
    data: bytes
    memory_index: int = 0
    offset: bytes | None = None


@dataclass(frozen=True, slots=True)
class FunctionBody:
    """One code-section entry: local declarations exactly as encoded and the raw instructions.

    ``locals`` keeps the binary's ``(count, type)`` groups unmerged: fvm-wasm-instrument 0.4.0
    prices a function's stack frame by the number of groups.
    """

    locals: tuple[tuple[int, int], ...]
    code: bytes  # instructions, including the function's final ``end``

    @property
    def local_count(self) -> int:
        return sum(count for count, _ in self.locals)


@dataclass(frozen=True, slots=True)
class CustomSection:
    """A custom section, kept with the id of the standard section it followed (0: first)."""

    name: str
    data: bytes
    after: int = 0


@dataclass(slots=True)
class WasmModule:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    functions: list[int] = field(default_factory=list)  # type index of each defined function
    tables: list[TableType] = field(default_factory=list)
    memories: list[MemoryType] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elements: list[ElementSegment] = field(default_factory=list)
    data_count: int | None = None
    code: list[FunctionBody] = field(default_factory=list)
    data: list[DataSegment] = field(default_factory=list)
    custom_sections: list[CustomSection] = field(default_factory=list)
    # Standard sections the binary had even when empty, so that encoding round-trips.
    present_sections: set[int] = field(default_factory=set)

    def imported(self, kind: int) -> list[Import]:
        return [entry for entry in self.imports if entry.kind == kind]

    @property
    def imported_function_count(self) -> int:
        return sum(1 for entry in self.imports if entry.kind == KIND_FUNCTION)

    @property
    def imported_global_count(self) -> int:
        return sum(1 for entry in self.imports if entry.kind == KIND_GLOBAL)

    def function_type_indices(self) -> list[int]:
        """The type index of every function in the function index space (imports first)."""
        indices = [entry.desc for entry in self.imports if entry.kind == KIND_FUNCTION]
        return [index for index in indices if isinstance(index, int)] + self.functions

    def function_type(self, function_index: int) -> FuncType:
        indices = self.function_type_indices()
        if not 0 <= function_index < len(indices):
            raise WasmError(f"function index {function_index} out of range")
        return self.type_at(indices[function_index])

    def type_at(self, type_index: int) -> FuncType:
        if not 0 <= type_index < len(self.types):
            raise WasmError(f"type index {type_index} out of range")
        return self.types[type_index]

    def type_index_of(self, func_type: FuncType) -> int:
        """The first type index with this signature, appending the type if there is none."""
        for index, existing in enumerate(self.types):
            if existing == func_type:
                return index
        self.types.append(func_type)
        return len(self.types) - 1


# -- decoding -------------------------------------------------------------------------------------


class _Reader:
    """A cursor over one section's bytes for the (small) non-code sections."""

    __slots__ = ("data", "end", "pos", "section")

    def __init__(self, data: bytes, pos: int, end: int, section: str) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.section = section

    def fail(self, what: str) -> WasmError:
        return WasmError(what, f"{self.section} section, offset {self.pos}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of section")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        value, pos = read_uleb(self.data, self.pos, 32)
        if pos > self.end:
            raise self.fail("integer runs past the end of the section")
        self.pos = pos
        return value

    def raw(self, size: int) -> bytes:
        if size > self.end - self.pos:
            raise self.fail(f"{size} bytes run past the end of the section")
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def name(self) -> str:
        raw = self.raw(self.u32())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("name is not valid UTF-8") from None

    def value_type(self) -> int:
        value = self.byte()
        if value not in VALUE_TYPES:
            raise self.fail(f"unknown value type {value:#x}")
        if value == V128:
            raise self.fail("SIMD (v128) is not supported")
        return value

    def reference_type(self) -> int:
        value = self.byte()
        if value not in REFERENCE_TYPES:
            raise self.fail(f"unknown reference type {value:#x}")
        return value

    def limits(self) -> Limits:
        flags = self.byte()
        if flags == 0:
            return Limits(self.u32())
        if flags == 1:
            minimum = self.u32()
            return Limits(minimum, self.u32())
        if flags in (2, 3):
            raise self.fail("shared memories (threads) are not supported")
        if flags in (4, 5, 6, 7):
            raise self.fail("64-bit memories are not supported")
        raise self.fail(f"unknown limits flags {flags:#x}")

    def global_type(self) -> GlobalType:
        value_type = self.value_type()
        mutability = self.byte()
        if mutability not in (0, 1):
            raise self.fail(f"bad global mutability {mutability:#x}")
        return GlobalType(value_type, mutability == 1)

    def const_expr(self) -> bytes:
        start = self.pos
        self.pos = _skip_const_expr(self.data, self.pos, self.end, self.section)
        return self.data[start : self.pos]

    def vector_length(self) -> int:
        count = self.u32()
        # Every entry takes at least one byte: a larger count is certainly malformed.
        if count > self.end - self.pos:
            raise self.fail(f"vector of {count} entries cannot fit in the section")
        return count


_CONST_OPS: Final = frozenset((I32_CONST, I64_CONST, F32_CONST, F64_CONST, GLOBAL_GET, REF_NULL,
                               REF_FUNC))


def _skip_const_expr(data: bytes, pos: int, end: int, section: str) -> int:
    """Position after a constant expression (its instructions and ``end``) starting at ``pos``."""
    while True:
        if pos >= end:
            raise WasmError("constant expression lacks its end", f"{section} section")
        opcode = data[pos]
        if opcode == END:
            return pos + 1
        if opcode not in _CONST_OPS:
            raise WasmError(
                f"{opcode_name(opcode)} is not allowed in a constant expression",
                f"{section} section, offset {pos}",
            )
        kind = _KIND[opcode]
        pos = _skip_immediate(data, pos + 1, kind)
        if pos > end:
            raise WasmError("constant expression runs past its section", f"{section} section")


def _skip_immediate(data: bytes, pos: int, kind: int) -> int:
    if kind == _IMM_I32:
        return read_sleb(data, pos, 32)[1]
    if kind == _IMM_I64:
        return read_sleb(data, pos, 64)[1]
    if kind == _IMM_F32:
        return pos + 4
    if kind == _IMM_F64:
        return pos + 8
    if kind == _IMM_U32:
        return read_uleb(data, pos, 32)[1]
    if kind == _IMM_REF_TYPE:
        return pos + 1
    raise AssertionError(f"immediate kind {kind} in a constant expression")


def decode_const_expr(expr: bytes) -> Instructions:
    """The instructions of a constant expression (as stored in :class:`Global` and segments)."""
    return decode_instructions(expr, "constant expression")


def decode_module(data: bytes) -> WasmModule:
    """Parse a WebAssembly binary module."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise WasmError("not a WebAssembly module (bad magic)", "offset 0")
    if data[4:8] != VERSION:
        raise WasmError(f"unsupported WebAssembly version {data[4:8].hex()}", "offset 4")
    module = WasmModule()
    pos = 8
    end = len(data)
    last_rank = 0
    last_id = 0
    function_count: int | None = None
    while pos < end:
        section_id = data[pos]
        size, content = read_uleb(data, pos + 1, 32)
        section_end = content + size
        if section_end > end:
            raise WasmError(f"section {section_id} runs past the end of the module",
                            f"offset {pos}")
        if section_id == SECTION_CUSTOM:
            reader = _Reader(data, content, section_end, "custom")
            name = reader.name()
            module.custom_sections.append(
                CustomSection(name, data[reader.pos : section_end], last_id)
            )
            pos = section_end
            continue
        rank = _SECTION_RANK.get(section_id)
        if rank is None:
            raise WasmError(f"unknown or unsupported section id {section_id}", f"offset {pos}")
        if rank <= last_rank:
            raise WasmError(f"section {section_id} is out of order or repeated", f"offset {pos}")
        last_rank = rank
        last_id = section_id
        module.present_sections.add(section_id)
        reader = _Reader(data, content, section_end, _SECTION_NAMES[section_id])
        if section_id == SECTION_CODE:
            _decode_code(reader, module)
        else:
            _SECTION_DECODERS[section_id](reader, module)
            if reader.pos != section_end:
                raise reader.fail("section has trailing bytes")
        if section_id == SECTION_FUNCTION:
            function_count = len(module.functions)
        pos = section_end
    if len(module.code) != (function_count or 0):
        raise WasmError(
            f"{len(module.functions)} functions declared but {len(module.code)} bodies given"
        )
    if module.data_count is not None and module.data_count != len(module.data):
        raise WasmError(
            f"data count {module.data_count} differs from {len(module.data)} data segments"
        )
    return module


def _decode_types(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        form = reader.byte()
        if form != 0x60:
            raise reader.fail(f"unknown type form {form:#x}")
        params = tuple(reader.value_type() for _ in range(reader.vector_length()))
        results = tuple(reader.value_type() for _ in range(reader.vector_length()))
        module.types.append(FuncType(params, results))


def _decode_imports(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        module_name = reader.name()
        name = reader.name()
        kind = reader.byte()
        desc: ImportDesc
        if kind == KIND_FUNCTION:
            desc = reader.u32()
        elif kind == KIND_TABLE:
            element_type = reader.reference_type()
            desc = TableType(element_type, reader.limits())
        elif kind == KIND_MEMORY:
            desc = MemoryType(reader.limits())
        elif kind == KIND_GLOBAL:
            desc = reader.global_type()
        else:
            raise reader.fail(f"unknown or unsupported import kind {kind:#x}")
        module.imports.append(Import(module_name, name, kind, desc))


def _decode_functions(reader: _Reader, module: WasmModule) -> None:
    module.functions.extend(reader.u32() for _ in range(reader.vector_length()))


def _decode_tables(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        element_type = reader.reference_type()
        module.tables.append(TableType(element_type, reader.limits()))


def _decode_memories(reader: _Reader, module: WasmModule) -> None:
    module.memories.extend(MemoryType(reader.limits()) for _ in range(reader.vector_length()))


def _decode_globals(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        global_type = reader.global_type()
        module.globals.append(Global(global_type, reader.const_expr()))


def _decode_exports(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        name = reader.name()
        kind = reader.byte()
        if kind not in (KIND_FUNCTION, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL):
            raise reader.fail(f"unknown or unsupported export kind {kind:#x}")
        module.exports.append(Export(name, kind, reader.u32()))


def _decode_start(reader: _Reader, module: WasmModule) -> None:
    module.start = reader.u32()


def _decode_elements(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        flags = reader.u32()
        if flags > 7:
            raise reader.fail(f"unknown element segment flags {flags}")
        table_index = 0
        offset = None
        element_type = FUNCREF
        if flags & 1 == 0:  # active
            if flags & 2:
                table_index = reader.u32()
            offset = reader.const_expr()
        if flags & 3:  # an explicit elemkind or reference type follows
            if flags & 4:
                element_type = reader.reference_type()
            else:
                elemkind = reader.byte()
                if elemkind != 0:
                    raise reader.fail(f"unknown element kind {elemkind:#x}")
        count = reader.vector_length()
        if flags & 4:
            expressions = tuple(reader.const_expr() for _ in range(count))
            module.elements.append(
                ElementSegment(flags, table_index, offset, element_type, (), expressions)
            )
        else:
            functions = tuple(reader.u32() for _ in range(count))
            module.elements.append(
                ElementSegment(flags, table_index, offset, element_type, functions)
            )


def _decode_data_count(reader: _Reader, module: WasmModule) -> None:
    module.data_count = reader.u32()


def _decode_data(reader: _Reader, module: WasmModule) -> None:
    for _ in range(reader.vector_length()):
        flags = reader.u32()
        if flags == 0:
            offset = reader.const_expr()
            module.data.append(DataSegment(0, reader.raw(reader.u32()), 0, offset))
        elif flags == 1:
            module.data.append(DataSegment(1, reader.raw(reader.u32())))
        elif flags == 2:
            memory_index = reader.u32()
            offset = reader.const_expr()
            module.data.append(DataSegment(2, reader.raw(reader.u32()), memory_index, offset))
        else:
            raise reader.fail(f"unknown data segment flags {flags}")


def _decode_code(reader: _Reader, module: WasmModule) -> None:
    data = reader.data
    for index in range(reader.vector_length()):
        size = reader.u32()
        body_end = reader.pos + size
        if body_end > reader.end:
            raise reader.fail(f"body of function {index} runs past the code section")
        body = _Reader(data, reader.pos, body_end, f"code (function {index})")
        groups = []
        total = 0
        for _ in range(body.vector_length()):
            count = body.u32()
            total += count
            groups.append((count, body.value_type()))
        if total >= 1 << 32:
            raise body.fail("too many locals")
        if body.pos >= body_end or data[body_end - 1] != END:
            raise body.fail("function body does not end with end")
        module.code.append(FunctionBody(tuple(groups), data[body.pos : body_end]))
        reader.pos = body_end
    if reader.pos != reader.end:
        raise reader.fail("section has trailing bytes")


_SECTION_NAMES: Final = {
    SECTION_TYPE: "type",
    SECTION_IMPORT: "import",
    SECTION_FUNCTION: "function",
    SECTION_TABLE: "table",
    SECTION_MEMORY: "memory",
    SECTION_GLOBAL: "global",
    SECTION_EXPORT: "export",
    SECTION_START: "start",
    SECTION_ELEMENT: "element",
    SECTION_CODE: "code",
    SECTION_DATA: "data",
    SECTION_DATA_COUNT: "data count",
}

_SECTION_DECODERS: Final = {
    SECTION_TYPE: _decode_types,
    SECTION_IMPORT: _decode_imports,
    SECTION_FUNCTION: _decode_functions,
    SECTION_TABLE: _decode_tables,
    SECTION_MEMORY: _decode_memories,
    SECTION_GLOBAL: _decode_globals,
    SECTION_EXPORT: _decode_exports,
    SECTION_START: _decode_start,
    SECTION_ELEMENT: _decode_elements,
    SECTION_DATA: _decode_data,
    SECTION_DATA_COUNT: _decode_data_count,
}


# -- instructions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Instructions:
    """A decoded instruction sequence as parallel lists.

    ``offsets[i]`` is where instruction ``i`` starts in the source bytes and ``offsets[-1]`` is
    the end of the last one, so ``code[offsets[i]:offsets[i + 1]]`` is instruction ``i``'s
    encoding.
    """

    opcodes: list[int]
    immediates: list[Immediate]
    offsets: list[int]

    def __len__(self) -> int:
        return len(self.opcodes)

    def names(self) -> list[str]:
        return [opcode_name(opcode) for opcode in self.opcodes]


def decode_instructions(code: bytes, where: str = "function body") -> Instructions:
    """Decode an expression (a function body's instructions or a constant expression).

    The block structure is checked (every block closed, nothing after the final ``end``);
    operand types are not (that is validation).
    """
    opcodes: list[int] = []
    immediates: list[Immediate] = []
    offsets: list[int] = []
    add_opcode = opcodes.append
    add_immediate = immediates.append
    add_offset = offsets.append
    kinds = _KIND
    # The three commonest kinds, as locals (cheaper to compare against than globals).
    u32_kind = _IMM_U32
    none_kind = _IMM_NONE
    i32_kind = _IMM_I32
    n = len(code)
    pos = 0
    depth = 1
    try:
        while pos < n:
            add_offset(pos)
            opcode = code[pos]
            pos += 1
            kind = kinds[opcode]
            if kind == u32_kind:
                byte = code[pos]
                if byte < 0x80:
                    add_immediate(byte)
                    pos += 1
                else:
                    value, pos = read_uleb(code, pos, 32)
                    add_immediate(value)
            elif kind == none_kind:
                add_immediate(None)
                if opcode == 0x0B:  # end
                    depth -= 1
                    if depth == 0:
                        add_opcode(opcode)
                        if pos != n:
                            raise WasmError("instructions after the final end",
                                            f"{where}, offset {pos}")
                        break
            elif kind == i32_kind:
                byte = code[pos]
                if byte < 0x40:
                    add_immediate(byte)
                    pos += 1
                elif byte < 0x80:
                    add_immediate(byte - 0x80)
                    pos += 1
                else:
                    value, pos = read_sleb(code, pos, 32)
                    add_immediate(value)
            elif kind == _IMM_MEMARG:
                align = code[pos]
                if align < 0x80:
                    pos += 1
                else:
                    align, pos = read_uleb(code, pos, 32)
                if align >= 64:
                    raise WasmError("memory index in memarg (multi-memory) is not supported",
                                    f"{where}, offset {pos}")
                byte = code[pos]
                if byte < 0x80:
                    add_immediate((align, byte))
                    pos += 1
                else:
                    offset, pos = read_uleb(code, pos, 32)
                    add_immediate((align, offset))
            elif kind == _IMM_BLOCK:
                depth += 1
                byte = code[pos]
                if byte == 0x40:
                    add_immediate(BLOCK_EMPTY)
                    pos += 1
                elif byte in VALUE_TYPES:
                    add_immediate(byte - 0x80)
                    pos += 1
                else:
                    value, pos = read_sleb(code, pos, 33)
                    if value < 0:
                        raise WasmError(f"unknown block type {value}", f"{where}, offset {pos}")
                    add_immediate(value)
            elif kind == _IMM_I64:
                value, pos = read_sleb(code, pos, 64)
                add_immediate(value)
            elif kind == _IMM_BR_TABLE:
                count, pos = read_uleb(code, pos, 32)
                if count > n - pos:
                    raise WasmError("br_table longer than its function", f"{where}, offset {pos}")
                targets = []
                for _ in range(count):
                    target, pos = read_uleb(code, pos, 32)
                    targets.append(target)
                default, pos = read_uleb(code, pos, 32)
                add_immediate((tuple(targets), default))
            elif kind == _IMM_CALL_INDIRECT:
                type_index, pos = read_uleb(code, pos, 32)
                table_index, pos = read_uleb(code, pos, 32)
                add_immediate((type_index, table_index))
            elif kind == _IMM_ZERO_BYTE:
                if code[pos] != 0:
                    raise WasmError("memory index must be the byte 0", f"{where}, offset {pos}")
                add_immediate(0)
                pos += 1
            elif kind == _IMM_F32:
                add_immediate(code[pos : pos + 4])
                pos += 4
            elif kind == _IMM_F64:
                add_immediate(code[pos : pos + 8])
                pos += 8
            elif kind == -2:
                sub, pos = read_uleb(code, pos, 32)
                if sub >= len(_FC_KIND):
                    raise WasmError(f"unsupported instruction 0xfc {sub}",
                                    f"{where}, offset {offsets[-1]}")
                opcode = 0xFC00 | sub
                kind = _FC_KIND[sub]
                if kind == _IMM_NONE:
                    add_immediate(None)
                elif kind == _IMM_U32:
                    value, pos = read_uleb(code, pos, 32)
                    add_immediate(value)
                elif kind == _IMM_TWO_U32:
                    first, pos = read_uleb(code, pos, 32)
                    second, pos = read_uleb(code, pos, 32)
                    add_immediate((first, second))
                elif kind == _IMM_DATA_MEMORY:
                    data_index, pos = read_uleb(code, pos, 32)
                    if code[pos] != 0:
                        raise WasmError("memory index must be the byte 0",
                                        f"{where}, offset {pos}")
                    pos += 1
                    add_immediate((data_index, 0))
                elif kind == _IMM_TWO_ZERO_BYTES:
                    if code[pos] != 0 or code[pos + 1] != 0:
                        raise WasmError("memory indices must be the byte 0",
                                        f"{where}, offset {pos}")
                    pos += 2
                    add_immediate((0, 0))
                else:  # _IMM_ZERO_BYTE (memory.fill)
                    if code[pos] != 0:
                        raise WasmError("memory index must be the byte 0",
                                        f"{where}, offset {pos}")
                    pos += 1
                    add_immediate(0)
            elif kind == _IMM_SELECT_TYPES:
                count, pos = read_uleb(code, pos, 32)
                if count > n - pos:
                    raise WasmError("select type list too long", f"{where}, offset {pos}")
                value_types = []
                for _ in range(count):
                    value_type = code[pos]
                    if value_type not in VALUE_TYPES:
                        raise WasmError(f"unknown value type {value_type:#x}",
                                        f"{where}, offset {pos}")
                    value_types.append(value_type)
                    pos += 1
                add_immediate(tuple(value_types))
            elif kind == _IMM_REF_TYPE:
                ref_type = code[pos]
                if ref_type not in REFERENCE_TYPES:
                    raise WasmError(f"unknown reference type {ref_type:#x}",
                                    f"{where}, offset {pos}")
                add_immediate(ref_type)
                pos += 1
            else:
                raise WasmError(_unsupported(opcode), f"{where}, offset {pos - 1}")
            add_opcode(opcode)
    except IndexError:
        raise WasmError("instruction runs past the end of its function", where) from None
    if pos > n:
        raise WasmError("instruction runs past the end of its function", where)
    if depth != 0:
        raise WasmError("function body ends inside a block (missing end)", where)
    offsets.append(pos)
    return Instructions(opcodes, immediates, offsets)


def _unsupported(opcode: int) -> str:
    if opcode == 0xFD:
        return "SIMD instructions are not supported"
    if opcode == 0xFE:
        return "atomic (threads) instructions are not supported"
    if opcode in (0x06, 0x07, 0x08, 0x09, 0x18, 0x19):
        return "exception-handling instructions are not supported"
    if opcode in (0x12, 0x13):
        return "tail calls are not supported"
    return f"unknown opcode {opcode:#04x}"


# -- encoding -------------------------------------------------------------------------------------


def encode_instruction(opcode: int, immediate: Immediate, out: bytearray) -> None:
    """Append the encoding of one instruction to ``out``."""
    if opcode >= 0x100:
        out.append(PREFIX_FC)
        sub = opcode & 0xFF
        out += encode_uleb(sub)
        kind = _FC_KIND[sub]
    else:
        out.append(opcode)
        kind = _KIND[opcode]
    if kind == _IMM_NONE:
        return
    if kind in (_IMM_U32, _IMM_ZERO_BYTE):
        assert isinstance(immediate, int)
        out += encode_uleb(immediate)
    elif kind in (_IMM_I32, _IMM_I64, _IMM_BLOCK):
        assert isinstance(immediate, int)
        out += encode_sleb(immediate)
    elif kind in (_IMM_F32, _IMM_F64):
        assert isinstance(immediate, bytes)
        out += immediate
    elif kind in (_IMM_MEMARG, _IMM_CALL_INDIRECT, _IMM_TWO_U32, _IMM_DATA_MEMORY,
                  _IMM_TWO_ZERO_BYTES):
        assert isinstance(immediate, tuple)
        for part in immediate:
            assert isinstance(part, int)
            out += encode_uleb(part)
    elif kind == _IMM_BR_TABLE:
        assert isinstance(immediate, tuple)
        targets, default = immediate
        assert isinstance(targets, tuple) and isinstance(default, int)
        out += encode_uleb(len(targets))
        for target in targets:
            out += encode_uleb(target)
        out += encode_uleb(default)
    elif kind == _IMM_SELECT_TYPES:
        assert isinstance(immediate, tuple)
        out += encode_uleb(len(immediate))
        for value_type in immediate:
            assert isinstance(value_type, int)
            out.append(value_type)
    elif kind == _IMM_REF_TYPE:
        assert isinstance(immediate, int)
        out.append(immediate)
    else:
        raise WasmError(f"cannot encode {opcode_name(opcode)}")


def encode_instructions(opcodes: list[int], immediates: list[Immediate]) -> bytes:
    out = bytearray()
    for opcode, immediate in zip(opcodes, immediates, strict=True):
        encode_instruction(opcode, immediate, out)
    return bytes(out)


def _encode_name(value: str) -> bytes:
    raw = value.encode("utf-8")
    return encode_uleb(len(raw)) + raw


def _limits(limits: Limits) -> bytes:
    if limits.maximum is None:
        return b"\x00" + encode_uleb(limits.minimum)
    return b"\x01" + encode_uleb(limits.minimum) + encode_uleb(limits.maximum)


def _vector(items: list[bytes]) -> bytes:
    return encode_uleb(len(items)) + b"".join(items)


def encode_function_body(body: FunctionBody) -> bytes:
    """A code-section entry: its size, then the local groups and the instructions."""
    groups = [encode_uleb(count) + bytes((value_type,)) for count, value_type in body.locals]
    content = _vector(groups) + body.code
    return encode_uleb(len(content)) + content


def _encode_import(entry: Import) -> bytes:
    head = _encode_name(entry.module) + _encode_name(entry.name) + bytes((entry.kind,))
    desc = entry.desc
    if isinstance(desc, int):
        return head + encode_uleb(desc)
    if isinstance(desc, TableType):
        return head + bytes((desc.element_type,)) + _limits(desc.limits)
    if isinstance(desc, MemoryType):
        return head + _limits(desc.limits)
    return head + bytes((desc.value_type, int(desc.mutable)))


def _encode_element(segment: ElementSegment) -> bytes:
    out = bytearray(encode_uleb(segment.flags))
    if segment.is_active:
        if segment.flags & 2:
            out += encode_uleb(segment.table_index)
        assert segment.offset is not None
        out += segment.offset
    if segment.flags & 3:
        out.append(segment.element_type if segment.uses_expressions else 0)
    if segment.uses_expressions:
        out += _vector(list(segment.expressions))
    else:
        out += _vector([encode_uleb(index) for index in segment.functions])
    return bytes(out)


def _encode_data(segment: DataSegment) -> bytes:
    out = bytearray(encode_uleb(segment.flags))
    if segment.flags == 2:
        out += encode_uleb(segment.memory_index)
    if segment.flags != 1:
        assert segment.offset is not None
        out += segment.offset
    out += encode_uleb(len(segment.data)) + segment.data
    return bytes(out)


def _section_contents(module: WasmModule, section_id: int) -> bytes | None:
    """The encoded content of one standard section, or None when it is to be left out."""
    present = section_id in module.present_sections
    if section_id == SECTION_TYPE:
        items = [
            b"\x60" + _vector([bytes((t,)) for t in ft.params])
            + _vector([bytes((t,)) for t in ft.results])
            for ft in module.types
        ]
    elif section_id == SECTION_IMPORT:
        items = [_encode_import(entry) for entry in module.imports]
    elif section_id == SECTION_FUNCTION:
        items = [encode_uleb(index) for index in module.functions]
    elif section_id == SECTION_TABLE:
        items = [bytes((t.element_type,)) + _limits(t.limits) for t in module.tables]
    elif section_id == SECTION_MEMORY:
        items = [_limits(m.limits) for m in module.memories]
    elif section_id == SECTION_GLOBAL:
        items = [
            bytes((g.type.value_type, int(g.type.mutable))) + g.init for g in module.globals
        ]
    elif section_id == SECTION_EXPORT:
        items = [
            _encode_name(e.name) + bytes((e.kind,)) + encode_uleb(e.index) for e in module.exports
        ]
    elif section_id == SECTION_START:
        return None if module.start is None else encode_uleb(module.start)
    elif section_id == SECTION_ELEMENT:
        items = [_encode_element(segment) for segment in module.elements]
    elif section_id == SECTION_DATA_COUNT:
        return None if module.data_count is None else encode_uleb(module.data_count)
    elif section_id == SECTION_CODE:
        items = [encode_function_body(body) for body in module.code]
    else:
        items = [_encode_data(segment) for segment in module.data]
    if not items and not present:
        return None
    return _vector(items)


def _section(section_id: int, content: bytes) -> bytes:
    return bytes((section_id,)) + encode_uleb(len(content)) + content


def _custom(section: CustomSection) -> bytes:
    return _section(SECTION_CUSTOM, _encode_name(section.name) + section.data)


def encode_module(module: WasmModule) -> bytes:
    """The binary encoding of ``module``; custom sections go back where they were found."""
    customs_after: dict[int, list[CustomSection]] = {}
    for custom in module.custom_sections:
        customs_after.setdefault(custom.after, []).append(custom)
    parts = [MAGIC, VERSION]
    parts += [_custom(custom) for custom in customs_after.pop(0, [])]
    for section_id in SECTION_ORDER:
        content = _section_contents(module, section_id)
        if content is not None:
            parts.append(_section(section_id, content))
        parts += [_custom(custom) for custom in customs_after.pop(section_id, [])]
    for leftover in customs_after.values():
        parts += [_custom(custom) for custom in leftover]
    return b"".join(parts)
