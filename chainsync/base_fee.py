"""The base fee a tipset's children must carry (EIP-1559 style), as Lotus computes it.

Every block header states ``ParentBaseFee``: the base fee computed from its parent tipset. A
block whose value differs is invalid. Ported from Lotus ``chain/store/basefee.go``
(``ComputeBaseFee``, ``ComputeNextBaseFee``, ``ComputeNextBaseFeeFromUtilization``,
``ComputeNextBaseFeeFromPremiums``, ``nextBaseFeeFromPremium``, ``WeightedQuickSelect``) with
the constants of ``build/buildconstants/params_shared_vals.go``.

Three rules have held, chosen by network version (:data:`BASE_FEE_RULES`):

* utilization with packing efficiency (network version 0-1): the gas limits of the tipset's
  distinct messages (by CID), scaled by 5/4, per block, against the target;
* utilization (network versions 2-27): the same without the 5/4 (Lotus: epoch after Smoke);
* premium (network version 28 on, FIP-0115): the 80th gas-weighted percentile of the distinct
  messages' (by sender and nonce) effective premiums moves the base fee, by at most 1/8.

The utilization rules move the fee by ``fee * delta / target / 8`` (``delta`` capped at ±target,
so at most 12.5% a tipset; target = limit / elasticity 2) and floor it at 100 attoFIL. On
mainnet only, the fee was fixed at 100 for the 120 epochs after the Breeze upgrade.

Lotus chooses the rule by epoch, not version: packing efficiency while the tipset's height is
at most the Smoke upgrade epoch, the premium rule once it is at least the FireHorse epoch. The
network version a height runs at changes the epoch *after* the upgrade epoch, so
:func:`compute_base_fee` asks the caller for the version at the tipset's height (for the
packing rule) and at the next height (for the premium rule); for a network started at one
version (the devnet), both are that version.

Go's ``big.Div`` is Euclidean division; every divisor here is positive, so it equals Python's
floor division ``//``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

from fvm.address import Address
from fvm.message import Message, SignedMessage
from fvm.network_version import NetworkVersion
from fvm.token import TokenAmount
from store.cid import CID
from store.errors import FvmNodeError

BLOCK_GAS_LIMIT: Final = 10_000_000_000
ELASTICITY_MULTIPLIER: Final = 2
BLOCK_GAS_TARGET: Final = BLOCK_GAS_LIMIT // ELASTICITY_MULTIPLIER
# The gas-weighted position (0-based) of the premium that moves the fee: the 80th percentile.
BLOCK_GAS_TARGET_INDEX: Final = BLOCK_GAS_LIMIT * 80 // 100 - 1
BASE_FEE_MAX_CHANGE_DENOM: Final = 8
INITIAL_BASE_FEE: Final = 100_000_000
MINIMUM_BASE_FEE: Final = 100
PACKING_EFFICIENCY_NUM: Final = 4
PACKING_EFFICIENCY_DENOM: Final = 5
# Mainnet: the fee was held at this value for BREEZE_GAS_TAMPING_DURATION epochs after Breeze.
MAINNET_BREEZE_HEIGHT: Final = 41280
BREEZE_GAS_TAMPING_DURATION: Final = 120
BREEZE_TAMPED_BASE_FEE: Final = 100


class BaseFeeRule(Enum):
    UTILIZATION_PACKED = "utilization with packing efficiency"
    UTILIZATION = "utilization"
    PREMIUM = "premium percentile"


def _rules() -> MappingProxyType[NetworkVersion, BaseFeeRule]:
    table: dict[NetworkVersion, BaseFeeRule] = {}
    for version in NetworkVersion:
        if version < NetworkVersion.V2:
            table[version] = BaseFeeRule.UTILIZATION_PACKED
        elif version < NetworkVersion.V28:
            table[version] = BaseFeeRule.UTILIZATION
        else:
            table[version] = BaseFeeRule.PREMIUM
    return MappingProxyType(table)


BASE_FEE_RULES: Final = _rules()


class UnknownNetworkVersion(FvmNodeError, ValueError):
    """A network version the base fee table does not know."""


def rule_for(network_version: int) -> BaseFeeRule:
    try:
        return BASE_FEE_RULES[NetworkVersion(network_version)]
    except ValueError:
        raise UnknownNetworkVersion(
            f"no base fee rule for network version {network_version}"
        ) from None


def compute_next_base_fee(
    base_fee: TokenAmount, gas_limit_used: int, block_count: int, packing_efficiency: bool
) -> TokenAmount:
    """Lotus ``ComputeNextBaseFee``: move ``base_fee`` by how far the gas used per block is
    from the target (at most 1/8), never below the minimum."""
    if block_count <= 0:
        raise ValueError("a tipset has at least one block")
    if packing_efficiency:
        delta = _go_int_div(
            PACKING_EFFICIENCY_DENOM * gas_limit_used, block_count * PACKING_EFFICIENCY_NUM
        )
    else:
        delta = _go_int_div(gas_limit_used, block_count)
    delta = max(-BLOCK_GAS_TARGET, min(BLOCK_GAS_TARGET, delta - BLOCK_GAS_TARGET))
    change = base_fee * delta // BLOCK_GAS_TARGET // BASE_FEE_MAX_CHANGE_DENOM
    return max(base_fee + change, MINIMUM_BASE_FEE)


def _go_int_div(numerator: int, denominator: int) -> int:
    """Go's int64 ``/``: truncation toward zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def weighted_premium_percentile(
    premiums: Sequence[TokenAmount], gas_limits: Sequence[int], index: int
) -> TokenAmount:
    """Lotus ``WeightedQuickSelect``: order the premiums from highest to lowest, each taking
    up its message's gas limit; the premium at gas position ``index`` (0-based), or zero if the
    limits add up to no more than ``index``.

    Lotus finds it with a randomised quickselect; the answer does not depend on the pivots, so
    a sort gives the same value.
    """
    if len(premiums) != len(gas_limits):
        raise ValueError("one gas limit per premium")
    remaining = index
    for premium, limit in sorted(zip(premiums, gas_limits, strict=True), key=lambda p: -p[0]):
        if remaining < limit:
            return premium
        remaining -= limit
    return 0


