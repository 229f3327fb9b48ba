"""``fvm-node devnet load``: keep a devnet busy with signed messages of every kind it supports.

The generator is itself a devnet node (:class:`~node.filecoin_node.FilecoinNode`, data in
``<devnet>/loadgen``) that follows the chain from the given peer, so it knows each account's
nonce and reads the receipts of what it sent, and it submits over gossipsub on
``/fil/msgs/<network>`` exactly as any node would. It fills one slot every ``1 / rate`` seconds
until ``count`` messages are submitted, each slot taking the first of:

* the next step of a multisig round whose last message has an OK receipt on chain: a round is a
  2-of-2 wallet created through the init actor by one signer (the first secp256k1 and the first
  BLS account in turn) with the other as second signer, then a transfer out of it proposed by
  its creator, then approved by the other signer (with the proposal hash
  :func:`~node.devnet.load_messages.proposal_hash` computes); rounds overlap;
* a new multisig round, every :data:`MULTISIG_ROUND_EVERY_SLOTS` slots;
* a deployment of the counter contract (:mod:`node.devnet.evm_contract`) through the EAM, every
  :data:`DEPLOY_EVERY_SLOTS` slots, by the first BLS and the first secp256k1 account in turn;
* otherwise, in turn, a value transfer (from a secp256k1 and from a BLS account alternately, to
  the next account) and an ``increment()`` call, spread over the contracts deployed so far.

The summary counts ``transfer_secp256k1`` and ``transfer_bls`` apart.

Nonces: each account's next nonce is read once from the followed head (its parent state, plus
the account's messages in the head itself) and counted up locally from there, so the messages
of overlapping rounds, deployments and transfers from one account stay in sequence.

Receipts: :class:`ChainReceipts` reads each executed tipset's receipts once, as the followed
head moves, keeping those of the messages sent (the position of a message among the tipset's
distinct messages, BLS before secp256k1 within each block, is its receipt's index, as Lotus
applies them), so looking a receipt up does not walk the chain.

Gas: fixed, generous limits per kind (:data:`GAS_LIMITS`) instead of
:func:`~node.devnet.load_messages.with_gas`, because a message's gas can only be estimated on
the state its sender's earlier messages leave, and those are still pending when the next one is
sent. The limits are several times what the v10 actors use on the devnet (a transfer about
0.5 M gas, a multisig creation or EVM deployment tens of millions); the unused part of a limit
is refunded except Lotus's over-estimation penalty, which only burns devnet FIL. The fee cap is
Lotus's ``GasEstimateFeeCap`` at the head's base fee, the premium ``MinGasPremium``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

import trio

from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.messages_root import load_receipts
from config.settings import NodeSettings, load_settings
from fvm.address import Address
from fvm.message import Message, SignedMessage
from fvm.receipt import ExitCode, Receipt
from fvm.token import FILECOIN_PRECISION
from node.devnet import evm_contract
from node.devnet.keys import KeyType
from node.devnet.layout import Devnet, DevnetAccount
from node.devnet.load_messages import (
    MIN_GAS_PREMIUM,
    approve,
    create_evm_contract,
    create_multisig,
    decode_eam_create_return,
    decode_exec_return,
    decode_propose_return,
    estimate_fee_cap,
    invoke_evm_contract,
    proposal_hash,
    propose,
    transfer,
)
from node.filecoin_node import FilecoinNode, ProgressLine
from node.pubsub import PublishRejected
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

logger = logging.getLogger(__name__)

LOADGEN_DIR: Final = "loadgen"
SYNC_TIMEOUT_SECONDS: Final = 120.0
# How many tipsets back from the head receipts are read.
RECEIPT_SEARCH_DEPTH: Final = 200
# Epochs to wait at the end for the submitted messages to be included.
INCLUSION_WAIT_EPOCHS: Final = 10

TRANSFER_SECP256K1: Final = "transfer_secp256k1"
TRANSFER_BLS: Final = "transfer_bls"
MULTISIG_CREATE: Final = "multisig_create"
MULTISIG_PROPOSE: Final = "multisig_propose"
MULTISIG_APPROVE: Final = "multisig_approve"
EVM_DEPLOY: Final = "evm_deploy"
EVM_INCREMENT: Final = "evm_increment"
TRANSFER_KINDS: Final[dict[KeyType, str]] = {
    KeyType.SECP256K1: TRANSFER_SECP256K1,
    KeyType.BLS: TRANSFER_BLS,
}
GAS_LIMITS: Final[dict[str, int]] = {
    TRANSFER_SECP256K1: 5_000_000,
    TRANSFER_BLS: 5_000_000,
    MULTISIG_CREATE: 100_000_000,
    MULTISIG_PROPOSE: 50_000_000,
    MULTISIG_APPROVE: 50_000_000,
    EVM_DEPLOY: 200_000_000,
    EVM_INCREMENT: 50_000_000,
}
"""Every message kind the generator sends, with its gas limit."""

# A new multisig round, and a new contract, every so many slots (at 5 messages a second, every
# 3 and 8 seconds): a round needs about three epochs per step for its receipts to be on chain,
# so several are under way at once.
MULTISIG_ROUND_EVERY_SLOTS: Final = 15
DEPLOY_EVERY_SLOTS: Final = 40
TRANSFER_VALUE: Final = FILECOIN_PRECISION // 1000
MULTISIG_FUNDING: Final = FILECOIN_PRECISION
MULTISIG_PAYOUT: Final = FILECOIN_PRECISION // 10


class LoadError(FvmNodeError):
    """The generator cannot run (no peer synced, no secp256k1 or BLS account)."""


class StepFailed(FvmNodeError):
    """A message a multisig round or a deployment depends on failed on chain: the generator
    abandons that round or contract and carries on."""


@dataclass(frozen=True, slots=True)
class LoadPlan:
    count: int
    rate: float


@dataclass
class LoadSummary:
    """What was submitted and what became of it, by message kind."""

    submitted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    succeeded: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        lines = [
            f"submitted {sum(self.submitted.values())}, on chain "
            f"{sum(self.succeeded.values()) + sum(self.failed.values())} "
            f"({sum(self.failed.values())} failed), refused {sum(self.refused.values())}"
        ]
        for kind in sorted(self.submitted):
            lines.append(
                f"  {kind:18} submitted {self.submitted[kind]:4}  ok {self.succeeded[kind]:4}  "
                f"failed {self.failed[kind]:4}  refused {self.refused[kind]:4}"
            )
        return "\n".join(lines)


class ReceiptSource(Protocol):
    """Where the generator learns what became of the messages it sent."""

    def watch(self, cid: CID) -> None:
        """Keep the receipt of message ``cid`` once it is on chain."""

    def update(self) -> None:
        """Read the receipts the chain has gained since the last update."""

    def get(self, cid: CID) -> Receipt | None:
        """The receipt of a watched message, if on chain and executed."""


class ChainReceipts:
    """Receipts of watched messages, read once from each executed tipset of a chain store.

    A tipset's receipts exist once it has been executed (its execution result is in the index).
    :meth:`update` walks back from the heaviest tipset to the first one already read, reading
    every executed one on the way, so each step costs the few tipsets the head moved by. The
    tipsets below the head at construction are never read: they hold no message sent since.
    """

    def __init__(self, store: ChainStore) -> None:
        self._store = store
        self._watched: set[CID] = set()
        self._receipts: dict[CID, Receipt] = {}
        self._read: set[bytes] = set()
        head = store.heaviest()
        if head is not None:
            self._read.add(head.key.to_bytes())

    def watch(self, cid: CID) -> None:
        self._watched.add(cid)

    def get(self, cid: CID) -> Receipt | None:
        return self._receipts.get(cid)

    def update(self) -> None:
        tipset = self._store.heaviest()
        for _ in range(RECEIPT_SEARCH_DEPTH):
            if tipset is None:
                return
            key = tipset.key.to_bytes()
            if key in self._read:
                return
            result = self._store.index.execution_result(key)
            if result is not None:
                try:
                    self._read_tipset(tipset, result.receipts_root)
                except MalformedInput as error:
                    logger.warning("receipts at epoch %d unreadable: %s", tipset.height, error)
                else:
                    self._read.add(key)
            if tipset.height == 0:
                return
            tipset = self._store.get_tipset(tipset.parents)

    def _read_tipset(self, tipset: TipSet, receipts_root: CID) -> None:
        # Receipts follow ApplyBlocks' order: blocks in turn, BLS then secp256k1 messages, a
        # message already applied in the tipset (by unsigned CID) skipped.
        order: list[CID] = []
        applied: set[CID] = set()
        for header in tipset.blocks:
            bls, secpk = self._store.get_block_messages(header)
            listed = [(m.cid(), m.cid()) for m in bls] + [(s.cid(), s.message.cid()) for s in secpk]
            for chain_cid, unsigned_cid in listed:
                if unsigned_cid not in applied:
                    applied.add(unsigned_cid)
                    order.append(chain_cid)
        if self._watched.isdisjoint(order):
            return
        receipts = load_receipts(self._store.blockstore, receipts_root)
        if len(receipts) != len(order):
            raise MalformedInput(
                f"{len(receipts)} receipts for {len(order)} messages at {tipset.height}"
            )
        for cid, receipt in zip(order, receipts, strict=True):
            if cid in self._watched:
                self._receipts[cid] = receipt


@dataclass
class MultisigRound:
    """One 2-of-2 wallet: created and proposed from by ``proposer``, approved by ``approver``.
    ``wallet`` is known once the creation's receipt is on chain."""

    proposer: DevnetAccount
    approver: DevnetAccount
    creation: CID
    wallet: Address | None = None
    proposal: CID | None = None


