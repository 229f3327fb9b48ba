"""Block validation without proof verification: everything the sync checks before accepting a
block on top of a parent tipset it has already executed.

Ported from Lotus ``chain/consensus/filcns/filecoin.go`` (``ValidateBlock``,
``blockSanityChecks``) and ``chain/consensus/common.go`` (``CommonBlkChecks``,
``checkBlockMessages``, ``IsValidForSending``), ``chain/consensus/signatures.go``
(``AuthenticateMessage``, ``IsValidSecpkSigType``), ``chain/consensus/utils.go``
(``VerifyBlsAggregate``), ``chain/stmgr/actors.go`` (``GetMinerWorkerRaw``) and
``chain/vm/vm.go`` (``ResolveToDeterministicAddr``). Checks, in order:

1. sanity: ticket, election proof, block signature and BLS aggregate present; ID miner address;
2. the header against its parent: parents are the parent tipset's key, height above the
   parent's, timestamp exactly ``parent min timestamp + block delay * (height - parent height)``
   and not beyond ``now + 1 s`` drift (:attr:`Reason.FROM_THE_FUTURE`, a temporal failure the
   sync may retry: Lotus's ``ErrTemporal``);
3. parent weight, state root, receipts root and base fee against the values the caller computed
   by executing the parent tipset (:class:`ParentContext`);
4. the miner's worker key — the miner actor's ``MinerInfo.worker`` resolved to a key address —
   and the block signature over the header's signing bytes;
5. the consensus profile's leader checks (ticket, election, winning PoSt:
   :mod:`chainsync.consensus_profile`);
6. the messages (``checkBlockMessages``): the BLS aggregate over the BLS messages' CIDs with
   their senders' keys; each message valid for block inclusion (``ValidForBlockInclusion`` with
   the on-chain message gas of its chain length) and the running gas limit sum at most the
   block gas limit; senders that exist and may send (account actors; from network version 18
   also Ethereum accounts and fresh placeholders with an EAM f4 address) and nonces that count
   up from the sender's in the parent state; secp256k1 messages of an allowed signature type
   signed by their sender's key; the ``Messages`` link equal to the MsgMeta computed from the
   message CIDs (:func:`chainsync.messages_root.compute_msg_meta`).

Differences from Lotus, all documented at the parameter concerned: the worker is read at
``ParentContext.worker_state_root`` (Lotus uses the winning-PoSt lookback state); the message
gas price list is chosen by network version (Lotus by epoch, which differs only at an upgrade
epoch itself); delegated (Ethereum) signatures are checked only by a caller-supplied
authenticator, for lack of an RLP encoder here. Like Lotus, no balance check is made here: a
sender that cannot pay fails when the message is applied, not the block.

Every failure raises :class:`BlockValidationError` with a :class:`Reason` code for metrics and
peer scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from chainsync.chain_types import BeaconEntry, FullBlock, TipSet
from chainsync.messages_root import compute_msg_meta
from fvm.actor_schemas import Struct, decode_state, decode_value, schema_for
from fvm.actor_state import ActorState
from fvm.address import EAM_ACTOR_ADDR, Address, Protocol
from fvm.crypto import bls
from fvm.crypto.signature_verify import verify_signature
from fvm.gas.price_list import price_list_for
from fvm.message import BLOCK_GAS_LIMIT, Message, MessageError, SignedMessage
from fvm.network_version import NetworkVersion, StateTreeVersion
from fvm.signature import Signature, SignatureType
from fvm.state_tree import StateTree
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore, get_required
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

if TYPE_CHECKING:
    from chainsync.consensus_profile import ConsensusProfile

ALLOWABLE_CLOCK_DRIFT_SECS: Final = 1
MILLIGAS_PER_GAS: Final = 1000


class Reason(Enum):
    """Why a block was refused; the value is the metrics label."""

    MISSING_FIELD = "missing_field"
    NON_ID_MINER = "non_id_miner"
    WRONG_PARENTS = "wrong_parents"
    HEIGHT = "height_not_above_parent"
    TIMESTAMP = "wrong_timestamp"
    FROM_THE_FUTURE = "from_the_future"
    PARENT_WEIGHT = "parent_weight_mismatch"
    PARENT_STATE_ROOT = "parent_state_root_mismatch"
    PARENT_RECEIPTS = "parent_receipts_mismatch"
    PARENT_BASE_FEE = "parent_base_fee_mismatch"
    UNKNOWN_MINER = "unknown_miner"
    BLOCK_SIGNATURE = "bad_block_signature"
    NOT_WINNING = "not_winning"
    ELECTION_PROOF = "bad_election_proof"
    TICKET = "bad_ticket"
    WINNING_POST = "bad_winning_post"
    BLS_AGGREGATE = "bad_bls_aggregate"
    INVALID_MESSAGE = "invalid_message"
    GAS_LIMIT = "block_gas_limit_exceeded"
    SENDER = "invalid_sender"
    NONCE = "wrong_nonce"
    SIGNATURE_TYPE = "invalid_signature_type"
    MESSAGE_SIGNATURE = "bad_message_signature"
    UNVERIFIABLE_SIGNATURE = "unverifiable_signature"
    MESSAGES_ROOT = "messages_root_mismatch"


class BlockValidationError(MalformedInput):
    """A block that is not valid on its parent; ``reason`` says which rule it broke."""

    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


class KeyResolutionError(FvmNodeError, LookupError):
    """An address that does not lead to a key address in a state tree."""


# -- state lookups -------------------------------------------------------------------------


ActorNameOf = Callable[[CID], "str | None"]
"""Maps an actor's code CID to its builtin type name (``Manifest.name_of``)."""


