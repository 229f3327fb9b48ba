"""Import a chain snapshot: a CAR v1 whose roots are the head tipset's block CIDs.

Lotus (``ChainStore.Import`` in ``chain/store/snapshot.go``) and Forest exchange chains this
way: the file holds every block header back to genesis, the messages of recent epochs and the
state trees of recent tipsets. Lotus streams the blocks into its blockstore, follows the
header chain to a height-0 block, then loads the root tipset and makes it the head. This port
does the same with stronger guarantees, because a snapshot is untrusted input and an import of
a mainnet snapshot takes hours:

* The CAR is streamed (:class:`~store.car.CarReader`, which decompresses ``.zst``/``.gz`` and
  checks every block's bytes against its CID), and written to LMDB in batches, one write
  transaction per batch.
* Each batch's transaction also records how far the import got (blocks, decompressed offset)
  under the snapshot's identity (root CIDs and file size) in the ``snapshot_imports`` table.
  Running the import again on the same file re-reads and re-hashes the committed prefix but
  only checks that its blocks are present (writing any that are not), then continues writing.
* The head and the chain index change only at the very end, in one transaction that first
  checks the snapshot: the roots form a tipset, the header chain links from it back to a
  height-0 tipset, the head's parent state root is present, and the genesis is the store's own
  (when the store already has one). A truncated, tampered or incomplete file raises one
  :class:`~store.errors.MalformedInput` naming the byte offset or CID; the head and index stay
  as they were. The blocks already written are left behind: they are content-addressed (their
  keys are their hashes), so they can never be wrong, only unreferenced.

Lotus's newer v2 snapshots (``ExportV2``: one root naming a ``SnapshotMetadata`` block, then F3
data) are recognised and refused with that reason; they are not read here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import lmdb

from chainsync.chain_store import ChainStore
from chainsync.chain_types import BlockHeader, ChainTypeError, TipSet, TipSetKey
from store import dag_cbor
from store.car import CarReader, open_maybe_compressed
from store.chain_index import ExecutionResult, TipsetMeta
from store.cid import CID
from store.errors import MalformedInput
from store.lmdb_blockstore import BLOCKS_DB, IMPORT_BATCH_BLOCKS, IMPORT_BATCH_BYTES

PROGRESS_DB: Final = b"snapshot_imports"


class SnapshotError(MalformedInput):
    """A snapshot whose blocks do not form a chain the node can follow."""


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import stands after a batch: blocks and decompressed bytes read so far (the
    resumed prefix included), write transactions committed by this run."""

    blocks: int
    offset: int
    batches_written: int
    resumed_from: int


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(frozen=True, slots=True)
class ImportResult:
    head: TipSet
    genesis: TipSet
    blocks: int
    """Blocks in the file."""
    block_bytes: int
    new_blocks: int
    """Blocks this run added to the store (present ones are not rewritten)."""
    batches_written: int
    """Write transactions this run committed for blocks."""
    resumed_from: int
    """Blocks an earlier, interrupted run had already committed."""
    tipsets: int
    """Tipsets indexed, head to genesis."""


@dataclass(frozen=True, slots=True)
class _Record:
    """The ``snapshot_imports`` entry of one snapshot file: blocks committed, decompressed
    offset reached, whether the import finished. A record that does not decode counts as no
    record (the import starts over, which is always safe)."""

    blocks: int
    offset: int
    finished: bool

    def encode(self) -> bytes:
        return dag_cbor.encode([self.blocks, self.offset, self.finished])

    @classmethod
    def decode(cls, data: bytes) -> _Record:
        try:
            value = dag_cbor.decode(data, "snapshot import record")
        except MalformedInput:
            return cls(0, 0, False)
        if (
            type(value) is not list
            or len(value) != 3
            or type(value[0]) is not int
            or type(value[1]) is not int
            or type(value[2]) is not bool
        ):
            return cls(0, 0, False)
        return cls(value[0], value[1], value[2])


def snapshot_identity(roots: tuple[CID, ...], file_size: int) -> bytes:
    """The key an import's progress is kept under: the root CIDs and the file's size."""
    digest = hashlib.sha256()
    for root in roots:
        digest.update(root.to_bytes())
    digest.update(file_size.to_bytes(8, "big"))
    return digest.digest()


