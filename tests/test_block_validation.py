"""Block validation without proofs: a signed child of the real mainnet genesis header, on a
devnet-style state (real actors v10 devnet code CIDs) that passes, and one case per rule that
fails with its reason code. Real mainnet v10 miner state checks the worker lookup."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from chainsync.block_validation import (
    BlockValidationError,
    ChainRules,
    KeyResolutionError,
    ParentContext,
    Reason,
    is_valid_for_sending,
    miner_worker,
    miner_worker_key,
    resolve_key_address,
    validate_block,
)
from chainsync.chain_types import (
    BeaconEntry,
    BlockHeader,
    ElectionProof,
    FullBlock,
    Ticket,
    TipSet,
)
from chainsync.consensus_profile import (
    ConsensusProfile,
    DevnetConsensus,
    FilecoinConsensus,
    election_vrf_input,
    ticket_vrf_input,
)
from chainsync.messages_root import compute_msg_meta
from chainsync.weight import devnet_weight
from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.bundle import load_bundle
from fvm.conformance.vector import load_vector
from fvm.crypto import bls, secp256k1
from fvm.message import Message, SignedMessage
from fvm.signature import Signature
from fvm.state_tree import InitActorState, StateTree
from store import dag_cbor
from store.blockstore import MemoryBlockstore, put
from store.car import read_car
from store.cid import CID
from store.hamt import Hamt

WORKER_KEY = bytes([7]) + bytes(31)
OTHER_BLS_KEY = bytes([9]) + bytes(31)
SENDER_BLS_KEY = bytes([11]) + bytes(31)
SENDER_SECP_KEY = bytes(31) + bytes([5])
WORKER = Address.new_bls(bls.public_key(WORKER_KEY))
BLS_SENDER = Address.new_bls(bls.public_key(SENDER_BLS_KEY))
SECP_SENDER = Address.new_secp256k1(secp256k1.public_key(SENDER_SECP_KEY))
MINER = Address.new_id(1000)
WORKER_ID, BLS_SENDER_ID, SECP_SENDER_ID = 100, 101, 102
BLS_SENDER_NONCE = 3
BLOCK_DELAY = 30
NV = 18


class PoSt:
    def __init__(self, verdict: bool) -> None:
        self.verdict = verdict
        self.calls: list[Address] = []

    def verify_winning_post(
        self, header: BlockHeader, prev_beacon: BeaconEntry, worker: Address
    ) -> bool:
        self.calls.append(worker)
        return self.verdict


@pytest.fixture(scope="module")
def genesis(mainnet_genesis: Path) -> BlockHeader:
    car_header, blocks = read_car(mainnet_genesis)
    root = car_header.roots[0]
    return BlockHeader.decode(dict(blocks)[root], str(root))


@pytest.fixture(scope="module")
def codes(actors_dir: Path) -> dict[str, CID]:
    return dict(load_bundle(actors_dir / "v10.tar.zst", "devnet").actors)


def name_lookup(codes: dict[str, CID]) -> Callable[[CID], str | None]:
    names = {code: name for name, code in codes.items()}
    return names.get


def miner_state(store: MemoryBlockstore, worker: Address) -> CID:
    """A v10 miner state (builtin-actors miner ``State`` / ``MinerInfo`` field order)."""
    info = [
        worker.to_bytes(),  # owner
        worker.to_bytes(),  # worker
        [],  # control addresses
        None,  # pending worker key
        b"peer",
        [],
        8,  # window PoSt proof type
        34359738368,  # 32 GiB sectors
        2349,
        -1,
        None,
        worker.to_bytes(),  # beneficiary
        [b"", b"", 0],
        None,
    ]
    info_cid = put(store, dag_cbor.encode(info))
    link = CID.hash_of(b"not needed")
    state = [info_cid, b"", b"", link, b"", b"", link, link, link, link, 0, 0, link, b"", False]
    return put(store, dag_cbor.encode(state))


@pytest.fixture(scope="module")
def state(codes: dict[str, CID]) -> tuple[MemoryBlockstore, CID]:
    store = MemoryBlockstore()
    tree = StateTree(store)
    address_map = Hamt(store, bit_width=5)
    address_map.set(WORKER.to_bytes(), WORKER_ID)
    address_map.set(BLS_SENDER.to_bytes(), BLS_SENDER_ID)
    address_map.set(SECP_SENDER.to_bytes(), SECP_SENDER_ID)
    init = InitActorState(address_map.flush(), 2000, "devnet")
    tree.set_actor(1, ActorState(codes["init"], put(store, dag_cbor.encode(init.to_cbor()))))
    for actor_id, key, nonce in (
        (WORKER_ID, WORKER, 0),
        (BLS_SENDER_ID, BLS_SENDER, BLS_SENDER_NONCE),
        (SECP_SENDER_ID, SECP_SENDER, 0),
    ):
        head = put(store, dag_cbor.encode([key.to_bytes()]))
        tree.set_actor(actor_id, ActorState(codes["account"], head, nonce, 10**18))
    tree.set_actor(
        MINER.id, ActorState(codes["storageminer"], miner_state(store, Address.new_id(WORKER_ID)))
    )
    return store, tree.flush()


def message(sender: Address, nonce: int, gas_limit: int = 10_000_000) -> Message:
    return Message(
        to=Address.new_id(WORKER_ID),
        from_=sender,
        sequence=nonce,
        value=1,
        gas_limit=gas_limit,
        gas_fee_cap=200_000_000,
        gas_premium=100_000,
    )


def secp_signed(msg: Message, key: bytes = SENDER_SECP_KEY) -> SignedMessage:
    return SignedMessage(msg, Signature.new_secp256k1(secp256k1.sign(key, msg.cid().to_bytes())))


@dataclasses.dataclass
class Setup:
    genesis: BlockHeader
    store: MemoryBlockstore
    root: CID
    codes: dict[str, CID]

    @property
    def parent(self) -> TipSet:
        return TipSet([self.genesis])

    def context(self, **changes: Any) -> ParentContext:
        base = ParentContext(
            tipset=self.parent,
            state_root=self.root,
            receipts_root=self.genesis.parent_message_receipts,
            weight=devnet_weight(self.genesis.parent_weight, 1),
            base_fee=87_500_000,
            prev_beacon=self.genesis.beacon_entries[-1],
        )
        return dataclasses.replace(base, **changes)

    def rules(self, **changes: Any) -> ChainRules:
        return dataclasses.replace(ChainRules(NV, 10, name_lookup(self.codes)), **changes)

    def block(
        self,
        bls_messages: Sequence[Message] = (),
        secp_messages: Sequence[SignedMessage] = (),
        *,
        signer: bytes = WORKER_KEY,
        ticket_signer: bytes = WORKER_KEY,
        bls_signer: bytes = SENDER_BLS_KEY,
        wins: int = 1,
        **changes: Any,
    ) -> FullBlock:
        """A child of the genesis made from the genesis header, signed as its miner would."""
        genesis = self.genesis
        height = changes.get("height", 1)
        miner = changes.get("miner", MINER)
        beacon = genesis.beacon_entries[-1]
        assert genesis.ticket is not None
        ticket_input = ticket_vrf_input(miner, height, beacon, genesis.ticket.vrf_proof)
        election_input = election_vrf_input(miner, height, beacon)
        aggregate = bls.aggregate([bls.sign(bls_signer, m.cid().to_bytes()) for m in bls_messages])
        header = dataclasses.replace(
            genesis,
            miner=miner,
            ticket=Ticket(bls.sign(ticket_signer, ticket_input)),
            election_proof=ElectionProof(wins, bls.sign(WORKER_KEY, election_input)),
            beacon_entries=(),
            parents=(genesis.cid(),),
            parent_weight=256,
            height=height,
            parent_state_root=self.root,
            parent_message_receipts=genesis.parent_message_receipts,
            messages=compute_msg_meta(
                MemoryBlockstore(),
                [m.cid() for m in bls_messages],
                [m.cid() for m in secp_messages],
            ),
            bls_aggregate=Signature.new_bls(aggregate),
            timestamp=genesis.timestamp + BLOCK_DELAY * height,
            parent_base_fee=87_500_000,
        )
        header = dataclasses.replace(header, **changes)
        signed = dataclasses.replace(
            header, block_sig=Signature.new_bls(bls.sign(signer, header.signing_bytes()))
        )
        return FullBlock(signed, tuple(bls_messages), tuple(secp_messages))

    def validate(
        self,
        block: FullBlock,
        *,
        context: ParentContext | None = None,
        rules: ChainRules | None = None,
        profile: ConsensusProfile | None = None,
        now: int | None = None,
    ) -> None:
        validate_block(
            block,
            context or self.context(),
            store=self.store,
            profile=profile or DevnetConsensus(MINER, block_delay_secs=BLOCK_DELAY),
            rules=rules or self.rules(),
            now=block.header.timestamp if now is None else now,
        )


@pytest.fixture
def setup(
    genesis: BlockHeader, state: tuple[MemoryBlockstore, CID], codes: dict[str, CID]
) -> Setup:
    return Setup(genesis, state[0], state[1], codes)


def refused(setup: Setup, block: FullBlock, reason: Reason, **kwargs: Any) -> str:
    with pytest.raises(BlockValidationError) as info:
        setup.validate(block, **kwargs)
    assert info.value.reason is reason, info.value
    return info.value.detail


def good_messages() -> tuple[list[Message], list[SignedMessage]]:
    bls_messages = [
        message(Address.new_id(BLS_SENDER_ID), BLS_SENDER_NONCE),
        message(BLS_SENDER, BLS_SENDER_NONCE + 1),  # the key address resolves to the same ID
    ]
    secp_messages = [secp_signed(message(Address.new_id(SECP_SENDER_ID), 0))]
    return bls_messages, secp_messages


# -- passing --------------------------------------------------------------------------------


def test_an_empty_signed_child_of_the_real_genesis_is_valid(setup: Setup) -> None:
    setup.validate(setup.block())


def test_a_block_with_bls_and_secp_messages_is_valid(setup: Setup) -> None:
    bls_messages, secp_messages = good_messages()
    setup.validate(setup.block(bls_messages, secp_messages))


def test_a_block_after_null_rounds_is_valid_at_its_later_timestamp(setup: Setup) -> None:
    block = setup.block(height=4)
    assert block.header.timestamp == setup.genesis.timestamp + 4 * BLOCK_DELAY
    setup.validate(block)


def test_filecoin_profile_checks_election_and_asks_the_post_verifier(setup: Setup) -> None:
    # Every upgrade at genesis (smoke height -1), as on a network started at version 18.
    verifier = PoSt(True)
    profile = FilecoinConsensus(
        verifier, lambda height: 10, block_delay_secs=BLOCK_DELAY, smoke_height=-1
    )
    setup.validate(setup.block(wins=2), profile=profile)
    assert verifier.calls == [WORKER]
    refuses_post = FilecoinConsensus(
        PoSt(False), lambda h: 10, block_delay_secs=BLOCK_DELAY, smoke_height=-1
    )
    refused(setup, setup.block(), Reason.WINNING_POST, profile=refuses_post)
    # Before mainnet's Smoke upgrade the parent's ticket is not part of the ticket's input.
    mainnet = FilecoinConsensus(PoSt(True), lambda h: 10, block_delay_secs=BLOCK_DELAY)
    refused(setup, setup.block(), Reason.TICKET, profile=mainnet)
    refused(setup, setup.block(wins=0), Reason.NOT_WINNING, profile=profile)
    block = setup.block()
    assert block.header.election_proof is not None
    bad_election = dataclasses.replace(
        block.header,
        election_proof=ElectionProof(1, bls.sign(WORKER_KEY, b"other randomness")),
    )
    resigned = dataclasses.replace(
        bad_election,
        block_sig=Signature.new_bls(bls.sign(WORKER_KEY, bad_election.signing_bytes())),
    )
    refused(setup, FullBlock(resigned, (), ()), Reason.ELECTION_PROOF, profile=profile)


# -- header failures ------------------------------------------------------------------------


def test_missing_fields_and_non_id_miners_are_refused(setup: Setup) -> None:
    block = setup.block()
    for name in ("ticket", "election_proof", "block_sig", "bls_aggregate"):
        header = dataclasses.replace(block.header, **{name: None})  # type: ignore[arg-type]
        detail = refused(setup, FullBlock(header, (), ()), Reason.MISSING_FIELD)
        assert detail.startswith("block had nil")
    refused(setup, setup.block(miner=WORKER), Reason.NON_ID_MINER)


def test_header_fields_must_follow_from_the_parent(setup: Setup) -> None:
    refused(setup, setup.block(parents=(CID.hash_of(b"elsewhere"),)), Reason.WRONG_PARENTS)
    refused(setup, setup.block(height=0), Reason.HEIGHT)
    good = setup.block().header.timestamp
    assert "wrong timestamp: 1598306431 != 1598306430" in refused(
        setup, setup.block(timestamp=good + 1), Reason.TIMESTAMP
    )
    refused(setup, setup.block(), Reason.FROM_THE_FUTURE, now=good - 2)
    setup.validate(setup.block(), now=good - 1)  # one second of drift is allowed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"weight": 257}, Reason.PARENT_WEIGHT),
        ({"state_root": CID.hash_of(b"other state")}, Reason.PARENT_STATE_ROOT),
        ({"receipts_root": CID.hash_of(b"other receipts")}, Reason.PARENT_RECEIPTS),
        ({"base_fee": 100_000_000}, Reason.PARENT_BASE_FEE),
    ],
)
def test_computed_parent_values_must_match_the_header(
    setup: Setup, change: dict[str, Any], reason: Reason
) -> None:
    refused(setup, setup.block(), reason, context=setup.context(**change))


def test_block_signature_and_ticket_must_be_the_workers(setup: Setup) -> None:
    refused(setup, setup.block(signer=OTHER_BLS_KEY), Reason.BLOCK_SIGNATURE)
    refused(setup, setup.block(ticket_signer=OTHER_BLS_KEY), Reason.TICKET)
    refused(setup, setup.block(miner=Address.new_id(4242)), Reason.UNKNOWN_MINER)
    refused(setup, setup.block(miner=Address.new_id(WORKER_ID)), Reason.UNKNOWN_MINER)


def test_devnet_blocks_win_exactly_once_and_come_from_the_devnet_miner(setup: Setup) -> None:
    refused(setup, setup.block(wins=2), Reason.NOT_WINNING)
    other_profile = DevnetConsensus(Address.new_id(1001), block_delay_secs=BLOCK_DELAY)
    refused(setup, setup.block(), Reason.UNKNOWN_MINER, profile=other_profile)


# -- message failures -----------------------------------------------------------------------


def test_bls_aggregate_must_cover_every_bls_message(setup: Setup) -> None:
    bls_messages, _ = good_messages()
    refused(setup, setup.block(bls_messages, bls_signer=OTHER_BLS_KEY), Reason.BLS_AGGREGATE)
    block = setup.block(bls_messages)
    partial = bls.aggregate([bls.sign(SENDER_BLS_KEY, bls_messages[0].cid().to_bytes())])
    header = dataclasses.replace(block.header, bls_aggregate=Signature.new_bls(partial))
    resigned = dataclasses.replace(
        header, block_sig=Signature.new_bls(bls.sign(WORKER_KEY, header.signing_bytes()))
    )
    refused(setup, FullBlock(resigned, block.bls_messages, ()), Reason.BLS_AGGREGATE)


def test_invalid_messages_are_refused(setup: Setup) -> None:
    sender = Address.new_id(SECP_SENDER_ID)
    too_little_gas = secp_signed(message(sender, 0, gas_limit=1000))
    assert "cannot be less than the cost of storing" in refused(
        setup, setup.block((), [too_little_gas]), Reason.INVALID_MESSAGE
    )
    big = [secp_signed(message(sender, n, gas_limit=6_000_000_000)) for n in range(2)]
    refused(setup, setup.block((), big), Reason.GAS_LIMIT)


def test_senders_must_exist_and_be_accounts_with_the_next_nonce(setup: Setup) -> None:
    unknown = message(Address.new_id(4242), 0)
    refused(setup, setup.block([unknown], bls_signer=SENDER_BLS_KEY), Reason.SENDER)
    miner_sends = secp_signed(message(MINER, 0))
    refused(setup, setup.block((), [miner_sends]), Reason.SENDER)
    stale = message(Address.new_id(BLS_SENDER_ID), BLS_SENDER_NONCE - 1)
    assert "exp: 3, got: 2" in refused(setup, setup.block([stale]), Reason.NONCE)
    bls_messages, _ = good_messages()
    gap = [bls_messages[0], message(BLS_SENDER, BLS_SENDER_NONCE + 2)]
    refused(setup, setup.block(gap), Reason.NONCE)


def test_secp_messages_need_an_allowed_type_and_the_senders_signature(setup: Setup) -> None:
    msg = message(Address.new_id(SECP_SENDER_ID), 0)
    forged = secp_signed(msg, key=bytes(31) + bytes([6]))
    refused(setup, setup.block((), [forged]), Reason.MESSAGE_SIGNATURE)
    bls_typed = SignedMessage(
        msg, Signature.new_bls(bls.sign(SENDER_BLS_KEY, msg.cid().to_bytes()))
    )
    refused(setup, setup.block((), [bls_typed]), Reason.SIGNATURE_TYPE)
    delegated = SignedMessage(msg, Signature.new_delegated(bytes(65)))
    refused(setup, setup.block((), [delegated]), Reason.UNVERIFIABLE_SIGNATURE)
    accept_all = setup.rules(delegated_authenticator=lambda signed, key: key == SECP_SENDER)
    setup.validate(setup.block((), [delegated]), rules=accept_all)
    pre_hygge = setup.rules(network_version=17)
    refused(setup, setup.block((), [delegated]), Reason.SIGNATURE_TYPE, rules=pre_hygge)


def test_messages_root_must_match_the_messages(setup: Setup) -> None:
    bls_messages, secp_messages = good_messages()
    block = setup.block(bls_messages, secp_messages)
    swapped = FullBlock(block.header, block.bls_messages[:1], block.secpk_messages)
    partial = bls.aggregate([bls.sign(SENDER_BLS_KEY, bls_messages[0].cid().to_bytes())])
    header = dataclasses.replace(block.header, bls_aggregate=Signature.new_bls(partial))
    header = dataclasses.replace(
        header, block_sig=Signature.new_bls(bls.sign(WORKER_KEY, header.signing_bytes()))
    )
    refused(
        setup, FullBlock(header, swapped.bls_messages, swapped.secpk_messages), Reason.MESSAGES_ROOT
    )


def test_block_validation_errors_are_malformed_input_with_a_metrics_label(setup: Setup) -> None:
    with pytest.raises(ValueError) as info:
        setup.validate(setup.block(height=0))
    assert isinstance(info.value, BlockValidationError)
    assert str(info.value).startswith("height_not_above_parent: ")


# -- state lookups --------------------------------------------------------------------------


def test_worker_and_key_resolution_on_the_devnet_state(setup: Setup) -> None:
    names = name_lookup(setup.codes)
    assert miner_worker_key(setup.store, setup.root, MINER, 10, names) == WORKER
    tree = StateTree(setup.store, setup.root)
    assert resolve_key_address(tree, Address.new_id(SECP_SENDER_ID), names) == SECP_SENDER
    assert resolve_key_address(tree, BLS_SENDER, names) == BLS_SENDER
    with pytest.raises(KeyResolutionError, match="not an account"):
        resolve_key_address(tree, MINER, names)
    with pytest.raises(KeyResolutionError, match="failed to find actor"):
        resolve_key_address(tree, Address.new_id(4242), names)


def test_worker_is_read_from_real_mainnet_v10_miner_state(
    vectors_dir: Path, actors_dir: Path
) -> None:
    vector = load_vector(
        vectors_dir / "extracted/0002-hygge-01/fil_10_storageminer/TerminateSectors/Ok/"
        "ext-0002-fil_10_storageminer-TerminateSectors-Ok-1.json"
    )
    names = {c: n for n, c in load_bundle(actors_dir / "v10.tar.zst", "mainnet").actors.items()}
    tree = StateTree(vector.blockstore(), vector.pre_state_root)
    sent = Message.decode(vector.messages[0].data)
    assert sent.to == Address.new_id(1918123)
    worker = miner_worker(tree, sent.to, 10, names.get)
    assert worker == Address.new_id(1918121)
    # The message is the worker's own: its f3 sender resolves to the worker's ID.
    assert tree.lookup_id(sent.from_) == worker.id


def test_who_may_send_follows_the_network_version(codes: dict[str, CID]) -> None:
    names = name_lookup(codes)
    eam_f4 = Address.new_delegated(10, bytes(20))
    account = ActorState(codes["account"], CID.hash_of(b"s"))
    eth_account = ActorState(codes["ethaccount"], CID.hash_of(b"s"))
    placeholder = ActorState(codes["placeholder"], CID.hash_of(b"s"), 0, 0, eam_f4)
    used_placeholder = dataclasses.replace(placeholder, sequence=1)
    other_namespace = dataclasses.replace(
        placeholder, delegated_address=Address.new_delegated(32, bytes(20))
    )
    multisig = ActorState(codes["multisig"], CID.hash_of(b"s"))
    assert is_valid_for_sending(17, account, names)
    assert not is_valid_for_sending(17, eth_account, names)
    assert is_valid_for_sending(18, eth_account, names)
    assert is_valid_for_sending(18, placeholder, names)
    assert not is_valid_for_sending(17, placeholder, names)
    assert not is_valid_for_sending(18, used_placeholder, names)
    assert not is_valid_for_sending(18, other_namespace, names)
    assert not is_valid_for_sending(18, multisig, names)
