"""The node's persistent blockstore: IPLD blocks in an LMDB environment.

LMDB gives what a chain store needs from one file: writes committed atomically per transaction
(a tipset's blocks and its index entries land together or not at all), readers that never block
the writer and see a consistent snapshot, and safe read-only access from other processes (a CLI
inspecting the store while the node syncs). Lotus keeps its chain in a key-value store keyed by
CID bytes the same way; here the blocks live in the named sub-database ``blocks`` (key: binary
CID, value: block bytes) and a running total of block bytes in ``meta``, so ``stats`` is O(1).

The environment is exposed (:attr:`LmdbBlockstore.env`) for modules that keep their own named
databases beside the blocks and must write both in one transaction: they use :meth:`open_db`,
:meth:`transact` and :meth:`put_many_keyed_txn`.

Map growth: LMDB refuses writes past its map size with ``MapFullError``. Writes here abort,
double the map and retry; a process whose map another process grew adopts the new size on its
next transaction. Resizing needs every transaction of this process closed, so reads take a
shared guard, resizes an exclusive one, and iteration reads in short chunks rather than holding
one long read transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import lmdb

from store.cid import CID

T = TypeVar("T")

BLOCKS_DB = b"blocks"
META_DB = b"meta"
_BLOCK_BYTES_KEY = b"block_bytes"

DEFAULT_MAP_SIZE = 1 << 30
DEFAULT_MAX_DBS = 16
# Blocks per read transaction while iterating, and the defaults for CAR import batches.
ITERATION_CHUNK = 4096
IMPORT_BATCH_BLOCKS = 20_000
IMPORT_BATCH_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class BlockstoreStats:
    blocks: int
    block_bytes: int
    used_bytes: int
    map_size: int


class _ResizeGuard:
    """Shared for transactions, exclusive for remapping: LMDB must not remap under a reader."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._resizing = False
        self._held = threading.local()

    def acquire_shared(self) -> None:
        # A thread already holding the guard must not queue behind a pending resize: the
        # resize is waiting for that very thread to let go.
        depth = getattr(self._held, "depth", 0)
        with self._cond:
            while self._resizing and not depth:
                self._cond.wait()
            self._active += 1
        self._held.depth = depth + 1

    def release_shared(self) -> None:
        self._held.depth -= 1
        with self._cond:
            self._active -= 1
            if self._active == 0 and self._resizing:
                self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.acquire_shared()
        try:
            yield
        finally:
            self.release_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if getattr(self._held, "depth", 0):
            raise RuntimeError("cannot grow the LMDB map while this thread holds a transaction")
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            while self._active:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._resizing = False
                self._cond.notify_all()


