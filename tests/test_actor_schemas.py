"""Actor state schemas against the real mainnet state held by the conformance vectors.

Every vector's pre- and post-state tree is walked (the actors HAMT, width 5, address bytes ->
``[code, head, nonce, balance(, delegated address)]``); each actor's type comes from its code
CID via the builtin-actors bundles, its head block is decoded with the schema of that actors
version, and every HAMT/AMT the schema reaches is rebuilt from its entries, inserted in shuffled
order into a fresh store, and must give the same root and node bytes.

Vectors hold only the blocks their message touched. Blocks are content-addressed, so the blocks
of all vectors are pooled into one store; state trees, actor heads and collections are then
each visited once, however many vectors share them. Collections whose root block is absent, or
whose root is present but not all of their nodes, are counted and skipped.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fvm.actor_schemas import (
    SCHEMAS,
    CollectionRef,
    Hamt,
    Kamt,
    KeyType,
    Link,
    ListOf,
    Nullable,
    SchemaMismatch,
    StateWalker,
    Struct,
    UnknownSchema,
    decode_key,
    decode_state,
    decode_value,
    iter_collections,
    schema_for,
)
from fvm.actor_schemas.kinds import Amt, Kind
from fvm.address import Address
from fvm.bundle import BundleIndex, bundle_index
from fvm.conformance.vector import find_vectors, load_vector
from store import dag_cbor
from store.amt import Amt as AmtStore
from store.blockstore import MemoryBlockstore
from store.cid import CID
from store.hamt import Hamt as HamtStore
from store.rebuild import rebuild_amt, rebuild_hamt

# ref-fvm: network version 17 writes state tree version 4 (actor entries of 4 fields), network
# version 18 version 5 (entries gain the delegated address).
STATE_TREE_VERSION = {17: 4, 18: 5}
ACTOR_ENTRY_FIELDS = {4: 4, 5: 5}
SHUFFLE_SEED = 20240817


# -- the pooled vector corpus ------------------------------------------------------------------


@dataclass(slots=True)
class VectorCorpus:
    store: MemoryBlockstore
    state_roots: list[tuple[str, CID, int]]
    vector_count: int


@dataclass(slots=True)
class ActorHead:
    code: CID
    head: CID
    version: int
    name: str


@dataclass(slots=True)
class StateTreeScan:
    heads: dict[tuple[CID, CID], ActorHead] = field(default_factory=dict)
    actor_entries: int = 0
    state_tree_nodes_missing: int = 0
    heads_missing: Counter[str] = field(default_factory=Counter)
    root_versions: Counter[int] = field(default_factory=Counter)


def _present_hamt_entries(
    store: MemoryBlockstore, root: CID, visited: set[CID], scan: StateTreeScan
) -> Iterator[tuple[bytes, Any]]:
    """Entries of the state tree's nodes that are present (vectors hold a partial tree)."""
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in visited:
            continue
        visited.add(cid)
        data = store.get(cid)
        if data is None:
            scan.state_tree_nodes_missing += 1
            continue
        # The state tree itself is not under test here: skip the canonical-form re-encoding.
        node = dag_cbor.decode_lenient(data, str(cid))
        for pointer in node[1]:
            if isinstance(pointer, CID):
                stack.append(pointer)
            else:
                yield from pointer


@pytest.fixture(scope="module")
def corpus(vectors_dir: Path) -> VectorCorpus:
    store = MemoryBlockstore()
    roots: list[tuple[str, CID, int]] = []
    count = 0
    for path in find_vectors(vectors_dir):
        vector = load_vector(path)
        count += 1
        store.put_many_keyed(vector.blockstore().items())
        network_version = vector.variants[0].network_version
        roots.append((f"{vector.id} pre", vector.pre_state_root, network_version))
        roots.append((f"{vector.id} post", vector.post_state_root, network_version))
    return VectorCorpus(store, roots, count)


@pytest.fixture(scope="module")
def index(actors_dir: Path) -> BundleIndex:
    return bundle_index(actors_dir)


