"""Tests of the AMT port (store/amt.py) against real chain data and ref-fvm's golden values.

Real data: every v3 AMT found in the conformance vectors' CARs and every legacy AMT in the
mainnet and calibnet genesis CARs is read, rebuilt in shuffled order into an empty store, and
must come out as the same root CID with exactly the same blocks. Golden CIDs and write counts
come from ref-fvm's ``ipld/amt/tests/amt_tests.rs``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.conformance.vector import find_vectors, load_vector
from store import dag_cbor
from store.amt import MAX_BIT_WIDTH, MAX_INDEX, Amt, bmap_bytes
from store.blockstore import MemoryBlockstore, put
from store.car import read_car
from store.cid import CID, DAG_CBOR, RAW
from store.errors import AmtError, BlockNotFound

# -- helpers ---------------------------------------------------------------------------------


class CountingBlockstore(MemoryBlockstore):
    """Counts block reads and writes, like ref-fvm's TrackingBlockstore."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0
        self.bytes_written = 0

    def get(self, cid: CID) -> bytes | None:
        self.reads += 1
        return super().get(cid)

    def put_keyed(self, cid: CID, data: bytes) -> None:
        self.writes += 1
        self.bytes_written += len(data)
        super().put_keyed(cid, data)

    def put_many_keyed(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        for cid, data in blocks:
            self.put_keyed(cid, data)


def rebuild(
    entries: list[tuple[int, Any]], bit_width: int, legacy: bool, seed: int
) -> tuple[CID, MemoryBlockstore]:
    """Set ``entries`` in shuffled order (or via from_list when dense) into a fresh store."""
    fresh = MemoryBlockstore()
    rng = random.Random(seed)
    if [index for index, _ in entries] == list(range(len(entries))) and seed % 2 == 0:
        amt = Amt.from_list(fresh, [v for _, v in entries], bit_width=bit_width, legacy=legacy)
    else:
        amt = Amt(fresh, bit_width=bit_width, legacy=legacy)
        shuffled = list(entries)
        rng.shuffle(shuffled)
        # Detour through indices that are set and deleted again, so that growth, collapse
        # and pruning of empty nodes are exercised on the real contents too.
        detours = [rng.randrange(MAX_INDEX + 1) for _ in range(2)]
        present = dict(entries)
        detours = [d for d in detours if d not in present]
        for d in detours:
            amt.set(d, b"detour")
        for index, value in shuffled:
            amt.set(index, value)
        for d in detours:
            assert amt.delete(d)
    return amt.flush(), fresh


@dataclass
class SubtreeScan:
    """Raw (independent of store.amt) walk of AMT nodes in a CAR: for each node CID, the
    block CIDs below it and its entry count, or None when part of it is missing."""

    store: MemoryBlockstore
    bit_width: int
    memo: dict[CID, tuple[frozenset[CID], int] | None] = field(default_factory=dict)

    def node(self, raw: Any, height: int) -> tuple[frozenset[CID], int] | None:
        _, links, values = raw
        if height == 0:
            return frozenset(), len(values)
        blocks: set[CID] = set()
        count = 0
        for link in links:
            below = self.link(link, height - 1)
            if below is None:
                return None
            blocks |= below[0] | {link}
            count += below[1]
        return frozenset(blocks), count

    def link(self, cid: CID, height: int) -> tuple[frozenset[CID], int] | None:
        if cid not in self.memo:
            data = self.store.get(cid)
            self.memo[cid] = None if data is None else self.node(dag_cbor.decode(data), height)
        return self.memo[cid]

    def complete_children(
        self, raw: Any, height: int, seen: set[CID]
    ) -> Iterator[tuple[Any, int, frozenset[CID], int]]:
        """Every node below ``raw`` not in ``seen`` whose whole subtree is present, with its
        blocks and entry count; ``seen`` collects the node CIDs visited."""
        if height == 0:
            return
        for cid in raw[1]:
            data = self.store.get(cid)
            if cid in seen or data is None:
                continue
            seen.add(cid)
            child = dag_cbor.decode(data)
            whole = self.link(cid, height - 1)
            if whole is not None:
                yield child, height - 1, whole[0], whole[1]
            yield from self.complete_children(child, height - 1, seen)


def v3_root_shape(value: Any) -> bool:
    """A 4-element [bit_width, height, count, [bmap, links, values]] with a matching bmap."""
    if not (isinstance(value, list) and len(value) == 4):
        return False
    bit_width, height, count, node = value
    return (
        all(type(x) is int and x >= 0 for x in (bit_width, height, count))
        and 1 <= bit_width <= 18
        and isinstance(node, list)
        and len(node) == 3
        and isinstance(node[0], bytes)
        and len(node[0]) == bmap_bytes(bit_width)
        and isinstance(node[1], list)
        and isinstance(node[2], list)
    )


def legacy_root_shape(value: Any) -> bool:
    if not (isinstance(value, list) and len(value) == 3):
        return False
    height, count, node = value
    return (
        all(type(x) is int and x >= 0 for x in (height, count))
        and isinstance(node, list)
        and len(node) == 3
        and isinstance(node[0], bytes)
        and len(node[0]) == 1
        and isinstance(node[1], list)
        and isinstance(node[2], list)
    )


def assert_rebuilds_identically(
    store: MemoryBlockstore, root: CID, blocks: frozenset[CID], legacy: bool, seed: int
) -> Amt:
    amt = Amt(store, root, legacy=legacy)
    entries = list(amt.items())
    assert len(entries) == len(amt)
    assert [i for i, _ in entries] == sorted({i for i, _ in entries})
    new_root, fresh = rebuild(entries, amt.bit_width, legacy, seed)
    assert new_root == root
    assert set(fresh) == blocks | {root}
    for cid in fresh:
        assert fresh.get(cid) == store.get(cid)
    return amt


# -- real data -------------------------------------------------------------------------------


def test_every_v3_amt_in_the_vectors_rebuilds_to_the_same_blocks(vectors_dir: Path) -> None:
    started = time.monotonic()
    not_roots: set[CID] = set()
    checked_roots: set[CID] = set()
    partial_roots: set[CID] = set()
    seen_nodes: set[CID] = set()
    subtrees = 0
    shapes: set[tuple[int, int]] = set()
    for path in find_vectors(vectors_dir):
        store = load_vector(path).blockstore()
        scans: dict[int, SubtreeScan] = {}
        for cid, data in list(store.items()):
            if cid.codec != DAG_CBOR or cid in not_roots or cid in checked_roots:
                continue
            # Cheap pre-filter: a 4-element array whose first item is a bit width 1..18.
            if data[:1] != b"\x84" or not 1 <= data[1] <= 18:
                not_roots.add(cid)
                continue
            value = dag_cbor.decode(data, str(cid))
            if not v3_root_shape(value):
                not_roots.add(cid)
                continue
            bit_width, height, count, node = value
            scan = scans.setdefault(bit_width, SubtreeScan(store, bit_width))
            whole = scan.node(node, height)
            if whole is not None:
                assert whole[1] == count
                amt = assert_rebuilds_identically(store, cid, whole[0], False, len(checked_roots))
                assert amt.bit_width == bit_width and amt.height == height
                checked_roots.add(cid)
                partial_roots.discard(cid)
                shapes.add((bit_width, height))
                continue
            partial_roots.add(cid)
            with pytest.raises(BlockNotFound):
                list(Amt(store, cid).items())
            # A complete subtree of a partial AMT is itself an AMT once given a root block;
            # those above height 0 that use a slot past 0 are canonical roots.
            for sub, sub_height, sub_blocks, sub_count in scan.complete_children(
                node, height, seen_nodes
            ):
                if sub_height == 0 or sub[0] == b"\x01" + bytes(len(sub[0]) - 1):
                    continue
                sub_root = put(store, dag_cbor.encode([bit_width, sub_height, sub_count, sub]))
                assert_rebuilds_identically(store, sub_root, sub_blocks, False, subtrees)
                subtrees += 1
                shapes.add((bit_width, sub_height))
    elapsed = time.monotonic() - started
    print(
        f"\nAMT: {len(checked_roots)} complete v3 AMT roots and {subtrees} complete subtrees "
        f"of {len(partial_roots)} partial ones rebuilt identically; (bit width, height) seen: "
        f"{sorted(shapes)}; {elapsed:.1f} s"
    )
    assert len(checked_roots) >= 400
    assert {(2, 1), (4, 5), (5, 2), (5, 3), (6, 0)} <= shapes


def test_every_legacy_amt_in_the_genesis_cars_rebuilds_to_the_same_blocks(
    mainnet_genesis: Path, calibnet_genesis: Path
) -> None:
    # The genesis state is actors v0, whose AMTs (preseal sectors, deadlines...) use the
    # legacy layout; the genesis block's receipts and TxMeta arrays are legacy and empty.
    heights: list[int] = []
    for car in (mainnet_genesis, calibnet_genesis):
        _, blocks = read_car(car)
        store = MemoryBlockstore(blocks)
        scan = SubtreeScan(store, 3)
        for cid, data in blocks:
            if cid.codec != DAG_CBOR:
                continue
            value = dag_cbor.decode(data, str(cid))
            if not legacy_root_shape(value):
                continue
            whole = scan.node(value[2], value[0])
            assert whole is not None and whole[1] == value[1]
            assert_rebuilds_identically(store, cid, whole[0], True, len(heights))
            heights.append(value[0])
    assert len(heights) == 42
    assert sorted(set(heights)) == [0, 3, 4, 6]


def test_genesis_receipts_and_messages_are_empty_legacy_amts(mainnet_genesis: Path) -> None:
    header_cid, blocks = read_car(mainnet_genesis)
    store = MemoryBlockstore(blocks)
    header = dag_cbor.decode(store.get(header_cid.roots[0]) or b"")
    receipts, messages = header[9], header[10]
    empty = Amt(MemoryBlockstore(), legacy=True).flush()
    assert (
        empty
        == receipts
        == CID.parse("bafy2bzacedswlcz5ddgqnyo3sak3jmhmkxashisnlpq6ujgyhe4mlobzpnhs6")
    )
    assert store.get(empty) == bytes.fromhex("8300008341008080")
    bls_root, secp_root = dag_cbor.decode(store.get(messages) or b"")
    assert bls_root == secp_root == empty
    assert list(Amt(store, receipts, legacy=True).items()) == []


# -- ref-fvm golden values (ipld/amt/tests/amt_tests.rs) --------------------------------------


def test_set_then_flush_matches_ref_fvm_basic_get_set() -> None:
    store = CountingBlockstore()
    amt = Amt(store)
    amt.set(2, b"foo")
    assert amt.get(2) == b"foo" and len(amt) == 1
    root = amt.flush()
    assert str(root) == "bafy2bzacedv5uu5za6oqtnozjvju5lhbgaybayzhw4txiojw7hd47ktgbv5wc"
    assert Amt(store, root).get(2) == b"foo"
    assert amt.flush() == root
    assert (store.reads, store.writes, store.bytes_written) == (1, 1, 13)
    assert store.get(root) == bytes.fromhex("84030001834104808143") + b"foo"


def test_legacy_layout_matches_ref_fvm_amtv0() -> None:
    store = CountingBlockstore()
    amt = Amt(store, legacy=True)
    amt.set(2, b"foo")
    root = amt.flush()
    assert str(root) == "bafy2bzaceansvim5z2rzifilsbzsjuoul2adx7iad7x3b4paj3qsexqf6ovxk"
    assert store.get(root) == bytes.fromhex("830001834104808143") + b"foo"
    loaded = Amt(store, root, legacy=True)
    assert loaded.get(2) == b"foo" and loaded.bit_width == 3
    assert (store.writes, store.bytes_written) == (1, 12)
    with pytest.raises(AmtError, match="bit_width, height, count, node"):
        Amt(store, root)


def test_max_index_grows_to_height_21_like_ref_fvm_out_of_range() -> None:
    store = CountingBlockstore()
    amt = Amt(store)
    amt.set(MAX_INDEX, b"what is up")
    assert amt.height == 21
    with pytest.raises(AmtError, match="out of range"):
        amt.set(MAX_INDEX + 1, b"what is up")
    amt.set(MAX_INDEX - 1, b"what is up")
    assert amt.height == 21
    root = amt.flush()
    assert str(root) == "bafy2bzacecl3zuubhdvkojg6uhbu4mebaehx554q6algfjitqiivvnrqprkxo"
    assert (store.reads, store.writes, store.bytes_written) == (0, 22, 1039)
    assert list(Amt(store, root).items()) == [
        (MAX_INDEX - 1, b"what is up"),
        (MAX_INDEX, b"what is up"),
    ]


def test_growth_matches_ref_fvm_expand() -> None:
    store = CountingBlockstore()
    amt = Amt(store)
    for index, value in ((2, b"foo"), (11, b"bar"), (79, b"baz")):
        amt.set(index, value)
    root = amt.flush()
    assert str(root) == "bafy2bzacecughjbclx3lbqwibrwc6pe7nttlc3qewedsrayghsvh5j5lpofiq"
    assert store.writes == 6
    loaded = Amt(store, root)
    assert [loaded.get(i) for i in (2, 11, 79)] == [b"foo", b"bar", b"baz"]
    assert loaded.height == 2 and len(loaded) == 3


def test_bulk_insert_matches_ref_fvm() -> None:
    store = CountingBlockstore()
    amt = Amt.from_list(store, [b"foo foo bar"] * 5000)
    root = amt.flush()
    assert str(root) == "bafy2bzacecfquuqzqzlox25aynodzw2qhxijdzfvno6tibyes3kb6nd3f7uxa"
    assert (store.writes, store.bytes_written) == (717, 94379)
    loaded = Amt(store, root)
    assert all(loaded.get(i) == b"foo foo bar" for i in range(5000))
    assert loaded.get(5000) is None


def test_flush_writes_only_changed_nodes_and_reads_lazily() -> None:
    store = CountingBlockstore()
    amt = Amt.from_list(store, [b"foo foo bar"] * 100)
    root = amt.flush()
    assert (store.reads, store.writes, store.bytes_written) == (0, 16, 1930)
    assert amt.flush() == root and store.writes == 16

    loaded = Amt(store, root)
    assert store.reads == 1
    assert loaded.get(99) == b"foo foo bar"
    assert store.reads == 3  # the height-1 node and the leaf, nothing else
    assert loaded.get(98) == b"foo foo bar"
    assert store.reads == 3  # cached
    loaded.set(99, b"changed")
    changed = loaded.flush()
    assert store.writes == 16 + 3  # leaf, its parent and the root
    assert changed != root and Amt(store, changed).get(99) == b"changed"


def test_delete_matches_ref_fvm() -> None:
    store = CountingBlockstore()
    amt = Amt(store)
    for index in range(4):
        amt.set(index, b"cat")
    assert amt.delete(1) and amt.get(1) is None and len(amt) == 3
    for index in (0, 2, 3):
        assert amt.delete(index)
    assert len(amt) == 0
    amt.set(23, b"dog")
    amt.set(24, b"dog")
    assert amt.delete(23)
    root = amt.flush()
    assert str(root) == "bafy2bzacebnnxpurpb3zqqr22i7ch4uruz6hgykn3ryzoo4hh3ox2m2kufsvg"
    fresh = Amt(MemoryBlockstore())
    fresh.set(24, b"dog")
    assert fresh.flush() == root


def test_delete_of_absent_indices_changes_nothing() -> None:
    amt = Amt(MemoryBlockstore())
    amt.set(1, "one")
    amt.set(9, "nine")
    root = amt.flush()
    assert amt.height == 1
    assert not amt.delete(10) and not amt.delete(0) and not amt.delete(1 << 40)
    assert len(amt) == 2 and amt.flush() == root
    assert amt.get(1) == "one" and amt.get(9) == "nine"


def test_delete_collapses_height_like_ref_fvm() -> None:
    store = MemoryBlockstore()
    amt = Amt(store)
    amt.set(0, b"cat")
    amt.set(27, b"cat")
    assert amt.height == 1
    assert amt.delete(27)
    root = amt.flush()
    assert str(root) == "bafy2bzacecmxrjeri2ojuy3riae2mpbnztx2hqggqgkcrxao2nwpga77j2vqe"
    assert Amt(store, root).height == 0

    amt = Amt(store)
    amt.set(1, b"thing")
    before = amt.flush()
    amt.set(37, b"other")
    reloaded = Amt(store, amt.flush())
    assert reloaded.height == 1 and reloaded.delete(37) and reloaded.height == 0
    assert reloaded.flush() == before
    assert str(before) == "bafy2bzacebmkyah6kppbszluix3g332hntzx6wfdcqcr5hjdsaxri5jhgrdmo"


def test_sparse_every_third_index_matches_ref_fvm_for_each() -> None:
    store = MemoryBlockstore()
    indices = [i for i in range(10000) if (i + 1) % 3 == 0]
    amt = Amt(store)
    for index in indices:
        amt.set(index, b"value")
    root = amt.flush()
    assert str(root) == "bafy2bzaceanqxtbsuyhqgxubiq6vshtbhktmzp2if4g6kxzttxmzkdxmtipcm"
    assert [i for i, _ in Amt(store, root).items()] == indices


def test_mixed_heights_match_ref_fvm_for_each_mutate() -> None:
    amt = Amt(MemoryBlockstore())
    for index in (1, 9, 66, 74, 82, 515):
        amt.set(index, b"value")
    root = amt.flush()
    assert str(root) == "bafy2bzaced44wtasbcukqjqicvxzcyn5up6sorr5khzbdkl6zjeo736f377ew"


def test_set_and_delete_far_index_returns_to_empty_root() -> None:
    amt = Amt(MemoryBlockstore())
    empty = amt.flush()
    assert str(empty) == "bafy2bzacedijw74yui7otvo63nfl3hdq2vdzuy7wx2tnptwed6zml4vvz7wee"
    amt.set(100_000, b"foo")
    assert amt.height == 5
    assert amt.delete(100_000)
    assert amt.height == 0 and amt.flush() == empty


def test_empty_roots_of_each_width_have_the_expected_bitmap() -> None:
    for bit_width in (1, 2, 3, 4, 5, 6, 10):
        store = MemoryBlockstore()
        root = Amt(store, bit_width=bit_width).flush()
        assert dag_cbor.decode(store.get(root) or b"") == [
            bit_width,
            0,
            0,
            [bytes(max(1, (1 << bit_width) // 8)), [], []],
        ]


def test_bitmap_bits_are_least_significant_first() -> None:
    store = MemoryBlockstore()
    amt = Amt(store, bit_width=5)
    for index in (0, 9, 31):
        amt.set(index, index)
    value = dag_cbor.decode(store.get(amt.flush()) or b"")
    assert value == [5, 0, 3, [bytes([0b0000_0001, 0b0000_0010, 0, 0b1000_0000]), [], [0, 9, 31]]]


# -- property tests --------------------------------------------------------------------------

index_strategy = st.one_of(st.integers(0, 40), st.integers(0, 5000), st.integers(0, MAX_INDEX))
ops_strategy = st.lists(
    st.tuples(
        st.sampled_from(["set", "delete", "flush", "reload"]),
        index_strategy,
        st.integers(-(1 << 63), (1 << 64) - 1),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(bit_width=st.integers(1, 7), ops=ops_strategy)
def test_root_depends_only_on_final_contents(
    bit_width: int, ops: list[tuple[str, int, int]]
) -> None:
    store = MemoryBlockstore()
    amt = Amt(store, bit_width=bit_width)
    model: dict[int, int] = {}
    for op, index, value in ops:
        if op == "set":
            amt.set(index, value)
            model[index] = value
        elif op == "delete":
            assert amt.delete(index) == (index in model)
            model.pop(index, None)
        elif op == "flush":
            amt.flush()
        else:
            amt = Amt(store, amt.flush())
        assert len(amt) == len(model)
    assert list(amt.items()) == sorted(model.items())
    for index, value in model.items():
        assert amt.get(index) == value
    root = amt.flush()

    fresh = MemoryBlockstore()
    direct = Amt(fresh, bit_width=bit_width)
    for index in sorted(model, reverse=True):
        direct.set(index, model[index])
    assert direct.flush() == root
    reloaded = Amt(fresh, root)
    assert list(reloaded.items()) == sorted(model.items())
    if model:
        top = max(model)
        assert reloaded.height == next(
            h for h in range(64) if top < (1 << (bit_width * (h + 1))) or bit_width * (h + 1) >= 64
        )
    else:
        assert reloaded.height == 0


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.binary(max_size=8), max_size=200), data=st.data())
def test_legacy_from_list_equals_sets_in_any_order(
    values: list[bytes], data: st.DataObject
) -> None:
    store = MemoryBlockstore()
    root = Amt.from_list(store, values, legacy=True).flush()
    order = data.draw(st.permutations(range(len(values))))
    other = Amt(MemoryBlockstore(), legacy=True)
    for index in order:
        other.set(index, values[index])
    assert other.flush() == root
    assert list(Amt(store, root, legacy=True).items()) == list(enumerate(values))


# -- malformed input -------------------------------------------------------------------------


def stored(store: MemoryBlockstore, value: Any) -> CID:
    return put(store, dag_cbor.encode(value))


def leaf_cid(store: MemoryBlockstore) -> CID:
    return stored(store, [b"\x01", [], [b"x"]])


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ([3, 0, 0], "bit_width, height, count, node"),
        ({"a": 1}, "bit_width, height, count, node"),
        ([0, 0, 0, [b"\x00", [], []]], "bit width 0 out of bounds"),
        ([MAX_BIT_WIDTH + 1, 0, 0, [b"\x00", [], []]], "bit width 23 out of bounds"),
        ([3, -1, 0, [b"\x00", [], []]], "height -1 is not a u32"),
        ([3, 0, "1", [b"\x00", [], []]], "count '1' is not a u64"),
        ([3, 22, 1, [b"\x01", [], [1]]], "height 22 out of bounds"),
        ([1, 64, 1, [b"\x01", [], [1]]], "height 64 out of bounds"),
        ([3, 0, 9, [b"\x01", [], [1]]], "not tall enough for count 9"),
        ([3, 0, 0, [b"\x00\x00", [], []]], "bitmap is 2 bytes but bit width 3 needs 1"),
        ([5, 0, 0, [b"\x00", [], []]], "bitmap is 1 bytes but bit width 5 needs 4"),
        ([3, 0, 1, [b"\x03", [], [1]]], "sets 2 bits but node has 1 values"),
        ([3, 0, 1, [b"\x01", [], [1, 2]]], "sets 1 bits but node has 2 values"),
        ([3, 0, 1, [b"\x01", [], []]], "sets 1 bits but node has no links or values"),
        ([3, 1, 1, [b"\x01", [], [1]]], "values in a node at height 1"),
        ([3, 1, 0, [b"\x00", [], []]], "empty node at height 1"),
        ([3, 0, 1, [b"\x01", [], [1], 4]], "3-element array"),
        ([3, 0, 1, [[1], [], [1]]], "bytes, array of links, array of values"),
        ([3, 1, 1, [b"\x01", [b"x"], []]], "not a CID"),
    ],
)
def test_malformed_root_raises_amt_error_naming_the_cid(root: Any, message: str) -> None:
    store = MemoryBlockstore()
    cid = stored(store, root)
    with pytest.raises(AmtError, match=message) as info:
        Amt(store, cid)
    assert info.value.where == str(cid)


def test_root_with_both_links_and_values_raises() -> None:
    store = MemoryBlockstore()
    cid = stored(store, [3, 1, 1, [b"\x03", [leaf_cid(store)], [1]]])
    with pytest.raises(AmtError, match="both links and values"):
        Amt(store, cid)


def test_links_in_a_leaf_raise() -> None:
    store = MemoryBlockstore()
    cid = stored(store, [3, 0, 1, [b"\x01", [leaf_cid(store)], []]])
    with pytest.raises(AmtError, match="links in a leaf"):
        Amt(store, cid)


def test_link_that_is_not_dag_cbor_raises() -> None:
    store = MemoryBlockstore()
    raw_link = put(store, dag_cbor.encode([b"\x01", [], [b"x"]]), RAW)
    cid = stored(store, [3, 1, 1, [b"\x02", [raw_link], []]])
    with pytest.raises(AmtError, match="not DAG-CBOR"):
        Amt(store, cid)


def test_malformed_child_raises_naming_the_child_cid() -> None:
    store = MemoryBlockstore()
    empty_child = stored(store, [b"\x00", [], []])
    root = stored(store, [3, 1, 0, [b"\x02", [empty_child], []]])
    amt = Amt(store, root)
    with pytest.raises(AmtError, match="empty node at height 0") as info:
        amt.get(8)
    assert info.value.where == str(empty_child)

    wide_child = stored(store, [b"\x01\x00", [], [1]])
    amt = Amt(store, stored(store, [3, 1, 1, [b"\x02", [wide_child], []]]))
    with pytest.raises(AmtError, match="bitmap is 2 bytes") as info:
        list(amt.items())
    assert info.value.where == str(wide_child)

    values_above_leaf = stored(store, [b"\x01", [], [1]])
    amt = Amt(store, stored(store, [3, 2, 1, [b"\x02", [values_above_leaf], []]]))
    with pytest.raises(AmtError, match="values in a node at height 1"):
        amt.set(64, 1)


def test_block_that_is_not_dag_cbor_raises() -> None:
    store = MemoryBlockstore()
    cid = put(store, b"\x84\x03\x00\x00")
    with pytest.raises(AmtError, match="not valid DAG-CBOR") as info:
        Amt(store, cid)
    assert info.value.where == str(cid)


def test_missing_blocks_raise_block_not_found() -> None:
    store = MemoryBlockstore()
    absent = CID.hash_of(b"absent")
    with pytest.raises(BlockNotFound):
        Amt(store, absent)
    amt = Amt(store, stored(store, [3, 1, 1, [b"\x02", [absent], []]]))
    assert amt.get(0) is None
    with pytest.raises(BlockNotFound):
        amt.get(8)


def test_count_below_contents_raises_on_delete() -> None:
    store = MemoryBlockstore()
    amt = Amt(store, stored(store, [3, 0, 0, [b"\x01", [], [b"x"]]]))
    assert amt.get(0) == b"x"
    with pytest.raises(AmtError, match="count is 0"):
        amt.delete(0)


def test_out_of_range_indices_raise() -> None:
    amt = Amt(MemoryBlockstore())
    for index in (-1, MAX_INDEX + 1):
        with pytest.raises(AmtError, match="out of range"):
            amt.get(index)
        with pytest.raises(AmtError, match="out of range"):
            amt.set(index, 1)
        with pytest.raises(AmtError, match="out of range"):
            amt.delete(index)


def test_bad_constructor_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="bit width"):
        Amt(MemoryBlockstore(), bit_width=0)
    with pytest.raises(ValueError, match="legacy"):
        Amt(MemoryBlockstore(), bit_width=5, legacy=True)


def test_bitmap_bits_past_a_narrow_width_are_ignored_like_the_references() -> None:
    store = MemoryBlockstore()
    amt = Amt(store, stored(store, [2, 0, 1, [b"\xf1", [], [b"x"]]]))
    assert list(amt.items()) == [(0, b"x")]
