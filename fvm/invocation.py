"""The boundary between the call manager and actor code: what an invocation gets and gives back.

The call manager (:mod:`fvm.call_manager`) decides *whether* actor code runs: it resolves the
receiver, moves the value, and returns early for method 0. When code must run, it hands an
:class:`InvocationRequest` to an :class:`ActorInvoker`, the one piece that instantiates the
actor's WebAssembly module with a kernel bound to the call manager, calls its ``invoke``
export, and reports how the actor ended as an :data:`ActorOutcome`. This module holds those
types, so that the WebAssembly runtime plugs in without the call manager knowing how.

Ported from ref-fvm at ``fvm@v2.12.1`` (network versions 15-17) and ``fvm@v3.13.3`` (18-20):

* ``fvm/src/call_manager/mod.rs``: ``InvocationResult`` (v3's form ``{exit_code, value}``
  covers v2's ``Return(value) | Failure(exit_code)``: v2 failures carry no value) and
  ``NO_DATA_BLOCK_ID``;
* ``fvm/src/kernel/blocks.rs``: ``Block``, an IPLD block (codec and bytes) passed as
  parameters or return value;
* ``fvm/src/kernel/error.rs``: ``ExecutionError``, whose three cases are here the exceptions
  :class:`~fvm.gas.gas_tracker.OutOfGas`, :class:`~fvm.syscalls.abi.SyscallError` and
  :class:`FatalError`;
* ``fvm/src/syscalls/error.rs``: ``Abort`` (``Exit``, ``OutOfGas``, ``Fatal``), how actor
  code ends abnormally, which is :data:`ActorOutcome` here;
* ``fvm/src/call_manager/backtrace.rs``: :class:`Backtrace`, :class:`Frame` and the causes.

:class:`fvm.wasm_invoker.WasmActorInvoker` runs actor code in WebAssembly. Where no invoker is
given, :class:`UnavailableActorInvoker` stands in: it raises :class:`ActorCodeUnavailable`,
which no layer turns into a receipt, so a message that needs actor code fails loudly instead
of producing a made-up result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

from fvm.address import Address
from fvm.gas.gas_tracker import OutOfGas
from fvm.receipt import ExitCode
from fvm.syscalls.abi import ErrorNumber, SyscallError
from fvm.token import TokenAmount
from store.cid import CID
from store.errors import FvmNodeError

if TYPE_CHECKING:
    from fvm.call_manager import CallManager

# The block ID that stands for "no parameters" / "no return value".
NO_DATA_BLOCK_ID: Final = 0
METHOD_SEND: Final = 0
METHOD_CONSTRUCTOR: Final = 1


class FatalError(FvmNodeError):
    """ref-fvm's ``ExecutionError::Fatal``: the VM itself failed (a broken invariant, missing
    state). The message's receipt becomes ``SYS_ASSERTION_FAILED`` with all its gas used."""


class ActorCodeUnavailable(FvmNodeError):
    """Actor code had to run but no WebAssembly runtime is plugged in.

    Never converted into a receipt: it propagates out of the executor so that whoever applied
    the message reports that it could not be applied.
    """

    def __init__(self, request: InvocationRequest, actor_type: str | None) -> None:
        self.request = request
        self.actor_type = actor_type
        kind = actor_type if actor_type is not None else "non-builtin actor"
        super().__init__(
            f"actor code execution not available: method {request.method} of "
            f"{Address.new_id(request.receiver)} ({kind}, code {request.code})"
        )


@dataclass(frozen=True, slots=True)
class Block:
    """An IPLD block handed between actors: its codec and its bytes (ref-fvm ``Block``)."""

    codec: int
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """How a send ended for the caller: the exit code and, possibly, a return block."""

    exit_code: int = ExitCode.OK
    value: Block | None = None

    @property
    def succeeded(self) -> bool:
        return self.exit_code == ExitCode.OK


@dataclass(frozen=True, slots=True)
class InvocationRequest:
    """Everything an invoker needs to run one method of one actor.

    ``caller`` and ``receiver`` are actor IDs; ``code`` is the receiver's code CID; ``params``
    is None when the message carries no parameters. ``read_only`` is ref-fvm v3's flag (always
    False before network version 18).
    """

    caller: int
    receiver: int
    code: CID
    method: int
    params: Block | None
    value: TokenAmount
    read_only: bool


