"""Externs answered from the chain, checked against values worked out by hand from Lotus's rules.

The chain is synthetic but built from the real mainnet genesis: every header is the genesis
header with its height, parents, ticket and beacon entries changed. Heights 3 and 4 are null
rounds; height 6 is a two-block tipset. Beacon entries follow Lotus's mock beacon (round =
epoch + 100, data = blake2b-256 of the round) unless a test says otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from chainsync.chain_externs import (
    DOUBLE_FORK_MINING,
    PARENT_GRINDING,
    TIME_OFFSET_MINING,
    BeaconSchedule,
    ChainExterns,
    DrandChain,
    DrandRounds,
    MockBeaconRounds,
    rules_for,
)
from chainsync.chain_store import ChainStore
from chainsync.chain_types import BeaconEntry, BlockHeader, Ticket, TipSet
from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.crypto import bls
from fvm.externs import ConsensusFault, Externs, ExternsError
from fvm.network_version import StateTreeVersion
from fvm.signature import Signature
from fvm.state_tree import StateTree
from store import dag_cbor
from store.blockstore import put
from store.cid import CID
from store.lmdb_blockstore import LmdbBlockstore

MINER_ID = 1000
WORKER_ID = 1001
WORKER_KEY = bytes(range(1, 33))
OTHER_KEY = bytes(range(2, 34))
IPLD_GET_NV15 = 114617


def blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def entry(round_number: int) -> BeaconEntry:
    return BeaconEntry(round_number, blake(round_number.to_bytes(8, "big")))


def ticket(seed: int) -> Ticket:
    return Ticket(bytes([seed]) * 32)


Setup = tuple[ChainStore, dict[int, TipSet], CID]


def make_state(chain: ChainStore, worker_delegated: Address | None = None) -> CID:
    """A state tree with a miner (ID 1000) whose worker (ID 1001) is a BLS account."""
    store = chain.blockstore
    tree = StateTree(store, version=StateTreeVersion.V5)
    owner = Address.new_id(WORKER_ID)
    info = put(store, dag_cbor.encode([owner.to_bytes(), owner.to_bytes(), [], None, b""]))
    miner_state = put(store, dag_cbor.encode([info, b"", b""]))
    worker_key = Address.new_bls(bls.public_key(WORKER_KEY))
    account_state = put(store, dag_cbor.encode([worker_key.to_bytes()]))
    code = CID.hash_of(b"some actor code")
    tree.set_actor(MINER_ID, ActorState(code, miner_state))
    tree.set_actor(WORKER_ID, ActorState(code, account_state, delegated_address=worker_delegated))
    return tree.flush()


def header_on(
    parent: TipSet, height: int, seed: int, rounds: Sequence[int], state: CID
) -> BlockHeader:
    template = parent.blocks[0]
    return replace(
        template,
        miner=Address.new_id(MINER_ID),
        parents=parent.cids,
        height=height,
        ticket=ticket(seed),
        beacon_entries=tuple(entry(r) for r in rounds),
        parent_state_root=state,
        timestamp=template.timestamp + 30 * (height - parent.height),
    )


MOCK_ROUNDS = {1: [101], 2: [102], 5: [103, 104, 105], 6: [106], 7: []}


def build(
    chain: ChainStore, genesis: TipSet, state: CID, rounds: dict[int, list[int]]
) -> dict[int, TipSet]:
    tipsets = {0: genesis}
    parent = genesis
    for height, entries in rounds.items():
        blocks = [header_on(parent, height, height, entries, state)]
        if height == 6:
            blocks.append(header_on(parent, height, 60, entries, state))
        parent = TipSet(blocks)
        chain.put_tipset(parent)
        tipsets[height] = parent
    return tipsets


@pytest.fixture
def setup(tmp_path: Path, mainnet_genesis: Path) -> Setup:
    chain = ChainStore(LmdbBlockstore(tmp_path / "chain", map_size=1 << 26))
    genesis = chain.load_genesis(mainnet_genesis)
    state = make_state(chain)
    return chain, build(chain, genesis, state, MOCK_ROUNDS), state


def externs_at(
    chain: ChainStore,
    tipset: TipSet,
    network_version: int,
    *,
    base_state: CID | None = None,
    epoch: int | None = None,
    fault_blackout_height: int | None = None,
) -> ChainExterns:
    return ChainExterns(
        chain,
        tipset,
        lambda _: network_version,
        beacon_rounds=MockBeaconRounds(),
        base_state=base_state,
        epoch=epoch,
        fault_blackout_height=fault_blackout_height,
    )


def test_chain_externs_satisfy_the_fvm_protocol(setup: Setup) -> None:
    chain, tipsets, _ = setup
    externs: Externs = externs_at(chain, tipsets[7], 18)
    assert externs.get_tipset_cid(2) == tipsets[2].key.cid()


def test_the_rules_table_switches_at_the_lotus_versions() -> None:
    assert [rules_for(v).chain_lookback for v in (12, 13)] == [True, False]
    assert [rules_for(v).beacon.value for v in (12, 13, 14)] == [1, 2, 3]
    assert [rules_for(v).drand_round.value for v in (15, 16)] == [1, 2]
    assert [rules_for(v).ipld_get_gas for v in (6, 7, 17, 18, 20)] == [75242, 114617, 114617, 0, 0]
    assert [rules_for(v).winning_post_lookback for v in (3, 4)] == [10, 900]


# -- chain randomness ---------------------------------------------------------------------


def test_chain_randomness_is_the_digest_of_the_min_ticket(setup: Setup) -> None:
    chain, tipsets, _ = setup
    externs = externs_at(chain, tipsets[7], 18)
    assert externs.get_chain_randomness(7) == blake(bytes([7]) * 32)
    assert externs.get_chain_randomness(2) == blake(bytes([2]) * 32)
    # Two blocks at height 6: the ticket with the smaller digest decides.
    assert externs.get_chain_randomness(6) == min(blake(bytes([6]) * 32), blake(bytes([60]) * 32))
    genesis_ticket = tipsets[0].blocks[0].ticket
    assert genesis_ticket is not None
    assert externs.get_chain_randomness(-5) == blake(genesis_ticket.vrf_proof)


def test_chain_randomness_in_a_null_round_looks_forward_from_version_13(
    setup: Setup,
) -> None:
    chain, tipsets, _ = setup
    assert externs_at(chain, tipsets[7], 13).get_chain_randomness(3) == blake(bytes([5]) * 32)
    assert externs_at(chain, tipsets[7], 12).get_chain_randomness(3) == blake(bytes([2]) * 32)


def test_randomness_from_the_future_is_refused(setup: Setup) -> None:
    chain, tipsets, _ = setup
    externs = externs_at(chain, tipsets[5], 18)
    with pytest.raises(ExternsError, match="future"):
        externs.get_chain_randomness(6)
    with pytest.raises(ExternsError, match="future"):
        externs.get_beacon_randomness(6)


# -- beacon randomness --------------------------------------------------------------------


def test_beacon_randomness_takes_the_exact_round_from_version_14(
    setup: Setup,
) -> None:
    chain, tipsets, _ = setup
    externs = externs_at(chain, tipsets[7], 18)
    # Mock beacon: epoch 4 wants round 104, carried by the block at 5 with 103 and 105.
    assert externs.beacon_entry(4) == entry(104)
    assert externs.get_beacon_randomness(4) == blake(entry(104).data)
    assert externs.get_beacon_randomness(6) == blake(entry(106).data)
    # The block at 7 carries no entry, and no ancestor carries round 107.
    with pytest.raises(ExternsError):
        externs.get_beacon_randomness(7)


def test_beacon_randomness_before_version_14_takes_the_latest_entry(
    setup: Setup,
) -> None:
    chain, tipsets, _ = setup
    # V2 (13): the tipset after the null round 3 is 5, whose last entry is 105.
    assert externs_at(chain, tipsets[7], 13).beacon_entry(3) == entry(105)
    # V1 (12): the tipset before it is 2.
    assert externs_at(chain, tipsets[7], 12).beacon_entry(3) == entry(102)
    # 7 carries no entry: the latest is its parent's.
    assert externs_at(chain, tipsets[7], 13).beacon_entry(7) == entry(106)
    # Negative epochs fall back to V2 even from version 14: genesis's round-0 entry.
    assert externs_at(chain, tipsets[7], 18).beacon_entry(-1) == BeaconEntry(0, bytes(32))


def test_without_a_beacon_schedule_exact_rounds_cannot_be_found(
    setup: Setup,
) -> None:
    chain, tipsets, _ = setup
    externs = ChainExterns(chain, tipsets[7], lambda epoch: 18)
    with pytest.raises(ExternsError, match="no beacon schedule"):
        externs.get_beacon_randomness(5)


def test_drand_rounds_follow_lotus_formulas_and_search_back(
    tmp_path: Path, mainnet_genesis: Path
) -> None:
    chain = ChainStore(LmdbBlockstore(tmp_path / "chain", map_size=1 << 26))
    genesis = chain.load_genesis(mainnet_genesis)
    start = genesis.blocks[0].timestamp
    # drand every 60 s from the chain's genesis, blocks every 30 s: epoch e's latest time is
    # start + 30 (e - 1); V2 round = that offset // 60 + 1, V1 = offset // 60.
    drand = DrandRounds(DrandChain(start, 60), start, 30)
    epochs = (1, 2, 3, 5, 6, 7)
    assert [drand.max_beacon_round_for_epoch(16, e) for e in epochs] == [1, 1, 2, 3, 3, 4]
    assert [drand.max_beacon_round_for_epoch(15, e) for e in epochs] == [0, 0, 1, 2, 2, 3]
    # V2 before drand's genesis is round 1; V1 wraps around like Lotus's uint64 arithmetic.
    late = DrandRounds(DrandChain(start + 600, 60), start, 30)
    assert late.max_beacon_round_for_epoch(16, 1) == 1
    assert late.max_beacon_round_for_epoch(15, 1) == ((1 << 64) - 600) // 60
    tipsets = build(chain, genesis, make_state(chain), {1: [1], 2: [], 5: [2, 3], 6: [], 7: [4]})
    externs = ChainExterns(chain, tipsets[7], lambda epoch: 18, beacon_rounds=drand)
    # Epoch 6 wants round 3: block 6 carries nothing, so the search goes back to block 5.
    assert externs.beacon_entry(6) == entry(3)
    assert externs.beacon_entry(2) == entry(1)
    assert externs.beacon_entry(7) == entry(4)


def test_a_beacon_schedule_picks_the_beacon_by_epoch() -> None:
    first, second = DrandRounds(DrandChain(0, 30), 0, 30), MockBeaconRounds()
    schedule = BeaconSchedule([(100, second), (0, first)])
    assert schedule.for_epoch(99) is first
    assert schedule.for_epoch(100) is second
    assert schedule.max_beacon_round_for_epoch(18, 150) == 250


# -- tipset CIDs --------------------------------------------------------------------------


def test_tipset_cids_are_key_cids_taking_the_tipset_before_a_null_round(
    setup: Setup,
) -> None:
    chain, tipsets, _ = setup
    externs = externs_at(chain, tipsets[7], 18)
    key_bytes = b"".join(cid.to_bytes() for cid in tipsets[2].cids)
    by_hand = CID.hash_of(dag_cbor.encode(key_bytes))
    assert externs.get_tipset_cid(2) == by_hand
    assert externs.get_tipset_cid(3) == by_hand
    assert externs.get_tipset_cid(4) == by_hand
    assert externs.get_tipset_cid(6) == tipsets[6].key.cid()
    with pytest.raises(ExternsError):
        externs.get_tipset_cid(8)


# -- consensus faults ---------------------------------------------------------------------


def signed(header: BlockHeader, key: bytes = WORKER_KEY) -> bytes:
    unsigned = replace(header, block_sig=None)
    signature = Signature.new_bls(bls.sign(key, unsigned.signing_bytes()))
    return replace(header, block_sig=signature).encode()


def test_double_fork_mining_is_a_fault(setup: Setup) -> None:
    chain, tipsets, state = setup
    a = header_on(tipsets[2], 5, 50, [105], state)
    b = header_on(tipsets[2], 5, 51, [105], state)
    fault, gas = externs_at(chain, tipsets[7], 15).verify_consensus_fault(signed(a), signed(b), b"")
    assert fault == ConsensusFault(target=MINER_ID, epoch=5, fault_type=DOUBLE_FORK_MINING)
    # Per block: the miner state, its info and the worker's account state, at OnIpldGet each.
    assert gas == 6 * IPLD_GET_NV15
    fault, gas = externs_at(chain, tipsets[7], 18).verify_consensus_fault(signed(a), signed(b), b"")
    assert fault is not None and gas == 0


def test_time_offset_mining_is_a_fault(setup: Setup) -> None:
    chain, tipsets, state = setup
    a = header_on(tipsets[2], 5, 50, [], state)
    b = header_on(tipsets[2], 6, 51, [], state)
    fault, _ = externs_at(chain, tipsets[7], 18).verify_consensus_fault(signed(a), signed(b), b"")
    assert fault == ConsensusFault(target=MINER_ID, epoch=6, fault_type=TIME_OFFSET_MINING)


def test_parent_grinding_is_a_fault(setup: Setup) -> None:
    chain, tipsets, state = setup
    a = header_on(tipsets[2], 5, 50, [], state)
    sibling = header_on(tipsets[2], 5, 52, [], state)
    b = header_on(TipSet([sibling]), 6, 51, [], state)
    witness = sibling.encode()
    externs = externs_at(chain, tipsets[7], 18)
    fault, _ = externs.verify_consensus_fault(signed(a), signed(b), witness)
    assert fault == ConsensusFault(target=MINER_ID, epoch=6, fault_type=PARENT_GRINDING)
    # B built on A itself is no grinding: without another fault kind, nothing is proven.
    signed_a = BlockHeader.decode(signed(a))
    b_on_a = header_on(TipSet([signed_a, sibling]), 6, 51, [], state)
    assert externs.verify_consensus_fault(signed_a.encode(), signed(b_on_a), witness) == (None, 0)


def test_headers_that_prove_nothing_are_no_fault(setup: Setup) -> None:
    chain, tipsets, state = setup
    externs = externs_at(chain, tipsets[7], 15)
    a = header_on(tipsets[2], 5, 50, [], state)
    b = header_on(tipsets[2], 5, 51, [], state)
    other_miner = replace(b, miner=Address.new_id(2000))
    lower = header_on(tipsets[1], 2, 51, [], state)
    different_parents = header_on(tipsets[5], 6, 51, [], state)
    assert externs.verify_consensus_fault(signed(a), signed(a), b"") == (None, 0)
    assert externs.verify_consensus_fault(signed(a), signed(other_miner), b"") == (None, 0)
    assert externs.verify_consensus_fault(signed(a), signed(lower), b"") == (None, 0)
    assert externs.verify_consensus_fault(signed(a), signed(different_parents), b"") == (None, 0)
    assert externs.verify_consensus_fault(b"\x80", signed(b), b"") == (None, 0)
    assert externs.verify_consensus_fault(signed(a), signed(b), b"\x01") == (None, 0)


def test_a_bad_signature_is_no_fault_but_the_reads_are_charged(
    setup: Setup,
) -> None:
    chain, tipsets, state = setup
    externs = externs_at(chain, tipsets[7], 15)
    a = header_on(tipsets[2], 5, 50, [], state)
    b = header_on(tipsets[2], 5, 51, [], state)
    assert externs.verify_consensus_fault(signed(a), signed(b, OTHER_KEY), b"") == (
        None,
        6 * IPLD_GET_NV15,
    )
    assert externs.verify_consensus_fault(signed(a, OTHER_KEY), signed(b), b"") == (
        None,
        3 * IPLD_GET_NV15,
    )
    assert externs.verify_consensus_fault(a.encode(), signed(b), b"") == (None, 3 * IPLD_GET_NV15)


def test_blocks_older_than_finality_are_no_fault(setup: Setup) -> None:
    chain, tipsets, state = setup
    a = header_on(tipsets[2], 5, 50, [], state)
    b = header_on(tipsets[2], 5, 51, [], state)
    externs = externs_at(chain, tipsets[7], 15, epoch=906)
    assert externs.verify_consensus_fault(signed(a), signed(b), b"") == (None, 0)
    near_upgrade = externs_at(chain, tipsets[7], 15, fault_blackout_height=800)
    assert near_upgrade.verify_consensus_fault(signed(a), signed(b), b"") == (None, 0)


def test_a_worker_with_a_delegated_address_is_checked_against_it(
    setup: Setup,
) -> None:
    chain, tipsets, _ = setup
    delegated = Address.new_delegated(10, bytes(20))
    base = make_state(chain, worker_delegated=delegated)
    externs = externs_at(chain, tipsets[7], 15, base_state=base)
    a = header_on(tipsets[2], 5, 50, [], base)
    b = header_on(tipsets[2], 5, 51, [], base)
    # The BLS signature cannot be the f4 address's: no fault, the account state never read.
    assert externs.verify_consensus_fault(signed(a), signed(b), b"") == (None, 2 * IPLD_GET_NV15)
