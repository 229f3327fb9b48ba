"""The message pool with real secp256k1 and BLS signatures: admission rules and block selection."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.address import Address
from fvm.crypto import bls, secp256k1
from fvm.message import BLOCK_GAS_LIMIT, Message, SignedMessage
from fvm.signature import Signature
from fvm.token import TOTAL_FILECOIN, TokenAmount, from_whole
from node.message_pool import (
    MAX_NONCE_GAP,
    DuplicateMessage,
    FeeCapBelowBaseFeeBound,
    GasFeeCapTooLow,
    InsufficientFunds,
    InsufficientFundsWithPending,
    InvalidMessage,
    InvalidSignature,
    MessagePool,
    MessagePoolError,
    MessageTooBig,
    NonceGap,
    NonceTooLow,
    ReplaceByFeeTooLow,
    SenderState,
    SignatureMismatch,
    UnknownSender,
    UnsupportedSignature,
    gas_reward,
    max_cost,
    min_replacement_premium,
)

GAS_LIMIT = 1_000_000
FEE_CAP = 10_000
RECIPIENT = Address.new_id(1000)


class SecpKey:
    def __init__(self, seed: int) -> None:
        self.private = seed.to_bytes(32, "big")
        self.address = Address.new_secp256k1(secp256k1.public_key(self.private))

    def sign(self, message: Message) -> SignedMessage:
        data = secp256k1.sign(self.private, message.cid().to_bytes())
        return SignedMessage(message, Signature.new_secp256k1(data))


class BlsKey:
    def __init__(self, seed: int) -> None:
        self.private = seed.to_bytes(32, "little")
        self.address = Address.new_bls(bls.public_key(self.private))

    def sign(self, message: Message) -> SignedMessage:
        data = bls.sign(self.private, message.cid().to_bytes())
        return SignedMessage(message, Signature.new_bls(data))


ALICE = SecpKey(1)
BOB = SecpKey(2)
CAROL = BlsKey(3)


class Chain:
    """Actor state at the head, as the pool's state view reads it."""

    def __init__(self) -> None:
        self.actors: dict[Address, SenderState] = {
            key.address: SenderState(0, from_whole(1000)) for key in (ALICE, BOB, CAROL)
        }

    def __call__(self, address: Address) -> SenderState | None:
        return self.actors.get(address)


def message(
    key: SecpKey | BlsKey,
    nonce: int,
    *,
    premium: TokenAmount = 100,
    fee_cap: TokenAmount = FEE_CAP,
    gas_limit: int = GAS_LIMIT,
    value: TokenAmount = 0,
    params: bytes = b"",
) -> SignedMessage:
    unsigned = Message(
        to=RECIPIENT,
        from_=key.address,
        sequence=nonce,
        value=value,
        gas_limit=gas_limit,
        gas_fee_cap=fee_cap,
        gas_premium=premium,
        params=params,
    )
    return key.sign(unsigned)


@pytest.fixture
def chain() -> Chain:
    return Chain()


@pytest.fixture
def pool(chain: Chain) -> MessagePool:
    return MessagePool(chain)


# -- admission --------------------------------------------------------------------------------


def test_accepts_secp256k1_and_bls_signed_messages(pool: MessagePool) -> None:
    secp = message(ALICE, 0)
    bls_signed = message(CAROL, 0)
    assert pool.add(secp) is True
    assert pool.add(bls_signed) is True
    assert pool.pending_count() == 2
    assert pool.get(secp.cid()) == secp
    # A BLS message is known by its unsigned CID (its signature is aggregated per block).
    assert bls_signed.cid() == bls_signed.message.cid()
    assert bls_signed.cid() in pool
    assert pool.next_nonce(ALICE.address) == 1
    assert pool.next_nonce(BOB.address) == 0


def test_rejects_a_signature_by_another_key(pool: MessagePool) -> None:
    forged = BOB.sign(message(ALICE, 0).message)
    with pytest.raises(InvalidSignature):
        pool.add(forged)
    bls_forged = BlsKey(4).sign(message(CAROL, 0).message)
    with pytest.raises(InvalidSignature):
        pool.add(bls_forged)
    assert pool.pending_count() == 0


def test_rejects_a_signature_of_the_wrong_type_for_the_sender(pool: MessagePool) -> None:
    unsigned = message(ALICE, 0).message
    bls_signature = Signature.new_bls(bls.sign(CAROL.private, unsigned.cid().to_bytes()))
    with pytest.raises(SignatureMismatch):
        pool.add(SignedMessage(unsigned, bls_signature))