class LmdbBlockstore:
    """Blocks in the ``blocks`` sub-database of an LMDB environment at ``path`` (a directory)."""

    def __init__(
        self,
        path: str | Path,
        map_size: int = DEFAULT_MAP_SIZE,
        *,
        readonly: bool = False,
        max_dbs: int = DEFAULT_MAX_DBS,
        sync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(
            str(self.path),
            map_size=map_size,
            readonly=readonly,
            max_dbs=max_dbs,
            sync=sync,
            metasync=sync,
            readahead=False,
            create=not readonly,
        )
        self._guard = _ResizeGuard()
        self._write_lock = threading.Lock()
        self._writer: int | None = None
        self._dbs: dict[bytes, lmdb._Database] = {}
        self._blocks = self.open_db(BLOCKS_DB)
        self._meta = self.open_db(META_DB)

    # -- environment ----------------------------------------------------------------------

    def open_db(self, name: str | bytes) -> lmdb._Database:
        """The named sub-database ``name`` of this environment (created unless read-only)."""
        key = name.encode() if isinstance(name, str) else name
        db = self._dbs.get(key)
        if db is None:
            with self._guard.shared():
                db = self.env.open_db(key, create=not self.readonly)
            self._dbs[key] = db
        return db

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> LmdbBlockstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _adopt_new_map_size(self) -> None:
        """Another process grew the map: remap to the size it recorded."""
        with self._guard.exclusive():
            self.env.set_mapsize(0)

    def _grow_map(self) -> None:
        with self._guard.exclusive():
            self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def _begin_read(self) -> lmdb.Transaction[bytes]:
        """Begin a read transaction holding the shared guard; :meth:`_end_read` releases both."""
        while True:
            self._guard.acquire_shared()
            try:
                return self.env.begin()
            except lmdb.MapResizedError:
                self._guard.release_shared()
            except BaseException:
                self._guard.release_shared()
                raise
            self._adopt_new_map_size()

    def _end_read(self, txn: lmdb.Transaction[bytes]) -> None:
        try:
            txn.abort()
        finally:
            self._guard.release_shared()

    @contextmanager
    def read_txn(self) -> Iterator[lmdb.Transaction[bytes]]:
        """A read-only snapshot transaction, safe against concurrent map growth.

        Write only after closing it: a write that must grow the map while this thread still
        holds a transaction raises ``RuntimeError`` instead of deadlocking.
        """
        txn = self._begin_read()
        try:
            yield txn
        finally:
            self._end_read(txn)

    def transact(self, body: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        """Run ``body`` in one write transaction and commit it; return what ``body`` returns.

        When the map fills up the transaction is aborted, the map doubled and ``body`` run
        again from the start, so ``body`` must only write through the transaction it is given
        (and must not start another write: LMDB has one writer at a time).
        """
        if self._writer == threading.get_ident():
            raise RuntimeError("nested LMDB write transaction in the same thread")
        with self._write_lock:
            self._writer = threading.get_ident()
            try:
                return self._transact_with_retries(body)
            finally:
                self._writer = None

    def _transact_with_retries(self, body: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        while True:
            with self._guard.shared():
                try:
                    with self.env.begin(write=True) as txn:
                        return body(txn)
                except lmdb.MapFullError:
                    resize = self._grow_map
                except lmdb.MapResizedError:
                    resize = self._adopt_new_map_size
            resize()

    # -- blockstore -----------------------------------------------------------------------

    def get(self, cid: CID) -> bytes | None:
        txn = self._begin_read()
        try:
            return txn.get(cid.to_bytes(), db=self._blocks)
        finally:
            self._end_read(txn)

    def has(self, cid: CID) -> bool:
        txn = self._begin_read()
        try:
            return txn.cursor(db=self._blocks).set_key(cid.to_bytes())
        finally:
            self._end_read(txn)

    def put_keyed(self, cid: CID, data: bytes) -> None:
        self.put_many_keyed(((cid, data),))

    def put_many_keyed(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store every block in one atomic write transaction."""
        batch = list(blocks)
        if batch:
            self.transact(lambda txn: self.put_many_keyed_txn(txn, batch))

    def put_many_keyed_txn(
        self, txn: lmdb.Transaction[bytes], blocks: Iterable[tuple[CID, bytes]]
    ) -> int:
        """Store blocks inside the caller's write transaction; return how many were new.

        A block already present is left as it is (its bytes are the same: the key is its hash).
        """
        added = 0
        added_bytes = 0
        for cid, data in blocks:
            if txn.put(cid.to_bytes(), data, overwrite=False, db=self._blocks):
                added += 1
                added_bytes += len(data)
        if added_bytes:
            total = _read_counter(txn.get(_BLOCK_BYTES_KEY, db=self._meta)) + added_bytes
            txn.put(_BLOCK_BYTES_KEY, total.to_bytes(8, "big"), db=self._meta)
        return added

    def import_car(
        self,
        reader: Iterable[tuple[CID, bytes]],
        *,
        batch_blocks: int = IMPORT_BATCH_BLOCKS,
        batch_bytes: int = IMPORT_BATCH_BYTES,
    ) -> tuple[int, int]:
        """Stream blocks (a :class:`~store.car.CarReader`) in, one transaction per batch.

        Returns how many blocks and block bytes were read. Each batch commits atomically, so
        an interrupted import leaves whole batches behind and can simply be run again.
        """
        count = 0
        total = 0
        batch: list[tuple[CID, bytes]] = []
        pending = 0
        for cid, data in reader:
            batch.append((cid, data))
            pending += len(data)
            count += 1
            total += len(data)
            if len(batch) >= batch_blocks or pending >= batch_bytes:
                self.put_many_keyed(batch)
                batch = []
                pending = 0
        self.put_many_keyed(batch)
        return count, total

    # -- inspection -----------------------------------------------------------------------

    def stats(self) -> BlockstoreStats:
        with self.read_txn() as txn:
            entries = txn.stat(self._blocks)["entries"]
            block_bytes = _read_counter(txn.get(_BLOCK_BYTES_KEY, db=self._meta))
            info = self.env.info()
            page_size = self.env.stat()["psize"]
        return BlockstoreStats(
            blocks=entries,
            block_bytes=block_bytes,
            used_bytes=(info["last_pgno"] + 1) * page_size,
            map_size=info["map_size"],
        )

    def __len__(self) -> int:
        return self.stats().blocks

    def __contains__(self, cid: object) -> bool:
        return isinstance(cid, CID) and self.has(cid)

    def items(self, chunk: int = ITERATION_CHUNK) -> Iterator[tuple[CID, bytes]]:
        """Every ``(cid, bytes)`` in key order, read ``chunk`` blocks per transaction.

        Blocks written during the iteration may or may not be seen.
        """
        start = b""
        while True:
            with self.read_txn() as txn:
                cursor = txn.cursor(db=self._blocks)
                found = cursor.set_range(start) if start else cursor.first()
                rows: list[tuple[bytes, bytes]] = []
                while found and len(rows) < chunk:
                    key, value = cursor.item()
                    if key != start:
                        rows.append((key, value))
                    found = cursor.next()
            if not rows:
                return
            for key, value in rows:
                yield CID.from_bytes(key), value
            start = rows[-1][0]

    def __iter__(self) -> Iterator[CID]:
        for cid, _ in self.items():
            yield cid


def _read_counter(raw: bytes | None) -> int:
    return 0 if raw is None else int.from_bytes(raw, "big")
