"""Function bodies as the instrumentation passes edit them, and their re-encoding.

Both passes of :mod:`fvm.engine.instrument` work on decoded instruction lists, but most
instructions of an actor module come out unchanged. So a :class:`FunctionCode` remembers, for
each instruction, which original instruction it is (or that it is new), and :func:`encode_body`
copies the original bytes of every unchanged run instead of re-encoding instruction by
instruction; that keeps instrumenting the 1.5 MB actor modules fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from fvm.engine import wasm_module as wm

SYNTHETIC = -1


@dataclass(slots=True)
class FunctionCode:
    """One function body being instrumented.

    ``sources[i]`` is the index in the original body of instruction ``i``, or ``SYNTHETIC``
    for an inserted one; ``sources`` is None while the body is still the original, unchanged.
    """

    locals: tuple[tuple[int, int], ...]
    opcodes: list[int]
    immediates: list[wm.Immediate]
    sources: list[int] | None
    original: bytes
    offsets: list[int]

    @classmethod
    def decode(cls, body: wm.FunctionBody, index: int) -> FunctionCode:
        decoded = wm.decode_instructions(body.code, f"function {index}")
        return cls(body.locals, decoded.opcodes, decoded.immediates, None, body.code,
                   decoded.offsets)

    @classmethod
    def synthetic(
        cls,
        locals_: tuple[tuple[int, int], ...],
        opcodes: list[int],
        immediates: list[wm.Immediate],
    ) -> FunctionCode:
        return cls(locals_, opcodes, immediates, [SYNTHETIC] * len(opcodes), b"", [])

    def source_indices(self) -> list[int]:
        if self.sources is None:
            return list(range(len(self.opcodes)))
        return self.sources


def encode_body(
    code: FunctionCode,
    insertions: dict[int, bytes],
    shift_globals_from: int | None,
    extra_locals: tuple[tuple[int, int], ...] = (),
    encoded: dict[tuple[int, wm.Immediate], bytes] | None = None,
) -> wm.FunctionBody:
    """The body's final bytes: ``insertions[i]`` goes right before instruction ``i``, and every
    ``global.get``/``global.set`` index at or above ``shift_globals_from`` (unless None) moves
    up by one. ``encoded`` memoizes re-encoded instructions across calls."""
    opcodes = code.opcodes
    immediates = code.immediates
    sources = code.sources
    offsets = code.offsets
    original = code.original
    count = len(opcodes)
    shift = shift_globals_from is not None
    floor = shift_globals_from or 0
    if encoded is None:
        encoded = {}
    rewritten: set[int] = set()
    if shift:
        rewritten.update(
            i for i, opcode in enumerate(opcodes) if opcode == 0x23 or opcode == 0x24
        )  # global.get, global.set
    if sources is not None:
        rewritten.update(i for i, source in enumerate(sources) if source < 0)
    events = sorted(rewritten.union(insertions))
    out = bytearray()
    run_start = 0  # first instruction not yet written
    for position in events:
        if position > run_start:
            first = run_start if sources is None else sources[run_start]
            last = position - 1 if sources is None else sources[position - 1]
            out += original[offsets[first] : offsets[last + 1]]
        inserted = insertions.get(position)
        if inserted is not None:
            out += inserted
        if position in rewritten:
            key = (opcodes[position], immediates[position])
            instruction = encoded.get(key)
            if instruction is None:
                opcode, immediate = key
                if shift and (opcode == wm.GLOBAL_GET or opcode == wm.GLOBAL_SET):
                    assert isinstance(immediate, int)
                    if immediate >= floor:
                        immediate += 1
                buffer = bytearray()
                wm.encode_instruction(opcode, immediate, buffer)
                instruction = encoded[key] = bytes(buffer)
            out += instruction
            run_start = position + 1
        else:
            run_start = position
    if run_start < count:
        first = run_start if sources is None else sources[run_start]
        last = count - 1 if sources is None else sources[count - 1]
        out += original[offsets[first] : offsets[last + 1]]
    return wm.FunctionBody(code.locals + extra_locals, bytes(out))
