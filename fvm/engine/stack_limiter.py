"""Port of fvm-wasm-instrument's stack limiter (``src/stack_limiter/``: ``mod.rs``,
``max_height.rs``, ``thunk.rs``), releases 0.2.0 and 0.4.0.

The limiter makes stack exhaustion deterministic. Each defined function gets a static *stack
cost*: its locals plus the maximal height of its value stack, where the height starts at an
activation-frame cost of 2. A new mutable i32 global counts the current height; every direct
``call`` of a function with a non-zero cost is wrapped in

    global.get H; i32.const cost; i32.add; global.set H;
    global.get H; i32.const LIMIT; i32.gt_u; if; unreachable; end;
    call f;
    global.get H; i32.const cost; i32.sub; global.set H

and exported functions, table entries and the start function are redirected to *thunks* that
do the same around a call of the original, so that entering the module is counted too.

The two releases differ where they are faithfully reproduced here:

* 0.2.0 counts a function's locals (the sum of the local declarations' counts); 0.4.0 counts
  the number of local *declaration groups* (wasmparser's ``LocalsReader::get_count``).
* 0.2.0 (parity-wasm with the ``bulk`` feature only) cannot read sign-extension,
  saturating-truncation, reference-type or table instructions, reference-typed blocks or a
  ``call_indirect`` on a table other than 0 (``InvalidTableReference``), so modules using them
  fail; 0.4.0 refuses typed ``select`` and ``ref.null``/``ref.is_null``/``ref.func``.

Quirks both share and that therefore stay: ``else`` neither resets the height nor the
then-branch's "unreachable" state; popping from a frame whose height is exactly its start
height is ignored in unreachable code and an error otherwise, while popping more values than a
frame has is not noticed; the new global's index ignores imported globals.
"""

from __future__ import annotations

from typing import Final

from fvm.engine import wasm_module as wm
from fvm.engine.config import InstrumenterVersion
from fvm.engine.function_code import SYNTHETIC, FunctionCode, encode_body


class InstrumentationError(wm.WasmError):
    """A module that fvm-wasm-instrument refuses to instrument (so ref-fvm cannot load it)."""


ACTIVATION_FRAME_COST: Final = 2

# Stack effects of the non-control instructions: (values popped, values pushed), applied as
# one pop then one push (the order matters for the frame-start check of ``pop_values``).
_EFFECTS: Final[dict[int, tuple[int, int]]] = {}


def _effect(opcodes: list[int] | range, pops: int, pushes: int) -> None:
    for opcode in opcodes:
        _EFFECTS[opcode] = (pops, pushes)


_effect([wm.NOP, wm.ELSE, wm.DATA_DROP, wm.ELEM_DROP], 0, 0)
_effect([wm.LOCAL_GET, wm.GLOBAL_GET, wm.MEMORY_SIZE, wm.TABLE_SIZE, wm.I32_CONST, wm.I64_CONST,
         wm.F32_CONST, wm.F64_CONST], 0, 1)
_effect([wm.LOCAL_SET, wm.GLOBAL_SET, wm.DROP], 1, 0)
_effect([wm.LOCAL_TEE, wm.MEMORY_GROW, wm.TABLE_GET, 0x45, 0x50], 1, 1)  # tee, grow, eqz
_effect(range(0x28, 0x36), 1, 1)  # loads
_effect(range(0x36, 0x3F), 2, 0)  # stores
_effect([wm.TABLE_SET], 2, 0)
_effect([*range(0x46, 0x50), *range(0x51, 0x67)], 2, 1)  # comparisons
_effect([0x67, 0x68, 0x69, 0x79, 0x7A, 0x7B, *range(0x8B, 0x92), *range(0x99, 0xA0)], 1, 1)
_effect([*range(0x6A, 0x79), *range(0x7C, 0x8B), *range(0x92, 0x99), *range(0xA0, 0xA7)], 2, 1)
_effect([*range(0xA7, 0xC0), *range(0xFC00, 0xFC08)], 1, 1)  # conversions
_effect(range(0xC0, 0xC5), 1, 1)  # sign extension
_effect([wm.MEMORY_INIT, wm.MEMORY_COPY, wm.MEMORY_FILL, wm.TABLE_INIT, wm.TABLE_COPY,
         wm.TABLE_FILL], 3, 0)
_effect([wm.TABLE_GROW], 2, 1)

# What parity-wasm 0.42 with the ``bulk`` feature (fvm-wasm-instrument 0.2.0) cannot decode.
_UNREADABLE_V0_2: Final = frozenset(
    [wm.SELECT_TYPED, wm.TABLE_GET, wm.TABLE_SET, wm.REF_NULL, wm.REF_IS_NULL, wm.REF_FUNC,
     wm.TABLE_GROW, wm.TABLE_SIZE, wm.TABLE_FILL, *range(0xC0, 0xC5), *range(0xFC00, 0xFC08)]
)
# What fvm-wasm-instrument 0.4.0's ``max_height::compute`` refuses.
_REFUSED_V0_4: Final = frozenset((wm.SELECT_TYPED, wm.REF_NULL, wm.REF_IS_NULL, wm.REF_FUNC))