@pytest.fixture(scope="module")
def scan(corpus: VectorCorpus, index: BundleIndex) -> StateTreeScan:
    result = StateTreeScan()
    visited: set[CID] = set()
    for where, root, network_version in corpus.state_roots:
        state_root = dag_cbor.decode(corpus.store.get(root) or b"", where)
        version, actors_root, _info = state_root
        assert version == STATE_TREE_VERSION[network_version], where
        result.root_versions[version] += 1
        for key, entry in _present_hamt_entries(corpus.store, actors_root, visited, result):
            Address.from_bytes(key, where)
            assert len(entry) == ACTOR_ENTRY_FIELDS[version], where
            code, head = entry[0], entry[1]
            result.actor_entries += 1
            actor = index.actor_type(code)
            assert actor is not None, f"{where}: code {code} is in no bundle"
            if corpus.store.get(head) is None:
                result.heads_missing[actor.name] += 1
                continue
            result.heads.setdefault((code, head), ActorHead(code, head, actor.version, actor.name))
    return result


# -- decoding ----------------------------------------------------------------------------------


def test_every_actor_state_in_the_vectors_decodes_with_its_schema(
    corpus: VectorCorpus, scan: StateTreeScan
) -> None:
    decoded: Counter[tuple[int, str]] = Counter()
    for actor in scan.heads.values():
        value = dag_cbor.decode(corpus.store.get(actor.head) or b"", str(actor.head))
        state = decode_state(actor.version, actor.name, value)
        assert list(state) == [f.name for f in schema_for(actor.version).state_fields(actor.name)]
        decoded[(actor.version, actor.name)] += 1
    print(f"\nactor heads decoded, by (actors version, type): {sorted(decoded.items())}")
    print(f"actor entries seen {scan.actor_entries}; heads absent {dict(scan.heads_missing)}")
    assert sum(scan.root_versions.values()) == 2 * corpus.vector_count
    # Both actors versions of the corpus, and the actors the acceptance criterion names.
    for version in (9, 10):
        for name in ("init", "storageminer", "storagemarket", "storagepower", "verifiedregistry"):
            assert decoded[(version, name)] > 0, (version, name)


# -- rebuilding every collection ---------------------------------------------------------------
#
# Raw-node helpers below are independent of store.hamt / store.amt (the code under test): they
# find the subtrees of a collection whose every node is present, and the entries under them.


@dataclass(slots=True)
class Subtree:
    """A node whose whole subtree is present: HAMT (depth, slot path) or AMT (height, offset)."""

    cid: CID
    level: int
    path: tuple[int, ...]
    offset: int
    entries: list[tuple[Any, Any]]


@dataclass(slots=True)
class NodeWalk:
    """Raw-node traversal with memory: a node's complete-subtree entries are computed once,
    however many roots (pre/post states, other vectors) share it."""

    store: MemoryBlockstore
    complete: dict[CID, list[tuple[Any, Any]]] = field(default_factory=dict)
    complete_amt: dict[tuple[CID, int], list[tuple[Any, Any]]] = field(default_factory=dict)
    checked: set[tuple[CID, str]] = field(default_factory=set)
    nodes: dict[CID, Any] = field(default_factory=dict)

    def node(self, cid: CID) -> Any | None:
        """The decoded block, or None when absent (decoded once)."""
        found = self.nodes.get(cid)
        if found is None:
            data = self.store.get(cid)
            if data is None:
                return None
            found = self.nodes[cid] = dag_cbor.decode(data, str(cid))
        return found

    def hamt(
        self, cid: CID, depth: int, path: tuple[int, ...], out: list[Subtree]
    ) -> list[tuple[Any, Any]] | None:
        """Entries under the node if its subtree is complete (None if not); maximal complete
        proper subtrees are appended to ``out``."""
        known = self.complete.get(cid)
        if known is not None:
            return known
        node = self.node(cid)
        if node is None:
            return None
        bitfield_bytes, pointers = node
        bitfield = int.from_bytes(bitfield_bytes, "big")
        slots = [slot for slot in range(bitfield.bit_length()) if bitfield >> slot & 1]
        entries: list[tuple[Any, Any]] = []
        complete: list[Subtree] = []
        whole = True
        for slot, pointer in zip(slots, pointers, strict=True):
            if isinstance(pointer, CID):
                child_path = (*path, slot)
                found = self.hamt(pointer, depth + 1, child_path, out)
                if found is None:
                    whole = False
                else:
                    entries.extend(found)
                    complete.append(Subtree(pointer, depth + 1, child_path, 0, found))
            else:
                entries.extend((key, value) for key, value in pointer)
        if whole:
            self.complete[cid] = entries
            return entries
        out.extend(complete)
        return None

    def amt(
        self, node: Any, bit_width: int, height: int, offset: int, out: list[Subtree]
    ) -> list[tuple[Any, Any]] | None:
        """As :meth:`hamt`, for an AMT node ``[bmap, links, values]`` at ``height``."""
        bmap, links, values = node
        width = 1 << bit_width
        bits = int.from_bytes(bmap, "little")
        slots = [slot for slot in range(width) if bits >> slot & 1]
        if height == 0:
            return [(offset + slot, value) for slot, value in zip(slots, values, strict=True)]
        span = width**height
        entries: list[tuple[Any, Any]] = []
        complete: list[Subtree] = []
        whole = True
        for slot, link in zip(slots, links, strict=True):
            child_offset = offset + slot * span
            found = self._amt_child(link, bit_width, height - 1, child_offset, out)
            if found is None:
                whole = False
            else:
                entries.extend(found)
                complete.append(Subtree(link, height - 1, (), child_offset, found))
        if whole:
            return entries
        out.extend(complete)
        return None

    def _amt_child(
        self, cid: CID, bit_width: int, height: int, offset: int, out: list[Subtree]
    ) -> list[tuple[Any, Any]] | None:
        # Entries carry absolute indices, so the memo is keyed by the node and its offset.
        known = self.complete_amt.get((cid, offset))
        if known is not None:
            return known
        node = self.node(cid)
        if node is None:
            return None
        found = self.amt(node, bit_width, height, offset, out)
        if found is not None:
            self.complete_amt[(cid, offset)] = found
        return found