def next_base_fee_from_premium(base_fee: TokenAmount, premium: TokenAmount) -> TokenAmount:
    """Lotus ``nextBaseFeeFromPremium``: move toward ``premium`` by at most ceil(fee / 8)."""
    max_adjustment = (base_fee + BASE_FEE_MAX_CHANGE_DENOM - 1) // BASE_FEE_MAX_CHANGE_DENOM
    return max(MINIMUM_BASE_FEE, base_fee + min(max_adjustment, premium - max_adjustment))


@dataclass(frozen=True, slots=True)
class ParentTipsetMessages:
    """What the base fee of a tipset's children depends on: the tipset's height, its own
    ``ParentBaseFee``, and each block's BLS and secp256k1 messages in block order."""

    height: int
    parent_base_fee: TokenAmount
    blocks: Sequence[tuple[Sequence[Message], Sequence[SignedMessage]]]


def _block_messages(tipset: ParentTipsetMessages) -> Iterable[tuple[CID, Message]]:
    for bls_messages, secpk_messages in tipset.blocks:
        for message in bls_messages:
            yield message.cid(), message
        for signed in secpk_messages:
            yield signed.cid(), signed.message


def utilization_gas_limit(tipset: ParentTipsetMessages) -> int:
    """The sum of the gas limits of the tipset's distinct messages (by CID)."""
    seen: set[CID] = set()
    total = 0
    for cid, message in _block_messages(tipset):
        if cid not in seen:
            seen.add(cid)
            total += message.gas_limit
    return total


def premium_percentile(tipset: ParentTipsetMessages) -> TokenAmount:
    """The weighted 80th-percentile effective premium of the tipset's distinct messages (by
    sender and nonce, the first occurrence counting), against the tipset's parent base fee."""
    seen: set[tuple[Address, int]] = set()
    premiums: list[TokenAmount] = []
    limits: list[int] = []
    for _, message in _block_messages(tipset):
        key = (message.from_, message.sequence)
        if key not in seen:
            seen.add(key)
            limits.append(message.gas_limit)
            premiums.append(message.effective_gas_premium(tipset.parent_base_fee))
    return weighted_premium_percentile(premiums, limits, BLOCK_GAS_TARGET_INDEX)


def compute_base_fee(
    tipset: ParentTipsetMessages,
    network_version_at: Callable[[int], int],
    *,
    breeze_height: int | None = None,
) -> TokenAmount:
    """Lotus ``ComputeBaseFee``: the ``ParentBaseFee`` every child of ``tipset`` must carry.

    ``network_version_at(height)`` is the chain's network version at a height;
    ``breeze_height`` is the Breeze upgrade epoch where it tamped the fee (mainnet:
    :data:`MAINNET_BREEZE_HEIGHT`; None elsewhere).
    """
    height = tipset.height
    if (
        breeze_height is not None
        and breeze_height >= 0
        and breeze_height < height < breeze_height + BREEZE_GAS_TAMPING_DURATION
    ):
        return BREEZE_TAMPED_BASE_FEE
    if rule_for(network_version_at(height + 1)) is BaseFeeRule.PREMIUM:
        return next_base_fee_from_premium(tipset.parent_base_fee, premium_percentile(tipset))
    packed = rule_for(network_version_at(height)) is BaseFeeRule.UTILIZATION_PACKED
    return compute_next_base_fee(
        tipset.parent_base_fee, utilization_gas_limit(tipset), len(tipset.blocks), packed
    )
