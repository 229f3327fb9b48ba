"""Bookkeeping of Filecoin peers: their hello heads, request latency, a misbehaviour score, bans.

Request ordering follows lotus ``chain/exchange/peer_tracker.go``: each peer's expected cost is its
moving-average time per requested tipset plus its failure rate times the global average, and a peer
with no history is priced at 0.9 of the global average, so new peers get tried early.  The moving
averages use Lotus's weights (1/10 per peer, 1/25 global).

Lotus leaves bad data to gossipsub scoring and to dropping the connection; a node that syncs over
chain exchange also needs to stop asking a peer that serves garbage.  So each peer carries a score
that starts at zero and drops by a fixed penalty per named offence; at or below the ban threshold
the peer is banned for a while, left out of :meth:`PeerManager.best_peers`, and ``on_ban`` is
called so the node can disconnect it.  Counters are plain attributes for the metrics layer.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from libp2p.peer.id import ID as PeerID

from node.cbor_rpc import (
    ExchangeTimeout,
    OversizedMessage,
    PeerExchangeError,
    StreamFailure,
    TruncatedMessage,
)
from store.errors import MalformedInput

NEW_PEER_COST_FACTOR = 0.9
PEER_AVERAGE_INVERSE_ALPHA = 10
GLOBAL_AVERAGE_INVERSE_ALPHA = 25
DEFAULT_BAN_THRESHOLD = -100.0
DEFAULT_BAN_SECONDS = 3600.0
SUCCESS_REWARD = 1.0
MAX_SCORE = 100.0


class PenaltyReason(enum.Enum):
    MALFORMED_CBOR = "malformed_cbor"
    BAD_SIGNATURE = "bad_signature"
    WRONG_STATE_ROOT = "wrong_state_root"
    OVERSIZED_RESPONSE = "oversized_response"
    TIMEOUT = "timeout"
    STREAM_FAILURE = "stream_failure"


PENALTY_POINTS: dict[PenaltyReason, float] = {
    PenaltyReason.MALFORMED_CBOR: 50.0,
    PenaltyReason.BAD_SIGNATURE: 100.0,
    PenaltyReason.WRONG_STATE_ROOT: 100.0,
    PenaltyReason.OVERSIZED_RESPONSE: 50.0,
    PenaltyReason.TIMEOUT: 10.0,
    PenaltyReason.STREAM_FAILURE: 5.0,
}


# Chain data that is invalid by consensus rules is bad faith, not bad luck: no record of good
# answers softens it, so these penalties start from a score no higher than zero.
SEVERE_REASONS: frozenset[PenaltyReason] = frozenset(
    {PenaltyReason.BAD_SIGNATURE, PenaltyReason.WRONG_STATE_ROOT}
)


def reason_for_error(error: PeerExchangeError | MalformedInput) -> PenaltyReason:
    """The penalty a failed exchange earns; any other malformed data counts as malformed CBOR."""
    if isinstance(error, OversizedMessage):
        return PenaltyReason.OVERSIZED_RESPONSE
    if isinstance(error, ExchangeTimeout):
        return PenaltyReason.TIMEOUT
    if isinstance(error, StreamFailure | TruncatedMessage):
        return PenaltyReason.STREAM_FAILURE
    return PenaltyReason.MALFORMED_CBOR


@dataclass
class PeerRecord:
    peer_id: PeerID
    connected: bool = True
    head_height: int | None = None
    head_weight: int | None = None
    latency_seconds: float | None = None
    score: float = 0.0
    successes: int = 0
    failures: int = 0
    average_seconds_per_item: float = 0.0
    banned_until: float | None = None


class PeerManager:
    def __init__(
        self,
        *,
        ban_threshold: float = DEFAULT_BAN_THRESHOLD,
        ban_seconds: float = DEFAULT_BAN_SECONDS,
        on_ban: Callable[[PeerID], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ban_threshold = ban_threshold
        self.ban_seconds = ban_seconds
        self._on_ban = on_ban
        self._clock = clock
        self._peers: dict[PeerID, PeerRecord] = {}
        self.global_average_seconds = 0.0
        self.penalties: Counter[PenaltyReason] = Counter()
        self.bans_total = 0

    def _record(self, peer_id: PeerID) -> PeerRecord:
        record = self._peers.get(peer_id)
        if record is None:
            record = self._peers[peer_id] = PeerRecord(peer_id)
        return record

    def peer(self, peer_id: PeerID) -> PeerRecord | None:
        return self._peers.get(peer_id)

    def add_peer(self, peer_id: PeerID) -> None:
        self._record(peer_id).connected = True

    def mark_disconnected(self, peer_id: PeerID) -> None:
        """Keeps the record (and any ban) but stops offering the peer for requests."""
        record = self._peers.get(peer_id)
        if record is not None:
            record.connected = False

    def record_hello(self, peer_id: PeerID, head_height: int, head_weight: int) -> None:
        record = self._record(peer_id)
        record.connected = True
        record.head_height = head_height
        record.head_weight = head_weight

    def record_latency(self, peer_id: PeerID, seconds: float) -> None:
        self._record(peer_id).latency_seconds = seconds

    def record_success(self, peer_id: PeerID, seconds: float, items_requested: int = 1) -> None:
        """A good chain exchange answer: updates the cost averages and earns back a point."""
        record = self._record(peer_id)
        record.successes += 1
        record.score = min(MAX_SCORE, record.score + SUCCESS_REWARD)
        self._log_time(record, seconds / max(items_requested, 1))
        if self.global_average_seconds == 0.0:
            self.global_average_seconds = seconds
        else:
            delta = seconds - self.global_average_seconds
            self.global_average_seconds += delta / GLOBAL_AVERAGE_INVERSE_ALPHA

    def record_failure(
        self, peer_id: PeerID, seconds: float, reason: PenaltyReason, items_requested: int = 1
    ) -> bool:
        """A failed request: counts against the peer's cost and penalises it; True if now banned."""
        record = self._record(peer_id)
        record.failures += 1
        self._log_time(record, seconds / max(items_requested, 1))
        return self.penalize(peer_id, reason)

    @staticmethod
    def _log_time(record: PeerRecord, seconds_per_item: float) -> None:
        if record.average_seconds_per_item == 0.0:
            record.average_seconds_per_item = seconds_per_item
        else:
            delta = seconds_per_item - record.average_seconds_per_item
            record.average_seconds_per_item += delta / PEER_AVERAGE_INVERSE_ALPHA

    def penalize(self, peer_id: PeerID, reason: PenaltyReason) -> bool:
        """Lowers the peer's score; bans it (and calls ``on_ban``) at the threshold.

        Returns True when this penalty caused a ban.
        """
        record = self._record(peer_id)
        already_banned = self.is_banned(peer_id)
        if reason in SEVERE_REASONS:
            record.score = min(record.score, 0.0)
        record.score -= PENALTY_POINTS[reason]
        self.penalties[reason] += 1
        if already_banned or record.score > self.ban_threshold:
            return False
        record.banned_until = self._clock() + self.ban_seconds
        self.bans_total += 1
        if self._on_ban is not None:
            self._on_ban(peer_id)
        return True

    def is_banned(self, peer_id: PeerID) -> bool:
        record = self._peers.get(peer_id)
        if record is None or record.banned_until is None:
            return False
        if self._clock() < record.banned_until:
            return True
        record.banned_until = None
        record.score = self.ban_threshold / 2
        return False

    def expected_cost(self, record: PeerRecord) -> float:
        attempts = record.successes + record.failures
        if attempts == 0:
            return self.global_average_seconds * NEW_PEER_COST_FACTOR
        failure_rate = record.failures / attempts
        return record.average_seconds_per_item + failure_rate * self.global_average_seconds

    def best_peers(self, min_height: int | None = None) -> list[PeerID]:
        """Connected, unbanned peers, cheapest first; ties go to the heavier announced head.

        With ``min_height``, only peers whose hello head is at least that high are offered.
        """
        candidates = [
            record
            for record in self._peers.values()
            if record.connected
            and not self.is_banned(record.peer_id)
            and (min_height is None or (record.head_height or 0) >= min_height)
        ]
        candidates.sort(
            key=lambda record: (
                self.expected_cost(record),
                -(record.head_weight or 0),
                record.peer_id.to_bytes(),
            )
        )
        return [record.peer_id for record in candidates]

    @property
    def known_peers(self) -> int:
        return len(self._peers)

    @property
    def connected_peers(self) -> int:
        return sum(1 for record in self._peers.values() if record.connected)

    @property
    def banned_peers(self) -> int:
        return sum(1 for peer_id in self._peers if self.is_banned(peer_id))