def _rebuilt_hamt_node(subtree: Subtree, bit_width: int) -> CID:
    """Insert the subtree's entries (shuffled) into an empty HAMT and return the CID of the
    node at the subtree's depth: above it every node must hold one link, along its path."""
    fresh = MemoryBlockstore()
    hamt = HamtStore(fresh, bit_width=bit_width)
    entries = list(subtree.entries)
    random.Random(SHUFFLE_SEED).shuffle(entries)
    for key, value in entries:
        hamt.set(key, value)
    cid = hamt.flush()
    for slot in subtree.path:
        bitfield_bytes, pointers = dag_cbor.decode(fresh.get(cid) or b"", str(cid))
        assert int.from_bytes(bitfield_bytes, "big") == 1 << slot, subtree.path
        (cid,) = pointers
        assert isinstance(cid, CID)
    return cid


def _rebuilt_amt_node(subtree: Subtree, bit_width: int) -> bytes | None:
    """The bytes of the node at the subtree's height and offset in an AMT rebuilt from its
    entries (shuffled), or None when the rebuilt tree is too short to have that node."""
    fresh = MemoryBlockstore()
    amt = AmtStore(fresh, bit_width=bit_width)
    entries = list(subtree.entries)
    random.Random(SHUFFLE_SEED).shuffle(entries)
    for index, value in entries:
        amt.set(index, value)
    root = amt.flush()
    _width, height, _count, node = dag_cbor.decode(fresh.get(root) or b"", str(root))
    if height < subtree.level:
        return None
    width = 1 << bit_width
    while height > subtree.level:
        slot = subtree.offset // width**height % width
        bmap, links, _values = node
        assert int.from_bytes(bmap, "little") == 1 << slot, (subtree.offset, height)
        (link,) = links
        node = dag_cbor.decode(fresh.get(link) or b"", str(link))
        height -= 1
    return dag_cbor.encode(node)


@dataclass(slots=True)
class RebuildTally:
    whole: Counter[str] = field(default_factory=Counter)
    subtrees: Counter[str] = field(default_factory=Counter)
    partial_collections: Counter[str] = field(default_factory=Counter)
    root_missing: Counter[str] = field(default_factory=Counter)
    unsupported: Counter[str] = field(default_factory=Counter)
    # AMT subtrees at offset 0 whose entries all fit a lower tree: no node to compare with.
    too_short: Counter[str] = field(default_factory=Counter)
    entries: int = 0
    failures: list[str] = field(default_factory=list)


def _without_positions(path: str) -> str:
    """A path with its ``[key]`` parts dropped: ``storageminer.deadlines.due.partitions``."""
    out = []
    depth = 0
    for char in path:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _check_entries(ref: CollectionRef, version: int, entries: list[tuple[Any, Any]]) -> None:
    """Every key and value must decode with the schema."""
    schema = schema_for(version)
    for key, value in entries:
        if isinstance(ref.kind, Hamt):
            decode_key(ref.kind.key, key, ref.path)
        decode_value(schema, ref.kind.value, value, ref.path)