def test_refuses_delegated_signatures_softly(pool: MessagePool) -> None:
    unsigned = message(ALICE, 0).message
    with pytest.raises(UnsupportedSignature) as caught:
        pool.add(SignedMessage(unsigned, Signature.new_delegated(bytes(65))))
    assert caught.value.ignore


def test_rejects_the_same_message_twice(pool: MessagePool) -> None:
    signed = message(ALICE, 0)
    pool.add(signed)
    with pytest.raises(DuplicateMessage):
        pool.add(signed)
    assert pool.pending_count() == 1


def test_rejects_a_nonce_below_the_state_nonce(chain: Chain, pool: MessagePool) -> None:
    chain.actors[ALICE.address] = SenderState(5, from_whole(10))
    with pytest.raises(NonceTooLow, match="minimum expected nonce"):
        pool.add(message(ALICE, 4))
    assert pool.add(message(ALICE, 5))


def test_rejects_an_unknown_sender_softly(pool: MessagePool) -> None:
    with pytest.raises(UnknownSender) as caught:
        pool.add(message(SecpKey(99), 0))
    assert caught.value.ignore


def test_network_messages_may_not_run_far_ahead_but_local_ones_may(pool: MessagePool) -> None:
    assert pool.add(message(ALICE, MAX_NONCE_GAP))
    with pytest.raises(NonceGap):
        pool.add(message(ALICE, MAX_NONCE_GAP + 1))
    assert pool.add(message(ALICE, 50), local=True)


def test_replace_by_fee_needs_a_quarter_more_premium(pool: MessagePool) -> None:
    original = message(ALICE, 0, premium=1000)
    pool.add(original)
    least = min_replacement_premium(1000)
    assert least == 1251
    with pytest.raises(ReplaceByFeeTooLow) as caught:
        pool.add(message(ALICE, 0, premium=least - 1))
    assert caught.value.ignore
    replacement = message(ALICE, 0, premium=least)
    assert pool.add(replacement) is False
    assert pool.pending_count() == 1
    assert original.cid() not in pool
    assert pool.get(replacement.cid()) == replacement


def test_replacement_across_a_nonce_gap_is_refused_for_network_messages(
    pool: MessagePool,
) -> None:
    pool.add(message(ALICE, 2, premium=100))
    with pytest.raises(NonceGap):
        pool.add(message(ALICE, 2, premium=10_000))
    assert pool.add(message(ALICE, 2, premium=10_000), local=True) is False


def test_balance_must_cover_value_plus_fee_cap_times_gas_limit(
    chain: Chain, pool: MessagePool
) -> None:
    signed = message(ALICE, 0, value=5000)
    cost = 5000 + FEE_CAP * GAS_LIMIT
    assert max_cost(signed.message) == cost
    chain.actors[ALICE.address] = SenderState(0, cost - 1)
    with pytest.raises(InsufficientFunds) as caught:
        pool.add(signed)
    assert caught.value.ignore  # state-dependent: Lotus after v1.20.4 ignores it in gossip
    chain.actors[ALICE.address] = SenderState(0, cost)
    assert pool.add(signed)


def test_pending_messages_count_against_the_balance(chain: Chain, pool: MessagePool) -> None:
    cost = FEE_CAP * GAS_LIMIT
    chain.actors[ALICE.address] = SenderState(0, 2 * cost)
    pool.add(message(ALICE, 0))
    pool.add(message(ALICE, 1))
    with pytest.raises(InsufficientFundsWithPending) as caught:
        pool.add(message(ALICE, 2))
    assert caught.value.ignore
    # Replacing a pending message frees what it needed.
    assert pool.add(message(ALICE, 1, premium=200)) is False


def test_rejects_messages_that_cannot_be_included_in_a_block(pool: MessagePool) -> None:
    with pytest.raises(InvalidMessage, match="cost of storing a message"):
        pool.add(message(ALICE, 0, gas_limit=1000))
    with pytest.raises(InvalidMessage, match="GasPremium"):
        pool.add(message(ALICE, 0, premium=FEE_CAP + 1))
    with pytest.raises(InvalidMessage, match="block's gas limit"):
        pool.add(message(ALICE, 0, gas_limit=BLOCK_GAS_LIMIT + 1))
    with pytest.raises(InvalidMessage, match="more filecoin"):
        pool.add(message(ALICE, 0, value=TOTAL_FILECOIN))
    with pytest.raises(GasFeeCapTooLow):
        pool.add(message(ALICE, 0, fee_cap=99, premium=1))


