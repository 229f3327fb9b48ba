"""Replay: re-execute stored tipsets and check them against what their children record.

A consensus check after the fact, as Lotus's ``lotus-shed`` / ``lotus state compute-state``
and its ``ChainStore``-walking ``sync validate`` do: for every tipset ``T`` on the head's chain
with ``start <= T.height <= end``, execute ``T``'s messages on ``T.ParentStateRoot`` exactly as
the pipeline does (:func:`~chainsync.tipset_execution.apply_full_blocks` with
:class:`~chainsync.chain_externs.ChainExterns`, null-round cron included) and compare the state
root and receipts root with the ``ParentStateRoot`` / ``ParentMessageReceipts`` of ``T``'s child
on that chain. The head has no child yet: it is executed but reported *unchecked*. The genesis
tipset is not executed (its result is its own parent state, as Lotus's state manager answers).

Nothing durable is written. The chain store is opened read-only when replay opens it; either way
execution writes only into an in-memory :class:`~store.buffered_blockstore.BufferedBlockstore`
over the LMDB store (the machine's own flush moves blocks into that overlay, never further),
which is dropped after each epoch; the builtin-actors bundle, when the store lacks it, is put
into a second in-memory overlay beneath. The head, the chain index and the blocks are untouched.

Parallel replay (``workers > 1``) runs in this process and ``workers - 1`` processes started
with ``spawn`` (each opens the LMDB environment read-only itself, which LMDB allows beside a
writing node, and loads the bundle once; compiled actor modules come from the module cache on
disk). The children are started before the range is planned, and this process replays too, so
the second or so a child takes to import the node and load its bundle is not spent waiting.
Contiguous chunks of tipsets are handed out in height order to whichever process is free,
shrinking towards the end of the range, and results are published in height order as soon as
every lower epoch is in. A tipset's execution depends only on stored data, so results are the
same for any number of workers (except the timings).

On a mismatch, ``report_dir/epoch-<E>/`` receives ``report.json`` (roots, the actors and fields
that differ: :mod:`chainsync.state_diff`; the receipts that differ; every message's gas
summary), a short ``summary.txt``, and ``gas-traces.json``: the tipset executed again with
tracing on, every message's call tree with its gas charges (:mod:`chainsync.gas_trace`).

Only the devnet can be replayed: it is the only network with a tipset pipeline (mainnet and
calibnet need state migrations and a drand schedule the node does not have yet).
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final

from chainsync.chain_externs import ChainExterns
from chainsync.chain_store import ChainStore, ChainStoreError, TipSetNotFound
from chainsync.chain_types import FullBlock, TipSet, TipSetKey
from chainsync.devnet_beacon import MockBeacon
from chainsync.gas_trace import tipset_gas_traces_json
from chainsync.messages_root import load_receipts
from chainsync.state_diff import StateDiff, diff_state_trees, render
from chainsync.tipset_execution import ExecutionConfig, TipsetResult, apply_full_blocks
from chainsync.tipset_pipeline import devnet_execution_config
from config.bundles import actors_search_path, load_network_bundle
from config.networks import DEVNET_BLOCK_DELAY_SECS, NetworkPreset, UnknownNetwork, preset
from config.settings import CHAIN_DIR
from fvm.bundle import Bundle
from fvm.executor import ApplyRet
from fvm.invocation import ActorInvoker
from fvm.network_version import actors_version_for
from fvm.receipt import Receipt
from metrics.node_metrics import NodeMetrics
from store.blockstore import Blockstore
from store.buffered_blockstore import BufferedBlockstore
from store.cid import CID
from store.errors import FvmNodeError
from store.lmdb_blockstore import LmdbBlockstore

LMDB_DATA_FILE: Final = "data.mdb"
REPORT_FILE: Final = "report.json"
SUMMARY_FILE: Final = "summary.txt"
GAS_TRACES_FILE: Final = "gas-traces.json"
RESULTS_FILE: Final = "replay.json"
SUPPORTED_NETWORKS: Final = ("devnet",)

EpochCallback = Callable[["EpochResult"], None]


class ReplayError(FvmNodeError):
    """Replay cannot start: no chain store, a bad range, an unsupported network."""


class EpochStatus(Enum):
    OK = "OK"
    MISMATCH = "MISMATCH"
    UNCHECKED = "UNCHECKED"  # the head: no child records its result yet
    ERROR = "ERROR"  # execution failed (a missing block, an implicit message that failed…)


@dataclass(frozen=True, slots=True)
class MessageGas:
    """One applied message's gas outcome (``ApplyRet``), in tipset order."""

    index: int
    message_cid: CID
    exit_code: int
    gas_used: int
    base_fee_burn: int
    over_estimation_burn: int
    miner_tip: int
    penalty: int
    refund: int
    gas_refund: int
    gas_burned: int

    @classmethod
    def of(cls, index: int, cid: CID, ret: ApplyRet) -> MessageGas:
        return cls(
            index,
            cid,
            int(ret.receipt.exit_code),
            ret.receipt.gas_used,
            ret.base_fee_burn,
            ret.over_estimation_burn,
            ret.miner_tip,
            ret.penalty,
            ret.refund,
            ret.gas_refund,
            ret.gas_burned,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "message_cid": str(self.message_cid),
            "exit_code": self.exit_code,
            "gas_used": self.gas_used,
            "base_fee_burn": str(self.base_fee_burn),
            "over_estimation_burn": str(self.over_estimation_burn),
            "miner_tip": str(self.miner_tip),
            "penalty": str(self.penalty),
            "refund": str(self.refund),
            "gas_refund": self.gas_refund,
            "gas_burned": self.gas_burned,
        }


