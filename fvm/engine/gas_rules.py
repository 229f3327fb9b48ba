"""What each WebAssembly instruction costs, as ref-fvm's price lists say.

ref-fvm hands its ``WasmGasPrices`` to fvm-wasm-instrument as the ``Rules`` that price every
instruction. Two generations exist:

* ref-fvm v2 (``fvm/src/gas/price_list.rs`` at ``fvm@v2.x``, network versions 16 and 17, the
  "Skyr" price list): one ``exec_instruction_cost`` for every instruction except the FIP-0032
  free ones (nop, drop, block, loop, unreachable, return, else, end); memory growth is not
  charged per page (``MemoryGrowCost::Free``). The OhSnap list (network version 15) prices
  everything at zero.
* ref-fvm v3 and v4 (``fvm@v3.x``/``fvm@v4.x``, network version 18 on, the "Hygge" price list):
  costs by instruction class, and *linear* costs for the bulk instructions: a base plus a
  per-unit price times the instruction's last operand (bytes for memory.copy/fill/init,
  pages of 64 KiB for memory.grow, 8-byte elements for the table instructions).

All amounts are in milligas, the unit of the gas counter global the instrumented code decrements.
A cost table maps every opcode (see :mod:`fvm.engine.wasm_module`) to a fixed cost (an int), a
linear cost (``(base, per_unit)``) or ``None`` for an instruction the rules forbid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from fvm.engine import wasm_module as wm

MILLIGAS_PER_GAS: Final = 1000
WASM_PAGE_SIZE: Final = 65536
# ref-fvm v3 charges 8 bytes per table element ("each element reserves a usize").
TABLE_ELEMENT_SIZE: Final = 8

InstructionCost = int | tuple[int, int] | None


# FIP-0032: these instructions cost nothing in both price-list generations.
_FREE_CONTROL: Final = frozenset(
    (wm.NOP, wm.BLOCK, wm.LOOP, wm.UNREACHABLE, wm.RETURN, wm.ELSE, wm.END, wm.DROP)
)


@dataclass(frozen=True)
class WasmGasRulesV2:
    """ref-fvm v2's ``WasmGasPrices``: a flat price for every non-free instruction."""

    name: str
    exec_instruction_cost: int  # milligas
    costs: dict[int, InstructionCost] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table: dict[int, InstructionCost] = {}
        for opcode in wm.OPCODE_NAMES:
            if self.exec_instruction_cost == 0 or opcode in _FREE_CONTROL:
                table[opcode] = 0
            else:
                table[opcode] = self.exec_instruction_cost
        object.__setattr__(self, "costs", table)

    def cost(self, opcode: int) -> InstructionCost:
        return self.costs.get(opcode)


# Instruction classes of ref-fvm v3's charge table (``impl Rules for WasmGasPrices``).
_V3_PLAIN: Final = frozenset(
    (
        wm.I64_EXTEND_I32_U,
        0xA7,  # i32.wrap_i64
        0xBC, 0xBD, 0xBE, 0xBF,  # reinterpretations
        wm.I32_CONST, wm.I64_CONST, wm.F32_CONST, wm.F64_CONST,
        wm.LOCAL_GET, wm.LOCAL_SET, wm.LOCAL_TEE,
        wm.GLOBAL_GET, wm.GLOBAL_SET,
        wm.SELECT, wm.SELECT_TYPED,
        wm.DATA_DROP, wm.ELEM_DROP,
        wm.MEMORY_SIZE, wm.TABLE_SIZE,
    )
)
_V3_MATH: Final = frozenset(
    [*range(0x45, 0xA7), *range(0xA8, 0xBC), *range(0xC0, 0xC5), *range(0xFC00, 0xFC08)]
) - {wm.I64_EXTEND_I32_U}
_V3_LOADS: Final = frozenset([*range(0x28, 0x36), wm.TABLE_GET])
_V3_STORES: Final = frozenset([*range(0x36, 0x3F), wm.TABLE_SET])
_V3_FORBIDDEN: Final = frozenset((wm.REF_NULL, wm.REF_IS_NULL, wm.REF_FUNC))


