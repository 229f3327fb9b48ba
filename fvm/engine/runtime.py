"""Running actor code: instantiation, syscalls and the gas bridge between wasm and the VM.

A port of how ref-fvm executes one actor invocation (``send_resolved`` in
``fvm/src/call_manager/default.rs``, ``Engine::instantiate``/``new_store`` in
``fvm/src/engine.rs`` (v3; ``machine/engine.rs`` in v2, ``engine/mod.rs`` in v4), and
``fvm/src/syscalls/{mod,bind}.rs`` (``linker.rs`` in v4)):

* every invocation gets its own wasmtime store, holding a fresh mutable i64 global that the
  instrumented code imports as its gas counter (milligas left), and the actor's module is
  instantiated in it against a linker that binds the syscalls;
* before wasm runs, the gas the VM has left is written into that global
  (``update_gas_available``); whenever control comes back to the host (every syscall, and the
  end of the invocation) what wasm consumed meanwhile is charged to the VM's gas tracker
  (``charge_for_exec``), and after a syscall the global is refreshed again. A global that went
  negative (wasm ran out) charges the whole remainder plus the overdraft, so the tracker runs
  out of gas;
* a syscall charges ``OnSyscall``, checks that its out-pointer can hold the result, calls the
  Python handler bound to it, writes the result and returns an error number
  (:class:`~fvm.syscalls.abi.ErrorNumber`) to the actor. A handler aborts the actor by
  raising: :class:`AbortExit` (``vm.exit``), :class:`~fvm.gas.gas_tracker.OutOfGas`, or any
  other exception, which is fatal;
* the outcome of ``invoke(params_block_id) -> return_block_id`` is one of
  :class:`Returned`, :class:`Exited` (the actor exited, or wasm trapped:
  ``SYS_ILLEGAL_INSTRUCTION``), :class:`RanOutOfGas` or :class:`Failed` (fatal).

The ref-fvm generations differ in what instantiation charges and how its failures count
(the engine configuration's ``meters_instantiation``, see :meth:`Invocation.instantiate`), in
how execution gas is computed (v2 has no memory accounting) and in the syscall set
(:mod:`fvm.syscalls.abi`). From v3 the memory of the whole
call stack is limited (2 GiB) as well as each instance's (512 MiB); :class:`MemoryLimiter` is
ref-fvm's ``DefaultMemoryLimiter`` and the instance limit is enforced through the store's
limits, which give exactly the reference's answers because an actor's memory can only grow
while its own wasm runs.

Host functions are bound through wasmtime's "unchecked" C API (raw argument slots, no
per-call type conversion by the binding), which measured about 1 µs per call against 10 µs
for the binding's ``Linker.define_func``; the gas global is read and written the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

import wasmtime
from wasmtime import _ffi

from fvm.engine.config import EngineConfig
from fvm.engine.guest_memory import GuestMemory, store_context_address
from fvm.engine.module_cache import CompiledModule, ModuleCache
from fvm.gas.charge import I64_MAX, GasCharge
from fvm.gas.gas_tracker import OutOfGas
from fvm.invocation import FatalError as FatalError  # the one fatal error of the VM
from fvm.receipt import ExitCode
from fvm.syscalls.abi import (
    SYSCALL_TABLES,
    AbiGeneration,
    ErrorNumber,
    Syscall,
    SyscallError,
)
from store.cid import CID
from store.errors import FvmNodeError

WASM_PAGE_SIZE: Final = 65536
TABLE_ELEMENT_BYTES: Final = 8  # ref-fvm's limiter counts a usize per table element
NO_DATA_BLOCK_ID: Final = 0
INVOKE_EXPORT: Final = "invoke"
MEMORY_EXPORT: Final = "memory"
TABLE_EXPORT: Final = "table"  # the only table export ref-fvm charges initialisation for
U32_MASK: Final = 0xFFFF_FFFF

# wasmtime 2.0's ``TrapCode`` display strings, which ref-fvm v3 puts in the abort message.
TRAP_MESSAGES: Final[Mapping[wasmtime.TrapCode, str]] = {
    wasmtime.TrapCode.STACK_OVERFLOW: "call stack exhausted",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    wasmtime.TrapCode.HEAP_MISALIGNED: "misaligned memory access",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element: out of bounds table access",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "uninitialized element",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call type mismatch",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.UNREACHABLE: "wasm `unreachable` instruction executed",
}

# -- raw C API access --------------------------------------------------------------------------

_VAL_RAW_SIZE: Final = ctypes.sizeof(_ffi.wasmtime_val_raw_t)
_VAL_PAYLOAD_OFFSET: Final = _ffi.wasmtime_val_t.of.offset
# (env, caller, args_and_results, count) -> wasm_trap_t* or 0, with plain addresses throughout.
_HostCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)
_define_func_unchecked = _ffi.dll["wasmtime_linker_define_func_unchecked"]
_define_func_unchecked.restype = ctypes.c_void_p
_define_func_unchecked.argtypes = [
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
    _HostCallback,
    ctypes.c_void_p,
    ctypes.c_void_p,
]
_global_get = _ffi.dll["wasmtime_global_get"]
_global_get.restype = None
_global_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
_global_set = _ffi.dll["wasmtime_global_set"]
_global_set.restype = ctypes.c_void_p
_global_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
_trap_new = _ffi.dll["wasmtime_trap_new"]
_trap_new.restype = ctypes.c_void_p
_trap_new.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_error_delete = _ffi.dll["wasmtime_error_delete"]
_error_delete.restype = None
_error_delete.argtypes = [ctypes.c_void_p]
_string_at = ctypes.string_at
_memmove = ctypes.memmove
_HOST_ABORT_MESSAGE: Final = b"fvm-node: actor aborted by the host"
_NO_INVOCATION_MESSAGE: Final = b"fvm-node: host call outside of an invocation"
_RESULT_OK: Final = struct.pack("<i", 0)

_WASM_VAL_TYPES: Final = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}
_ARG_SLOT_FORMATS: Final = {"u32": "I12x", "i32": "i12x", "u64": "Q8x", "i64": "q8x"}


# -- outcomes and aborts -----------------------------------------------------------------------


class AbortExit(FvmNodeError):
    """ref-fvm ``Abort::Exit``: the actor stops with an exit code, an optional return block and
    a message. ``vm.exit`` (``vm.abort``) handlers raise it; wasm traps produce it."""

    def __init__(self, exit_code: int, message: str, block_id: int = NO_DATA_BLOCK_ID) -> None:
        self.exit_code = exit_code
        self.message = message
        self.block_id = block_id
        super().__init__(f"actor exited with {exit_code}: {message}")


class _MemoryExhausted(FvmNodeError):
    """The call stack has no memory left for a new instance's tables."""


