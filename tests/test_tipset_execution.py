"""Tipsets applied with Lotus's ApplyBlocks semantics on the devnet genesis (real v10 bundle).

Every tipset starts from the genesis state in a shared content-addressed store: value transfers
signed by secp256k1 and BLS keys, the block reward reaching the miner, cron advancing the power
and reward actors' epochs (also through null rounds), a message listed by two blocks applied
once, and the circulating supply the machines report.
"""

from __future__ import annotations

from typing import Any

import pytest

from chainsync.chain_types import BlockHeader, ElectionProof, FullBlock, Ticket
from chainsync.circulating_supply import (
    INITIAL_FIL_RESERVED,
    VestingSchedule,
    vm_circulating_supply,
    vm_circulating_supply_detailed,
)
from chainsync.messages_root import receipts_root
from chainsync.tipset_execution import (
    BlockMessages,
    DuplicateBlockMiner,
    ExecutionConfig,
    ImplicitMessageFailed,
    MissingStateMigration,
    TipsetExecutionError,
    TipsetResult,
    apply_full_blocks,
    apply_tipset,
    store_events_amt,
)
from config.networks import DEVNET, DEVNET_BLOCK_DELAY_SECS, DEVNET_NETWORK_VERSION
from fvm.actor_schemas import decode_state
from fvm.address import Address
from fvm.bundle import Bundle
from fvm.crypto.hashes import blake2b_256
from fvm.executor import ApplyRet
from fvm.externs import ConsensusFault, ExternsError
from fvm.kernel.events import EventEntry, StampedEvent
from fvm.message import Message, SignedMessage
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.receipt import ExitCode, Receipt
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION, TokenAmount
from fvm.wasm_invoker import WasmActorInvoker
from node.devnet.genesis import (
    DevnetGenesis,
    DevnetGenesisSpec,
    build_devnet_genesis,
)
from node.devnet.keys import Key, KeyType
from store import dag_cbor
from store.amt import Amt
from store.blockstore import MemoryBlockstore, get_required
from store.cid import CID

ALICE = Key.generate(KeyType.SECP256K1, b"alice")
BOB = Key.generate(KeyType.BLS, b"bob")
OWNER = Key.generate(KeyType.SECP256K1, b"owner")
WORKER = Key.generate(KeyType.BLS, b"worker")
BALANCE = 1_000 * FILECOIN_PRECISION
GAS_LIMIT = 30_000_000
FEE_CAP = 10**9
PREMIUM = 10**5
TIMESTAMP = 1_700_000_000


class ChainExterns:
    """Randomness derived from the epoch; no tipset CIDs (these actors never ask for one)."""

    def get_chain_randomness(self, epoch: int) -> bytes:
        return blake2b_256(b"chain" + epoch.to_bytes(8, "big", signed=True))

    def get_beacon_randomness(self, epoch: int) -> bytes:
        return blake2b_256(b"beacon" + epoch.to_bytes(8, "big", signed=True))

    def get_tipset_cid(self, epoch: int) -> CID:
        raise ExternsError(f"no tipset CIDs in this test (epoch {epoch})")

    def verify_consensus_fault(
        self, header1: bytes, header2: bytes, extra: bytes
    ) -> tuple[ConsensusFault | None, int]:
        return None, 0


@pytest.fixture(scope="module")
def genesis(devnet_bundle: Bundle) -> DevnetGenesis:
    spec = DevnetGenesisSpec(
        network_name="fvm-node-tipsets",
        timestamp=TIMESTAMP,
        accounts=[(ALICE, BALANCE), (BOB, BALANCE)],
        miner_owner=OWNER,
        miner_worker=WORKER,
        verifreg_root=Key.generate(KeyType.SECP256K1, b"root"),
        remainder_owner=Key.generate(KeyType.SECP256K1, b"remainder"),
    )
    return build_devnet_genesis(spec, devnet_bundle, MemoryBlockstore())


@pytest.fixture(scope="module")
def config() -> ExecutionConfig:
    return ExecutionConfig(
        network_version=lambda epoch: DEVNET_NETWORK_VERSION,
        circulating_supply=lambda epoch, tree: vm_circulating_supply(
            epoch, tree, DEVNET_NETWORK_VERSION
        ),
        invoker=WasmActorInvoker(AcceptAllProofVerifier()),
        chain_id=DEVNET.chain_id,
        genesis_timestamp=TIMESTAMP,
        block_delay_seconds=DEVNET_BLOCK_DELAY_SECS,
    )


