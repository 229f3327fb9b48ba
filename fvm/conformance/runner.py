"""Running FVM conformance vectors: apply each message and compare with what mainnet recorded.

A port of ref-fvm's conformance runner (``testing/conformance/src/{vm,driver,vector}.rs`` and
``tests/runner.rs``) at ``fvm@v2.12.1`` (the ``0001-shark-01`` vectors, network version 17)
and ``fvm@v3.13.3`` (``0002-hygge-01``, network version 18). For every variant of a vector:

* the blockstore holds the vector's CAR and the builtin-actors bundle its state names (the
  reference loads every bundle it ships; here the bundle whose manifest data the system actor's
  state links is loaded from a folder of ``vN.tar.zst`` tarballs);
* the machine runs at the variant's network version and epoch, with timestamp ``epoch * 30``,
  the vector's base fee (default 100 attoFIL) and circulating supply (default all FIL), and
  externs that replay the vector's recorded randomness;
* every message is applied as an explicit message whose on-chain length is its encoded size,
  plus 69 bytes (a 65-byte signature, its type byte, 3 bytes of CBOR framing) when the sender
  is a secp256k1 address; its receipt must match the recorded exit code, return bytes and gas
  used, in that order;
* the state root after flushing must equal the recorded post-state root; on a mismatch the
  sender, receiver and system actors (IDs 0-99) of both trees are compared field by field.

Actor code runs in WebAssembly (:class:`~fvm.wasm_invoker.WasmActorInvoker`, compiled modules
cached on disk in the module cache's default folder) on the deep stack message execution needs;
as the reference's ``TestKernel``, the proof syscalls charge their gas and accept every proof
(:class:`~fvm.proofs.verifier.AcceptAllProofVerifier`). A vector matching a :data:`SKIP_RULES`
pattern (as in the reference, ``DisputeWindowedPoSt/Ok``, which needs a proof to be refused) or
whose selector this runner cannot satisfy is skipped. Anything that prevents applying a message
fails the variant with its reason.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Final

from fvm.actor_state import ActorState
from fvm.address import Address, Protocol
from fvm.bundle import BundleIndex, bundle_index, load_bundle
from fvm.conformance.externs import ReplayingExterns
from fvm.conformance.vector import ExpectedReceipt, TestVector, Variant, find_vectors, load_vector
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import ApplyKind, ApplyRet, Executor
from fvm.invocation import ActorInvoker
from fvm.machine import Machine, MachineContext, NetworkConfig, system_actor_manifest
from fvm.message import Message
from fvm.network_version import actors_version_for
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.state_tree import StateTree
from fvm.wasm_invoker import WasmActorInvoker
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore
from store.car import CarReader
from store.cid import CID
from store.errors import FvmNodeError

# fvm_shared SECP_SIG_LEN plus the signature's type byte and three bytes of CBOR framing.
SECP_SIGNATURE_OVERHEAD: Final = 65 + 4
EPOCH_DURATION_SECONDS: Final = 30
SYSTEM_ACTOR_IDS: Final = range(100)
BUNDLE_NETWORK: Final = "mainnet"


@dataclass(frozen=True, slots=True)
class SkipRule:
    pattern: re.Pattern[str]
    reason: str


# ref-fvm v3's skip list, minus its blanket skip of the network version 17 corpus (run here
# with ref-fvm v2's semantics, as ref-fvm v2 ran it).
SKIP_RULES: Final = (
    SkipRule(
        re.compile(r"(^|/)DisputeWindowedPoSt/Ok/"),
        "the runner treats all PoSts as valid (fake proofs)",
    ),
)


class Status(enum.Enum):
    OK = "OK"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class VariantOutcome:
    """How one variant of one vector went. ``details`` holds the state diff on a root
    mismatch; ``gas_used`` and ``seconds`` cover only the messages that were applied (a message
    whose application raised counts in neither)."""

    path: Path
    variant: str
    status: Status
    reason: str = ""
    details: tuple[str, ...] = ()
    gas_used: int = 0
    seconds: float = 0.0
    messages_applied: int = 0
    variant_count: int = 1


class VariantFailure(FvmNodeError):
    """A variant that could not be run or did not match (its message is the reason)."""

    def __init__(self, reason: str, details: tuple[str, ...] = ()) -> None:
        self.reason = reason
        self.details = details
        super().__init__(reason)


def skip_reason(path: Path, vector: TestVector | None = None) -> str | None:
    """Why the vector at ``path`` is not run, or None."""
    text = path.as_posix()
    for rule in SKIP_RULES:
        if rule.pattern.search(text):
            return rule.reason
    if vector is not None:
        selector = vector.raw.get("selector") or {}
        if selector.get("chaos_actor") == "true":
            return "selector not supported: needs the chaos actor"
        if selector.get("requires:consensus_fault_extern") == "true":
            return "selector not supported: needs the consensus fault extern"
        if selector.get("min_protocol_version") == "chocolate":
            return "selector not supported: network version 14"
    return None


# -- bundles -----------------------------------------------------------------------------------


class BundleSource:
    """Builtin-actors bundles from a folder of ``vN.tar.zst`` tarballs, by manifest data CID."""

    def __init__(self, actors_dir: Path | None) -> None:
        self.actors_dir = actors_dir
        self._loaded: dict[CID, tuple[tuple[CID, bytes], ...]] = {}

    def blocks_for(self, data_cid: CID, network_version: int) -> tuple[tuple[CID, bytes], ...]:
        """The manifest and module blocks of the bundle whose manifest data is ``data_cid``."""
        cached = self._loaded.get(data_cid)
        if cached is not None:
            return cached
        if self.actors_dir is None:
            raise VariantFailure(f"no builtin-actors folder to load manifest {data_cid} from")
        bundle = None
        guess = self.actors_dir / f"v{actors_version_for(network_version)}.tar.zst"
        if guess.is_file():
            candidate = load_bundle(guess, BUNDLE_NETWORK)
            if candidate.manifest.data_cid == data_cid:
                bundle = candidate
        if bundle is None:
            index: BundleIndex = bundle_index(self.actors_dir)
            for entry in index.manifests:
                if entry.manifest.data_cid == data_cid:
                    path = self.actors_dir / f"v{entry.actors_version}.tar.zst"
                    bundle = load_bundle(path, entry.network, release=entry.release)
                    break
        if bundle is None:
            raise VariantFailure(
                f"no builtin-actors bundle in {self.actors_dir} has manifest data {data_cid}"
            )
        blocks = bundle.manifest_blocks + bundle.blocks
        self._loaded[data_cid] = blocks
        return blocks


@lru_cache(maxsize=4)
def bundle_source(actors_dir: Path | None) -> BundleSource:
    """A shared (cached) bundle source for ``actors_dir``."""
    return BundleSource(actors_dir)


# -- running -----------------------------------------------------------------------------------


def raw_length(message: Message, encoded: bytes) -> int:
    """The size ref-fvm's runner charges inclusion gas for: secp messages carry a signature."""
    if message.from_.protocol is Protocol.SECP256K1:
        return len(encoded) + SECP_SIGNATURE_OVERHEAD
    return len(encoded)


