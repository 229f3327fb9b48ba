"""Where a message's gas fee goes: burnt, tipped to the miner, or refunded to the sender.

Port of ``GasOutputs::compute`` and ``compute_gas_overestimation_burn`` in ref-fvm
``fvm/src/gas/outputs.rs`` (identical arithmetic in v2 at ``fvm@v2.7.0`` and v3/v4 up to
``fvm@v4.8.2``), which is Lotus's ``ComputeGasOutputs`` in ``chain/vm/burn.go`` with network
fees always charged. The sender escrows ``fee_cap * gas_limit``; from it:

* ``base_fee_burn``: the base fee (capped at the fee cap) for each unit of gas used;
* ``over_estimation_burn``: the same price for part of the unused gas, the more the limit
  over-estimated the usage (nothing within a 10% allowance, then up to all of it);
* ``miner_tip``: the premium (capped so base fee plus premium stays within the fee cap) for
  every unit of the gas *limit*;
* ``refund``: the rest, back to the sender.

``miner_penalty`` is not taken from the escrow: it is what the block's miner owes when the base
fee exceeds the fee cap, for the gas used and burnt. Token amounts are attoFIL ints, gas counts
are whole gas.

The v2 and Lotus over-estimation burn work in signed 64-bit and give ``gas_limit - gas_used``
as the refund when the usage exceeds the limit; v3+ work unsigned and saturate that to zero.
The VM never reports more gas used than the limit, so the two agree on every real message; this
module follows v3+.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fvm.token import TokenAmount

GAS_OVERUSE_NUM: Final = 11
GAS_OVERUSE_DENOM: Final = 10


def compute_gas_overestimation_burn(gas_used: int, gas_limit: int) -> tuple[int, int]:
    """``(gas refunded, gas burnt)`` out of the ``gas_limit - gas_used`` unused gas."""
    if gas_used == 0:
        return 0, gas_limit
    # Burn (N - 10)% of the unused gas, N the over-estimation in percent, clamped to 0..100%.
    over = min(max(gas_limit - (GAS_OVERUSE_NUM * gas_used) // GAS_OVERUSE_DENOM, 0), gas_used)
    gas_remaining = max(gas_limit - gas_used, 0)
    gas_to_burn = (gas_remaining * over) // gas_used
    return max(gas_remaining - gas_to_burn, 0), gas_to_burn


@dataclass(frozen=True, slots=True)
class GasOutputs:
    base_fee_burn: TokenAmount
    over_estimation_burn: TokenAmount
    miner_penalty: TokenAmount
    miner_tip: TokenAmount
    refund: TokenAmount
    gas_refund: int
    gas_burned: int

    @classmethod
    def compute(
        cls,
        gas_used: int,
        gas_limit: int,
        base_fee: TokenAmount,
        fee_cap: TokenAmount,
        gas_premium: TokenAmount,
    ) -> GasOutputs:
        """Split the fee for a message that used ``gas_used`` of ``gas_limit`` (whole gas)."""
        if gas_used < 0 or gas_limit < 0:
            raise ValueError(f"gas counts must be non-negative: used {gas_used}, limit {gas_limit}")
        base_fee_to_pay = base_fee
        miner_penalty = 0
        if base_fee > fee_cap:
            base_fee_to_pay = fee_cap
            miner_penalty = (base_fee - fee_cap) * gas_used
        base_fee_burn = base_fee_to_pay * gas_used

        tip_per_gas = gas_premium
        if base_fee_to_pay + tip_per_gas > fee_cap:
            tip_per_gas = fee_cap - base_fee_to_pay
        miner_tip = tip_per_gas * gas_limit

        gas_refund, gas_burned = compute_gas_overestimation_burn(gas_used, gas_limit)
        over_estimation_burn = 0
        if gas_burned != 0:
            over_estimation_burn = base_fee_to_pay * gas_burned
            miner_penalty += (base_fee - base_fee_to_pay) * gas_burned

        required_funds = fee_cap * gas_limit
        refund = required_funds - base_fee_burn - miner_tip - over_estimation_burn
        return cls(
            base_fee_burn=base_fee_burn,
            over_estimation_burn=over_estimation_burn,
            miner_penalty=miner_penalty,
            miner_tip=miner_tip,
            refund=refund,
            gas_refund=gas_refund,
            gas_burned=gas_burned,
        )
