"""The chain index: tipsets by key and height, the head, execution results, mismatches — and
that updates meant to land together land together, across a crash and a reopen."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.chain_index import (
    TIPSETS_DB,
    ChainIndex,
    ChainIndexError,
    ExecutionResult,
    Mismatch,
    TipsetMeta,
)
from store.cid import CID
from store.lmdb_blockstore import LmdbBlockstore


def key(n: int) -> bytes:
    """Tipset key bytes: one block CID derived from ``n``."""
    return CID.hash_of(n.to_bytes(8, "big")).to_bytes()


def root(n: int) -> CID:
    return CID.hash_of(b"root" + n.to_bytes(8, "big"))


def result(n: int, gas: int = 1000) -> ExecutionResult:
    return ExecutionResult(key(n), root(n), root(n + 1000), gas, n)


def open_index(path: Path) -> tuple[LmdbBlockstore, ChainIndex]:
    blockstore = LmdbBlockstore(path, map_size=1 << 22)
    return blockstore, ChainIndex(blockstore)


def test_tipsets_are_found_by_key_and_every_fork_by_height(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    index.put_tipset(key(0), TipsetMeta(0, b"", 0))
    index.put_tipset(key(1), TipsetMeta(1, key(0), 10))
    index.put_tipset(key(2), TipsetMeta(1, key(0)))
    index.put_tipset(key(3), TipsetMeta(300, key(1), 1 << 80))

    assert index.tipset_meta(key(1)) == TipsetMeta(1, key(0), 10)
    assert index.tipset_meta(key(2)) == TipsetMeta(1, key(0), None)
    assert index.tipset_meta(key(3)) == TipsetMeta(300, key(1), 1 << 80)
    assert index.tipset_meta(key(9)) is None
    assert index.keys_at_height(1) == sorted([key(1), key(2)])
    assert index.keys_at_height(0) == [key(0)]
    assert index.keys_at_height(2) == []
    assert index.max_height() == 300
    blockstore.close()


def test_a_known_weight_replaces_an_unknown_one_but_not_the_reverse(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    index.put_tipset(key(1), TipsetMeta(1, key(0)))
    index.put_tipset(key(1), TipsetMeta(1, key(0), 77))
    assert index.tipset_meta(key(1)) == TipsetMeta(1, key(0), 77)
    index.put_tipset(key(1), TipsetMeta(1, key(0)))
    index.put_tipset(key(1), TipsetMeta(1, key(0), 5))
    assert index.tipset_meta(key(1)) == TipsetMeta(1, key(0), 77)
    blockstore.close()


def test_the_head_and_results_survive_reopening_the_environment(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    assert index.head() is None
    for n in range(3):
        index.put_tipset(key(n), TipsetMeta(n, key(n - 1) if n else b""))
    index.advance_head(key(2), [result(0), result(1)])
    blockstore.close()

    blockstore, index = open_index(tmp_path)
    assert index.head() == key(2)
    assert index.execution_result(key(1)) == result(1)
    assert index.execution_result(key(0)) == ExecutionResult(key(0), root(0), root(1000), 1000, 0)
    assert index.execution_result(key(2)) is None
    blockstore.close()


def test_a_crash_inside_the_transaction_leaves_nothing_of_it(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    index.put_tipset(key(0), TipsetMeta(0, b""))
    index.advance_head(key(0), [result(0)])

    def crash_midway(txn: lmdb.Transaction[bytes]) -> None:
        index.put_tipset_txn(txn, key(1), TipsetMeta(1, key(0)))
        index.advance_head_txn(txn, key(1), [result(1)], [mismatch(1)])
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        blockstore.transact(crash_midway)
    blockstore.close()

    blockstore, index = open_index(tmp_path)
    assert index.head() == key(0)
    assert index.tipset_meta(key(1)) is None
    assert index.keys_at_height(1) == []
    assert index.execution_result(key(1)) is None
    assert index.mismatches() == []
    blockstore.close()


def test_a_bad_result_in_the_middle_of_a_batch_aborts_the_whole_batch(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    for n in range(3):
        index.put_tipset(key(n), TipsetMeta(n, b""))
    index.set_head(key(0))
    batch = [result(1), result(2, gas=-1)]
    with pytest.raises(ChainIndexError, match="gas used -1"):
        index.advance_head(key(2), batch)
    assert index.head() == key(0)
    assert index.execution_result(key(1)) is None
    blockstore.close()


def test_the_head_and_results_must_name_known_tipsets(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    index.put_tipset(key(0), TipsetMeta(0, b""))
    with pytest.raises(ChainIndexError, match="unknown tipset the head"):
        index.set_head(key(5))
    with pytest.raises(ChainIndexError, match="execution result for an unknown tipset"):
        index.advance_head(key(0), [result(4)])
    assert index.head() is None
    with pytest.raises(ChainIndexError, match="empty tipset key"):
        index.put_tipset(b"", TipsetMeta(0, b""))
    blockstore.close()


def mismatch(n: int) -> Mismatch:
    return Mismatch(key(n), n, root(1), root(2), root(3), root(4))


def test_mismatches_are_kept_for_inspection(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    index.put_tipset(key(7), TipsetMeta(7, b""))
    index.advance_head(key(7), [], [mismatch(7)])
    index.record_mismatch(mismatch(3))
    blockstore.close()
    blockstore, index = open_index(tmp_path)
    assert index.mismatches() == sorted([mismatch(3), mismatch(7)], key=lambda m: m.key)
    assert index.mismatches()[0].expected_state_root == root(1)
    blockstore.close()


def test_a_corrupt_record_is_a_typed_error(tmp_path: Path) -> None:
    blockstore, index = open_index(tmp_path)
    db = blockstore.open_db(TIPSETS_DB)
    blockstore.transact(lambda txn: txn.put(key(1), b"\x83\x01", db=db))
    blockstore.transact(lambda txn: txn.put(key(2), b"\x83\x01\x41\x00\x61x", db=db))
    with pytest.raises(ChainIndexError, match="corrupt index record"):
        index.tipset_meta(key(1))
    with pytest.raises(ChainIndexError, match="weight must be bytes"):
        index.tipset_meta(key(2))
    blockstore.close()


@given(
    height=st.integers(0, (1 << 63) - 1),
    parents=st.binary(max_size=200),
    weight=st.none() | st.integers(0, 1 << 300),
)
def test_tipset_records_round_trip(height: int, parents: bytes, weight: int | None) -> None:
    meta = TipsetMeta(height, parents, weight)
    assert TipsetMeta.decode(meta.encode(), "test") == meta


@given(gas=st.integers(0, (1 << 64) - 1), applied=st.integers(0, (1 << 64) - 1))
def test_execution_records_round_trip(gas: int, applied: int) -> None:
    record = ExecutionResult(key(1), root(1), root(2), gas, applied)
    assert ExecutionResult.decode(key(1), record.encode(), "test") == record