@dataclass(frozen=True, slots=True)
class EpochResult:
    """One replayed tipset. ``expected_*`` are its child's parent roots (None for the head);
    ``computed_*`` None only when execution failed (``error`` says why); ``report`` is the
    mismatch report's directory when one was written."""

    epoch: int
    tipset_key: TipSetKey
    status: EpochStatus
    computed_state_root: CID | None
    expected_state_root: CID | None
    computed_receipts_root: CID | None
    expected_receipts_root: CID | None
    gas_used: int
    messages: int
    seconds: float = field(compare=False)
    error: str | None = None
    report: Path | None = None

    @property
    def ok(self) -> bool:
        """No mismatch and no failure (an unchecked head is ok)."""
        return self.status in (EpochStatus.OK, EpochStatus.UNCHECKED)

    def line(self) -> str:
        """The one line the replay command prints for this epoch."""
        if self.status is EpochStatus.MISMATCH:
            parts = []
            if self.computed_state_root != self.expected_state_root:
                parts.append(f"state {self.computed_state_root} != {self.expected_state_root}")
            if self.computed_receipts_root != self.expected_receipts_root:
                parts.append(
                    f"receipts {self.computed_receipts_root} != {self.expected_receipts_root}"
                )
            return f"epoch {self.epoch} MISMATCH {'; '.join(parts)}"
        if self.status is EpochStatus.ERROR:
            return f"epoch {self.epoch} ERROR {self.error}"
        if self.status is EpochStatus.UNCHECKED:
            return f"epoch {self.epoch} UNCHECKED (the head: no child records its result)"
        return f"epoch {self.epoch} OK"

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "tipset_key": [str(cid) for cid in self.tipset_key.cids],
            "status": self.status.value,
            "computed_state_root": render(self.computed_state_root),
            "expected_state_root": render(self.expected_state_root),
            "computed_receipts_root": render(self.computed_receipts_root),
            "expected_receipts_root": render(self.expected_receipts_root),
            "gas_used": self.gas_used,
            "messages": self.messages,
            "seconds": round(self.seconds, 6),
            "error": self.error,
            "report": None if self.report is None else str(self.report),
        }


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """Every replayed epoch in height order, with the wall-clock time of the whole replay."""

    results: tuple[EpochResult, ...]
    seconds: float
    workers: int

    @property
    def epochs(self) -> int:
        return len(self.results)

    @property
    def failures(self) -> tuple[EpochResult, ...]:
        """Mismatches and failed executions."""
        return tuple(result for result in self.results if not result.ok)

    @property
    def mismatches(self) -> int:
        return sum(result.status is EpochStatus.MISMATCH for result in self.results)

    @property
    def gas_used(self) -> int:
        return sum(result.gas_used for result in self.results)

    @property
    def gas_per_second(self) -> float:
        return self.gas_used / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        errors = sum(result.status is EpochStatus.ERROR for result in self.results)
        return (
            f"replayed {self.epochs} epochs with {self.workers} worker(s): "
            f"{self.mismatches} mismatches, {errors} errors, gas {self.gas_used}, "
            f"{self.gas_per_second:,.0f} gas/s, {self.seconds:.2f} s"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "mismatches": self.mismatches,
            "gas_used": self.gas_used,
            "seconds": round(self.seconds, 6),
            "workers": self.workers,
            "results": [result.to_json() for result in self.results],
        }


