"""The FVM's gas accounting: price lists per network version, the gas tracker, fee outputs.

* :mod:`fvm.gas.charge` - milligas units, rounding to whole gas, :class:`GasCharge`, the block
  gas limit;
* :mod:`fvm.gas.price_list` - ref-fvm's price lists as data (OhSnap, Skyr, Hygge, Watermelon,
  Teep) and :data:`PRICE_LISTS`, keyed by network version;
* :mod:`fvm.gas.gas_tracker` - :class:`GasTracker` and :class:`OutOfGas`;
* :mod:`fvm.gas.gas_outputs` - :class:`GasOutputs`, how a message's fee is burnt, tipped and
  refunded.

Sources: ref-fvm ``fvm/src/gas/`` at ``fvm@v2.7.0``, ``fvm@v3.3.1`` and ``fvm@v4.8.2``; Lotus
``chain/vm/burn.go``.
"""

from fvm.gas.charge import (
    BLOCK_GAS_LIMIT,
    BLOCK_GAS_TARGET,
    MILLIGAS_PRECISION,
    GasCharge,
    Milligas,
    gas,
    round_down,
    round_up,
)
from fvm.gas.gas_outputs import GasOutputs, compute_gas_overestimation_burn
from fvm.gas.gas_tracker import GasLimitStackEmpty, GasTracker, OutOfGas
from fvm.gas.price_list import (
    HYGGE_PRICES,
    OH_SNAP_PRICES,
    PRICE_LISTS,
    SKYR_PRICES,
    TEEP_PRICES,
    WATERMELON_PRICES,
    PriceList,
    PriceListV2,
    PriceListV3,
    PriceListV4,
    ScalingCost,
    Step,
    StepCost,
    UnsupportedNetworkVersion,
    UnsupportedSignatureType,
    price_list_for,
)

__all__ = [
    "BLOCK_GAS_LIMIT",
    "BLOCK_GAS_TARGET",
    "HYGGE_PRICES",
    "MILLIGAS_PRECISION",
    "OH_SNAP_PRICES",
    "PRICE_LISTS",
    "SKYR_PRICES",
    "TEEP_PRICES",
    "WATERMELON_PRICES",
    "GasCharge",
    "GasLimitStackEmpty",
    "GasOutputs",
    "GasTracker",
    "Milligas",
    "OutOfGas",
    "PriceList",
    "PriceListV2",
    "PriceListV3",
    "PriceListV4",
    "ScalingCost",
    "Step",
    "StepCost",
    "UnsupportedNetworkVersion",
    "UnsupportedSignatureType",
    "compute_gas_overestimation_burn",
    "gas",
    "price_list_for",
    "round_down",
    "round_up",
]