# Block types refused: parity-wasm (0.2.0) reads numeric block types only; with 0.4.0 an
# externref block stands for wasmtime 36 refusing GC types (see ``check_disabled_features``).
_REFUSED_BLOCK_TYPES: Final = {
    InstrumenterVersion.V0_2_0: frozenset(
        (wm.block_type_of_value(wm.FUNCREF), wm.block_type_of_value(wm.EXTERNREF))
    ),
    InstrumenterVersion.V0_4_0: frozenset((wm.block_type_of_value(wm.EXTERNREF),)),
}


def unsupported_opcodes(version: InstrumenterVersion) -> frozenset[int]:
    return _UNREADABLE_V0_2 if version is InstrumenterVersion.V0_2_0 else _REFUSED_V0_4


def call_sequence(callee: int, cost: int, height_global: int, limit: int) -> tuple[
    list[int], list[wm.Immediate]
]:
    """The instrumented call (preamble, the call itself, postamble), as instructions."""
    opcodes = [
        wm.GLOBAL_GET, wm.I32_CONST, wm.I32_ADD, wm.GLOBAL_SET,
        wm.GLOBAL_GET, wm.I32_CONST, wm.I32_GT_U, wm.IF, wm.UNREACHABLE, wm.END,
        wm.CALL,
        wm.GLOBAL_GET, wm.I32_CONST, wm.I32_SUB, wm.GLOBAL_SET,
    ]
    cost = _as_i32(cost)
    immediates: list[wm.Immediate] = [
        height_global, cost, None, height_global,
        height_global, _as_i32(limit), None, wm.BLOCK_EMPTY, None, None,
        callee,
        height_global, cost, None, height_global,
    ]
    return opcodes, immediates