@dataclass(frozen=True, slots=True)
class Returned:
    """``invoke`` returned this block ID (0: no return value)."""

    block_id: int


@dataclass(frozen=True, slots=True)
class Exited:
    """The actor exited (``vm.exit``) or trapped (``SYS_ILLEGAL_INSTRUCTION``)."""

    exit_code: int
    message: str
    block_id: int


@dataclass(frozen=True, slots=True)
class RanOutOfGas:
    """The gas tracker ran out during the invocation."""

    error: OutOfGas


@dataclass(frozen=True, slots=True)
class Failed:
    """A fatal error (ref-fvm ``Abort::Fatal``)."""

    error: BaseException


InvocationOutcome = Returned | Exited | RanOutOfGas | Failed


@dataclass(frozen=True, slots=True)
class SyscallFailure:
    """The last syscall that returned an error (ref-fvm ``last_error``, for backtraces)."""

    module: str
    name: str
    number: ErrorNumber
    message: str


# -- what the runtime needs from the VM --------------------------------------------------------


class GasMeter(Protocol):
    """The VM's gas tracker (:class:`fvm.gas.gas_tracker.GasTracker` is one); milligas."""

    def charge_gas(self, name: str, milligas: int) -> None:
        """Charge; raise :class:`~fvm.gas.gas_tracker.OutOfGas` past the limit."""

    @property
    def gas_available(self) -> int: ...