def resolve_key_address(tree: StateTree, address: Address, actor_name_of: ActorNameOf) -> Address:
    """Lotus ``ResolveToDeterministicAddr``: key addresses (BLS, secp256k1, delegated) are
    themselves; otherwise the actor's delegated address (state tree v5+) or its account
    state's public key address. Raises :class:`KeyResolutionError`."""
    if address.protocol in (Protocol.BLS, Protocol.SECP256K1, Protocol.DELEGATED):
        return address
    actor = tree.get_actor(address)
    if actor is None:
        raise KeyResolutionError(f"failed to find actor: {address}")
    if tree.version >= StateTreeVersion.V5 and actor.delegated_address is not None:
        return actor.delegated_address
    if actor_name_of(actor.code) != "account":
        raise KeyResolutionError(f"actor {address} is not an account actor")
    raw = get_required(tree.store, actor.state)
    value = dag_cbor.decode(raw, f"account state {actor.state}")
    if type(value) is not list or len(value) != 1:
        raise KeyResolutionError(f"account state of {address} is not [address]")
    return Address.from_cbor(value[0], f"account state {actor.state}")


def miner_worker(
    tree: StateTree, miner: Address, actors_version: int, actor_name_of: ActorNameOf
) -> Address:
    """The miner actor's ``MinerInfo.worker`` (usually an ID address). Raises
    :class:`KeyResolutionError` if there is no such miner, :class:`MalformedInput` if its state
    does not decode."""
    store = tree.store
    actor = tree.get_actor(miner)
    if actor is None:
        raise KeyResolutionError(f"no miner actor {miner}")
    if actor_name_of(actor.code) != "storageminer":
        raise KeyResolutionError(f"actor {miner} is not a storage miner")
    where = f"miner state {actor.state}"
    state = decode_state(
        actors_version, "storageminer", dag_cbor.decode(get_required(store, actor.state), where)
    )
    info_cid: CID = state["info"]
    info_where = f"miner info {info_cid}"
    info: dict[str, Any] = decode_value(
        schema_for(actors_version),
        Struct("miner.MinerInfo"),
        dag_cbor.decode(get_required(store, info_cid), info_where),
        info_where,
    )
    worker: Address = info["worker"]
    return worker


def miner_worker_key(
    store: Blockstore,
    state_root: CID,
    miner: Address,
    actors_version: int,
    actor_name_of: ActorNameOf,
) -> Address:
    """Lotus ``GetMinerWorkerRaw``: the miner's worker at ``state_root`` resolved to its key
    address (what signs the miner's blocks)."""
    tree = StateTree(store, state_root)
    worker = miner_worker(tree, miner, actors_version, actor_name_of)
    return resolve_key_address(tree, worker, actor_name_of)


