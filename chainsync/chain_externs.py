"""The FVM's externs answered from the node's chain, as Lotus answers them.

Ported from Lotus (v1.23 for the FVM v3 era, unchanged in substance to v1.36):

* ``chain/rand/rand.go``: chain randomness is the blake2b-256 digest of the VRF proof of the
  minimum-ticket block of the tipset at the epoch, found walking back from the tipset being
  executed; before network version 13 a null round answers the tipset *before* it
  (``lookback``), from 13 on the one *after* it. Beacon randomness is the digest of a drand
  entry's data: V1 (network versions 0-12) and V2 (13) take the latest entry at or before the
  tipset at the epoch (before resp. after a null round), walking back up to 20 tipsets
  (``GetLatestBeaconEntry``); V3 (14 on) looks for the exact drand round the beacon schedule
  assigns to the epoch (``MaxBeaconRoundForEpoch``, V1 rule up to network version 15, V2 from
  16) in the min-ticket block's entries, walking back up to 20 tipsets. Negative epochs use V2.
* ``chain/vm/fvm.go`` ``FvmExtern``: ``TipsetCid`` is the key CID of the tipset at the epoch
  (the tipset before a null round: ``TipSetGetterForTipset`` passes ``prev``);
  ``VerifyConsensusFault`` decodes both headers, requires distinct blocks by the same miner
  with the first no higher than the second, names the fault (double-fork: same height;
  time-offset: same parents at different heights; parent-grinding: the witness ``extra`` is
  the first block's sibling and the second block's parent while the first is not), and only
  then checks both block signatures against the miner's worker key. The worker is read from
  the state at the lookback tipset (``GetLookbackTipSetForRound``, ``chain/stmgr/utils.go``)
  and resolved to a key address in the execution's base state
  (``ResolveToDeterministicAddr``); each block read from the miner and account states costs
  the legacy price list's ``OnIpldGet`` (``chain/vm/gas.go``, ``gasChargingBlocks`` in
  ``chain/vm/vm.go``), which is the gas reported back. Every failure means "no fault", except
  a proven fault whose miner is not an ID address: filecoin-ffi fails the extern call there
  (``IDFromAddress``), :class:`ExternsError` here. Headers are decoded strictly (canonical
  DAG-CBOR); Lotus's cbor-gen decoder is laxer (e.g. non-minimal big integers), so a header
  crafted that way may prove a fault there and none here.
* ``chain/beacon/drand/drand.go`` and ``chain/beacon/mock.go``: the drand round for an epoch.

Network-version rules live in :data:`EXTERN_RULES`, keyed by the first version they apply to.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol

from chainsync.chain_store import ChainStore, ChainStoreError
from chainsync.chain_types import BeaconEntry, BlockHeader, TipSet
from fvm.address import Address
from fvm.address import Protocol as AddressProtocol
from fvm.crypto.hashes import blake2b_256
from fvm.crypto.signature_verify import verify_signature
from fvm.externs import ConsensusFault, ExternsError
from fvm.network_version import StateTreeVersion
from fvm.state_tree import StateTree
from store import dag_cbor
from store.blockstore import get_required
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

# Lotus ``policy.ChainFinality``.
CHAIN_FINALITY: Final = 900
# ``GetBeaconEntry`` / ``GetLatestBeaconEntry``: how many tipsets to search back.
BEACON_SEARCH_DEPTH: Final = 20
# ``MockBeacon.MaxBeaconRoundForEpoch``: the mock beacon's round offset.
MOCK_BEACON_ROUND_OFFSET: Final = 100
_U64: Final = 1 << 64

DOUBLE_FORK_MINING: Final = 1
PARENT_GRINDING: Final = 2
TIME_OFFSET_MINING: Final = 3


class BeaconRule(Enum):
    """Which ``GetBeaconEntry`` variant a network version uses."""

    LATEST_BEFORE_NULL_ROUNDS = 1  # V1: latest entry, tipset before a null round
    LATEST_AFTER_NULL_ROUNDS = 2  # V2: latest entry, tipset after a null round
    EXACT_ROUND = 3  # V3: the round the beacon schedule assigns to the epoch


class DrandRoundRule(Enum):
    """``MaxBeaconRoundForEpoch``'s formula (V1 up to network version 15, V2 from 16)."""

    V1 = 1
    V2 = 2


