"""The devnet's randomness beacon: Lotus's mock beacon, standing in for drand.

A Filecoin chain draws its unbiasable randomness from drand; every block carries the drand
entries of the rounds since its parent. The devnet has no drand network, so, like Lotus's
devnets, it uses the mock beacon of Lotus ``chain/beacon/mock.go`` (``MockBeacon``): round
``epoch + 100`` belongs to an epoch (``MaxBeaconRoundForEpoch``, the same rule as
:class:`chainsync.chain_externs.MockBeaconRounds`), and the entry of round ``r`` has as data the
blake2b-256 digest of ``r`` as 8 big-endian bytes (``entryForIndex``). Anyone can compute every
entry in advance: it is a stand-in that keeps the data paths (tickets, election proofs, beacon
randomness for actors) exercised, not a source of unpredictable randomness.

Which entries a block carries and how they are checked follow Lotus ``chain/beacon/beacon.go``
for a chained beacon (the mock says it is chained) with one beacon for the whole chain:
``BeaconEntriesForBlock`` gives the entries of every epoch in ``(parent epoch, epoch]``, in
ascending round order (none when the newest round is the previous entry's);
``ValidateBlockValues`` requires entries unless the newest round is the previous entry's,
accepts anything right after genesis (whose entry has round 0), and otherwise requires the
last entry to be the epoch's round and every entry to be the mock's entry for its round.
The latest entry before a block is found as Lotus ``ChainStore.GetLatestBeaconEntry``
(``chain/store/store.go``) does: the last entry of the min-ticket block, walking back at most
20 tipsets.
"""

from __future__ import annotations

from typing import Final

from chainsync.chain_externs import MockBeaconRounds
from chainsync.chain_types import BeaconEntry, BlockHeader
from fvm.crypto.hashes import blake2b_256
from store.errors import MalformedInput

ROUND_BYTES: Final = 8
_U64: Final = 1 << 64


class BeaconEntryError(MalformedInput):
    """A block whose beacon entries are not the ones the beacon gives for its epoch."""


class MockBeacon:
    """Lotus's mock beacon: deterministic entries, round = epoch + 100."""

    def __init__(self) -> None:
        self._rounds = MockBeaconRounds()

    def max_beacon_round_for_epoch(self, network_version: int, epoch: int) -> int:
        """The round whose entry a block at ``epoch`` carries last."""
        return self._rounds.max_beacon_round_for_epoch(network_version, epoch)

    @staticmethod
    def entry(round_number: int) -> BeaconEntry:
        """The mock's entry for ``round_number`` (``entryForIndex``)."""
        if not 0 <= round_number < _U64:
            raise ValueError(f"beacon round {round_number} is not an unsigned 64-bit integer")
        return BeaconEntry(round_number, blake2b_256(round_number.to_bytes(ROUND_BYTES, "big")))

    def entries_for_block(
        self, network_version: int, epoch: int, parent_epoch: int, previous: BeaconEntry
    ) -> tuple[BeaconEntry, ...]:
        """The entries a block at ``epoch`` on a parent at ``parent_epoch`` carries, given the
        latest entry before it (``BeaconEntriesForBlock``)."""
        if epoch <= parent_epoch:
            raise ValueError(f"epoch {epoch} is not above the parent's {parent_epoch}")
        newest = self.max_beacon_round_for_epoch(network_version, epoch)
        if newest == previous.round:
            return ()
        return tuple(
            self.entry(self.max_beacon_round_for_epoch(network_version, height))
            for height in range(parent_epoch + 1, epoch + 1)
        )

    def check_block_entries(
        self, network_version: int, header: BlockHeader, previous: BeaconEntry
    ) -> None:
        """Raise :class:`BeaconEntryError` unless ``header`` carries valid entries after
        ``previous`` (``ValidateBlockValues`` for a chained beacon)."""
        newest = self.max_beacon_round_for_epoch(network_version, header.height)
        entries = header.beacon_entries
        if newest == previous.round:
            if entries:
                raise BeaconEntryError(
                    f"expected no beacon entries in this block, got {len(entries)}",
                    f"block {header.cid()}",
                )
            return
        if not entries:
            raise BeaconEntryError(
                "expected beacon entries in this block, found none", f"block {header.cid()}"
            )
        if previous.round == 0:
            return
        last = entries[-1]
        if last.round != newest:
            raise BeaconEntryError(
                f"expected final beacon entry in block to be at round {newest}, got {last.round}",
                f"block {header.cid()}",
            )
        for index, entry in enumerate(entries):
            if self.entry(entry.round) != entry:
                raise BeaconEntryError(
                    f"beacon entry {index} (round {entry.round}) is not the mock beacon's",
                    f"block {header.cid()}",
                )
