"""Port of fvm-wasm-instrument's gas metering (``src/gas_metering/mod.rs``), releases 0.2.0
and 0.4.0.

The module gets a new import, a mutable i64 global holding the gas (milligas) left, appended
after the existing imports; since imports come first in the global index space, the
``global.get``/``global.set`` indices in code move up by one (0.2.0: those at or above the new
global's; 0.4.0: all of them, imported globals' included). A new function ``gas(i64)`` subtracts its
argument from the global and traps (``unreachable``) once the global is negative.

Each function body is cut into *metered blocks*, stretches that either run entirely or not at
all (barring traps), and ``i64.const <cost>; call gas`` is put in front of each, charging the
summed costs of its instructions (see :func:`metered_blocks`). A block opens at the start of
the function, after every branch (``br``, ``br_if``, ``br_table``, ``return``), at the start of
a ``loop`` body and an ``if`` body, after an ``else``, and after the ``end`` of a block that a
branch may leave early; instructions after an ``end`` that no branch can skip keep counting
towards the enclosing block, and a ``block``'s body counts towards the block it sits in until
its first branch. ``end`` and ``else`` are never charged.

0.4.0 additionally prices the bulk instructions *linearly* (base + per-unit cost times the
instruction's last operand, an i32). If an ``i32.const`` comes right before the instruction the
whole cost is static; otherwise the base cost goes into the block and, right before the
instruction, ``local.tee $t; local.get $t; i64.extend_i32_u; i64.const <per-unit>; i64.mul;
call gas`` charges the rest (``$t`` is a new i32 local). A negative constant operand makes the
whole module fail to instrument.

The gas global's index is the number of imported globals; 0.2.0 refuses a module importing
any other global whose module *and* name both differ from the gas import's.

Reference quirks reproduced: 0.4.0 leaves a ``br_table``'s default target out when it works
out which blocks a branch may leave (0.2.0 includes it); 0.4.0 does not renumber exported
globals (0.2.0 does); 0.4.0 requires every element item *expression* (not the segment offset)
to be ``i32.const; end`` while 0.2.0 checks element segment offsets; both require data segment
offsets of that form.
"""

from __future__ import annotations

from typing import Final

from fvm.engine import config
from fvm.engine import wasm_module as wm
from fvm.engine.config import InstrumenterVersion
from fvm.engine.function_code import FunctionCode, encode_body
from fvm.engine.gas_rules import InstructionCost
from fvm.engine.stack_limiter import InstrumentationError

U64_MAX: Final = (1 << 64) - 1
# Linear per-unit costs must fit in 31 bits (so that the runtime product cannot overflow).
MAX_UNIT_COST: Final = 0x8000_0000
_I32_CONST_END: Final = 2  # a constant expression of exactly ``i32.const x; end``


def fixed_costs(costs: dict[int, InstructionCost]) -> dict[int, int]:
    """The instructions of a cost table that have a fixed cost."""
    return {opcode: cost for opcode, cost in costs.items() if isinstance(cost, int)}