def transfer(key: Key, to: Address, value: TokenAmount, sequence: int = 0) -> Message:
    return Message(
        to=to,
        from_=key.address,
        sequence=sequence,
        value=value,
        gas_limit=GAS_LIMIT,
        gas_fee_cap=FEE_CAP,
        gas_premium=PREMIUM,
    )


def run(
    genesis: DevnetGenesis,
    config: ExecutionConfig,
    blocks: list[BlockMessages],
    *,
    epoch: int = 1,
    parent_epoch: int = 0,
    parent_state: CID | None = None,
) -> TipsetResult:
    return apply_tipset(
        config,
        genesis.store,
        ChainExterns(),
        parent_state=genesis.state_root if parent_state is None else parent_state,
        parent_epoch=parent_epoch,
        epoch=epoch,
        blocks=blocks,
        base_fee=genesis.header.parent_base_fee,
        timestamp=TIMESTAMP + DEVNET_BLOCK_DELAY_SECS * epoch,
    )


def actor(genesis: DevnetGenesis, root: CID, address: Address) -> Any:
    found = StateTree(genesis.store, root).get_actor(address)
    assert found is not None, f"no actor {address}"
    return found


def state(genesis: DevnetGenesis, root: CID, address: Address, name: str) -> dict[str, Any]:
    head = dag_cbor.decode(get_required(genesis.store, actor(genesis, root, address).state))
    return decode_state(10, name, head)


def block(
    genesis: DevnetGenesis,
    bls: tuple[Message, ...] = (),
    secp: tuple[SignedMessage, ...] = (),
    miner: Address | None = None,
) -> BlockMessages:
    return BlockMessages(genesis.miner if miner is None else miner, 1, bls, secp)


# -- value transfers --------------------------------------------------------------------------