def test_min_gas_is_the_on_chain_message_charge(pool: MessagePool) -> None:
    signed = message(ALICE, 0)
    # Network version 18 (Lotus's Hygge price list): 38863 compute + 475000 for updating the
    # sender's actor + (36 + length) * 1300 storage.
    assert pool.min_gas(signed) == 38863 + 475_000 + (36 + signed.chain_length()) * 1300
    just_enough = message(ALICE, 0, gas_limit=pool.min_gas(signed))
    assert just_enough.chain_length() == signed.chain_length()
    assert pool.add(just_enough)


def test_rejects_messages_over_64_kib(pool: MessagePool) -> None:
    with pytest.raises(MessageTooBig):
        pool.add(message(ALICE, 0, params=bytes(64 << 10), gas_limit=200_000_000))


def test_network_messages_need_a_fee_cap_near_the_base_fee(chain: Chain) -> None:
    pool = MessagePool(chain, base_fee=100_000_000)
    with pytest.raises(FeeCapBelowBaseFeeBound) as caught:
        pool.add(message(ALICE, 0, fee_cap=999_999))
    assert caught.value.ignore
    assert pool.add(message(ALICE, 0, fee_cap=1_000_000))
    assert pool.add(message(BOB, 0, fee_cap=999_999), local=True)


def test_every_refusal_says_whether_gossip_ignores_or_rejects() -> None:
    # Lotus chain/sub/incoming.go: soft failures are ignored, the rest rejected. Since v1.20.4
    # Lotus also ignores an existing nonce, a fee cap below the minimum and too little balance,
    # so that scoring does not punish honest peers forwarding them; the pool follows that.
    ignored = {cls.__name__ for cls in MessagePoolError.__subclasses__() if cls.ignore}
    rejected = {cls.__name__ for cls in MessagePoolError.__subclasses__() if not cls.ignore}
    assert ignored == {
        "FeeCapBelowBaseFeeBound",
        "UnsupportedSignature",
        "UnknownSender",
        "NonceTooLow",
        "NonceGap",
        "ReplaceByFeeTooLow",
        "TooManyPendingMessages",
        "InsufficientFundsWithPending",
        "DuplicateMessage",
        "GasFeeCapTooLow",
        "InsufficientFunds",
    }
    assert rejected == {
        "MessageTooBig",
        "InvalidMessage",
        "SignatureMismatch",
        "InvalidSignature",
    }


# -- selection --------------------------------------------------------------------------------


def nonces(selected: list[SignedMessage]) -> list[tuple[Address, int]]:
    return [(signed.message.from_, signed.message.nonce) for signed in selected]


def test_selection_orders_by_premium_across_senders(pool: MessagePool) -> None:
    pool.add(message(ALICE, 0, premium=100))
    pool.add(message(BOB, 0, premium=300))
    pool.add(message(CAROL, 0, premium=200))
    selected = pool.select_messages(base_fee=100)
    assert nonces(selected) == [(BOB.address, 0), (CAROL.address, 0), (ALICE.address, 0)]


def test_selection_keeps_each_senders_nonces_in_order(pool: MessagePool) -> None:
    # Alice's second message pays so much that her two messages together beat Bob's.
    pool.add(message(ALICE, 0, premium=1))
    pool.add(message(ALICE, 1, premium=1000))
    pool.add(message(BOB, 0, premium=300))
    selected = pool.select_messages(base_fee=100)
    assert nonces(selected) == [(ALICE.address, 0), (ALICE.address, 1), (BOB.address, 0)]


def test_selection_splits_a_sender_whose_later_messages_pay_less(pool: MessagePool) -> None:
    pool.add(message(ALICE, 0, premium=1000))
    pool.add(message(ALICE, 1, premium=10))
    pool.add(message(BOB, 0, premium=300))
    selected = pool.select_messages(base_fee=100)
    assert nonces(selected) == [(ALICE.address, 0), (BOB.address, 0), (ALICE.address, 1)]


def test_selection_holds_messages_after_a_nonce_gap_until_it_is_filled(
    pool: MessagePool,
) -> None:
    pool.add(message(ALICE, 0))
    pool.add(message(ALICE, 2))
    assert pool.pending_count() == 2
    assert nonces(pool.select_messages(base_fee=100)) == [(ALICE.address, 0)]
    pool.add(message(ALICE, 1))
    assert pool.next_nonce(ALICE.address) == 3
    assert nonces(pool.select_messages(base_fee=100)) == [
        (ALICE.address, 0),
        (ALICE.address, 1),
        (ALICE.address, 2),
    ]


