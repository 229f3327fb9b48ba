"""Network presets: what a node must know about mainnet, calibnet or the devnet, as data.

Everything here is consensus data copied from Lotus (``filecoin-project/lotus``), so the node
agrees with it about which rules apply at which epoch:

- upgrade heights: ``build/buildconstants/params_mainnet.go`` and ``params_calibnet.go``
  (``Upgrade<Name>Height``); which network version each upgrade switches to, and their order:
  ``DefaultUpgradeSchedule`` in ``chain/consensus/filcns/upgrades.go``. Lotus drops upgrades
  with a negative height (disabled on that network) and so do we;
- the actors version of each network version: go-state-types ``actors/version.go``
  (``VersionForNetwork``), already ported as :func:`fvm.network_version.actors_version_for`;
- block and propagation delays, chain ids (``Eip155ChainId``), bundle names (``NetworkBundle``),
  bootstrap peer thresholds: the same ``params_*.go`` files (``params_2k.go`` for the devnet);
- bootstrap peers: ``build/bootstrap/mainnet.pi`` and ``calibnet.pi``;
- network names: the init actor's ``network_name`` in the genesis state of Lotus's
  ``build/genesis/mainnet.car.zst`` ("testnetnet") and ``calibnet.car.zst`` ("calibrationnet");
  the genesis CIDs are those CARs' roots (their genesis block).

Lotus's ``StateManager.GetNetworkVersion`` (``chain/stmgr/stmgr.go``) gives an upgrade's *old*
network version at the upgrade height itself and the new one from the next epoch: the
migration runs in ``HandleStateForks`` after the cron of the upgrade epoch, before any later
tipset's messages (``ApplyBlocks`` in ``chain/consensus/compute_state.go``).
:meth:`NetworkPreset.network_version_at` follows the same rule.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Final, Literal

from fvm.network_version import actors_version_for
from store.cid import CID
from store.errors import FvmNodeError

Consensus = Literal["filecoin", "devnet"]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One upgrade: the state migrates after the cron of epoch ``height``; tipsets from
    ``height + 1`` on run at ``network_version`` with builtin actors ``actors_version``.
    ``name`` is Lotus's (``Upgrade<name>Height``)."""

    height: int
    network_version: int
    actors_version: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class NetworkPreset:
    """The constants of one network. ``genesis`` is relative to the shared data directory for
    mainnet and calibnet (see :func:`config.bundles.locate_genesis`) and None for the devnet
    until its data directory is known (:func:`devnet_preset`)."""

    name: str
    network_name: str
    chain_id: int
    block_delay_secs: int
    propagation_delay_secs: int
    genesis: Path | None
    genesis_cid: CID | None
    bootstrap_peers: tuple[str, ...]
    genesis_network_version: int
    upgrades: tuple[Upgrade, ...]
    bundle_network: str
    consensus: Consensus
    bootstrap_peer_threshold: int
    _heights: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        heights = tuple(upgrade.height for upgrade in self.upgrades)
        if any(later <= earlier for earlier, later in pairwise(heights)):
            raise ValueError(f"{self.name}: upgrade heights must increase strictly")
        if any(height < 0 for height in heights):
            raise ValueError(f"{self.name}: upgrade heights must not be negative")
        object.__setattr__(self, "_heights", heights)

    def network_version_at(self, epoch: int) -> int:
        """The network version tipsets at ``epoch`` execute with (Lotus
        ``GetNetworkVersion``: an upgrade's height still runs the previous version)."""
        index = bisect.bisect_left(self._heights, epoch)
        if index == 0:
            return self.genesis_network_version
        return self.upgrades[index - 1].network_version

    def actors_version_at(self, epoch: int) -> int:
        """The builtin-actors version in force at ``epoch``."""
        return actors_version_for(self.network_version_at(epoch))

    def upgrade_at(self, epoch: int) -> Upgrade | None:
        """The upgrade whose migration runs after the cron of ``epoch``, if there is one."""
        index = bisect.bisect_left(self._heights, epoch)
        if index < len(self.upgrades) and self._heights[index] == epoch:
            return self.upgrades[index]
        return None

    @property
    def genesis_actors_version(self) -> int:
        return actors_version_for(self.genesis_network_version)