# -- backtraces --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyscallCause:
    """The syscall error that started a failure (ref-fvm ``Cause::Syscall``)."""

    module: str
    function: str
    error: ErrorNumber
    message: str

    @classmethod
    def from_error(cls, module: str, function: str, error: SyscallError) -> SyscallCause:
        return cls(module, function, error.number, error.message)

    def __str__(self) -> str:
        return (
            f"{self.module}::{self.function} -- {self.message} "
            f"({int(self.error)}: {self.error.name})"
        )


@dataclass(frozen=True, slots=True)
class FatalCause:
    """A fatal VM error that ended the message (ref-fvm ``Cause::Fatal``)."""

    error_msg: str

    def __str__(self) -> str:
        return f"[FATAL] Error: {self.error_msg}"


Cause: TypeAlias = SyscallCause | FatalCause


def _exit_code_text(code: int) -> str:
    try:
        return f"{ExitCode(code).name}({code})"
    except ValueError:
        return f"exit code {code}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One actor an error passed through: which actor and method, how it exited, and why."""

    source: int
    method: int
    code: int
    message: str

    def __str__(self) -> str:
        return (
            f"{Address.new_id(self.source)} (method {self.method}) -- {self.message} "
            f"({_exit_code_text(self.code)})"
        )


@dataclass(slots=True)
class Backtrace:
    """The actors a failure propagated through, from the source up, and its original cause.

    Frames are pushed as actors return, so the first frame is the deepest actor.
    """

    frames: list[Frame] = field(default_factory=list)
    cause: Cause | None = None

    def is_empty(self) -> bool:
        return not self.frames and self.cause is None

    def clear(self) -> None:
        self.frames.clear()
        self.cause = None

    def begin(self, cause: Cause) -> None:
        """Start a new backtrace at ``cause``, forgetting any frames collected so far."""
        self.cause = cause
        self.frames.clear()

    def set_cause(self, cause: Cause) -> None:
        """Stamp the cause without dropping the frames (for errors handled at the top)."""
        self.cause = cause

    def push_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def __str__(self) -> str:
        lines = [f"{i:02}: {frame}" for i, frame in enumerate(reversed(self.frames))]
        if self.cause is not None:
            lines.append(f"--> caused by: {self.cause}")
        return "\n".join(lines)


# -- what actor code gives back ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActorExit:
    """The actor returned (``exit_code`` 0, ``value`` its return block, if any) or exited or
    aborted with ``exit_code``; ``message`` is its abort message.

    ``last_error`` is the last syscall error the actor saw before it failed, which starts the
    backtrace (ref-fvm's ``InvocationData::last_error``).
    """

    exit_code: int
    value: Block | None = None
    message: str = ""
    last_error: SyscallCause | None = None


@dataclass(frozen=True, slots=True)
class ActorOutOfGas:
    """The actor ran out of gas (in WebAssembly or in a syscall)."""

    error: OutOfGas
    last_error: SyscallCause | None = None


@dataclass(frozen=True, slots=True)
class ActorFatal:
    """The VM failed while running the actor; the message will fail with all gas used.

    ``frame_code`` and ``frame_message`` are what the backtrace records for this actor:
    ``SYS_ASSERTION_FAILED`` and "fatal error" except where ref-fvm records otherwise (a
    missing exit block is recorded as ``SYS_MISSING_RETURN``).
    """

    error: str
    last_error: SyscallCause | None = None
    frame_code: int = ExitCode.SYS_ASSERTION_FAILED
    frame_message: str = "fatal error"


ActorOutcome: TypeAlias = ActorExit | ActorOutOfGas | ActorFatal


class ActorInvoker(Protocol):
    """Runs actor code: instantiate ``request.code`` with a kernel over ``call_manager`` and
    call its ``invoke`` export with the parameters.

    The invoker charges execution gas to ``call_manager.gas_tracker`` and reports how the actor
    ended; it does not resolve addresses, move value, open state transactions or record
    backtrace frames (the call manager does all of that around it). Nested sends go back
    through ``call_manager.send``.
    """

    def invoke(self, call_manager: CallManager, request: InvocationRequest) -> ActorOutcome: ...


class UnavailableActorInvoker:
    """The invoker for when no actor code may run: refuses to run anything."""

    def invoke(self, call_manager: CallManager, request: InvocationRequest) -> ActorOutcome:
        actor_type = call_manager.machine.builtin_actors.name_of(request.code)
        raise ActorCodeUnavailable(request, actor_type)