class WasmPrices(Protocol):
    """The price-list entries charged around wasm execution (the price lists have them)."""

    def on_syscall(self) -> GasCharge: ...

    def init_memory_gas(self, min_memory_bytes: int) -> int: ...

    def grow_memory_gas(self, grow_memory_bytes: int) -> int: ...

    def init_table_gas(self, min_table_elements: int) -> int: ...


class MemoryLimiter:
    """ref-fvm ``DefaultMemoryLimiter`` (v3 on): memory of the whole call stack, in bytes.

    Instances add their initial memory and tables (8 bytes per element) when instantiated and
    their growth as it happens; :meth:`stack_frame` restores the total when a call returns.
    """

    __slots__ = ("_used", "max_memory_bytes")

    def __init__(self, max_memory_bytes: int) -> None:
        self.max_memory_bytes = max_memory_bytes
        self._used = 0

    def memory_used(self) -> int:
        return self._used

    def grow_memory(self, delta: int) -> bool:
        """Account ``delta`` more bytes if the total stays within the limit."""
        desired = self._used + delta
        if desired > self.max_memory_bytes:
            return False
        self._used = desired
        return True

    @contextlib.contextmanager
    def stack_frame(self) -> Iterator[None]:
        """Run a nested call; what it accounts is released when it returns."""
        used = self._used
        try:
            yield
        finally:
            self._used = used

    @classmethod
    def for_engine(cls, config: EngineConfig) -> MemoryLimiter | None:
        """The limiter of a generation (None for ref-fvm v2, which has no memory limits)."""
        if config.max_memory_bytes is None:
            return None
        return cls(config.max_memory_bytes)


KernelT = TypeVar("KernelT")


class SyscallContext(Generic[KernelT]):
    """What a syscall handler gets besides its arguments: the kernel and the actor's memory."""

    __slots__ = ("invocation", "kernel", "memory")

    def __init__(
        self, invocation: Invocation[KernelT], kernel: KernelT, memory: GuestMemory
    ) -> None:
        self.invocation = invocation
        self.kernel = kernel
        self.memory = memory


# A handler receives the context and the syscall's own arguments (the out-pointer excluded),
# as Python ints of the declared signedness, and returns the value to write through the
# out-pointer (an int, bytes, or a tuple of the layout's fields), or None for syscalls without.
SyscallHandler = Callable[..., object]


class RuntimeMisuse(FvmNodeError):
    """A misuse of the runtime (an unknown syscall bound, a second instantiation...)."""


ResultT = TypeVar("ResultT")

# ref-fvm runs messages on threads with a 64 MiB stack for its 1024 nested calls. Here each
# nesting level also holds Python and ctypes frames (measured: 1024 levels need 4-8 MiB on
# top of wasm's own frames, and about 9 interpreter frames per level in the runtime alone).
EXECUTION_STACK_BYTES: Final = 256 << 20
EXECUTION_RECURSION_LIMIT: Final = 100_000
_stack_size_lock = threading.Lock()


def run_on_execution_stack(function: Callable[[], ResultT]) -> ResultT:
    """Call ``function`` on a thread with room for ref-fvm's deepest call stacks.

    Message execution must run this way (or on a thread that already has such a stack): the
    default 8 MiB stack and Python recursion limit of 1000 give out after about a hundred
    nested actor calls. The interpreter-wide recursion limit is raised if it is lower.
    """
    if sys.getrecursionlimit() < EXECUTION_RECURSION_LIMIT:
        sys.setrecursionlimit(EXECUTION_RECURSION_LIMIT)
    results: list[ResultT] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(function())
        except BaseException as error:  # handed to the calling thread
            errors.append(error)

    with _stack_size_lock:
        previous = threading.stack_size(EXECUTION_STACK_BYTES)
        try:
            thread = threading.Thread(target=target, name="fvm-execution")
            thread.start()
        finally:
            threading.stack_size(previous)
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


# -- the runtime -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModuleFacts:
    """A module's link check (ref-fvm links before instantiating: an import without a matching
    definition is fatal) and the exports ref-fvm charges initialisation for, in pages and
    elements (None when not exported)."""

    link_problem: str | None
    memory_export_pages: int | None
    table_export_elements: int | None


