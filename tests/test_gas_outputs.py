"""Fee outputs against ref-fvm ``fvm/src/gas/outputs.rs``, Lotus ``chain/vm/burn_test.go``, and
the balances the mainnet conformance vectors record before and after each message."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.conformance.vector import find_vectors, load_vector
from fvm.gas import GasOutputs, compute_gas_overestimation_burn
from fvm.message import Message
from fvm.receipt import ExitCode
from fvm.state_tree import StateTree

REWARD_ACTOR_ID = 2
BURNT_FUNDS_ACTOR_ID = 99

# (used, limit, refund, burn): ref-fvm outputs.rs overestimation_burn_test, "adapted from
# lotus" burn_test.go TestGasBurn (the same twelve cases in both).
OVERESTIMATION_CASES = [
    (100, 200, 10, 90),
    (100, 150, 30, 20),
    (1_000, 1_300, 240, 60),
    (500, 700, 140, 60),
    (200, 200, 0, 0),
    (20_000, 21_000, 1_000, 0),
    (0, 2_000, 0, 2_000),
    (500, 651, 121, 30),
    (500, 5_000, 0, 4_500),
    (7_499_000_000, 7_500_000_000, 1_000_000, 0),
    (7_500_000_000 // 2, 7_500_000_000, 375_000_000, 3_375_000_000),
    (1, 7_500_000_000, 0, 7_499_999_999),
]


@pytest.mark.parametrize(("used", "limit", "refund", "burn"), OVERESTIMATION_CASES)
def test_overestimation_burn_matches_ref_fvm_and_lotus(
    used: int, limit: int, refund: int, burn: int
) -> None:
    assert compute_gas_overestimation_burn(used, limit) == (refund, burn)


# (used, limit, fee cap, premium, base fee burn, over-estimation burn, miner penalty, miner tip,
# refund) with a base fee of 10: outputs.rs gas_outputs_test and burn_test.go TestGasOutputs.
OUTPUT_CASES = [
    (100, 110, 11, 1, 1_000, 0, 0, 110, 100),
    (100, 130, 11, 1, 1_000, 60, 0, 130, 240),
    (100, 110, 10, 1, 1_000, 0, 0, 0, 100),
    (100, 110, 6, 1, 600, 0, 400, 0, 60),
]


@pytest.mark.parametrize(
    ("used", "limit", "fee_cap", "premium", "base_burn", "over_burn", "penalty", "tip", "refund"),
    OUTPUT_CASES,
)
def test_gas_outputs_match_ref_fvm_and_lotus(
    used: int,
    limit: int,
    fee_cap: int,
    premium: int,
    base_burn: int,
    over_burn: int,
    penalty: int,
    tip: int,
    refund: int,
) -> None:
    out = GasOutputs.compute(used, limit, 10, fee_cap, premium)
    assert (out.base_fee_burn, out.over_estimation_burn, out.miner_penalty) == (
        base_burn,
        over_burn,
        penalty,
    )
    assert (out.miner_tip, out.refund) == (tip, refund)


def test_usage_beyond_the_limit_neither_refunds_nor_burns() -> None:
    # ref-fvm v3+ saturate (v2 and Lotus would answer a negative refund); the VM never
    # reports more gas used than the limit.
    assert compute_gas_overestimation_burn(300, 200) == (0, 0)


def test_negative_gas_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        GasOutputs.compute(-1, 100, 1, 1, 1)


def _signed_overestimation_burn(gas_used: int, gas_limit: int) -> tuple[int, int]:
    """Lotus ``ComputeGasOverestimationBurn`` / ref-fvm v2, in its signed form, as the model."""
    if gas_used == 0:
        return 0, gas_limit
    over = gas_limit - (11 * gas_used) // 10
    if over < 0:
        return gas_limit - gas_used, 0
    over = min(over, gas_used)
    to_burn = (gas_limit - gas_used) * over // gas_used
    return gas_limit - gas_used - to_burn, to_burn


@st.composite
def _message_fees(draw: st.DrawFn) -> tuple[int, int, int, int, int]:
    limit = draw(st.integers(min_value=0, max_value=10_000_000_000))
    used = draw(st.integers(min_value=0, max_value=limit))
    attofil = st.integers(min_value=0, max_value=10**12)
    return used, limit, draw(attofil), draw(attofil), draw(attofil)


@given(_message_fees())
def test_fee_outputs_conserve_the_escrowed_funds(fees: tuple[int, int, int, int, int]) -> None:
    used, limit, base_fee, fee_cap, premium = fees
    out = GasOutputs.compute(used, limit, base_fee, fee_cap, premium)
    spent = out.base_fee_burn + out.over_estimation_burn + out.miner_tip
    assert spent + out.refund == fee_cap * limit
    assert out.refund >= 0
    assert min(out.base_fee_burn, out.over_estimation_burn, out.miner_tip) >= 0
    assert out.gas_refund + out.gas_burned == limit - used
    # The miner owes the base fee it could not collect, on the gas used and burnt.
    assert out.miner_penalty == max(base_fee - fee_cap, 0) * (used + out.gas_burned)


@given(_message_fees())
def test_overestimation_burn_agrees_with_the_signed_form_for_real_usage(
    fees: tuple[int, int, int, int, int],
) -> None:
    used, limit = fees[0], fees[1]
    assert compute_gas_overestimation_burn(used, limit) == _signed_overestimation_burn(used, limit)


# -- the mainnet conformance vectors ------------------------------------------------------

# Miner methods that can pay funds to the sender (WithdrawBalance pays the owner,
# DisputeWindowedPoSt rewards the disputer) or burn fees and penalties of their own; the vector
# names say which actor and method each message calls.
PAYS_SENDER = ("storageminer-WithdrawBalance", "storageminer-DisputeWindowedPoSt")
BURNS_FUNDS = (
    "storageminer-TerminateSectors",
    "storageminer-DisputeWindowedPoSt",
    "storageminer-PreCommitSectorBatch",
    "storageminer-ProveCommitAggregate",
)


@dataclass(frozen=True)
class VectorFees:
    name: str
    reward_received: int
    burnt_received: int
    miner_tips: int
    gas_burnt: int
    # sender ID -> (balance decrease, fees + value the sender should pay)
    senders: dict[int, tuple[int, int]]


@pytest.fixture(scope="module")
def vector_fees(vectors_dir: Path) -> list[VectorFees]:
    results = []
    for path in find_vectors(vectors_dir / "extracted"):
        vector = load_vector(path)
        store = vector.blockstore(verify=False)
        pre = StateTree(store, vector.pre_state_root)
        post = StateTree(store, vector.post_state_root)

        def balance_change(tree_from: StateTree, tree_to: StateTree, actor_id: int) -> int:
            before, after = tree_from.get_actor(actor_id), tree_to.get_actor(actor_id)
            assert before is not None and after is not None
            return after.balance - before.balance

        tips = burnt = 0
        owed: Counter[int] = Counter()
        for applied, receipt in zip(vector.messages, vector.receipts, strict=True):
            message = Message.decode(applied.data)
            out = GasOutputs.compute(
                receipt.gas_used,
                message.gas_limit,
                vector.base_fee,
                message.gas_fee_cap,
                message.gas_premium,
            )
            tips += out.miner_tip
            burnt += out.base_fee_burn + out.over_estimation_burn
            sender = pre.lookup_id(message.from_)
            assert sender is not None
            transferred = message.value if receipt.exit_code == ExitCode.OK else 0
            owed[sender] += out.base_fee_burn + out.over_estimation_burn + out.miner_tip
            owed[sender] += transferred
        senders = {
            sender: (-balance_change(pre, post, sender), amount) for sender, amount in owed.items()
        }
        results.append(
            VectorFees(
                name=path.name,
                reward_received=balance_change(pre, post, REWARD_ACTOR_ID),
                burnt_received=balance_change(pre, post, BURNT_FUNDS_ACTOR_ID),
                miner_tips=tips,
                gas_burnt=burnt,
                senders=senders,
            )
        )
    assert len(results) == 309
    return results


def test_miner_tips_are_what_the_reward_actor_receives_in_every_vector(
    vector_fees: list[VectorFees],
) -> None:
    mismatched = [v.name for v in vector_fees if v.reward_received != v.miner_tips]
    assert mismatched == []
    assert sum(v.miner_tips > 0 for v in vector_fees) == len(vector_fees)


def test_senders_pay_exactly_the_fees_and_the_value_sent(vector_fees: list[VectorFees]) -> None:
    mismatched = []
    exact = 0
    for vector in vector_fees:
        for paid, owed in vector.senders.values():
            if any(method in vector.name for method in PAYS_SENDER):
                # The method may have paid the sender something back.
                assert paid <= owed, vector.name
                continue
            exact += 1
            if paid != owed:
                mismatched.append(vector.name)
    assert mismatched == []
    assert exact == 292


def test_burnt_funds_receive_the_gas_burns(vector_fees: list[VectorFees]) -> None:
    mismatched = []
    exact = 0
    for vector in vector_fees:
        if any(method in vector.name for method in BURNS_FUNDS):
            # The method may have burnt fees or penalties of its own on top.
            assert vector.burnt_received >= vector.gas_burnt, vector.name
            continue
        exact += 1
        if vector.burnt_received != vector.gas_burnt:
            mismatched.append(vector.name)
    assert mismatched == []
    assert exact == 261