def expected_epoch(preset: NetworkPreset, genesis_timestamp: int, now: float) -> int:
    """The epoch the wall clock says the chain should be at: whole block delays since genesis
    (as Lotus's syncer estimates it); 0 before genesis."""
    if now <= genesis_timestamp:
        return 0
    return math.floor((now - genesis_timestamp) / preset.block_delay_secs)


# Every upgrade of Lotus's ``DefaultUpgradeSchedule``, in its order:
# (name, network version, mainnet height, calibnet height); None where the network disabled it
# (a negative height in that network's params file). Derived heights are spelled out below:
# Persian = Calico + 60 h (mainnet) / 1 h (calibnet) at 120 epochs an hour; Thunder =
# Lightning + 21 days (mainnet, 2880 epochs a day) / + 3120 (calibnet); Tock = Teep + 90 days
# (mainnet) / 7 days (calibnet).
_LOTUS_SCHEDULE: Final[tuple[tuple[str, int, int | None, int | None], ...]] = (
    ("Breeze", 1, 41280, None),
    ("Smoke", 2, 51000, None),
    ("Ignition", 3, 94000, None),
    ("Refuel", 3, 130800, None),
    ("Assembly", 4, 138720, 30),
    ("Tape", 5, 140760, 60),
    ("Liftoff", 5, 148888, None),
    ("Kumquat", 6, 170000, 90),
    ("Calico", 7, 265200, 120),
    ("Persian", 8, 265200 + 60 * 120, 120 + 1 * 120),
    ("Orange", 9, 336458, 300),
    ("Trust", 10, 550321, 330),
    ("Norwegian", 11, 665280, 360),
    ("Turbo", 12, 712320, 390),
    ("Hyperdrive", 13, 892800, 420),
    ("Chocolate", 14, 1231620, 450),
    ("OhSnap", 15, 1594680, 480),
    ("Skyr", 16, 1960320, 510),
    ("Shark", 17, 2383680, 16800),
    ("Hygge", 18, 2683348, 322354),
    ("Lightning", 19, 2809800, 489094),
    ("Thunder", 20, 2809800 + 2880 * 21, 489094 + 3120),
    ("Watermelon", 21, 3469380, 1013134),
    ("WatermelonFix", 21, None, 1070494),
    ("WatermelonFix2", 21, None, 1108174),
    ("Dragon", 22, 3855360, 1427974),
    ("CalibrationDragonFix", 22, None, 1493854),
    ("Waffle", 23, 4154640, 1779094),
    ("Tuktuk", 24, 4461240, 2078794),
    ("Teep", 25, 4878840, 2523454),
    ("Tock", 26, 4878840 + 2880 * 90, 2523454 + 2880 * 7),
    ("TockFix", 26, None, 2558014),
    ("GoldenWeek", 27, 5348280, 3007294),
    ("FireHorse", 28, 6052800, 3694534),
    # Lotus's placeholder for the next, not yet scheduled, upgrade.
    ("Xx", 29, 9999999999, 999999999999999),
)


def _schedule(column: Literal[2, 3]) -> tuple[Upgrade, ...]:
    upgrades: list[Upgrade] = []
    for row in _LOTUS_SCHEDULE:
        name, network_version, height = row[0], row[1], row[column]
        if height is not None:
            actors = actors_version_for(network_version)
            upgrades.append(Upgrade(height, network_version, actors, name))
    return tuple(upgrades)


MAINNET_UPGRADES: Final = _schedule(2)
CALIBNET_UPGRADES: Final = _schedule(3)

