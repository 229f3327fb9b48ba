"""Externs: what the FVM asks of the node embedding it (ref-fvm ``fvm/src/externs``).

The shape is ref-fvm v3.8+'s: the node answers raw per-epoch randomness (the blake2b digest of
the ticket's VRF proof, or of the beacon entry's data) and the kernel mixes in the domain
separation tag and entropy itself (:mod:`fvm.randomness`). The mainnet conformance vectors record
exactly these per-epoch answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from store.cid import CID


class ExternsError(Exception):
    """The node could not answer (missing tipset, epoch out of range); the kernel maps it to
    an IllegalArgument syscall error."""


@dataclass(frozen=True, slots=True)
class ConsensusFault:
    """A proven consensus fault (ref-fvm ``shared/src/consensus``): who, when, what kind."""

    target: int  # the offending miner's actor ID
    epoch: int
    fault_type: int  # 1 double-fork mining, 2 parent grinding, 3 time-offset mining


class Externs(Protocol):
    """The node's side of the boundary."""

    def get_chain_randomness(self, epoch: int) -> bytes:
        """32 bytes of raw ticket randomness at ``epoch`` (lookback rules applied by the node)."""

    def get_beacon_randomness(self, epoch: int) -> bytes:
        """32 bytes of raw beacon randomness at ``epoch``."""

    def get_tipset_cid(self, epoch: int) -> CID:
        """The CID of the tipset at ``epoch`` on the chain being executed."""

    def verify_consensus_fault(
        self, header1: bytes, header2: bytes, extra: bytes
    ) -> tuple[ConsensusFault | None, int]:
        """The fault the two (or three) block headers prove, if any, and the gas the check cost."""
