"""The actor invoker that runs actor WebAssembly: the kernel bound to the engine runtime.

The call manager hands each invocation of actor code to an
:class:`~fvm.invocation.ActorInvoker`; :class:`WasmActorInvoker` is the one that runs it. As
ref-fvm's ``send_resolved`` (``fvm/src/call_manager/default.rs`` at ``fvm@v2.12.1`` and
``fvm@v3.13.3``) it

1. finds the compiled module of the receiver's code (from the machine's blockstore, through a
   :class:`~fvm.engine.module_cache.ModuleCache` per engine configuration, on disk across runs);
   v2 (network versions up to 17) runs only the builtin actors of the machine's manifest, which
   is all its engine ever preloads ("actor code not found", fatal, for any other code);
2. makes the generation's kernel (:mod:`fvm.kernel`) with a fresh block registry holding the
   parameters, which the actor receives as block handle 1 (0 without parameters);
3. instantiates the module in a new store and calls its ``invoke`` export
   (:mod:`fvm.engine.runtime`), inside a memory-limiter frame from v3 on (the limit covers the
   whole call stack of the message);
4. turns how the actor ended into an :data:`~fvm.invocation.ActorOutcome`: a returned or exit
   block handle is resolved in the registry (a missing returned block exits with
   ``SYS_MISSING_RETURN``; a missing exit block is fatal), the last failed syscall becomes the
   start of the backtrace.

Message execution must run on a thread with a deep stack:
:func:`~fvm.engine.runtime.run_on_execution_stack`.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fvm.engine.config import EngineConfig, engine_config_for_network_version
from fvm.engine.module_cache import CompiledModule, ModuleCache
from fvm.engine.runtime import (
    Exited,
    Failed,
    MemoryLimiter,
    RanOutOfGas,
    Returned,
    Runtime,
    SyscallFailure,
)
from fvm.invocation import (
    NO_DATA_BLOCK_ID,
    ActorExit,
    ActorFatal,
    ActorOutcome,
    ActorOutOfGas,
    FatalError,
    InvocationRequest,
    SyscallCause,
)
from fvm.kernel.block_registry import BlockRegistry
from fvm.kernel.default import Kernel, kernel_class_for
from fvm.kernel.syscalls import syscall_handlers
from fvm.proofs.verifier import ProofVerifier
from fvm.receipt import ExitCode
from fvm.syscalls.abi import SyscallError, generation_for_network_version
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

if TYPE_CHECKING:
    from fvm.call_manager import CallManager
    from fvm.machine import Machine


@dataclass(frozen=True, slots=True)
class ActorEngine:
    """Everything needed to run actors of one engine configuration."""

    config: EngineConfig
    modules: ModuleCache
    runtime: Runtime[Kernel]
    kernel_class: type[Kernel]


def _cause(failure: SyscallFailure | None) -> SyscallCause | None:
    if failure is None:
        return None
    return SyscallCause(failure.module, failure.name, failure.number, failure.message)


class WasmActorInvoker:
    """Runs actor code with :mod:`fvm.kernel` over :mod:`fvm.engine.runtime`.

    ``proof_verifier`` answers the proof syscalls (see :mod:`fvm.proofs.verifier`);
    ``cache_dir`` holds compiled modules (None: the module cache's default folder);
    ``persist=False`` keeps them in memory only. One invoker serves any number of machines
    and network versions.
    """

    def __init__(
        self,
        proof_verifier: ProofVerifier,
        cache_dir: str | Path | None = None,
        *,
        persist: bool = True,
    ) -> None:
        self.proof_verifier = proof_verifier
        self.cache_dir = cache_dir
        self.persist = persist
        self._engines: dict[EngineConfig, ActorEngine] = {}
        self._limiters: weakref.WeakKeyDictionary[CallManager, MemoryLimiter] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def engine_for(self, network_version: int) -> ActorEngine:
        """The engine (module cache, runtime, kernel) of ``network_version``.

        Raises :class:`~fvm.kernel.default.KernelUnavailable` for a generation without a
        kernel here (ref-fvm v4, network version 21 on).
        """
        config = engine_config_for_network_version(network_version)
        engine = self._engines.get(config)
        if engine is not None:
            return engine
        with self._lock:
            engine = self._engines.get(config)
            if engine is None:
                generation = generation_for_network_version(network_version)
                kernel_class = kernel_class_for(generation)
                handlers = syscall_handlers(generation)
                modules = ModuleCache(config, self.cache_dir, persist=self.persist)
                runtime: Runtime[Kernel] = Runtime(modules, generation, handlers)
                engine = ActorEngine(config, modules, runtime, kernel_class)
                self._engines[config] = engine
        return engine

    def preload_builtin_actors(self, machine: Machine) -> None:
        """Compile (or load from disk) every builtin actor the machine's manifest lists, as
        ref-fvm's machine and conformance driver do before executing anything."""
        modules = self.engine_for(machine.context.network_version).modules
        missing: list[tuple[CID, bytes]] = []
        for code in machine.builtin_actors.codes():
            if modules.cached(code) is None:
                wasm = machine.blockstore.get(code)
                if wasm is None:
                    raise FatalError(f"builtin actor code {code} is not in the blockstore")
                missing.append((code, wasm))
        modules.preload(missing)

    def _module(self, engine: ActorEngine, call_manager: CallManager, code: CID) -> CompiledModule:
        machine = call_manager.machine
        if not engine.config.loads_code_on_demand and not machine.builtin_actors.builtin_id(code):
            # ref-fvm v2 runs only the builtin actors its machine preloaded.
            raise _ModuleUnavailable(f"actor code {code} not found")
        compiled = engine.modules.cached(code)
        if compiled is not None:
            return compiled
        wasm = machine.blockstore.get(code)
        if wasm is None:
            raise _ModuleUnavailable(f"actor code {code} not found")
        try:
            return engine.modules.get(code, wasm)
        except MalformedInput as exc:
            raise _ModuleUnavailable(f"actor code {code} cannot be loaded: {exc}") from None

    def _limiter(self, engine: ActorEngine, call_manager: CallManager) -> MemoryLimiter | None:
        limiter = self._limiters.get(call_manager)
        if limiter is None:
            limiter = MemoryLimiter.for_engine(engine.config)
            if limiter is not None:
                self._limiters[call_manager] = limiter
        return limiter

    def invoke(self, call_manager: CallManager, request: InvocationRequest) -> ActorOutcome:
        """Run ``request.method`` of the receiver's code (see the module documentation).

        Raises :class:`~fvm.syscalls.abi.SyscallError` when the parameters cannot be
        registered (a codec the generation forbids), before any code runs.
        """
        engine = self.engine_for(call_manager.machine.context.network_version)
        blocks: BlockRegistry = engine.kernel_class.new_block_registry()
        params_id = NO_DATA_BLOCK_ID if request.params is None else blocks.put(request.params)
        try:
            compiled = self._module(engine, call_manager, request.code)
        except _ModuleUnavailable as exc:
            return ActorFatal(str(exc))
        kernel = engine.kernel_class(
            call_manager,
            blocks,
            request.caller,
            request.receiver,
            request.method,
            request.value,
            request.read_only,
            proof_verifier=self.proof_verifier,
        )
        limiter = self._limiter(engine, call_manager)
        invocation = engine.runtime.new_invocation(
            kernel, call_manager.gas_tracker, kernel.price_list, limiter
        )
        if limiter is None:
            outcome = invocation.run(compiled, params_id)
        else:
            with limiter.stack_frame():
                outcome = invocation.run(compiled, params_id)
        last_error = _cause(invocation.last_error)
        if isinstance(outcome, Returned):
            if outcome.block_id == NO_DATA_BLOCK_ID:
                return ActorExit(ExitCode.OK, last_error=last_error)
            try:
                value = blocks.get(outcome.block_id)
            except SyscallError:
                return ActorExit(
                    ExitCode.SYS_MISSING_RETURN,
                    message="returned block does not exist",
                    last_error=last_error,
                )
            return ActorExit(ExitCode.OK, value, last_error=last_error)
        if isinstance(outcome, Exited):
            if outcome.block_id == NO_DATA_BLOCK_ID:
                return ActorExit(outcome.exit_code, None, outcome.message, last_error)
            try:
                value = blocks.get(outcome.block_id)
            except SyscallError as exc:
                return ActorFatal(
                    str(exc),
                    last_error,
                    ExitCode.SYS_MISSING_RETURN,
                    "error getting exit data block",
                )
            return ActorExit(outcome.exit_code, value, outcome.message, last_error)
        if isinstance(outcome, RanOutOfGas):
            return ActorOutOfGas(outcome.error, last_error)
        assert isinstance(outcome, Failed)
        error = outcome.error
        if isinstance(error, FatalError):
            return ActorFatal(str(error), last_error)
        return ActorFatal(f"{type(error).__name__}: {error}", last_error)


class _ModuleUnavailable(FvmNodeError):
    """The receiver's code is not in the blockstore or does not load (fatal for the call)."""
