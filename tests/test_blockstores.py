"""Blockstores: the in-memory store, the FVM's write-back buffer (flush writes exactly the blocks
reachable from the root, as ref-fvm's does), and the LMDB store (persistence, atomic batches,
map growth, a reader in another process, and CAR import of the mainnet genesis)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb
import pytest

from fvm.conformance.vector import load_vector
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore, get_required, put
from store.buffered_blockstore import BufferedBlockstore, FlushError, scan_for_links
from store.car import CarReader, open_maybe_compressed, read_car
from store.cid import (
    BLAKE2B_256,
    CBOR,
    CID,
    DAG_CBOR,
    DAG_PB,
    FIL_COMMITMENT_SEALED,
    FIL_COMMITMENT_UNSEALED,
    IDENTITY,
    POSEIDON_BLS12_381_A1_FC1,
    RAW,
    SHA2_256,
    SHA2_256_TRUNC254_PADDED,
)
from store.errors import BlockNotFound, CBORError
from store.lmdb_blockstore import LmdbBlockstore

GENESIS_CID = CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2")
GENESIS_BLOCKS = 1222
GENESIS_BYTES = 1055730
SEND_VECTOR = "extracted/0001-shark-01/fil_9_account/Send/Ok/ext-0001-fil_9_account-Send-Ok-1.json"


class RecordingStore(MemoryBlockstore):
    """A memory store that records each ``put_many_keyed`` batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[CID]] = []

    def put_many_keyed(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        batch = list(blocks)
        self.batches.append([cid for cid, _ in batch])
        super().put_many_keyed(batch)


def _put_cbor(store: Blockstore, value: object) -> CID:
    return put(store, dag_cbor.encode(value))


def _reachable_in(blocks: dict[CID, bytes], root: CID) -> set[CID]:
    """Blocks of ``blocks`` reachable from ``root``, walking decoded DAG-CBOR values."""
    seen: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen or cid not in blocks:
            continue
        seen.add(cid)
        if cid.codec == DAG_CBOR:
            stack.extend(dag_cbor.links(dag_cbor.decode(blocks[cid])))
    return seen


# -- memory ---------------------------------------------------------------------------------


def test_memory_blockstore_stores_by_cid_and_reports_missing_blocks() -> None:
    store = MemoryBlockstore()
    cid = put(store, b"\x83\x01\x02\x03")
    assert cid == CID.hash_of(b"\x83\x01\x02\x03")
    assert store.get(cid) == b"\x83\x01\x02\x03"
    assert store.has(cid)
    assert len(store) == 1
    assert list(store.items()) == [(cid, b"\x83\x01\x02\x03")]
    assert isinstance(store, Blockstore)
    missing = CID.hash_of(b"\xf6")
    assert store.get(missing) is None
    assert not store.has(missing)
    with pytest.raises(BlockNotFound, match=str(missing)):
        get_required(store, missing)


def test_get_required_answers_identity_cids_without_the_store() -> None:
    cid = CID.hash_of(b"fil/1/system", RAW, IDENTITY)
    assert get_required(MemoryBlockstore(), cid) == b"fil/1/system"


# -- buffered: the link scanner -------------------------------------------------------------


def test_link_scanner_finds_the_same_links_as_decoding_in_genesis(mainnet_genesis: Path) -> None:
    _, blocks = read_car(mainnet_genesis)
    total = 0
    for cid, data in blocks:
        if cid.codec == DAG_CBOR:
            found = scan_for_links(data, str(cid))
            assert found == dag_cbor.links(dag_cbor.decode(data)), cid
            total += len(found)
    assert total > 1211


def test_link_scanner_accepts_non_canonical_heads_like_the_reference() -> None:
    link = b"\xd8\x2a\x58\x27\x00" + GENESIS_CID.to_bytes()
    long_link = b"\xd8\x2a\x59\x00\x27\x00" + GENESIS_CID.to_bytes()
    data = b"\x83\x18\x01\xfb" + bytes(8) + link + b"\xc1" + long_link
    assert scan_for_links(data) == [GENESIS_CID]  # the array ends before the tagged item
    data = b"\x84\x18\x01\xfb" + bytes(8) + link + b"\xc1" + long_link + b"trailing"
    assert scan_for_links(data) == [GENESIS_CID, GENESIS_CID]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x82\x01", "unexpected end"),
        (b"\x5a\x00\x00\x01\x00", "unexpected end"),
        (b"\x9f\x01\xff", "invalid CBOR head 0x9f"),
        (b"\xd8\x2a\x61a", "tag 42 must wrap a byte string"),
        (b"\xd8\x2a\x42\x01\x71", "0x00 prefix"),
        (b"\xd8\x2a\x40\x00", "0x00 prefix"),
        (b"\xd8\x2a\x43\x00\x01\x71", "invalid link"),
    ],
)
def test_link_scanner_rejects_malformed_cbor(data: bytes, message: str) -> None:
    with pytest.raises(CBORError, match=message) as raised:
        scan_for_links(data, "block x")
    assert raised.value.where == "block x"


