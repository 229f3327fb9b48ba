"""The message pool: signed messages waiting for a block, and the choice of which go in the next.

Semantics of Lotus's ``chain/messagepool`` at v1.20 (the network-version-18 release), reduced to
what a devnet block producer needs:

* admission (``messagepool.go``: ``checkMessage``, ``verifyMsgBeforeAdd``, ``checkBalance``,
  ``addTs``, ``msgSet.add``): size at most 64 KiB; the syntactic rules of
  ``ValidForBlockInclusion`` with the on-chain message gas as the minimum gas limit; a fee cap of
  at least the minimum base fee; a valid signature of the type the sender's address protocol
  calls for (secp256k1 for f1, BLS for f3) over the unsigned message's CID bytes (Lotus
  ``chain/signatures.go`` ``AuthenticateMessage``); a nonce not below the sender's state nonce;
  for messages from the network, a nonce at most ``MAX_NONCE_GAP`` past the next expected one;
  a replacement (same sender and nonce, different CID) only with a gas premium of at least
  1.25 * the old one + 1 (``ComputeMinRBF`` with ``ReplaceByFeeRatioDefault``); funds for the
  message and for everything the sender already has pending;
* selection (``selection.go``: ``selectMessagesGreedy``, ``createMessageChains``,
  ``msgChain.Trim``): each sender's gap-free run of nonces from its state nonce is cut into
  chains of non-increasing gas performance (reward per gas limit at the given base fee); chains
  of all senders are merged best first within the block gas limit and message limits, the chain
  that does not fit is trimmed and the rest packed after it, so each sender's nonces stay in
  order and no message is chosen without all its predecessors;
* pruning (``pruning.go``: ``pruneExcessMessages``, ``pruneMessages``; ``config.go``): when an
  admission takes the pool above its high-water mark (``MemPoolSizeLimitHi``, 30000), and no
  prune ran within the cooldown (``PruneCooldown``, a minute), the pool keeps every message of
  senders that submitted locally plus the best chains of everyone else, built as for selection
  but at the base-fee lower bound (base fee / 10), message by message down to the low-water mark
  (``MemPoolSizeLimitLo``, 20000), and drops the rest: each sender keeps a gap-free run of nonces
  from its state nonce, and the lowest-performing chains go first.

Differences from Lotus, on purpose: the funds a message needs are its value plus fee cap * gas
limit everywhere (Lotus counts the value only when building chains); pruning runs inside the
admission that crosses the high-water mark (Lotus signals a background loop), and the base fee
it starts from is the one the pool was last given, not one computed for the next block; there
are no priority senders in selection or pruning (local senders are protected from pruning, not
preferred in selection), no republishing, and no persistence of the local senders. Delegated
(Ethereum, type 3) signatures are refused with :class:`UnsupportedSignature` because checking
them needs the RLP transaction encoding, which the project does not have. The caller passes
state through a :data:`StateView` read at the current head.

Every refusal raises a subclass of :class:`MessagePoolError` whose ``ignore`` attribute says how
Lotus's gossip validator (``chain/sub/incoming.go``, ``MessageValidator.Validate``) treats it:
``True`` → ``ValidationIgnore`` (soft: state-dependent, may be our fault), ``False`` →
``ValidationReject`` (the message is bad; the sender peer may be penalised). An existing
message, a fee cap below the minimum and too little balance are soft as in later Lotus
releases (v1.20.4 rejected them): with gossip scoring on, rejecting them would punish honest
peers that forward a message this pool already holds.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar, Final, NamedTuple

from fvm.address import Address, Protocol
from fvm.crypto.signature_verify import verify_signature
from fvm.gas.charge import round_up
from fvm.gas.price_list import price_list_for
from fvm.message import BLOCK_GAS_LIMIT, Message, MessageError, SignedMessage
from fvm.network_version import NetworkVersion
from fvm.signature import SignatureType
from fvm.token import TOTAL_FILECOIN, TokenAmount
from store.cid import CID
from store.errors import FvmNodeError

logger = logging.getLogger(__name__)

# Lotus ``MaxMessageSize``: larger signed messages are refused outright (anti-DoS).
MAX_MESSAGE_SIZE: Final = 64 << 10
# Lotus ``buildconstants.MinimumBaseFee``: no message may offer a lower fee cap.
MINIMUM_BASE_FEE: Final = 100
# Lotus ``baseFeeLowerBoundFactorConservative``: network messages must offer a fee cap of at
# least base fee / 100, enough to be included within the next 20 blocks.
BASE_FEE_LOWER_BOUND_FACTOR: Final = 100
# Lotus ``ReplaceByFeeRatioDefault`` = 1.25, applied as premium + premium * 64 / 256 + 1.
RBF_DENOMINATOR: Final = 256
RBF_NUMERATOR: Final = 64
# Lotus ``MaxNonceGap``: how far ahead of the next expected nonce a network message may be.
MAX_NONCE_GAP: Final = 4
# Lotus ``MaxActorPendingMessages``.
MAX_PENDING_PER_SENDER: Final = 1000
# Lotus ``MemPoolSizeLimitHiDefault``, ``MemPoolSizeLimitLoDefault`` and ``PruneCooldownDefault``.
DEFAULT_POOL_SIZE_LIMIT: Final = 30_000
DEFAULT_POOL_SIZE_LIMIT_LOW: Final = 20_000
DEFAULT_PRUNE_COOLDOWN_SECONDS: Final = 60.0
# Lotus ``baseFeeLowerBoundFactor``: pruning prices chains at base fee / 10.
PRUNE_BASE_FEE_LOWER_BOUND_FACTOR: Final = 10
# Lotus ``build.BlockMessageLimit`` and cbor-gen's ``MaxLength`` (per signature kind).
BLOCK_MESSAGE_LIMIT: Final = 10_000
BLOCK_MESSAGES_PER_KIND_LIMIT: Final = 8192
# Lotus ``gasguess.MinGas``: below this much gas left, selection stops packing.
MIN_PACKING_GAS: Final = 1_298_450
# Lotus's penalty multiplier for a negative gas reward (fee cap below the base fee).
NEGATIVE_REWARD_MULTIPLIER: Final = 3


class SenderState(NamedTuple):
    """A sender's actor state at the current head: what the pool needs of it."""

    nonce: int
    balance: TokenAmount