def receipt_mismatch(expected: ExpectedReceipt, ret: ApplyRet, index: int) -> str | None:
    """The first difference between the recorded and the actual receipt, or None."""
    actual = ret.receipt
    if expected.exit_code != actual.exit_code:
        error = str(ret.failure_info) if ret.failure_info is not None else "no error"
        return (
            f"exit code of msg {index} did not match; expected: {expected.exit_code}, "
            f"got {actual.exit_code}. Error: {error}"
        )
    if expected.return_data != actual.return_data:
        return (
            f"return data of msg {index} did not match; expected: "
            f"{expected.return_data.hex()}, got {actual.return_data.hex()}"
        )
    if expected.gas_used != actual.gas_used:
        return (
            f"gas used of msg {index} did not match; expected: {expected.gas_used}, "
            f"got {actual.gas_used}"
        )
    return None


def run_variant(
    vector: TestVector,
    variant: Variant,
    store: Blockstore,
    bundles: BundleSource,
    invoker: ActorInvoker | None = None,
) -> VariantOutcome:
    """Apply the vector's messages at ``variant`` over ``store`` (which it modifies)."""
    path = vector.path
    gas_used = 0
    seconds = 0.0
    applied = 0
    try:
        machine = machine_for_variant(vector, variant, store, bundles)
        if isinstance(invoker, WasmActorInvoker):
            # As the reference driver does, outside of the timed execution.
            invoker.preload_builtin_actors(machine)
        executor = Executor(machine, invoker)
        for index, apply in enumerate(vector.messages):
            message = Message.decode(apply.data, f"{path} message {index}")
            started = time.perf_counter()
            ret = executor.execute_message(
                message, ApplyKind.EXPLICIT, raw_length(message, apply.data)
            )
            seconds += time.perf_counter() - started
            applied += 1
            gas_used += ret.receipt.gas_used
            if index >= len(vector.receipts):
                raise VariantFailure(f"no recorded receipt for msg {index}")
            mismatch = receipt_mismatch(vector.receipts[index], ret, index)
            if mismatch is not None:
                raise VariantFailure(mismatch)
        root = executor.flush()
        if root != vector.post_state_root:
            raise VariantFailure(
                f"wrong post root cid; expected {vector.post_state_root}, but got {root}",
                tuple(state_diff(store, root, vector)),
            )
    except VariantFailure as failure:
        return VariantOutcome(
            path,
            variant.id,
            Status.FAIL,
            failure.reason,
            failure.details,
            gas_used,
            seconds,
            applied,
        )
    except FvmNodeError as exc:
        return VariantOutcome(
            path, variant.id, Status.FAIL, str(exc), (), gas_used, seconds, applied
        )
    return VariantOutcome(path, variant.id, Status.OK, "", (), gas_used, seconds, applied)