# -- buffered: reads and writes -------------------------------------------------------------


def test_buffered_reads_hit_the_buffer_then_fall_through_to_the_base() -> None:
    base = MemoryBlockstore()
    in_base = _put_cbor(base, "base")
    buffered = BufferedBlockstore(base)
    in_buffer = _put_cbor(buffered, "buffer")
    assert buffered.get(in_base) == dag_cbor.encode("base")
    assert buffered.has(in_base)
    assert buffered.get(in_buffer) == dag_cbor.encode("buffer")
    assert buffered.has(in_buffer)
    assert base.get(in_buffer) is None
    assert buffered.get(CID.hash_of(b"\xf6")) is None
    assert not buffered.has(CID.hash_of(b"\xf6"))
    assert buffered.base is base
    assert buffered.buffer_len() == 1


def test_flush_copies_only_reachable_blocks_in_one_batch() -> None:
    base = RecordingStore()
    buffered = BufferedBlockstore(base)
    leaf_raw = put(buffered, b"raw bytes", RAW)
    leaf = _put_cbor(buffered, "leaf")
    middle = _put_cbor(buffered, {"leaves": [leaf, leaf_raw], "n": 7})
    root = _put_cbor(buffered, [middle, leaf, 1])
    garbage = _put_cbor(buffered, {"garbage": leaf})
    garbage_child = _put_cbor(buffered, [garbage])

    assert buffered.flush(root) == 4
    assert base.batches == [[root, leaf, middle, leaf_raw]]
    assert {cid for cid, _ in base.items()} == {root, middle, leaf, leaf_raw}
    assert base.get(middle) == dag_cbor.encode({"leaves": [leaf, leaf_raw], "n": 7})
    assert not base.has(garbage)
    assert not base.has(garbage_child)
    # The unreachable blocks stay buffered and readable until discarded.
    assert buffered.buffer_len() == 2
    assert buffered.get(garbage) == dag_cbor.encode({"garbage": leaf})
    assert buffered.get(root) == dag_cbor.encode([middle, leaf, 1])
    assert buffered.discard() == 2
    assert buffered.buffer_len() == 0
    assert buffered.get(garbage) is None
    assert buffered.flush(root) == 0
    assert base.batches[-1] == []


def test_flush_does_not_follow_links_out_of_blocks_missing_from_the_buffer() -> None:
    base = MemoryBlockstore()
    buffered = BufferedBlockstore(base)
    hidden = _put_cbor(buffered, "only reachable through the base")
    in_base = _put_cbor(base, [hidden])
    root = _put_cbor(buffered, [in_base])
    assert buffered.flush(root) == 1
    assert base.has(root)
    assert not base.has(hidden)
    assert buffered.buffer_len() == 1