def _rebuild_collection(
    walk: NodeWalk, ref: CollectionRef, version: int, label: str, tally: RebuildTally
) -> None:
    store = walk.store
    subtrees: list[Subtree] = []
    if isinstance(ref.kind, Hamt):
        whole = walk.hamt(ref.root, 0, (), subtrees)
    else:
        root_block = walk.node(ref.root)
        assert root_block is not None, "only present roots are rebuilt"
        bit_width, height, _count, node = root_block
        whole = walk.amt(node, bit_width, height, 0, subtrees)
    if whole is not None:
        _check_entries(ref, version, whole)
        if isinstance(ref.kind, Hamt):
            report = rebuild_hamt(store, ref.root, bit_width=ref.bit_width, seed=SHUFFLE_SEED)
        else:
            report = rebuild_amt(store, ref.root, seed=SHUFFLE_SEED)
        tally.entries += len(whole)
        if report.ok and report.entries == len(whole):
            tally.whole[label] += 1
        else:
            tally.failures.append(f"{ref.path} {ref.root}: {report.differences}")
        return
    tally.partial_collections[label] += 1
    for subtree in subtrees:
        if (subtree.cid, label) in walk.checked:
            continue
        walk.checked.add((subtree.cid, label))
        _check_entries(ref, version, subtree.entries)
        tally.entries += len(subtree.entries)
        if isinstance(ref.kind, Hamt):
            same = _rebuilt_hamt_node(subtree, ref.bit_width) == subtree.cid
        else:
            rebuilt = _rebuilt_amt_node(subtree, ref.bit_width)
            if rebuilt is None:
                tally.too_short[label] += 1
                continue
            same = rebuilt == store.get(subtree.cid)
        if same:
            tally.subtrees[label] += 1
        else:
            tally.failures.append(f"{ref.path} {ref.root}: subtree {subtree.cid} differs")


@pytest.mark.slow
def test_hamts_and_amts_in_actor_states_rebuild_to_the_same_roots(
    corpus: VectorCorpus, scan: StateTreeScan
) -> None:
    tally = RebuildTally()
    walk = NodeWalk(corpus.store)
    seen: set[tuple[CID, str]] = set()
    missing_links: Counter[str] = Counter()
    for actor in scan.heads.values():
        value = dag_cbor.decode(corpus.store.get(actor.head) or b"", str(actor.head))
        walker = StateWalker(corpus.store, schema_for(actor.version))
        for ref in walker.collections(actor.name, value):
            label = f"{ref.type_name} {_without_positions(ref.path)}"
            if (ref.root, label) in seen:
                continue
            seen.add((ref.root, label))
            if isinstance(ref.kind, Kamt):
                tally.unsupported[label] += 1
            elif not ref.present:
                tally.root_missing[label] += 1
            else:
                _rebuild_collection(walk, ref, actor.version, label, tally)
        for gap in walker.missing:
            if gap.what == "linked block":
                missing_links[_without_positions(gap.path)] += 1
    print(
        "\nwhole collections rebuilt (same root and nodes) / complete subtrees of partial "
        "collections rebuilt (same node) / partial collections, by collection:"
    )
    for label in sorted(set(tally.whole) | set(tally.subtrees)):
        print(
            f"  {tally.whole[label]:5d} {tally.subtrees[label]:6d} "
            f"{tally.partial_collections[label]:5d}  {label}"
        )
    print(f"entries decoded with the schema: {tally.entries}")
    print(f"skipped, root block absent: {sum(tally.root_missing.values())}")
    print(f"skipped, no KAMT implementation: {dict(tally.unsupported)}")
    print(f"skipped, AMT subtree entries fit a shorter tree: {dict(tally.too_short)}")
    print(f"linked blocks absent: {dict(sorted(missing_links.items()))}")
    assert tally.failures == []
    for label in (
        "hamt init.address_map",
        "amt storageminer.sectors",
        "amt storagemarket.proposals",
        "amt storagemarket.states",
        "hamt storagepower.claims",
        "amt storageminer.deadlines.due.partitions",
        "amt storageminer.deadlines.due.partitions.expirations_epochs",
        "hamt verifiedregistry.allocations",
        "hamt datacap.token.balances",
        "hamt multisig.pending_txs",
    ):
        assert tally.whole[label] + tally.subtrees[label] > 0, label


