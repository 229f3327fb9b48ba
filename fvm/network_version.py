"""Network versions and what each one fixes about the state: state-tree and actors versions.

A network version numbers a protocol upgrade; code that behaves differently across upgrades
looks its behaviour up here by version instead of scattering comparisons. Sources: ref-fvm
``shared/src/version/mod.rs`` (the versions) and ``shared/src/state/mod.rs`` (state-tree
versions); go-state-types ``network/version.go`` (upgrade names) and ``actors/version.go``
(actors version per network version); Lotus ``chain/state/statetree.go``
(``VersionForNetwork``, the state-tree version per network version).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class NetworkVersion(IntEnum):
    V0 = 0
    V1 = 1
    V2 = 2
    V3 = 3
    V4 = 4
    V5 = 5
    V6 = 6
    V7 = 7
    V8 = 8
    V9 = 9
    V10 = 10
    V11 = 11
    V12 = 12
    V13 = 13
    V14 = 14
    V15 = 15
    V16 = 16
    V17 = 17
    V18 = 18
    V19 = 19
    V20 = 20
    V21 = 21
    V22 = 22
    V23 = 23
    V24 = 24
    V25 = 25
    V26 = 26
    V27 = 27
    V28 = 28
    V29 = 29


class StateTreeVersion(IntEnum):
    """The state root's layout; the first field of the ``[version, actors, info]`` root.

    V0 has no root object (the state root CID is the actors HAMT itself); V0 and V1 use the
    older HAMT pointer layout; V5 adds the delegated address to every actor (FIP-0048).
    """

    V0 = 0
    V1 = 1
    V2 = 2
    V3 = 3
    V4 = 4
    V5 = 5


UPGRADE_NAMES: Final[dict[NetworkVersion, str]] = {
    NetworkVersion.V0: "genesis",
    NetworkVersion.V1: "breeze",
    NetworkVersion.V2: "smoke",
    NetworkVersion.V3: "ignition",
    NetworkVersion.V4: "actors v2",
    NetworkVersion.V5: "tape",
    NetworkVersion.V6: "kumquat",
    NetworkVersion.V7: "calico",
    NetworkVersion.V8: "persian",
    NetworkVersion.V9: "orange",
    NetworkVersion.V10: "trust",
    NetworkVersion.V11: "norwegian",
    NetworkVersion.V12: "turbo",
    NetworkVersion.V13: "hyperdrive",
    NetworkVersion.V14: "chocolate",
    NetworkVersion.V15: "OhSnap",
    NetworkVersion.V16: "Skyr",
    NetworkVersion.V17: "Shark",
    NetworkVersion.V18: "Hygge",
    NetworkVersion.V19: "Lightning",
    NetworkVersion.V20: "Thunder",
    NetworkVersion.V21: "Watermelon",
    NetworkVersion.V22: "Dragon",
    NetworkVersion.V23: "Waffle",
    NetworkVersion.V24: "TukTuk",
    NetworkVersion.V25: "Teep",
    NetworkVersion.V26: "Tock",
    NetworkVersion.V27: "GoldenWeek",
    NetworkVersion.V28: "FireHorse",
    NetworkVersion.V29: "TBD",
}


def _table(*spans: tuple[int, int, int]) -> dict[NetworkVersion, int]:
    """Expand ``(first network version, last network version, value)`` spans into a table."""
    return {
        NetworkVersion(nv): value for first, last, value in spans for nv in range(first, last + 1)
    }


STATE_TREE_VERSIONS: Final[dict[NetworkVersion, StateTreeVersion]] = {
    nv: StateTreeVersion(value)
    for nv, value in _table(
        (0, 3, 0), (4, 9, 1), (10, 11, 2), (12, 12, 3), (13, 17, 4), (18, 29, 5)
    ).items()
}

ACTORS_VERSIONS: Final[dict[NetworkVersion, int]] = _table(
    (0, 3, 0),
    (4, 9, 2),
    (10, 11, 3),
    (12, 12, 4),
    (13, 13, 5),
    (14, 14, 6),
    (15, 15, 7),
    (16, 16, 8),
    (17, 17, 9),
    (18, 18, 10),
    (19, 20, 11),
    (21, 21, 12),
    (22, 22, 13),
    (23, 23, 14),
    (24, 24, 15),
    (25, 26, 16),
    (27, 27, 17),
    (28, 28, 18),
    (29, 29, 19),
)

# First network version at which delegated (f4) addresses are valid (FIP-0048).
DELEGATED_ADDRESSES_FROM: Final = NetworkVersion.V18
# First network version whose receipts carry the events root (FIP-0049).
EVENTS_FROM: Final = NetworkVersion.V18


def state_tree_version_for(nv: int) -> StateTreeVersion:
    """The state-tree version a state computed at network version ``nv`` uses."""
    try:
        return STATE_TREE_VERSIONS[NetworkVersion(nv)]
    except ValueError:
        raise ValueError(f"unsupported network version {nv}") from None


def actors_version_for(nv: int) -> int:
    """The builtin-actors version that runs at network version ``nv``."""
    try:
        return ACTORS_VERSIONS[NetworkVersion(nv)]
    except ValueError:
        raise ValueError(f"unsupported network version {nv}") from None