def test_selection_stays_within_the_gas_limit_and_packs_the_tail(pool: MessagePool) -> None:
    pool.add(message(ALICE, 0, premium=500, gas_limit=6_000_000))
    pool.add(message(ALICE, 1, premium=500, gas_limit=6_000_000))
    pool.add(message(BOB, 0, premium=100, gas_limit=3_000_000))
    selected = pool.select_messages(base_fee=100, gas_limit=10_000_000)
    # Alice's pair does not fit whole: it is trimmed to her first message, then Bob's fits.
    assert nonces(selected) == [(ALICE.address, 0), (BOB.address, 0)]
    assert sum(signed.message.gas_limit for signed in selected) <= 10_000_000


def test_selection_respects_the_message_limit(pool: MessagePool) -> None:
    for nonce in range(3):
        pool.add(message(ALICE, nonce, premium=100))
    pool.add(message(BOB, 0, premium=50))
    selected = pool.select_messages(base_fee=100, message_limit=2)
    assert nonces(selected) == [(ALICE.address, 0), (ALICE.address, 1)]


def test_selection_leaves_out_messages_that_do_not_cover_the_base_fee(pool: MessagePool) -> None:
    pool.add(message(ALICE, 0, fee_cap=FEE_CAP, premium=100))
    pool.add(message(BOB, 0, fee_cap=1000, premium=100))
    assert gas_reward(message(BOB, 0, fee_cap=1000).message, base_fee=5000) < 0
    assert nonces(pool.select_messages(base_fee=5000)) == [(ALICE.address, 0)]
    assert pool.select_messages(base_fee=50_000) == []


def test_selection_stops_where_the_balance_runs_out(chain: Chain, pool: MessagePool) -> None:
    cost = FEE_CAP * GAS_LIMIT
    chain.actors[ALICE.address] = SenderState(0, 3 * cost)
    for nonce in range(3):
        pool.add(message(ALICE, nonce))
    chain.actors[ALICE.address] = SenderState(0, 2 * cost)
    assert nonces(pool.select_messages(base_fee=100)) == [(ALICE.address, 0), (ALICE.address, 1)]


def test_selection_of_an_empty_pool_is_empty(pool: MessagePool) -> None:
    assert pool.select_messages(base_fee=100) == []


# -- head changes -----------------------------------------------------------------------------


def test_remove_included_forgets_applied_messages_signed_or_not(pool: MessagePool) -> None:
    first = message(ALICE, 0)
    pool.add(first)
    pool.add(message(ALICE, 1))
    bls_signed = message(CAROL, 0)
    pool.add(bls_signed)
    pool.remove_included([first, bls_signed.message])
    assert pool.pending_count() == 1
    assert first.cid() not in pool
    assert bls_signed.cid() not in pool
    assert nonces(pool.pending()) == [(ALICE.address, 1)]


def test_remove_included_of_an_unknown_nonce_fills_the_gap(pool: MessagePool) -> None:
    pool.add(message(ALICE, 0))
    pool.add(message(ALICE, 2))
    assert pool.next_nonce(ALICE.address) == 1
    # Another node's block applied Alice's nonce 1, which this pool never saw.
    pool.remove_included([message(ALICE, 1).message])
    assert pool.next_nonce(ALICE.address) == 3
    assert pool.pending_count() == 2


def test_head_change_drops_messages_whose_nonce_is_used(chain: Chain, pool: MessagePool) -> None:
    for nonce in range(3):
        pool.add(message(ALICE, nonce))
    chain.actors[ALICE.address] = SenderState(2, from_whole(1000))
    pool.on_head_change(base_fee=200)
    assert pool.base_fee == 200
    assert nonces(pool.pending()) == [(ALICE.address, 2)]
    assert nonces(pool.select_messages(base_fee=200)) == [(ALICE.address, 2)]


SENDERS = (ALICE, BOB, SecpKey(5), SecpKey(6))


@settings(max_examples=60, deadline=None)
@given(
    offers=st.lists(
        st.tuples(
            st.integers(0, len(SENDERS) - 1),
            st.integers(0, 6),
            st.integers(0, 2000),
            st.integers(1, 8).map(lambda millions: millions * 1_000_000),
            st.sampled_from([2000, FEE_CAP]),
        ),
        max_size=25,
    ),
    block_gas=st.integers(1, 30).map(lambda millions: millions * 1_000_000),
    base_fee=st.sampled_from([100, 5000, 9000]),
)
def test_selection_invariants(
    offers: list[tuple[int, int, int, int, int]], block_gas: int, base_fee: int
) -> None:
    chain = Chain()
    for key in SENDERS:
        chain.actors[key.address] = SenderState(1, from_whole(1000))
    pool = MessagePool(chain)
    for sender, nonce, premium, gas_limit, fee_cap in offers:
        offer = message(
            SENDERS[sender], nonce, premium=premium, gas_limit=gas_limit, fee_cap=fee_cap
        )
        with contextlib.suppress(MessagePoolError):
            pool.add(offer, local=True)
    selected = pool.select_messages(base_fee=base_fee, gas_limit=block_gas)
    assert sum(signed.message.gas_limit for signed in selected) <= block_gas
    assert len({signed.cid() for signed in selected}) == len(selected)
    by_sender: dict[Address, list[Message]] = {}
    for signed in selected:
        assert signed.cid() in pool
        by_sender.setdefault(signed.message.from_, []).append(signed.message)
    for sent in by_sender.values():
        # Each sender's run starts at its state nonce, has no gaps, and pays the producer.
        assert [sent_message.nonce for sent_message in sent] == list(range(1, 1 + len(sent)))
        assert sum(gas_reward(sent_message, base_fee) for sent_message in sent) >= 0


