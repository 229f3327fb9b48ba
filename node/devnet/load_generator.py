"""``fvm-node devnet load``: keep a devnet busy with signed messages of every kind it supports.

The generator is itself a devnet node (:class:`~node.filecoin_node.FilecoinNode`, data in
``<devnet>/loadgen``) that follows the chain from the given peer, so it knows each account's
nonce and reads the receipts of what it sent, and it submits over gossipsub on
``/fil/msgs/<network>`` exactly as any node would. The mix, cycling at ``rate`` messages per
second until ``count`` are submitted:

* value transfers from the secp256k1 and the BLS accounts, in turn, to the next account;
* a 2-of-2 multisig created through the init actor by the first secp256k1 account with the
  first BLS account as second signer; once its creation receipt is on chain, a transfer out of
  it proposed by the creator, and once that receipt is on chain, approved by the other signer
  (with the proposal hash :func:`~node.devnet.load_messages.proposal_hash` computes);
* the counter contract (:mod:`node.devnet.evm_contract`) deployed through the EAM by the first
  BLS account, then ``increment()`` called on it.

Nonces: each account's next nonce is read once from the followed head (its parent state, plus
the account's messages in the head itself) and counted up locally from there.

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
from dataclasses import dataclass, field, replace
from typing import Final

import trio

from chainsync.chain_store import ChainStore
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
# How many tipsets back receipts are looked for.
RECEIPT_SEARCH_DEPTH: Final = 200
# Epochs to wait at the end for the submitted messages to be included.
INCLUSION_WAIT_EPOCHS: Final = 10
GAS_LIMITS: Final[dict[str, int]] = {
    "transfer": 5_000_000,
    "multisig_create": 100_000_000,
    "multisig_propose": 50_000_000,
    "multisig_approve": 50_000_000,
    "evm_deploy": 200_000_000,
    "evm_increment": 50_000_000,
}
TRANSFER_VALUE: Final = FILECOIN_PRECISION // 1000
MULTISIG_FUNDING: Final = FILECOIN_PRECISION
MULTISIG_PAYOUT: Final = FILECOIN_PRECISION // 10


class LoadError(FvmNodeError):
    """The generator cannot run (no peer synced, no secp256k1 or BLS account)."""


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
                f"  {kind:17} submitted {self.submitted[kind]:4}  ok {self.succeeded[kind]:4}  "
                f"failed {self.failed[kind]:4}  refused {self.refused[kind]:4}"
            )
        return "\n".join(lines)


def find_receipt(store: ChainStore, head_height: int, cid: CID) -> Receipt | None:
    """The receipt of the message ``cid`` if a tipset on the chain includes it and that tipset
    has been executed (its child accepted): the position of the message among the tipset's
    distinct messages, BLS before secp256k1 within each block, as Lotus applies them."""
    head = store.heaviest()
    if head is None:
        return None
    tipset = head
    for _ in range(min(RECEIPT_SEARCH_DEPTH, head_height + 1)):
        order: list[CID] = []
        for header in tipset.blocks:
            bls, secpk = store.get_block_messages(header)
            for message_cid in [m.cid() for m in bls] + [s.cid() for s in secpk]:
                if message_cid not in order:
                    order.append(message_cid)
        if cid in order:
            result = store.index.execution_result(tipset.key.to_bytes())
            if result is None:
                return None
            return load_receipts(store.blockstore, result.receipts_root)[order.index(cid)]
        if tipset.height == 0:
            return None
        tipset = store.get_tipset(tipset.parents)
    return None


class LoadGenerator:
    """Builds, signs and submits the mix over one following node."""

    def __init__(self, node: FilecoinNode, devnet: Devnet, summary: LoadSummary) -> None:
        self.node = node
        self.devnet = devnet
        self.summary = summary
        secp = [a for a in devnet.accounts if a.key.kind is KeyType.SECP256K1]
        bls = [a for a in devnet.accounts if a.key.kind is KeyType.BLS]
        if not secp or not bls:
            raise LoadError(
                "the load needs a secp256k1 and a BLS account (devnet init --accounts 2)"
            )
        self.secp = secp[0]
        self.bls = bls[0]
        self._nonces: dict[Address, int] = {}
        self._sent: dict[CID, str] = {}
        self._settled: set[CID] = set()
        self._multisig_create: CID | None = None
        self._multisig: Address | None = None
        self._proposal: CID | None = None
        self._proposal_done = False
        self._deploy: CID | None = None
        self._contract: Address | None = None
        # Transfers made so far (whose turn it is to send one), and mix slots filled after the
        # setup (every other one an EVM call once the contract exists).
        self._transfers = 0
        self._slots = 0

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
        signed: SignedMessage = account.key.sign_message(self._priced(message, kind))
        try:
            await self.node.pubsub.publish(self.node.messages_topic, signed.encode())
        except PublishRejected as error:
            self.summary.refused[kind] += 1
            self._nonces.pop(account.address, None)
            logger.warning("%s from %s refused: %s", kind, account.address, error)
            return None
        self.summary.submitted[kind] += 1
        self._sent[signed.cid()] = kind
        return signed.cid()

    def _receipt(self, cid: CID | None) -> Receipt | None:
        if cid is None:
            return None
        return find_receipt(self.node.chain_store, self.node.head().height, cid)

    def _next_message(self) -> tuple[DevnetAccount, str, Message] | None:
        """The next message of the mix, or None for a transfer slot."""
        if self._multisig_create is None:
            nonce = self._next_nonce(self.secp)
            message = create_multisig(
                sender=self.secp.address,
                nonce=nonce,
                multisig_code=self._multisig_code(),
                signers=[self.secp.address, self.bls.address],
                threshold=2,
                value=MULTISIG_FUNDING,
            )
            return self.secp, "multisig_create", message
        if self._deploy is None:
            nonce = self._next_nonce(self.bls)
            message = create_evm_contract(
                sender=self.bls.address, nonce=nonce, initcode=evm_contract.INIT_CODE
            )
            return self.bls, "evm_deploy", message
        return None

    def _multisig_code(self) -> CID:
        return self.node.bundle.manifest.code_of("multisig")

    async def step(self) -> None:
        """Submit one message: setup steps when due, else a follow-up or a transfer."""
        planned = self._next_message()
        if planned is not None:
            account, kind, message = planned
            cid = await self._submit(account, kind, message)
            if kind == "multisig_create":
                self._multisig_create = cid
            else:
                self._deploy = cid
            return
        if self._multisig is None:
            self._multisig = self._created_multisig()
        elif self._proposal is None:
            self._proposal = await self._submit(
                self.secp,
                "multisig_propose",
                propose(
                    sender=self.secp.address,
                    nonce=self._next_nonce(self.secp),
                    multisig=self._multisig,
                    to=self.secp.address,
                    value=MULTISIG_PAYOUT,
                ),
            )
            return
        elif not self._proposal_done and await self._approve_if_proposed():
            return
        if self._contract is None:
            self._contract = self._deployed_contract()
        slot = self._slots
        self._slots += 1
        if self._contract is not None and slot % 2 == 1:
            await self._submit(
                self.secp,
                "evm_increment",
                invoke_evm_contract(
                    sender=self.secp.address,
                    nonce=self._next_nonce(self.secp),
                    contract=self._contract,
                    calldata=evm_contract.increment_calldata(),
                ),
            )
            return
        await self._transfer()

    async def _transfer(self) -> None:
        accounts = self.devnet.accounts
        sender = accounts[self._transfers % len(accounts)]
        recipient = accounts[(self._transfers + 1) % len(accounts)]
        self._transfers += 1
        kind = "transfer"
        message = transfer(
            sender=sender.address,
            nonce=self._next_nonce(sender),
            to=recipient.address,
            value=TRANSFER_VALUE,
        )
        await self._submit(sender, kind, message)

    def _created_multisig(self) -> Address | None:
        receipt = self._receipt(self._multisig_create)
        if receipt is None or receipt.exit_code != ExitCode.OK:
            return None
        return decode_exec_return(receipt.return_data).robust_address

    def _deployed_contract(self) -> Address | None:
        receipt = self._receipt(self._deploy)
        if receipt is None or receipt.exit_code != ExitCode.OK:
            return None
        return Address.new_id(decode_eam_create_return(receipt.return_data).actor_id)

    async def _approve_if_proposed(self) -> bool:
        receipt = self._receipt(self._proposal)
        if receipt is None or receipt.exit_code != ExitCode.OK or self._multisig is None:
            return False
        proposed = decode_propose_return(receipt.return_data)
        self._proposal_done = True
        await self._submit(
            self.bls,
            "multisig_approve",
            approve(
                sender=self.bls.address,
                nonce=self._next_nonce(self.bls),
                multisig=self._multisig,
                txn_id=proposed.txn_id,
                proposal_hash=proposal_hash(
                    proposer=Address.new_id(self.secp.actor_id),
                    to=self.secp.address,
                    value=MULTISIG_PAYOUT,
                ),
            ),
        )
        return True

    # -- results ------------------------------------------------------------------------------

    def settle(self) -> bool:
        """Record the receipts that are on chain now; True when every message has one."""
        for cid, kind in self._sent.items():
            if cid in self._settled:
                continue
            try:
                receipt = self._receipt(cid)
            except MalformedInput as error:
                logger.warning("receipt of %s unreadable: %s", cid, error)
                continue
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
        generator = LoadGenerator(node, devnet, summary)
        for _ in range(plan.count):
            await generator.step()
            await trio.sleep(1.0 / plan.rate)
        with trio.move_on_after(INCLUSION_WAIT_EPOCHS * devnet.block_delay_secs):
            while not generator.settle():
                await trio.sleep(devnet.block_delay_secs / 2)
    return summary