# The sender's state at the current head, or ``None`` when no such actor exists.
StateView = Callable[[Address], SenderState | None]


class MessagePoolError(FvmNodeError):
    """A message the pool refused. ``ignore``: gossip ``Ignore`` (soft) rather than ``Reject``."""

    ignore: ClassVar[bool] = False


class MessageTooBig(MessagePoolError):
    """The signed message is larger than ``MAX_MESSAGE_SIZE`` (Lotus ``ErrMessageTooBig``)."""


class InvalidMessage(MessagePoolError):
    """The message breaks a rule of ``ValidForBlockInclusion`` (or its value is too high)."""


class GasFeeCapTooLow(MessagePoolError):
    """The fee cap is below the minimum base fee (Lotus ``ErrGasFeeCapTooLow``)."""

    ignore = True


class FeeCapBelowBaseFeeBound(MessagePoolError):
    """The fee cap is below base fee / 100 (Lotus's soft ``ErrSoftValidationFailure``)."""

    ignore = True


class UnsupportedSignature(MessagePoolError):
    """A delegated (Ethereum) signature, which this pool cannot check."""

    ignore = True


class SignatureMismatch(MessagePoolError):
    """The signature type does not match the sender's address protocol."""


class InvalidSignature(MessagePoolError):
    """The signature does not verify against the sender (Lotus ``AuthenticateMessage``)."""


class DuplicateMessage(MessagePoolError):
    """The pool already holds this very message (Lotus ``ErrExistingNonce``, soft in gossip)."""

    ignore = True


class UnknownSender(MessagePoolError):
    """No actor exists at the sender's address at the current head (soft in Lotus)."""

    ignore = True


class NonceTooLow(MessagePoolError):
    """The nonce is below the sender's state nonce (Lotus ``ErrNonceTooLow``)."""

    ignore = True


