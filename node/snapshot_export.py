"""Export a chain snapshot: the CAR v1 Lotus and Forest exchange.

Follows Lotus ``ChainStore.ExportV1`` and ``WalkSnapshot`` (``chain/store/snapshot.go``):

* the CAR header's roots are the exported tipset's block CIDs;
* block headers are walked breadth-first from those roots through their parents down to
  genesis, and every header is written;
* for a header at height ``h`` with ``h > head - state_roots`` (and, unless
  ``skip_old_messages`` is off, only then) its messages are written: the MsgMeta and
  everything it links to (the two message-CID AMTs and the messages);
* for such a header, and for the genesis header whatever its height, the parent state tree is
  written: the state root and every block reachable from it through DAG-CBOR links;
* the genesis header's parents (the network's "genesis template" block) are written, not
  walked;
* ``ExportV1`` passes ``skipMsgReceipts``, so receipts are not written unless asked for
  (``include_receipts``; then the receipts AMT is walked like ExportRange's receipt task);
* links are followed only out of DAG-CBOR blocks; blocks are written only when their codec is
  DAG-CBOR, CBOR or raw (so raw actor code blocks reachable from the state *are* written, as
  in Lotus), never when their multihash is the identity (their bytes are in the CID), and each
  CID once.

A block the walk needs and the store lacks stops the export with :class:`SnapshotExportError`
naming it. The file is written beside its destination and renamed into place when complete;
a name ending in ``.zst`` gets zstd compression.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import zstandard

from chainsync.chain_store import ChainStore, ChainStoreError
from chainsync.chain_types import BlockHeader, ChainTypeError, TipSet
from store import dag_cbor
from store.car import CarWriter
from store.cid import CBOR, CID, DAG_CBOR, IDENTITY, RAW
from store.errors import FvmNodeError, MalformedInput

# Lotus's policy.ChainFinality: the CLI refuses fewer recent state roots than this.
DEFAULT_STATE_ROOTS: Final = 900
EXPORTED_CODECS: Final = frozenset({DAG_CBOR, CBOR, RAW})
ZSTD_LEVEL: Final = 3
PROGRESS_EVERY: Final = 10_000


class SnapshotExportError(FvmNodeError):
    """An export that cannot be made: unknown tipset, or a block the walk needs is missing."""


@dataclass(frozen=True, slots=True)
class ExportProgress:
    blocks: int
    block_bytes: int
    lowest_height: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    head: TipSet
    blocks: int
    block_bytes: int
    headers: int
    state_roots: int
    """Distinct parent state roots whose trees were written (genesis's included)."""


def export_snapshot(
    chain_store: ChainStore,
    out_path: str | Path,
    tipset: TipSet | int | None = None,
    state_roots: int = DEFAULT_STATE_ROOTS,
    *,
    skip_old_messages: bool = True,
    include_receipts: bool = False,
    progress: Callable[[ExportProgress], None] | None = None,
) -> ExportResult:
    """Write the chain ending at ``tipset`` (the head when None; an epoch picks the tipset at
    or, for a null round, before it on the head's chain) to ``out_path``.

    The last ``state_roots`` epochs (tipsets with height > head height - ``state_roots``) get
    their parent state trees and messages; older tipsets only their headers (all their
    messages too when ``skip_old_messages`` is False).
    """
    if state_roots < 1:
        raise SnapshotExportError(
            f"state_roots must be at least 1 (got {state_roots}): the head's state is needed"
        )
    head = _resolve_tipset(chain_store, tipset)
    out = Path(out_path)
    partial = out.with_name(out.name + ".partial")
    walk = _SnapshotWalk(chain_store, head, state_roots, skip_old_messages, include_receipts)
    try:
        with partial.open("wb") as raw:
            compressor = (
                zstandard.ZstdCompressor(level=ZSTD_LEVEL) if out.name.endswith(".zst") else None
            )
            sink: IO[bytes] = (
                raw if compressor is None else compressor.stream_writer(raw, closefd=False)
            )
            writer = CarWriter(sink, head.cids)
            for cid, data in walk.blocks():
                writer.write(cid, data)
                if progress is not None and walk.blocks_written % PROGRESS_EVERY == 0:
                    progress(ExportProgress(walk.blocks_written, walk.bytes_written, walk.lowest))
            if compressor is not None:
                sink.close()
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    if progress is not None:
        progress(ExportProgress(walk.blocks_written, walk.bytes_written, walk.lowest))
    return ExportResult(
        path=out,
        head=head,
        blocks=walk.blocks_written,
        block_bytes=walk.bytes_written,
        headers=walk.headers,
        state_roots=walk.state_trees,
    )


def _resolve_tipset(chain_store: ChainStore, tipset: TipSet | int | None) -> TipSet:
    if isinstance(tipset, TipSet):
        return tipset
    try:
        head = chain_store.heaviest()
        if head is None:
            raise SnapshotExportError("the store has no head to export")
        if tipset is None:
            return head
        return chain_store.tipset_at_height(tipset, head, prev=True)
    except ChainStoreError as exc:
        raise SnapshotExportError(f"cannot pick the tipset to export: {exc}") from None


class _SnapshotWalk:
    """Lotus ``WalkSnapshot``: headers breadth-first, recent messages and state depth-first."""

    def __init__(
        self,
        chain_store: ChainStore,
        head: TipSet,
        state_roots: int,
        skip_old_messages: bool,
        include_receipts: bool,
    ) -> None:
        self._store = chain_store.blockstore
        self._head = head
        self._recent_above = head.height - state_roots
        self._skip_old_messages = skip_old_messages
        self._include_receipts = include_receipts
        self._seen: set[bytes] = set()  # written (or deliberately skipped) CIDs
        self._walked: set[bytes] = set()  # CIDs whose links were (or are being) followed
        self.blocks_written = 0
        self.bytes_written = 0
        self.headers = 0
        self._state_roots: set[bytes] = set()
        self.lowest = head.height

    @property
    def state_trees(self) -> int:
        """Distinct parent state roots the walk wrote the trees of."""
        return len(self._state_roots)

    def blocks(self) -> Iterator[tuple[CID, bytes]]:
        queue: deque[CID] = deque(self._head.cids)
        while queue:
            cid = queue.popleft()
            key = cid.to_bytes()
            if key in self._seen:
                continue
            self._seen.add(key)
            data = self._get(cid, "block header")
            yield self._written(cid, data)
            self.headers += 1
            try:
                header = BlockHeader.decode(data, str(cid))
            except ChainTypeError as exc:
                raise SnapshotExportError(f"stored header {cid} does not decode: {exc}") from None
            self.lowest = min(self.lowest, header.height)
            if header.height > 0:
                queue.extend(header.parents)
            yield from self._header_dags(header)

    def _header_dags(self, header: BlockHeader) -> Iterator[tuple[CID, bytes]]:
        recent = header.height > self._recent_above
        where = f"height {header.height}"
        if recent or not self._skip_old_messages:
            yield from self._emit(self._recurse(header.messages, f"messages at {where}"))
        if header.height == 0:
            yield from self._emit((parent, None) for parent in header.parents)
        if recent or header.height == 0:
            self._state_roots.add(header.parent_state_root.to_bytes())
            yield from self._emit(self._recurse(header.parent_state_root, f"state at {where}"))
            if self._include_receipts:
                receipts = self._recurse(header.parent_message_receipts, f"receipts at {where}")
                yield from self._emit(receipts)

    def _emit(self, blocks: Iterator[tuple[CID, bytes | None]]) -> Iterator[tuple[CID, bytes]]:
        """Write each CID not written before, skipping identity hashes and other codecs; use
        the bytes the walk already read when it has them."""
        for cid, data in blocks:
            key = cid.to_bytes()
            if key in self._seen:
                continue
            self._seen.add(key)
            if cid.mh_code == IDENTITY or cid.codec not in EXPORTED_CODECS:
                continue
            yield self._written(cid, self._get(cid, "block") if data is None else data)

    def _recurse(self, root: CID, what: str) -> Iterator[tuple[CID, bytes | None]]:
        """``root`` and every CID reachable from it through DAG-CBOR blocks not walked before,
        depth-first in link order (Lotus ``recurseLinks``), with the bytes of the DAG-CBOR
        ones (read to find their links)."""
        if root.to_bytes() in self._walked:
            return
        self._walked.add(root.to_bytes())
        if root.codec != DAG_CBOR:
            yield root, None
            return
        data = self._read(root, what)
        yield root, data
        stack = [iter(self._links(root, data, what))]
        while stack:
            for link in stack[-1]:
                link_key = link.to_bytes()
                if link_key in self._walked:
                    continue
                self._walked.add(link_key)
                if link.codec != DAG_CBOR:
                    yield link, None
                    continue
                data = self._read(link, what)
                yield link, data
                stack.append(iter(self._links(link, data, what)))
                break
            else:
                stack.pop()

    def _read(self, cid: CID, what: str) -> bytes:
        return cid.digest if cid.mh_code == IDENTITY else self._get(cid, f"block of the {what}")

    @staticmethod
    def _links(cid: CID, data: bytes, what: str) -> list[CID]:
        try:
            return dag_cbor.links(dag_cbor.decode_lenient(data, str(cid)))
        except MalformedInput as exc:
            raise SnapshotExportError(f"block {cid} of the {what} is not CBOR: {exc}") from None

    def _get(self, cid: CID, what: str) -> bytes:
        data = self._store.get(cid)
        if data is None:
            raise SnapshotExportError(f"{what} {cid} is missing from the store")
        return data

    def _written(self, cid: CID, data: bytes) -> tuple[CID, bytes]:
        self.blocks_written += 1
        self.bytes_written += len(data)
        return cid, data
