"""The chain sync state machine: from peers' announced heads to an executed, followed chain.

Peers tell the node about their heads in two ways: a hello (:meth:`Syncer.on_hello`) when they
connect, and gossiped blocks (:meth:`Syncer.on_block`). Each head heavier than ours is a
candidate target; the heaviest is synced, as Lotus's sync manager does
(``chain/sync_manager.go``: targets ranked by weight) with the steps of ``chain/sync.go``:

* ``collectHeaders``: the target's headers are fetched *backwards* in batches of
  ``batch_length`` until a tipset already in our store is reached (the fork point). A chain that
  reaches a genesis other than ours, contains a block marked bad, or forks more than
  :data:`MAX_FORK_LENGTH` epochs below our head (Lotus ``ForkLengthThreshold``) is refused;
* ``syncMessagesAndCheckState``: the messages of those tipsets are fetched, oldest first, in
  windows of ``batch_length`` (up to ``max_concurrent_requests`` windows in flight), and each
  tipset is handed to the :class:`ChainPipeline` in ascending order. The pipeline validates,
  executes the parent and moves the head by weight; it runs in a worker thread
  (``trio.to_thread.run_sync``) so the event loop keeps serving the network meanwhile. A gossiped
  block whose parent we already have skips the fetching (Lotus ``InformNewBlock``).

Peers are chosen and penalised by :class:`~chainsync.tipset_fetcher.ChainSegmentClient`: a peer
that answers badly is penalised and the request goes to the next one, so one bad peer cannot
stop sync from an honest one. A consensus mismatch (a block whose parent state or receipts
root is not what executing its parent gave) is counted, costs the peers that served or
announced that chain a ``WRONG_STATE_ROOT`` penalty, marks the chain bad and drops the target;
the head never moves onto it. Bad blocks are remembered (Lotus ``BadBlockCache``) so the same
chain is not fetched again.

States (exported to :class:`~metrics.node_metrics.NodeMetrics`): ``idle`` until a peer has said
anything, ``catching_up`` while the best known target is more than :data:`FOLLOW_DISTANCE`
epochs above the head, ``following`` when within that distance (or nothing heavier is known),
``error`` when the last sync attempt failed (no peer could serve it, the chain was refused, or
the pipeline failed), until the next success.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

import trio
from libp2p.peer.id import ID as PeerID

from chainsync.block_validation import BlockValidationError, Reason
from chainsync.chain_exchange import MAX_REQUEST_LENGTH
from chainsync.chain_store import ChainStore
from chainsync.chain_types import FullBlock, TipSet, TipSetKey
from chainsync.hello import HelloMessage
from chainsync.tipset_fetcher import (
    ChainSegmentClient,
    FullTipset,
    NoPeerAnswered,
    TipsetFetcher,
)
from chainsync.tipset_pipeline import ConsensusMismatch, TipsetOutcome
from config.settings import SyncSettings
from metrics.node_metrics import NodeMetrics, SyncState
from node.peer_manager import PeerManager, PenaltyReason, reason_for_error
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

if TYPE_CHECKING:
    # trio's task status type, as the trio stubs the project type-checks against name it.
    from trio_typing import TaskStatus

__all__ = [
    "FOLLOW_DISTANCE",
    "MAX_FORK_LENGTH",
    "ChainPipeline",
    "SyncRefused",
    "SyncTarget",
    "Syncer",
    "TipsetFetcher",
]

logger = logging.getLogger(__name__)

FOLLOW_DISTANCE: Final = 2
"""Epochs behind the best target at which the node counts as following rather than catching up."""
MAX_FORK_LENGTH: Final = 900
"""How far below our head a fork may start (Lotus ``ForkLengthThreshold``, the finality)."""
MAX_HEIGHT_DRIFT: Final = 5
"""Targets more than this many epochs above the wall-clock epoch are from the future (Lotus
``MaxHeightDrift`` in ``IsEpochInConsensusRange``)."""
MAX_CANDIDATES: Final = 64
MAX_PENDING_BLOCKS: Final = 256
BAD_BLOCK_CACHE_SIZE: Final = 1 << 15
"""Lotus ``badBlockCacheSize``."""
SIGNATURE_REASONS: Final = frozenset(
    {
        Reason.BLOCK_SIGNATURE,
        Reason.MESSAGE_SIGNATURE,
        Reason.BLS_AGGREGATE,
        Reason.TICKET,
        Reason.ELECTION_PROOF,
    }
)


class ChainPipeline(Protocol):
    """What the syncer needs from :class:`~chainsync.tipset_pipeline.TipsetPipeline`."""

    def head(self) -> TipSet: ...

    def weight(self, tipset: TipSet) -> int: ...

    def accept(self, full_tipsets: Sequence[Sequence[FullBlock]]) -> list[TipsetOutcome]: ...


class SyncRefused(MalformedInput):
    """A chain the syncer will not follow (foreign genesis, bad block, fork too long, invalid
    or mismatching tipset); ``height`` is the refused tipset's."""

    def __init__(self, what: str, where: str | None = None, *, height: int) -> None:
        self.height = height
        super().__init__(what, where)


