"""Chain weight: how the fork choice ranks tipsets (the heaviest chain wins).

Filecoin's rule is Lotus ``chain/consensus/filcns/weight.go`` (``Weight``), with
``WRatioNum / WRatioDen = 1/2`` and ``BlocksPerEpoch = 5`` (builtin ``ExpectedLeadersPerEpoch``)
from ``build/buildconstants/params_shared_vals.go``. With ``P`` the network's total
quality-adjusted power in the tipset's parent state, ``log2P = bitlen(P) - 1`` and ``J`` the sum
of the blocks' election win counts::

    weight(ts) = ParentWeight(ts) + log2P * 256 + (log2P * 1 * 256 * J) // (5 * 2)

``P`` is the power actor's ``TotalQualityAdjPower`` (actor f04), read from the state tree with
the power state schema of the actors version in force (:mod:`fvm.actor_schemas`). A network
with no power left has no weight: Lotus fails there, and so does :func:`total_quality_adj_power`.

The devnet has no storage power. Its rule (:func:`devnet_weight`), chosen here: each block adds
``2^8``, so a chain's weight is 256 times the number of blocks in it; the chain with more
blocks wins, null rounds add nothing, and weights stay on the scale of Filecoin's (where one
epoch adds roughly ``log2P * 256``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from fvm.actor_schemas import decode_state
from fvm.address import STORAGE_POWER_ACTOR_ADDR
from fvm.state_tree import StateTree
from store import dag_cbor
from store.blockstore import Blockstore, get_required
from store.cid import CID
from store.errors import FvmNodeError

W_RATIO_NUM: Final = 1
W_RATIO_DEN: Final = 2
BLOCKS_PER_EPOCH: Final = 5
DEVNET_WEIGHT_PER_BLOCK: Final = 1 << 8


class WeightError(FvmNodeError, ValueError):
    """The weight cannot be computed: no power actor, or no power in the network."""


def total_quality_adj_power(store: Blockstore, state_root: CID, actors_version: int) -> int:
    """The power actor's ``TotalQualityAdjPower`` at ``state_root``; positive.

    Raises :class:`WeightError` if there is no power actor or no power, a
    :class:`~store.errors.MalformedInput` if its state does not decode, and
    :class:`~store.errors.BlockNotFound` if a block is missing.
    """
    tree = StateTree(store, state_root)
    actor = tree.get_actor(STORAGE_POWER_ACTOR_ADDR.id)
    if actor is None:
        raise WeightError(f"no power actor in state {state_root}")
    raw = get_required(store, actor.state)
    state = decode_state(
        actors_version, "storagepower", dag_cbor.decode(raw, f"power state {actor.state}")
    )
    power: int = state["total_quality_adj_power"]
    if power <= 0:
        raise WeightError("all power in the network is gone: the chain has no weight")
    return power


def filecoin_weight(parent_weight: int, total_power: int, win_counts: Iterable[int]) -> int:
    """Lotus ``Weight`` given the tipset's parent weight, the total quality-adjusted power of
    its parent state and its blocks' win counts."""
    if total_power <= 0:
        raise WeightError("all power in the network is gone: the chain has no weight")
    log2_power = total_power.bit_length() - 1
    wins = sum(win_counts)
    election_weight = ((log2_power * W_RATIO_NUM) << 8) * wins // (BLOCKS_PER_EPOCH * W_RATIO_DEN)
    return parent_weight + (log2_power << 8) + election_weight


def devnet_weight(parent_weight: int, block_count: int) -> int:
    """The devnet's rule: the parent weight plus 2^8 for each block of the tipset."""
    return parent_weight + DEVNET_WEIGHT_PER_BLOCK * block_count