def test_flush_does_not_scan_raw_or_cbor_blocks_for_links() -> None:
    base = MemoryBlockstore()
    buffered = BufferedBlockstore(base)
    target = _put_cbor(buffered, "target")
    looks_linked = dag_cbor.encode([target])
    raw = put(buffered, looks_linked, RAW)
    cbor = put(buffered, looks_linked, CBOR)
    root = _put_cbor(buffered, [raw, cbor])
    assert buffered.flush(root) == 3
    assert base.has(raw)
    assert base.has(cbor)
    assert not base.has(target)


def test_flush_scans_identity_dag_cbor_links_and_skips_commitments() -> None:
    base = MemoryBlockstore()
    buffered = BufferedBlockstore(base)
    target = _put_cbor(buffered, "behind an identity cid")
    inline = CID.hash_of(dag_cbor.encode([target]), DAG_CBOR, IDENTITY)
    code = CID.hash_of(b"fil/9/account", RAW, IDENTITY)
    sealed = CID(1, FIL_COMMITMENT_SEALED, POSEIDON_BLS12_381_A1_FC1, bytes(32))
    unsealed = CID(1, FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED, bytes(32))
    root = _put_cbor(buffered, {"inline": inline, "code": code, "s": sealed, "u": unsealed})
    assert buffered.flush(root) == 2
    assert {cid for cid, _ in base.items()} == {root, target}


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (CID(0, DAG_PB, SHA2_256, bytes(32)), "unexpected codec \\(112\\)"),
        (CID(1, 0x0129, BLAKE2B_256, bytes(32)), "unexpected codec \\(297\\)"),
        (CID(1, DAG_CBOR, SHA2_256, bytes(32)), "unexpected multihash \\(code=18, len=32\\)"),
        (CID(1, RAW, 0xB210, bytes(16)), "unexpected multihash \\(code=45584, len=16\\)"),
    ],
)
def test_flush_rejects_links_the_fvm_cannot_store(link: CID, message: str) -> None:
    base = MemoryBlockstore()
    buffered = BufferedBlockstore(base)
    root = _put_cbor(buffered, [link])
    with pytest.raises(FlushError, match=message):
        buffered.flush(root)
    assert len(base) == 0
    assert buffered.buffer_len() == 1


def test_flush_reports_a_reachable_block_that_cannot_be_scanned() -> None:
    base = MemoryBlockstore()
    buffered = BufferedBlockstore(base)
    broken = put(buffered, b"\x82\x01")
    root = _put_cbor(buffered, [broken])
    with pytest.raises(CBORError, match="unexpected end") as raised:
        buffered.flush(root)
    assert raised.value.where == f"block {broken}"
    assert len(base) == 0
    assert buffered.buffer_len() == 2


def test_flush_all_writes_every_buffered_block() -> None:
    base = RecordingStore()
    buffered = BufferedBlockstore(base)
    cids = [_put_cbor(buffered, i) for i in range(5)]
    assert buffered.flush_all() == 5
    assert sorted(base.batches[0]) == sorted(cids)
    assert buffered.buffer_len() == 0


def test_flushing_a_vector_post_state_writes_exactly_its_reachable_blocks(
    vectors_dir: Path,
) -> None:
    vector = load_vector(vectors_dir / SEND_VECTOR)
    blocks = dict(CarReader.from_bytes(vector.car))
    expected = _reachable_in(blocks, vector.post_state_root)
    base = MemoryBlockstore()
    buffered = BufferedBlockstore(base)
    buffered.put_many_keyed(blocks.items())
    assert buffered.flush(vector.post_state_root) == len(expected)
    assert {cid for cid, _ in base.items()} == expected
    assert buffered.buffer_len() == len(blocks) - len(expected)
    assert all(base.get(cid) == blocks[cid] for cid in expected)
    pre_only = _reachable_in(blocks, vector.pre_state_root) - expected
    assert pre_only
    assert not any(base.has(cid) for cid in pre_only)