# -- focused checks on single vectors and hand-made states ------------------------------------

MINER_VECTOR = (
    "extracted/0002-hygge-01/fil_10_storageminer/ExtendSectorExpiration/Ok/"
    "ext-0002-fil_10_storageminer-ExtendSectorExpiration-Ok-4.json"
)
DATACAP_VECTOR = (
    "extracted/0001-shark-01/fil_9_storagemarket/PublishStorageDeals/Ok/"
    "ext-0001-fil_9_storagemarket-PublishStorageDeals-Ok-1.json"
)


def _actor_states(
    vector_path: Path, index: BundleIndex, wanted: str
) -> Iterator[tuple[MemoryBlockstore, int, Any]]:
    """(store, actors version, decoded head) of every ``wanted`` actor in a vector's post state."""
    vector = load_vector(vector_path)
    store = vector.blockstore()
    scan = StateTreeScan()
    _version, actors_root, _info = dag_cbor.decode(store.get(vector.post_state_root) or b"")
    for _key, entry in _present_hamt_entries(store, actors_root, set(), scan):
        actor = index.actor_type(entry[0])
        head = store.get(entry[1])
        if actor is not None and actor.name == wanted and head is not None:
            yield store, actor.version, dag_cbor.decode(head)


def test_iter_collections_reaches_a_miners_nested_collections_with_their_bit_widths(
    vectors_dir: Path, index: BundleIndex
) -> None:
    store, version, state = next(_actor_states(vectors_dir / MINER_VECTOR, index, "storageminer"))
    assert version == 10
    refs = list(iter_collections(store, version, "storageminer", state))
    widths: dict[str, set[int]] = {}
    for ref in refs:
        widths.setdefault(re.sub(r"\[\d+\]", "[]", ref.path), set()).add(ref.bit_width)
    assert widths == {
        "storageminer.pre_committed_sectors": {5},
        "storageminer.pre_committed_sectors_cleanup": {6},
        "storageminer.sectors": {5},
        "storageminer.deadlines.due[].partitions": {3},
        "storageminer.deadlines.due[].partitions[].expirations_epochs": {4},
        "storageminer.deadlines.due[].partitions[].early_terminated": {3},
        "storageminer.deadlines.due[].expirations_epochs": {5},
        "storageminer.deadlines.due[].optimistic_post_submissions": {2},
        "storageminer.deadlines.due[].sectors_snapshot": {5},
        "storageminer.deadlines.due[].partitions_snapshot": {3},
        "storageminer.deadlines.due[].optimistic_post_submissions_snapshot": {2},
    }
    partitions = [r for r in refs if r.path.endswith(".partitions")]
    assert len(partitions) == 18 and all(r.present for r in partitions)
    assert all(r.type_name == "amt" for r in partitions)
    assert refs[0].type_name == "hamt" and refs[0].path == "storageminer.pre_committed_sectors"


def test_datacap_hamts_take_their_bit_width_from_the_token_state(
    vectors_dir: Path, index: BundleIndex
) -> None:
    store, version, state = next(_actor_states(vectors_dir / DATACAP_VECTOR, index, "datacap"))
    decoded = decode_state(version, "datacap", state)
    assert str(decoded["governor"]) == "f06"
    assert decoded["token"]["hamt_bit_width"] == 5
    refs = {ref.path: ref for ref in iter_collections(store, version, "datacap", state)}
    assert refs["datacap.token.balances"].bit_width == 5
    assert refs["datacap.token.balances"].present


def test_decode_state_maps_init_fields_by_name(vectors_dir: Path, index: BundleIndex) -> None:
    _store, version, state = next(_actor_states(vectors_dir / MINER_VECTOR, index, "init"))
    decoded = decode_state(version, "init", state)
    assert list(decoded) == ["address_map", "next_id", "network_name"]
    assert decoded["network_name"] == "mainnet"
    assert decoded["next_id"] > 1_000_000
    assert isinstance(decoded["address_map"], CID)


def _paych_state(lanes_root: CID) -> list[Any]:
    sender = Address.new_id(1001).to_bytes()
    recipient = Address.new_id(1002).to_bytes()
    return [sender, recipient, b"", 0, 0, lanes_root]