def machine_for_variant(
    vector: TestVector, variant: Variant, store: Blockstore, bundles: BundleSource
) -> Machine:
    """The machine ref-fvm's runner builds for ``variant``, over ``store`` (which must hold the
    vector's CAR); the bundle the state names is added to ``store``."""
    nv = variant.network_version
    network = NetworkConfig.for_version(nv)
    context = MachineContext(
        network=network,
        epoch=variant.epoch,
        initial_state_root=vector.pre_state_root,
        base_fee=vector.base_fee,
        circ_supply=vector.circ_supply,
        timestamp=variant.epoch * EPOCH_DURATION_SECONDS,
    )
    data_cid = system_actor_manifest(StateTree(store, vector.pre_state_root))
    store.put_many_keyed(bundles.blocks_for(data_cid, nv))
    return Machine.create(context, store, ReplayingExterns(vector.randomness))


def run_vector(
    path: Path, bundles: BundleSource, invoker: ActorInvoker | None = None
) -> list[VariantOutcome]:
    """Every variant of the vector at ``path``: skipped, or run on its own copy of the CAR."""
    reason = skip_reason(path)
    if reason is not None:
        return [VariantOutcome(path, "", Status.SKIP, reason)]
    try:
        vector = load_vector(path)
        reason = skip_reason(path, vector)
        if reason is not None:
            return [VariantOutcome(path, v.id, Status.SKIP, reason) for v in vector.variants]
        reader = CarReader.from_bytes(vector.car, source=f"{path} car")
        blocks = dict(reader)
        roots = reader.header.roots
        if vector.pre_state_root not in roots:
            raise VariantFailure(
                f"imported roots ({', '.join(map(str, roots))}) do not contain precondition "
                f"CID {vector.pre_state_root}"
            )
    except VariantFailure as failure:
        return [VariantOutcome(path, "", Status.FAIL, failure.reason)]
    except FvmNodeError as exc:
        return [VariantOutcome(path, "", Status.FAIL, str(exc))]
    if not vector.variants:
        return [VariantOutcome(path, "", Status.FAIL, "vector has no variants")]
    outcomes = [
        run_variant(vector, variant, MemoryBlockstore(blocks.items()), bundles, invoker)
        for variant in vector.variants
    ]
    if len(outcomes) == 1:
        return outcomes
    return [replace(outcome, variant_count=len(outcomes)) for outcome in outcomes]


def conformance_invoker(cache_dir: Path | None = None) -> WasmActorInvoker:
    """The reference runner's actor execution: WebAssembly, every proof accepted."""
    return WasmActorInvoker(AcceptAllProofVerifier(), cache_dir)


