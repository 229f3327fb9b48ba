"""The state tree against real state: every vector's pre/post trees and the mainnet genesis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fvm.actor_state import EMPTY_ARRAY_CID, ActorState, ActorStateError
from fvm.address import Address
from fvm.conformance.vector import find_vectors, load_vector
from fvm.message import Message
from fvm.network_version import (
    StateTreeVersion,
    actors_version_for,
    state_tree_version_for,
)
from fvm.state_tree import (
    ActorNotFound,
    InitActorState,
    StateTree,
    StateTreeError,
    StateTreeUsageError,
    load_state_root,
)
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore, put
from store.car import read_car
from store.cid import CID, IDENTITY, RAW
from store.hamt import LAYOUT_V3, Hamt

ACCOUNT_CODE = CID.hash_of(b"fil/test/dummyaccount", RAW, IDENTITY)
INIT_CODE = CID.hash_of(b"fil/test/dummyinit", RAW, IDENTITY)
SECP_ADDR = Address.new_secp256k1(bytes([2]) * 65)


def _present_entries(store: Blockstore, root: CID, skip: set[CID]) -> dict[bytes, Any]:
    """Entries of every HAMT node reachable from ``root`` that the store holds, except the
    subtrees in ``skip`` (shared with a tree already walked); visited nodes join ``skip``."""
    entries: dict[bytes, Any] = {}
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in skip:
            continue
        skip.add(cid)
        data = store.get(cid)
        if data is None:
            continue
        _, pointers = dag_cbor.decode(data)
        for pointer in pointers:
            if isinstance(pointer, CID):
                stack.append(pointer)
            else:
                entries.update((key, value) for key, value in pointer)
    return entries


@pytest.mark.slow
def test_every_vector_state_decodes_resolves_senders_and_replays_to_the_post_root(
    vectors_dir: Path,
) -> None:
    """For each vector: every actor present in the pre/post trees decodes and re-encodes to the
    same bytes; the sender resolves through the init actor with the message's nonce before and
    the next one after; and writing the pre-to-post actor changes into the pre tree flushes to
    exactly the recorded post state root."""
    actors_checked = 0
    delegated = 0
    versions_seen: set[StateTreeVersion] = set()
    for path in find_vectors(vectors_dir):
        vector = load_vector(path)
        store = vector.blockstore(verify=False)
        version = state_tree_version_for(vector.variants[0].network_version)
        pre_version, pre_actors, pre_info = load_state_root(store, vector.pre_state_root)
        post_version, post_actors, post_info = load_state_root(store, vector.post_state_root)
        assert pre_version == post_version == version
        assert pre_info == post_info
        versions_seen.add(version)

        walked: set[CID] = set()
        before = _present_entries(store, pre_actors, walked)
        changed = _present_entries(store, post_actors, walked)
        pre_tree = StateTree(store, vector.pre_state_root, version=version)
        for value in [*before.values(), *changed.values()]:
            actor = ActorState.from_cbor(value, version, str(path))
            assert actor.encode(version) == dag_cbor.encode(value)
            delegated += actor.delegated_address is not None
            actors_checked += 1

        post_tree = StateTree(store, vector.post_state_root)
        for applied in vector.messages:
            message = Message.decode(applied.data)
            sender_before = pre_tree.get_actor(message.from_)
            sender_after = post_tree.get_actor(message.from_)
            assert sender_before is not None and sender_after is not None
            assert sender_before.sequence == message.sequence
            assert sender_after.sequence == message.sequence + 1
            assert pre_tree.lookup_id(message.from_) == post_tree.lookup_id(message.from_)
            assert pre_tree.get_actor(message.to) is not None

        for key, value in changed.items():
            if before.get(key) != value:
                pre_tree.set_actor(Address.from_bytes(key), ActorState.from_cbor(value, version))
        assert pre_tree.flush() == vector.post_state_root
    assert versions_seen == {StateTreeVersion.V4, StateTreeVersion.V5}
    assert actors_checked > 150_000
    assert delegated > 0


@pytest.fixture(scope="module")
def genesis(mainnet_genesis: Path) -> tuple[MemoryBlockstore, CID]:
    header, blocks = read_car(mainnet_genesis)
    store = MemoryBlockstore(blocks)
    block = dag_cbor.decode(store.get(header.roots[0]) or b"")
    state_root = block[8]
    assert isinstance(state_root, CID)
    return store, state_root


def test_mainnet_genesis_state_is_a_bare_version_0_hamt(
    genesis: tuple[MemoryBlockstore, CID],
) -> None:
    store, root = genesis
    assert str(root) == "bafy2bzacech3yb7xlb7c57v2xh7rvmt4skeidk7z2g36llksaz4biflblbt24"
    assert load_state_root(store, root) == (StateTreeVersion.V0, root, None)
    tree = StateTree(store, root)
    assert tree.version == StateTreeVersion.V0
    assert tree.info is None
    assert state_tree_version_for(0) == StateTreeVersion.V0


def test_mainnet_genesis_actors_hold_the_whole_supply(
    genesis: tuple[MemoryBlockstore, CID],
) -> None:
    store, root = genesis
    actors = list(StateTree(store, root).actors())
    assert len(actors) == 37
    assert sum(actor.balance for _, actor in actors) == 2_000_000_000 * 10**18
    ids = {addr.id for addr, _ in actors}
    assert {0, 1, 2, 3, 4, 5, 6, 80, 81, 90, 99, 1000, 1001, 1002} <= ids
    reward = dict(actors)[Address.new_id(2)]
    assert reward.balance == 1_100_000_000 * 10**18
    assert reward.code == CID.hash_of(b"fil/1/reward", RAW, IDENTITY)
    for _, actor in actors:
        assert ActorState.from_cbor(actor.to_cbor(StateTreeVersion.V0), StateTreeVersion.V0) == (
            actor
        )


def test_mainnet_genesis_init_actor_resolves_its_whole_address_map(
    genesis: tuple[MemoryBlockstore, CID],
) -> None:
    store, root = genesis
    tree = StateTree(store, root)
    init = tree.get_actor(1)
    assert init is not None
    state = InitActorState.from_cbor(dag_cbor.decode(store.get(init.state) or b""))
    assert (state.next_id, state.network_name) == (1003, "testnetnet")
    mapping = list(Hamt(store, state.address_map, version=0).items())
    assert len(mapping) == 18
    for key, actor_id in mapping:
        addr = Address.from_bytes(key)
        assert tree.lookup_id(addr) == actor_id
        assert tree.get_actor(addr) == tree.get_actor(actor_id) is not None
    assert tree.lookup_id(Address.parse("f1cadxk4yywa7hfaiz3rs23t3wmyn7cjcdy5rtm4q")) == 106
    assert tree.lookup_id(SECP_ADDR) is None
    assert tree.get_actor(SECP_ADDR) is None


def test_unchanged_genesis_tree_flushes_to_the_same_root(
    genesis: tuple[MemoryBlockstore, CID],
) -> None:
    store, root = genesis
    tree = StateTree(store, root)
    for addr, actor in list(tree.actors()):
        tree.set_actor(addr, actor)
    assert tree.flush() == root


def test_genesis_tree_edits_flush_in_the_old_layout_and_reload(
    genesis: tuple[MemoryBlockstore, CID],
) -> None:
    store, root = genesis
    scratch = MemoryBlockstore(store.items())
    tree = StateTree(scratch, root)
    burnt = tree.get_actor(99)
    assert burnt is not None
    tree.set_actor(99, replace(burnt, balance=burnt.balance + 5))
    tree.delete_actor(1002)
    new_id = tree.register_new_address(SECP_ADDR)
    assert new_id == 1003
    tree.set_actor(new_id, ActorState.new_empty(ACCOUNT_CODE))
    new_root = tree.flush()
    assert new_root != root

    reloaded = StateTree(scratch, new_root)
    assert reloaded.version == StateTreeVersion.V0
    assert reloaded.get_actor(99) == replace(burnt, balance=burnt.balance + 5)
    assert reloaded.get_actor(1002) is None
    assert reloaded.lookup_id(SECP_ADDR) == 1003
    assert reloaded.get_actor(SECP_ADDR) == ActorState.new_empty(ACCOUNT_CODE)
    assert len(list(reloaded.actors())) == 37


def _tree_with_init(store: MemoryBlockstore) -> StateTree:
    empty_map = Hamt(store, version=LAYOUT_V3).flush()
    init_state = InitActorState(empty_map, 100, "test")
    state_cid = put(store, dag_cbor.encode(init_state.to_cbor()))
    tree = StateTree(store)
    tree.set_actor(1, ActorState(INIT_CODE, state_cid, 1, 0))
    return tree


def test_new_tree_is_version_5_with_an_empty_info_and_reloads_after_flush() -> None:
    store = MemoryBlockstore()
    tree = StateTree(store)
    assert tree.version == StateTreeVersion.V5
    assert tree.info == EMPTY_ARRAY_CID
    tree.set_actor(101, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 1, 55))
    tree.set_actor(102, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 1, 55, SECP_ADDR))
    root = tree.flush()
    assert dag_cbor.decode(store.get(root) or b"")[0] == 5
    reloaded = StateTree(store, root, version=StateTreeVersion.V5)
    assert reloaded.get_actor(101) == ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 1, 55)
    assert reloaded.get_actor(Address.new_id(102)) == ActorState(
        ACCOUNT_CODE, ACCOUNT_CODE, 1, 55, SECP_ADDR
    )
    assert reloaded.get_actor(103) is None
    assert sorted(addr.id for addr, _ in reloaded.actors()) == [101, 102]
    with pytest.raises(StateTreeError, match="expected a V4 state tree, found V5"):
        StateTree(store, root, version=StateTreeVersion.V4)


def test_set_actor_is_visible_before_flush_and_actors_lists_pending_changes() -> None:
    store = MemoryBlockstore()
    tree = StateTree(store)
    tree.set_actor(1, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 1, 0))
    tree.set_actor(1, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 2, 0))
    assert tree.get_actor(1) == ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 2, 0)
    tree.flush()
    tree.set_actor(5, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 0, 9))
    tree.delete_actor(1)
    assert [(addr.id, actor.balance) for addr, actor in tree.actors()] == [(5, 9)]


def test_version_4_tree_writes_4_field_actors_and_refuses_delegated_addresses() -> None:
    store = MemoryBlockstore()
    tree = StateTree(store, version=StateTreeVersion.V4)
    tree.set_actor(7, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 3, 10))
    root = tree.flush()
    version, actors_root, _ = load_state_root(store, root)
    assert version == StateTreeVersion.V4
    stored = Hamt(store, actors_root).get(Address.new_id(7).to_bytes())
    assert stored == [ACCOUNT_CODE, ACCOUNT_CODE, 3, b"\x00\x0a"]
    tree.set_actor(8, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 0, 0, SECP_ADDR))
    with pytest.raises(ActorStateError, match="cannot record a delegated address"):
        tree.flush()


def test_actor_field_count_must_match_the_tree_version() -> None:
    four = [ACCOUNT_CODE, ACCOUNT_CODE, 0, b""]
    assert ActorState.from_cbor(four, StateTreeVersion.V4) == ActorState(ACCOUNT_CODE, ACCOUNT_CODE)
    with pytest.raises(ActorStateError, match="5 fields"):
        ActorState.from_cbor(four, StateTreeVersion.V5)
    with pytest.raises(ActorStateError, match="4 fields"):
        ActorState.from_cbor([*four, None], StateTreeVersion.V4)
    with pytest.raises(ActorStateError, match="sequence"):
        ActorState.from_cbor([ACCOUNT_CODE, ACCOUNT_CODE, -1, b"", None])
    with pytest.raises(ActorStateError, match="CIDs"):
        ActorState.from_cbor([b"x", ACCOUNT_CODE, 0, b"", None])


def test_reverted_transaction_discards_its_changes() -> None:
    tree = StateTree(MemoryBlockstore())
    tree.begin_transaction()
    tree.set_actor(1, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 1, 55))
    tree.end_transaction(revert=True)
    tree.flush()
    assert tree.get_actor(1) is None


def test_nested_transactions_revert_only_the_inner_layer() -> None:
    tree = StateTree(MemoryBlockstore())
    outer = ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 1, 1)
    tree.set_actor(3, outer)
    tree.begin_transaction()
    tree.set_actor(3, replace(outer, balance=2))
    tree.begin_transaction()
    tree.set_actor(3, replace(outer, balance=3))
    tree.delete_actor(4)
    tree.end_transaction(revert=True)
    assert tree.get_actor(3) == replace(outer, balance=2)
    with pytest.raises(StateTreeUsageError, match="inside of a transaction"):
        tree.flush()
    tree.end_transaction(revert=False)
    assert not tree.in_transaction
    tree.flush()
    assert tree.get_actor(3) == replace(outer, balance=2)
    with pytest.raises(StateTreeUsageError, match="no transaction"):
        tree.end_transaction(revert=False)


def test_transaction_context_reverts_on_error_and_keeps_on_success() -> None:
    tree = StateTree(MemoryBlockstore())
    with pytest.raises(RuntimeError), tree.transaction():
        tree.set_actor(1, ActorState(ACCOUNT_CODE, ACCOUNT_CODE))
        raise RuntimeError("abort")
    assert tree.get_actor(1) is None
    with tree.transaction():
        tree.set_actor(1, ActorState(ACCOUNT_CODE, ACCOUNT_CODE))
    assert tree.get_actor(1) == ActorState(ACCOUNT_CODE, ACCOUNT_CODE)


def test_register_new_address_assigns_the_next_id_and_reverts_with_its_transaction() -> None:
    store = MemoryBlockstore()
    tree = _tree_with_init(store)
    tree.begin_transaction()
    assert tree.register_new_address(SECP_ADDR) == 100
    assert tree.lookup_id(SECP_ADDR) == 100
    tree.end_transaction(revert=True)
    assert tree.lookup_id(SECP_ADDR) is None

    assert tree.register_new_address(SECP_ADDR) == 100
    other = Address.new_actor(b"other")
    assert tree.register_new_address(other) == 101
    root = tree.flush()
    reloaded = StateTree(store, root)
    assert reloaded.lookup_id(SECP_ADDR) == 100
    assert reloaded.lookup_id(other) == 101
    init = reloaded.get_actor(1)
    assert init is not None
    state = InitActorState.from_cbor(dag_cbor.decode(store.get(init.state) or b""))
    assert (state.next_id, state.network_name) == (102, "test")


def test_mutate_actor_replaces_an_existing_actor_and_refuses_missing_ones() -> None:
    tree = _tree_with_init(MemoryBlockstore())
    tree.set_actor(100, ActorState(ACCOUNT_CODE, ACCOUNT_CODE, 0, 10))
    changed = tree.mutate_actor(100, lambda actor: replace(actor, sequence=actor.sequence + 1))
    assert changed.sequence == 1
    assert tree.get_actor(100) == changed
    with pytest.raises(ActorNotFound):
        tree.mutate_actor(200, lambda actor: actor)
    with pytest.raises(ActorNotFound, match="actor not found"):
        tree.set_actor(SECP_ADDR, ActorState(ACCOUNT_CODE, ACCOUNT_CODE))


def test_lookup_without_an_init_actor_is_an_error() -> None:
    with pytest.raises(StateTreeError, match="init actor"):
        StateTree(MemoryBlockstore()).lookup_id(SECP_ADDR)


def test_state_root_with_an_unknown_version_is_rejected() -> None:
    store = MemoryBlockstore()
    empty = Hamt(store).flush()
    root = put(store, dag_cbor.encode([9, empty, EMPTY_ARRAY_CID]))
    with pytest.raises(StateTreeError, match="unsupported state tree version 9"):
        StateTree(store, root)


def test_network_version_tables_match_lotus() -> None:
    assert [state_tree_version_for(nv) for nv in (0, 3, 4, 9, 10, 11, 12, 13, 17, 18, 29)] == [
        0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 5
    ]  # fmt: skip
    assert actors_version_for(17) == 9
    assert actors_version_for(18) == 10
    assert actors_version_for(20) == 11
    assert actors_version_for(28) == 18
    with pytest.raises(ValueError, match="unsupported network version 30"):
        state_tree_version_for(30)