@dataclass(frozen=True, slots=True)
class _Binding:
    syscall: Syscall
    handler: SyscallHandler
    arguments: struct.Struct  # every wasm argument slot, out-pointer included
    slots: int


class Runtime(Generic[KernelT]):
    """Executes actor modules of one engine configuration with one set of syscall handlers.

    ``handlers`` maps ``(module, name)`` to a handler; each must be a syscall of
    ``generation``'s table (:mod:`fvm.syscalls.abi`). A module importing a syscall that has
    no handler fails to link, which ref-fvm treats as fatal.
    """

    def __init__(
        self,
        modules: ModuleCache,
        generation: AbiGeneration,
        handlers: Mapping[tuple[str, str], SyscallHandler],
    ) -> None:
        config = modules.config
        if (generation is AbiGeneration.V2) != (config.ref_fvm == "v2"):
            raise RuntimeMisuse(f"engine {config.ref_fvm} cannot run the {generation.value} ABI")
        self.modules = modules
        self.config = config
        self.generation = generation
        self.engine = modules.engine
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        self._link_lock = threading.RLock()
        self._local = threading.local()
        self._callbacks: list[object] = []  # keeps the C callbacks alive
        table = {syscall.key: syscall for syscall in SYSCALL_TABLES[generation]}
        self.bindings: dict[tuple[str, str], _Binding] = {}
        for key, handler in handlers.items():
            syscall = table.get(key)
            if syscall is None:
                raise RuntimeMisuse(f"{key[0]}.{key[1]} is not a {generation.value} syscall")
            self._bind(syscall, handler)
        self._facts: dict[CID, ModuleFacts] = {}
        self.gas_global_type = wasmtime.GlobalType(wasmtime.ValType.i64(), True)

    def _bind(self, syscall: Syscall, handler: SyscallHandler) -> None:
        types = (["u32"] if syscall.result is not None else []) + [
            param.rust_type for param in syscall.params
        ]
        arguments = struct.Struct("<" + "".join(_ARG_SLOT_FORMATS[t] for t in types))
        binding = _Binding(syscall, handler, arguments, len(types))
        self.bindings[syscall.key] = binding
        func_type = wasmtime.FuncType(
            [_WASM_VAL_TYPES[t]() for t in syscall.wasm_params],
            [_WASM_VAL_TYPES[t]() for t in syscall.wasm_results],
        )
        local = self._local

        def host_call(env: int, caller: int, args: int, count: int) -> int:
            active: list[Invocation[KernelT]] | None = getattr(local, "active", None)
            if not active:
                # Only this runtime's invocations can reach its linker's functions.
                return _trap_new(_NO_INVOCATION_MESSAGE, len(_NO_INVOCATION_MESSAGE)) or 0
            invocation = active[-1]
            try:
                invocation.host_call(binding, args)
            except BaseException as abort:  # every abort must become a trap
                invocation.pending_abort = abort
                return _trap_new(_HOST_ABORT_MESSAGE, len(_HOST_ABORT_MESSAGE)) or 0
            return 0

        callback = _HostCallback(host_call)
        self._callbacks.append((callback, func_type))
        module = syscall.module.encode()
        name = syscall.name.encode()
        error = _define_func_unchecked(
            ctypes.cast(self.linker.ptr(), ctypes.c_void_p),
            module,
            len(module),
            name,
            len(name),
            ctypes.cast(func_type.ptr(), ctypes.c_void_p),
            callback,
            None,
            None,
        )
        if error:
            _error_delete(error)
            raise RuntimeMisuse(f"cannot bind {syscall.module}.{syscall.name}")

    # -- entry points ----------------------------------------------------------------------

    def new_invocation(
        self,
        kernel: KernelT,
        gas: GasMeter,
        prices: WasmPrices,
        limiter: MemoryLimiter | None = None,
    ) -> Invocation[KernelT]:
        """A store for one actor invocation (ref-fvm ``Engine::new_store``)."""
        if (limiter is None) != (self.generation is AbiGeneration.V2):
            raise RuntimeMisuse("ref-fvm v3 on limits memory (a MemoryLimiter); v2 does not")
        return Invocation(self, kernel, gas, prices, limiter)

    def invoke(
        self,
        module: CompiledModule,
        params_block_id: int,
        kernel: KernelT,
        gas: GasMeter,
        prices: WasmPrices,
        limiter: MemoryLimiter | None = None,
    ) -> InvocationOutcome:
        """Instantiate ``module`` in a new store and run its ``invoke`` export."""
        invocation = self.new_invocation(kernel, gas, prices, limiter)
        return invocation.run(module, params_block_id)

    # -- linking ---------------------------------------------------------------------------

    def facts(self, compiled: CompiledModule) -> ModuleFacts:
        """What instantiating ``compiled`` needs to know, worked out once per module."""
        found = self._facts.get(compiled.code_cid)
        if found is None:
            found = self._facts[compiled.code_cid] = self._study(compiled.module)
        return found

    def _study(self, module: wasmtime.Module) -> ModuleFacts:
        problem: str | None = None
        for item in module.imports:
            where = f"{item.module}.{item.name}"
            kind = item.type
            if item.module == self.config.gas_module and item.name == self.config.gas_counter_name:
                if not (
                    isinstance(kind, wasmtime.GlobalType)
                    and kind.mutable
                    and str(kind.content) == "i64"
                ):
                    problem = f"gas counter {where} is not a mutable i64 global"
            else:
                binding = self.bindings.get((item.module or "", item.name or ""))
                if binding is None:
                    problem = f"unknown import: {where}"
                elif not isinstance(kind, wasmtime.FuncType) or (
                    tuple(str(t) for t in kind.params) != binding.syscall.wasm_params
                    or tuple(str(t) for t in kind.results) != binding.syscall.wasm_results
                ):
                    problem = f"incompatible import type for {where}"
            if problem is not None:
                break
        exports = {item.name: item.type for item in module.exports}
        memory = exports.get(MEMORY_EXPORT)
        table = exports.get(TABLE_EXPORT)
        return ModuleFacts(
            link_problem=problem,
            memory_export_pages=(
                memory.limits.min if isinstance(memory, wasmtime.MemoryType) else None
            ),
            table_export_elements=(
                table.limits.min if isinstance(table, wasmtime.TableType) else None
            ),
        )

    @contextlib.contextmanager
    def _running(self, invocation: Invocation[KernelT]) -> Iterator[None]:
        """Mark ``invocation`` as the one host calls on this thread belong to."""
        active: list[Invocation[KernelT]] | None = getattr(self._local, "active", None)
        if active is None:
            active = self._local.active = []
        active.append(invocation)
        try:
            yield
        finally:
            active.pop()


