"""What ``fvm-node inspect`` prints: summaries of CAR files, genesis blocks and state trees.

Each function returns text (and a pass/fail flag where a check is involved) so the CLI stays a
thin layer and the tests can check the reports without spawning processes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from chainsync.chain_types import BlockHeader
from fvm.actor_state import ActorState
from fvm.bundle import BundleIndex, bundle_index
from fvm.conformance.vector import load_vector
from fvm.state_tree import hamt_layout, load_state_root
from fvm.token import format_decimal
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore, get_required
from store.car import CarReader, open_maybe_compressed
from store.cid import CID, CODEC_NAMES
from store.errors import CIDError, FvmNodeError, MalformedInput
from store.rebuild import rebuild_hamt, walk_present_hamt

DEFAULT_ACTORS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "actors"


def car_summary(path: Path) -> str:
    """Roots, block count, bytes and counts by codec, streaming the file once."""
    by_codec: Counter[str] = Counter()
    total = 0
    with open_maybe_compressed(path) as stream:
        reader = CarReader(stream, source=str(path))
        for cid, data in reader:
            by_codec[CODEC_NAMES.get(cid.codec, hex(cid.codec))] += 1
            total += len(data)
        roots = reader.header.roots
    lines = [f"file: {path}", f"roots: {len(roots)}"]
    lines += [f"  {root}" for root in roots]
    lines.append(f"blocks: {sum(by_codec.values())} ({total:,} bytes of block data)")
    lines += [f"  {codec}: {count}" for codec, count in sorted(by_codec.items())]
    return "\n".join(lines)


def _load_car(path: Path) -> tuple[tuple[CID, ...], MemoryBlockstore]:
    with open_maybe_compressed(path) as stream:
        reader = CarReader(stream, source=str(path))
        store = MemoryBlockstore(reader)
        return reader.header.roots, store


def genesis_summary(path: Path) -> str:
    """Decode the CAR's root as a block header; its CID is recomputed from the block's bytes."""
    roots, store = _load_car(path)
    if len(roots) != 1:
        raise MalformedInput(f"a genesis CAR has one root, this one has {len(roots)}", str(path))
    raw = get_required(store, roots[0])
    header = BlockHeader.from_cbor(dag_cbor.decode(raw, str(roots[0])), str(roots[0]))
    computed = CID.hash_of(raw)
    reencoded = header.encode()
    when = datetime.fromtimestamp(header.timestamp, UTC).isoformat()
    root_note = "yes" if computed == roots[0] else f"NO: root is {roots[0]}"
    return "\n".join(
        [
            f"genesis block: {computed} (computed from the block's bytes)",
            f"matches CAR root: {root_note}",
            f"re-encodes identically: {'yes' if reencoded == raw else 'NO'}",
            f"height: {header.height}",
            f"timestamp: {header.timestamp} ({when})",
            f"parent state root: {header.parent_state_root}",
            f"miner: {header.miner}",
        ]
    )


def _state_root_of(store: Blockstore, root: CID) -> CID:
    """Accept a block header (use its ParentStateRoot) or a state root."""
    value = dag_cbor.decode(get_required(store, root), str(root))
    if isinstance(value, list) and len(value) == 16:
        return BlockHeader.from_cbor(value, str(root)).parent_state_root
    return root


def _actors_index() -> BundleIndex | None:
    try:
        return bundle_index(DEFAULT_ACTORS_DIR) if DEFAULT_ACTORS_DIR.is_dir() else None
    except FvmNodeError:
        return None


def _code_name(code: CID, index: BundleIndex | None) -> str:
    if code.mh_code == 0x00:  # identity: pre-bundle actors name themselves ("fil/1/account")
        try:
            return code.digest.decode("ascii")
        except UnicodeDecodeError:
            return str(code)
    found = index.actor_type(code) if index is not None else None
    return f"v{found.version} {found.name}" if found else "unknown code"


def state_report(
    store: Blockstore, label: str, root: CID, *, verify: bool, seed: int
) -> tuple[str, bool]:
    """Walk one state tree; with ``verify``, rebuild its actors HAMT and compare."""
    state_root = _state_root_of(store, root)
    version, actors_root, _ = load_state_root(store, state_root)
    walk = walk_present_hamt(store, actors_root, version=hamt_layout(version))
    by_code: Counter[CID] = Counter()
    balance = 0
    for key, value in walk.entries:
        actor = ActorState.from_cbor(value, version, f"actors HAMT key {key.hex()}")
        balance += actor.balance
        by_code[actor.code] += 1
    index = _actors_index()
    partial = (
        f" (of the actors in this file: {len(walk.absent)} subtrees of the state tree are "
        "absent from it)"
        if walk.absent
        else ""
    )
    lines = [
        f"{label}: state root {state_root} (state tree {version.name})",
        f"  actors: {len(walk.entries)}{partial}",
        f"  total balance: {format_decimal(balance)} FIL",
        "  actors by code:",
    ]
    for code, n in by_code.most_common():
        lines.append(f"    {n:>8}  {code}  {_code_name(code, index)}")
    passed = True
    if verify:
        report = rebuild_hamt(
            store, actors_root, bit_width=5, seed=seed, version=hamt_layout(version)
        )
        passed = report.ok
        verdict = "identical" if passed else "DIFFERENT"
        absent = (
            f", {report.absent_subtrees} subtrees absent from the file kept as links"
            if report.absent_subtrees
            else ""
        )
        lines.append(
            f"  verify: rebuilt actors HAMT from {report.entries} entries (seed {seed}"
            f"{absent}): root {report.rebuilt_root}, "
            f"{report.nodes_compared} nodes compared byte for byte: {verdict}"
        )
        lines += [f"    {difference}" for difference in report.differences]
    return "\n".join(lines), passed


def _is_vector(path: Path) -> bool:
    if path.suffix == ".json":
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"{"


def state_reports(
    path: Path, root: str | None, *, verify: bool, seed: int
) -> Iterator[tuple[str, bool]]:
    """Reports for every state a file holds: a CAR's root, or a vector's pre and post state."""
    try:
        explicit = CID.parse(root) if root else None
    except CIDError as exc:
        raise MalformedInput(f"--root: {exc.what}") from None
    if _is_vector(path):
        try:
            vector = load_vector(path)
        except json.JSONDecodeError as exc:
            raise MalformedInput(f"not a test vector: {exc}", str(path)) from None
        store: Blockstore = vector.blockstore()
        targets = (
            [("state", explicit)]
            if explicit
            else [("pre-state", vector.pre_state_root), ("post-state", vector.post_state_root)]
        )
    else:
        roots, store = _load_car(path)
        if explicit is None and len(roots) != 1:
            raise MalformedInput(f"CAR has {len(roots)} roots: pass --root", str(path))
        targets = [("state", explicit or roots[0])]
    for label, target in targets:
        yield state_report(store, label, target, verify=verify, seed=seed)
