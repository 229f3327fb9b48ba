"""The chain index: which tipsets the node knows, the head it follows, what it computed.

Lotus keeps the same facts in its metadata datastore beside the blocks (``chain/store/store.go``:
the ``head`` key holding the heaviest tipset's key, the tipset-by-height index of
``chain/index``, and the state manager's cache of computed state per tipset). Here they are
named sub-databases of the node's :class:`~store.lmdb_blockstore.LmdbBlockstore` environment,
so that one LMDB write transaction can store a tipset's blocks, its index entries, the results
of executing it and the move of the head together: a node killed at any instant restarts at a
head whose tipset, ancestry entries and execution results are all on disk.

Tables (keys and values are bytes; this module knows nothing of chain types and deals in
tipset-key bytes, CIDs and integers):

* ``chain_tipsets``: tipset key bytes → DAG-CBOR ``[height, parent key bytes, weight]``, the
  weight being the tipset's chain weight as big-endian bytes, or null while nobody computed it;
* ``chain_heights``: 8-byte big-endian height ‖ tipset key bytes → empty (every tipset seen at a
  height, forks included, found by prefix scan);
* ``chain_head``: ``head`` → key bytes of the tipset the node follows;
* ``chain_results``: tipset key bytes → ``[state root, receipts root, gas used, messages
  applied]``, what executing that tipset's messages produced;
* ``chain_mismatches``: tipset key bytes → ``[height, expected state root, computed state root,
  expected receipts root, computed receipts root]``, kept for inspection when a child tipset's
  header disagreed with what the node computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import lmdb

from store import dag_cbor
from store.cid import CID
from store.errors import MalformedInput
from store.lmdb_blockstore import LmdbBlockstore

TIPSETS_DB: Final = b"chain_tipsets"
HEIGHTS_DB: Final = b"chain_heights"
HEAD_DB: Final = b"chain_head"
RESULTS_DB: Final = b"chain_results"
MISMATCHES_DB: Final = b"chain_mismatches"
HEAD_KEY: Final = b"head"

HEIGHT_BYTES: Final = 8
MAX_U64: Final = (1 << 64) - 1
MAX_I64: Final = (1 << 63) - 1


class ChainIndexError(MalformedInput):
    """An index record that does not decode, or an update the index refuses."""


@dataclass(frozen=True, slots=True)
class TipsetMeta:
    """What the index records of a tipset: its height, its parent's key, its chain weight."""

    height: int
    parents: bytes
    weight: int | None = None

    def encode(self) -> bytes:
        weight = None if self.weight is None else _uint_bytes(self.weight, "weight")
        return dag_cbor.encode([_height(self.height), bytes(self.parents), weight])

    @classmethod
    def decode(cls, data: bytes, where: str) -> TipsetMeta:
        value = _decode(data, where)
        if type(value) is not list or len(value) != 3:
            raise ChainIndexError("tipset record must be [height, parents, weight]", where)
        height, parents, weight = value
        if type(height) is not int or not 0 <= height <= MAX_I64:
            raise ChainIndexError("tipset record height must be a non-negative int64", where)
        if type(parents) is not bytes:
            raise ChainIndexError("tipset record parents must be bytes", where)
        if weight is not None and type(weight) is not bytes:
            raise ChainIndexError("tipset record weight must be bytes or null", where)
        return cls(height, parents, None if weight is None else int.from_bytes(weight, "big"))


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What executing a tipset's messages produced (its child's expected parent roots)."""

    key: bytes
    state_root: CID
    receipts_root: CID
    gas_used: int
    messages_applied: int

    def encode(self) -> bytes:
        _check_u64(self.gas_used, "gas used")
        _check_u64(self.messages_applied, "messages applied")
        return dag_cbor.encode(
            [self.state_root, self.receipts_root, self.gas_used, self.messages_applied]
        )

    @classmethod
    def decode(cls, key: bytes, data: bytes, where: str) -> ExecutionResult:
        value = _decode(data, where)
        if type(value) is not list or len(value) != 4:
            raise ChainIndexError(
                "execution record must be [state root, receipts root, gas, messages]", where
            )
        state_root, receipts_root, gas_used, applied = value
        if type(state_root) is not CID or type(receipts_root) is not CID:
            raise ChainIndexError("execution record roots must be CIDs", where)
        if type(gas_used) is not int or type(applied) is not int:
            raise ChainIndexError("execution record counts must be integers", where)
        return cls(key, state_root, receipts_root, gas_used, applied)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A tipset whose computed roots differ from those its child's header claims."""

    key: bytes
    height: int
    expected_state_root: CID
    computed_state_root: CID
    expected_receipts_root: CID
    computed_receipts_root: CID

    def encode(self) -> bytes:
        return dag_cbor.encode(
            [
                _height(self.height),
                self.expected_state_root,
                self.computed_state_root,
                self.expected_receipts_root,
                self.computed_receipts_root,
            ]
        )

    @classmethod
    def decode(cls, key: bytes, data: bytes, where: str) -> Mismatch:
        value = _decode(data, where)
        if type(value) is not list or len(value) != 5:
            raise ChainIndexError("mismatch record must have 5 fields", where)
        height, *roots = value
        if type(height) is not int or any(type(root) is not CID for root in roots):
            raise ChainIndexError("mismatch record must be [height, four CIDs]", where)
        return cls(key, height, roots[0], roots[1], roots[2], roots[3])