# -- setting up -------------------------------------------------------------------------------


def chain_dir_of(data_dir: Path) -> Path:
    """The LMDB environment of a node data directory (``DIR/chain``), or ``DIR`` itself when it
    is one; :class:`ReplayError` when neither holds an LMDB store."""
    for candidate in (data_dir / CHAIN_DIR, data_dir):
        if (candidate / LMDB_DATA_FILE).is_file():
            return candidate
    raise ReplayError(f"{data_dir} holds no chain store (no {CHAIN_DIR}/{LMDB_DATA_FILE})")


def open_chain_store(data_dir: Path) -> ChainStore:
    """The chain store of ``data_dir``, opened read-only."""
    return ChainStore(LmdbBlockstore(chain_dir_of(data_dir), readonly=True))


def replay_preset(network: str) -> NetworkPreset:
    try:
        found = preset(network)
    except UnknownNetwork as exc:
        raise ReplayError(str(exc)) from None
    if found.name not in SUPPORTED_NETWORKS:
        raise ReplayError(
            f"replay supports {', '.join(SUPPORTED_NETWORKS)} only: {network} needs state "
            "migrations and a drand schedule the node does not have"
        )
    return found


def block_delay_of(chain_store: ChainStore, head: TipSet) -> int:
    """The block delay the chain was made with. Blocks are validated to carry exactly
    ``parent timestamp + delay * (height - parent height)``, so any tipset and its parent
    give it."""
    if head.height == 0:
        return DEVNET_BLOCK_DELAY_SECS  # nothing is executed on a chain of only its genesis
    parent = chain_store.get_tipset(head.parents)
    elapsed = head.min_timestamp - parent.min_timestamp
    epochs = head.height - parent.height
    if elapsed <= 0 or elapsed % epochs:
        raise ReplayError(
            f"tipsets at heights {parent.height} and {head.height} are {elapsed} s apart: "
            "no whole block delay"
        )
    return elapsed // epochs


# -- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """A tipset to replay and its child on the head's chain (None for the head)."""

    tipset: bytes
    child: bytes | None


