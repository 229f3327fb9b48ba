"""The devnet load generator's schedule over a simulated chain, without nodes.

A fake node returns each message's receipt a fixed number of steps after it was sent, so the
mix (:class:`~node.devnet.load_generator.LoadGenerator`: transfers from secp256k1 and BLS
accounts in turn, repeated multisig rounds, contract deployments and calls), the nonces and the
multisig round bookkeeping are checked exactly, at several receipt delays.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import pytest
import trio

from fvm.address import Address
from fvm.message import SignedMessage
from fvm.receipt import ExitCode, Receipt
from fvm.token import FILECOIN_PRECISION
from node.devnet.keys import Key, KeyType
from node.devnet.layout import DevnetAccount
from node.devnet.load_generator import (
    DEPLOY_EVERY_SLOTS,
    EVM_DEPLOY,
    EVM_INCREMENT,
    GAS_LIMITS,
    MULTISIG_APPROVE,
    MULTISIG_CREATE,
    MULTISIG_FUNDING,
    MULTISIG_PAYOUT,
    MULTISIG_PROPOSE,
    MULTISIG_ROUND_EVERY_SLOTS,
    TRANSFER_BLS,
    TRANSFER_KINDS,
    TRANSFER_SECP256K1,
    LoadGenerator,
    LoadSummary,
)
from node.devnet.load_messages import (
    EAM_ACTOR_ADDRESS,
    EVM_INVOKE_CONTRACT_METHOD,
    INIT_ACTOR_ADDRESS,
    MULTISIG_APPROVE_METHOD,
    MULTISIG_PROPOSE_METHOD,
    proposal_hash,
)
from node.filecoin_node import FilecoinNode
from store import dag_cbor
from store.cid import CID

FIL = FILECOIN_PRECISION

MIX_ACCOUNTS = tuple(
    DevnetAccount(f"account-{n}", Key.generate(kind, b"mix/%d" % n), 1000 + n, FIL)
    for n, kind in enumerate((KeyType.SECP256K1, KeyType.BLS, KeyType.SECP256K1, KeyType.BLS))
)
MIX_SLOTS = 210


class _FakeHead:
    blocks: tuple[Any, ...] = ()
    parent_base_fee = 100
    height = 0


class _FakePool:
    def next_nonce(self, address: Address) -> int:
        return 0


class _FakeManifest:
    def code_of(self, name: str) -> CID:
        return CID.hash_of(name.encode())


class _FakeBundle:
    manifest = _FakeManifest()


class _FakePubsub:
    def __init__(self) -> None:
        self.published: list[SignedMessage] = []

    async def publish(self, topic: str, data: bytes) -> None:
        assert topic == "/fil/msgs/mix"
        self.published.append(SignedMessage.decode(data))


class _FakeNode:
    """What the generator uses of its node: head, nonces, pubsub and the bundle."""

    messages_topic = "/fil/msgs/mix"
    message_pool = _FakePool()
    bundle = _FakeBundle()

    def __init__(self) -> None:
        self.pubsub = _FakePubsub()

    def head(self) -> _FakeHead:
        return _FakeHead()


class SimulatedChain:
    """A chain that includes every watched message ``delay`` generator steps after it was
    sent, with an OK receipt carrying what the v10 actor returns for it."""

    def __init__(self, pubsub: _FakePubsub, delay: int, failing: str | None = None) -> None:
        self.pubsub = pubsub
        self.delay = delay
        self.failing = failing
        self.steps = 0
        self.pending: list[tuple[int, SignedMessage]] = []
        self.receipts: dict[CID, Receipt] = {}
        self.wallets: dict[CID, Address] = {}
        self.contracts: list[Address] = []

    def watch(self, cid: CID) -> None:
        signed = self.pubsub.published[-1]
        assert signed.cid() == cid
        self.pending.append((self.steps, signed))

    def update(self) -> None:
        self.steps += 1
        while self.pending and self.steps - self.pending[0][0] >= self.delay:
            _, signed = self.pending.pop(0)
            if _kind_of(signed) == self.failing:
                receipt = Receipt(ExitCode.USR_FORBIDDEN, b"", 1)
            else:
                receipt = Receipt(ExitCode.OK, self._returned(signed), 1)
            self.receipts[signed.cid()] = receipt

    def get(self, cid: CID) -> Receipt | None:
        return self.receipts.get(cid)

    def _returned(self, signed: SignedMessage) -> bytes:
        message = signed.message
        if message.to == INIT_ACTOR_ADDRESS:
            wallet = Address.new_actor(signed.cid().to_bytes())
            self.wallets[signed.cid()] = wallet
            return dag_cbor.encode([Address.new_id(5000).to_bytes(), wallet.to_bytes()])
        if message.to == EAM_ACTOR_ADDRESS:
            actor_id = 6000 + len(self.contracts)
            self.contracts.append(Address.new_id(actor_id))
            return dag_cbor.encode([actor_id, None, actor_id.to_bytes(20, "big")])
        if message.method_num == MULTISIG_PROPOSE_METHOD:
            return dag_cbor.encode([7, False, 0, b""])
        if message.method_num == MULTISIG_APPROVE_METHOD:
            return dag_cbor.encode([True, 0, b""])
        return b""


def _run_mix(
    delay: int, failing: str | None = None
) -> tuple[LoadSummary, list[SignedMessage], SimulatedChain]:
    node = _FakeNode()
    chain = SimulatedChain(node.pubsub, delay, failing)
    summary = LoadSummary()
    generator = LoadGenerator(cast(FilecoinNode, node), MIX_ACCOUNTS, summary, receipts=chain)

    async def steps() -> None:
        for _ in range(MIX_SLOTS):
            await generator.step()

    trio.run(steps)
    return summary, node.pubsub.published, chain


def _kind_of(signed: SignedMessage) -> str:
    message = signed.message
    if message.method_num == 0:
        sender = next(a for a in MIX_ACCOUNTS if a.address == message.from_)
        return TRANSFER_KINDS[sender.key.kind]
    if message.to == INIT_ACTOR_ADDRESS:
        return MULTISIG_CREATE
    if message.to == EAM_ACTOR_ADDRESS:
        return EVM_DEPLOY
    return {
        MULTISIG_PROPOSE_METHOD: MULTISIG_PROPOSE,
        MULTISIG_APPROVE_METHOD: MULTISIG_APPROVE,
        EVM_INVOKE_CONTRACT_METHOD: EVM_INCREMENT,
    }[message.method_num]


def test_the_mix_repeats_every_kind_of_message_many_times() -> None:
    summary, published, _ = _run_mix(delay=10)
    assert len(published) == MIX_SLOTS
    assert Counter(_kind_of(signed) for signed in published) == summary.submitted
    assert set(summary.submitted) == set(GAS_LIMITS)
    assert summary.submitted[MULTISIG_CREATE] == MIX_SLOTS // MULTISIG_ROUND_EVERY_SLOTS
    assert summary.submitted[MULTISIG_APPROVE] >= 12
    assert summary.submitted[EVM_DEPLOY] == -(-MIX_SLOTS // DEPLOY_EVERY_SLOTS)
    for kind in (EVM_INCREMENT, TRANSFER_SECP256K1, TRANSFER_BLS):
        assert summary.submitted[kind] >= 30, kind
    assert abs(summary.submitted[TRANSFER_SECP256K1] - summary.submitted[TRANSFER_BLS]) <= 1
    for signed in published:
        assert signed.message.gas_limit == GAS_LIMITS[_kind_of(signed)]


@pytest.mark.parametrize("delay", [1, 10, 45])
def test_overlapping_rounds_keep_every_senders_nonces_in_sequence(delay: int) -> None:
    _, published, _ = _run_mix(delay)
    nonces: dict[Address, list[int]] = {}
    for signed in published:
        nonces.setdefault(signed.message.from_, []).append(signed.message.sequence)
    assert set(nonces) == {account.address for account in MIX_ACCOUNTS}
    for sequence in nonces.values():
        assert sequence == list(range(len(sequence)))


@pytest.mark.parametrize("delay", [1, 10, 45])
def test_each_round_proposes_and_approves_on_its_own_wallet_after_its_receipts(
    delay: int,
) -> None:
    _, published, chain = _run_mix(delay)
    by_address = {account.address: account for account in MIX_ACCOUNTS}
    signers: dict[Address, list[bytes]] = {}
    proposers: dict[Address, Address] = {}
    approved: list[Address] = []
    for signed in published:
        message = signed.message
        kind = _kind_of(signed)
        if kind == MULTISIG_CREATE:
            assert message.value == MULTISIG_FUNDING
        elif kind == MULTISIG_PROPOSE:
            wallet = message.to
            creation = next(c for c, w in chain.wallets.items() if w == wallet)
            _code, constructor = dag_cbor.decode(
                next(s for s in published if s.cid() == creation).message.params
            )
            signers[wallet] = dag_cbor.decode(constructor)[0]
            assert signers[wallet][0] == message.from_.to_bytes()
            assert wallet not in proposers
            proposers[wallet] = message.from_
        elif kind == MULTISIG_APPROVE:
            proposer = by_address[proposers[message.to]]
            assert message.from_ != proposer.address
            assert message.from_.to_bytes() == signers[message.to][1]
            expected = proposal_hash(
                proposer=Address.new_id(proposer.actor_id),
                to=proposer.address,
                value=MULTISIG_PAYOUT,
            )
            assert dag_cbor.decode(message.params) == [7, expected]
            approved.append(message.to)
    assert len(approved) == len(set(approved))
    assert len(approved) >= (3 if delay == 45 else 10)
    creators = {Address.from_bytes(signers[wallet][0]) for wallet in approved}
    kinds = {by_address[creator].key.kind for creator in creators}
    assert kinds == {KeyType.SECP256K1, KeyType.BLS}


def test_calls_go_to_deployed_contracts_spread_over_all_of_them() -> None:
    _, published, chain = _run_mix(delay=10)
    called = Counter(s.message.to for s in published if _kind_of(s) == EVM_INCREMENT)
    # Contracts deployed late in the run are not on chain before it ends.
    assert set(called) <= set(chain.contracts)
    assert len(called) >= len(chain.contracts) - 1 >= 3
    # The first contract is called alone until the second is on chain, then they share.
    assert called[chain.contracts[0]] < sum(called.values()) / 2


@pytest.mark.parametrize(
    ("failing", "never_sent"),
    [
        (MULTISIG_CREATE, {MULTISIG_PROPOSE, MULTISIG_APPROVE}),
        (MULTISIG_PROPOSE, {MULTISIG_APPROVE}),
        (EVM_DEPLOY, {EVM_INCREMENT}),
    ],
)
def test_a_failed_step_abandons_what_depends_on_it_and_the_rest_goes_on(
    failing: str, never_sent: set[str]
) -> None:
    summary, published, _ = _run_mix(delay=10, failing=failing)
    assert len(published) == MIX_SLOTS
    assert set(summary.submitted) == set(GAS_LIMITS) - never_sent
    assert summary.submitted[failing] >= 5
    assert summary.submitted[TRANSFER_SECP256K1] >= 30
    assert summary.submitted[TRANSFER_BLS] >= 30