def import_snapshot(
    path: str | Path,
    chain_store: ChainStore,
    progress: ProgressCallback | None = None,
    *,
    batch_blocks: int = IMPORT_BATCH_BLOCKS,
    batch_bytes: int = IMPORT_BATCH_BYTES,
) -> ImportResult:
    """Stream the snapshot at ``path`` into ``chain_store`` and make its tipset the head.

    ``progress`` is called after every batch (an exception it raises stops the import; what
    was committed stays and a later call resumes). Raises a
    :class:`~store.errors.MalformedInput` (``CARError``, ``BlockHashMismatch`` or
    :class:`SnapshotError`) for a file that is not a valid snapshot, leaving head and index
    untouched.
    """
    if batch_blocks < 1 or batch_bytes < 1:
        raise ValueError("batches must hold at least one block and one byte")
    path = Path(path)
    blockstore = chain_store.blockstore
    progress_db = blockstore.open_db(PROGRESS_DB)
    file_size = path.stat().st_size
    with open_maybe_compressed(path) as stream:
        reader = CarReader(stream, source=str(path))
        roots = reader.header.roots
        if not roots:
            raise SnapshotError("the snapshot's CAR header names no roots", str(path))
        identity = snapshot_identity(roots, file_size)
        with blockstore.read_txn() as txn:
            raw = txn.get(identity, db=progress_db)
        resume_at = 0 if raw is None else _Record.decode(raw).blocks
        streamed = _stream_blocks(
            reader, chain_store, identity, resume_at, progress, batch_blocks, batch_bytes, str(path)
        )
    head, genesis, tipsets = _finish(chain_store, identity, roots, streamed, str(path))
    return ImportResult(
        head=head,
        genesis=genesis,
        blocks=streamed.blocks,
        block_bytes=streamed.block_bytes,
        new_blocks=streamed.new_blocks,
        batches_written=streamed.batches_written,
        resumed_from=min(resume_at, streamed.blocks),
        tipsets=tipsets,
    )


@dataclass(slots=True)
class _Streamed:
    blocks: int = 0
    block_bytes: int = 0
    offset: int = 0
    new_blocks: int = 0
    batches_written: int = 0


def _batches(
    reader: CarReader, batch_blocks: int, batch_bytes: int
) -> Iterator[list[tuple[CID, bytes]]]:
    batch: list[tuple[CID, bytes]] = []
    pending = 0
    for cid, data in reader:
        batch.append((cid, data))
        pending += len(data)
        if len(batch) >= batch_blocks or pending >= batch_bytes:
            yield batch
            batch = []
            pending = 0
    if batch:
        yield batch


def _stream_blocks(
    reader: CarReader,
    chain_store: ChainStore,
    identity: bytes,
    resume_at: int,
    progress: ProgressCallback | None,
    batch_blocks: int,
    batch_bytes: int,
    source: str,
) -> _Streamed:
    """Write the file's blocks batch by batch, each batch with the progress record."""
    blockstore = chain_store.blockstore
    blocks_db = blockstore.open_db(BLOCKS_DB)
    done = _Streamed()
    roots = reader.header.roots
    root_headers: dict[CID, BlockHeader] = {}
    for batch in _batches(reader, batch_blocks, batch_bytes):
        if len(root_headers) < len(roots):
            _collect_roots(batch, roots, root_headers, reader.offset, source)
        done.blocks += len(batch)
        done.block_bytes += sum(len(data) for _, data in batch)
        done.offset = reader.offset
        to_write = batch
        if done.blocks <= resume_at:
            # Committed by an earlier run: write only what is (unexpectedly) absent.
            with blockstore.read_txn() as txn:
                to_write = [
                    block for block in batch if txn.get(block[0].to_bytes(), db=blocks_db) is None
                ]
        if to_write:
            record = _Record(max(done.blocks, resume_at), done.offset, False)
            done.new_blocks += _write_batch(chain_store, to_write, identity, record)
            done.batches_written += 1
        if progress is not None:
            progress(ImportProgress(done.blocks, done.offset, done.batches_written, resume_at))
    return done


def _write_batch(
    chain_store: ChainStore, blocks: list[tuple[CID, bytes]], identity: bytes, record: _Record
) -> int:
    """Store ``blocks`` and the progress record in one transaction; return how many were new."""
    blockstore = chain_store.blockstore
    progress_db = blockstore.open_db(PROGRESS_DB)
    encoded = record.encode()

    def write(txn: lmdb.Transaction[bytes]) -> int:
        added = blockstore.put_many_keyed_txn(txn, blocks)
        txn.put(identity, encoded, db=progress_db)
        return added

    return blockstore.transact(write)