class LoadGenerator:
    """Builds, signs and submits the mix over one following node, one message a step."""

    def __init__(
        self,
        node: FilecoinNode,
        accounts: Sequence[DevnetAccount],
        summary: LoadSummary,
        receipts: ReceiptSource | None = None,
    ) -> None:
        self.node = node
        self.accounts = tuple(accounts)
        self.summary = summary
        self.receipts: ReceiptSource = (
            ChainReceipts(node.chain_store) if receipts is None else receipts
        )
        self.secp = [a for a in self.accounts if a.key.kind is KeyType.SECP256K1]
        self.bls = [a for a in self.accounts if a.key.kind is KeyType.BLS]
        if not self.secp or not self.bls:
            raise LoadError(
                "the load needs a secp256k1 and a BLS account (devnet init --accounts 2)"
            )
        # The two accounts that take turns creating, deploying and calling.
        self._pair = (self.secp[0], self.bls[0])
        self._nonces: dict[Address, int] = {}
        self._sent: dict[CID, str] = {}
        self._settled: set[CID] = set()
        self._rounds: list[MultisigRound] = []
        self._deploys: list[CID] = []
        self._contracts: list[Address] = []
        self._slots = 0
        self._rounds_started = 0
        self._deploys_sent = 0
        self._transfers = 0
        self._calls = 0

    # -- nonces -------------------------------------------------------------------------------

    def _next_nonce(self, account: DevnetAccount) -> int:
        address = account.address
        if address not in self._nonces:
            head = self.node.head()
            nonce = self.node.message_pool.next_nonce(address)
            for header in head.blocks:
                bls, secpk = self.node.chain_store.get_block_messages(header)
                for message in [*bls, *(s.message for s in secpk)]:
                    if message.from_ == address and message.sequence >= nonce:
                        nonce = message.sequence + 1
            self._nonces[address] = nonce
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return nonce

    # -- submission ---------------------------------------------------------------------------

    def _priced(self, message: Message, kind: str) -> Message:
        base_fee = self.node.head().parent_base_fee
        return replace(
            message,
            gas_limit=GAS_LIMITS[kind],
            gas_fee_cap=estimate_fee_cap(base_fee, MIN_GAS_PREMIUM),
            gas_premium=MIN_GAS_PREMIUM,
        )

    async def _submit(self, account: DevnetAccount, kind: str, message: Message) -> CID | None:
        """Sign and publish; the message's CID, or None (and the nonce re-read next time) when
        our own node's validator refuses it."""
        signed: SignedMessage = account.key.sign_message(self._priced(message, kind))
        try:
            await self.node.pubsub.publish(self.node.messages_topic, signed.encode())
        except PublishRejected as error:
            self.summary.refused[kind] += 1
            self._nonces.pop(account.address, None)
            logger.warning("%s from %s refused: %s", kind, account.address, error)
            return None
        cid = signed.cid()
        self.summary.submitted[kind] += 1
        self._sent[cid] = kind
        self.receipts.watch(cid)
        return cid

    def _ok_receipt(self, cid: CID, kind: str) -> Receipt | None:
        """The receipt of ``cid`` if on chain; raises :class:`StepFailed` if it failed."""
        receipt = self.receipts.get(cid)
        if receipt is not None and receipt.exit_code != ExitCode.OK:
            raise StepFailed(f"{kind} {cid} exited {receipt.exit_code}")
        return receipt

    async def step(self) -> None:
        """Submit one message: a due multisig follow-up, else a new round or deployment when
        their slot has come, else a transfer or a contract call in turn."""
        self.receipts.update()
        slot = self._slots
        self._slots += 1
        if await self._advance_a_round():
            return
        if slot >= self._rounds_started * MULTISIG_ROUND_EVERY_SLOTS:
            await self._start_round()
            return
        if slot >= self._deploys_sent * DEPLOY_EVERY_SLOTS:
            await self._deploy()
            return
        self._collect_contracts()
        # The fills so far alternate between transfers and calls.
        if (self._transfers + self._calls) % 2 == 1 and self._contracts:
            await self._call()
        else:
            await self._transfer()

    # -- multisig rounds ----------------------------------------------------------------------

    async def _start_round(self) -> None:
        proposer = self._pair[self._rounds_started % 2]
        approver = self._pair[(self._rounds_started + 1) % 2]
        self._rounds_started += 1
        message = create_multisig(
            sender=proposer.address,
            nonce=self._next_nonce(proposer),
            multisig_code=self.node.bundle.manifest.code_of("multisig"),
            signers=[proposer.address, approver.address],
            threshold=2,
            value=MULTISIG_FUNDING,
        )
        cid = await self._submit(proposer, MULTISIG_CREATE, message)
        if cid is not None:
            self._rounds.append(MultisigRound(proposer, approver, cid))

    async def _advance_a_round(self) -> bool:
        """Submit the next message of the oldest round that can move on; False if none can."""
        for round_ in list(self._rounds):
            try:
                advanced = await self._advance(round_)
            except (StepFailed, MalformedInput) as error:
                logger.warning("multisig round of %s abandoned: %s", round_.proposer.address, error)
                self._rounds.remove(round_)
                continue
            if advanced:
                return True
        return False

    async def _advance(self, round_: MultisigRound) -> bool:
        if round_.wallet is None:
            created = self._ok_receipt(round_.creation, MULTISIG_CREATE)
            if created is None:
                return False
            round_.wallet = decode_exec_return(created.return_data).robust_address
        proposer = round_.proposer
        if round_.proposal is None:
            round_.proposal = await self._submit(
                proposer,
                MULTISIG_PROPOSE,
                propose(
                    sender=proposer.address,
                    nonce=self._next_nonce(proposer),
                    multisig=round_.wallet,
                    to=proposer.address,
                    value=MULTISIG_PAYOUT,
                ),
            )
            return True
        proposed = self._ok_receipt(round_.proposal, MULTISIG_PROPOSE)
        if proposed is None:
            return False
        txn_id = decode_propose_return(proposed.return_data).txn_id
        approver = round_.approver
        approval = await self._submit(
            approver,
            MULTISIG_APPROVE,
            approve(
                sender=approver.address,
                nonce=self._next_nonce(approver),
                multisig=round_.wallet,
                txn_id=txn_id,
                proposal_hash=proposal_hash(
                    proposer=Address.new_id(proposer.actor_id),
                    to=proposer.address,
                    value=MULTISIG_PAYOUT,
                ),
            ),
        )
        if approval is not None:
            self._rounds.remove(round_)
        return True

    # -- contracts ----------------------------------------------------------------------------

    async def _deploy(self) -> None:
        deployer = self._pair[(self._deploys_sent + 1) % 2]
        self._deploys_sent += 1
        message = create_evm_contract(
            sender=deployer.address,
            nonce=self._next_nonce(deployer),
            initcode=evm_contract.INIT_CODE,
        )
        cid = await self._submit(deployer, EVM_DEPLOY, message)
        if cid is not None:
            self._deploys.append(cid)

    def _collect_contracts(self) -> None:
        """Move the deployments whose receipts are on chain to the contracts to call."""
        for cid in list(self._deploys):
            try:
                deployed = self._ok_receipt(cid, EVM_DEPLOY)
                if deployed is None:
                    continue
                actor_id = decode_eam_create_return(deployed.return_data).actor_id
            except (StepFailed, MalformedInput) as error:
                logger.warning("deployment abandoned: %s", error)
            else:
                self._contracts.append(Address.new_id(actor_id))
            self._deploys.remove(cid)

    async def _call(self) -> None:
        caller = self._pair[self._calls % 2]
        contract = self._contracts[(self._calls // 2) % len(self._contracts)]
        self._calls += 1
        await self._submit(
            caller,
            EVM_INCREMENT,
            invoke_evm_contract(
                sender=caller.address,
                nonce=self._next_nonce(caller),
                contract=contract,
                calldata=evm_contract.increment_calldata(),
            ),
        )

    # -- transfers ----------------------------------------------------------------------------

    async def _transfer(self) -> None:
        senders = self.secp if self._transfers % 2 == 0 else self.bls
        sender = senders[(self._transfers // 2) % len(senders)]
        recipient = self.accounts[(self.accounts.index(sender) + 1) % len(self.accounts)]
        self._transfers += 1
        message = transfer(
            sender=sender.address,
            nonce=self._next_nonce(sender),
            to=recipient.address,
            value=TRANSFER_VALUE,
        )
        await self._submit(sender, TRANSFER_KINDS[sender.key.kind], message)

    # -- results ------------------------------------------------------------------------------

    def settle(self) -> bool:
        """Record the receipts that are on chain now; True when every message has one."""
        self.receipts.update()
        for cid, kind in self._sent.items():
            if cid in self._settled:
                continue
            receipt = self.receipts.get(cid)
            if receipt is None:
                continue
            self._settled.add(cid)
            if receipt.exit_code == ExitCode.OK:
                self.summary.succeeded[kind] += 1
            else:
                self.summary.failed[kind] += 1
                logger.warning("%s %s exited %s", kind, cid, receipt.exit_code)
        return len(self._settled) == len(self._sent)


def loader_settings(devnet: Devnet, peer: str) -> NodeSettings:
    return load_settings(
        None,
        env={},
        overrides={
            "network": "devnet",
            "data_dir": str(devnet.root / LOADGEN_DIR),
            "genesis": str(devnet.genesis_path),
            "devnet.block_delay_secs": devnet.block_delay_secs,
            "bootstrap": (peer,),
        },
    )


async def run_load(devnet: Devnet, peer: str, plan: LoadPlan) -> LoadSummary:
    """Follow the devnet from ``peer``, submit ``plan.count`` messages at ``plan.rate`` per
    second, then wait up to :data:`INCLUSION_WAIT_EPOCHS` epochs for their receipts."""
    summary = LoadSummary()
    settings = loader_settings(devnet, peer)
    async with FilecoinNode(settings, progress=ProgressLine()) as node:
        syncer = node.syncer
        if syncer is None:
            raise LoadError("the load generator's node has no syncer")
        with trio.move_on_after(SYNC_TIMEOUT_SECONDS) as waiting:
            while syncer.state != "following" or not node.pubsub.topic_peers(node.messages_topic):
                await trio.sleep(0.2)
        if waiting.cancelled_caught:
            raise LoadError(f"not synced with {peer} after {SYNC_TIMEOUT_SECONDS:.0f} s")
        logger.info(
            "following %s at epoch %d; submitting %d messages", peer, node.head().height, plan.count
        )
        generator = LoadGenerator(node, devnet.accounts, summary)
        for _ in range(plan.count):
            await generator.step()
            await trio.sleep(1.0 / plan.rate)
        with trio.move_on_after(INCLUSION_WAIT_EPOCHS * devnet.block_delay_secs):
            while not generator.settle():
                await trio.sleep(devnet.block_delay_secs / 2)
    return summary
