"""The devnet's block producer: one block per epoch on the head, by the devnet's only miner.

Follows Lotus's miner (``miner/miner.go``: ``mineOne``, ``computeTicket``;
``chain/gen/gen.go``: ``IsRoundWinner``, ``ComputeVRF``) and block assembly
(``chain/consensus/filcns/mine.go``: ``CreateBlock``; ``chain/consensus/common.go``:
``CreateBlockHeader``), with the devnet's consensus (:class:`~chainsync.consensus_profile.
DevnetConsensus`: no election, so the miner wins every epoch with a win count of 1 and no
winning PoSt):

* the head's execution result gives the new block's parent state root and receipts root, the
  head's weight its parent weight, the base fee computed from the head its parent base fee
  (all through :meth:`~chainsync.tipset_pipeline.TipsetPipeline.parent_context`);
* the beacon entries are the mock beacon's for the epochs since the head
  (:mod:`chainsync.devnet_beacon`); the ticket is the worker key's VRF (a BLS signature) over
  the ticket randomness from the newest entry and the head's smallest ticket, the election
  proof its VRF over the election randomness;
* messages come from the pool (selection at the new block's parent base fee); BLS-signed ones
  go in unsigned, their signatures aggregated into ``BLSAggregate`` (the identity signature
  when there are none, as Lotus's ``AggregateSignatures``);
* the header is signed by the worker key and the block goes through
  :meth:`~chainsync.tipset_pipeline.TipsetPipeline.accept` like any block from the network;
  then its messages leave the pool.

An epoch above ``head + 1`` leaves null rounds. The timestamp is ``genesis + epoch * block
delay``. Publishing the block is the node layer's business.
"""

from __future__ import annotations

from collections.abc import Callable

from chainsync.chain_types import BlockHeader, ElectionProof, FullBlock, Ticket
from chainsync.consensus_profile import election_vrf_input, ticket_vrf_input
from chainsync.messages_root import compute_msg_meta
from chainsync.tipset_pipeline import TipsetPipeline
from fvm.address import Address
from fvm.crypto import bls
from fvm.message import Message, SignedMessage
from fvm.signature import Signature, SignatureType
from fvm.state_tree import StateTree
from node.devnet.keys import Key, KeyType
from node.message_pool import MessagePool, SenderState
from store.blockstore import MemoryBlockstore
from store.errors import FvmNodeError

DEVNET_WIN_COUNT = 1


class ProducerError(FvmNodeError):
    """The producer cannot make a block (epoch not above the head, wrong worker key)."""


class DevnetProducer:
    """Makes the devnet miner's blocks on the pipeline's head."""

    def __init__(
        self,
        pipeline: TipsetPipeline,
        message_pool: MessagePool,
        miner: Address,
        worker: Key,
    ) -> None:
        if worker.kind is not KeyType.BLS:
            raise ProducerError("the worker key must be a BLS key (tickets are BLS VRF proofs)")
        self.pipeline = pipeline
        self.message_pool = message_pool
        self.miner = miner
        self.worker = worker

    def block_timestamp(self, epoch: int) -> int:
        """``genesis timestamp + epoch * block delay``."""
        execution = self.pipeline.execution
        return execution.genesis_timestamp + epoch * execution.block_delay_seconds

    def next_epoch(self) -> int:
        return self.pipeline.head().height + 1

    def produce(self, epoch: int | None = None) -> FullBlock:
        """Make, accept and return the block at ``epoch`` (default: the head's height + 1).

        Call it once the epoch's time has come: the pipeline refuses blocks from the future.
        Raises :class:`ProducerError`, or whatever the pipeline raises for the block.
        """
        head = self.pipeline.head()
        height = head.height + 1 if epoch is None else epoch
        if height <= head.height:
            raise ProducerError(f"epoch {height} is not above the head's height {head.height}")
        context = self.pipeline.parent_context(head)
        network_version = self.pipeline.preset.network_version_at(height)
        entries = self.pipeline.beacon.entries_for_block(
            network_version, height, head.height, context.prev_beacon
        )
        beacon = entries[-1] if entries else context.prev_beacon
        parent_ticket = head.min_ticket_block.ticket
        ticket_input = ticket_vrf_input(
            self.miner, height, beacon, None if parent_ticket is None else parent_ticket.vrf_proof
        )
        election_input = election_vrf_input(self.miner, height, beacon)

        selected = self.message_pool.select_messages(context.base_fee)
        bls_signed = [s for s in selected if s.signature.sig_type is SignatureType.BLS]
        secp_signed = [s for s in selected if s.signature.sig_type is not SignatureType.BLS]
        bls_messages = tuple(signed.message for signed in bls_signed)
        aggregate = bls.aggregate([signed.signature.data for signed in bls_signed])
        messages_root = compute_msg_meta(
            MemoryBlockstore(),
            [message.cid() for message in bls_messages],
            [signed.cid() for signed in secp_signed],
        )
        header = BlockHeader(
            miner=self.miner,
            ticket=Ticket(self.worker.sign(ticket_input).data),
            election_proof=ElectionProof(DEVNET_WIN_COUNT, self.worker.sign(election_input).data),
            beacon_entries=entries,
            win_post_proof=(),
            parents=head.cids,
            parent_weight=context.weight,
            height=height,
            parent_state_root=context.state_root,
            parent_message_receipts=context.receipts_root,
            messages=messages_root,
            bls_aggregate=Signature.new_bls(aggregate),
            timestamp=self.block_timestamp(height),
            block_sig=None,
            fork_signaling=0,
            parent_base_fee=context.base_fee,
        )
        block = FullBlock(self.worker.sign_block(header), bls_messages, tuple(secp_signed))
        self.pipeline.accept([[block]])
        included: list[SignedMessage | Message] = [*bls_signed, *secp_signed]
        self.message_pool.remove_included(included)
        return block


def head_state_view(pipeline: TipsetPipeline) -> Callable[[Address], SenderState | None]:
    """A message pool state view: the sender's nonce and balance after executing the head."""

    def view(address: Address) -> SenderState | None:
        state_root = pipeline.execute_head().state_root
        actor = StateTree(pipeline.chain_store.blockstore, state_root).get_actor(address)
        return None if actor is None else SenderState(actor.sequence, actor.balance)

    return view
