"""State diffs: the pruned HAMT diff against a plain dict diff, and actor/field diffs of a real
devnet genesis state (v10 bundle) changed in known places."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from devnet_chain import DevnetKeys
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsync.state_diff import (
    ABSENT,
    diff_actor_state,
    diff_state_trees,
    hamt_diff,
    render,
)
from fvm.actor_schemas import UnknownSchema
from fvm.address import STORAGE_POWER_ACTOR_ADDR, Address
from fvm.bundle import Bundle
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION, encode_bigint
from node.devnet.genesis import DevnetGenesis
from store import dag_cbor
from store.amt import Amt
from store.bitfield import BitField
from store.blockstore import MemoryBlockstore, put
from store.cid import CID
from store.errors import MalformedInput
from store.hamt import Hamt

KEYS = DevnetKeys.labelled("diff")
ALICE, BOB = KEYS.alice, KEYS.bob


# -- HAMT diff ----------------------------------------------------------------------------------


def build(store: MemoryBlockstore, entries: dict[bytes, Any], bit_width: int) -> CID:
    hamt = Hamt(store, bit_width=bit_width)
    for key, value in entries.items():
        hamt.set(key, value)
    return hamt.flush()


def naive(mine: dict[bytes, Any], theirs: dict[bytes, Any]) -> list[tuple[bytes, Any, Any]]:
    out = []
    for key in sorted(mine.keys() | theirs.keys()):
        left, right = mine.get(key, ABSENT), theirs.get(key, ABSENT)
        if left is ABSENT or right is ABSENT or left != right:
            out.append((key, left, right))
    return out


maps = st.dictionaries(st.binary(min_size=1, max_size=6), st.integers(0, 3), max_size=60)


@settings(max_examples=60, deadline=None)
@given(
    common=maps,
    only_mine=maps,
    only_theirs=maps,
    bit_width=st.sampled_from([1, 2, 5]),
)
def test_hamt_diff_is_the_dict_diff(
    common: dict[bytes, int],
    only_mine: dict[bytes, int],
    only_theirs: dict[bytes, int],
    bit_width: int,
) -> None:
    store = MemoryBlockstore()
    mine = common | only_mine
    theirs = common | only_theirs
    found = hamt_diff(
        store, build(store, mine, bit_width), build(store, theirs, bit_width), bit_width=bit_width
    )
    assert found == naive(mine, theirs)


def test_hamt_diff_tells_a_null_value_from_an_absent_key() -> None:
    store = MemoryBlockstore()
    mine = build(store, {b"a": None, b"b": 1}, 5)
    theirs = build(store, {b"b": 1}, 5)
    assert hamt_diff(store, mine, theirs) == [(b"a", None, ABSENT)]
    assert hamt_diff(store, mine, mine) == []


def test_hamt_diff_reads_only_the_changed_path() -> None:
    store = MemoryBlockstore()
    entries = {i.to_bytes(2, "big"): i for i in range(2000)}
    mine = build(store, entries, 5)
    theirs = build(store, entries | {b"\x00\x07": -7}, 5)
    reads: list[CID] = []

    class Counting(MemoryBlockstore):
        def get(self, cid: CID) -> bytes | None:
            reads.append(cid)
            return store.get(cid)

    assert hamt_diff(Counting(), mine, theirs) == [(b"\x00\x07", 7, -7)]
    assert 0 < len(reads) <= 8  # two root-to-leaf paths, not the ~100 nodes of each tree


def test_hamt_diff_refuses_a_block_that_is_not_a_node() -> None:
    store = MemoryBlockstore()
    good = build(store, {b"a": 1}, 5)
    bad = put(store, dag_cbor.encode([1, 2, 3]))
    with pytest.raises(MalformedInput):
        hamt_diff(store, good, bad)


def test_render_makes_json_values() -> None:
    cid = put(MemoryBlockstore(), dag_cbor.encode([]))
    assert render(b"\x01\xff") == "0x01ff"
    assert render(cid) == str(cid)
    assert render(Address.new_id(7)) == "f07"
    assert render(BitField.from_indices([0, 1, 2, 7])) == "0-2,7"
    assert render({1: [b"", None, True]}) == {"1": ["0x", None, True]}


# -- actor and field diffs on a real genesis state ---------------------------------------------


@pytest.fixture(scope="module")
def genesis(devnet_bundle: Bundle) -> DevnetGenesis:
    return KEYS.genesis(devnet_bundle, 10 * FILECOIN_PRECISION)


def copy_of(genesis: DevnetGenesis) -> MemoryBlockstore:
    """A scratch copy of the genesis store, to change state in."""
    assert isinstance(genesis.store, MemoryBlockstore)
    return MemoryBlockstore(genesis.store.items())


def changed_power_state(store: Any, head: CID, miner: Address) -> CID:
    """The power actor's state with: total raw power 2048, the miner's claim raised to 2048
    bytes, a new claim for f0999, and a cron event at epoch 40."""
    state = dag_cbor.decode(store.get(head))
    state[0] = encode_bigint(2048)
    claims = Hamt(store, state[13])
    existing = claims.get(miner.to_bytes())
    assert existing is not None
    claim = list(existing)
    claim[1] = encode_bigint(2048)
    claims.set(miner.to_bytes(), claim)
    claims.set(Address.new_id(999).to_bytes(), [8, encode_bigint(1), encode_bigint(1)])
    state[13] = claims.flush()
    queue = Hamt(store, state[11], bit_width=6)
    events = Amt.from_list(store, [[miner.to_bytes(), b"\x01"]], bit_width=6).flush()
    queue.set(bytes([40 * 2]), events)  # the zigzag varint of 40
    state[11] = queue.flush()
    return put(store, dag_cbor.encode(state))


def test_power_state_fields_are_diffed_by_name_and_key(genesis: DevnetGenesis) -> None:
    store = copy_of(genesis)
    tree = StateTree(store, genesis.state_root)
    power = tree.get_actor(STORAGE_POWER_ACTOR_ADDR)
    assert power is not None
    changed = changed_power_state(store, power.state, genesis.miner)
    diffs, truncated = diff_actor_state(store, 10, "storagepower", changed, power.state)
    assert not truncated
    by_path = {diff.path: (diff.computed, diff.expected) for diff in diffs}
    miner = str(genesis.miner)
    assert by_path.pop("total_raw_byte_power") == (2048, 0)
    assert by_path.pop(f"claims[{miner}].raw_byte_power") == (2048, 0)
    assert by_path.pop("claims[f0999]") == (
        {"window_post_proof_type": 8, "raw_byte_power": 1, "quality_adj_power": 1},
        None,
    )
    computed, expected = by_path.pop("cron_event_queue[40]")
    assert isinstance(computed, str) and computed.startswith("bafy") and expected is None
    assert by_path == {}
    assert diff_actor_state(store, 10, "storagepower", power.state, power.state) == ([], False)
    limited, cut = diff_actor_state(store, 10, "storagepower", changed, power.state, max_diffs=2)
    assert cut and len(limited) == 2


def test_unknown_types_and_versions_are_refused(genesis: DevnetGenesis) -> None:
    store = genesis.store
    with pytest.raises(UnknownSchema):
        diff_actor_state(store, 10, "no-such-actor", genesis.state_root, genesis.state_root)
    with pytest.raises(UnknownSchema):
        diff_actor_state(store, 3, "storagepower", genesis.state_root, genesis.state_root)


def test_state_trees_are_diffed_actor_by_actor(
    genesis: DevnetGenesis, devnet_bundle: Bundle
) -> None:
    store = copy_of(genesis)
    tree = StateTree(store, genesis.state_root)
    alice_id = tree.lookup_id(ALICE.address)
    assert alice_id is not None
    tree.mutate_actor(alice_id, lambda actor: replace(actor, balance=actor.balance - 5))
    power = tree.get_actor(STORAGE_POWER_ACTOR_ADDR)
    assert power is not None
    tree.set_actor(
        STORAGE_POWER_ACTOR_ADDR,
        replace(power, state=changed_power_state(store, power.state, genesis.miner)),
    )
    account = tree.get_actor(alice_id)
    assert account is not None
    tree.set_actor(4321, replace(account, state=put(store, dag_cbor.encode([b"garbage"]))))
    computed_root = tree.flush()

    diff = diff_state_trees(
        store,
        computed_root,
        genesis.state_root,
        actors_version=10,
        actor_name_of=devnet_bundle.manifest.name_of,
    )
    assert diff.header == ()
    by_address = {actor.address: actor for actor in diff.actors}
    assert sorted(by_address) == sorted(
        [Address.new_id(alice_id), STORAGE_POWER_ACTOR_ADDR, Address.new_id(4321)]
    )
    alice = by_address[Address.new_id(alice_id)]
    assert alice.actor_type == "account" and alice.changed == ("balance",)
    assert alice.computed is not None and alice.expected is not None
    assert alice.expected.balance - alice.computed.balance == 5
    assert alice.fields == ()
    power_diff = by_address[STORAGE_POWER_ACTOR_ADDR]
    assert power_diff.actor_type == "storagepower" and power_diff.changed == ("head",)
    assert {field.path for field in power_diff.fields} >= {"total_raw_byte_power", "claims[f0999]"}
    added = by_address[Address.new_id(4321)]
    assert added.expected is None and added.actor_type == "account"
    assert added.field_error is None and added.fields == ()
    document = diff.to_json()
    assert document["computed_root"] == str(computed_root)
    assert {actor["address"] for actor in document["actors"]} == {
        f"f0{alice_id}",
        "f04",
        "f04321",
    }


def test_undecodable_state_is_an_error_on_that_actor_only(
    genesis: DevnetGenesis, devnet_bundle: Bundle
) -> None:
    store = copy_of(genesis)
    tree = StateTree(store, genesis.state_root)
    garbage = put(store, dag_cbor.encode(["not", "a", "power", "state"]))
    tree.mutate_actor(STORAGE_POWER_ACTOR_ADDR, lambda actor: replace(actor, state=garbage))
    diff = diff_state_trees(
        store,
        tree.flush(),
        genesis.state_root,
        actors_version=10,
        actor_name_of=devnet_bundle.manifest.name_of,
    )
    (power,) = diff.actors
    assert power.fields == ()
    assert power.field_error is not None and "SchemaMismatch" in power.field_error
