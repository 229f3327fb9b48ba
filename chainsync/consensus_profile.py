"""Consensus rules that differ between networks: who may make a block, and chain weight.

:func:`~chainsync.block_validation.validate_block` checks what every Filecoin-style chain
shares (header fields, signatures, messages) and asks a :class:`ConsensusProfile` for the rest:
the leader checks of a block and the weight of a tipset. Two profiles:

* :class:`FilecoinConsensus` — Lotus's expected consensus (``chain/consensus/filcns``:
  ``ValidateBlock``'s ``tktsCheck``, ``winnerCheck`` and ``wproofCheck``; ``weight.go``). The
  ticket and the election proof are VRF outputs, i.e. BLS signatures by the miner's worker key
  over randomness drawn from the latest beacon entry (Lotus ``DrawRandomnessFromBase``; ticket:
  tag 1 at height - 1 over the CBOR miner address and, after the Smoke upgrade, the parent
  tipset's smallest ticket; election: tag 2 at the block's height over the CBOR miner address),
  and both are verified here. The winning PoSt is a SNARK this node cannot verify: it goes to
  the :class:`WinningPoStVerifier` the profile is built with. Not checked here, unlike Lotus:
  that the win count follows from the miner's share of power (``ComputeWinCount``), that the
  miner is eligible (minimum power) and not slashed, and the drand beacon entries themselves.
* :class:`DevnetConsensus` — the devnet's rules, defined by this project: one known miner
  makes every block, there is no election (the block must claim exactly one win; its election
  VRF is not checked), its ticket is made and checked exactly as Filecoin's, and the weight is
  :func:`~chainsync.weight.devnet_weight` (no storage power needed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from chainsync.block_validation import BlockValidationError, Reason
from chainsync.chain_types import BeaconEntry, BlockHeader, TipSet
from chainsync.weight import devnet_weight, filecoin_weight, total_quality_adj_power
from fvm.address import Address
from fvm.crypto.hashes import blake2b_256
from fvm.crypto.signature_verify import verify_signature
from fvm.randomness import DomainSeparationTag, draw_randomness
from fvm.signature import Signature
from store import dag_cbor
from store.blockstore import Blockstore

# Lotus buildconstants: the ticket is drawn one epoch back; mainnet's Smoke upgrade epoch,
# after which the parent's smallest ticket enters the ticket's entropy.
TICKET_RANDOMNESS_LOOKBACK: Final = 1
MAINNET_SMOKE_HEIGHT: Final = 51000
MAINNET_BLOCK_DELAY_SECS: Final = 30


class WinningPoStVerifier(Protocol):
    """Checks a block's winning proof of spacetime (Lotus ``VerifyWinningPoStProof``)."""

    def verify_winning_post(
        self, header: BlockHeader, prev_beacon: BeaconEntry, worker: Address
    ) -> bool: ...


class ConsensusProfile(Protocol):
    """The network-specific half of block validation."""

    @property
    def name(self) -> str: ...

    @property
    def block_delay_secs(self) -> int: ...

    def weight(self, store: Blockstore, tipset: TipSet) -> int:
        """The weight of ``tipset`` (what its children's ``ParentWeight`` must be)."""
        ...

    def check_leader(
        self, header: BlockHeader, parent: TipSet, worker: Address, prev_beacon: BeaconEntry
    ) -> None:
        """Raise :class:`BlockValidationError` unless ``header``'s miner was entitled to make
        it: ticket, election proof, winning PoSt. ``worker`` is the miner's worker key
        address, ``prev_beacon`` the latest beacon entry before this block."""
        ...


def _miner_entropy(miner: Address) -> bytes:
    return dag_cbor.encode(miner.to_bytes())


def _beacon_for(header: BlockHeader, prev_beacon: BeaconEntry) -> BeaconEntry:
    return header.beacon_entries[-1] if header.beacon_entries else prev_beacon


def ticket_vrf_input(
    miner: Address,
    height: int,
    beacon: BeaconEntry,
    parent_min_ticket: bytes | None,
) -> bytes:
    """What the ticket's VRF signs: randomness (ticket tag, ``height - 1``) from ``beacon``
    over the CBOR miner address followed by the parent's smallest ticket (None before Smoke)."""
    entropy = _miner_entropy(miner) + (parent_min_ticket or b"")
    return draw_randomness(
        blake2b_256(beacon.data),
        DomainSeparationTag.TICKET_PRODUCTION,
        height - TICKET_RANDOMNESS_LOOKBACK,
        entropy,
    )


def election_vrf_input(miner: Address, height: int, beacon: BeaconEntry) -> bytes:
    """What the election proof's VRF signs: randomness (election tag, ``height``) from
    ``beacon`` over the CBOR miner address."""
    return draw_randomness(
        blake2b_256(beacon.data),
        DomainSeparationTag.ELECTION_PROOF_PRODUCTION,
        height,
        _miner_entropy(miner),
    )