def is_valid_for_sending(
    network_version: int, actor: ActorState, actor_name_of: ActorNameOf
) -> bool:
    """Lotus ``IsValidForSending``: may this actor be a message's sender?"""
    name = actor_name_of(actor.code)
    if network_version < NetworkVersion.V18:
        return name == "account"
    if name in ("account", "ethaccount"):
        return True
    delegated = actor.delegated_address
    return (
        name == "placeholder"
        and actor.sequence == 0
        and delegated is not None
        and delegated.protocol is Protocol.DELEGATED
        and delegated.namespace == EAM_ACTOR_ADDR.id
    )


def is_valid_secpk_signature_type(network_version: int, sig_type: SignatureType) -> bool:
    """Lotus ``IsValidSecpkSigType``: secp256k1, and from network version 18 delegated."""
    if network_version < NetworkVersion.V18:
        return sig_type is SignatureType.SECP256K1
    return sig_type in (SignatureType.SECP256K1, SignatureType.DELEGATED)


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParentContext:
    """The parent tipset and what the caller computed from it.

    ``state_root`` / ``receipts_root``: the result of executing ``tipset``;
    ``weight``: the profile's weight of ``tipset``; ``base_fee``:
    :func:`chainsync.base_fee.compute_base_fee` of ``tipset``; ``prev_beacon``: the latest
    beacon entry in the chain up to ``tipset``; ``worker_state_root``: the state to read the
    miner's worker from (None: ``state_root``).
    """

    tipset: TipSet
    state_root: CID
    receipts_root: CID
    weight: int
    base_fee: int
    prev_beacon: BeaconEntry
    worker_state_root: CID | None = None


@dataclass(frozen=True, slots=True)
class ChainRules:
    """What the block's height implies: the network version, the actors version whose state
    schemas apply, and the actor type of a code CID (the bundle manifest's ``name_of``).

    ``delegated_authenticator(message, key_address)``, if given, checks an Ethereum-style
    (delegated) signature; without it such messages are refused as unverifiable.
    """

    network_version: int
    actors_version: int
    actor_name_of: ActorNameOf
    delegated_authenticator: Callable[[SignedMessage, Address], bool] | None = None


MessagesRootOf = Callable[[Blockstore, Sequence[CID], Sequence[CID]], CID]


# -- the checks ------------------------------------------------------------------------------


def check_sanity(block: FullBlock) -> None:
    """Lotus ``blockSanityChecks``."""
    header = block.header
    for present, name in (
        (header.election_proof is not None, "election proof"),
        (header.ticket is not None, "ticket"),
        (header.block_sig is not None, "signature"),
        (header.bls_aggregate is not None, "bls aggregate signature"),
    ):
        if not present:
            raise BlockValidationError(Reason.MISSING_FIELD, f"block had nil {name}")
    if header.miner.protocol is not Protocol.ID:
        raise BlockValidationError(Reason.NON_ID_MINER, "block had non-ID miner address")


def check_header_against_parent(
    block: FullBlock, parent: ParentContext, block_delay_secs: int, now: int
) -> None:
    """Parents, height, timestamp (exact, and not from the future), and the parent's computed
    weight, state root, receipts root and base fee."""
    header = block.header
    base = parent.tipset
    if header.parents != base.cids:
        raise BlockValidationError(
            Reason.WRONG_PARENTS, f"block parents are not the parent tipset {base.key}"
        )
    if header.height <= base.height:
        raise BlockValidationError(
            Reason.HEIGHT,
            f"block height not greater than parent height: {header.height} <= {base.height}",
        )
    expected = base.min_timestamp + block_delay_secs * (header.height - base.height)
    if header.timestamp != expected:
        raise BlockValidationError(
            Reason.TIMESTAMP, f"block has wrong timestamp: {header.timestamp} != {expected}"
        )
    if header.timestamp > now + ALLOWABLE_CLOCK_DRIFT_SECS:
        raise BlockValidationError(
            Reason.FROM_THE_FUTURE, f"block was from the future (now={now}, blk={header.timestamp})"
        )
    for reason, stated, computed in (
        (Reason.PARENT_WEIGHT, header.parent_weight, parent.weight),
        (Reason.PARENT_STATE_ROOT, header.parent_state_root, parent.state_root),
        (Reason.PARENT_RECEIPTS, header.parent_message_receipts, parent.receipts_root),
        (Reason.PARENT_BASE_FEE, header.parent_base_fee, parent.base_fee),
    ):
        if stated != computed:
            raise BlockValidationError(reason, f"{stated} (header) != {computed} (computed)")