# -- pruning ----------------------------------------------------------------------------------


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def nonces_of(pool: MessagePool, key: SecpKey | BlsKey) -> list[int]:
    return sorted(m.message.nonce for m in pool.pending() if m.message.from_ == key.address)


def test_a_pool_above_its_high_water_mark_prunes_to_the_low_water_mark(chain: Chain) -> None:
    clock = Ticker()
    pool = MessagePool(chain, size_limit=8, size_limit_low=5, prune_cooldown=60.0, clock=clock)
    for nonce in range(2):
        pool.add(message(CAROL, nonce, premium=1), local=True)
    for nonce in range(3):
        pool.add(message(ALICE, nonce, premium=300))
        pool.add(message(BOB, nonce, premium=100))
    assert pool.pending_count() == 8  # at the mark, not above it: nothing pruned yet

    assert pool.add(message(ALICE, 3, premium=300))
    assert pool.pending_count() == 5
    # the local sender keeps everything though it pays least; the best chain fills the rest
    # as a gap-free prefix; the lowest-premium sender goes entirely
    assert nonces_of(pool, CAROL) == [0, 1]
    assert nonces_of(pool, ALICE) == [0, 1, 2]
    assert nonces_of(pool, BOB) == []
    assert pool.pruned_total == 4
    assert pool.next_nonce(ALICE.address) == 3
    assert pool.next_nonce(BOB.address) == 0
    assert [m.message.nonce for m in pool.select_messages(base_fee=100)].count(0) == 2

    # within the cooldown the pool may grow past the mark; the next admission after it prunes
    for nonce in range(4):
        pool.add(message(BOB, nonce, premium=100))
    assert pool.pending_count() == 9
    clock.now += 60.0
    pool.add(message(ALICE, 3, premium=300))
    assert pool.pending_count() == 5
    assert nonces_of(pool, ALICE) == [0, 1, 2]


def test_pruning_drops_whole_chains_worst_first_and_keeps_nonces_contiguous(
    chain: Chain,
) -> None:
    pool = MessagePool(chain, size_limit=100, size_limit_low=3)
    # ALICE: a well-paying message, then a poor one: two chains of falling performance
    pool.add(message(ALICE, 0, premium=500))
    pool.add(message(ALICE, 1, premium=50))
    pool.add(message(BOB, 0, premium=300))
    pool.add(message(BOB, 1, premium=300))
    pool.add(message(CAROL, 0, premium=200))
    # a message past a nonce gap belongs to no chain and is always dropped
    pool.add(message(CAROL, 3, premium=9000))
    removed = pool.prune(base_fee=1000)
    assert sorted((m.message.from_.to_bytes(), m.message.nonce) for m in removed) == sorted(
        [
            (ALICE.address.to_bytes(), 1),
            (CAROL.address.to_bytes(), 0),
            (CAROL.address.to_bytes(), 3),
        ]
    )
    assert nonces_of(pool, ALICE) == [0]
    assert nonces_of(pool, BOB) == [0, 1]
    assert nonces_of(pool, CAROL) == []
    assert pool.next_nonce(ALICE.address) == 1
    assert pool.next_nonce(CAROL.address) == 0
    # what is left is consistent: the pruned nonce can be submitted again
    assert pool.add(message(ALICE, 1, premium=50))


def test_pruning_keeps_a_pool_below_the_low_water_mark_intact(chain: Chain) -> None:
    pool = MessagePool(chain, size_limit=10, size_limit_low=5)
    for nonce in range(3):
        pool.add(message(ALICE, nonce))
    assert pool.prune() == []
    assert nonces_of(pool, ALICE) == [0, 1, 2]


def test_low_water_mark_above_the_high_one_is_refused(chain: Chain) -> None:
    with pytest.raises(ValueError, match="low-water mark"):
        MessagePool(chain, size_limit=5, size_limit_low=6)