def _as_i32(value: int) -> int:
    """A u32 as the signed i32 constant with the same bits (Rust's ``as i32``)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _effects_without(refused: frozenset[int]) -> dict[int, tuple[int, int]]:
    return {opcode: effect for opcode, effect in _EFFECTS.items() if opcode not in refused}


_EFFECTS_BY_VERSION: Final = {
    version: _effects_without(unsupported_opcodes(version)) for version in InstrumenterVersion
}


def max_stack_height(
    code: FunctionCode,
    result_count: int,
    call_arities: list[tuple[int, int]],
    type_arities: list[tuple[int, int]],
    version: InstrumenterVersion,
    where: str,
) -> int:
    """``max_height::compute``: the highest value stack (plus the activation frame) of a
    function body, not counting unreachable code. ``call_arities`` gives (params, results) by
    function index, ``type_arities`` by type index."""
    # Control frames as parallel lists: unreachable?, end arity, branch arity, start height.
    # The top frame's "unreachable" flag and start height are mirrored in locals.
    polymorphic = [False]
    end_arity = [result_count]
    branch_arity = [result_count]
    start_height = [0]
    top_polymorphic = False
    top_start = 0

    def fail(message: str, position: int) -> InstrumentationError:
        return InstrumentationError(message, f"{where}, instruction {position}")

    def pop(height: int, count: int, position: int) -> int:
        """The height after popping ``count`` values (the reference's ``pop_values``): popping
        at the frame's start height is ignored in unreachable code and an error otherwise."""
        if count == 0:
            return height
        if height == start_height[-1]:
            if polymorphic[-1]:
                return height
            raise fail("trying to pop more values than pushed", position)
        if count > height:
            raise fail("stack underflow", position)
        return height - count

    def frame_at(depth: int, position: int) -> int:
        index = len(polymorphic) - 1 - depth
        if index < 0:
            raise fail("control stack out-of-bounds", position)
        return index

    effects = _EFFECTS_BY_VERSION[version]
    refused_blocks = _REFUSED_BLOCK_TYPES[version]
    v04 = version is InstrumenterVersion.V0_4_0
    immediates = code.immediates
    height = ACTIVATION_FRAME_COST
    max_height = 0
    for position, opcode in enumerate(code.opcodes):
        if height > max_height and not top_polymorphic:
            max_height = height
        effect = effects.get(opcode)
        if effect is not None:
            pops, pushes = effect
            if pops:
                if height == top_start:
                    if not top_polymorphic:
                        raise fail("trying to pop more values than pushed", position)
                elif pops > height:
                    raise fail("stack underflow", position)
                else:
                    height -= pops
            height += pushes
            continue
        if opcode == wm.END:
            if len(polymorphic) == 1:
                height = start_height[0] + end_arity[0]
                del polymorphic[0], end_arity[0], branch_arity[0], start_height[0]
                continue
            polymorphic.pop()
            branch_arity.pop()
            height = start_height.pop() + end_arity.pop()
            top_polymorphic = polymorphic[-1]
            top_start = start_height[-1]
        elif opcode == wm.CALL:
            callee = immediates[position]
            assert isinstance(callee, int)
            if callee >= len(call_arities):
                raise fail(f"function {callee} not found", position)
            params, results = call_arities[callee]
            height = pop(height, params, position) + results
        elif opcode == wm.BR_IF:
            label = immediates[position]
            assert isinstance(label, int)
            arity = branch_arity[frame_at(label, position)]
            height = pop(height, arity, position)
            height = pop(height, 1, position) + arity
        elif opcode == wm.BLOCK or opcode == wm.LOOP or opcode == wm.IF:
            if immediates[position] in refused_blocks:
                raise fail("a reference-typed block is not supported", position)
            arity = 0 if immediates[position] == wm.BLOCK_EMPTY else 1
            if opcode == wm.IF:
                height = pop(height, 1, position)
            polymorphic.append(False)
            end_arity.append(arity)
            branch_arity.append(0 if opcode == wm.LOOP else arity)
            start_height.append(height)
            top_polymorphic = False
            top_start = height
        elif opcode == wm.BR:
            label = immediates[position]
            assert isinstance(label, int)
            height = pop(height, branch_arity[frame_at(label, position)], position)
            polymorphic[-1] = top_polymorphic = True
        elif opcode == wm.UNREACHABLE:
            polymorphic[-1] = top_polymorphic = True
        elif opcode == wm.SELECT:
            height = pop(height, 2, position)
            height = pop(height, 1, position) + 1
        elif opcode == wm.RETURN:
            height = pop(height, result_count, position)
            polymorphic[-1] = top_polymorphic = True
        elif opcode == wm.CALL_INDIRECT:
            immediate = immediates[position]
            assert isinstance(immediate, tuple)
            type_index = immediate[0]
            assert isinstance(type_index, int)
            if not v04 and immediate[1] != 0:
                raise fail("call_indirect on a table other than 0", position)
            if type_index >= len(type_arities):
                raise fail("type not found", position)
            params, results = type_arities[type_index]
            height = pop(height, 1, position)
            height = pop(height, params, position) + results
        elif opcode == wm.BR_TABLE:
            immediate = immediates[position]
            assert isinstance(immediate, tuple)
            targets, default = immediate
            assert isinstance(targets, tuple) and isinstance(default, int)
            arity = branch_arity[frame_at(default, position)]
            for target in targets:
                if branch_arity[frame_at(target, position)] != arity:
                    raise fail("arity of all jump-targets must be equal", position)
            height = pop(height, arity, position)
            polymorphic[-1] = top_polymorphic = True
        else:
            raise fail(f"{wm.opcode_name(opcode)} is not supported", position)
    return max_height


def inject_stack_limiter(
    module: wm.WasmModule,
    bodies: list[FunctionCode],
    stack_limit: int,
    version: InstrumenterVersion,
) -> None:
    """Apply the stack limiter to ``module`` and its decoded ``bodies`` in place."""
    if version is InstrumenterVersion.V0_2_0:
        _refuse_multi_value_blocks(bodies)
    height_global = len(module.globals)
    module.globals.append(wm.Global(wm.GlobalType(wm.I32, True), b"\x41\x00\x0b"))

    type_arities = [(len(t.params), len(t.results)) for t in module.types]
    function_types = module.function_type_indices()
    for type_index in function_types:
        if type_index >= len(module.types):
            raise InstrumentationError(f"type {type_index} not found")
    call_arities = [type_arities[type_index] for type_index in function_types]
    imported = module.imported_function_count

    costs = [0] * imported
    for defined, code in enumerate(bodies):
        where = f"function {imported + defined}"
        if version is InstrumenterVersion.V0_2_0:
            locals_count = sum(count for count, _ in code.locals)
        else:
            locals_count = len(code.locals)
        results = call_arities[imported + defined][1]
        height = max_stack_height(code, results, call_arities, type_arities, version, where)
        cost = locals_count + height
        if cost >= 1 << 32:
            raise InstrumentationError("overflow in adding locals_count and max_stack_height",
                                       where)
        costs.append(cost)

    for code in bodies:
        _instrument_calls(code, costs, height_global, stack_limit)
    _generate_thunks(module, bodies, costs, height_global, stack_limit, version)


def _refuse_multi_value_blocks(bodies: list[FunctionCode]) -> None:
    """0.2.0's parity-wasm reads no type-index (multi-value) block types."""
    for index, code in enumerate(bodies):
        for opcode, immediate in zip(code.opcodes, code.immediates, strict=True):
            if (opcode == wm.BLOCK or opcode == wm.LOOP or opcode == wm.IF) and (
                isinstance(immediate, int) and immediate >= 0
            ):
                raise InstrumentationError("multi-value block types are not supported",
                                           f"defined function {index}")


def _instrument_calls(code: FunctionCode, costs: list[int], height_global: int,
                      limit: int) -> None:
    opcodes = code.opcodes
    immediates = code.immediates
    positions = [
        position for position, opcode in enumerate(opcodes)
        if opcode == wm.CALL and _cost_of(costs, immediates[position]) > 0
    ]
    if not positions:
        return
    sources = code.source_indices()
    new_opcodes: list[int] = []
    new_immediates: list[wm.Immediate] = []
    new_sources: list[int] = []
    previous = 0
    for position in positions:
        new_opcodes += opcodes[previous:position]
        new_immediates += immediates[previous:position]
        new_sources += sources[previous:position]
        callee = immediates[position]
        assert isinstance(callee, int)
        sequence, sequence_immediates = call_sequence(callee, costs[callee], height_global, limit)
        new_opcodes += sequence
        new_immediates += sequence_immediates
        new_sources += [SYNTHETIC] * len(sequence)
        previous = position + 1
    new_opcodes += opcodes[previous:]
    new_immediates += immediates[previous:]
    new_sources += sources[previous:]
    code.opcodes = new_opcodes
    code.immediates = new_immediates
    code.sources = new_sources


def _cost_of(costs: list[int], callee: wm.Immediate) -> int:
    assert isinstance(callee, int)
    return costs[callee] if callee < len(costs) else 0


def _generate_thunks(
    module: wm.WasmModule,
    bodies: list[FunctionCode],
    costs: list[int],
    height_global: int,
    limit: int,
    version: InstrumenterVersion,
) -> None:
    entry_points = [e.index for e in module.exports if e.kind == wm.KIND_FUNCTION]
    for segment in module.elements:
        if not segment.uses_expressions:
            entry_points += segment.functions
    if module.start is not None:
        entry_points.append(module.start)

    thunk_of: dict[int, int] = {}
    for function_index in entry_points:
        if function_index >= len(costs):
            raise InstrumentationError(f"function index {function_index} isn't found")
        if costs[function_index] != 0:
            thunk_of[function_index] = -1
    if version is InstrumenterVersion.V0_4_0 and wm.SECTION_FUNCTION not in (
        module.present_sections
    ) and not module.functions:
        raise InstrumentationError("no function section")

    next_index = len(costs)
    function_types = module.function_type_indices()
    # Thunks are generated in ascending order of the function they wrap (a BTreeMap in both
    # releases: their ``cfg(features = "std")`` typo never selects the HashMap).
    for function_index in sorted(thunk_of):
        signature = module.types[function_types[function_index]]
        opcodes: list[int] = [wm.LOCAL_GET] * len(signature.params)
        immediates: list[wm.Immediate] = list(range(len(signature.params)))
        sequence, sequence_immediates = call_sequence(
            function_index, costs[function_index], height_global, limit
        )
        opcodes += [*sequence, wm.END]
        immediates += [*sequence_immediates, None]
        module.functions.append(module.type_index_of(signature))
        # A placeholder keeping module.code parallel to module.functions; the encoded body
        # is written from ``bodies`` when instrumentation finishes.
        module.code.append(wm.FunctionBody((), b""))
        bodies.append(FunctionCode.synthetic((), opcodes, immediates))
        thunk_of[function_index] = next_index
        next_index += 1

    module.exports = [
        wm.Export(e.name, e.kind, thunk_of.get(e.index, e.index))
        if e.kind == wm.KIND_FUNCTION else e
        for e in module.exports
    ]
    module.elements = [
        segment if segment.uses_expressions else wm.ElementSegment(
            segment.flags, segment.table_index, segment.offset, segment.element_type,
            tuple(thunk_of.get(index, index) for index in segment.functions),
        )
        for segment in module.elements
    ]
    if module.start is not None:
        module.start = thunk_of.get(module.start, module.start)


def inject(module_bytes: bytes, stack_limit: int, version: InstrumenterVersion) -> bytes:
    """The stack limiter alone, bytes to bytes (the reference's ``stack_limiter::inject``)."""
    module = wm.decode_module(module_bytes)
    imported = module.imported_function_count
    bodies = [FunctionCode.decode(body, imported + i) for i, body in enumerate(module.code)]
    inject_stack_limiter(module, bodies, stack_limit, version)
    module.code = [encode_body(code, {}, None) for code in bodies]
    return wm.encode_module(module)