def check_block_signature(block: FullBlock, worker: Address) -> None:
    """Lotus ``CheckBlockSignature``: the worker signed the header's signing bytes."""
    signature = block.header.block_sig
    if signature is None:
        raise BlockValidationError(Reason.MISSING_FIELD, "block signature not present")
    if not verify_signature(signature, worker, block.header.signing_bytes()):
        raise BlockValidationError(
            Reason.BLOCK_SIGNATURE, f"block signature is not by worker {worker}"
        )


def _min_gas(network_version: int, chain_length: int) -> int:
    charge = price_list_for(network_version).on_chain_message(chain_length)
    return charge.total // MILLIGAS_PER_GAS


class _StateKeys:
    """Key-address resolution as Lotus's ``ResolveToDeterministicAddress`` does it: first in
    the parent tipset's own parent state, then in the state computed from it."""

    def __init__(
        self, store: Blockstore, first: CID, computed: StateTree, actor_name_of: ActorNameOf
    ) -> None:
        self._store = store
        self._first_root = first
        self._first: StateTree | None = None
        self._computed = computed
        self._actor_name_of = actor_name_of

    def _first_tree(self) -> StateTree:
        if self._first is None:
            self._first = StateTree(self._store, self._first_root)
        return self._first

    def key_of(self, address: Address) -> Address:
        try:
            return resolve_key_address(self._first_tree(), address, self._actor_name_of)
        except FvmNodeError:
            pass
        try:
            return resolve_key_address(self._computed, address, self._actor_name_of)
        except FvmNodeError as exc:
            raise KeyResolutionError(f"failed to resolve key address of {address}: {exc}") from None


def check_block_messages(
    block: FullBlock,
    parent: ParentContext,
    store: Blockstore,
    rules: ChainRules,
    messages_root_of: MessagesRootOf = compute_msg_meta,
) -> None:
    """Lotus ``checkBlockMessages``; raises :class:`BlockValidationError`."""
    header = block.header
    nv = rules.network_version
    computed = StateTree(store, parent.state_root)
    keys = _StateKeys(store, parent.tipset.parent_state, computed, rules.actor_name_of)

    _check_bls_aggregate(block, keys)

    nonces: dict[Address, int] = {}
    gas_limit_sum = 0

    def check_message(message: Message, chain_length: int, what: str) -> None:
        nonlocal gas_limit_sum
        try:
            message.valid_for_block_inclusion(_min_gas(nv, chain_length), nv)
        except MessageError as exc:
            raise BlockValidationError(
                Reason.INVALID_MESSAGE, f"{what} {message.cid()} invalid for block inclusion: {exc}"
            ) from None
        gas_limit_sum += message.gas_limit
        if gas_limit_sum > BLOCK_GAS_LIMIT:
            raise BlockValidationError(Reason.GAS_LIMIT, "block gas limit exceeded")
        sender = message.from_
        if nv >= NetworkVersion.V13:
            sender_id = computed.lookup_id(sender)
            if sender_id is None:
                raise BlockValidationError(
                    Reason.SENDER, f"{what}: failed to lookup sender {message.from_}"
                )
            sender = Address.new_id(sender_id)
        if sender not in nonces:
            actor = computed.get_actor(sender)
            if actor is None:
                raise BlockValidationError(Reason.SENDER, f"{what}: sender {sender} not found")
            if not is_valid_for_sending(nv, actor, rules.actor_name_of):
                raise BlockValidationError(Reason.SENDER, f"{what}: sender must be an account")
            nonces[sender] = actor.sequence
        if nonces[sender] != message.sequence:
            raise BlockValidationError(
                Reason.NONCE,
                f"{what}: wrong nonce (exp: {nonces[sender]}, got: {message.sequence})",
            )
        nonces[sender] += 1

    for index, message in enumerate(block.bls_messages):
        check_message(message, message.chain_length(), f"bls message {index}")
    for index, signed in enumerate(block.secpk_messages):
        what = f"secpk message {index}"
        if nv >= NetworkVersion.V14 and not is_valid_secpk_signature_type(
            nv, signed.signature.sig_type
        ):
            raise BlockValidationError(
                Reason.SIGNATURE_TYPE, f"{what} has signature type {signed.signature.sig_type}"
            )
        check_message(signed.message, signed.chain_length(), what)
        try:
            key = keys.key_of(signed.message.from_)
        except KeyResolutionError as exc:
            raise BlockValidationError(Reason.SENDER, f"{what}: {exc}") from None
        _authenticate(signed, key, rules, what)

    scratch = MemoryBlockstore()
    root = messages_root_of(
        scratch,
        [message.cid() for message in block.bls_messages],
        [signed.cid() for signed in block.secpk_messages],
    )
    if root != header.messages:
        raise BlockValidationError(
            Reason.MESSAGES_ROOT, f"messages root {root} does not match the header's"
        )