class ChainIndex:
    """The chain's index tables inside ``blockstore``'s LMDB environment."""

    def __init__(self, blockstore: LmdbBlockstore) -> None:
        self.blockstore = blockstore
        self._tipsets = blockstore.open_db(TIPSETS_DB)
        self._heights = blockstore.open_db(HEIGHTS_DB)
        self._head = blockstore.open_db(HEAD_DB)
        self._results = blockstore.open_db(RESULTS_DB)
        self._mismatches = blockstore.open_db(MISMATCHES_DB)

    # -- writes inside a caller's transaction ----------------------------------------------

    def put_tipset_txn(self, txn: lmdb.Transaction[bytes], key: bytes, meta: TipsetMeta) -> None:
        """Record a tipset (and its height entry) in the caller's write transaction.

        A tipset already recorded keeps its entry, except that a known weight replaces an
        unknown one.
        """
        if not key:
            raise ChainIndexError("the empty tipset key names no tipset")
        existing = txn.get(key, db=self._tipsets)
        if existing is not None:
            old = TipsetMeta.decode(existing, _where(key))
            if old.weight is not None or meta.weight is None:
                return
        txn.put(key, meta.encode(), db=self._tipsets)
        txn.put(_height_key(meta.height) + key, b"", db=self._heights)

    def set_head_txn(self, txn: lmdb.Transaction[bytes], key: bytes) -> None:
        """Make ``key`` the head; it must name a recorded tipset."""
        if txn.get(key, db=self._tipsets) is None:
            raise ChainIndexError("cannot make an unknown tipset the head", _where(key))
        txn.put(HEAD_KEY, key, db=self._head)

    def advance_head_txn(
        self,
        txn: lmdb.Transaction[bytes],
        new_head: bytes,
        executed: Sequence[ExecutionResult] = (),
        mismatches: Sequence[Mismatch] = (),
    ) -> None:
        """Write execution results and mismatch records, then move the head."""
        for result in executed:
            if txn.get(result.key, db=self._tipsets) is None:
                raise ChainIndexError("execution result for an unknown tipset", _where(result.key))
            txn.put(result.key, result.encode(), db=self._results)
        for mismatch in mismatches:
            txn.put(mismatch.key, mismatch.encode(), db=self._mismatches)
        self.set_head_txn(txn, new_head)

    # -- atomic updates ---------------------------------------------------------------------

    def put_tipset(self, key: bytes, meta: TipsetMeta) -> None:
        self.blockstore.transact(lambda txn: self.put_tipset_txn(txn, key, meta))

    def set_head(self, key: bytes) -> None:
        self.blockstore.transact(lambda txn: self.set_head_txn(txn, key))

    def advance_head(
        self,
        new_head: bytes,
        executed: Sequence[ExecutionResult] = (),
        mismatches: Sequence[Mismatch] = (),
    ) -> None:
        """Record ``executed`` (and ``mismatches``) and move the head, all in one transaction:
        after a crash either every part is on disk or none is."""
        batch = list(executed)
        found = list(mismatches)
        self.blockstore.transact(lambda txn: self.advance_head_txn(txn, new_head, batch, found))

    def record_mismatch(self, mismatch: Mismatch) -> None:
        self.blockstore.transact(
            lambda txn: txn.put(mismatch.key, mismatch.encode(), db=self._mismatches)
        )

    # -- reads ------------------------------------------------------------------------------

    def head(self) -> bytes | None:
        """The head tipset's key bytes, or None before any head was set."""
        with self.blockstore.read_txn() as txn:
            return txn.get(HEAD_KEY, db=self._head)

    def tipset_meta(self, key: bytes) -> TipsetMeta | None:
        with self.blockstore.read_txn() as txn:
            raw = txn.get(key, db=self._tipsets)
        return None if raw is None else TipsetMeta.decode(raw, _where(key))

    def keys_at_height(self, height: int) -> list[bytes]:
        """Every recorded tipset key at ``height``, in byte order."""
        prefix = _height_key(height)
        keys: list[bytes] = []
        with self.blockstore.read_txn() as txn:
            cursor = txn.cursor(db=self._heights)
            found = cursor.set_range(prefix)
            while found:
                entry = cursor.key()
                if not entry.startswith(prefix):
                    break
                keys.append(entry[HEIGHT_BYTES:])
                found = cursor.next()
        return keys

    def max_height(self) -> int | None:
        """The greatest height any recorded tipset has, or None when none is recorded."""
        with self.blockstore.read_txn() as txn:
            cursor = txn.cursor(db=self._heights)
            if not cursor.last():
                return None
            return int.from_bytes(cursor.key()[:HEIGHT_BYTES], "big")

    def execution_result(self, key: bytes) -> ExecutionResult | None:
        with self.blockstore.read_txn() as txn:
            raw = txn.get(key, db=self._results)
        return None if raw is None else ExecutionResult.decode(key, raw, _where(key))

    def mismatches(self) -> list[Mismatch]:
        """Every recorded mismatch, by tipset key bytes."""
        with self.blockstore.read_txn() as txn:
            rows = list(txn.cursor(db=self._mismatches).iternext(keys=True, values=True))
        return [Mismatch.decode(key, value, _where(key)) for key, value in rows]


def _decode(data: bytes, where: str) -> Any:
    try:
        return dag_cbor.decode(data, where)
    except MalformedInput as exc:
        raise ChainIndexError(f"corrupt index record: {exc.what}", where) from None


def _where(key: bytes) -> str:
    return f"chain index entry {key[:40].hex()}{'...' if len(key) > 40 else ''}"


def _height(height: int) -> int:
    if type(height) is not int or not 0 <= height <= MAX_I64:
        raise ChainIndexError(f"height {height!r} is not a non-negative int64")
    return height


def _height_key(height: int) -> bytes:
    return _height(height).to_bytes(HEIGHT_BYTES, "big")


def _check_u64(value: int, name: str) -> None:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise ChainIndexError(f"{name} {value!r} is not an unsigned 64-bit integer")


def _uint_bytes(value: int, name: str) -> bytes:
    if type(value) is not int or value < 0:
        raise ChainIndexError(f"{name} {value!r} is not a non-negative integer")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
