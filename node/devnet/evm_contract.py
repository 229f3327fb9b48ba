"""A counter contract in hand-assembled EVM bytecode, for the devnet load generator.

The load generator deploys one small contract through the Ethereum Address Manager and calls
it, so the devnet exercises the EVM actor (actors v10, FEVM): contract creation, storage,
return data and an event (``LOG1`` becomes an actor event, FIP-0049). There is no Solidity
compiler here, so the contract is written as EVM instructions and turned into bytes by the tiny
assembler below (opcode numbers from the Ethereum yellow paper, appendix H; builtin-actors
``actors/evm/src/interpreter/instructions/mod.rs`` at v10.0.0 executes them).

ABI (Solidity conventions: a call's first 4 bytes are the first 4 bytes of the keccak-256 of
the function's signature, values are 32-byte big-endian words):

* ``increment()`` (selector ``0xd09de08a``): adds 1 to storage slot 0, emits
  ``Incremented(uint256)`` with the new count as the log data (topic 0 = keccak-256 of the
  event signature) and returns the new count;
* ``get()`` (selector ``0x6d4ce63c``): returns the count in storage slot 0;
* any other call data reverts with no data. Neither function checks the value sent.

The init code copies the runtime code (which follows it) into memory and returns it, the
usual constructor shape; :func:`listing` prints either program one instruction a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from fvm.crypto.hashes import keccak_256
from store.errors import FvmNodeError, MalformedInput

# Opcodes the contract uses (yellow paper appendix H). PUSH1..PUSH32 are 0x60..0x7f.
OPCODES: Final[dict[str, int]] = {
    "STOP": 0x00,
    "ADD": 0x01,
    "EQ": 0x14,
    "SHR": 0x1C,
    "CALLDATALOAD": 0x35,
    "CODECOPY": 0x39,
    "POP": 0x50,
    "MSTORE": 0x52,
    "SLOAD": 0x54,
    "SSTORE": 0x55,
    "JUMPI": 0x57,
    "JUMPDEST": 0x5B,
    "DUP1": 0x80,
    "LOG1": 0xA1,
    "RETURN": 0xF3,
    "REVERT": 0xFD,
    **{f"PUSH{width}": 0x5F + width for width in range(1, 33)},
}

WORD_BYTES: Final = 32


class AssemblyError(FvmNodeError, ValueError):
    """A program the assembler cannot encode (unknown opcode, bad immediate, lost label)."""


class ContractReturnError(MalformedInput):
    """Return data that is not the 32-byte word the ABI promises."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction; a PUSH carries its immediate bytes or the name of a label to push."""

    opcode: str
    immediate: bytes = b""
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """A jump target: assembles to ``JUMPDEST`` and names its offset."""

    name: str


Program: TypeAlias = Sequence[Instruction | Label]


def op(name: str) -> Instruction:
    """An instruction without an immediate."""
    if name not in OPCODES or name.startswith("PUSH"):
        raise AssemblyError(f"{name} is not an opcode without immediate")
    return Instruction(name)