def _collect_roots(
    batch: list[tuple[CID, bytes]],
    roots: tuple[CID, ...],
    found: dict[CID, BlockHeader],
    offset: int,
    source: str,
) -> None:
    """Decode the root blocks as they stream by; once all are seen, check they form a tipset
    (so a file with bad roots fails before hours of writing)."""
    where = f"{source} before offset {offset}"
    for cid, data in batch:
        if cid in roots and cid not in found:
            if len(roots) == 1 and _is_v2_metadata(data):
                raise SnapshotError(
                    f"root {cid} is a v2 snapshot's metadata block (Lotus ExportV2); only v1 "
                    "snapshots, whose roots are the head tipset's blocks, are read",
                    where,
                )
            found[cid] = _decode_header(cid, data, "root block", where)
    if len(found) == len(set(roots)):
        _tipset(list(found.values()), TipSetKey(roots), "root block", where)


def _finish(
    chain_store: ChainStore,
    identity: bytes,
    roots: tuple[CID, ...],
    streamed: _Streamed,
    source: str,
) -> tuple[TipSet, TipSet, int]:
    """Check the chain the snapshot holds; index it and move the head, in one transaction."""
    blockstore = chain_store.blockstore
    index = chain_store.index
    blocks_db = blockstore.open_db(BLOCKS_DB)
    progress_db = blockstore.open_db(PROGRESS_DB)
    known_genesis = index.keys_at_height(0)

    def header(txn: lmdb.Transaction[bytes], cid: CID, what: str) -> BlockHeader:
        raw = txn.get(cid.to_bytes(), db=blocks_db)
        if raw is None:
            raise SnapshotError(f"{what} {cid} is missing", source)
        return _decode_header(cid, raw, what, source)

    def tipset(txn: lmdb.Transaction[bytes], key: TipSetKey, what: str) -> TipSet:
        return _tipset([header(txn, cid, what) for cid in key.cids], key, what, source)

    def body(txn: lmdb.Transaction[bytes]) -> tuple[TipSet, TipSet, int]:
        head = tipset(txn, TipSetKey(roots), "root block")
        if txn.get(head.parent_state.to_bytes(), db=blocks_db) is None:
            raise SnapshotError(
                f"state root {head.parent_state} of the head tipset (height {head.height}) "
                "is missing",
                source,
            )
        current = head
        count = 1
        index.put_tipset_txn(txn, current.key.to_bytes(), _meta(current))
        while current.height > 0:
            what = f"parent header (of the tipset at height {current.height})"
            parent = tipset(txn, current.parents, what)
            if parent.height >= current.height:
                raise SnapshotError(
                    f"tipset at height {parent.height} is the parent of one at height "
                    f"{current.height}",
                    str(parent.cids[0]),
                )
            index.put_tipset_txn(txn, parent.key.to_bytes(), _meta(parent))
            current = parent
            count += 1
        genesis = current
        key = genesis.key.to_bytes()
        if known_genesis and key not in known_genesis:
            raise SnapshotError(
                f"the snapshot's genesis {genesis.key} is not this store's genesis", source
            )
        start = ExecutionResult(key, genesis.parent_state, genesis.parent_message_receipts, 0, 0)
        index.advance_head_txn(txn, head.key.to_bytes(), [start])
        txn.put(identity, _Record(streamed.blocks, streamed.offset, True).encode(), db=progress_db)
        return head, genesis, count

    return blockstore.transact(body)


def _is_v2_metadata(data: bytes) -> bool:
    """Whether a block is Lotus's ``SnapshotMetadata`` ``[version 2, head key, F3 data]``."""
    try:
        value = dag_cbor.decode_lenient(data)
    except MalformedInput:
        return False
    return type(value) is list and len(value) == 3 and value[0] == 2 and type(value[1]) is list


def _decode_header(cid: CID, raw: bytes, what: str, where: str) -> BlockHeader:
    try:
        return BlockHeader.decode(raw, str(cid))
    except ChainTypeError as exc:
        raise SnapshotError(f"{what} {cid} is not a block header: {exc.what}", where) from None


def _tipset(headers: list[BlockHeader], key: TipSetKey, what: str, where: str) -> TipSet:
    try:
        return TipSet(headers)
    except ChainTypeError as exc:
        raise SnapshotError(f"{what}s {key} do not form a tipset: {exc.what}", where) from None


def _meta(tipset: TipSet) -> TipsetMeta:
    return TipsetMeta(tipset.height, tipset.parents.to_bytes())