# -- LMDB -----------------------------------------------------------------------------------


def _genesis_blocks(path: Path) -> list[tuple[CID, bytes]]:
    return read_car(path)[1]


def test_lmdb_blocks_persist_across_reopen(tmp_path: Path) -> None:
    values = [dag_cbor.encode([i, "block"]) for i in range(100)]
    with LmdbBlockstore(tmp_path / "db") as store:
        cids = [put(store, value) for value in values]
        assert store.has(cids[0])
        assert cids[0] in store
        assert "not a cid" not in store
    with LmdbBlockstore(tmp_path / "db") as store:
        assert [store.get(cid) for cid in cids] == values
        assert len(store) == 100
        assert store.get(CID.hash_of(b"\xf6")) is None
        assert not store.has(CID.hash_of(b"\xf6"))
        stats = store.stats()
        assert stats.blocks == 100
        assert stats.block_bytes == sum(len(v) for v in values)


def test_lmdb_stats_do_not_count_a_block_twice(tmp_path: Path) -> None:
    with LmdbBlockstore(tmp_path / "db") as store:
        cid = put(store, b"\x63abc")
        store.put_many_keyed([(cid, b"\x63abc"), (cid, b"\x63abc")])
        assert store.stats().blocks == 1
        assert store.stats().block_bytes == 4


def test_lmdb_batch_is_atomic(tmp_path: Path) -> None:
    with LmdbBlockstore(tmp_path / "db") as store:
        good = CID.hash_of(b"\x01")
        with pytest.raises(TypeError):
            store.put_many_keyed([(good, b"\x01"), (CID.hash_of(b"\x02"), None)])  # type: ignore[list-item]
        assert not store.has(good)
        assert store.stats().blocks == 0
        assert store.stats().block_bytes == 0


def test_lmdb_transaction_writes_blocks_and_index_together(tmp_path: Path) -> None:
    with LmdbBlockstore(tmp_path / "db") as store:
        index = store.open_db("tipsets")
        assert store.open_db(b"tipsets") is index
        cid = CID.hash_of(b"\x80")

        def write(txn: lmdb.Transaction[bytes], fail: bool) -> int:
            added = store.put_many_keyed_txn(txn, [(cid, b"\x80")])
            txn.put(b"head", cid.to_bytes(), db=index)
            if fail:
                raise RuntimeError("abort")
            return added

        with pytest.raises(RuntimeError):
            store.transact(lambda txn: write(txn, True))
        assert not store.has(cid)
        assert store.transact(lambda txn: write(txn, False)) == 1
        with store.read_txn() as txn:
            assert txn.get(b"head", db=index) == cid.to_bytes()
        assert store.get(cid) == b"\x80"
        assert store.transact(lambda txn: write(txn, False)) == 0


def test_lmdb_map_grows_when_full(tmp_path: Path, mainnet_genesis: Path) -> None:
    blocks = _genesis_blocks(mainnet_genesis)
    with LmdbBlockstore(tmp_path / "db", map_size=64 << 10) as store:
        store.put_many_keyed(blocks)
        stats = store.stats()
        assert stats.map_size > 64 << 10
        assert stats.map_size >= stats.used_bytes > GENESIS_BYTES
        assert stats.blocks == GENESIS_BLOCKS
        assert all(store.get(cid) == data for cid, data in blocks)