def test_amt_with_a_bit_width_the_actors_never_use_is_a_schema_mismatch() -> None:
    store = MemoryBlockstore()
    lanes = AmtStore(store, bit_width=5)
    lanes.set(0, [b"\x00\x0a", 1])
    with pytest.raises(SchemaMismatch, match="bit width 5"):
        list(iter_collections(store, 9, "paymentchannel", _paych_state(lanes.flush())))


def test_paych_lane_states_are_found_at_their_width_and_decode() -> None:
    store = MemoryBlockstore()
    lanes = AmtStore(store, bit_width=3)
    lanes.set(4, [b"\x00\x0a", 7])
    (ref,) = iter_collections(store, 9, "paymentchannel", _paych_state(lanes.flush()))
    assert (ref.path, ref.type_name, ref.bit_width, ref.present) == (
        "paymentchannel.lane_states",
        "amt",
        3,
        True,
    )
    ((index, lane),) = AmtStore(store, ref.root).items()
    schema = schema_for(9)
    assert (index, decode_value(schema, Struct("paych.LaneState"), lane, "lane")) == (
        4,
        {"redeemed": 10, "nonce": 7},
    )


def test_walker_records_absent_blocks_instead_of_failing() -> None:
    store = MemoryBlockstore()
    absent = CID.hash_of(b"\x80")
    walker = StateWalker(store, schema_for(9))
    refs = list(walker.collections("paymentchannel", _paych_state(absent)))
    assert [(r.path, r.present) for r in refs] == [("paymentchannel.lane_states", False)]
    assert [(m.path, m.cid, m.what) for m in walker.missing] == [
        ("paymentchannel.lane_states", absent, "collection root")
    ]


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([Address.new_id(7).to_bytes(), b"extra"], "expected 1 fields, found 2"),
        ([], "expected 1 fields, found 0"),
        ({"address": b"\x00\x07"}, "expected an array"),
        ([b"\x07"], "address"),
        ([7], "expected an address byte string"),
    ],
)
def test_account_state_with_wrong_arity_or_types_is_refused(state: Any, message: str) -> None:
    with pytest.raises(SchemaMismatch, match=message):
        decode_state(10, "account", state)


def test_bigints_follow_fvm_shared_bigint_ser() -> None:
    schema = schema_for(9)
    token = schema.state_fields("paymentchannel")[2].kind
    assert decode_value(schema, token, b"", "t") == 0
    assert decode_value(schema, token, b"\x00\x01\x00", "t") == 256
    assert decode_value(schema, token, b"\x01\x05", "t") == -5
    with pytest.raises(SchemaMismatch, match="sign byte"):
        decode_value(schema, token, b"\x02\x05", "t")
    with pytest.raises(SchemaMismatch, match="exceeds 128"):
        decode_value(schema, token, b"\x00" + b"\xff" * 128, "t")


@pytest.mark.parametrize(
    ("key_type", "key", "decoded"),
    [
        (KeyType.UVARINT, b"\xac\x02", 300),
        (KeyType.VARINT, b"\x01", -1),
        (KeyType.VARINT, b"\x02", 1),
        (KeyType.ADDRESS, b"\x00\x64", Address.new_id(100)),
        (KeyType.ADDRESS_PAIR, b"\x00\x64\x00\x65", (Address.new_id(100), Address.new_id(101))),
        (KeyType.U256, b"\x01\x00", 256),
    ],
)
def test_keys_decode_by_their_key_type(key_type: KeyType, key: bytes, decoded: Any) -> None:
    assert decode_key(key_type, key, "key") == decoded


@pytest.mark.parametrize(
    ("key_type", "key"),
    [
        (KeyType.UVARINT, b"\x80\x00"),
        (KeyType.UVARINT, b"\x01\x02"),
        (KeyType.CID, b"\x01\x71"),
        (KeyType.U256, b"\x01" * 33),
    ],
)
def test_malformed_keys_are_refused(key_type: KeyType, key: bytes) -> None:
    with pytest.raises(SchemaMismatch):
        decode_key(key_type, key, "key")


def test_unknown_version_or_actor_type_is_a_typed_error() -> None:
    with pytest.raises(UnknownSchema):
        decode_state(8, "account", [b"\x00\x07"])
    with pytest.raises(UnknownSchema):
        decode_state(9, "evm", [])
    assert decode_state(10, "placeholder", []) == {}