class Replayer:
    """Re-executes tipsets of one chain store without writing to it."""

    def __init__(
        self,
        chain_store: ChainStore,
        bundle: Bundle,
        config: ExecutionConfig,
        *,
        actors_version: int,
        report_dir: Path | None = None,
    ) -> None:
        self.chain_store = chain_store
        self.bundle = bundle
        self.config = config
        self.actors_version = actors_version
        self.report_dir = report_dir
        self._beacon = MockBeacon()
        # The actors' code, in memory when the store lacks it; never written to the store.
        self._base = BufferedBlockstore(chain_store.blockstore)
        if not chain_store.blockstore.has(bundle.manifest_cid):
            bundle.put_into(self._base)

    def replay(self, step: _Step) -> EpochResult:
        tipset = self.chain_store.get_tipset(TipSetKey.from_bytes(step.tipset))
        child = (
            None
            if step.child is None
            else self.chain_store.get_tipset(TipSetKey.from_bytes(step.child))
        )
        expected_state = None if child is None else child.parent_state
        expected_receipts = None if child is None else child.parent_message_receipts
        if tipset.height == 0:
            return self._judge(
                tipset, tipset.parent_state, tipset.parent_message_receipts, child, None, 0.0
            )
        scratch = BufferedBlockstore(self._base)
        started = time.perf_counter()
        try:
            computed = self._execute(tipset, scratch)
        except FvmNodeError as exc:
            return EpochResult(
                tipset.height,
                tipset.key,
                EpochStatus.ERROR,
                None,
                expected_state,
                None,
                expected_receipts,
                0,
                0,
                time.perf_counter() - started,
                error=f"{type(exc).__name__}: {exc}",
            )
        seconds = time.perf_counter() - started
        result = self._judge(
            tipset, computed.state_root, computed.receipts_root, child, computed, seconds
        )
        if result.status is EpochStatus.MISMATCH and self.report_dir is not None:
            assert child is not None
            report = write_mismatch_report(
                self.report_dir,
                result,
                scratch,
                computed,
                child,
                actors_version=self.actors_version,
                bundle=self.bundle,
                retrace=lambda: self._execute(tipset, BufferedBlockstore(self._base), tracing=True),
            )
            result = _with_report(result, report)
        scratch.discard()
        return result

    def _execute(self, tipset: TipSet, store: Blockstore, *, tracing: bool = False) -> TipsetResult:
        parent = self.chain_store.get_tipset(tipset.parents)
        full_blocks = []
        for header in tipset.blocks:
            bls_messages, secp_messages = self.chain_store.get_block_messages(header)
            full_blocks.append(FullBlock(header, tuple(bls_messages), tuple(secp_messages)))
        externs = ChainExterns(
            self.chain_store, tipset, self.config.network_version, beacon_rounds=self._beacon
        )
        config = replace(self.config, tracing=True) if tracing else self.config
        return apply_full_blocks(config, store, externs, full_blocks, parent.height)

    @staticmethod
    def _judge(
        tipset: TipSet,
        state_root: CID,
        receipts_root: CID,
        child: TipSet | None,
        computed: TipsetResult | None,
        seconds: float,
    ) -> EpochResult:
        if child is None:
            status = EpochStatus.UNCHECKED
        elif (state_root, receipts_root) == (child.parent_state, child.parent_message_receipts):
            status = EpochStatus.OK
        else:
            status = EpochStatus.MISMATCH
        return EpochResult(
            tipset.height,
            tipset.key,
            status,
            state_root,
            None if child is None else child.parent_state,
            receipts_root,
            None if child is None else child.parent_message_receipts,
            0 if computed is None else computed.gas_used,
            0 if computed is None else computed.messages_applied,
            seconds,
        )


def _with_report(result: EpochResult, report: Path) -> EpochResult:
    return EpochResult(
        result.epoch,
        result.tipset_key,
        result.status,
        result.computed_state_root,
        result.expected_state_root,
        result.computed_receipts_root,
        result.expected_receipts_root,
        result.gas_used,
        result.messages,
        result.seconds,
        result.error,
        report,
    )


# -- mismatch reports -------------------------------------------------------------------------


