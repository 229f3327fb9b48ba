"""The devnet genesis built through the FVM with the real v10 devnet bundle.

Checks the state the v10 actors' own constructors wrote (every singleton with its devnet code
CID, decoding with the v10 state schemas; the init actor's name and address map; the miner and
its keys; Lotus's balance layout), that building is deterministic, and that the header has the
form of the real mainnet and calibnet genesis headers (sharing their sentinel parent, message
meta and receipts CIDs, which depend only on emptiness).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chainsync.base_fee import INITIAL_BASE_FEE
from chainsync.chain_types import BlockHeader, MsgMeta
from config.networks import DEVNET_NETWORK_VERSION
from fvm.actor_schemas import Struct, decode_state, decode_value, schema_for
from fvm.address import Address
from fvm.bundle import Bundle, load_bundle
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import Executor
from fvm.machine import Machine, MachineContext, NetworkConfig
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION, TOTAL_FILECOIN
from node.devnet.genesis import (
    ETH_NULL_ADDRESS,
    FILECOIN_GENESIS_SENTINEL,
    FILECOIN_GENESIS_SENTINEL_CID,
    STORAGE_MINING_ALLOCATION,
    DevnetGenesis,
    DevnetGenesisSpec,
    GenesisError,
    build_devnet_genesis,
    genesis_blocks,
    read_genesis_car,
    write_genesis_car,
)
from node.devnet.keys import Key, KeyType
from store import dag_cbor
from store.amt import Amt
from store.blockstore import MemoryBlockstore, get_required
from store.car import read_car, write_car
from store.cid import CID, DAG_CBOR, RAW
from store.errors import MalformedInput

SINGLETONS = {
    0: "system",
    1: "init",
    2: "reward",
    3: "cron",
    4: "storagepower",
    5: "storagemarket",
    6: "verifiedregistry",
    7: "datacap",
    10: "eam",
    80: "account",
    90: "account",
    99: "account",
}
ACCOUNT_BALANCE = 50_000_000 * FILECOIN_PRECISION


def key(name: str, kind: KeyType = KeyType.SECP256K1) -> Key:
    return Key.generate(kind, name.encode())


def devnet_spec(**changes: Any) -> DevnetGenesisSpec:
    fields: dict[str, Any] = {
        "network_name": "fvm-node-test",
        "timestamp": 1_700_000_000,
        "accounts": [
            (key("alice"), ACCOUNT_BALANCE),
            (key("bob", KeyType.BLS), ACCOUNT_BALANCE),
        ],
        "miner_owner": key("owner"),
        "miner_worker": key("worker", KeyType.BLS),
        "verifreg_root": key("root"),
        "remainder_owner": key("remainder"),
    }
    fields.update(changes)
    return DevnetGenesisSpec(**fields)


@pytest.fixture(scope="module")
def genesis(devnet_bundle: Bundle) -> DevnetGenesis:
    return build_devnet_genesis(devnet_spec(), devnet_bundle, MemoryBlockstore())


def state_of(genesis: DevnetGenesis, actor: int | Address) -> Any:
    tree = StateTree(genesis.store, genesis.state_root)
    found = tree.get_actor(actor)
    assert found is not None, f"actor {actor} is missing"
    return dag_cbor.decode(get_required(genesis.store, found.state))


def tree_of(genesis: DevnetGenesis) -> StateTree:
    return StateTree(genesis.store, genesis.state_root)


def all_actors(genesis: DevnetGenesis) -> Iterator[tuple[int, Any]]:
    for address, actor in tree_of(genesis).actors():
        yield address.id, actor


# -- determinism ------------------------------------------------------------------------------


def test_same_spec_builds_the_same_state_and_block(
    devnet_bundle: Bundle, genesis: DevnetGenesis
) -> None:
    again = build_devnet_genesis(devnet_spec(), devnet_bundle, MemoryBlockstore())
    assert again.state_root == genesis.state_root
    assert again.cid == genesis.cid
    assert again.header.encode() == genesis.header.encode()


def test_another_network_name_gives_another_state(
    devnet_bundle: Bundle, genesis: DevnetGenesis
) -> None:
    other = build_devnet_genesis(
        devnet_spec(network_name="other"), devnet_bundle, MemoryBlockstore()
    )
    assert other.state_root != genesis.state_root
    assert other.header.ticket != genesis.header.ticket


# -- the state the constructors wrote -----------------------------------------------------------


def test_every_actor_has_its_v10_devnet_code_and_decodes_with_the_v10_schema(
    devnet_bundle: Bundle, genesis: DevnetGenesis
) -> None:
    actors = dict(all_actors(genesis))
    expected = dict(SINGLETONS)
    expected.update({actor_id: "account" for actor_id in genesis.account_ids.values()})
    expected[1000] = "storageminer"
    expected[1001] = "ethaccount"
    assert sorted(actors) == sorted(expected)
    for actor_id, name in expected.items():
        actor = actors[actor_id]
        assert actor.code == devnet_bundle.manifest.code_of(name), f"f0{actor_id} is not {name}"
        head = dag_cbor.decode(get_required(genesis.store, actor.state))
        decode_state(10, name, head)


def test_system_actor_names_the_bundle_manifest(
    devnet_bundle: Bundle, genesis: DevnetGenesis
) -> None:
    assert state_of(genesis, 0) == [devnet_bundle.manifest.data_cid]
    assert genesis.manifest == devnet_bundle.manifest_cid


def test_init_actor_holds_the_network_name_and_every_account_key(genesis: DevnetGenesis) -> None:
    init = decode_state(10, "init", state_of(genesis, 1))
    assert init["network_name"] == "fvm-node-test"
    assert init["next_id"] == 1002
    tree = tree_of(genesis)
    spec = genesis.spec
    assert tree.lookup_id(spec.accounts[0][0].address) == 100
    assert tree.lookup_id(spec.accounts[1][0].address) == 101
    assert tree.lookup_id(spec.miner_owner.address) == 102
    assert tree.lookup_id(spec.miner_worker.address) == 103
    assert tree.lookup_id(spec.verifreg_root.address) == 80
    assert tree.lookup_id(spec.remainder_owner.address) == 90
    assert tree.lookup_id(ETH_NULL_ADDRESS) == 1001


def test_accounts_record_their_key_addresses(genesis: DevnetGenesis) -> None:
    for address, actor_id in genesis.account_ids.items():
        assert decode_state(10, "account", state_of(genesis, actor_id)) == {"address": address}
    assert decode_state(10, "account", state_of(genesis, 99)) == {"address": Address.new_id(99)}


def test_cron_verifreg_and_datacap_were_constructed_with_lotus_parameters(
    genesis: DevnetGenesis,
) -> None:
    cron = decode_state(10, "cron", state_of(genesis, 3))
    assert [(entry["receiver"], entry["method_num"]) for entry in cron["entries"]] == [
        (Address.new_id(4), 5),
        (Address.new_id(5), 9),
    ]
    assert decode_state(10, "verifiedregistry", state_of(genesis, 6))["root_key"] == (
        Address.new_id(80)
    )
    assert decode_state(10, "datacap", state_of(genesis, 7))["governor"] == Address.new_id(6)
    reward = decode_state(10, "reward", state_of(genesis, 2))
    assert reward["epoch"] == 0
    assert reward["this_epoch_reward"] > 0


def test_miner_has_the_spec_owner_and_bls_worker(genesis: DevnetGenesis) -> None:
    assert genesis.miner == Address.new_id(1000)
    miner = decode_state(10, "storageminer", state_of(genesis, genesis.miner))
    info = decode_value(
        schema_for(10), Struct("miner.MinerInfo"), get_info(genesis, miner["info"]), "info"
    )
    assert info["owner"] == Address.new_id(102)
    assert info["worker"] == Address.new_id(103)
    assert info["window_post_proof_type"] == 5
    power = decode_state(10, "storagepower", state_of(genesis, 4))
    assert power["miner_count"] == 1
    assert power["total_raw_byte_power"] == 0
    worker = tree_of(genesis).get_actor(103)
    assert worker is not None
    assert genesis.spec.miner_worker.address.protocol.name == "BLS"


def get_info(genesis: DevnetGenesis, cid: CID) -> Any:
    return dag_cbor.decode(get_required(genesis.store, cid))


def test_balances_follow_lotus_layout_and_sum_to_two_billion_fil(genesis: DevnetGenesis) -> None:
    tree = tree_of(genesis)
    balances = {address.id: actor.balance for address, actor in tree.actors()}
    assert sum(balances.values()) == TOTAL_FILECOIN
    assert balances[2] == STORAGE_MINING_ALLOCATION == 1_100_000_000 * FILECOIN_PRECISION
    assert balances[100] == balances[101] == ACCOUNT_BALANCE
    assert balances[90] == TOTAL_FILECOIN - STORAGE_MINING_ALLOCATION - 2 * ACCOUNT_BALANCE
    others = {actor_id for actor_id, balance in balances.items() if balance}
    assert others == {2, 90, 100, 101}


def test_only_the_eth_null_address_has_a_delegated_address(genesis: DevnetGenesis) -> None:
    delegated = {
        actor_id: actor.delegated_address
        for actor_id, actor in all_actors(genesis)
        if actor.delegated_address is not None
    }
    assert delegated == {1001: ETH_NULL_ADDRESS}


def test_genesis_state_runs_in_a_machine(devnet_bundle: Bundle, genesis: DevnetGenesis) -> None:
    context = MachineContext(
        network=NetworkConfig.for_version(DEVNET_NETWORK_VERSION),
        epoch=1,
        initial_state_root=genesis.state_root,
    )
    machine = run_on_execution_stack(lambda: Machine.create(context, genesis.store, _NoExterns()))
    assert machine.builtin_actors.data_cid == devnet_bundle.manifest.data_cid
    assert Executor(machine).flush() == genesis.state_root


class _NoExterns:
    def get_chain_randomness(self, epoch: int) -> bytes:
        raise AssertionError

    def get_beacon_randomness(self, epoch: int) -> bytes:
        raise AssertionError

    def get_tipset_cid(self, epoch: int) -> CID:
        raise AssertionError

    def verify_consensus_fault(self, header1: bytes, header2: bytes, extra: bytes) -> Any:
        raise AssertionError


# -- spec errors ------------------------------------------------------------------------------


def test_overallocated_funds_are_refused(devnet_bundle: Bundle) -> None:
    spec = devnet_spec(accounts=[(key("whale"), TOTAL_FILECOIN)])
    with pytest.raises(GenesisError, match="overallocated"):
        build_devnet_genesis(spec, devnet_bundle, MemoryBlockstore())


def test_root_key_that_is_also_an_account_is_refused(devnet_bundle: Bundle) -> None:
    spec = devnet_spec(verifreg_root=key("alice"))
    with pytest.raises(GenesisError, match="already an account"):
        build_devnet_genesis(spec, devnet_bundle, MemoryBlockstore())


def test_actors_v9_bundle_is_refused(actors_dir: Path) -> None:
    v9 = load_bundle(actors_dir / "v9.tar.zst", network="devnet")
    with pytest.raises(GenesisError, match="v10"):
        build_devnet_genesis(devnet_spec(), v9, MemoryBlockstore())


# -- the block --------------------------------------------------------------------------------


def real_genesis_header(path: Path) -> tuple[BlockHeader, dict[CID, bytes]]:
    header, blocks = read_car(path)
    by_cid = dict(blocks)
    return BlockHeader.decode(by_cid[header.roots[0]]), by_cid


@pytest.mark.parametrize("network", ["mainnet", "calibnet"])
def test_header_has_the_form_of_the_real_genesis_headers(
    network: str, genesis: DevnetGenesis, shared_dir: Path
) -> None:
    real, _ = real_genesis_header(shared_dir / f"genesis/{network}.car.zst")
    ours = genesis.header
    assert ours.miner == real.miner == Address.new_id(0)
    assert ours.ticket is not None and real.ticket is not None
    assert len(ours.ticket.vrf_proof) == len(real.ticket.vrf_proof) == 32
    assert ours.election_proof == real.election_proof
    assert ours.beacon_entries == real.beacon_entries
    assert ours.win_post_proof == real.win_post_proof == ()
    assert ours.parents == real.parents == (FILECOIN_GENESIS_SENTINEL_CID,)
    assert ours.parent_weight == real.parent_weight == 0
    assert ours.height == real.height == 0
    assert ours.parent_message_receipts == real.parent_message_receipts
    assert ours.messages == real.messages
    assert ours.bls_aggregate is real.bls_aggregate is None
    assert ours.block_sig is real.block_sig is None
    assert ours.fork_signaling == real.fork_signaling == 0
    assert ours.parent_base_fee == real.parent_base_fee == INITIAL_BASE_FEE
    assert ours.timestamp == 1_700_000_000
    assert ours.parent_state_root.codec == real.parent_state_root.codec == DAG_CBOR


def test_sentinel_parent_is_the_block_in_the_mainnet_genesis(mainnet_genesis: Path) -> None:
    _, blocks = real_genesis_header(mainnet_genesis)
    assert blocks[FILECOIN_GENESIS_SENTINEL_CID] == FILECOIN_GENESIS_SENTINEL
    assert CID.hash_of(FILECOIN_GENESIS_SENTINEL, DAG_CBOR, 0x12) == FILECOIN_GENESIS_SENTINEL_CID


def test_message_meta_and_receipts_are_empty_legacy_amts(genesis: DevnetGenesis) -> None:
    store = genesis.store
    meta = MsgMeta.decode(get_required(store, genesis.header.messages))
    for root in (meta.bls_messages_root, meta.secp_messages_root):
        assert len(Amt(store, root, legacy=True)) == 0
    assert len(Amt(store, genesis.header.parent_message_receipts, legacy=True)) == 0


# -- the CAR ----------------------------------------------------------------------------------


def test_car_holds_header_sentinel_meta_and_state_but_no_code(
    genesis: DevnetGenesis, devnet_bundle: Bundle, tmp_path: Path
) -> None:
    path = tmp_path / "genesis.car"
    write_genesis_car(path, genesis)
    car_header, blocks = read_car(path)
    assert list(car_header.roots) == [genesis.cid]
    cids = [cid for cid, _ in blocks]
    assert cids[:2] == [genesis.cid, FILECOIN_GENESIS_SENTINEL_CID]
    assert len(set(cids)) == len(cids)
    assert {genesis.header.messages, genesis.state_root} <= set(cids)
    assert not any(cid.codec == RAW for cid in cids)
    assert not set(cids) & {code for _, code in devnet_bundle.manifest.entries}
    assert blocks == list(genesis_blocks(genesis))

    fresh = MemoryBlockstore()
    header = read_genesis_car(path, fresh)
    assert header == genesis.header
    tree = StateTree(fresh, header.parent_state_root)
    for _, actor in tree.actors():
        get_required(fresh, actor.state)
    assert tree.lookup_id(genesis.spec.miner_owner.address) == 102


def test_car_whose_root_is_not_a_genesis_header_is_refused(tmp_path: Path) -> None:
    data = dag_cbor.encode([1, 2])
    path = tmp_path / "bad.car"
    with open(path, "wb") as out:
        write_car(out, [CID.hash_of(data)], [(CID.hash_of(data), data)])
    with pytest.raises(MalformedInput):
        read_genesis_car(path, MemoryBlockstore())


def test_funded_miner_owner_keeps_its_account_id(devnet_bundle: Bundle) -> None:
    owner = key("alice")
    built = build_devnet_genesis(devnet_spec(miner_owner=owner), devnet_bundle, MemoryBlockstore())
    assert built.account_ids[owner.address] == 100
    assert built.account_ids[built.spec.miner_worker.address] == 102
    miner = decode_state(10, "storageminer", state_of(built, built.miner))
    info = decode_value(
        schema_for(10), Struct("miner.MinerInfo"), get_info(built, miner["info"]), ""
    )
    assert info["owner"] == Address.new_id(100)


def test_account_funded_twice_is_refused(devnet_bundle: Bundle) -> None:
    twice = [(key("alice"), 1), (key("alice"), 2)]
    with pytest.raises(GenesisError, match="listed twice"):
        build_devnet_genesis(devnet_spec(accounts=twice), devnet_bundle, MemoryBlockstore())