def push(value: int | bytes, width: int | None = None) -> Instruction:
    """``PUSHn`` of ``value`` (an int in the smallest width that holds it unless given)."""
    if isinstance(value, bytes):
        data = value
    else:
        if value < 0:
            raise AssemblyError(f"cannot push negative {value}")
        size = width if width is not None else max(1, (value.bit_length() + 7) // 8)
        if value >= 1 << (8 * size):
            raise AssemblyError(f"{value} does not fit in {size} bytes")
        data = value.to_bytes(size, "big")
    if not 1 <= len(data) <= WORD_BYTES:
        raise AssemblyError(f"a push carries 1 to 32 bytes, not {len(data)}")
    return Instruction(f"PUSH{len(data)}", data)


def push_label(name: str) -> Instruction:
    """``PUSH1`` of a label's offset (programs here are shorter than 256 bytes)."""
    return Instruction("PUSH1", label=name)


def _size(item: Instruction | Label) -> int:
    if isinstance(item, Label):
        return 1
    if item.label is not None:
        return 2
    return 1 + len(item.immediate)


def _offsets(program: Program) -> dict[str, int]:
    labels: dict[str, int] = {}
    offset = 0
    for item in program:
        if isinstance(item, Label):
            if item.name in labels:
                raise AssemblyError(f"label {item.name} defined twice")
            labels[item.name] = offset
        offset += _size(item)
    return labels


def _encode(item: Instruction | Label, labels: dict[str, int]) -> bytes:
    if isinstance(item, Label):
        return bytes([OPCODES["JUMPDEST"]])
    if item.opcode not in OPCODES:
        raise AssemblyError(f"unknown opcode {item.opcode}")
    if item.label is None:
        return bytes([OPCODES[item.opcode]]) + item.immediate
    target = labels.get(item.label)
    if target is None:
        raise AssemblyError(f"undefined label {item.label}")
    if target > 0xFF:
        raise AssemblyError(f"label {item.label} at {target} needs more than PUSH1")
    return bytes([OPCODES["PUSH1"], target])


def assemble(program: Program) -> bytes:
    """The bytecode of ``program`` (two passes: label offsets, then bytes)."""
    labels = _offsets(program)
    return b"".join(_encode(item, labels) for item in program)


def listing(program: Program) -> list[str]:
    """One line per instruction: offset, bytes in hex, mnemonic and immediate."""
    labels = _offsets(program)
    lines: list[str] = []
    offset = 0
    for item in program:
        code = _encode(item, labels)
        if isinstance(item, Label):
            text = f"JUMPDEST  ; {item.name}:"
        elif item.label is not None:
            text = f"PUSH1 0x{code[1]:02x}  ; {item.label}"
        elif item.immediate:
            text = f"{item.opcode} 0x{item.immediate.hex()}"
        else:
            text = item.opcode
        lines.append(f"0x{offset:04x}  {code.hex():<10}  {text}")
        offset += len(code)
    return lines


def selector(signature: str) -> bytes:
    """The 4-byte ABI selector of a function signature such as ``"get()"``."""
    return keccak_256(signature.encode())[:4]


INCREMENT_SIGNATURE: Final = "increment()"
GET_SIGNATURE: Final = "get()"
INCREMENTED_EVENT_SIGNATURE: Final = "Incremented(uint256)"
INCREMENT_SELECTOR: Final = selector(INCREMENT_SIGNATURE)
GET_SELECTOR: Final = selector(GET_SIGNATURE)
INCREMENTED_TOPIC: Final = keccak_256(INCREMENTED_EVENT_SIGNATURE.encode())
COUNTER_SLOT: Final = 0

RUNTIME_PROGRAM: Final[tuple[Instruction | Label, ...]] = (
    # The selector: the first call-data word shifted right by 28 bytes.
    push(0),
    op("CALLDATALOAD"),
    push(0xE0),
    op("SHR"),
    op("DUP1"),
    push(INCREMENT_SELECTOR),
    op("EQ"),
    push_label("increment"),
    op("JUMPI"),
    op("DUP1"),
    push(GET_SELECTOR),
    op("EQ"),
    push_label("get"),
    op("JUMPI"),
    push(0),
    op("DUP1"),
    op("REVERT"),
    Label("increment"),
    op("POP"),
    push(COUNTER_SLOT),
    op("SLOAD"),
    push(1),
    op("ADD"),
    op("DUP1"),
    push(COUNTER_SLOT),
    op("SSTORE"),
    push(0),
    op("MSTORE"),
    # LOG1(offset 0, size 32, topic): pops offset, size, topic in that order.
    push(INCREMENTED_TOPIC),
    push(WORD_BYTES),
    push(0),
    op("LOG1"),
    push(WORD_BYTES),
    push(0),
    op("RETURN"),
    Label("get"),
    op("POP"),
    push(COUNTER_SLOT),
    op("SLOAD"),
    push(0),
    op("MSTORE"),
    push(WORD_BYTES),
    push(0),
    op("RETURN"),
)
RUNTIME_CODE: Final = assemble(RUNTIME_PROGRAM)


def _init_program(runtime_length: int, runtime_offset: int) -> tuple[Instruction, ...]:
    # CODECOPY(dest 0, runtime_offset, size) then RETURN(0, size): the size pushed first stays
    # on the stack for RETURN.
    return (
        push(runtime_length),
        op("DUP1"),
        push(runtime_offset),
        push(0),
        op("CODECOPY"),
        push(0),
        op("RETURN"),
    )


def _constructor(runtime: bytes) -> tuple[Instruction, ...]:
    """The init program for ``runtime``, which is appended right after it."""
    length = len(assemble(_init_program(len(runtime), 0)))
    program = _init_program(len(runtime), length)
    if len(assemble(program)) != length:
        raise AssemblyError("the init program's length depends on its own length")
    return program


INIT_PROGRAM: Final = _constructor(RUNTIME_CODE)
INIT_CODE: Final = assemble(INIT_PROGRAM) + RUNTIME_CODE


def increment_calldata() -> bytes:
    return INCREMENT_SELECTOR


def get_calldata() -> bytes:
    return GET_SELECTOR


def decode_uint256(return_data: bytes) -> int:
    """The ``uint256`` a function returns (exactly one 32-byte word)."""
    if len(return_data) != WORD_BYTES:
        raise ContractReturnError(
            f"expected one 32-byte word of return data, got {len(return_data)} bytes"
        )
    return int.from_bytes(return_data, "big")
