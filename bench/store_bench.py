"""Storage-layer throughput on the real data: CAR import into LMDB, strict DAG-CBOR decoding,
and HAMT reads and writes over a conformance vector's state tree.

These are the costs that bound chain sync (importing snapshots, decoding every block) and
message execution (state-tree lookups and updates through the HAMT, ref-fvm's
``fvm_ipld_hamt``). Figures are measured, never asserted; each is the best of a few runs where
a run is cheap.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from fvm.conformance.vector import find_vectors, load_vector
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore
from store.car import CarReader, CarWriter, open_maybe_compressed
from store.cid import CID, DAG_CBOR
from store.hamt import Hamt
from store.lmdb_blockstore import LmdbBlockstore
from store.varint import encode_uvarint

Figure = tuple[str, float, str]

SHARED = Path(os.environ.get("FVM_NODE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GENESIS_CAR = SHARED / "genesis" / "mainnet.car.zst"
VECTORS = SHARED / "test-vectors" / "extracted"
HAMT_NEW_KEYS = 10_000
MEGABYTE = 1e6


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    """The shortest wall time of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _import_into_fresh_lmdb(open_car: Callable[[], BinaryIO]) -> tuple[int, int]:
    with (
        tempfile.TemporaryDirectory(prefix="store-bench-") as folder,
        open_car() as stream,
        LmdbBlockstore(Path(folder) / "blocks") as store,
    ):
        return store.import_car(CarReader(stream))


def _import_figures(label: str, open_car: Callable[[], BinaryIO]) -> list[Figure]:
    counts: list[tuple[int, int]] = []
    seconds = _best_of(3, lambda: counts.append(_import_into_fresh_lmdb(open_car)))
    blocks, size = counts[-1]
    return [
        (f"CAR import into LMDB, {label}", blocks / seconds, "blocks/s"),
        (f"CAR import into LMDB, {label}", size / MEGABYTE / seconds, "MB/s"),
    ]


def _vector_blocks() -> tuple[list[tuple[CID, bytes]], list[tuple[MemoryBlockstore, CID]]]:
    """Every block of every vector CAR, and each vector's store with its pre-state root."""
    blocks: list[tuple[CID, bytes]] = []
    states: list[tuple[MemoryBlockstore, CID]] = []
    for path in find_vectors(VECTORS):
        vector = load_vector(path)
        vector_blocks = list(CarReader.from_bytes(vector.car, source=str(path)))
        blocks.extend(vector_blocks)
        states.append((MemoryBlockstore(vector_blocks), vector.pre_state_root))
    return blocks, states


def _concatenated_car(blocks: Iterable[tuple[CID, bytes]]) -> bytes:
    out = io.BytesIO()
    writer = CarWriter(out, [])
    for cid, data in blocks:
        writer.write(cid, data)
    return out.getvalue()


def _decode_figures(blocks: list[tuple[CID, bytes]]) -> list[Figure]:
    payloads = [data for cid, data in blocks if cid.codec == DAG_CBOR]
    size = sum(len(data) for data in payloads)

    def strict() -> None:
        for data in payloads:
            dag_cbor.decode(data)

    def lenient() -> None:
        for data in payloads:
            dag_cbor.decode_lenient(data)

    label = f"all vector blocks ({size / MEGABYTE:.1f} MB)"
    return [
        (f"DAG-CBOR strict decode, {label}", size / MEGABYTE / _best_of(1, strict), "MB/s"),
        (f"DAG-CBOR lenient decode, {label}", size / MEGABYTE / _best_of(1, lenient), "MB/s"),
    ]


def _present_hamt_keys(store: Blockstore, root: CID) -> list[bytes]:
    """Keys of the HAMT nodes the (partial) vector state holds; missing subtrees are skipped."""
    keys: list[bytes] = []
    stack = [root]
    while stack:
        data = store.get(stack.pop())
        if data is None:
            continue
        _, pointers = dag_cbor.decode(data)
        for pointer in pointers:
            if isinstance(pointer, CID):
                stack.append(pointer)
            else:
                keys.extend(entry[0] for entry in pointer)
    return keys


def _hamt_figures(states: list[tuple[MemoryBlockstore, CID]]) -> list[Figure]:
    candidates = []
    for store, state_root in states:
        actors_root = dag_cbor.decode(store.get(state_root) or b"")[1]
        candidates.append((len(_present_hamt_keys(store, actors_root)), store, actors_root))
    count, store, actors_root = max(candidates, key=lambda candidate: candidate[0])
    keys = _present_hamt_keys(store, actors_root)
    sample_value: Any = Hamt(store, actors_root).get(keys[0])

    def cold_gets() -> None:
        hamt = Hamt(store, actors_root)
        for key in keys:
            hamt.get(key)

    warm = Hamt(store, actors_root)
    cold_gets()

    def warm_gets() -> None:
        for key in keys:
            warm.get(key)

    new_keys = [b"\x00" + encode_uvarint(10_000_000 + i) for i in range(HAMT_NEW_KEYS)]
    set_seconds = float("inf")
    flush_seconds = float("inf")
    for _ in range(3):
        # The vector states are partial, so new keys go into an empty tree.
        hamt = Hamt(MemoryBlockstore())
        started = time.perf_counter()
        for key in new_keys:
            hamt.set(key, sample_value)
        set_done = time.perf_counter()
        hamt.flush()
        set_seconds = min(set_seconds, set_done - started)
        flush_seconds = min(flush_seconds, time.perf_counter() - set_done)

    label = f"vector state tree, {count} actors"
    return [
        (f"HAMT get, fresh HAMT per pass ({label})", count / _best_of(5, cold_gets), "ops/s"),
        (f"HAMT get, nodes cached ({label})", count / _best_of(5, warm_gets), "ops/s"),
        (f"HAMT set, {HAMT_NEW_KEYS} new keys", HAMT_NEW_KEYS / set_seconds, "ops/s"),
        (f"HAMT flush after {HAMT_NEW_KEYS} sets", flush_seconds * 1000, "ms"),
    ]


def run() -> list[Figure]:
    """Every storage figure as ``(name, value, unit)``."""
    figures = _import_figures("mainnet genesis", lambda: open_maybe_compressed(GENESIS_CAR))
    blocks, states = _vector_blocks()
    concatenated = _concatenated_car(blocks)
    figures += _import_figures(
        f"all vector CARs ({len(blocks)} blocks)", lambda: io.BytesIO(concatenated)
    )
    figures += _decode_figures(blocks)
    figures += _hamt_figures(states)
    return figures