@dataclass(frozen=True)
class WasmGasRulesV3:
    """ref-fvm v3/v4's ``WasmGasPrices`` (all amounts in milligas)."""

    name: str
    instruction_default: int
    math_default: int
    jump_unconditional: int
    jump_conditional: int
    jump_indirect: int
    call: int
    memory_fill_base_cost: int
    memory_access_cost: int
    memory_copy_per_byte_cost: int
    memory_fill_per_byte_cost: int
    costs: dict[int, InstructionCost] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs", self._table())

    def cost(self, opcode: int) -> InstructionCost:
        return self.costs.get(opcode)

    @staticmethod
    def _linear(base: int, per_unit: int, unit: int) -> InstructionCost:
        expansion = per_unit * unit
        if not 0 <= expansion < 1 << 32:
            raise ValueError(f"linear gas {expansion} exceeds u32")
        return (base, expansion) if expansion else base

    def _table(self) -> dict[int, InstructionCost]:
        access = self.instruction_default + self.memory_access_cost
        fill = self.instruction_default + self.memory_fill_base_cost
        table: dict[int, InstructionCost] = {}
        for opcode in wm.OPCODE_NAMES:
            cost: InstructionCost
            if opcode in _FREE_CONTROL:
                cost = 0
            elif opcode == wm.BR:
                cost = self.jump_unconditional
            elif opcode in (wm.BR_IF, wm.IF):
                cost = self.jump_conditional
            elif opcode == wm.BR_TABLE:
                cost = self.jump_indirect + self.memory_access_cost
            elif opcode == wm.CALL:
                cost = self.jump_unconditional + self.call
            elif opcode == wm.CALL_INDIRECT:
                cost = self.jump_indirect + self.memory_access_cost + self.call
            elif opcode in _V3_PLAIN:
                cost = self.instruction_default
            elif opcode in _V3_MATH:
                cost = self.math_default
            elif opcode in _V3_LOADS:
                cost = access
            elif opcode in _V3_STORES:
                cost = fill
            elif opcode in (wm.TABLE_INIT, wm.TABLE_COPY):
                cost = self._linear(access, self.memory_copy_per_byte_cost, TABLE_ELEMENT_SIZE)
            elif opcode in (wm.TABLE_FILL, wm.TABLE_GROW):
                cost = self._linear(fill, self.memory_fill_per_byte_cost, TABLE_ELEMENT_SIZE)
            elif opcode == wm.MEMORY_GROW:
                cost = self._linear(fill, self.memory_fill_per_byte_cost, WASM_PAGE_SIZE)
            elif opcode == wm.MEMORY_FILL:
                cost = self._linear(fill, self.memory_fill_per_byte_cost, 1)
            elif opcode in (wm.MEMORY_INIT, wm.MEMORY_COPY):
                cost = self._linear(access, self.memory_copy_per_byte_cost, 1)
            elif opcode in _V3_FORBIDDEN:
                cost = None
            else:
                raise AssertionError(f"no v3 price for {wm.opcode_name(opcode)}")
            table[opcode] = cost
        return table


WasmGasRules = WasmGasRulesV2 | WasmGasRulesV3

# ref-fvm v2 ``OH_SNAP_PRICES`` (network version 15): execution is free.
OH_SNAP_WASM_RULES: Final = WasmGasRulesV2("OhSnap", exec_instruction_cost=0)
# ref-fvm v2 ``SKYR_PRICES`` (network versions 16 and 17): 4 gas per instruction.
SKYR_WASM_RULES: Final = WasmGasRulesV2("Skyr", exec_instruction_cost=4 * MILLIGAS_PER_GAS)
# ref-fvm v3/v4 ``HYGGE_PRICES`` (network version 18 on; the wasm rules never changed after).
HYGGE_WASM_RULES: Final = WasmGasRulesV3(
    "Hygge",
    instruction_default=4 * MILLIGAS_PER_GAS,
    math_default=4 * MILLIGAS_PER_GAS,
    jump_unconditional=4 * MILLIGAS_PER_GAS,
    jump_conditional=4 * MILLIGAS_PER_GAS,
    jump_indirect=4 * MILLIGAS_PER_GAS,
    call=0,
    memory_fill_base_cost=0,
    memory_access_cost=0,
    memory_copy_per_byte_cost=400,
    memory_fill_per_byte_cost=400,
)


def wasm_rules_for_network_version(network_version: int) -> WasmGasRules:
    """The price list's wasm rules ref-fvm uses at ``network_version``."""
    if network_version <= 15:
        return OH_SNAP_WASM_RULES
    if network_version <= 17:
        return SKYR_WASM_RULES
    return HYGGE_WASM_RULES