@dataclass(frozen=True, slots=True)
class ExternRules:
    chain_lookback: bool  # null round: answer the tipset before it
    beacon: BeaconRule
    drand_round: DrandRoundRule
    winning_post_lookback: int  # policy.GetWinningPoStSectorSetLookback
    ipld_get_gas: int  # the legacy price list's OnIpldGet at the execution epoch


# (first network version, rules). Calico (7) raised ipldGetBase; Hygge's (18) price list leaves
# it zero, and ref-fvm v3 ignores the reported gas anyway.
EXTERN_RULES: Final[tuple[tuple[int, ExternRules], ...]] = (
    (0, ExternRules(True, BeaconRule.LATEST_BEFORE_NULL_ROUNDS, DrandRoundRule.V1, 10, 75242)),
    (4, ExternRules(True, BeaconRule.LATEST_BEFORE_NULL_ROUNDS, DrandRoundRule.V1, 900, 75242)),
    (7, ExternRules(True, BeaconRule.LATEST_BEFORE_NULL_ROUNDS, DrandRoundRule.V1, 900, 114617)),
    (13, ExternRules(False, BeaconRule.LATEST_AFTER_NULL_ROUNDS, DrandRoundRule.V1, 900, 114617)),
    (14, ExternRules(False, BeaconRule.EXACT_ROUND, DrandRoundRule.V1, 900, 114617)),
    (16, ExternRules(False, BeaconRule.EXACT_ROUND, DrandRoundRule.V2, 900, 114617)),
    (18, ExternRules(False, BeaconRule.EXACT_ROUND, DrandRoundRule.V2, 900, 0)),
)
_RULE_VERSIONS: Final = tuple(version for version, _ in EXTERN_RULES)


def rules_for(network_version: int) -> ExternRules:
    """The rules in force at ``network_version``."""
    return EXTERN_RULES[max(0, bisect_right(_RULE_VERSIONS, network_version) - 1)][1]


# -- beacon rounds --------------------------------------------------------------------------


class BeaconRounds(Protocol):
    def max_beacon_round_for_epoch(self, network_version: int, epoch: int) -> int:
        """The drand round whose entry a block at ``epoch`` must carry last."""


@dataclass(frozen=True, slots=True)
class DrandChain:
    """A drand network's chain info: genesis time and period, in seconds."""

    genesis_time: int
    period: int


# build/buildconstants/drand.go ChainInfoJSON.
DRAND_MAINNET: Final = DrandChain(1595431050, 30)
DRAND_INCENTINET: Final = DrandChain(1595873820, 30)
DRAND_QUICKNET: Final = DrandChain(1692803367, 3)


@dataclass(frozen=True, slots=True)
class DrandRounds:
    """A drand network followed by a Filecoin chain with ``genesis_time`` and ``block_delay``."""

    drand: DrandChain
    genesis_time: int
    block_delay: int

    def max_beacon_round_for_epoch(self, network_version: int, epoch: int) -> int:
        # Lotus computes in uint64: the wrap-around of early epochs is part of the rule.
        latest = (epoch * self.block_delay + self.genesis_time - self.block_delay) % _U64
        if rules_for(network_version).drand_round is DrandRoundRule.V1:
            return ((latest - self.drand.genesis_time) % _U64) // self.drand.period
        if latest < self.drand.genesis_time:
            return 1
        return (latest - self.drand.genesis_time) // self.drand.period + 1


@dataclass(frozen=True, slots=True)
class MockBeaconRounds:
    """Lotus's mock beacon (devnets): round = epoch + 100."""

    def max_beacon_round_for_epoch(self, network_version: int, epoch: int) -> int:
        return (epoch + MOCK_BEACON_ROUND_OFFSET) % _U64


