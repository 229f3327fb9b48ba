"""FVM message execution throughput over the conformance corpus, where its time goes, and the
cost of starting the engine (issue 3).

What is timed is what ref-fvm's own benchmark times (``testing/conformance/benches/
bench_drivers.rs``): applying a vector's messages with an executor whose machine is already
built and whose builtin actors are already compiled; reading vectors and CARs, building the
machine and flushing the state tree afterwards are outside the timed window (the flush is
reported on its own). Every receipt and post-state root is checked, so a figure is never that
of a wrong execution. ref-fvm's gas schedule is calibrated at about 10 gas per nanosecond
(10 Ggas/s); the issue's goal is 1 Ggas/s.

* **Throughput.** Gas used over execution time, best of :data:`TIMED_PASSES` passes over every
  vector the conformance runner runs, in total and per network version. As ref-fvm's
  ``TestKernel``, the runner accepts every proof, yet the proof syscalls charge their full
  price (:data:`PROOF_CHARGE_NAMES`, including the power actor's ``OnSubmitVerifySeal``, its
  pre-payment for batch seal verification); the figure without that gas is the honest one.
  Stricter still is the compute gas alone: ref-fvm's ``GasCharge`` keeps storage and other
  non-time costs in ``other_gas`` (``fvm/src/gas/charge.rs``), and most of a block link's price
  is storage. Charges are summed by name from the gas tracker's trace in a separate pass.
* **Where the time goes.** That pass also splits each message's wall time into exclusive
  phases (:class:`Phase`) with a stack-based clock (:class:`PhaseClock`), and the syscall phase
  by syscall. Its hooks are not in the VM: :func:`phase_hooks` wraps a few methods of the
  runtime, kernel, state tree and blockstore for the duration of the pass and restores them
  afterwards, so an ordinary run pays nothing at all. The wrappers' own cost is estimated from
  their number and the measured cost of one (:func:`wrapper_seconds`); it lands mostly in the
  host phases. The wasm phase includes the ctypes crossing into and out of each syscall.
* **Start-up.** Compiling the v9 and v10 bundles into an empty module cache (a fresh
  temporary folder) against loading them back from it, and instantiating each module (a new
  store and instance, best of :data:`INSTANTIATE_REPEATS`).
"""

from __future__ import annotations

import enum
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from bench.store_bench import SHARED, Figure
from fvm.bundle import Bundle, load_bundle
from fvm.call_manager import CallManager
from fvm.conformance.runner import (
    BundleSource,
    machine_for_variant,
    raw_length,
    receipt_mismatch,
    skip_reason,
)
from fvm.conformance.vector import ExpectedReceipt, TestVector, find_vectors, load_vector
from fvm.engine.runtime import Invocation, MemoryLimiter, Runtime, run_on_execution_stack
from fvm.executor import ApplyKind, Executor
from fvm.gas.charge import MILLIGAS_PRECISION
from fvm.gas.gas_tracker import MAX_GAS_LIMIT, GasTracker
from fvm.gas.price_list import price_list_for
from fvm.kernel.default import Kernel
from fvm.kernel.syscalls import syscall_handlers
from fvm.message import Message
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.state_tree import StateTree
from fvm.syscalls.abi import generation_for_network_version
from fvm.wasm_invoker import WasmActorInvoker
from store.blockstore import MemoryBlockstore
from store.buffered_blockstore import BufferedBlockstore
from store.car import CarReader
from store.cid import CID

VECTORS: Final = SHARED / "test-vectors"
ACTORS: Final = SHARED / "actors"
TIMED_PASSES: Final = 3
WARM_REPEATS: Final = 3
INSTANTIATE_REPEATS: Final = 5
# (actors version, the network version whose vectors run it).
BUNDLES: Final = ((9, 17), (10, 18))
# Charged in full though the conformance runner verifies nothing (every proof is accepted).
PROOF_CHARGE_NAMES: Final = frozenset(
    {
        "OnVerifySeal",
        "OnVerifyPost",
        "OnVerifyAggregateSeals",
        "OnVerifyReplicaUpdate",
        "OnSubmitVerifySeal",
    }
)
WASM_EXEC_CHARGE: Final = "wasm_exec"
COSTLIEST_SYSCALLS: Final = 5
GOAL_GAS_PER_SECOND: Final = 1e9
MEGA: Final = 1e6


