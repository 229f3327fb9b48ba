"""The node's Prometheus metrics, all under the ``fvmnode_`` prefix, in a registry of their own.

Each :class:`NodeMetrics` owns a ``CollectorRegistry`` rather than using prometheus_client's
process-wide default, so several nodes in one process (a devnet test, a replay beside a node)
never collide, and each can be served on its own port by :mod:`metrics.exporter`.

What is measured follows what Lotus exports for the same questions (``metrics/metrics.go``:
chain height and peer-reported height, block and message validation failures, peer counts)
where Lotus has an equivalent, expressed with Prometheus conventions: totals are counters
(``rate()`` gives per-second figures, e.g. gas/s from ``fvmnode_gas_used_total``), times are
histograms in seconds, states are an ``Enum``. The node calls the ``on_*``/``set_*`` methods;
nothing here reads node state except the store-size callback, evaluated at scrape time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info

PREFIX: Final = "fvmnode"
# Tipset application takes from ~10 ms (empty tipsets) to tens of seconds (cron-heavy epochs).
TIPSET_APPLY_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
)


class SyncState(StrEnum):
    """Where the node's chain sync stands."""

    IDLE = "idle"
    CATCHING_UP = "catching_up"
    FOLLOWING = "following"
    ERROR = "error"


class MessageKind(StrEnum):
    """Explicit messages come from blocks; implicit ones are the system's (reward, cron)."""

    EXPLICIT = "explicit"
    IMPLICIT = "implicit"


class Direction(StrEnum):
    """Whether this node asked (client) or answered (server) a chain-exchange request."""

    CLIENT = "client"
    SERVER = "server"