class Invocation(Generic[KernelT]):
    """One actor invocation: its store, gas bridge, instance and syscall state.

    ``last_error`` is the last syscall failure (cleared by a successful syscall);
    ``pending_abort`` carries an abort from a host function out through the wasm trap.
    """

    def __init__(
        self,
        runtime: Runtime[KernelT],
        kernel: KernelT,
        gas: GasMeter,
        prices: WasmPrices,
        limiter: MemoryLimiter | None,
    ) -> None:
        self.runtime = runtime
        self.kernel = kernel
        self.gas = gas
        self.prices = prices
        self.limiter = limiter
        self.v2 = runtime.generation is AbiGeneration.V2
        self.store = wasmtime.Store(runtime.engine)
        self.gas_global = wasmtime.Global(self.store, runtime.gas_global_type, 0)
        self._context = store_context_address(self.store)
        self._global_address = ctypes.addressof(self.gas_global._global)
        self._value = _ffi.wasmtime_val_t()
        self._value.kind = _ffi.WASMTIME_I64
        self._value_address = ctypes.addressof(self._value)
        # The i64 inside the value, read and written without building the union each time.
        self._i64 = ctypes.c_int64.from_address(self._value_address + _VAL_PAYLOAD_OFFSET)
        self._idle_memory_gas = prices.grow_memory_gas(0)
        self.last_gas_available = 0
        self.last_memory_bytes = limiter.memory_used() if limiter is not None else 0
        self.instance: wasmtime.Instance | None = None
        self.exports: Mapping[str, object] | None = None
        self.memory: GuestMemory | None = None
        self.context: SyscallContext[KernelT] | None = None
        self.instance_memory_bytes = 0  # what this instance's memory has accounted
        self.last_error: SyscallFailure | None = None
        self.pending_abort: BaseException | None = None
        self.syscall_charge = prices.on_syscall()

    # -- the gas bridge --------------------------------------------------------------------

    def gas_counter(self) -> int:
        """The wasm gas global (milligas left as wasm sees it; negative once overdrawn)."""
        _global_get(self._context, self._global_address, self._value_address)
        value: int = self._i64.value
        return value

    def update_gas_available(self) -> None:
        """ref-fvm ``update_gas_available``: hand the VM's remaining gas to wasm."""
        available = self.gas.gas_available
        if available > I64_MAX:
            raise FatalError("available milligas exceeded i64::MAX")
        self._i64.value = available
        error = _global_set(self._context, self._global_address, self._value_address)
        if error:
            _error_delete(error)
            raise FatalError("failed to set available gas global")
        self.last_gas_available = available
        if self.limiter is not None:
            # Memory only grows while wasm runs, and charge_for_exec accounted that already.
            self.last_memory_bytes = self.limiter.memory_used()

    def charge_for_exec(self) -> None:
        """ref-fvm ``charge_for_exec``: charge what wasm consumed since the last update."""
        remaining = self.gas_counter()
        if self.v2:
            last = self.last_gas_available
            self.last_gas_available = remaining
            used = max(min(last - remaining, I64_MAX), -I64_MAX - 1)
            self.gas.charge_gas("wasm_exec", used)
            return
        if remaining < 0:
            charge = self.last_gas_available - remaining
        else:
            charge = max(self.last_gas_available - remaining, 0)
        limiter = self.limiter
        assert limiter is not None
        memory = self.memory
        if memory is not None:
            size = memory.refresh()
            if size > self.instance_memory_bytes:
                grown = limiter.grow_memory(size - self.instance_memory_bytes)
                # The store's limit lets the memory grow only as far as the limiter allows.
                assert grown, "instance memory outgrew the call stack's memory limit"
                self.instance_memory_bytes = size
        memory_delta = limiter.memory_used() - self.last_memory_bytes
        if memory_delta > 0:
            memory_charge = self.prices.grow_memory_gas(memory_delta)
        else:
            memory_charge = self._idle_memory_gas
        if memory_charge <= charge:
            charge -= memory_charge
        else:
            memory_charge = charge
            charge = 0
        self.gas.charge_gas("wasm_exec", charge)
        if memory_charge:
            self.gas.charge_gas("wasm_memory_grow", memory_charge)

    # -- syscalls ----------------------------------------------------------------------------

    def host_call(self, binding: _Binding, args: int) -> None:
        """One syscall, as ref-fvm's binding runs it; the error number goes to ``args[0]``.

        Raises (to trap the actor) for aborts.
        """
        memory = self.memory
        context = self.context
        if memory is None or context is None:
            memory, context = self._memory_before_instantiation()
        self.charge_for_exec()  # from v3 this also reloads the memory's address and size
        if self.v2:
            memory.refresh()
        charge = self.syscall_charge
        self.gas.charge_gas(charge.name, charge.compute_gas)
        values = binding.arguments.unpack(_string_at(args, _VAL_RAW_SIZE * binding.slots))
        syscall = binding.syscall
        layout = syscall.result
        if layout is not None:
            out = values[0]
            values = values[1:]
            if not memory.fits(out, layout):
                self.last_error = SyscallFailure(
                    syscall.module,
                    syscall.name,
                    ErrorNumber.ILLEGAL_ARGUMENT,
                    "no space for return value",
                )
                # As in ref-fvm, this early return leaves the gas global as wasm left it.
                _memmove(args, struct.pack("<i", ErrorNumber.ILLEGAL_ARGUMENT), 4)
                return
        abort: BaseException | None = None
        try:
            value = binding.handler(context, *values)
        except SyscallError as error:
            number = error.number
            self.last_error = SyscallFailure(syscall.module, syscall.name, number, error.message)
            _memmove(args, struct.pack("<i", number), 4)
        except BaseException as raised:  # aborts are re-raised below
            abort = raised
        else:
            if layout is not None:
                memory.write_result(out, layout, value)
            self.last_error = None
            _memmove(args, _RESULT_OK, 4)
        self.update_gas_available()
        if abort is not None:
            raise abort

    def _memory_before_instantiation(self) -> tuple[GuestMemory, SyscallContext[KernelT]]:
        """What a syscall from a start function sees: ref-fvm's empty placeholder memory (the
        exported memory is resolved once instantiation is over)."""
        empty = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(0, 0)))
        memory = GuestMemory(self.store, empty)
        return memory, SyscallContext(self, self.kernel, memory)

    # -- instantiation and invocation ---------------------------------------------------------

    def instantiate(self, compiled: CompiledModule) -> wasmtime.Instance:
        """ref-fvm ``Engine::instantiate`` (``get_instance`` in v2) for this engine.

        With ``meters_instantiation`` (v3.13.3 and v4): the module's initial memory (and a
        table exported as ``table``) is charged first, a link failure is fatal, the gas global
        is set before instantiating (a start function runs on the message's gas) and what ran
        is charged afterwards; any other instantiation failure (a trap in a start function,
        memory limits) exits with ``SYS_ILLEGAL_INSTRUCTION``. Without (v2): nothing is
        charged, the gas global is still 0 and any failure is fatal.

        Raises :class:`AbortExit`, :class:`FatalError` or
        :class:`~fvm.gas.gas_tracker.OutOfGas`.
        """
        if self.instance is not None:
            raise RuntimeMisuse("an invocation instantiates one module")
        runtime = self.runtime
        metered = runtime.config.meters_instantiation
        facts = runtime.facts(compiled)
        if metered:
            self._charge_for_init(facts)
        if facts.link_problem is not None:
            raise FatalError(f"failed to link actor module: {facts.link_problem}")
        if metered:
            self.update_gas_available()
        try:
            if self.limiter is not None:
                self._limit_memory(compiled)
            with runtime._running(self), runtime._link_lock:
                runtime.linker.define(
                    self.store,
                    runtime.config.gas_module,
                    runtime.config.gas_counter_name,
                    self.gas_global,
                )
                instance = runtime.linker.instantiate(self.store, compiled.module)
        except (wasmtime.Trap, wasmtime.WasmtimeError, _MemoryExhausted) as exc:
            # ref-fvm does not look into a trap raised while instantiating (a start function's
            # syscall aborting included): the kind of failure alone decides.
            self.pending_abort = None
            if not metered:
                raise FatalError(f"failed to instantiate actor: {exc}") from None
            self.charge_for_exec()
            raise AbortExit(
                ExitCode.SYS_ILLEGAL_INSTRUCTION, f"failed to instantiate module: {exc}"
            ) from None
        self.instance = instance
        self.exports = instance.exports(self.store)
        self._attach_memory(compiled)
        if metered:
            self.charge_for_exec()
        return instance

    def _attach_memory(self, compiled: CompiledModule) -> None:
        """Resolve the exported memory and account the new instance to the limiter (its
        tables and initial memory, which wasmtime allocated while instantiating)."""
        assert self.exports is not None
        memory = self.exports.get(MEMORY_EXPORT)
        if not isinstance(memory, wasmtime.Memory):
            raise FatalError("actor has no memory export")
        self.memory = GuestMemory(self.store, memory)
        self.context = SyscallContext(self, self.kernel, self.memory)
        if self.limiter is not None:
            table_bytes = compiled.layout.table_elements * TABLE_ELEMENT_BYTES
            accounted = self.limiter.grow_memory(table_bytes + self.memory.size)
            assert accounted, "the store's limits admitted an instance the limiter refuses"
            self.instance_memory_bytes = self.memory.size

    def _charge_for_init(self, facts: ModuleFacts) -> None:
        """ref-fvm ``charge_for_init``: the exported memory's minimum, and a ``table``."""
        if facts.memory_export_pages is None:
            raise FatalError("actor has no memory export")
        min_memory_bytes = facts.memory_export_pages * WASM_PAGE_SIZE
        self.last_memory_bytes += min_memory_bytes
        if facts.table_export_elements is not None:
            table_gas = self.prices.init_table_gas(facts.table_export_elements)
            self.gas.charge_gas("wasm_table_init", table_gas)
        self.gas.charge_gas("wasm_memory_init", self.prices.init_memory_gas(min_memory_bytes))

    def _limit_memory(self, compiled: CompiledModule) -> None:
        """Cap the store's linear memory and tables where ref-fvm's pooling allocator and
        limiter would. (A table's growth is not accounted to the limiter: wasmtime's binding
        cannot see a table the module does not export. It would only change how execution gas
        is labelled, and the call stack's limit within 160 kB (20 000 elements) per instance of
        2 GiB.)"""
        assert self.limiter is not None
        headroom = self.limiter.max_memory_bytes - self.limiter.memory_used()
        headroom -= compiled.layout.table_elements * TABLE_ELEMENT_BYTES
        instance_limit = self.runtime.config.max_inst_memory_bytes
        if instance_limit is not None:
            headroom = min(headroom, instance_limit)
        if headroom < 0:
            raise _MemoryExhausted("the module's tables exceed the memory limit")
        pooling = self.runtime.config.pooling
        if pooling is None:
            self.store.set_limits(memory_size=headroom)
        else:
            # A pooled table never holds more than the pool's elements: table.grow returns -1.
            self.store.set_limits(memory_size=headroom, table_elements=pooling.table_elements)

    def _invoke_export(self) -> wasmtime.Func:
        """The ``invoke`` export, which must be ``(i32) -> i32`` (ref-fvm ``get_typed_func``)."""
        assert self.exports is not None
        invoke = self.exports.get(INVOKE_EXPORT)
        if not isinstance(invoke, wasmtime.Func):
            raise FatalError("actor has no invoke export")
        func_type = invoke.type(self.store)
        params = [str(value_type) for value_type in func_type.params]
        results = [str(value_type) for value_type in func_type.results]
        if params != ["i32"] or results != ["i32"]:
            raise FatalError("the invoke export is not (i32) -> i32")
        return invoke

    def run(self, compiled: CompiledModule, params_block_id: int) -> InvocationOutcome:
        """Instantiate and call ``invoke(params_block_id)`` (ref-fvm ``send_resolved``'s core).

        Execution gas is charged after ``invoke`` returns or traps and before its result is
        looked at, so running out of gas in wasm ends as :class:`RanOutOfGas`.
        """
        try:
            self.instantiate(compiled)
            invoke = self._invoke_export()
            self.update_gas_available()
            trap: BaseException | None = None
            result = 0
            self.pending_abort = None
            with self.runtime._running(self):
                try:
                    result = invoke(self.store, _as_i32(params_block_id))
                except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                    trap = exc
            self.charge_for_exec()
            if trap is not None:
                raise self._abort_for(trap)
            return Returned(result & U32_MASK)
        except AbortExit as exit_:
            return Exited(exit_.exit_code, exit_.message, exit_.block_id)
        except OutOfGas as error:
            return RanOutOfGas(error)
        except Exception as error:  # anything else is ref-fvm's Abort::Fatal
            return Failed(error)

    def _abort_for(self, trap: BaseException) -> BaseException:
        """The abort a trap stands for (ref-fvm ``From<Trap> for Abort``)."""
        pending = self.pending_abort
        if pending is not None:
            self.pending_abort = None
            return pending
        if isinstance(trap, wasmtime.Trap) and trap.trap_code is not None:
            message = TRAP_MESSAGES.get(trap.trap_code, trap.message)
            return AbortExit(ExitCode.SYS_ILLEGAL_INSTRUCTION, message)
        return FatalError(f"wasm execution failed: {trap}")


def _as_i32(value: int) -> int:
    """A u32 as the signed i32 wasmtime's binding takes."""
    value &= U32_MASK
    return value - (1 << 32) if value >= 1 << 31 else value