class BenchmarkError(RuntimeError):
    """The benchmark cannot measure: a vector did not execute as recorded, or a hook is gone."""


# -- phases ------------------------------------------------------------------------------------


class Phase(enum.IntEnum):
    """Where the execution thread is, exclusive of any phase nested inside."""

    OTHER = 0  # the executor and call manager outside of syscalls (message checks, gas outputs)
    WASM = 1  # actor code between host calls
    SYSCALL = 2  # host-side syscall work (gas bridge, argument decoding, kernel) not below
    STATE = 3  # state tree, HAMT and blockstore reads and writes, the kernel's block syscalls
    INSTANTIATE = 4  # a wasmtime store and instance for every invocation


PHASE_LABELS: Final = {
    Phase.WASM: "wasm execution",
    Phase.SYSCALL: "syscalls (host kernel work)",
    Phase.STATE: "state tree / IPLD",
    Phase.INSTANTIATE: "instantiation (store, link)",
    Phase.OTHER: "executor / call manager",
}


class PhaseClock:
    """Exclusive wall time per slot: entering a slot stops the clock of the one it interrupts,
    leaving it restarts that one. Single-threaded (the execution thread).

    The first slots are the :class:`Phase` values; every syscall gets a slot of its own, of
    phase :attr:`Phase.SYSCALL` (:meth:`syscall_slot`).
    """

    __slots__ = (
        "_last",
        "_stack",
        "_syscall_slots",
        "entries",
        "seconds",
        "slot_names",
        "slot_phases",
    )

    def __init__(self) -> None:
        self.slot_phases: list[Phase] = list(Phase)
        self.slot_names: list[str] = [phase.name for phase in Phase]
        self._syscall_slots: dict[tuple[str, str], int] = {}
        self.seconds = [0.0] * len(self.slot_phases)
        self.entries = [0] * len(self.slot_phases)
        self._stack = [int(Phase.OTHER)]
        self._last = time.perf_counter()

    def syscall_slot(self, key: tuple[str, str]) -> int:
        """The slot of the syscall ``(module, name)``."""
        slot = self._syscall_slots.get(key)
        if slot is None:
            slot = self._syscall_slots[key] = len(self.slot_phases)
            self.slot_phases.append(Phase.SYSCALL)
            self.slot_names.append(".".join(key))
            self.seconds.append(0.0)
            self.entries.append(0)
        return slot

    def enter(self, slot: int) -> None:
        now = time.perf_counter()
        stack = self._stack
        self.seconds[stack[-1]] += now - self._last
        self._last = now
        stack.append(slot)
        self.entries[slot] += 1

    def leave(self) -> None:
        now = time.perf_counter()
        self.seconds[self._stack.pop()] += now - self._last
        self._last = now

    def restart(self) -> None:
        """Forget everything measured so far; the clock runs in :attr:`Phase.OTHER`."""
        if len(self._stack) != 1:
            raise BenchmarkError("phase clock restarted inside a phase")
        self.seconds = [0.0] * len(self.slot_phases)
        self.entries = [0] * len(self.slot_phases)
        self._last = time.perf_counter()

    def settle(self) -> None:
        """Charge the time since the last change to the current slot."""
        now = time.perf_counter()
        self.seconds[self._stack[-1]] += now - self._last
        self._last = now


def _timed(clock: PhaseClock, phase: Phase, function: Callable[..., Any]) -> Callable[..., Any]:
    enter = clock.enter
    leave = clock.leave
    slot = int(phase)

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        enter(slot)
        try:
            return function(*args, **kwargs)
        finally:
            leave()

    return timed


def _timed_host_call(clock: PhaseClock, function: Callable[..., Any]) -> Callable[..., Any]:
    """``Invocation.host_call(binding, args)`` timed in the slot of the binding's syscall."""
    enter = clock.enter
    leave = clock.leave
    syscall_slot = clock.syscall_slot

    @functools.wraps(function)
    def timed_host_call(invocation: Any, binding: Any, args: int) -> Any:
        enter(syscall_slot(binding.syscall.key))
        try:
            return function(invocation, binding, args)
        finally:
            leave()

    return timed_host_call