def _receipt_json(receipt: Receipt | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    return {
        "exit_code": int(receipt.exit_code),
        "return": render(receipt.return_data),
        "gas_used": receipt.gas_used,
        "events_root": render(receipt.events_root),
    }


def receipt_differences(
    computed: TipsetResult, expected: Sequence[Receipt]
) -> list[dict[str, Any]]:
    """The receipts that differ, by index, with the message CID where the replay applied one."""
    differences = []
    for index in range(max(len(computed.receipts), len(expected))):
        mine = computed.receipts[index] if index < len(computed.receipts) else None
        theirs = expected[index] if index < len(expected) else None
        if mine != theirs:
            cid = computed.message_cids[index] if index < len(computed.message_cids) else None
            differences.append(
                {
                    "index": index,
                    "message_cid": render(cid),
                    "computed": _receipt_json(mine),
                    "expected": _receipt_json(theirs),
                }
            )
    return differences


def _summary_text(
    result: EpochResult,
    state: StateDiff | None,
    state_error: str | None,
    receipts: list[dict[str, Any]],
    receipts_error: str | None,
) -> str:
    lines = [result.line(), f"tipset {result.tipset_key}"]
    if state is not None:
        for header_diff in state.header:
            lines.append(
                f"state root {header_diff.path}: {header_diff.computed} != {header_diff.expected}"
            )
        lines.append(f"{len(state.actors)} actor(s) differ:")
        for actor in state.actors:
            kind = actor.actor_type or "unknown type"
            lines.append(f"  {actor.address} ({kind}): {', '.join(actor.changed)}")
            for diff in actor.fields:
                lines.append(f"    {diff.path}: computed {diff.computed} expected {diff.expected}")
            if actor.fields_truncated:
                lines.append("    (more field differences not listed)")
            if actor.field_error is not None:
                lines.append(f"    fields not compared: {actor.field_error}")
    if state_error is not None:
        lines.append(f"state trees not compared: {state_error}")
    if receipts_error is not None:
        lines.append(f"receipts not compared: {receipts_error}")
    lines.append(f"{len(receipts)} receipt(s) differ")
    for entry in receipts:
        lines.append(
            f"  #{entry['index']} {entry['message_cid']}: computed {entry['computed']} "
            f"expected {entry['expected']}"
        )
    return "\n".join(lines) + "\n"


def _write_gas_traces(
    directory: Path, computed: TipsetResult, retrace: Callable[[], TipsetResult]
) -> dict[str, Any]:
    """Write ``gas-traces.json`` from a traced re-execution; the report's fields about it."""
    try:
        traced = retrace()
    except FvmNodeError as exc:
        return {"gas_traces": None, "gas_traces_error": f"{type(exc).__name__}: {exc}"}
    document = tipset_gas_traces_json(traced)
    document["same_result_as_untraced"] = (traced.state_root, traced.receipts_root) == (
        computed.state_root,
        computed.receipts_root,
    )
    (directory / GAS_TRACES_FILE).write_text(json.dumps(document, indent=2) + "\n")
    return {"gas_traces": GAS_TRACES_FILE, "gas_traces_error": None}


def write_mismatch_report(
    report_dir: Path,
    result: EpochResult,
    store: Blockstore,
    computed: TipsetResult,
    child: TipSet,
    *,
    actors_version: int,
    bundle: Bundle,
    retrace: Callable[[], TipsetResult],
) -> Path:
    """Write ``report_dir/epoch-<E>/report.json`` and ``summary.txt``; return the directory.

    ``store`` holds the computed state (and reaches the expected one beneath it). ``retrace``
    executes the tipset again with tracing on; its traces go to ``gas-traces.json``.
    """
    directory = report_dir / f"epoch-{result.epoch}"
    directory.mkdir(parents=True, exist_ok=True)
    state: StateDiff | None = None
    state_error: str | None = None
    if result.computed_state_root != child.parent_state:
        assert result.computed_state_root is not None
        try:
            state = diff_state_trees(
                store,
                result.computed_state_root,
                child.parent_state,
                actors_version=actors_version,
                actor_name_of=bundle.manifest.name_of,
            )
        except FvmNodeError as exc:
            state_error = f"{type(exc).__name__}: {exc}"
    receipts: list[dict[str, Any]] = []
    receipts_error: str | None = None
    try:
        receipts = receipt_differences(
            computed, load_receipts(store, child.parent_message_receipts)
        )
    except FvmNodeError as exc:
        receipts_error = f"{type(exc).__name__}: {exc}"
    gas = [
        MessageGas.of(index, cid, ret).to_json()
        for index, (cid, ret) in enumerate(
            zip(computed.message_cids, computed.apply_rets, strict=True)
        )
    ]
    document = {
        "epoch": result.to_json(),
        "state_diff": None if state is None else state.to_json(),
        "state_diff_error": state_error,
        "receipts_diff": receipts,
        "receipts_diff_error": receipts_error,
        "message_gas": gas,
        **_write_gas_traces(directory, computed, retrace),
    }
    (directory / REPORT_FILE).write_text(json.dumps(document, indent=2) + "\n")
    traces = document["gas_traces"] or f"not written ({document['gas_traces_error']})"
    (directory / SUMMARY_FILE).write_text(
        _summary_text(result, state, state_error, receipts, receipts_error)
        + f"gas traces: {traces}\n"
    )
    return directory


# -- choosing the tipsets ---------------------------------------------------------------------


def plan(chain_store: ChainStore, start: int, end: int) -> list[_Step]:
    """The head's chain's tipsets with heights in ``[start, end]``, ascending, each with its
    child on that chain (None for the head)."""
    if start < 0 or end < start:
        raise ReplayError(f"bad range: --from {start} --to {end}")
    head = chain_store.heaviest()
    if head is None:
        raise ReplayError("the chain store has no head")
    if start > head.height:
        raise ReplayError(f"--from {start} is above the head's height {head.height}")
    steps: list[_Step] = []
    child: TipSet | None = None
    current = head
    try:
        while True:
            if start <= current.height <= end:
                key = current.key.to_bytes()
                steps.append(_Step(key, None if child is None else child.key.to_bytes()))
            if current.height <= start or current.height == 0:
                break
            child, current = current, chain_store.get_tipset(current.parents)
    except TipSetNotFound as exc:
        raise ReplayError(f"the stored chain is incomplete: {exc}") from None
    steps.reverse()
    return steps


MAX_CHUNK: Final = 16  # tipsets; about 0.2 s of a devnet epoch's work


def chunk_size(remaining: int, processes: int) -> int:
    """How many of the ``remaining`` steps the next chunk takes: an equal share of half of them
    per process, at most :data:`MAX_CHUNK` and at least one (guided self-scheduling: chunks
    shrink towards the end so no process is left with a long run while the others idle)."""
    return max(1, min(MAX_CHUNK, remaining // (2 * processes)))


# -- running ----------------------------------------------------------------------------------

CHUNKS_QUEUED_PER_CHILD: Final = 2  # one running, one waiting: a child never waits for the parent


@dataclass(frozen=True, slots=True)
class _WorkerSetup:
    """What a worker process needs to build its replayer (picklable)."""

    chain_dir: Path
    network: str
    actors_dir: Path | None
    block_delay_secs: int
    report_dir: Path | None


def _replayer(
    chain_store: ChainStore,
    network: str,
    actors_dir: Path | None,
    block_delay_secs: int,
    report_dir: Path | None,
    invoker: ActorInvoker | None = None,
) -> Replayer:
    chain_preset = replay_preset(network)
    actors_version = actors_version_for(chain_preset.genesis_network_version)
    bundle = load_network_bundle(chain_preset, actors_version, actors_search_path(actors_dir))
    config = devnet_execution_config(
        chain_preset, chain_store.genesis().min_timestamp, block_delay_secs, invoker
    )
    return Replayer(
        chain_store, bundle, config, actors_version=actors_version, report_dir=report_dir
    )


_worker_replayer: Replayer | None = None  # a worker process's own, built once by _start_worker


def _start_worker(setup: _WorkerSetup) -> None:
    """A worker process's start: open the store read-only and load the bundle, once; the
    compiled actor modules come from the module cache's disk entries as epochs need them."""
    global _worker_replayer
    blockstore = LmdbBlockstore(setup.chain_dir, readonly=True)
    atexit.register(blockstore.close)
    _worker_replayer = _replayer(
        ChainStore(blockstore),
        setup.network,
        setup.actors_dir,
        setup.block_delay_secs,
        setup.report_dir,
    )


def _worker_started() -> None:
    """A task that only makes the pool start its process (and run :func:`_start_worker`)."""


def _replay_chunk(steps: tuple[_Step, ...]) -> list[EpochResult]:
    assert _worker_replayer is not None, "the pool's initializer builds the replayer"
    return [_worker_replayer.replay(step) for step in steps]


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Processes started inside import no ``__main__`` of ours.

    ``spawn`` makes a child import the parent's main module (so that functions defined there can
    be unpickled): under ``fvm-node`` that is the whole command line, under the benchmark
    libp2p too, 0.3-0.6 s of a child's start. Replay's tasks all live in this module, so while
    the pool starts its processes ``sys.modules["__main__"]`` is a blank module, which
    ``multiprocessing.spawn.get_preparation_data`` finds neither a name nor a path in.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class _ParallelRun:
    """Replays steps with this process and ``children`` spawned worker processes.

    Chunks are handed out in height order, each to whichever process is free: the children
    keep :data:`CHUNKS_QUEUED_PER_CHILD` chunks each in their pool's queue and this process
    replays the next chunk itself between checks, so its own imports and bundle (already
    loaded) work from the first moment while the children start. Finished chunks are
    published in height order as soon as every lower one is in.
    """

    def __init__(self, setup: _WorkerSetup, children: int) -> None:
        self.children = children
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            children, mp_context=context, initializer=_start_worker, initargs=(setup,)
        )
        # Start the children now: the caller plans the range while they boot.
        with _main_module_hidden():
            for _ in range(children):
                self._pool.submit(_worker_started)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(
        self,
        steps: Sequence[_Step],
        replayer: Replayer,
        publish: Callable[[EpochResult], None],
    ) -> None:
        processes = self.children + 1
        handed_out = 0  # steps[:handed_out] are given to some process
        published = 0  # steps[:published] are published
        done: dict[int, list[EpochResult]] = {}  # by the offset of the chunk's first step
        running: dict[Future[list[EpochResult]], int] = {}

        def next_chunk() -> tuple[int, tuple[_Step, ...]]:
            nonlocal handed_out
            offset = handed_out
            handed_out += chunk_size(len(steps) - offset, processes)
            return offset, tuple(steps[offset:handed_out])

        def collect(futures: Iterable[Future[list[EpochResult]]]) -> None:
            nonlocal published
            for future in futures:
                done[running.pop(future)] = future.result()
            while published in done:
                results = done.pop(published)
                for result in results:
                    publish(result)
                published += len(results)

        try:
            while handed_out < len(steps) or running:
                while (
                    handed_out < len(steps)
                    and len(running) < self.children * CHUNKS_QUEUED_PER_CHILD
                ):
                    offset, chunk = next_chunk()
                    running[self._pool.submit(_replay_chunk, chunk)] = offset
                if handed_out < len(steps):
                    offset, chunk = next_chunk()
                    done[offset] = [replayer.replay(step) for step in chunk]
                    collect([future for future in running if future.done()])
                else:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    collect(finished)
        except BrokenProcessPool as exc:
            raise ReplayError(f"a replay worker process died: {exc}") from None


def replay_range(
    source: Path | ChainStore,
    start: int,
    end: int | None = None,
    *,
    workers: int = 1,
    report_dir: Path | None = None,
    metrics: NodeMetrics | None = None,
    network: str = "devnet",
    actors_dir: Path | None = None,
    on_epoch: EpochCallback | None = None,
    invoker: ActorInvoker | None = None,
) -> ReplaySummary:
    """Replay the head's chain's tipsets with heights in ``[start, end]`` (``end`` None: up to
    the head; see the module docstring).

    ``source`` is a node data directory (its ``chain`` LMDB store is opened read-only) or an
    open :class:`ChainStore` (worker processes open its directory themselves). ``workers`` is
    the number of processes: this one and ``workers - 1`` spawned ones (fewer when the range
    has fewer tipsets). ``on_epoch`` and ``metrics`` (``on_replay_epoch``) hear of every epoch
    in height order, as soon as it and every lower one are done; with ``report_dir`` each
    mismatch gets a report and the whole result list is written to
    ``report_dir/replay.json``. ``invoker`` is used in this process only.
    """
    if workers < 1:
        raise ReplayError(f"--workers must be at least 1, not {workers}")
    replay_preset(network)
    started = time.perf_counter()
    opened = isinstance(source, Path)
    chain_store = open_chain_store(source) if isinstance(source, Path) else source
    parallel: _ParallelRun | None = None
    results: list[EpochResult] = []

    def publish(result: EpochResult) -> None:
        results.append(result)
        if metrics is not None:
            metrics.on_replay_epoch(result.gas_used, not result.ok)
        if on_epoch is not None:
            on_epoch(result)

    try:
        try:
            head = chain_store.heaviest()
            if head is None:
                raise ReplayError("the chain store has no head")
            block_delay = block_delay_of(chain_store, head)
            last = head.height if end is None else end
            replayer = _replayer(chain_store, network, actors_dir, block_delay, report_dir, invoker)
            # At most this many tipsets are in the range (fewer if it has null rounds).
            most = min(last, head.height) - max(start, 0) + 1
            children = min(workers - 1, most - 1)
            if children > 0:
                setup = _WorkerSetup(
                    chain_store.blockstore.path, network, actors_dir, block_delay, report_dir
                )
                parallel = _ParallelRun(setup, children)
            steps = plan(chain_store, start, last)
        except ChainStoreError as exc:
            raise ReplayError(str(exc)) from None
        if parallel is None:
            for step in steps:
                publish(replayer.replay(step))
        else:
            parallel.run(steps, replayer, publish)
    finally:
        if parallel is not None:
            parallel.close()
        if opened:
            chain_store.blockstore.close()
    processes = 1 if parallel is None else parallel.children + 1
    summary = ReplaySummary(tuple(results), time.perf_counter() - started, processes)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / RESULTS_FILE).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return summary