def test_lmdb_readers_in_threads_survive_map_growth(tmp_path: Path, mainnet_genesis: Path) -> None:
    blocks = _genesis_blocks(mainnet_genesis)
    first = blocks[0]
    with LmdbBlockstore(tmp_path / "db", map_size=64 << 10) as store:
        store.put_keyed(*first)
        failures: list[str] = []
        reads: list[int] = []
        done = threading.Event()

        def read_repeatedly() -> None:
            # Readers pause between reads: CPU-bound spinning threads starve the writer of the
            # GIL while LMDB reports the map full (a py-lmdb quirk, seconds per batch).
            count = 0
            while not done.wait(0.0002):
                if store.get(first[0]) != first[1]:
                    failures.append("wrong bytes")
                count += 1
            reads.append(count)

        readers = [threading.Thread(target=read_repeatedly) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            for start in range(1, len(blocks), 50):
                store.put_many_keyed(blocks[start : start + 50])
        finally:
            done.set()
            for thread in readers:
                thread.join()
        assert failures == []
        assert len(reads) == 3
        assert min(reads) > 0
        assert len(store) == GENESIS_BLOCKS
        assert store.stats().map_size >= 1 << 20


def test_lmdb_growth_under_an_open_read_transaction_raises_instead_of_deadlocking(
    tmp_path: Path, mainnet_genesis: Path
) -> None:
    blocks = _genesis_blocks(mainnet_genesis)
    with LmdbBlockstore(tmp_path / "db", map_size=64 << 10) as store:
        with store.read_txn():
            store.put_many_keyed(blocks[:2])
            with pytest.raises(RuntimeError, match="holds a transaction"):
                store.put_many_keyed(blocks)
        store.put_many_keyed(blocks)
        assert len(store) == GENESIS_BLOCKS


def test_lmdb_nested_read_does_not_deadlock_behind_a_pending_growth(
    tmp_path: Path, mainnet_genesis: Path
) -> None:
    blocks = _genesis_blocks(mainnet_genesis)
    with LmdbBlockstore(tmp_path / "db", map_size=64 << 10) as store:
        store.put_keyed(*blocks[0])
        holding = threading.Event()
        nested_reads: list[bytes | None] = []

        def hold_a_read_and_read_again() -> None:
            with store.read_txn():
                holding.set()
                time.sleep(0.3)  # the writer is now waiting for this thread to let go
                nested_reads.append(store.get(blocks[0][0]))

        def grow() -> None:
            holding.wait()
            store.put_many_keyed(blocks)

        threads = [
            threading.Thread(target=hold_a_read_and_read_again, daemon=True),
            threading.Thread(target=grow, daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert nested_reads == [blocks[0][1]]
        assert len(store) == GENESIS_BLOCKS


def test_lmdb_nested_write_transaction_raises(tmp_path: Path) -> None:
    with LmdbBlockstore(tmp_path / "db") as store:
        cid = CID.hash_of(b"\x01")
        with pytest.raises(RuntimeError, match="nested LMDB write"):
            store.transact(lambda txn: store.put_keyed(cid, b"\x01"))
        assert not store.has(cid)
        store.put_keyed(cid, b"\x01")
        assert store.has(cid)


_READER_SCRIPT = """
import sys
from store.lmdb_blockstore import LmdbBlockstore
store = LmdbBlockstore(sys.argv[1], 64 << 10, readonly=True)
for line in sys.stdin:
    stats = store.stats()
    verified = sum(1 for cid, data in store.items() if cid.verify(data))
    print(stats.blocks, stats.block_bytes, verified, stats.map_size, flush=True)
"""


def _ask(reader: subprocess.Popen[str]) -> list[int]:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write("\n")
    reader.stdin.flush()
    return [int(field) for field in reader.stdout.readline().split()]


def test_lmdb_reader_in_another_process_sees_each_commit(
    tmp_path: Path, mainnet_genesis: Path
) -> None:
    blocks = _genesis_blocks(mainnet_genesis)
    with LmdbBlockstore(tmp_path / "db", map_size=64 << 10) as store:
        store.put_many_keyed(blocks[:10])
        reader = subprocess.Popen(
            [sys.executable, "-c", _READER_SCRIPT, str(tmp_path / "db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            blocks_seen, bytes_seen, verified, map_size = _ask(reader)
            assert (blocks_seen, verified) == (10, 10)
            assert bytes_seen == sum(len(data) for _, data in blocks[:10])
            assert map_size == 64 << 10
            store.put_many_keyed(blocks[10:])
            blocks_seen, bytes_seen, verified, map_size = _ask(reader)
            assert (blocks_seen, bytes_seen, verified) == (
                GENESIS_BLOCKS, GENESIS_BYTES, GENESIS_BLOCKS,
            )
            assert map_size == store.stats().map_size > 64 << 10
        finally:
            assert reader.stdin is not None
            reader.stdin.close()
            assert reader.wait(timeout=30) == 0


def test_lmdb_read_only_store_refuses_writes(tmp_path: Path) -> None:
    with LmdbBlockstore(tmp_path / "db") as store:
        cid = put(store, b"\x01")
    with LmdbBlockstore(tmp_path / "db", readonly=True) as store:
        assert store.get(cid) == b"\x01"
        with pytest.raises(lmdb.ReadonlyError):
            put(store, b"\x02")


def test_lmdb_iterates_every_block_in_key_order_across_chunks(tmp_path: Path) -> None:
    with LmdbBlockstore(tmp_path / "db") as store:
        blocks = {CID.hash_of(bytes([i])): bytes([i]) for i in range(24)}
        store.put_many_keyed(blocks.items())
        for chunk in (1, 5, 24, 1000):
            items = list(store.items(chunk=chunk))
            assert [cid for cid, _ in items] == sorted(blocks)
            assert dict(items) == blocks
        assert list(store) == sorted(blocks)


def test_genesis_imports_into_lmdb_and_every_block_verifies(
    tmp_path: Path, mainnet_genesis: Path
) -> None:
    with LmdbBlockstore(tmp_path / "db") as store, open_maybe_compressed(mainnet_genesis) as f:
        reader = CarReader(f, source=str(mainnet_genesis))
        assert store.import_car(reader, batch_blocks=100) == (GENESIS_BLOCKS, GENESIS_BYTES)
    expected = dict(_genesis_blocks(mainnet_genesis))
    with LmdbBlockstore(tmp_path / "db", readonly=True) as store:
        stats = store.stats()
        assert (stats.blocks, stats.block_bytes) == (GENESIS_BLOCKS, GENESIS_BYTES)
        imported = dict(store.items())
        assert imported == expected
        assert all(cid.verify(data) for cid, data in imported.items())
        genesis = dag_cbor.decode(get_required(store, GENESIS_CID))
        assert dag_cbor.decode(get_required(store, genesis[8])) is not None


def test_buffered_store_over_lmdb_flushes_reachable_state(
    tmp_path: Path, vectors_dir: Path
) -> None:
    vector = load_vector(vectors_dir / SEND_VECTOR)
    blocks = dict(CarReader.from_bytes(vector.car))
    with LmdbBlockstore(tmp_path / "db") as store:
        buffered = BufferedBlockstore(store)
        buffered.put_many_keyed(blocks.items())
        written = buffered.flush(vector.pre_state_root)
        assert written == len(_reachable_in(blocks, vector.pre_state_root))
        assert store.stats().blocks == written
        assert store.get(vector.pre_state_root) == blocks[vector.pre_state_root]
        assert not store.has(vector.post_state_root)


def _iter_blocks(blocks: list[tuple[CID, bytes]]) -> Iterator[tuple[CID, bytes]]:
    yield from blocks


def test_lmdb_import_accepts_any_block_iterable(tmp_path: Path) -> None:
    blocks = [(CID.hash_of(bytes([i])), bytes([i])) for i in range(10)]
    with LmdbBlockstore(tmp_path / "db") as store:
        assert store.import_car(_iter_blocks(blocks), batch_bytes=3) == (10, 10)
        assert store.import_car(_iter_blocks([])) == (0, 0)
        assert len(store) == 10
