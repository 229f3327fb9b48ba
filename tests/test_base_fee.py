"""Lotus's base fee rules, with expected values worked out by hand in the comments."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainsync.base_fee import (
    BASE_FEE_RULES,
    BLOCK_GAS_LIMIT,
    BLOCK_GAS_TARGET,
    BLOCK_GAS_TARGET_INDEX,
    INITIAL_BASE_FEE,
    MAINNET_BREEZE_HEIGHT,
    MINIMUM_BASE_FEE,
    BaseFeeRule,
    ParentTipsetMessages,
    UnknownNetworkVersion,
    compute_base_fee,
    compute_next_base_fee,
    next_base_fee_from_premium,
    rule_for,
    weighted_premium_percentile,
)
from chainsync.chain_types import BlockHeader
from fvm.address import Address
from fvm.message import Message, SignedMessage
from fvm.signature import Signature
from store.car import read_car


def message(sender: int, nonce: int, gas_limit: int, fee_cap: int = 0, premium: int = 0) -> Message:
    return Message(
        to=Address.new_id(100),
        from_=Address.new_id(sender),
        sequence=nonce,
        gas_limit=gas_limit,
        gas_fee_cap=fee_cap,
        gas_premium=premium,
    )


def test_the_rule_table_covers_every_network_version() -> None:
    assert rule_for(0) is rule_for(1) is BaseFeeRule.UTILIZATION_PACKED
    assert all(rule_for(v) is BaseFeeRule.UTILIZATION for v in range(2, 28))
    assert rule_for(28) is rule_for(29) is BaseFeeRule.PREMIUM
    assert len(BASE_FEE_RULES) == 30
    with pytest.raises(UnknownNetworkVersion):
        rule_for(99)


def test_constants_are_lotus_buildconstants() -> None:
    assert BLOCK_GAS_LIMIT == 10_000_000_000
    assert BLOCK_GAS_TARGET == 5_000_000_000
    assert BLOCK_GAS_TARGET_INDEX == 7_999_999_999
    assert INITIAL_BASE_FEE == 100_000_000 and MINIMUM_BASE_FEE == 100


def test_children_of_the_real_mainnet_genesis_carry_seven_eighths_of_its_fee(
    mainnet_genesis: Path,
) -> None:
    car_header, blocks = read_car(mainnet_genesis)
    root = car_header.roots[0]
    genesis = BlockHeader.decode(dict(blocks)[root], str(root))
    assert genesis.parent_base_fee == INITIAL_BASE_FEE
    # No messages: delta = -target, change = -fee / 8 = -12_500_000.
    tipset = ParentTipsetMessages(genesis.height, genesis.parent_base_fee, [((), ())])
    assert compute_base_fee(tipset, lambda height: 0) == 87_500_000


def test_a_full_block_raises_the_fee_by_an_eighth() -> None:
    assert compute_next_base_fee(100_000_000, BLOCK_GAS_LIMIT, 1, False) == 112_500_000
    # The change is capped: twice the limit is no worse than the limit.
    assert compute_next_base_fee(100_000_000, 2 * BLOCK_GAS_LIMIT, 1, False) == 112_500_000


def test_packing_efficiency_counts_used_gas_as_five_quarters() -> None:
    # 4e9 packed: 5 * 4e9 / 4 = 5e9 = target, unchanged.
    assert compute_next_base_fee(100_000_000, 4_000_000_000, 1, True) == 100_000_000
    # Unpacked: delta = -1e9, change = 1e8 * -1e9 / 5e9 / 8 = -2_500_000.
    assert compute_next_base_fee(100_000_000, 4_000_000_000, 1, False) == 97_500_000


def test_division_rounds_down_as_go_big_div_does() -> None:
    # -1001 / 8 in Euclidean division is -126 (remainder 7), not Go int truncation's -125.
    assert compute_next_base_fee(1001, 0, 1, False) == 875
    assert compute_next_base_fee(1000, 0, 1, False) == 875


def test_the_fee_never_falls_below_the_minimum() -> None:
    assert compute_next_base_fee(100, 0, 1, False) == MINIMUM_BASE_FEE
    assert compute_next_base_fee(105, 0, 5, False) == MINIMUM_BASE_FEE


def test_gas_is_per_block_and_repeated_messages_count_once() -> None:
    shared = message(1, 0, 6_000_000_000)
    tipset = ParentTipsetMessages(1000, 100_000_000, [([shared], []), ([shared], [])])
    # 6e9 over 2 blocks = 3e9 per block, delta = -2e9, change = -5_000_000.
    assert compute_base_fee(tipset, lambda height: 18) == 95_000_000


def test_a_secp_message_counts_under_its_signed_cid() -> None:
    unsigned = message(1, 0, 3_000_000_000)
    signed = SignedMessage(unsigned, Signature.new_secp256k1(bytes(65)))
    tipset = ParentTipsetMessages(1000, 100_000_000, [([unsigned], [signed])])
    # Different CIDs: 6e9 used in one block, delta = 1e9, change = +2_500_000.
    assert compute_base_fee(tipset, lambda height: 18) == 102_500_000


def test_breeze_held_the_mainnet_fee_at_100_for_120_epochs() -> None:
    def tipset(height: int) -> ParentTipsetMessages:
        return ParentTipsetMessages(height, 100_000_000, [((), ())])

    def fee(height: int) -> int:
        return compute_base_fee(tipset(height), lambda h: 1, breeze_height=MAINNET_BREEZE_HEIGHT)

    assert fee(MAINNET_BREEZE_HEIGHT) == 87_500_000
    assert fee(MAINNET_BREEZE_HEIGHT + 1) == 100
    assert fee(MAINNET_BREEZE_HEIGHT + 119) == 100
    assert fee(MAINNET_BREEZE_HEIGHT + 120) == 87_500_000


def test_premium_rule_moves_toward_the_80th_percentile_premium() -> None:
    # max adjustment = ceil(1000 / 8) = 125.
    assert next_base_fee_from_premium(1000, 50) == 1000 + (50 - 125)
    assert next_base_fee_from_premium(1000, 300) == 1125
    assert next_base_fee_from_premium(1000, 0) == 875
    assert next_base_fee_from_premium(101, 0) == MINIMUM_BASE_FEE


def test_weighted_percentile_walks_premiums_from_the_highest() -> None:
    limits = [3_000_000_000] * 3
    # 30 covers gas 0..3e9, 20 covers 3e9..6e9, 10 covers 6e9..9e9: index 7_999_999_999 -> 10.
    assert weighted_premium_percentile([10, 30, 20], limits, BLOCK_GAS_TARGET_INDEX) == 10
    assert weighted_premium_percentile([10, 30, 20], limits, 3_000_000_000) == 20
    assert weighted_premium_percentile([10, 30], limits[:2], BLOCK_GAS_TARGET_INDEX) == 0
    assert weighted_premium_percentile([], [], 0) == 0


@given(
    st.lists(
        st.tuples(st.integers(0, 1000), st.integers(0, 4_000_000_000)), min_size=1, max_size=20
    ),
    st.integers(0, 20_000_000_000),
)
def test_weighted_percentile_agrees_with_expanding_the_weights(
    pairs: list[tuple[int, int]], index: int
) -> None:
    ordered = sorted(pairs, key=lambda pair: -pair[0])
    position = 0
    expected = 0
    for premium, limit in ordered:
        if position <= index < position + limit:
            expected = premium
            break
        position += limit
    premiums = [premium for premium, _ in pairs]
    limits = [limit for _, limit in pairs]
    assert weighted_premium_percentile(premiums, limits, index) == expected


def test_premium_rule_counts_each_sender_nonce_once_with_effective_premiums() -> None:
    base_fee = 1000
    # Effective premium: min(premium, fee cap - base fee) = min(500, 1300 - 1000) = 300.
    first = message(1, 0, 9_000_000_000, fee_cap=1300, premium=500)
    replacement = message(1, 0, 9_000_000_000, fee_cap=5000, premium=5000)
    tipset = ParentTipsetMessages(2000, base_fee, [([first], []), ([replacement], [])])
    assert compute_base_fee(tipset, lambda height: 28) == 1125
    cheap = message(1, 0, 9_000_000_000, fee_cap=1010, premium=10)
    tipset = ParentTipsetMessages(2000, base_fee, [([cheap], []), ([replacement], [])])
    # Premium 10: 1000 + min(125, 10 - 125) = 885.
    assert compute_base_fee(tipset, lambda height: 28) == 885


def test_the_premium_rule_starts_with_the_upgrade_epochs_own_tipset() -> None:
    upgrade = 5000

    def version(height: int) -> int:
        return 28 if height > upgrade else 27

    # A message that tells the rules apart: 9e9 gas at premium 1000 (fee cap 10_000).
    busy: list[tuple[list[Message], list[SignedMessage]]] = [
        ([message(1, 0, 9_000_000_000, fee_cap=10_000, premium=1000)], [])
    ]
    tipset_before = ParentTipsetMessages(upgrade - 1, 1000, busy)
    tipset_at = ParentTipsetMessages(upgrade, 1000, busy)
    # Utilization: delta = 4e9, change = 1000 * 4e9 / 5e9 / 8 = 100 -> 1100.
    assert compute_base_fee(tipset_before, version) == 1100
    # Premium 1000: 1000 + min(125, 875) = 1125.
    assert compute_base_fee(tipset_at, version) == 1125
