"""The circulating supply the VM reports to actors, as Lotus computes it.

Ported from Lotus ``chain/stmgr/supply.go`` (``GetVMCirculatingSupplyDetailed`` and the
functions it calls) at v1.20.4, checked against HEAD. Every machine Lotus builds reports the
supply computed over the machine's *base* state at its epoch::

    circulating = max(0, vested + mined + reserve_disbursed - burnt - locked)

* ``mined``: the reward actor's ``total_storage_power_reward``;
* ``burnt``: the balance of the burnt-funds actor f099;
* ``locked``: the power actor's ``total_pledge_collateral`` plus, before network version 23,
  the market's locked funds (client and provider collateral and client storage fees);
* ``reserve_disbursed``: 300 million FIL (``InitialFilReserved``) minus the balance of the
  reserve f090 (negative when the reserve holds more, as in a Lotus devnet, whose remainder
  account is f090);
* ``vested``: what the genesis vesting schedules have released by the epoch, each following
  specs-actors v0's multisig ``AmountLocked`` (linear over ``unlock_duration`` epochs from
  ``start_epoch``).

Scope: the devnet runs network version 18 with every earlier upgrade before genesis, as
Lotus's 2k devnet build schedules them (negative upgrade heights); so the reserve term always
counts and the genesis pledge term Lotus adds up to the Assembly upgrade never does. Lotus
applies mainnet's hard-coded vesting tables (``setupPostCalicoVesting``) on every network, a
devnet included; here the schedules are the caller's, none by default (the devnet genesis has
no multisigs), which is the one place a devnet's figure departs from what a Lotus 2k devnet
reports. The state-migration change at network version 25 (``UpgradeTeepInitialFilReserved``)
is outside the FVM's range (15-20) and not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from fvm.actor_schemas import decode_state
from fvm.address import (
    BURNT_FUNDS_ACTOR_ADDR,
    REWARD_ACTOR_ADDR,
    STORAGE_MARKET_ACTOR_ADDR,
    STORAGE_POWER_ACTOR_ADDR,
    Address,
)
from fvm.network_version import actors_version_for
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION, TokenAmount
from store import dag_cbor
from store.blockstore import get_required
from store.errors import FvmNodeError

# Lotus ``build.FilReserved`` and the reserve's ID (``builtin.ReserveAddress``).
INITIAL_FIL_RESERVED: Final = 300_000_000 * FILECOIN_PRECISION
RESERVE_ACTOR_ADDR: Final = Address.new_id(90)
# From this network version Lotus no longer counts the market's funds as locked.
MARKET_UNLOCKED_FROM: Final = 23


class CirculatingSupplyError(FvmNodeError):
    """An actor the computation needs is missing from the state."""


@dataclass(frozen=True, slots=True)
class VestingSchedule:
    """A genesis multisig's vesting (specs-actors v0 multisig ``State`` fields)."""

    initial_balance: TokenAmount
    start_epoch: int
    unlock_duration: int

    def amount_locked(self, elapsed: int) -> TokenAmount:
        """specs-actors v0 ``AmountLocked``: the share still locked ``elapsed`` epochs in."""
        if elapsed >= self.unlock_duration:
            return 0
        unit_locked = _go_quotient(self.initial_balance, self.unlock_duration)
        return unit_locked * (self.unlock_duration - elapsed)

    def vested_at(self, epoch: int) -> TokenAmount:
        return self.initial_balance - self.amount_locked(epoch - self.start_epoch)


@dataclass(frozen=True, slots=True)
class CirculatingSupply:
    """The terms of the computation (Lotus ``api.CirculatingSupply``)."""

    vested: TokenAmount
    mined: TokenAmount
    burnt: TokenAmount
    locked: TokenAmount
    reserve_disbursed: TokenAmount
    circulating: TokenAmount


def _go_quotient(numerator: int, denominator: int) -> int:
    """Go's ``big.Int.Div`` as go-state-types uses it (truncation toward zero)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def _actor_balance(tree: StateTree, address: Address) -> TokenAmount:
    actor = tree.get_actor(address)
    if actor is None:
        raise CirculatingSupplyError(f"actor {address} is missing from the state")
    return actor.balance


def _actor_fields(tree: StateTree, address: Address, name: str, actors_version: int) -> Any:
    actor = tree.get_actor(address)
    if actor is None:
        raise CirculatingSupplyError(f"{name} actor {address} is missing from the state")
    where = f"{name} actor state {actor.state}"
    value = dag_cbor.decode(get_required(tree.store, actor.state), where)
    return decode_state(actors_version, name, value)


def vm_circulating_supply_detailed(
    epoch: int,
    tree: StateTree,
    network_version: int,
    vesting: Sequence[VestingSchedule] = (),
) -> CirculatingSupply:
    """Every term of the supply a machine at ``epoch`` over ``tree`` reports."""
    actors_version = actors_version_for(network_version)
    vested = sum(schedule.vested_at(epoch) for schedule in vesting)
    reward = _actor_fields(tree, REWARD_ACTOR_ADDR, "reward", actors_version)
    mined: int = reward["total_storage_power_reward"]
    burnt = _actor_balance(tree, BURNT_FUNDS_ACTOR_ADDR)
    power = _actor_fields(tree, STORAGE_POWER_ACTOR_ADDR, "storagepower", actors_version)
    locked: int = power["total_pledge_collateral"]
    if network_version < MARKET_UNLOCKED_FROM:
        market = _actor_fields(tree, STORAGE_MARKET_ACTOR_ADDR, "storagemarket", actors_version)
        locked += (
            market["total_client_locked_collateral"]
            + market["total_provider_locked_collateral"]
            + market["total_client_storage_fee"]
        )
    reserve_disbursed = INITIAL_FIL_RESERVED - _actor_balance(tree, RESERVE_ACTOR_ADDR)
    total = vested + mined + reserve_disbursed - burnt - locked
    return CirculatingSupply(
        vested=vested,
        mined=mined,
        burnt=burnt,
        locked=locked,
        reserve_disbursed=reserve_disbursed,
        circulating=max(total, 0),
    )


def vm_circulating_supply(
    epoch: int,
    tree: StateTree,
    network_version: int,
    vesting: Sequence[VestingSchedule] = (),
) -> TokenAmount:
    """Lotus ``GetVMCirculatingSupply``: the figure the machine reports."""
    return vm_circulating_supply_detailed(epoch, tree, network_version, vesting).circulating