class BeaconSchedule:
    """Beacons by the epoch they start at (Lotus ``beacon.Schedule.BeaconForEpoch``)."""

    def __init__(self, points: Sequence[tuple[int, BeaconRounds]]) -> None:
        if not points:
            raise ValueError("a beacon schedule needs at least one beacon")
        self._points = sorted(points, key=lambda point: point[0])

    def for_epoch(self, epoch: int) -> BeaconRounds:
        for start, beacon in reversed(self._points):
            if epoch >= start:
                return beacon
        return self._points[0][1]

    def max_beacon_round_for_epoch(self, network_version: int, epoch: int) -> int:
        return self.for_epoch(epoch).max_beacon_round_for_epoch(network_version, epoch)


# -- the externs ----------------------------------------------------------------------------


class _NoFault(Exception):
    """Internal: the consensus fault check stops here with "no fault"."""


class NoBeaconEntry(FvmNodeError, LookupError):
    """No beacon entry in the latest tipsets (Lotus: "found NO beacon entries")."""


def latest_beacon_entry(chain_store: ChainStore, tipset: TipSet) -> BeaconEntry:
    """The last beacon entry in the chain up to and including ``tipset`` (Lotus
    ``ChainStore.GetLatestBeaconEntry``), looking back at most ``BEACON_SEARCH_DEPTH`` tipsets."""
    current = tipset
    for _ in range(BEACON_SEARCH_DEPTH):
        entries = current.min_ticket_block.beacon_entries
        if entries:
            return entries[-1]
        if current.height == 0:
            raise NoBeaconEntry("made it back to genesis without finding a beacon entry")
        current = chain_store.get_tipset(current.parents)
    raise NoBeaconEntry(f"found no beacon entries in the {BEACON_SEARCH_DEPTH} latest tipsets")


