"""The node's chain store: block headers, their messages and the tipset index, in one LMDB.

A port of the parts of Lotus ``chain/store`` the node needs (``store.go``: ``PersistBlockHeaders``,
``PutTipSet``, ``LoadTipSet``, ``GetTipsetByHeight``, ``GetHeaviestTipSet``; ``messages.go``:
``MessagesForBlock``; ``chain/sync.go``: the check that a block's ``Messages`` is the MsgMeta
computed from the messages it came with; ``chain/gen/genesis``: importing the genesis CAR).
Blocks live in the :class:`~store.lmdb_blockstore.LmdbBlockstore`; tipsets, heights, head and
execution results in the :class:`~store.chain_index.ChainIndex` beside them, written in the
same transactions.

``tipset_at_height`` follows Lotus's rule for null rounds: walking back from a tipset, a height
with no tipset is answered with the first tipset *after* it, or, when ``prev`` is set, the
tipset before it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import lmdb

from chainsync.chain_types import BlockHeader, ChainTypeError, TipSet, TipSetKey
from chainsync.messages_root import (
    compute_msg_meta,
    load_block_messages,
    message_storage_block,
)
from fvm.message import Message, SignedMessage
from store.blockstore import MemoryBlockstore, get_required
from store.car import CarReader, open_maybe_compressed
from store.chain_index import ChainIndex, ExecutionResult, Mismatch, TipsetMeta
from store.cid import CID
from store.errors import BlockNotFound, FvmNodeError, MalformedInput
from store.lmdb_blockstore import LmdbBlockstore

TIPSET_CACHE_SIZE: Final = 4096


class ChainStoreError(FvmNodeError):
    """A request the chain store cannot answer (unknown tipset, height out of range)."""


class TipSetNotFound(ChainStoreError, KeyError):
    """A tipset whose blocks the store does not hold."""

    def __init__(self, key: TipSetKey, detail: str = "") -> None:
        self.key = key
        super().__init__(f"tipset {key} not found{': ' + detail if detail else ''}")

    def __str__(self) -> str:
        return str(self.args[0])


class MessagesRootMismatch(ChainTypeError):
    """A block whose ``Messages`` link is not the MsgMeta of the messages it came with."""


class GenesisError(MalformedInput):
    """A genesis CAR that does not hold exactly one genesis block at height 0."""


class ChainStore:
    """Headers, messages and the tipset index over one LMDB environment."""

    def __init__(self, blockstore: LmdbBlockstore, index: ChainIndex | None = None) -> None:
        self.blockstore = blockstore
        self.index = ChainIndex(blockstore) if index is None else index
        # Read by the event loop (chain-exchange server, hello) while the sync thread writes.
        self._tipsets: OrderedDict[TipSetKey, TipSet] = OrderedDict()
        self._tipsets_lock = threading.Lock()

    # -- writing ----------------------------------------------------------------------------

    def put_block(
        self,
        header: BlockHeader,
        bls_messages: Sequence[Message],
        secp_messages: Sequence[SignedMessage],
    ) -> CID:
        """Store a block with its messages; refuse it unless ``header.messages`` is their
        MsgMeta. Returns the header's CID."""
        pending = MemoryBlockstore()
        bls_cids = []
        for message in bls_messages:
            cid, data = message_storage_block(message)
            pending.put_keyed(cid, data)
            bls_cids.append(cid)
        secp_cids = []
        for signed in secp_messages:
            cid, data = message_storage_block(signed)
            pending.put_keyed(cid, data)
            secp_cids.append(cid)
        computed = compute_msg_meta(pending, bls_cids, secp_cids)
        if computed != header.messages:
            raise MessagesRootMismatch(
                f"block's Messages is {header.messages}, its messages give {computed}",
                f"block {header.cid()}",
            )
        pending.put_keyed(header.cid(), header.encode())
        self.blockstore.put_many_keyed(pending.items())
        return header.cid()

    def put_tipset(self, tipset: TipSet, weight: int | None = None) -> None:
        """Store the tipset's headers and index it (height, parents, and its chain weight when
        the caller computed it), in one transaction."""
        headers = [(header.cid(), header.encode()) for header in tipset.blocks]
        meta = TipsetMeta(tipset.height, tipset.parents.to_bytes(), weight)
        key = tipset.key.to_bytes()

        def write(txn: lmdb.Transaction[bytes]) -> None:
            self.blockstore.put_many_keyed_txn(txn, headers)
            self.index.put_tipset_txn(txn, key, meta)

        self.blockstore.transact(write)
        self._remember(tipset)

    def set_head(self, tipset: TipSet) -> None:
        """Follow ``tipset`` (already stored with :meth:`put_tipset`)."""
        self.index.set_head(tipset.key.to_bytes())

    def advance_head(
        self,
        tipset: TipSet,
        executed: Sequence[ExecutionResult] = (),
        mismatches: Sequence[Mismatch] = (),
    ) -> None:
        """Record execution results (and mismatches) and follow ``tipset``, atomically."""
        self.index.advance_head(tipset.key.to_bytes(), executed, mismatches)

    def load_genesis(self, car_path: str | Path) -> TipSet:
        """Import a genesis CAR and index its block; it becomes the head of an empty store.

        As Lotus's state manager answers for height 0, the genesis tipset's execution result is
        its own parent state and receipts.
        """
        with open_maybe_compressed(car_path) as stream:
            reader = CarReader(stream, source=str(car_path))
            roots = reader.header.roots
            if len(roots) != 1:
                raise GenesisError(f"a genesis CAR has one root, this one has {len(roots)}")
            self.blockstore.import_car(reader)
        try:
            header = BlockHeader.decode(get_required(self.blockstore, roots[0]), str(roots[0]))
        except BlockNotFound:
            raise GenesisError("the genesis CAR lacks its root block", str(car_path)) from None
        except ChainTypeError as exc:
            raise GenesisError(f"genesis block: {exc.what}", exc.where) from None
        if header.height != 0:
            raise GenesisError(f"genesis block is at height {header.height}", str(roots[0]))
        genesis = TipSet([header])
        self.put_tipset(genesis)
        if self.index.head() is None:
            result = ExecutionResult(
                genesis.key.to_bytes(),
                header.parent_state_root,
                header.parent_message_receipts,
                0,
                0,
            )
            self.advance_head(genesis, [result])
        return genesis

    # -- reading ----------------------------------------------------------------------------

    def get_tipset(self, key: TipSetKey) -> TipSet:
        """The tipset whose blocks ``key`` names (Lotus ``LoadTipSet``)."""
        with self._tipsets_lock:
            cached = self._tipsets.get(key)
            if cached is not None:
                self._tipsets.move_to_end(key)
                return cached
        if key.is_empty():
            raise TipSetNotFound(key, "the empty key names no tipset")
        headers = []
        for cid in key.cids:
            raw = self.blockstore.get(cid)
            if raw is None:
                raise TipSetNotFound(key, f"block {cid} is missing")
            headers.append(BlockHeader.decode(raw, str(cid)))
        tipset = TipSet(headers)
        self._remember(tipset, alias=key)
        return tipset

    def get_block_messages(self, header: BlockHeader) -> tuple[list[Message], list[SignedMessage]]:
        """The block's BLS and secp256k1 messages (Lotus ``MessagesForBlock``)."""
        return load_block_messages(self.blockstore, header.messages)

    def heaviest(self) -> TipSet | None:
        """The head tipset, or None when the store has none yet (Lotus ``GetHeaviestTipSet``)."""
        head = self.index.head()
        return None if head is None else self.get_tipset(TipSetKey.from_bytes(head))

    def genesis(self) -> TipSet:
        keys = self.index.keys_at_height(0)
        if not keys:
            raise ChainStoreError("no genesis tipset is stored")
        return self.get_tipset(TipSetKey.from_bytes(keys[0]))

    def tipset_at_height(
        self, height: int, from_tipset: TipSet | None = None, prev: bool = False
    ) -> TipSet:
        """The tipset at ``height`` on the chain ending at ``from_tipset`` (default: the head).

        For a null round, the first tipset after it, or with ``prev`` the one before it (Lotus
        ``ChainStore.GetTipsetByHeight``).
        """
        if height < 0:
            raise ChainStoreError(f"height {height} is negative")
        start = self.heaviest() if from_tipset is None else from_tipset
        if start is None:
            raise ChainStoreError("no head to walk back from")
        if height > start.height:
            raise ChainStoreError(
                f"height {height} is above the starting tipset's height {start.height}"
            )
        current = start
        while current.height > height:
            parent = self.get_tipset(current.parents)
            if parent.height < height:
                break
            current = parent
        if current.height == height or not prev:
            return current
        return self.get_tipset(current.parents)

    def _remember(self, tipset: TipSet, alias: TipSetKey | None = None) -> None:
        with self._tipsets_lock:
            self._tipsets[tipset.key] = tipset
            self._tipsets.move_to_end(tipset.key)
            if alias is not None and alias != tipset.key:
                self._tipsets[alias] = tipset
            while len(self._tipsets) > TIPSET_CACHE_SIZE:
                self._tipsets.popitem(last=False)