def metered_blocks(
    opcodes: list[int],
    immediates: list[wm.Immediate],
    costs: dict[int, InstructionCost],
    version: InstrumenterVersion,
    where: str,
    gas_charge_cost: int = 0,
    linear_calc_cost: int = 0,
    fixed: dict[int, int] | None = None,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``determine_metered_blocks``: the metered blocks as ``(start position, cost)``, sorted,
    and the dynamically charged instructions as ``(position, per-unit cost)``.

    ``fixed`` may pass ``fixed_costs(costs)`` in, to save computing it for every function.
    """
    v04 = version is InstrumenterVersion.V0_4_0
    if fixed is None:
        fixed = fixed_costs(costs)
    # Control stack entries: [lowest forward branch target, active block start, active block
    # cost, is loop]. The first entry is the function body itself.
    stack: list[list[int]] = [[0, 0, 0, 0]]
    finalized: list[tuple[int, int]] = []
    dynamic: list[tuple[int, int]] = []

    def fail(message: str, cursor: int) -> InstrumentationError:
        return InstrumentationError(message, f"{where}, instruction {cursor}")

    def finalize_metered_block(cursor: int) -> None:
        if not stack:
            raise fail("stack not found", cursor)
        top = stack[-1]
        closing_start, closing_cost = top[1], top[2]
        top[1] = cursor + 1
        top[2] = 0
        if len(stack) > 1:
            previous = stack[-2]
            if closing_start == previous[1]:
                previous[2] += closing_cost
                return
        if closing_cost > 0:
            finalized.append((closing_start, closing_cost))

    def branch(cursor: int, targets: list[int]) -> None:
        finalize_metered_block(cursor)
        for target in targets:
            if stack[target][3]:
                continue
            top = stack[-1]
            if target < top[0]:
                top[0] = target

    def linear_cost(opcode: int, cursor: int, last_const: wm.Immediate) -> int:
        """The static part of a non-fixed instruction cost; records dynamic charges."""
        cost = costs.get(opcode)
        if cost is None:
            raise fail(f"{wm.opcode_name(opcode)} is forbidden by the gas rules", cursor)
        assert isinstance(cost, tuple)
        if not v04:
            raise fail("fvm-wasm-instrument 0.2.0 has no linear instruction costs", cursor)
        base, per_unit = cost
        if per_unit >= MAX_UNIT_COST:
            raise fail("cost per unit excedes the 0x80000000 limit", cursor)
        if isinstance(last_const, int):
            if last_const < 0:
                raise fail(
                    "linearly priced instructions are illegal with negative arguments", cursor
                )
            return base + last_const * per_unit
        dynamic.append((cursor, per_unit))
        return base + gas_charge_cost + linear_calc_cost

    i32_const = wm.I32_CONST if v04 else -1  # 0.2.0 has no constant-operand pricing
    pending = 0  # cost of ordinary instructions not yet added to the active block
    last_const: wm.Immediate = None  # the operand of an i32.const just before, if any
    for cursor, opcode in enumerate(opcodes):
        cost = fixed.get(opcode)
        if cost is None:
            cost = linear_cost(opcode, cursor, last_const)
        if opcode > 0x0F or opcode < 2:
            # An ordinary instruction (not block, loop, if, else, end, br*, return).
            pending += cost
            last_const = immediates[cursor] if opcode == i32_const else None
            continue
        last_const = None
        # A control instruction; end and else are never charged.
        if opcode != wm.END and opcode != wm.ELSE:
            pending += cost
        if not stack:
            raise fail("stack not found", cursor)
        top = stack[-1]
        top[2] += pending
        pending = 0
        if top[2] > U64_MAX:
            raise fail("add cost overflow", cursor)
        if opcode == wm.END:
            finalize_metered_block(cursor)
            closing = stack.pop()
            if stack:
                top = stack[-1]
                if closing[0] < top[0]:
                    top[0] = closing[0]
                if closing[0] < len(stack):
                    finalize_metered_block(cursor)
        elif opcode == wm.BR_IF or opcode == wm.BR:
            label = immediates[cursor]
            assert isinstance(label, int)
            target = len(stack) - 1 - label
            if target < 0:
                raise fail("index not found", cursor)
            branch(cursor, [target])
        elif opcode == wm.BLOCK:
            stack.append([len(stack), top[1], 0, 0])
        elif opcode == wm.LOOP or opcode == wm.IF:
            stack.append([len(stack), cursor + 1, 0, 1 if opcode == wm.LOOP else 0])
        elif opcode == wm.ELSE:
            finalize_metered_block(cursor)
        elif opcode == wm.BR_TABLE:
            immediate = immediates[cursor]
            assert isinstance(immediate, tuple)
            labels, default = immediate
            assert isinstance(labels, tuple) and isinstance(default, int)
            chosen = list(labels) if v04 else [default, *labels]
            targets = [len(stack) - 1 - label for label in chosen]
            if any(target < 0 for target in targets):
                raise fail("br_table label out of range", cursor)
            branch(cursor, targets)
        elif opcode == wm.RETURN:
            branch(cursor, [0])
        else:
            raise fail(f"unexpected control instruction {wm.opcode_name(opcode)}", cursor)
    finalized.sort()
    return finalized, dynamic


def _metering_call(cost: int, gas_function: int) -> bytes:
    signed = cost - (1 << 64) if cost >= 1 << 63 else cost
    return b"\x42" + wm.encode_sleb(signed) + b"\x10" + wm.encode_uleb(gas_function)


def _dynamic_charge(temp_local: int, per_unit: int, gas_function: int) -> bytes:
    temp = wm.encode_uleb(temp_local)
    return (
        b"\x22" + temp + b"\x20" + temp + bytes((wm.I64_EXTEND_I32_U,))
        + b"\x42" + wm.encode_sleb(per_unit) + bytes((wm.I64_MUL,))
        + b"\x10" + wm.encode_uleb(gas_function)
    )


def _is_i32_const_expr(expr: bytes | None) -> bool:
    if expr is None:
        return True
    decoded = wm.decode_const_expr(expr)
    return len(decoded) == _I32_CONST_END and decoded.opcodes[0] == wm.I32_CONST


def inject_gas_metering(
    module: wm.WasmModule,
    bodies: list[FunctionCode],
    costs: dict[int, InstructionCost],
    version: InstrumenterVersion,
    gas_module: str,
    gas_counter_name: str,
    gas_charge_cost: int = 0,
    linear_calc_cost: int = 0,
) -> None:
    """Apply gas metering to ``module``, whose code is ``bodies``; re-encodes ``module.code``.

    ``gas_charge_cost`` and ``linear_calc_cost`` are the ``Rules`` trait's charges for calling
    the gas function and for computing a dynamic charge (0.4.0 only; ref-fvm sets both to 0).
    """
    v04 = version is InstrumenterVersion.V0_4_0
    gas_global = module.imported_global_count
    for entry in module.imports:
        if entry.kind != wm.KIND_GLOBAL:
            continue
        if v04 and entry.module == gas_module and entry.name == gas_counter_name:
            raise InstrumentationError("expected 1 gas global")
        if not v04 and entry.module != gas_module and entry.name != gas_counter_name:
            raise InstrumentationError("0.2.0 refuses modules importing other globals")
    module.imports.append(
        wm.Import(gas_module, gas_counter_name, wm.KIND_GLOBAL, wm.GlobalType(wm.I64, True))
    )
    for data_segment in module.data:
        if not _is_i32_const_expr(data_segment.offset):
            raise InstrumentationError("data segment offset is not a constant i32")
    for element_segment in module.elements:
        if v04:
            checked = list(element_segment.expressions)
        else:
            checked = [element_segment.offset] if element_segment.offset is not None else []
        if not all(_is_i32_const_expr(expr) for expr in checked):
            raise InstrumentationError("element segment expression is not a constant i32")
    # 0.2.0 moves up the global indices at or above the new import's; 0.4.0 moves up every
    # global index in code (imported ones too) and leaves exported globals alone.
    shift_from = 0 if v04 else gas_global
    if not v04:
        module.exports = [
            wm.Export(e.name, e.kind, e.index + 1)
            if e.kind == wm.KIND_GLOBAL and e.index >= gas_global else e
            for e in module.exports
        ]

    fixed = fixed_costs(costs)
    encoded: dict[tuple[int, wm.Immediate], bytes] = {}
    function_types = module.function_type_indices()
    gas_function = len(function_types)
    imported = module.imported_function_count
    new_code: list[wm.FunctionBody] = []
    for defined, code in enumerate(bodies):
        where = f"function {imported + defined}"
        blocks, dynamic = metered_blocks(
            code.opcodes, code.immediates, costs, version, where, gas_charge_cost,
            linear_calc_cost, fixed,
        )
        insertions: dict[int, bytes] = {}
        count = len(code.opcodes)
        for start, cost in blocks:
            if start in insertions or start >= count:
                raise InstrumentationError("metered blocks should be all consumed", where)
            insertions[start] = _metering_call(gas_charge_cost + cost, gas_function)
        extra_locals: tuple[tuple[int, int], ...] = ()
        if dynamic:
            params = len(module.types[function_types[imported + defined]].params)
            temp_local = params + sum(n for n, _ in code.locals)
            extra_locals = ((1, wm.I32),)
            for position, per_unit in dynamic:
                charge = _dynamic_charge(temp_local, per_unit, gas_function)
                insertions[position] = insertions.get(position, b"") + charge
        new_code.append(encode_body(code, insertions, shift_from, extra_locals, encoded))

    gas = wm.encode_uleb(gas_global)
    gas_counter_body = (
        bytes((wm.GLOBAL_GET,)) + gas + bytes((wm.LOCAL_GET, 0, wm.I64_SUB, wm.GLOBAL_SET)) + gas
        + bytes((wm.GLOBAL_GET,)) + gas
        + bytes((wm.I64_CONST, 0, wm.I64_LT_S, wm.IF, 0x40, wm.UNREACHABLE, wm.END, wm.END))
    )
    module.functions.append(module.type_index_of(wm.FuncType((wm.I64,), ())))
    new_code.append(wm.FunctionBody((), gas_counter_body))
    module.code = new_code


def inject(
    module_bytes: bytes,
    costs: dict[int, InstructionCost],
    version: InstrumenterVersion,
    gas_module: str,
    gas_counter_name: str | None = None,
    gas_charge_cost: int = 0,
    linear_calc_cost: int = 0,
) -> bytes:
    """Gas metering alone, bytes to bytes (the reference's ``gas_metering::inject``)."""
    module = wm.decode_module(module_bytes)
    imported = module.imported_function_count
    bodies = [FunctionCode.decode(body, imported + i) for i, body in enumerate(module.code)]
    inject_gas_metering(
        module, bodies, costs, version, gas_module,
        gas_counter_name if gas_counter_name is not None else config.gas_counter_name(version),
        gas_charge_cost, linear_calc_cost,
    )
    return wm.encode_module(module)
