"""The blockstore interface and the in-memory implementation.

A blockstore maps CIDs to block bytes. ``put`` computes the CID (blake2b-256 over DAG-CBOR by
default, as Filecoin does); ``put_keyed`` stores bytes under a CID the caller already has. Other
implementations: :mod:`store.buffered_blockstore` (ref-fvm's write-back overlay) and
:mod:`store.lmdb_blockstore` (the node's persistent store).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from store.cid import BLAKE2B_256, CID, DAG_CBOR, IDENTITY
from store.errors import BlockNotFound


@runtime_checkable
class Blockstore(Protocol):
    """What every store of IPLD blocks offers."""

    def get(self, cid: CID) -> bytes | None:
        """The block's bytes, or None when absent."""

    def has(self, cid: CID) -> bool: ...

    def put_keyed(self, cid: CID, data: bytes) -> None:
        """Store ``data`` under ``cid`` (the caller vouches that they match)."""

    def put_many_keyed(self, blocks: Iterable[tuple[CID, bytes]]) -> None: ...


def put(store: Blockstore, data: bytes, codec: int = DAG_CBOR, mh_code: int = BLAKE2B_256) -> CID:
    """Hash ``data``, store it, and return its CID."""
    cid = CID.hash_of(data, codec, mh_code)
    store.put_keyed(cid, data)
    return cid


def get_required(store: Blockstore, cid: CID) -> bytes:
    """The block's bytes; identity CIDs are answered from the CID itself."""
    if cid.mh_code == IDENTITY:
        return cid.digest
    data = store.get(cid)
    if data is None:
        raise BlockNotFound(cid)
    return data


class MemoryBlockstore:
    """A dict of blocks: tests, vectors, and scratch state."""

    def __init__(self, blocks: Iterable[tuple[CID, bytes]] = ()) -> None:
        self._blocks: dict[CID, bytes] = dict(blocks)

    def get(self, cid: CID) -> bytes | None:
        return self._blocks.get(cid)

    def has(self, cid: CID) -> bool:
        return cid in self._blocks

    def put_keyed(self, cid: CID, data: bytes) -> None:
        self._blocks[cid] = data

    def put_many_keyed(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._blocks.update(blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[CID]:
        return iter(self._blocks)

    def items(self) -> Iterator[tuple[CID, bytes]]:
        return iter(self._blocks.items())