def _struct_names(kind: Kind) -> Iterator[str]:
    if isinstance(kind, Struct):
        yield kind.name
    elif isinstance(kind, Nullable | Link):
        yield from _struct_names(kind.inner if isinstance(kind, Nullable) else kind.target)
    elif isinstance(kind, ListOf):
        yield from _struct_names(kind.item)
    elif isinstance(kind, Hamt | Amt | Kamt):
        yield from _struct_names(kind.value)


@pytest.mark.parametrize("version", sorted(SCHEMAS))
def test_every_struct_a_schema_names_is_defined(version: int) -> None:
    schema = SCHEMAS[version]
    named = {
        name for fields in schema.structs.values() for f in fields for name in _struct_names(f.kind)
    }
    assert named <= set(schema.structs)
    assert set(schema.states.values()) <= set(schema.structs)


# -- actors v16-v18 (no real state of these versions in ../shared: hand-made values) -----------


def _v16_sector(*, with_daily_fee: bool) -> list[Any]:
    sealed = CID.parse("bagboea4b5abcatlxechwbp7kjpjguna6r6q7ejrhe6mdp3lf34pmswn27pkkiekz")
    sector = [7, 8, sealed, [], 100, 200, b"", b"", b"\x00\x01", None, None, 100, None, None, 1]
    return [*sector, b"\x00\x05"] if with_daily_fee else sector


@pytest.mark.parametrize("version", [16, 17, 18])
def test_v16_sector_info_decodes_with_or_without_the_fip0100_daily_fee(version: int) -> None:
    schema = schema_for(version)
    kind = Struct("miner.SectorOnChainInfo")
    old = decode_value(schema, kind, _v16_sector(with_daily_fee=False), "sector")
    new = decode_value(schema, kind, _v16_sector(with_daily_fee=True), "sector")
    assert (old["daily_fee"], new["daily_fee"]) == (0, 5)
    assert old["power_base_epoch"] == 100 and old["flags"] == 1
    with pytest.raises(SchemaMismatch, match="expected 15-16 fields, found 14"):
        decode_value(schema, kind, _v16_sector(with_daily_fee=False)[:14], "sector")
    with pytest.raises(SchemaMismatch, match="expected 15 fields, found 16"):
        decode_value(schema_for(10), kind, _v16_sector(with_daily_fee=True), "sector")


def test_v16_miner_vesting_funds_are_inline_with_a_linked_tail() -> None:
    store = MemoryBlockstore()
    tail = CID.hash_of(dag_cbor.encode([[2000, b"\x00\x02"]]))
    store.put_keyed(tail, dag_cbor.encode([[2000, b"\x00\x02"]]))
    absent = CID.hash_of(b"\x80")
    state = [
        absent, b"", b"", [[1000, b"\x00\x01"], tail], b"", b"", absent, absent, absent,
        absent, 0, 0, absent, b"", False,
    ]  # fmt: skip
    decoded = decode_state(16, "storageminer", state)
    assert decoded["vesting_funds"] == {"head": {"epoch": 1000, "amount": 1}, "tail": tail}
    walker = StateWalker(store, schema_for(16))
    refs = list(walker.collections("storageminer", state))
    assert [r.path for r in refs] == [
        "storageminer.pre_committed_sectors",
        "storageminer.pre_committed_sectors_cleanup",
        "storageminer.sectors",
    ]
    assert {m.path for m in walker.missing} == {
        "storageminer.info",
        "storageminer.pre_committed_sectors",
        "storageminer.pre_committed_sectors_cleanup",
        "storageminer.allocated_sectors",
        "storageminer.sectors",
        "storageminer.deadlines",
    }
    with pytest.raises(SchemaMismatch, match="expected 15 fields, found 14"):
        decode_state(9, "storageminer", state[:14])


def test_token_state_with_an_impossible_hamt_bit_width_is_a_schema_mismatch() -> None:
    store = MemoryBlockstore()
    empty = HamtStore(store, bit_width=5).flush()
    governor = Address.new_id(6).to_bytes()
    for width in (0, 9):
        state = [governor, [b"", empty, empty, width]]
        with pytest.raises(SchemaMismatch, match="HAMT bit width"):
            list(iter_collections(store, 9, "datacap", state))