def _timed_invoke_export(clock: PhaseClock, function: Callable[..., Any]) -> Callable[..., Any]:
    """``Invocation._invoke_export`` hands back the ``invoke`` export the invocation then calls;
    the wrapper hands back a callable that times that call as wasm."""
    enter = clock.enter
    leave = clock.leave
    wasm = int(Phase.WASM)

    @functools.wraps(function)
    def timed_export(*args: Any, **kwargs: Any) -> Any:
        export = function(*args, **kwargs)

        def timed_invoke(*call_args: Any) -> Any:
            enter(wasm)
            try:
                return export(*call_args)
            finally:
                leave()

        return timed_invoke

    return timed_export


def wrapper_seconds(calls: int = 100_000) -> float:
    """What one timed call adds to a call (measured on a no-op)."""
    clock = PhaseClock()

    def nothing() -> None:
        return None

    timed = _timed(clock, Phase.STATE, nothing)
    started = time.perf_counter()
    for _ in range(calls):
        timed()
    wrapped = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(calls):
        nothing()
    return max(wrapped - (time.perf_counter() - started), 0.0) / calls


# The methods wrapped by phase; each must be defined by the class itself.
_STATE_METHODS: Final[tuple[tuple[type, tuple[str, ...]], ...]] = (
    (
        StateTree,
        (
            "get_actor",
            "set_actor",
            "delete_actor",
            "mutate_actor",
            "lookup_id",
            "register_new_address",
            "begin_transaction",
            "end_transaction",
            "flush",
        ),
    ),
    (Kernel, ("block_open", "block_create", "block_link", "block_read", "block_stat")),
    (BufferedBlockstore, ("get", "has", "put_keyed", "put_many_keyed", "flush")),
)
_PHASE_METHODS: Final[tuple[tuple[type, str, Phase], ...]] = (
    (Runtime, "new_invocation", Phase.INSTANTIATE),
    (Invocation, "instantiate", Phase.INSTANTIATE),
    *((owner, name, Phase.STATE) for owner, names in _STATE_METHODS for name in names),
)


@contextmanager
def phase_hooks(clock: PhaseClock) -> Iterator[None]:
    """Time the execution thread's phases on ``clock`` while the block runs (see the module
    documentation); the original methods are back afterwards."""
    wrappers: list[tuple[type, str, Callable[[Any], Any]]] = [
        (owner, name, functools.partial(_timed, clock, phase))
        for owner, name, phase in _PHASE_METHODS
    ]
    wrappers += [
        (Invocation, "host_call", functools.partial(_timed_host_call, clock)),
        (
            Invocation,
            "_invoke_export",
            lambda original: _timed(
                clock, Phase.INSTANTIATE, _timed_invoke_export(clock, original)
            ),
        ),
    ]
    with _wrapped(wrappers):
        yield


@contextmanager
def _wrapped(wrappers: list[tuple[type, str, Callable[[Any], Any]]]) -> Iterator[None]:
    """Replace each ``owner.name`` (defined by ``owner`` itself) by ``wrap(original)`` while
    the block runs."""
    originals = [(owner, name, _own_attribute(owner, name)) for owner, name, _ in wrappers]
    replacements = [
        (owner, name, wrap(original))
        for (owner, name, wrap), (_, _, original) in zip(wrappers, originals, strict=True)
    ]
    try:
        for owner, name, replacement in replacements:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _own_attribute(owner: type, name: str) -> Any:
    try:
        return owner.__dict__[name]
    except KeyError:
        raise BenchmarkError(f"{owner.__qualname__}.{name} to wrap is gone") from None


# -- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    message: Message
    raw_length: int
    expected: ExpectedReceipt


@dataclass(frozen=True, slots=True)
class CorpusVector:
    """A vector the conformance runner runs, decoded once for every pass."""

    vector: TestVector
    blocks: tuple[tuple[CID, bytes], ...]
    messages: tuple[CorpusMessage, ...]


def load_corpus(root: Path) -> list[CorpusVector]:
    """Every vector under ``root`` the conformance runner does not skip."""
    corpus: list[CorpusVector] = []
    for path in find_vectors(root):
        if skip_reason(path) is not None:
            continue
        vector = load_vector(path)
        if skip_reason(path, vector) is not None:
            continue
        if len(vector.receipts) < len(vector.messages):
            raise BenchmarkError(f"{path}: fewer receipts than messages")
        messages = []
        for index, (apply, expected) in enumerate(
            zip(vector.messages, vector.receipts[: len(vector.messages)], strict=True)
        ):
            message = Message.decode(apply.data, f"{path} message {index}")
            messages.append(CorpusMessage(message, raw_length(message, apply.data), expected))
        blocks = tuple(CarReader.from_bytes(vector.car, source=f"{path} car"))
        corpus.append(CorpusVector(vector, blocks, tuple(messages)))
    return corpus