# The devnet starts at network version 18 (Hygge, actors v10), the newest our FVM runs with
# the v10 bundle, and never upgrades.
DEVNET_NETWORK_VERSION: Final = 18
DEVNET_BLOCK_DELAY_SECS: Final = 4
DEVNET_GENESIS_FILE: Final = "genesis.car"

MAINNET: Final = NetworkPreset(
    name="mainnet",
    network_name="testnetnet",
    chain_id=314,
    block_delay_secs=30,
    propagation_delay_secs=10,
    genesis=Path("genesis/mainnet.car.zst"),
    genesis_cid=CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"),
    bootstrap_peers=(
        "/dns/bootstrap.filecoin.chain.love/tcp/1235/p2p/"
        "12D3KooWBF8cpp65hp2u9LK5mh19x67ftAam84z9LsfaquTDSBpt",
        "/dnsaddr/bootstrap-mainnet.chainsafe-fil.io",
    ),
    genesis_network_version=0,
    upgrades=MAINNET_UPGRADES,
    bundle_network="mainnet",
    consensus="filecoin",
    bootstrap_peer_threshold=4,
)

CALIBNET: Final = NetworkPreset(
    name="calibnet",
    network_name="calibrationnet",
    chain_id=314159,
    block_delay_secs=30,
    propagation_delay_secs=10,
    genesis=Path("genesis/calibnet.car.zst"),
    genesis_cid=CID.parse("bafy2bzacecyaggy24wol5ruvs6qm73gjibs2l2iyhcqmvi7r7a4ph7zx3yqd4"),
    bootstrap_peers=(
        "/dns/bootstrap.calibration.filecoin.chain.love/tcp/1237/p2p/"
        "12D3KooWQPYouEAsUQKzvFUA9sQ8tz4rfpqtTzh2eL6USd9bwg7x",
        "/dnsaddr/bootstrap-calibnet.chainsafe-fil.io",
    ),
    genesis_network_version=0,
    upgrades=CALIBNET_UPGRADES,
    bundle_network="calibrationnet",
    consensus="filecoin",
    bootstrap_peer_threshold=4,
)

# Lotus's local "2k" devnet (params_2k.go) for the delays, chain id and threshold; its genesis
# is made by our own devnet in its data directory, so ``genesis`` and ``genesis_cid`` are
# unknown until then.
DEVNET: Final = NetworkPreset(
    name="devnet",
    network_name="devnet",
    chain_id=31415926,
    block_delay_secs=DEVNET_BLOCK_DELAY_SECS,
    propagation_delay_secs=1,
    genesis=None,
    genesis_cid=None,
    bootstrap_peers=(),
    genesis_network_version=DEVNET_NETWORK_VERSION,
    upgrades=(),
    bundle_network="devnet",
    consensus="devnet",
    bootstrap_peer_threshold=1,
)

PRESETS: Final[dict[str, NetworkPreset]] = {p.name: p for p in (MAINNET, CALIBNET, DEVNET)}


class UnknownNetwork(FvmNodeError, ValueError):
    """A network name that is not one of :data:`PRESETS`."""


def preset(name: str) -> NetworkPreset:
    """The preset called ``name`` (``mainnet``, ``calibnet`` or ``devnet``)."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise UnknownNetwork(f"unknown network {name!r} (known: {known})") from None


def devnet_preset(
    data_dir: Path,
    *,
    block_delay_secs: int = DEVNET_BLOCK_DELAY_SECS,
    genesis_cid: CID | None = None,
    network_name: str | None = None,
) -> NetworkPreset:
    """The devnet preset for one data directory: its genesis is ``<data_dir>/genesis.car``;
    the block delay, and once the genesis exists its CID and network name, can be set."""
    if block_delay_secs < 1:
        raise ValueError("devnet block delay must be at least 1 second")
    return replace(
        DEVNET,
        network_name=DEVNET.network_name if network_name is None else network_name,
        block_delay_secs=block_delay_secs,
        genesis=data_dir / DEVNET_GENESIS_FILE,
        genesis_cid=genesis_cid,
    )
