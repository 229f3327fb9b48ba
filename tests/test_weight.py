"""Chain weight: Lotus's power-based rule on real mainnet power state, and the devnet's rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chainsync.chain_types import BlockHeader, ElectionProof, Ticket, TipSet
from chainsync.consensus_profile import DevnetConsensus, FilecoinConsensus
from chainsync.weight import (
    DEVNET_WEIGHT_PER_BLOCK,
    WeightError,
    devnet_weight,
    filecoin_weight,
    total_quality_adj_power,
)
from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.conformance.vector import TestVector, load_vector
from fvm.state_tree import StateTree
from store import dag_cbor
from store.blockstore import MemoryBlockstore, put
from store.car import read_car
from store.cid import CID

# Mainnet state at epoch 2679999 (network version 17, actors v9) and 2799999 (v18, actors v10):
# the power actor's TotalQualityAdjPower, about 19.2 and 19.8 EiB.
SHARK_VECTOR = (
    "extracted/0001-shark-01/fil_9_storagemarket/PublishStorageDeals/Ok/"
    "ext-0001-fil_9_storagemarket-PublishStorageDeals-Ok-1.json"
)
HYGGE_VECTOR = (
    "extracted/0002-hygge-01/fil_10_storagemarket/PublishStorageDeals/Ok/"
    "ext-0002-fil_10_storagemarket-PublishStorageDeals-Ok-1.json"
)
SHARK_POWER = 22162253373393829888
HYGGE_POWER = 22807670704904437760


class NoPoSt:
    def verify_winning_post(self, header: object, prev_beacon: object, worker: object) -> bool:
        return False


@pytest.fixture(scope="module")
def shark(vectors_dir: Path) -> TestVector:
    return load_vector(vectors_dir / SHARK_VECTOR)


@pytest.fixture(scope="module")
def genesis(mainnet_genesis: Path) -> BlockHeader:
    car_header, blocks = read_car(mainnet_genesis)
    root = car_header.roots[0]
    return BlockHeader.decode(dict(blocks)[root], str(root))


def test_total_power_is_read_from_real_v9_and_v10_power_state(
    shark: TestVector, vectors_dir: Path
) -> None:
    assert total_quality_adj_power(shark.blockstore(), shark.pre_state_root, 9) == SHARK_POWER
    hygge = load_vector(vectors_dir / HYGGE_VECTOR)
    assert total_quality_adj_power(hygge.blockstore(), hygge.pre_state_root, 10) == HYGGE_POWER


def test_filecoin_weight_by_hand() -> None:
    # bitlen(SHARK_POWER) = 65, so log2P = 64: 64 * 256 = 16384 per tipset, plus per win
    # 64 * 256 / 10 = 1638.4 (rounded down once over the sum of wins).
    assert SHARK_POWER.bit_length() - 1 == 64
    assert filecoin_weight(1000, SHARK_POWER, [1]) == 1000 + 16384 + 1638
    assert filecoin_weight(1000, SHARK_POWER, [1, 2, 2]) == 1000 + 16384 + 8192
    assert filecoin_weight(0, 1, [5]) == 0
    with pytest.raises(WeightError, match="power"):
        filecoin_weight(0, 0, [1])


def test_filecoin_profile_weighs_a_tipset_from_its_parent_state(
    shark: TestVector, genesis: BlockHeader
) -> None:
    headers = [
        dataclasses.replace(
            genesis,
            miner=Address.new_id(1000 + i),
            ticket=Ticket(bytes([i]) * 32),
            election_proof=ElectionProof(wins, b""),
            parent_state_root=shark.pre_state_root,
            parent_weight=123_456_789,
            height=2680000,
        )
        for i, wins in enumerate((1, 3))
    ]
    profile = FilecoinConsensus(NoPoSt(), lambda height: 9)
    weight = profile.weight(shark.blockstore(), TipSet(headers))
    assert weight == 123_456_789 + 16384 + (64 * 256 * 4) // 10


def test_state_without_power_has_no_weight() -> None:
    store = MemoryBlockstore()
    empty_tree = StateTree(store)
    with pytest.raises(WeightError, match="no power actor"):
        total_quality_adj_power(store, empty_tree.flush(), 10)
    tree = StateTree(store)
    fields: list[object] = [b"", b"", b"", b"", b"", b"", b"", b"", [b"", b""], 0, 0]
    fields += [CID.hash_of(b"cron"), 0, CID.hash_of(b"claims"), None]
    head = put(store, dag_cbor.encode(fields))
    tree.set_actor(4, ActorState(CID.hash_of(b"power code"), head))
    with pytest.raises(WeightError, match="all power"):
        total_quality_adj_power(store, tree.flush(), 10)


def test_devnet_weight_adds_256_per_block(genesis: BlockHeader) -> None:
    assert devnet_weight(0, 1) == DEVNET_WEIGHT_PER_BLOCK == 256
    assert devnet_weight(1000, 3) == 1768
    tipset = TipSet([dataclasses.replace(genesis, parent_weight=512)])
    profile = DevnetConsensus(Address.new_id(1000), block_delay_secs=4)
    assert profile.weight(MemoryBlockstore(), tipset) == 768
