"""Externs for conformance vectors: replay the randomness the vector recorded.

As ref-fvm's runner (``testing/conformance/src/rand.rs``), a request with no recorded answer
gets a fixed fallback. Consensus faults are answered "no fault, no extra gas", exactly what
ref-fvm's conformance kernel answers (``testing/conformance/src/vm.rs``: it charges the price
list's fee and reports none). Tipset CIDs are never asked of message vectors; a request for
one is an error, not a made-up answer.
"""

from __future__ import annotations

from fvm.conformance.vector import RandomnessMatch
from fvm.externs import ConsensusFault, ExternsError
from store.cid import CID

FALLBACK_RANDOMNESS = b"i_am_random_____i_am_random_____"


class ReplayingExterns:
    """Answers randomness from a vector's recorded ``[kind, epoch] -> bytes`` matches."""

    def __init__(self, recorded: list[RandomnessMatch]) -> None:
        self._answers: dict[tuple[str, int], bytes] = {}
        for match in recorded:
            self._answers.setdefault((match.kind, match.epoch), match.ret)

    def get_chain_randomness(self, epoch: int) -> bytes:
        return self._answers.get(("chain", epoch), FALLBACK_RANDOMNESS)

    def get_beacon_randomness(self, epoch: int) -> bytes:
        return self._answers.get(("beacon", epoch), FALLBACK_RANDOMNESS)

    def get_tipset_cid(self, epoch: int) -> CID:
        raise ExternsError(f"a message vector records no tipset CID (asked for epoch {epoch})")

    def verify_consensus_fault(
        self, header1: bytes, header2: bytes, extra: bytes
    ) -> tuple[ConsensusFault | None, int]:
        return None, 0