# -- passes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChargeSums:
    """Milligas charged under one name."""

    compute: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.compute + self.other


@dataclass(slots=True)
class VersionTotals:
    """What one pass measured for the messages of one network version. Gas is whole gas; the
    charge and phase fields are filled by a pass with tracing and phase hooks."""

    vectors: int = 0
    messages: int = 0
    gas_used: int = 0
    seconds: float = 0.0
    flush_seconds: float = 0.0
    proof_gas: int = 0
    compute_gas: int = 0  # compute part of every charge but the proofs' (ref-fvm ``compute_gas``)
    wasm_exec_gas: int = 0
    phase_seconds: list[float] = field(default_factory=lambda: [0.0] * len(Phase))
    phase_entries: list[int] = field(default_factory=lambda: [0] * len(Phase))
    syscall_seconds: dict[str, float] = field(default_factory=dict)
    syscall_calls: dict[str, int] = field(default_factory=dict)
    message_rates: list[float] = field(default_factory=list)  # gas/s of each message

    def add(self, other: VersionTotals) -> None:
        self.vectors += other.vectors
        self.messages += other.messages
        self.gas_used += other.gas_used
        self.seconds += other.seconds
        self.flush_seconds += other.flush_seconds
        self.proof_gas += other.proof_gas
        self.compute_gas += other.compute_gas
        self.wasm_exec_gas += other.wasm_exec_gas
        self.message_rates += other.message_rates
        for phase in Phase:
            self.phase_seconds[phase] += other.phase_seconds[phase]
            self.phase_entries[phase] += other.phase_entries[phase]
        for name, seconds in other.syscall_seconds.items():
            self.syscall_seconds[name] = self.syscall_seconds.get(name, 0.0) + seconds
            self.syscall_calls[name] = self.syscall_calls.get(name, 0) + other.syscall_calls[name]

    def add_clock(self, clock: PhaseClock) -> None:
        """Add what ``clock`` measured since its restart."""
        base = len(Phase)
        for slot, phase in enumerate(clock.slot_phases):
            seconds = clock.seconds[slot]
            entries = clock.entries[slot]
            self.phase_seconds[phase] += seconds
            self.phase_entries[phase] += entries
            if slot >= base and entries:
                name = clock.slot_names[slot]
                self.syscall_seconds[name] = self.syscall_seconds.get(name, 0.0) + seconds
                self.syscall_calls[name] = self.syscall_calls.get(name, 0) + entries

    def add_charges(self, charges: dict[str, ChargeSums], gas_used: int) -> None:
        """Add one message's charges (milligas by name).

        A message that runs out of gas has the refused charge traced too, though only part of
        it was used: what the trace holds beyond the gas used is taken off the compute gas (the
        refused charges seen in the corpus are execution and block charges, never proofs).
        """
        total = sum(sums.total for sums in charges.values())
        excess = max(total - gas_used * MILLIGAS_PRECISION, 0)
        proof = sum(charges[name].total for name in PROOF_CHARGE_NAMES if name in charges)
        compute = sum(
            sums.compute for name, sums in charges.items() if name not in PROOF_CHARGE_NAMES
        )
        wasm = charges[WASM_EXEC_CHARGE].total if WASM_EXEC_CHARGE in charges else 0
        self.proof_gas += min(proof // MILLIGAS_PRECISION, gas_used)
        self.compute_gas += max(compute - excess, 0) // MILLIGAS_PRECISION
        self.wasm_exec_gas += min(wasm // MILLIGAS_PRECISION, gas_used)


PassTotals = dict[int, VersionTotals]


def _overall(totals: PassTotals) -> VersionTotals:
    overall = VersionTotals()
    for version in totals.values():
        overall.add(version)
    return overall


class ChargeCollector:
    """The gas trackers of the call stacks built while :meth:`collecting` (one per message
    applied; their machines must trace), and what they charged."""

    def __init__(self) -> None:
        self._trackers: list[GasTracker] = []

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Remember the tracker of every :class:`~fvm.call_manager.CallManager` made in the
        block (its constructor is wrapped meanwhile)."""
        trackers = self._trackers

        def remembering(original: Callable[..., None]) -> Callable[..., None]:
            @functools.wraps(original)
            def remembering_init(call_manager: CallManager, *args: Any, **kwargs: Any) -> None:
                original(call_manager, *args, **kwargs)
                trackers.append(call_manager.gas_tracker)

            return remembering_init

        with _wrapped([(CallManager, "__init__", remembering)]):
            yield

    def drain(self) -> dict[str, ChargeSums]:
        """What was charged, by name, since the last drain."""
        by_name: dict[str, ChargeSums] = {}
        for tracker in self._trackers:
            for charge in tracker.drain_trace():
                sums = by_name.setdefault(charge.name, ChargeSums())
                sums.compute += charge.compute_gas
                sums.other += charge.other_gas
        self._trackers.clear()
        return by_name


def apply_corpus(
    corpus: list[CorpusVector],
    bundles: BundleSource,
    invoker: WasmActorInvoker,
    clock: PhaseClock | None = None,
    charges: ChargeCollector | None = None,
) -> PassTotals:
    """Apply every message of the corpus, check its receipt and the post-state root, and time
    each message. With ``clock`` (hooked), split each message's time into phases; with
    ``charges`` (collecting), trace its charges and sum them. Must run on the execution stack."""
    totals: PassTotals = {}
    for item in corpus:
        vector = item.vector
        for variant in vector.variants:
            version = totals.setdefault(variant.network_version, VersionTotals())
            version.vectors += 1
            store = MemoryBlockstore(item.blocks)
            machine = machine_for_variant(vector, variant, store, bundles)
            if charges is not None:
                machine.context = replace(machine.context, tracing=True)
            invoker.preload_builtin_actors(machine)
            executor = Executor(machine, invoker)
            for index, entry in enumerate(item.messages):
                if clock is not None:
                    clock.restart()
                started = time.perf_counter()
                ret = executor.execute_message(entry.message, ApplyKind.EXPLICIT, entry.raw_length)
                seconds = time.perf_counter() - started
                if clock is not None:
                    clock.settle()
                    version.add_clock(clock)
                mismatch = receipt_mismatch(entry.expected, ret, index)
                if mismatch is not None:
                    raise BenchmarkError(f"{vector.path}: {mismatch}")
                version.messages += 1
                version.gas_used += ret.receipt.gas_used
                version.seconds += seconds
                version.message_rates.append(ret.receipt.gas_used / seconds)
                if charges is not None:
                    version.add_charges(charges.drain(), ret.receipt.gas_used)
            started = time.perf_counter()
            root = executor.flush()
            version.flush_seconds += time.perf_counter() - started
            if root != vector.post_state_root:
                raise BenchmarkError(f"{vector.path}: post-state root {root} is not the recorded")
    return totals


def _on_execution_stack(
    corpus: list[CorpusVector],
    bundles: BundleSource,
    invoker: WasmActorInvoker,
    clock: PhaseClock | None = None,
    charges: ChargeCollector | None = None,
) -> PassTotals:
    return run_on_execution_stack(
        functools.partial(apply_corpus, corpus, bundles, invoker, clock, charges)
    )


# -- figures -----------------------------------------------------------------------------------


def _mgas_per_second(gas: float, seconds: float) -> float:
    return gas / seconds / MEGA if seconds > 0 else 0.0


def _share(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


def _throughput_figures(label: str, timed: VersionTotals, traced: VersionTotals) -> list[Figure]:
    seconds = timed.seconds
    return [
        (f"{label}: gas/s, all gas", _mgas_per_second(timed.gas_used, seconds), "Mgas/s"),
        (
            f"{label}: gas/s without proof gas",
            _mgas_per_second(timed.gas_used - traced.proof_gas, seconds),
            "Mgas/s",
        ),
        (
            f"{label}: compute gas/s (no proofs, no storage)",
            _mgas_per_second(traced.compute_gas, seconds),
            "Mgas/s",
        ),
        (
            f"{label}: median message, gas/s",
            statistics.median(timed.message_rates) / MEGA,
            "Mgas/s",
        ),
        (
            f"{label}: 10th percentile message, gas/s",
            statistics.quantiles(timed.message_rates, n=10)[0] / MEGA,
            "Mgas/s",
        ),
        (f"{label}: proof gas share", _share(traced.proof_gas, timed.gas_used), "%"),
        (f"{label}: execution time, {timed.messages} messages", seconds, "s"),
    ]


def _split_figures(label: str, traced: VersionTotals) -> list[Figure]:
    whole = sum(traced.phase_seconds)
    return [
        (f"{label}: time in {PHASE_LABELS[phase]}", _share(traced.phase_seconds[phase], whole), "%")
        for phase in (Phase.WASM, Phase.SYSCALL, Phase.STATE, Phase.INSTANTIATE, Phase.OTHER)
    ]


def _costliest_syscall_figures(traced: VersionTotals, count: int) -> list[Figure]:
    whole = sum(traced.phase_seconds)
    names = sorted(traced.syscall_seconds, key=lambda name: -traced.syscall_seconds[name])
    return [
        (
            f"syscall {name} ({traced.syscall_calls[name]} calls), own host time",
            _share(traced.syscall_seconds[name], whole),
            "%",
        )
        for name in names[:count]
    ]


def execution_figures(timed: PassTotals, traced: PassTotals, wrapper_cost: float) -> list[Figure]:
    """Throughput from the best timed pass; charges and the time split from the traced one."""
    overall_timed = _overall(timed)
    overall_traced = _overall(traced)
    if overall_traced.gas_used != overall_timed.gas_used:
        raise BenchmarkError("the traced pass used different gas than the timed passes")
    wasm_seconds = overall_traced.phase_seconds[Phase.WASM]
    syscalls = overall_traced.phase_entries[Phase.SYSCALL]
    invocations = overall_traced.phase_entries[Phase.WASM]
    if wasm_seconds <= 0 or syscalls == 0:
        raise BenchmarkError("the phase hooks measured no wasm execution or no syscalls")
    label = f"all {overall_timed.vectors} vectors"
    honest_gas_per_second = (
        overall_timed.gas_used - overall_traced.proof_gas
    ) / overall_timed.seconds
    figures = _throughput_figures(label, overall_timed, overall_traced)
    figures.append(
        (
            "gas/s without proof gas, share of the 1 Ggas/s goal",
            _share(honest_gas_per_second, GOAL_GAS_PER_SECOND),
            "%",
        )
    )
    for network_version in sorted(timed):
        figures += _throughput_figures(
            f"nv{network_version}", timed[network_version], traced[network_version]
        )
    figures += _split_figures(label, overall_traced)
    for network_version in sorted(traced):
        figures += _split_figures(f"nv{network_version}", traced[network_version])
    figures += _costliest_syscall_figures(overall_traced, COSTLIEST_SYSCALLS)
    figures += [
        (
            "wasm speed: wasm_exec gas / wasm time",
            _mgas_per_second(overall_traced.wasm_exec_gas, wasm_seconds),
            "Mgas/s",
        ),
        (
            "wasm_exec share of gas without proof gas",
            _share(overall_traced.wasm_exec_gas, overall_timed.gas_used - overall_traced.proof_gas),
            "%",
        ),
        ("actor invocations", invocations, "calls"),
        ("syscalls", syscalls, "calls"),
        (
            "instantiation time per invocation",
            overall_traced.phase_seconds[Phase.INSTANTIATE] / invocations * MEGA,
            "us",
        ),
        ("split pass: execution time", overall_traced.seconds, "s"),
        (
            "phase hooks: estimated share of the split pass",
            _share(sum(overall_traced.phase_entries) * wrapper_cost, overall_traced.seconds),
            "%",
        ),
        ("state flush after each vector (not timed above)", overall_timed.flush_seconds, "s"),
    ]
    return figures


def _best_pass(passes: list[PassTotals]) -> PassTotals:
    return min(passes, key=lambda totals: _overall(totals).seconds)


# -- start-up ----------------------------------------------------------------------------------


def _prepare_bundle(invoker: WasmActorInvoker, network_version: int, bundle: Bundle) -> float:
    """Seconds to bring every module of ``bundle`` into ``invoker``'s engine."""
    started = time.perf_counter()
    invoker.engine_for(network_version).modules.preload(bundle.blocks)
    return time.perf_counter() - started


def _instantiate_seconds(
    invoker: WasmActorInvoker, network_version: int, bundle: Bundle
) -> dict[str, float]:
    """Best-of seconds to make an invocation's store and instantiate each module, by actor."""
    engine = invoker.engine_for(network_version)
    generation = generation_for_network_version(network_version)
    runtime: Runtime[None] = Runtime(engine.modules, generation, syscall_handlers(generation))
    prices = price_list_for(network_version)
    by_actor: dict[str, float] = {}
    for code, _ in bundle.blocks:
        compiled = engine.modules.cached(code)
        if compiled is None:
            raise BenchmarkError(f"module {code} was not preloaded")
        best = float("inf")
        for _ in range(INSTANTIATE_REPEATS):
            gas = GasTracker(MAX_GAS_LIMIT)
            limiter = MemoryLimiter.for_engine(engine.config)
            started = time.perf_counter()
            runtime.new_invocation(None, gas, prices, limiter).instantiate(compiled)
            best = min(best, time.perf_counter() - started)
        by_actor[bundle.manifest.name_of(code) or str(code)] = best
    return by_actor


def startup_figures(cache_dir: Path) -> list[Figure]:
    """Bundle loading, cold and warm module preparation, and instantiation per module.

    Leaves ``cache_dir`` holding both bundles compiled.
    """
    started = time.perf_counter()
    bundles = [
        (actors_version, network_version, load_bundle(ACTORS / f"v{actors_version}.tar.zst"))
        for actors_version, network_version in BUNDLES
    ]
    figures: list[Figure] = [
        ("read and hash-check bundles v9 + v10", (time.perf_counter() - started) * 1000, "ms")
    ]
    cold = WasmActorInvoker(AcceptAllProofVerifier(), cache_dir)
    warm_best = {actors_version: float("inf") for actors_version, _, _ in bundles}
    cold_seconds = {
        actors_version: _prepare_bundle(cold, network_version, bundle)
        for actors_version, network_version, bundle in bundles
    }
    warm = cold
    for _ in range(WARM_REPEATS):
        warm = WasmActorInvoker(AcceptAllProofVerifier(), cache_dir)
        for actors_version, network_version, bundle in bundles:
            seconds = _prepare_bundle(warm, network_version, bundle)
            warm_best[actors_version] = min(warm_best[actors_version], seconds)
            modules = warm.engine_for(network_version).modules
            if modules.compiled:
                raise BenchmarkError(f"the warm cache recompiled v{actors_version} modules")
    for actors_version, network_version, bundle in bundles:
        count = len(bundle.blocks)
        figures += [
            (
                f"cold cache: compile v{actors_version} ({count} modules)",
                cold_seconds[actors_version],
                "s",
            ),
            (
                f"warm cache: load v{actors_version} ({count} modules)",
                warm_best[actors_version] * 1000,
                "ms",
            ),
        ]
        by_actor = _instantiate_seconds(warm, network_version, bundle)
        slowest = max(by_actor, key=lambda actor: by_actor[actor])
        figures += [
            (
                f"instantiate v{actors_version} module, mean",
                statistics.fmean(by_actor.values()) * MEGA,
                "us",
            ),
            (
                f"instantiate v{actors_version} module, max ({slowest})",
                by_actor[slowest] * MEGA,
                "us",
            ),
        ]
    return figures


# -- entry point -------------------------------------------------------------------------------


def run() -> list[Figure]:
    """Every FVM figure as ``(name, value, unit)``."""
    with tempfile.TemporaryDirectory(prefix="fvm-bench-modules-") as folder:
        cache_dir = Path(folder)
        figures = startup_figures(cache_dir)
        corpus = load_corpus(VECTORS)
        bundles = BundleSource(ACTORS)
        invoker = WasmActorInvoker(AcceptAllProofVerifier(), cache_dir)
        timed = [_on_execution_stack(corpus, bundles, invoker) for _ in range(TIMED_PASSES)]
        clock = PhaseClock()
        charges = ChargeCollector()
        with phase_hooks(clock), charges.collecting():
            traced = _on_execution_stack(corpus, bundles, invoker, clock, charges)
    return execution_figures(_best_pass(timed), traced, wrapper_seconds()) + figures