def test_secp_and_bls_transfers_move_funds_and_nonces(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    carol = Key.generate(KeyType.SECP256K1, b"carol").address
    secp = ALICE.sign_message(transfer(ALICE, carol, 7 * FILECOIN_PRECISION))
    bls = transfer(BOB, ALICE.address, 3 * FILECOIN_PRECISION)
    result = run(genesis, config, [block(genesis, bls=(bls,), secp=(secp,))])

    assert result.messages_applied == 2
    assert [receipt.exit_code for receipt in result.receipts] == [ExitCode.OK, ExitCode.OK]
    assert result.message_cids == (bls.cid(), secp.cid())
    assert result.gas_used == sum(receipt.gas_used for receipt in result.receipts) > 0
    root = result.state_root
    alice = actor(genesis, root, ALICE.address)
    bob = actor(genesis, root, BOB.address)
    assert alice.sequence == 1 and bob.sequence == 1
    alice_gas = result.apply_rets[1]
    alice_paid = alice_gas.base_fee_burn + alice_gas.over_estimation_burn + alice_gas.miner_tip
    assert alice.balance == BALANCE - 7 * FILECOIN_PRECISION + 3 * FILECOIN_PRECISION - alice_paid
    assert actor(genesis, root, carol).balance == 7 * FILECOIN_PRECISION
    assert alice_gas.miner_tip == PREMIUM * GAS_LIMIT
    assert bob.balance < BALANCE - 3 * FILECOIN_PRECISION


def test_block_reward_pays_the_miner_and_cron_advances_the_epochs(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    result = run(genesis, config, [block(genesis)])
    assert result.messages_applied == 0
    assert actor(genesis, genesis.state_root, genesis.miner).balance == 0
    assert actor(genesis, result.state_root, genesis.miner).balance > 0
    assert state(genesis, result.state_root, Address.new_id(2), "reward")["epoch"] == 2
    power = state(genesis, result.state_root, Address.new_id(4), "storagepower")
    assert power["first_cron_epoch"] == 2
    assert [ret.receipt.exit_code for ret in result.implicit_rets] == [ExitCode.OK] * 2


def test_miner_earns_the_block_reward_plus_the_messages_tips(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    empty = run(genesis, config, [block(genesis)])
    message = transfer(BOB, ALICE.address, 1)
    busy = run(genesis, config, [block(genesis, bls=(message,))])
    tip = busy.apply_rets[0].miner_tip
    assert tip == PREMIUM * GAS_LIMIT
    earned = actor(genesis, busy.state_root, genesis.miner).balance
    assert earned - actor(genesis, empty.state_root, genesis.miner).balance == tip


def test_null_rounds_run_cron_for_every_skipped_epoch(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    result = run(genesis, config, [block(genesis)], epoch=4)
    assert len(result.implicit_rets) == 3 + 2  # cron at 1, 2, 3; reward and cron at 4
    assert state(genesis, result.state_root, Address.new_id(2), "reward")["epoch"] == 5
    power = state(genesis, result.state_root, Address.new_id(4), "storagepower")
    assert power["first_cron_epoch"] == 5


def test_empty_tipset_has_the_empty_receipts_root_of_genesis(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    result = run(genesis, config, [block(genesis)])
    assert result.receipts_root == genesis.header.parent_message_receipts


def test_receipts_root_is_a_legacy_amt_of_version_1_receipts(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    message = transfer(BOB, ALICE.address, 1)
    result = run(genesis, config, [block(genesis, bls=(message,))])
    amt = Amt(genesis.store, result.receipts_root, legacy=True)
    stored = [Receipt.from_cbor(value) for _, value in amt.items()]
    assert stored == list(result.receipts)
    assert len(stored[0].to_cbor()) == 4
    assert receipts_root(MemoryBlockstore(), result.receipts) == result.receipts_root


def test_events_amt_is_stored_under_the_receipts_events_root() -> None:
    events = (StampedEvent(1234, (EventEntry(3, "t1", 0x55, b"\x01"),)),)
    expected = Amt.from_list(MemoryBlockstore(), [events[0].to_cbor()], bit_width=5).flush()
    ret = ApplyRet(Receipt(0, b"", 100, expected), events=events)
    store = MemoryBlockstore()
    assert store_events_amt(store, ret) == expected
    assert [value for _, value in Amt(store, expected).items()] == [events[0].to_cbor()]
    assert store_events_amt(store, ApplyRet(Receipt(0, b"", 100, None))) is None
    wrong = ApplyRet(Receipt(0, b"", 100, CID.hash_of(b"\x80")), events=events)
    with pytest.raises(TipsetExecutionError, match="events AMT root"):
        store_events_amt(store, wrong)


# -- several blocks ---------------------------------------------------------------------------


def create_second_miner(genesis: DevnetGenesis, config: ExecutionConfig) -> tuple[CID, Address]:
    """An explicit power CreateMiner from Alice with Bob's BLS key as worker, at epoch 1."""
    params = dag_cbor.encode([ALICE.address.to_bytes(), BOB.address.to_bytes(), 5, b"", []])
    create = Message(
        to=Address.new_id(4),
        from_=ALICE.address,
        gas_limit=200_000_000,
        gas_fee_cap=FEE_CAP,
        gas_premium=PREMIUM,
        method_num=2,
        params=params,
    )
    result = run(genesis, config, [block(genesis, secp=(ALICE.sign_message(create),))])
    assert result.receipts[0].exit_code == ExitCode.OK
    id_address, _ = dag_cbor.decode(result.receipts[0].return_data)
    return result.state_root, Address.from_bytes(id_address)


def test_message_in_two_blocks_is_applied_once(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    parent, second_miner = create_second_miner(genesis, config)
    shared = ALICE.sign_message(transfer(ALICE, BOB.address, 5, sequence=1))
    own = ALICE.sign_message(transfer(ALICE, BOB.address, 6, sequence=2))
    blocks = [
        block(genesis, secp=(shared,)),
        block(genesis, secp=(shared, own), miner=second_miner),
    ]
    result = run(genesis, config, blocks, epoch=2, parent_epoch=1, parent_state=parent)
    assert result.message_cids == (shared.cid(), own.cid())
    assert [receipt.exit_code for receipt in result.receipts] == [ExitCode.OK, ExitCode.OK]
    assert actor(genesis, result.state_root, ALICE.address).sequence == 3
    assert actor(genesis, result.state_root, second_miner).balance > 0
    rewards = result.implicit_rets[:2]
    assert all(ret.receipt.exit_code == ExitCode.OK for ret in rewards)


def test_two_blocks_from_one_miner_are_refused(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    with pytest.raises(DuplicateBlockMiner):
        run(genesis, config, [block(genesis), block(genesis)])


def test_reward_for_a_missing_miner_id_is_burnt(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    result = run(genesis, config, [block(genesis, miner=Address.new_id(4242))])
    assert StateTree(genesis.store, result.state_root).get_actor(4242) is None
    assert actor(genesis, result.state_root, Address.new_id(99)).balance > 0


def test_block_from_an_unresolvable_miner_address_aborts_the_tipset(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    stranger = Key.generate(KeyType.SECP256K1, b"stranger").address
    with pytest.raises(ImplicitMessageFailed, match="block reward") as failure:
        run(genesis, config, [block(genesis, miner=stranger)])
    assert failure.value.ret.receipt.exit_code == ExitCode.USR_NOT_FOUND


def test_network_version_change_without_migration_is_refused(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    upgrading = ExecutionConfig(
        network_version=lambda epoch: 18 if epoch < 3 else 19,
        circulating_supply=config.circulating_supply,
        invoker=config.invoker,
        chain_id=config.chain_id,
        genesis_timestamp=TIMESTAMP,
        block_delay_seconds=DEVNET_BLOCK_DELAY_SECS,
    )
    with pytest.raises(MissingStateMigration):
        run(genesis, upgrading, [block(genesis)], epoch=4)


def test_tipset_not_above_its_parent_is_refused(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    with pytest.raises(TipsetExecutionError):
        run(genesis, config, [block(genesis)], epoch=0)


def full_block(
    genesis: DevnetGenesis, election: ElectionProof | None, **messages: Any
) -> FullBlock:
    header = BlockHeader(
        miner=genesis.miner,
        ticket=Ticket(bytes(32)),
        election_proof=election,
        parents=(genesis.cid,),
        parent_weight=0,
        height=1,
        parent_state_root=genesis.state_root,
        parent_message_receipts=genesis.header.parent_message_receipts,
        messages=genesis.header.messages,
        bls_aggregate=None,
        timestamp=TIMESTAMP + DEVNET_BLOCK_DELAY_SECS,
        block_sig=None,
        parent_base_fee=genesis.header.parent_base_fee,
    )
    return FullBlock(header, messages.get("bls", ()), messages.get("secp", ()))


def test_full_blocks_execute_from_what_their_headers_say(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    secp = ALICE.sign_message(transfer(ALICE, BOB.address, 9))
    bls = transfer(BOB, ALICE.address, 4)
    full = full_block(genesis, ElectionProof(1, b""), bls=(bls,), secp=(secp,))
    result = apply_full_blocks(config, genesis.store, ChainExterns(), [full], parent_epoch=0)
    direct = run(genesis, config, [block(genesis, bls=(bls,), secp=(secp,))])
    assert (result.state_root, result.receipts_root) == (direct.state_root, direct.receipts_root)


def test_full_block_without_an_election_proof_is_refused(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    full = full_block(genesis, None)
    with pytest.raises(TipsetExecutionError, match="election proof"):
        apply_full_blocks(config, genesis.store, ChainExterns(), [full], parent_epoch=0)


# -- circulating supply -----------------------------------------------------------------------


def test_circulating_supply_terms_at_genesis(genesis: DevnetGenesis) -> None:
    tree = StateTree(genesis.store, genesis.state_root)
    supply = vm_circulating_supply_detailed(0, tree, DEVNET_NETWORK_VERSION)
    reserve = actor(genesis, genesis.state_root, Address.new_id(90)).balance
    assert (supply.vested, supply.mined, supply.burnt, supply.locked) == (0, 0, 0, 0)
    assert supply.reserve_disbursed == INITIAL_FIL_RESERVED - reserve < 0
    assert supply.circulating == 0


def test_circulating_supply_counts_mined_and_burnt_funds(
    genesis: DevnetGenesis, config: ExecutionConfig
) -> None:
    message = transfer(BOB, ALICE.address, 1)
    result = run(genesis, config, [block(genesis, bls=(message,))])
    tree = StateTree(genesis.store, result.state_root)
    vesting = [VestingSchedule(10**30, 0, 0)]
    supply = vm_circulating_supply_detailed(1, tree, DEVNET_NETWORK_VERSION, vesting)
    assert supply.mined > 0
    assert supply.burnt == actor(genesis, result.state_root, Address.new_id(99)).balance > 0
    assert supply.circulating == (
        10**30 + supply.mined + supply.reserve_disbursed - supply.burnt - supply.locked
    )


def test_vesting_schedule_unlocks_linearly_like_specs_actors() -> None:
    schedule = VestingSchedule(initial_balance=100, start_epoch=10, unlock_duration=10)
    assert schedule.vested_at(10) == 0
    assert schedule.vested_at(13) == 30
    assert schedule.vested_at(20) == 100
    assert VestingSchedule(101, 0, 10).amount_locked(3) == 70  # Go's truncating division