def _check_bls_aggregate(block: FullBlock, keys: _StateKeys) -> None:
    """Lotus ``VerifyBlsAggregate`` over the BLS messages' CIDs and senders' public keys."""
    if not block.bls_messages:
        return
    aggregate = block.header.bls_aggregate
    if aggregate is None:
        raise BlockValidationError(Reason.MISSING_FIELD, "block had nil bls aggregate signature")
    cids: list[bytes] = []
    public_keys: list[bytes] = []
    for index, message in enumerate(block.bls_messages):
        try:
            key = keys.key_of(message.from_)
        except KeyResolutionError as exc:
            raise BlockValidationError(Reason.SENDER, f"bls message {index}: {exc}") from None
        if key.protocol is not Protocol.BLS:
            raise BlockValidationError(
                Reason.SENDER, f"bls message {index}: sender {key} has no BLS key"
            )
        cids.append(message.cid().to_bytes())
        public_keys.append(key.payload)
    if not bls.verify_aggregate(aggregate.data, cids, public_keys):
        raise BlockValidationError(Reason.BLS_AGGREGATE, "bls aggregate signature failed to verify")


def _authenticate(signed: SignedMessage, key: Address, rules: ChainRules, what: str) -> None:
    """Lotus ``AuthenticateMessage``."""
    signature: Signature = signed.signature
    if signature.sig_type is SignatureType.DELEGATED:
        authenticator = rules.delegated_authenticator
        if authenticator is None:
            raise BlockValidationError(
                Reason.UNVERIFIABLE_SIGNATURE, f"{what}: no verifier for delegated signatures"
            )
        valid = authenticator(signed, key)
    else:
        valid = verify_signature(signature, key, signed.message.cid().to_bytes())
    if not valid:
        raise BlockValidationError(
            Reason.MESSAGE_SIGNATURE, f"{what}: invalid signature for message {signed.cid()}"
        )


def validate_block(
    block: FullBlock,
    parent: ParentContext,
    *,
    store: Blockstore,
    profile: ConsensusProfile,
    rules: ChainRules,
    now: int,
    messages_root_of: MessagesRootOf = compute_msg_meta,
) -> None:
    """Lotus ``ValidateBlock`` without proof verification (the profile's winning PoSt
    verifier decides that). ``now`` is the Unix time in seconds. Raises
    :class:`BlockValidationError`. Missing state blocks raise
    :class:`~store.errors.BlockNotFound` and undecodable actor state other
    :class:`~store.errors.MalformedInput` errors: the caller's state is at fault, not the block.
    """
    check_sanity(block)
    check_header_against_parent(block, parent, profile.block_delay_secs, now)
    worker_root = parent.worker_state_root or parent.state_root
    try:
        worker = miner_worker_key(
            store, worker_root, block.header.miner, rules.actors_version, rules.actor_name_of
        )
    except KeyResolutionError as exc:
        raise BlockValidationError(Reason.UNKNOWN_MINER, str(exc)) from None
    check_block_signature(block, worker)
    profile.check_leader(block.header, parent.tipset, worker, parent.prev_beacon)
    check_block_messages(block, parent, store, rules, messages_root_of)
