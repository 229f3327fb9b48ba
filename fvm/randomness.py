"""Drawing actor-visible randomness from the node's raw per-epoch randomness.

The kernel hashes the domain separation tag (big-endian i64), the 32-byte base randomness, the
epoch (big-endian i64) and the caller's entropy with blake2b-256: ref-fvm
``fvm/src/kernel/default.rs`` ``draw_randomness`` (v3.8+), which matches Lotus's
``DrawRandomness`` given the digest the externs return.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Final

RANDOMNESS_LENGTH: Final = 32


class DomainSeparationTag(IntEnum):
    """The personalization values the builtin actors pass (builtin-actors
    ``runtime/src/runtime/randomness.rs``)."""

    TICKET_PRODUCTION = 1
    ELECTION_PROOF_PRODUCTION = 2
    WINNING_POST_CHALLENGE_SEED = 3
    WINDOWED_POST_CHALLENGE_SEED = 4
    SEAL_RANDOMNESS = 5
    INTERACTIVE_SEAL_CHALLENGE_SEED = 6
    WINDOWED_POST_DEADLINE_ASSIGNMENT = 7
    MARKET_DEAL_CRON_SEED = 8
    POST_CHAIN_COMMIT = 9
    EVM_PREV_RANDAO = 10


def draw_randomness(base: bytes, personalization: int, epoch: int, entropy: bytes) -> bytes:
    """blake2b-256(pers ‖ base ‖ epoch ‖ entropy), integers as big-endian i64."""
    if len(base) != RANDOMNESS_LENGTH:
        raise ValueError(f"base randomness must be {RANDOMNESS_LENGTH} bytes, got {len(base)}")
    h = hashlib.blake2b(digest_size=32)
    h.update(personalization.to_bytes(8, "big", signed=True))
    h.update(base)
    h.update(epoch.to_bytes(8, "big", signed=True))
    h.update(entropy)
    return h.digest()