class NodeMetrics:
    """Every metric the node exports, registered in :attr:`registry`."""

    def __init__(self, *, version: str, network: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._head_epoch: int | None = None
        self._expected_epoch: int | None = None
        self._best_peer_epoch: int | None = None
        self._store_size: Callable[[], int] | None = None

        self.build_info = Info(
            "build", "The node's version and network.", namespace=PREFIX, registry=registry
        )
        self.build_info.info({"version": version, "network": network})

        self.head_epoch = Gauge(
            "head_epoch", "Epoch of the heaviest tipset applied.",
            namespace=PREFIX, registry=registry,
        )
        self.expected_epoch = Gauge(
            "expected_epoch", "Epoch the wall clock says the chain should be at.",
            namespace=PREFIX, registry=registry,
        )
        self.epoch_lag = Gauge(
            "epoch_lag", "Epochs the head is behind the wall-clock epoch (0 when not behind).",
            namespace=PREFIX, registry=registry,
        )
        self.best_peer_epoch = Gauge(
            "best_peer_epoch", "Highest head epoch any connected peer has announced.",
            namespace=PREFIX, registry=registry,
        )
        self.peer_epoch_lag = Gauge(
            "peer_epoch_lag", "Epochs the head is behind the best peer (0 when not behind).",
            namespace=PREFIX, registry=registry,
        )
        self.gas_used = Counter(
            "gas_used", "Gas used by applied messages (rate() gives gas per second).",
            namespace=PREFIX, registry=registry,
        )
        self.messages_applied = Counter(
            "messages_applied", "Messages applied, by kind.",
            ["kind"], namespace=PREFIX, registry=registry,
        )
        self.tipsets_applied = Counter(
            "tipsets_applied", "Tipsets applied.", namespace=PREFIX, registry=registry
        )
        self.tipset_apply_seconds = Histogram(
            "tipset_apply_seconds", "Wall time to apply one tipset's messages.",
            namespace=PREFIX, registry=registry, buckets=TIPSET_APPLY_BUCKETS,
        )
        self.sync_state = Enum(
            "sync_state", "Chain sync state.", namespace=PREFIX, registry=registry,
            states=[state.value for state in SyncState],
        )
        self.peers_connected = Gauge(
            "peers_connected", "libp2p peers currently connected.",
            namespace=PREFIX, registry=registry,
        )
        self.chain_exchange_requests = Counter(
            "chain_exchange_requests", "Chain-exchange requests made or served.",
            ["direction"], namespace=PREFIX, registry=registry,
        )
        self.chain_exchange_errors = Counter(
            "chain_exchange_errors", "Chain-exchange requests that failed, by reason.",
            ["direction", "reason"], namespace=PREFIX, registry=registry,
        )
        self.gossip_received = Counter(
            "gossip_messages_received", "Gossipsub messages received, by topic.",
            ["topic"], namespace=PREFIX, registry=registry,
        )
        self.gossip_rejected = Counter(
            "gossip_messages_rejected", "Gossipsub messages rejected by validation.",
            ["topic", "reason"], namespace=PREFIX, registry=registry,
        )
        self.consensus_mismatches = Counter(
            "consensus_mismatches",
            "Tipsets whose computed state root or receipts differ from the chain's.",
            namespace=PREFIX, registry=registry,
        )
        self.peer_penalties = Counter(
            "peer_penalties", "Penalties given to peers, by reason.",
            ["reason"], namespace=PREFIX, registry=registry,
        )
        self.mpool_pending = Gauge(
            "mpool_pending_messages", "Messages waiting in the message pool.",
            namespace=PREFIX, registry=registry,
        )
        self.store_size_bytes = Gauge(
            "store_size_bytes", "Bytes the blockstore occupies on disk (read at scrape time).",
            namespace=PREFIX, registry=registry,
        )
        self.store_size_bytes.set_function(self._read_store_size)
        self.replay_epochs = Counter(
            "replay_epochs", "Epochs replayed by the replay command.",
            namespace=PREFIX, registry=registry,
        )
        self.replay_mismatches = Counter(
            "replay_mismatches", "Replayed epochs whose result differs from the chain's.",
            namespace=PREFIX, registry=registry,
        )
        self.replay_gas_used = Counter(
            "replay_gas_used", "Gas used by replayed messages.",
            namespace=PREFIX, registry=registry,
        )
        self.sync_state.state(SyncState.IDLE.value)

    # -- chain progress -------------------------------------------------------------------

    def set_head(self, epoch: int) -> None:
        self._head_epoch = epoch
        self.head_epoch.set(epoch)
        self._update_lags()

    def set_expected_epoch(self, epoch: int) -> None:
        self._expected_epoch = epoch
        self.expected_epoch.set(epoch)
        self._update_lags()

    def set_best_peer_epoch(self, epoch: int) -> None:
        self._best_peer_epoch = epoch
        self.best_peer_epoch.set(epoch)
        self._update_lags()

    def _update_lags(self) -> None:
        head = self._head_epoch
        if head is None:
            return
        if self._expected_epoch is not None:
            self.epoch_lag.set(max(self._expected_epoch - head, 0))
        if self._best_peer_epoch is not None:
            self.peer_epoch_lag.set(max(self._best_peer_epoch - head, 0))

    def on_tipset_applied(
        self, epoch: int, gas_used: int, messages: int, seconds: float, implicit_messages: int = 0
    ) -> None:
        """One tipset applied at ``epoch``: its explicit and implicit messages and gas."""
        self.tipsets_applied.inc()
        self.gas_used.inc(gas_used)
        self.messages_applied.labels(kind=MessageKind.EXPLICIT.value).inc(messages)
        self.messages_applied.labels(kind=MessageKind.IMPLICIT.value).inc(implicit_messages)
        self.tipset_apply_seconds.observe(seconds)
        self.set_head(epoch)

    def set_sync_state(self, state: SyncState) -> None:
        self.sync_state.state(state.value)

    def on_consensus_mismatch(self) -> None:
        self.consensus_mismatches.inc()

    # -- network --------------------------------------------------------------------------

    def set_peers_connected(self, count: int) -> None:
        self.peers_connected.set(count)

    def on_chain_exchange_request(self, direction: Direction) -> None:
        self.chain_exchange_requests.labels(direction=direction.value).inc()

    def on_chain_exchange_error(self, direction: Direction, reason: str) -> None:
        self.chain_exchange_errors.labels(direction=direction.value, reason=reason).inc()

    def on_gossip_received(self, topic: str) -> None:
        self.gossip_received.labels(topic=topic).inc()

    def on_gossip_rejected(self, topic: str, reason: str) -> None:
        self.gossip_rejected.labels(topic=topic, reason=reason).inc()

    def on_peer_penalty(self, reason: str) -> None:
        self.peer_penalties.labels(reason=reason).inc()

    # -- message pool and store -----------------------------------------------------------

    def set_mpool_pending(self, count: int) -> None:
        self.mpool_pending.set(count)

    def set_store_size_source(self, source: Callable[[], int] | None) -> None:
        """Read the store's size from ``source`` at every scrape (e.g. LMDB's used bytes)."""
        self._store_size = source

    def _read_store_size(self) -> float:
        # Scrapes run on the exporter's thread; a store closed under it must not fail the
        # whole scrape, so a failing source reads as "unknown" (NaN).
        source = self._store_size
        if source is None:
            return math.nan
        try:
            return float(source())
        except Exception:
            return math.nan

    # -- replay ---------------------------------------------------------------------------

    def on_replay_epoch(self, gas_used: int, mismatch: bool) -> None:
        self.replay_epochs.inc()
        self.replay_gas_used.inc(gas_used)
        if mismatch:
            self.replay_mismatches.inc()

    # -- introspection --------------------------------------------------------------------

    def sample_names(self) -> frozenset[str]:
        """Every sample name the registry exposes (``_total``, ``_bucket``, ... included)."""
        return frozenset(
            sample.name for family in self.registry.collect() for sample in family.samples
        )