class NonceGap(MessagePoolError):
    """A network message too far ahead of the next nonce, or replacing across a gap."""

    ignore = True


class ReplaceByFeeTooLow(MessagePoolError):
    """A replacement offering less than the old premium * 1.25 + 1 (``ErrRBFTooLowPremium``)."""

    ignore = True


class TooManyPendingMessages(MessagePoolError):
    """The sender already has ``MAX_PENDING_PER_SENDER`` messages pending."""

    ignore = True


class InsufficientFunds(MessagePoolError):
    """The sender's balance cannot cover this message alone (Lotus ``ErrNotEnoughFunds``)."""

    ignore = True


class InsufficientFundsWithPending(MessagePoolError):
    """The balance covers this message but not together with the sender's pending ones (soft)."""

    ignore = True


def max_cost(message: Message) -> TokenAmount:
    """What the sender must hold for ``message``: its value plus its maximum gas fee."""
    return message.value + message.required_funds()


def min_replacement_premium(premium: TokenAmount) -> TokenAmount:
    """The least gas premium that replaces a pending message offering ``premium``."""
    return premium + premium * RBF_NUMERATOR // RBF_DENOMINATOR + 1


def base_fee_lower_bound(
    base_fee: TokenAmount, factor: int = BASE_FEE_LOWER_BOUND_FACTOR
) -> TokenAmount:
    """Lotus ``getBaseFeeLowerBound``; by default with the conservative factor."""
    return max(base_fee // factor, MINIMUM_BASE_FEE)


@dataclass(slots=True)
class _SenderMessages:
    """One sender's pending messages by nonce (Lotus ``msgSet``)."""

    next_nonce: int
    by_nonce: dict[int, SignedMessage] = field(default_factory=dict)
    required: TokenAmount = 0

    def advance_over_filled_gap(self) -> None:
        while self.next_nonce in self.by_nonce:
            self.next_nonce += 1

    def required_except(self, nonce: int) -> TokenAmount:
        """Funds the other pending messages need (the one at ``nonce`` is being replaced)."""
        existing = self.by_nonce.get(nonce)
        if existing is None:
            return self.required
        return self.required - max_cost(existing.message)


class MessagePool:
    """Pending signed messages, admitted by Lotus's rules and selected greedily for blocks."""

    def __init__(
        self,
        state_view: StateView,
        network_version: int = NetworkVersion.V18,
        *,
        size_limit: int = DEFAULT_POOL_SIZE_LIMIT,
        size_limit_low: int = DEFAULT_POOL_SIZE_LIMIT_LOW,
        prune_cooldown: float = DEFAULT_PRUNE_COOLDOWN_SECONDS,
        base_fee: TokenAmount | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``base_fee``, when known, is the head's parent base fee (for the soft fee bound and
        for pruning). ``size_limit`` and ``size_limit_low`` are the high- and low-water marks."""
        if not 0 <= size_limit_low <= size_limit:
            raise ValueError(f"low-water mark {size_limit_low} must be within 0..{size_limit}")
        self._state_view = state_view
        self.network_version = network_version
        self._price_list = price_list_for(network_version)
        self.size_limit = size_limit
        self.size_limit_low = size_limit_low
        self.prune_cooldown = prune_cooldown
        self.base_fee = base_fee
        self._clock = clock
        self._senders: dict[Address, _SenderMessages] = {}
        self._by_cid: dict[CID, SignedMessage] = {}
        self._local_senders: set[Address] = set()
        self._last_prune: float | None = None
        self.pruned_total = 0

    # -- queries --------------------------------------------------------------------------

    def pending_count(self) -> int:
        return len(self._by_cid)

    def pending(self) -> list[SignedMessage]:
        """Every pending message, by sender then nonce."""
        return [
            messages.by_nonce[nonce]
            for _, messages in sorted(self._senders.items(), key=lambda item: item[0].to_bytes())
            for nonce in sorted(messages.by_nonce)
        ]

    def get(self, cid: CID) -> SignedMessage | None:
        return self._by_cid.get(cid)

    def __contains__(self, cid: object) -> bool:
        return cid in self._by_cid

    def next_nonce(self, sender: Address) -> int:
        """The nonce the sender's next message should carry (Lotus ``GetNonce``)."""
        state = self._state_view(sender)
        state_nonce = state.nonce if state is not None else 0
        messages = self._senders.get(sender)
        if messages is None:
            return state_nonce
        return max(messages.next_nonce, state_nonce)

    def min_gas(self, signed: SignedMessage) -> int:
        """Gas charged for storing ``signed`` on chain: the least gas limit it may carry."""
        return round_up(self._price_list.on_chain_message(signed.chain_length()).total)

    # -- admission ------------------------------------------------------------------------

    def add(self, signed: SignedMessage, *, local: bool = False) -> bool:
        """Admit ``signed``; ``True`` if it is new, ``False`` if it replaced a pending message.

        ``local`` messages (submitted to this node) may leave any nonce gap, as Lotus's
        ``Push``, and their sender is never pruned; messages from the network (``local=False``,
        Lotus ``Add``) are held to ``MAX_NONCE_GAP`` and to the base-fee lower bound. Raises a
        :class:`MessagePoolError`. An admission that takes the pool above ``size_limit`` prunes
        it (see :meth:`prune`), which may drop the message just admitted, as in Lotus.
        """
        message = signed.message
        cid = signed.cid()
        if cid in self._by_cid:
            raise DuplicateMessage(
                f"message {cid} from {message.from_} with nonce {message.nonce} already pending"
            )
        self.check_message(signed)
        state = self._state_view(message.from_)
        if state is None:
            raise UnknownSender(f"sender {message.from_} has no actor at the current head")
        if message.nonce < state.nonce:
            raise NonceTooLow(
                f"minimum expected nonce for {message.from_} is {state.nonce}, got {message.nonce}"
            )
        if not local and self.base_fee is not None:
            bound = base_fee_lower_bound(self.base_fee)
            if message.gas_fee_cap < bound:
                raise FeeCapBelowBaseFeeBound(
                    f"gas fee cap {message.gas_fee_cap} is below the base fee lower bound {bound}"
                )
        messages = self._senders.get(message.from_)
        self._check_balance(signed, state, messages)
        if messages is None:
            messages = _SenderMessages(next_nonce=state.nonce)
        added = self._insert(signed, cid, messages, strict=not local)
        if local:
            self._local_senders.add(message.from_)
        if added and len(self._by_cid) > self.size_limit:
            self._prune_excess()
        return added

    def check_message(self, signed: SignedMessage) -> None:
        """The state-free checks: size, syntax, minimum gas, fee cap, signature."""
        size = len(signed.encode())
        if size > MAX_MESSAGE_SIZE:
            raise MessageTooBig(f"message of {size} bytes exceeds {MAX_MESSAGE_SIZE}")
        message = signed.message
        try:
            message.valid_for_block_inclusion(self.min_gas(signed), self.network_version)
        except MessageError as exc:
            raise InvalidMessage(f"message will not be included in a block: {exc}") from exc
        if message.value >= TOTAL_FILECOIN:
            raise InvalidMessage("cannot send more filecoin than will ever exist")
        if message.gas_fee_cap < MINIMUM_BASE_FEE:
            raise GasFeeCapTooLow(
                f"gas fee cap {message.gas_fee_cap} is below the minimum base fee "
                f"{MINIMUM_BASE_FEE}"
            )
        self.check_signature(signed)

    @staticmethod
    def check_signature(signed: SignedMessage) -> None:
        """The signature is the sender's, of the type its address protocol calls for."""
        sig_type = signed.signature.sig_type
        sender = signed.message.from_
        if sig_type is SignatureType.DELEGATED:
            raise UnsupportedSignature("delegated (Ethereum) signatures are not supported")
        expected = Protocol.SECP256K1 if sig_type is SignatureType.SECP256K1 else Protocol.BLS
        if sender.protocol is not expected:
            raise SignatureMismatch(
                f"{sig_type.name} signature on a message from {sender} "
                f"(protocol {sender.protocol.name})"
            )
        if not verify_signature(signed.signature, sender, signed.message.cid().to_bytes()):
            raise InvalidSignature(
                f"message {signed.cid()} has an invalid {sig_type.name} signature"
            )

    def _check_balance(
        self, signed: SignedMessage, state: SenderState, messages: _SenderMessages | None
    ) -> None:
        message = signed.message
        required = max_cost(message)
        if state.balance < required:
            raise InsufficientFunds(
                f"not enough funds (required {required}, balance {state.balance})"
            )
        if messages is not None:
            required += messages.required_except(message.nonce)
            if state.balance < required:
                raise InsufficientFundsWithPending(
                    f"not enough funds including pending messages "
                    f"(required {required}, balance {state.balance})"
                )

    def _insert(
        self, signed: SignedMessage, cid: CID, messages: _SenderMessages, *, strict: bool
    ) -> bool:
        """Lotus ``msgSet.add``: place the message at its nonce, replacing by fee if allowed."""
        message = signed.message
        nonce = message.nonce
        next_nonce = messages.next_nonce
        gap = False
        if nonce == next_nonce:
            next_nonce += 1
            while next_nonce in messages.by_nonce:
                next_nonce += 1
        elif strict and nonce > next_nonce + MAX_NONCE_GAP:
            raise NonceGap(
                f"nonce {nonce} is too far past the expected nonce {next_nonce} for {message.from_}"
            )
        elif nonce > next_nonce:
            gap = True

        existing = messages.by_nonce.get(nonce)
        if existing is not None:
            if strict and gap:
                raise NonceGap(
                    f"refusing to replace nonce {nonce} across a nonce gap (expected {next_nonce})"
                )
            least = min_replacement_premium(existing.message.gas_premium)
            if message.gas_premium < least:
                raise ReplaceByFeeTooLow(
                    f"message from {message.from_} with nonce {nonce} already pending; "
                    f"a replacement needs a gas premium of at least {least}, "
                    f"not {message.gas_premium}"
                )
        else:
            if len(messages.by_nonce) >= MAX_PENDING_PER_SENDER:
                raise TooManyPendingMessages(
                    f"{message.from_} already has {len(messages.by_nonce)} pending messages"
                )

        if existing is not None:
            messages.required -= max_cost(existing.message)
            del self._by_cid[existing.cid()]
        messages.next_nonce = next_nonce
        messages.by_nonce[nonce] = signed
        messages.required += max_cost(message)
        self._senders[message.from_] = messages
        self._by_cid[cid] = signed
        return existing is None

    # -- head changes ---------------------------------------------------------------------

    def remove_included(self, messages: Iterable[SignedMessage | Message]) -> None:
        """Forget what a new block applied: each (sender, nonce) is now used (Lotus ``rm``).

        BLS messages appear in blocks unsigned, hence :class:`Message` is accepted too.
        """
        for item in messages:
            message = item.message if isinstance(item, SignedMessage) else item
            pending = self._senders.get(message.from_)
            if pending is None:
                continue
            nonce = message.nonce
            if nonce in pending.by_nonce:
                self._forget(pending, nonce)
                if nonce >= pending.next_nonce:
                    pending.next_nonce = nonce + 1
            elif nonce >= pending.next_nonce:
                pending.next_nonce = nonce + 1
                pending.advance_over_filled_gap()
            self._drop_if_empty(message.from_, pending)

    def on_head_change(self, base_fee: TokenAmount | None = None) -> None:
        """Re-read every sender's state: drop messages whose nonce is now used.

        Call after the head moves (the state view must already answer at the new head).
        """
        if base_fee is not None:
            self.base_fee = base_fee
        for sender, pending in list(self._senders.items()):
            state = self._state_view(sender)
            state_nonce = state.nonce if state is not None else 0
            for nonce in [nonce for nonce in pending.by_nonce if nonce < state_nonce]:
                self._forget(pending, nonce)
            if pending.next_nonce < state_nonce:
                pending.next_nonce = state_nonce
                pending.advance_over_filled_gap()
            self._drop_if_empty(sender, pending)

    def _forget(self, pending: _SenderMessages, nonce: int) -> None:
        """Removes the sender's pending message with ``nonce`` from the pool's indexes."""
        removed = pending.by_nonce.pop(nonce)
        pending.required -= max_cost(removed.message)
        del self._by_cid[removed.cid()]

    def _drop_if_empty(self, sender: Address, pending: _SenderMessages) -> None:
        if not pending.by_nonce:
            self._senders.pop(sender, None)

    # -- pruning --------------------------------------------------------------------------

    def _prune_excess(self) -> None:
        """Lotus ``pruneExcessMessages``: prune unless the last prune is within the cooldown."""
        now = self._clock()
        if self._last_prune is not None and now < self._last_prune + self.prune_cooldown:
            logger.debug("message pool above %d but pruning is cooling down", self.size_limit)
            return
        self._last_prune = now
        self.prune()

    def prune(self, base_fee: TokenAmount | None = None) -> list[SignedMessage]:
        """Lotus ``pruneMessages``: drop all but the best ``size_limit_low`` messages.

        Local senders' messages are all kept and count towards the mark. Everyone else's are
        cut into chains as for selection, priced at the base-fee lower bound of ``base_fee``
        (default: the pool's); chains are taken best first, message by message, while fewer
        than ``size_limit_low`` are kept; the rest, including messages that no chain holds
        (past a nonce gap, unaffordable), are removed. Returns the removed messages.
        """
        fee = base_fee if base_fee is not None else self.base_fee
        bound = base_fee_lower_bound(
            MINIMUM_BASE_FEE if fee is None else fee, PRUNE_BASE_FEE_LOWER_BOUND_FACTOR
        )
        kept = 0
        # Keyed by sender and nonce, which identify a pending message without hashing it.
        doomed: dict[tuple[Address, int], SignedMessage] = {}
        others: list[Address] = []
        for sender in self._senders_in_order():
            pending = self._senders[sender]
            if sender in self._local_senders:
                kept += len(pending.by_nonce)
                continue
            others.append(sender)
            doomed.update(((sender, nonce), signed) for nonce, signed in pending.by_nonce.items())
        chains = self._ranked_chains(others, bound)
        for signed in itertools.chain.from_iterable(chain.messages for chain in chains):
            if kept >= self.size_limit_low:
                break
            del doomed[(signed.message.from_, signed.message.nonce)]
            kept += 1
        for signed in doomed.values():
            self._remove_pruned(signed.message)
        self.pruned_total += len(doomed)
        if doomed:
            logger.info("pruned %d messages from the message pool", len(doomed))
        return list(doomed.values())

    def _remove_pruned(self, message: Message) -> None:
        """Lotus ``msgSet.rm`` for a message that was not applied: the nonce may rewind."""
        pending = self._senders[message.from_]
        self._forget(pending, message.nonce)
        if message.nonce < pending.next_nonce:
            pending.next_nonce = message.nonce
        self._drop_if_empty(message.from_, pending)

    # -- selection ------------------------------------------------------------------------

    def select_messages(
        self,
        base_fee: TokenAmount,
        gas_limit: int = BLOCK_GAS_LIMIT,
        message_limit: int = BLOCK_MESSAGE_LIMIT,
    ) -> list[SignedMessage]:
        """The messages for the next block, best gas performance first (``selectMessagesGreedy``).

        Each sender's messages appear in nonce order starting at its state nonce, without gaps;
        the total gas limit is at most ``gas_limit`` and the count at most ``message_limit``.
        """
        chains = self._ranked_chains(self._senders_in_order(), base_fee)
        selection = _Selection(gas_limit=gas_limit, message_limit=message_limit)
        if not chains or chains[0].gas_perf < 0:
            return []

        last = len(chains)
        for index, chain in enumerate(chains):
            if chain.gas_perf < 0:
                break
            if selection.try_to_add(chain):
                continue
            last = index
            break

        # Tail packing: trim the chain that did not fit, move it down to its new place, and
        # keep adding the chains after it that still fit.
        while selection.gas_limit >= MIN_PACKING_GAS and last < len(chains):
            selection.trim(chains[last], base_fee)
            if chains[last].valid:
                for index in range(last, len(chains) - 1):
                    if _chain_order(chains[index], chains[index + 1]) <= 0:
                        break
                    chains[index], chains[index + 1] = chains[index + 1], chains[index]
            stalled_at: int | None = None
            exhausted = False
            for offset, chain in enumerate(chains[last:]):
                if not chain.valid:
                    continue
                if chain.gas_perf < 0:
                    exhausted = True
                    break
                if selection.try_to_add(chain):
                    continue
                stalled_at = last + offset
                break
            if exhausted or stalled_at is None:
                break
            last = stalled_at
        return selection.messages

    def _senders_in_order(self) -> list[Address]:
        return sorted(self._senders, key=lambda address: address.to_bytes())

    def _ranked_chains(self, senders: Iterable[Address], base_fee: TokenAmount) -> list[_Chain]:
        """The senders' chains (``createMessageChains``), best first."""
        chains = [chain for sender in senders for chain in self._sender_chains(sender, base_fee)]
        chains.sort(key=functools.cmp_to_key(_chain_order))
        return chains

    def _sender_chains(self, sender: Address, base_fee: TokenAmount) -> list[_Chain]:
        """Lotus ``createMessageChains`` for one sender."""
        state = self._state_view(sender)
        if state is None:
            return []
        pending = self._senders[sender]
        nonce = state.nonce
        balance = state.balance
        total_gas = 0
        runnable: list[SignedMessage] = []
        for message_nonce in sorted(pending.by_nonce):
            if message_nonce < nonce:
                continue
            if message_nonce != nonce:
                break
            signed = pending.by_nonce[message_nonce]
            message = signed.message
            if message.gas_limit < self.min_gas(signed):
                break
            total_gas += message.gas_limit
            if total_gas > BLOCK_GAS_LIMIT:
                break
            required = max_cost(message)
            if balance < required:
                break
            balance -= required
            runnable.append(signed)
            nonce += 1
        runnable = runnable[:BLOCK_MESSAGE_LIMIT]
        if not runnable:
            return []

        # First pass: grow a chain while adding the next message does not lower its
        # performance. Second pass: merge a chain into its predecessor while it performs at
        # least as well, so performance strictly decreases along a sender's chains.
        chains: list[_Chain] = []
        for signed in runnable:
            reward = gas_reward(signed.message, base_fee)
            current = chains[-1] if chains else None
            if current is not None:
                merged_perf = gas_performance(
                    current.gas_reward + reward, current.gas_limit + signed.message.gas_limit
                )
                if merged_perf >= current.gas_perf:
                    current.append(signed, reward)
                    continue
            chains.append(_Chain.start(signed, reward))
        merged = True
        while merged:
            merged = False
            for index in range(len(chains) - 1, 0, -1):
                if chains[index].gas_perf >= chains[index - 1].gas_perf:
                    chains[index - 1].absorb(chains[index])
                    chains[index].valid = False
                    merged = True
            chains = [chain for chain in chains if chain.valid]
        for earlier, later in itertools.pairwise(chains):
            earlier.next = later
        return chains


def gas_reward(message: Message, base_fee: TokenAmount) -> int:
    """Lotus ``getGasReward``: the producer's premium * gas limit, tripled when negative."""
    premium = min(message.gas_fee_cap - base_fee, message.gas_premium)
    reward = premium * message.gas_limit
    return reward * NEGATIVE_REWARD_MULTIPLIER if reward < 0 else reward


def gas_performance(reward: int, gas_limit: int) -> float:
    """Lotus ``getGasPerf``: reward * block gas limit / gas limit, as the nearest float."""
    return float(Fraction(reward * BLOCK_GAS_LIMIT, gas_limit))


@dataclass(slots=True, eq=False)
class _Chain:
    """Consecutive messages of one sender that are selected or dropped together."""

    messages: list[SignedMessage]
    gas_reward: int
    gas_limit: int
    gas_perf: float
    sig_type: SignatureType
    valid: bool = True
    next: _Chain | None = None

    @classmethod
    def start(cls, signed: SignedMessage, reward: int) -> _Chain:
        limit = signed.message.gas_limit
        return cls(
            messages=[signed],
            gas_reward=reward,
            gas_limit=limit,
            gas_perf=gas_performance(reward, limit),
            sig_type=signed.signature.sig_type,
        )

    def append(self, signed: SignedMessage, reward: int) -> None:
        self.messages.append(signed)
        self.gas_reward += reward
        self.gas_limit += signed.message.gas_limit
        self.gas_perf = gas_performance(self.gas_reward, self.gas_limit)

    def absorb(self, other: _Chain) -> None:
        self.messages.extend(other.messages)
        self.gas_reward += other.gas_reward
        self.gas_limit += other.gas_limit
        self.gas_perf = gas_performance(self.gas_reward, self.gas_limit)

    def invalidate(self) -> None:
        """Drop this chain and every later chain of the sender (they depend on it)."""
        chain: _Chain | None = self
        while chain is not None:
            chain.valid = False
            chain.messages = []
            following = chain.next
            chain.next = None
            chain = following

    def trim(self, gas_limit: int, message_limit: int, base_fee: TokenAmount) -> None:
        """Lotus ``msgChain.Trim``: drop messages from the end until the chain fits and pays."""
        keep = len(self.messages)
        while keep > 0 and (
            self.gas_limit > gas_limit or self.gas_perf < 0 or keep > message_limit
        ):
            dropped = self.messages[keep - 1].message
            self.gas_reward -= gas_reward(dropped, base_fee)
            self.gas_limit -= dropped.gas_limit
            self.gas_perf = (
                gas_performance(self.gas_reward, self.gas_limit) if self.gas_limit > 0 else 0.0
            )
            keep -= 1
        if keep == 0:
            self.messages = []
            self.valid = False
        else:
            del self.messages[keep:]
        if self.next is not None:
            self.next.invalidate()
            self.next = None


def _chain_order(first: _Chain, second: _Chain) -> int:
    """Lotus ``msgChain.Before`` as a comparison: higher performance, then higher reward first.

    Ties (which Lotus leaves to its unstable sort) keep the order of the sorted senders.
    """
    if first.gas_perf != second.gas_perf:
        return -1 if first.gas_perf > second.gas_perf else 1
    if first.gas_reward != second.gas_reward:
        return -1 if first.gas_reward > second.gas_reward else 1
    return 0


@dataclass(slots=True)
class _Selection:
    """Messages chosen so far and what is left of the block's limits."""

    gas_limit: int
    message_limit: int
    secp_limit: int = BLOCK_MESSAGES_PER_KIND_LIMIT
    bls_limit: int = BLOCK_MESSAGES_PER_KIND_LIMIT
    messages: list[SignedMessage] = field(default_factory=list)

    def _kind_limit(self, chain: _Chain) -> int:
        kind = self.bls_limit if chain.sig_type is SignatureType.BLS else self.secp_limit
        return min(kind, self.message_limit - len(self.messages))

    def try_to_add(self, chain: _Chain) -> bool:
        """Lotus ``selectedMessages.tryToAdd``: take the whole chain if it fits."""
        count = len(chain.messages)
        if count > self._kind_limit(chain) or chain.gas_limit > self.gas_limit:
            return False
        self.messages.extend(chain.messages)
        self.gas_limit -= chain.gas_limit
        if chain.sig_type is SignatureType.BLS:
            self.bls_limit -= count
        else:
            self.secp_limit -= count
        return True

    def trim(self, chain: _Chain, base_fee: TokenAmount) -> None:
        """Lotus ``selectedMessages.trimChain``: cut ``chain`` to what is left of the block."""
        limit = self._kind_limit(chain)
        if chain.gas_limit > self.gas_limit or len(chain.messages) > limit:
            chain.trim(self.gas_limit, limit, base_fee)