class ChainExterns:
    """``fvm.externs.Externs`` for executing ``tipset``'s messages on the node's chain.

    ``base_state`` is the state the messages apply to (the tipset's parent state after any
    null-round cron; default the parent state), ``epoch`` the execution epoch (default the
    tipset's height). ``beacon_rounds`` is needed for beacon randomness from network version
    14 on. ``fault_blackout_height``, when set, is an upgrade height near which (within
    finality) no consensus fault is reported (Lotus ``UpgradeWatermelonFixHeight``: calibnet).
    """

    def __init__(
        self,
        chain_store: ChainStore,
        tipset: TipSet,
        network_version_for_epoch: Callable[[int], int],
        *,
        beacon_rounds: BeaconRounds | None = None,
        base_state: CID | None = None,
        epoch: int | None = None,
        fault_blackout_height: int | None = None,
    ) -> None:
        self.chain_store = chain_store
        self.tipset = tipset
        self.network_version_for_epoch = network_version_for_epoch
        self.beacon_rounds = beacon_rounds
        self.base_state = tipset.parent_state if base_state is None else base_state
        self.epoch = tipset.height if epoch is None else epoch
        self.fault_blackout_height = fault_blackout_height

    # -- randomness -------------------------------------------------------------------------

    def get_chain_randomness(self, epoch: int) -> bytes:
        lookback = rules_for(self.network_version_for_epoch(epoch)).chain_lookback
        found = self._tipset_for_randomness(epoch, lookback)
        ticket = found.min_ticket_block.ticket
        assert ticket is not None  # a TipSet's blocks all have tickets
        return blake2b_256(ticket.vrf_proof)

    def get_beacon_randomness(self, epoch: int) -> bytes:
        return blake2b_256(self.beacon_entry(epoch).data)

    def beacon_entry(self, epoch: int) -> BeaconEntry:
        """The beacon entry randomness at ``epoch`` is drawn from (Lotus ``GetBeaconEntry``)."""
        network_version = self.network_version_for_epoch(epoch)
        rule = rules_for(network_version).beacon
        if rule is BeaconRule.EXACT_ROUND and epoch < 0:
            rule = BeaconRule.LATEST_AFTER_NULL_ROUNDS
        if rule is not BeaconRule.EXACT_ROUND:
            lookback = rule is BeaconRule.LATEST_BEFORE_NULL_ROUNDS
            return self._latest_beacon_entry(self._tipset_for_randomness(epoch, lookback))
        found = self._tipset_for_randomness(epoch, False)
        if self.beacon_rounds is None:
            raise ExternsError("no beacon schedule configured: cannot find the drand round")
        wanted = self.beacon_rounds.max_beacon_round_for_epoch(network_version, epoch)
        for _ in range(BEACON_SEARCH_DEPTH):
            for entry in found.min_ticket_block.beacon_entries:
                if entry.round == wanted:
                    return entry
            found = self._parent(found)
        raise ExternsError(f"didn't find beacon for round {wanted} (epoch {epoch})")

    def _latest_beacon_entry(self, start: TipSet) -> BeaconEntry:
        try:
            return latest_beacon_entry(self.chain_store, start)
        except NoBeaconEntry as exc:
            raise ExternsError(str(exc)) from None
        except (ChainStoreError, MalformedInput) as exc:
            raise ExternsError(f"failed to load a parent of {start}: {exc}") from None

    def _tipset_for_randomness(self, epoch: int, lookback: bool) -> TipSet:
        if epoch > self.tipset.height:
            raise ExternsError("cannot draw randomness from the future")
        return self._at_height(max(epoch, 0), lookback)

    # -- tipsets ----------------------------------------------------------------------------

    def get_tipset_cid(self, epoch: int) -> CID:
        return self._at_height(epoch, True).key.cid()

    def _at_height(self, height: int, prev: bool) -> TipSet:
        try:
            return self.chain_store.tipset_at_height(height, self.tipset, prev)
        except (ChainStoreError, MalformedInput) as exc:
            raise ExternsError(str(exc)) from None

    def _parent(self, tipset: TipSet) -> TipSet:
        try:
            return self.chain_store.get_tipset(tipset.parents)
        except (ChainStoreError, MalformedInput) as exc:
            raise ExternsError(f"failed to load parents of {tipset}: {exc}") from None

    # -- consensus faults -------------------------------------------------------------------

    def verify_consensus_fault(
        self, header1: bytes, header2: bytes, extra: bytes
    ) -> tuple[ConsensusFault | None, int]:
        gas_used = [0]
        try:
            fault = self._find_fault(header1, header2, extra, gas_used)
        except _NoFault:
            return None, gas_used[0]
        return fault, gas_used[0]

    def _find_fault(
        self, raw_a: bytes, raw_b: bytes, extra: bytes, gas_used: list[int]
    ) -> ConsensusFault:
        block_a = _decode_header(raw_a)
        block_b = _decode_header(raw_b)
        if block_a.cid() == block_b.cid():
            raise _NoFault
        if self._near_blackout(block_a.height) or self._near_blackout(block_b.height):
            raise _NoFault
        if block_a.miner != block_b.miner or block_b.height < block_a.height:
            raise _NoFault
        fault_type = 0
        if block_a.height == block_b.height:
            fault_type = DOUBLE_FORK_MINING
        if _cids_equal(block_a.parents, block_b.parents) and block_a.height != block_b.height:
            fault_type = TIME_OFFSET_MINING
        if extra:
            block_c = _decode_header(extra)
            if (
                _cids_equal(block_a.parents, block_c.parents)
                and block_a.height == block_c.height
                and block_c.cid() in block_b.parents
                and block_a.cid() not in block_b.parents
            ):
                fault_type = PARENT_GRINDING
        if fault_type == 0:
            raise _NoFault
        self._check_block_signature(block_a, gas_used)
        self._check_block_signature(block_b, gas_used)
        target = block_a.miner
        if target.protocol is not AddressProtocol.ID:
            # filecoin-ffi fails the extern call here (IDFromAddress), which ref-fvm turns
            # into an IllegalArgument syscall error.
            raise ExternsError(f"consensus fault target {target} is not an ID address")
        return ConsensusFault(target=target.id, epoch=block_b.height, fault_type=fault_type)

    def _near_blackout(self, height: int) -> bool:
        upgrade = self.fault_blackout_height
        if upgrade is None or upgrade < 0:
            return False
        return upgrade - CHAIN_FINALITY < height < upgrade + CHAIN_FINALITY

    def _check_block_signature(self, block: BlockHeader, gas_used: list[int]) -> None:
        worker = self._worker_key_at_lookback(block.miner, block.height, gas_used)
        signature = block.block_sig
        if signature is None or worker.protocol is AddressProtocol.ID:
            raise _NoFault
        if not verify_signature(signature, worker, block.signing_bytes()):
            raise _NoFault

    def _worker_key_at_lookback(self, miner: Address, height: int, gas_used: list[int]) -> Address:
        if height < self.epoch - CHAIN_FINALITY:
            raise _NoFault
        get_gas = rules_for(self.network_version_for_epoch(self.epoch)).ipld_get_gas
        store = self.chain_store.blockstore

        def charged_read(cid: CID) -> Any:
            gas_used[0] += get_gas
            try:
                return dag_cbor.decode(get_required(store, cid), str(cid))
            except (FvmNodeError, ValueError):
                raise _NoFault from None

        try:
            lookback = StateTree(store, self._lookback_state_root(height))
            miner_actor = lookback.get_actor(miner)
        except (ExternsError, FvmNodeError, ValueError):
            raise _NoFault from None
        if miner_actor is None:
            raise _NoFault
        miner_state = charged_read(miner_actor.state)
        if type(miner_state) is not list or not miner_state or type(miner_state[0]) is not CID:
            raise _NoFault
        info = charged_read(miner_state[0])
        if type(info) is not list or len(info) < 2 or type(info[1]) is not bytes:
            raise _NoFault
        try:
            worker = Address.from_bytes(info[1])
            if worker.protocol in _KEY_PROTOCOLS:
                return worker
            base = StateTree(store, self.base_state)
            worker_actor = base.get_actor(worker)
        except (FvmNodeError, ValueError):
            raise _NoFault from None
        if worker_actor is None:
            raise _NoFault
        if base.version >= StateTreeVersion.V5 and worker_actor.delegated_address is not None:
            return worker_actor.delegated_address
        account = charged_read(worker_actor.state)
        if type(account) is not list or len(account) != 1 or type(account[0]) is not bytes:
            raise _NoFault
        try:
            return Address.from_bytes(account[0])
        except (FvmNodeError, ValueError):
            raise _NoFault from None

    def _lookback_state_root(self, round_epoch: int) -> CID:
        """The state root after the tipset ``round_epoch``'s winning-PoSt lookback names
        (Lotus ``GetLookbackTipSetForRound``)."""
        network_version = self.network_version_for_epoch(round_epoch)
        lookback = rules_for(network_version).winning_post_lookback
        lookback_round = round_epoch - lookback if round_epoch > lookback else 0
        if lookback_round >= self.tipset.height:
            if self.tipset.height == 0:
                return self.tipset.parent_state
            raise ExternsError(
                f"lookback height {lookback_round} is at or after base height {self.tipset.height}"
            )
        following = self._at_height(lookback_round + 1, False)
        return following.parent_state


_KEY_PROTOCOLS: Final = (AddressProtocol.SECP256K1, AddressProtocol.BLS, AddressProtocol.DELEGATED)


def _decode_header(data: bytes) -> BlockHeader:
    try:
        return BlockHeader.decode(data, "consensus fault block header")
    except MalformedInput:
        raise _NoFault from None


def _cids_equal(first: Sequence[CID], second: Sequence[CID]) -> bool:
    """Lotus ``CidArrsEqual``: same length and every CID of ``second`` in ``first``."""
    members = set(first)
    return len(first) == len(second) and all(cid in members for cid in second)