def verify_vrf(worker: Address, vrf_input: bytes, proof: bytes) -> bool:
    """Lotus ``VerifyVRF``: the proof is ``worker``'s BLS signature of the input."""
    return verify_signature(Signature.new_bls(proof), worker, vrf_input)


def _check_ticket(
    header: BlockHeader,
    parent: TipSet,
    worker: Address,
    prev_beacon: BeaconEntry,
    smoke_height: int,
) -> None:
    if header.ticket is None:
        raise BlockValidationError(Reason.MISSING_FIELD, "block cannot have nil ticket")
    parent_ticket = parent.min_ticket_block.ticket
    parent_min_ticket = (
        parent_ticket.vrf_proof if header.height > smoke_height and parent_ticket else None
    )
    vrf_input = ticket_vrf_input(
        header.miner, header.height, _beacon_for(header, prev_beacon), parent_min_ticket
    )
    if not verify_vrf(worker, vrf_input, header.ticket.vrf_proof):
        raise BlockValidationError(
            Reason.TICKET, "validating block tickets failed: vrf was invalid"
        )


class FilecoinConsensus:
    """Lotus's expected consensus, less the checks named in the module docstring.

    ``actors_version_at(height)`` gives the actors version whose power state schema applies to
    a tipset at that height's parent state.
    """

    def __init__(
        self,
        winning_post_verifier: WinningPoStVerifier,
        actors_version_at: Callable[[int], int],
        *,
        block_delay_secs: int = MAINNET_BLOCK_DELAY_SECS,
        smoke_height: int = MAINNET_SMOKE_HEIGHT,
    ) -> None:
        self._verifier = winning_post_verifier
        self._actors_version_at = actors_version_at
        self._block_delay_secs = block_delay_secs
        self._smoke_height = smoke_height

    @property
    def name(self) -> str:
        return "filecoin"

    @property
    def block_delay_secs(self) -> int:
        return self._block_delay_secs

    def weight(self, store: Blockstore, tipset: TipSet) -> int:
        power = total_quality_adj_power(
            store, tipset.parent_state, self._actors_version_at(tipset.height)
        )
        wins = []
        for header in tipset.blocks:
            if header.election_proof is None:
                raise BlockValidationError(
                    Reason.MISSING_FIELD, f"block {header.cid()} has no election proof"
                )
            wins.append(header.election_proof.win_count)
        return filecoin_weight(tipset.parent_weight, power, wins)

    def check_leader(
        self, header: BlockHeader, parent: TipSet, worker: Address, prev_beacon: BeaconEntry
    ) -> None:
        proof = header.election_proof
        if proof is None:
            raise BlockValidationError(Reason.MISSING_FIELD, "block cannot have nil election proof")
        if proof.win_count < 1:
            raise BlockValidationError(Reason.NOT_WINNING, "block is not claiming to be a winner")
        beacon = _beacon_for(header, prev_beacon)
        if not verify_vrf(
            worker, election_vrf_input(header.miner, header.height, beacon), proof.vrf_proof
        ):
            raise BlockValidationError(
                Reason.ELECTION_PROOF, "validating block election proof failed: vrf was invalid"
            )
        _check_ticket(header, parent, worker, prev_beacon, self._smoke_height)
        if not self._verifier.verify_winning_post(header, prev_beacon, worker):
            raise BlockValidationError(Reason.WINNING_POST, "invalid election post")


class DevnetConsensus:
    """The devnet: every block is ``miner``'s, wins once, and carries a Filecoin ticket."""

    def __init__(self, miner: Address, *, block_delay_secs: int) -> None:
        self._miner = miner
        self._block_delay_secs = block_delay_secs

    @property
    def name(self) -> str:
        return "devnet"

    @property
    def block_delay_secs(self) -> int:
        return self._block_delay_secs

    @property
    def miner(self) -> Address:
        return self._miner

    def weight(self, store: Blockstore, tipset: TipSet) -> int:
        return devnet_weight(tipset.parent_weight, len(tipset))

    def check_leader(
        self, header: BlockHeader, parent: TipSet, worker: Address, prev_beacon: BeaconEntry
    ) -> None:
        if header.miner != self._miner:
            raise BlockValidationError(
                Reason.UNKNOWN_MINER, f"{header.miner} is not the devnet miner {self._miner}"
            )
        proof = header.election_proof
        if proof is None:
            raise BlockValidationError(Reason.MISSING_FIELD, "block cannot have nil election proof")
        if proof.win_count != 1:
            raise BlockValidationError(
                Reason.NOT_WINNING, f"devnet blocks win exactly once, not {proof.win_count}"
            )
        _check_ticket(header, parent, worker, prev_beacon, smoke_height=-1)