@dataclass
class SyncTarget:
    """A head some peers announced. ``weight`` is the claimed chain weight: a hello's weight,
    or a gossiped block's parent weight plus one (a tipset outweighs its parent)."""

    key: TipSetKey
    height: int
    weight: int
    peers: list[PeerID] = field(default_factory=list)
    block: FullBlock | None = None


class Syncer:
    """Follows the heaviest chain the peers announce; see the module docstring."""

    def __init__(
        self,
        chain_store: ChainStore,
        pipeline: ChainPipeline,
        fetcher: TipsetFetcher,
        peers: PeerManager,
        settings: SyncSettings,
        metrics: NodeMetrics | None = None,
        expected_epoch: Callable[[], int] | None = None,
    ) -> None:
        self._store = chain_store
        self._pipeline = pipeline
        self._peers = peers
        self._settings = settings
        self._metrics = metrics
        self._expected_epoch = expected_epoch
        self._client = ChainSegmentClient(
            fetcher, peers, timeout_seconds=settings.request_timeout_secs, metrics=metrics
        )
        self._head = pipeline.head()
        self._head_weight = pipeline.weight(self._head)
        self._genesis = chain_store.genesis()
        self._candidates: dict[TipSetKey, SyncTarget] = {}
        self._blocks: deque[tuple[PeerID, FullBlock]] = deque(maxlen=MAX_PENDING_BLOCKS)
        self._bad: OrderedDict[CID, str] = OrderedDict()
        self._current: SyncTarget | None = None
        self._heard_from_peers = False
        self._last_failed = False
        self._state = SyncState.IDLE
        self._best_peer_epoch: int | None = None
        self._wakeup = trio.Event()
        self._head_changed = trio.Event()
        if metrics is not None:
            metrics.set_head(self._head.height)
            metrics.set_sync_state(self._state)

    # -- what the node layer calls ------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def head(self) -> TipSet:
        """The head as of the last tipset the syncer accepted."""
        return self._head

    def is_bad(self, cid: CID) -> bool:
        """Whether the block was refused (or is linked to a refused block)."""
        return cid in self._bad

    def on_hello(self, peer: PeerID, hello: HelloMessage) -> None:
        """A peer's head from its hello: recorded for peer selection, a target if heavier.
        A hello naming another genesis is ignored (the hello service disconnects such peers)."""
        if hello.genesis_hash not in self._genesis.cids or not hello.heaviest_tipset:
            return
        self._peers.record_hello(peer, hello.heaviest_tipset_height, hello.heaviest_tipset_weight)
        self._heard_from_peers = True
        self._note_peer_epoch(hello.heaviest_tipset_height)
        if hello.heaviest_tipset_weight > self._head_weight:
            self._add_candidate(
                SyncTarget(
                    TipSetKey(hello.heaviest_tipset),
                    hello.heaviest_tipset_height,
                    hello.heaviest_tipset_weight,
                    [peer],
                )
            )
        self._publish_state()

    def on_block(self, peer: PeerID, block: FullBlock) -> None:
        """A gossiped block with its messages: applied directly when its parent is stored, else
        a target. The sender becomes a peer to fetch from (Lotus ``InformNewHead`` adds it to
        the exchange's peers)."""
        if block.cid() in self._bad or self._peers.is_banned(peer):
            return
        self._peers.add_peer(peer)
        self._heard_from_peers = True
        self._note_peer_epoch(block.header.height)
        self._blocks.append((peer, block))
        self._wakeup.set()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sync forever: gossiped blocks first, then the heaviest target. Cancellable; a
        pipeline call in progress finishes before cancellation takes effect."""
        self._publish_state()
        task_status.started()
        while True:
            self._wakeup = trio.Event()
            self._refresh_expected_epoch()
            self._follow_store_head()
            if self._blocks:
                await self._take_gossiped_blocks()
                continue
            target = self._pop_target()
            if target is None:
                self._publish_state()
                await self._wakeup.wait()
                continue
            await self._sync_to(target)

    async def wait_for_height(self, height: int) -> None:
        """Return once the head is at ``height`` or above."""
        while self._head.height < height:
            await self._head_changed.wait()

    # -- targets ------------------------------------------------------------------------------

    def _add_candidate(self, target: SyncTarget) -> None:
        if any(cid in self._bad for cid in target.key.cids):
            return
        existing = self._candidates.get(target.key)
        if existing is not None:
            for peer in target.peers:
                if peer not in existing.peers:
                    existing.peers.append(peer)
            existing.block = existing.block or target.block
            existing.weight = max(existing.weight, target.weight)
        else:
            self._candidates[target.key] = target
            if len(self._candidates) > MAX_CANDIDATES:
                lightest = min(self._candidates.values(), key=_rank)
                del self._candidates[lightest.key]
        self._wakeup.set()

    def _pop_target(self) -> SyncTarget | None:
        """The heaviest candidate still worth syncing (heavier than our head, not bad, not from
        the future), removed from the candidates; the others stay."""
        ceiling = None
        if self._expected_epoch is not None:
            ceiling = self._expected_epoch() + MAX_HEIGHT_DRIFT
        for key, target in list(self._candidates.items()):
            if (
                target.weight <= self._head_weight
                or any(cid in self._bad for cid in key.cids)
                or (ceiling is not None and target.height > ceiling)
            ):
                del self._candidates[key]
        if not self._candidates:
            return None
        best = max(self._candidates.values(), key=_rank)
        del self._candidates[best.key]
        return best

    # -- syncing ------------------------------------------------------------------------------

    async def _take_gossiped_blocks(self) -> None:
        while self._blocks:
            peer, block = self._blocks.popleft()
            header = block.header
            if block.cid() in self._bad or header.parent_weight < self._head_weight:
                continue
            key = TipSetKey((block.cid(),))
            if self._is_known(key):
                continue
            if not self._is_known(TipSetKey(header.parents)):
                target = SyncTarget(key, header.height, header.parent_weight + 1, [peer], block)
                self._add_candidate(target)
                continue
            try:
                await self._accept((block,), [peer])
                self._last_failed = False
            except SyncRefused as refusal:
                logger.warning("gossiped block %s from %s refused: %s", block.cid(), peer, refusal)
            except FvmNodeError:
                logger.exception("accepting gossiped block %s failed", block.cid())
                self._last_failed = True
            self._publish_state()

    async def _sync_to(self, target: SyncTarget) -> None:
        self._current = target
        self._publish_state()
        try:
            block = target.block
            if block is not None and self._is_known(TipSetKey(block.header.parents)):
                await self._accept((block,), target.peers)
            else:
                ascending, served_by = await self._collect_headers(target)
                await self._fetch_and_apply(target, ascending, served_by)
            self._last_failed = False
        except SyncRefused as refusal:
            logger.warning("sync to %s at %d refused: %s", target.key, target.height, refusal)
            self._mark_bad(target.key.cids, str(refusal))
            self._last_failed = True
        except NoPeerAnswered as failure:
            logger.warning("sync to %s at %d stalled: %s", target.key, target.height, failure)
            self._last_failed = True
        except FvmNodeError:
            logger.exception("sync to %s at %d failed", target.key, target.height)
            self._last_failed = True
        finally:
            self._current = None
            self._publish_state()

    async def _collect_headers(
        self, target: SyncTarget
    ) -> tuple[list[TipSet], dict[TipSetKey, PeerID]]:
        """The target's tipsets that we do not have, oldest first, and who served each
        (Lotus ``collectHeaders``)."""
        chain: list[TipSet] = []
        served_by: dict[TipSetKey, PeerID] = {}
        next_key = target.key
        floor = self._head.height - MAX_FORK_LENGTH
        while not self._is_known(next_key):
            child = chain[-1] if chain else None
            peer, tipsets = await self._client.headers(
                next_key,
                self._settings.batch_length,
                min_height=target.height,
                preferred=target.peers,
                child=child,
            )
            for tipset in tipsets:
                if self._is_known(tipset.key):
                    break
                self._refuse_if_unacceptable(tipset, floor, chain)
                chain.append(tipset)
                served_by[tipset.key] = peer
            next_key = chain[-1].parents
        chain.reverse()
        return chain, served_by

    def _refuse_if_unacceptable(self, tipset: TipSet, floor: int, chain: list[TipSet]) -> None:
        bad = next((cid for cid in tipset.cids if cid in self._bad), None)
        reason = None
        if bad is not None:
            reason = f"the chain contains block {bad}, marked bad: {self._bad[bad]}"
        elif tipset.height == 0:
            reason = f"the chain's genesis {tipset.key} is not ours ({self._genesis.key})"
        elif tipset.height < floor:
            reason = (
                f"the chain forks more than {MAX_FORK_LENGTH} epochs below our head "
                f"at {self._head.height}"
            )
        if reason is not None:
            for linked in (tipset, *chain):
                self._mark_bad(linked.cids, reason)
            raise SyncRefused(
                reason, f"tipset {tipset.key} at height {tipset.height}", height=tipset.height
            )

    async def _fetch_and_apply(
        self,
        target: SyncTarget,
        ascending: list[TipSet],
        served_by: dict[TipSetKey, PeerID],
    ) -> None:
        """Fetch the messages window by window (several in flight) and accept the tipsets in
        order (Lotus ``syncMessagesAndCheckState``)."""
        step = max(1, min(self._settings.batch_length, MAX_REQUEST_LENGTH))
        windows = [ascending[start : start + step] for start in range(0, len(ascending), step)]
        ahead = max(1, self._settings.max_concurrent_requests)
        slots = [_WindowSlot() for _ in windows]
        failure: FvmNodeError | None = None
        async with trio.open_nursery() as nursery:

            def start(index: int) -> None:
                window = windows[index]
                preferred = _unique([served_by[window[-1].key], *target.peers])
                nursery.start_soon(self._fetch_window, window, preferred, slots[index])

            for index in range(min(ahead, len(windows))):
                start(index)
            try:
                for index, window in enumerate(windows):
                    await slots[index].done.wait()
                    if index + ahead < len(windows):
                        start(index + ahead)
                    await self._apply_window(window, slots[index], target, served_by)
            except SyncRefused as refusal:
                refused_height = refusal.height
                self._mark_bad(
                    (cid for t in ascending if t.height > refused_height for cid in t.cids),
                    f"linked to a refused tipset: {refusal.what}",
                )
                failure = refusal
            except FvmNodeError as error:
                failure = error
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _apply_window(
        self,
        window: list[TipSet],
        slot: _WindowSlot,
        target: SyncTarget,
        served_by: dict[TipSetKey, PeerID],
    ) -> None:
        if slot.error is not None:
            raise slot.error
        for tipset, full_tipset in zip(window, slot.full_tipsets, strict=True):
            await self._accept(full_tipset, _unique([served_by[tipset.key], *target.peers]))

    async def _fetch_window(
        self, window: list[TipSet], preferred: list[PeerID], slot: _WindowSlot
    ) -> None:
        try:
            _, slot.full_tipsets = await self._client.messages(
                window, min_height=window[-1].height, preferred=preferred
            )
        except NoPeerAnswered as error:
            slot.error = error
        finally:
            slot.done.set()

    async def _accept(self, full_tipset: FullTipset, blame: Sequence[PeerID]) -> None:
        """Hand one tipset to the pipeline in a worker thread; a refusal penalises ``blame``
        (the peers that served or announced it), marks it bad and raises :class:`SyncRefused`."""
        cids = [block.cid() for block in full_tipset]
        height = full_tipset[0].header.height
        try:
            outcomes = await trio.to_thread.run_sync(self._pipeline.accept, [full_tipset])
        except ConsensusMismatch as mismatch:
            if self._metrics is not None:
                self._metrics.on_consensus_mismatch()
            self._penalize(blame, PenaltyReason.WRONG_STATE_ROOT)
            self._mark_bad(cids, "consensus mismatch")
            raise SyncRefused(
                f"consensus mismatch: {mismatch.what}", mismatch.where, height=height
            ) from None
        except BlockValidationError as invalid:
            if invalid.reason is not Reason.FROM_THE_FUTURE:
                self._mark_bad(cids, f"invalid block: {invalid.what}")
                signature = invalid.reason in SIGNATURE_REASONS
                self._penalize(
                    blame,
                    PenaltyReason.BAD_SIGNATURE if signature else PenaltyReason.MALFORMED_CBOR,
                )
            raise SyncRefused(
                f"invalid block: {invalid.what}", invalid.where, height=height
            ) from None
        except MalformedInput as invalid:
            self._mark_bad(cids, f"invalid tipset: {invalid.what}")
            self._penalize(blame, reason_for_error(invalid))
            raise SyncRefused(
                f"invalid tipset: {invalid.what}", invalid.where, height=height
            ) from None
        self._record_outcomes(outcomes)

    # -- bookkeeping --------------------------------------------------------------------------

    def _record_outcomes(self, outcomes: Iterable[TipsetOutcome]) -> None:
        for outcome in outcomes:
            if outcome.executed is not None and self._metrics is not None:
                self._metrics.on_tipset_applied(
                    outcome.executed.height,
                    outcome.gas_used,
                    outcome.messages_applied,
                    outcome.apply_seconds,
                )
            if outcome.became_head:
                self._set_head(outcome.tipset, outcome.weight)
        if self._metrics is not None:
            self._metrics.set_head(self._head.height)
        self._publish_state()

    def _set_head(self, head: TipSet, weight: int) -> None:
        self._head = head
        self._head_weight = weight
        self._head_changed.set()
        self._head_changed = trio.Event()

    def _follow_store_head(self) -> None:
        """Pick up a head another caller of the pipeline moved (the devnet producer), between
        the syncer's own pipeline calls."""
        head = self._pipeline.head()
        if head != self._head:
            self._set_head(head, self._pipeline.weight(head))
            if self._metrics is not None:
                self._metrics.set_head(head.height)

    def _is_known(self, key: TipSetKey) -> bool:
        return self._store.index.tipset_meta(key.to_bytes()) is not None

    def _mark_bad(self, cids: Iterable[CID], reason: str) -> None:
        for cid in cids:
            self._bad[cid] = reason
            self._bad.move_to_end(cid)
        while len(self._bad) > BAD_BLOCK_CACHE_SIZE:
            self._bad.popitem(last=False)

    def _penalize(self, peers: Iterable[PeerID], reason: PenaltyReason) -> None:
        for peer in peers:
            self._peers.penalize(peer, reason)
            if self._metrics is not None:
                self._metrics.on_peer_penalty(reason.value)

    def _note_peer_epoch(self, epoch: int) -> None:
        if self._best_peer_epoch is None or epoch > self._best_peer_epoch:
            self._best_peer_epoch = epoch
            if self._metrics is not None:
                self._metrics.set_best_peer_epoch(epoch)

    def _refresh_expected_epoch(self) -> None:
        if self._expected_epoch is not None and self._metrics is not None:
            self._metrics.set_expected_epoch(self._expected_epoch())

    def _publish_state(self) -> None:
        heights = [target.height for target in self._candidates.values()]
        if self._current is not None:
            heights.append(self._current.height)
        if heights and max(heights) - self._head.height > FOLLOW_DISTANCE:
            state = SyncState.CATCHING_UP
        elif self._current is None and self._last_failed:
            state = SyncState.ERROR
        elif self._heard_from_peers or self._current is not None:
            state = SyncState.FOLLOWING
        else:
            state = SyncState.IDLE
        if state is not self._state:
            logger.info("sync state: %s -> %s", self._state.value, state.value)
            self._state = state
            if self._metrics is not None:
                self._metrics.set_sync_state(state)


@dataclass
class _WindowSlot:
    done: trio.Event = field(default_factory=trio.Event)
    full_tipsets: list[FullTipset] = field(default_factory=list)
    error: NoPeerAnswered | None = None


def _rank(target: SyncTarget) -> tuple[int, int]:
    return (target.weight, target.height)


def _unique(peers: Iterable[PeerID]) -> list[PeerID]:
    return list(dict.fromkeys(peers))