def run_paths(
    paths: list[Path], actors_dir: Path | None, invoker: ActorInvoker | None = None
) -> Iterator[VariantOutcome]:
    """Run every vector under ``paths`` (files or folders), in sorted order per folder.

    Without ``invoker``, actor code runs as :func:`conformance_invoker` runs it. Each vector
    runs on the deep execution stack (:func:`~fvm.engine.runtime.run_on_execution_stack`).
    """
    bundles = bundle_source(actors_dir)
    actors: ActorInvoker = invoker if invoker is not None else conformance_invoker()
    for path in find_vectors(*paths):
        yield from run_on_execution_stack(partial(run_vector, path, bundles, actors))


# -- state diff --------------------------------------------------------------------------------


def _actor_fields(actor: ActorState) -> dict[str, Any]:
    return {f.name: getattr(actor, f.name) for f in fields(actor)}


def _state_fields(store: Blockstore, head: CID) -> list[Any] | None:
    raw = store.get(head)
    if raw is None:
        return None
    decoded = dag_cbor.decode(raw, f"actor state {head}")
    return list(decoded) if isinstance(decoded, list) else None


def actor_diff(
    store: Blockstore, label: str, actual: ActorState | None, expected: ActorState | None
) -> list[str]:
    """Lines describing how ``actual`` differs from ``expected`` (none when equal)."""
    if actual == expected:
        return []
    if actual is None or expected is None:
        return [f"{label}: actual {actual} != expected {expected}"]
    lines = [f"{label} actor state differs:"]
    expected_fields = _actor_fields(expected)
    for name, value in _actor_fields(actual).items():
        if value != expected_fields[name]:
            lines.append(f"  {name}: actual {value} != expected {expected_fields[name]}")
    if actual.state != expected.state:
        actual_state = _state_fields(store, actual.state)
        expected_state = _state_fields(store, expected.state)
        if actual_state is None or expected_state is None:
            lines.append("  (state blocks not decodable as arrays)")
        elif len(actual_state) != len(expected_state):
            lines.append("  states have different numbers of fields")
        else:
            for number, (a, e) in enumerate(zip(actual_state, expected_state, strict=True)):
                if a != e:
                    lines.append(f"  state field {number}: actual {a!r} != expected {e!r}")
    return lines


def state_diff(store: Blockstore, actual_root: CID, vector: TestVector) -> Iterator[str]:
    """The actor-level differences between the actual and the expected post-state: the senders
    and receivers of the vector's messages, then the system actors (IDs 0-99)."""
    try:
        actual = StateTree(store, actual_root)
        expected = StateTree(store, vector.post_state_root)
    except FvmNodeError as exc:
        yield f"cannot load the state trees to compare: {exc}"
        return
    for apply in vector.messages:
        message = Message.decode(apply.data)
        for label, address in (("sender", message.from_), ("receiver", message.to)):
            yield from _diff_address(store, f"{label} {address}", actual, expected, address)
    for actor_id in SYSTEM_ACTOR_IDS:
        try:
            expected_actor = expected.get_actor(actor_id)
        except FvmNodeError:
            continue
        if expected_actor is None:
            continue
        yield from actor_diff(
            store,
            f"builtin {Address.new_id(actor_id)}",
            actual.get_actor(actor_id),
            expected_actor,
        )


def _diff_address(
    store: Blockstore, label: str, actual: StateTree, expected: StateTree, address: Address
) -> list[str]:
    try:
        return actor_diff(store, label, actual.get_actor(address), expected.get_actor(address))
    except FvmNodeError as exc:
        return [f"{label}: cannot compare: {exc}"]


# -- summary -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """Counts and totals over many outcomes."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    gas_used: int = 0
    seconds: float = 0.0
    failures: list[VariantOutcome] = field(default_factory=list)

    def add(self, outcome: VariantOutcome) -> None:
        if outcome.status is Status.OK:
            self.passed += 1
        elif outcome.status is Status.FAIL:
            self.failed += 1
            self.failures.append(outcome)
        else:
            self.skipped += 1
        self.gas_used += outcome.gas_used
        self.seconds += outcome.seconds

    @property
    def gas_per_second(self) -> float:
        return self.gas_used / self.seconds if self.seconds > 0 else 0.0
