"""The messages the devnet load generator sends, their return values, and their gas.

``fvm-node devnet load`` keeps the devnet busy with the kinds of messages mainnet carries: value
transfers from secp256k1 and BLS accounts, multisig wallets (created through the init actor,
then a transfer proposed by one signer and approved by another) and an EVM contract deployed
through the Ethereum Address Manager and called. Each builder returns an unsigned
:class:`~fvm.message.Message` with the method number and DAG-CBOR parameters the actors v10
bundle (network version 18) expects; gas fields are left at zero for :func:`with_gas`.

Method numbers and parameter layouts, builtin-actors at ``v10.0.0``:

* init ``Exec`` = 2 (``actors/init/src/lib.rs``), params ``[code_cid, constructor_params]``,
  returns ``[id_address, robust_address]`` (``actors/init/src/types.rs``); only multisig and
  payment-channel code may be exec'd by an account (``can_exec``);
* multisig constructor params ``[signers, num_approvals_threshold, unlock_duration,
  start_epoch]``; ``Propose`` = 2, params ``[to, value, method, params]``, returns ``[txn_id,
  applied, code, ret]``; ``Approve`` = 3, params ``[id, proposal_hash]``, returns ``[applied,
  code, ret]`` (``actors/multisig/src/{lib,types}.rs``). The proposal hash is the blake2b-256
  of the DAG-CBOR ``[requester, to, value, method, params]`` where the requester is the first
  approver, i.e. the proposer's *ID* address (``compute_proposal_hash``); an empty hash skips
  the check, a wrong one fails with ``USR_ILLEGAL_ARGUMENT``;
* EAM ``CreateExternal`` = 4 (``actors/eam/src/lib.rs``), params the init code as one CBOR
  byte string, returns ``[actor_id, robust_address | null, eth_address]``. It must be the
  top-level message (the immediate caller must be the origin) and the sender must be an
  ``Account`` (f1 or f3 key; the contract's Ethereum address is derived from keccak-256 of the
  key address and the nonce) or an ``EthAccount`` (f4); placeholders and other actors are
  refused with ``USR_FORBIDDEN``;
* EVM ``InvokeContract`` = FRC-0042 hash of ``"InvokeEVM"`` = 3844450837
  (``actors/evm/src/lib.rs``), params and return the call/return data as one CBOR byte string.

Gas follows Lotus (``node/impl/full/gas.go`` at v1.20.0, ``GasEstimateMessageGas``): the gas
limit is the gas the message uses when run against the current state with the block gas limit
and zero fee cap and premium, times 1.25 (``GasLimitOverestimation``, ``chain/messagepool/
config.go``); the premium is Lotus's floor ``MinGasPremium`` = 100 000 attoFIL (a devnet has
no history of premiums to take a median of, and no random noise is added, so loads are
reproducible); the fee cap is the base fee after 20 blocks of maximal growth (1.125^20,
``GasEstimateFeeCap``) plus the premium; ``CapGasFee`` then limits fee cap * gas limit to
0.07 FIL (``DefaultMaxFee``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, TypeAlias

from fvm.address import Address, AddressError, Protocol
from fvm.crypto.hashes import blake2b_256, blake2b_512
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import ApplyKind, Executor
from fvm.externs import Externs
from fvm.invocation import ActorInvoker
from fvm.machine import EAM_ACTOR_ID, INIT_ACTOR_ID, Machine, MachineContext
from fvm.message import BLOCK_GAS_LIMIT, MAX_I64, MAX_U64, MIN_I64, Message, SignedMessage
from fvm.receipt import MAX_U32, ExitCode, Receipt
from fvm.signature import SECP_SIG_LEN, Signature, SignatureType
from fvm.token import FILECOIN_PRECISION, TokenAmount, encode_bigint
from store import dag_cbor
from store.blockstore import Blockstore
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

# -- method numbers -------------------------------------------------------------------------

FRC42_FIRST_METHOD_NUMBER: Final = 1 << 24


def frc42_method_number(name: str) -> int:
    """FRC-0042: the first 4-byte big-endian word of blake2b-512("1|" + name) that is at
    least 2^24 (smaller numbers are reserved)."""
    digest = blake2b_512(b"1|" + name.encode())
    for start in range(0, len(digest), 4):
        number = int.from_bytes(digest[start : start + 4], "big")
        if number >= FRC42_FIRST_METHOD_NUMBER:
            return number
    raise ValueError(f"no FRC-0042 method number for {name!r}")


METHOD_SEND: Final = 0
INIT_EXEC_METHOD: Final = 2
MULTISIG_PROPOSE_METHOD: Final = 2
MULTISIG_APPROVE_METHOD: Final = 3
EAM_CREATE_EXTERNAL_METHOD: Final = 4
EVM_INVOKE_CONTRACT_METHOD: Final = frc42_method_number("InvokeEVM")

INIT_ACTOR_ADDRESS: Final = Address.new_id(INIT_ACTOR_ID)
EAM_ACTOR_ADDRESS: Final = Address.new_id(EAM_ACTOR_ID)
ETH_ADDRESS_BYTES: Final = 20

# -- builders -------------------------------------------------------------------------------


def transfer(*, sender: Address, nonce: int, to: Address, value: TokenAmount) -> Message:
    """A plain value transfer (method 0, no parameters)."""
    return Message(to=to, from_=sender, sequence=nonce, value=value, method_num=METHOD_SEND)


def multisig_constructor_params(
    signers: Sequence[Address], threshold: int, unlock_duration: int = 0, start_epoch: int = 0
) -> bytes:
    """The multisig actor's ``ConstructorParams``."""
    return dag_cbor.encode(
        [[signer.to_bytes() for signer in signers], threshold, unlock_duration, start_epoch]
    )


def create_multisig(
    *,
    sender: Address,
    nonce: int,
    multisig_code: CID,
    signers: Sequence[Address],
    threshold: int,
    unlock_duration: int = 0,
    start_epoch: int = 0,
    value: TokenAmount = 0,
) -> Message:
    """Init ``Exec`` of the multisig code (from the bundle's manifest) with ``value`` as the
    wallet's first balance."""
    params = dag_cbor.encode(
        [
            multisig_code,
            multisig_constructor_params(signers, threshold, unlock_duration, start_epoch),
        ]
    )
    return Message(
        to=INIT_ACTOR_ADDRESS,
        from_=sender,
        sequence=nonce,
        value=value,
        method_num=INIT_EXEC_METHOD,
        params=params,
    )


def propose(
    *,
    sender: Address,
    nonce: int,
    multisig: Address,
    to: Address,
    value: TokenAmount,
    method: int = METHOD_SEND,
    params: bytes = b"",
) -> Message:
    """Multisig ``Propose`` of a call from the wallet (by default a plain transfer)."""
    return Message(
        to=multisig,
        from_=sender,
        sequence=nonce,
        method_num=MULTISIG_PROPOSE_METHOD,
        params=dag_cbor.encode([to.to_bytes(), encode_bigint(value), method, params]),
    )


def proposal_hash(
    *,
    proposer: Address,
    to: Address,
    value: TokenAmount,
    method: int = METHOD_SEND,
    params: bytes = b"",
) -> bytes:
    """The hash ``Approve`` checks: ``proposer`` is the proposer's ID address, the rest as
    proposed (``to`` exactly as given in the proposal, not resolved)."""
    if proposer.protocol is not Protocol.ID:
        raise ValueError(f"the requester in a proposal hash is an ID address, not {proposer}")
    data = dag_cbor.encode(
        [proposer.to_bytes(), to.to_bytes(), encode_bigint(value), method, params]
    )
    return blake2b_256(data)


def approve(
    *, sender: Address, nonce: int, multisig: Address, txn_id: int, proposal_hash: bytes
) -> Message:
    """Multisig ``Approve`` of pending transaction ``txn_id`` (``proposal_hash`` may be empty
    to skip the check)."""
    return Message(
        to=multisig,
        from_=sender,
        sequence=nonce,
        method_num=MULTISIG_APPROVE_METHOD,
        params=dag_cbor.encode([txn_id, proposal_hash]),
    )


def create_evm_contract(
    *, sender: Address, nonce: int, initcode: bytes, value: TokenAmount = 0
) -> Message:
    """EAM ``CreateExternal``: deploy an EVM contract from an account or an eth account."""
    return Message(
        to=EAM_ACTOR_ADDRESS,
        from_=sender,
        sequence=nonce,
        value=value,
        method_num=EAM_CREATE_EXTERNAL_METHOD,
        params=dag_cbor.encode(bytes(initcode)),
    )


def invoke_evm_contract(
    *, sender: Address, nonce: int, contract: Address, calldata: bytes, value: TokenAmount = 0
) -> Message:
    """EVM ``InvokeContract`` with ``calldata`` (selector and ABI-encoded arguments)."""
    return Message(
        to=contract,
        from_=sender,
        sequence=nonce,
        value=value,
        method_num=EVM_INVOKE_CONTRACT_METHOD,
        params=dag_cbor.encode(bytes(calldata)),
    )


def eth_address_to_f4(eth_address: bytes) -> Address:
    """The f4 address (EAM namespace 10) of a 20-byte Ethereum address."""
    if len(eth_address) != ETH_ADDRESS_BYTES:
        raise ValueError(f"an Ethereum address has 20 bytes, not {len(eth_address)}")
    return Address.new_delegated(EAM_ACTOR_ID, eth_address)


# -- return values --------------------------------------------------------------------------


class ActorReturnError(MalformedInput):
    """Return data that is not the value the method returns."""


@dataclass(frozen=True, slots=True)
class ExecReturn:
    """Init ``Exec``: the new actor's ID address and its reorg-stable (f2) address."""

    id_address: Address
    robust_address: Address


@dataclass(frozen=True, slots=True)
class ProposeReturn:
    """Multisig ``Propose``: ``code`` and ``ret`` only mean something when ``applied``."""

    txn_id: int
    applied: bool
    code: int
    ret: bytes


@dataclass(frozen=True, slots=True)
class ApproveReturn:
    applied: bool
    code: int
    ret: bytes


@dataclass(frozen=True, slots=True)
class EamCreateReturn:
    """EAM create: the contract's actor ID, f2 address (None when a dead contract was
    resurrected) and 20-byte Ethereum address."""

    actor_id: int
    robust_address: Address | None
    eth_address: bytes

    @property
    def f4_address(self) -> Address:
        return eth_address_to_f4(self.eth_address)


def _fields(data: bytes, count: int, what: str) -> list[Any]:
    value = dag_cbor.decode(data, what)
    if type(value) is not list or len(value) != count:
        raise ActorReturnError(f"{what} must be an array of {count} fields")
    return value


def _address(value: Any, what: str) -> Address:
    if type(value) is not bytes:
        raise ActorReturnError(f"{what} must be an address byte string")
    try:
        return Address.from_bytes(value, what)
    except AddressError as exc:
        raise ActorReturnError(f"{what} is not an address: {exc}") from None


def _int(value: Any, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ActorReturnError(f"{what} must be an integer in [{low}, {high}]")
    return value


def _bool(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise ActorReturnError(f"{what} must be a boolean")
    return value


def _bytes(value: Any, what: str) -> bytes:
    if type(value) is not bytes:
        raise ActorReturnError(f"{what} must be a byte string")
    return value


def decode_exec_return(data: bytes) -> ExecReturn:
    id_field, robust_field = _fields(data, 2, "init Exec return")
    id_address = _address(id_field, "init Exec id_address")
    if id_address.protocol is not Protocol.ID:
        raise ActorReturnError(f"init Exec id_address {id_address} is not an ID address")
    return ExecReturn(id_address, _address(robust_field, "init Exec robust_address"))


def decode_propose_return(data: bytes) -> ProposeReturn:
    txn_id, applied, code, ret = _fields(data, 4, "multisig Propose return")
    return ProposeReturn(
        _int(txn_id, MIN_I64, MAX_I64, "Propose txn_id"),
        _bool(applied, "Propose applied"),
        _int(code, 0, MAX_U32, "Propose code"),
        _bytes(ret, "Propose ret"),
    )


def decode_approve_return(data: bytes) -> ApproveReturn:
    applied, code, ret = _fields(data, 3, "multisig Approve return")
    return ApproveReturn(
        _bool(applied, "Approve applied"),
        _int(code, 0, MAX_U32, "Approve code"),
        _bytes(ret, "Approve ret"),
    )


def decode_eam_create_return(data: bytes) -> EamCreateReturn:
    actor_id, robust, eth_address = _fields(data, 3, "EAM create return")
    eth = _bytes(eth_address, "EAM create eth_address")
    if len(eth) != ETH_ADDRESS_BYTES:
        raise ActorReturnError(f"EAM create eth_address has {len(eth)} bytes, not 20")
    return EamCreateReturn(
        _int(actor_id, 0, MAX_U64, "EAM create actor_id"),
        None if robust is None else _address(robust, "EAM create robust_address"),
        eth,
    )


def decode_evm_return(data: bytes) -> bytes:
    """The EVM's return data. ``InvokeContract`` always returns a byte string, even an empty
    one; a receipt with no return value at all (a send to an address with no code yet) decodes
    to no bytes too."""
    if not data:
        return b""
    return _bytes(dag_cbor.decode(data, "EVM InvokeContract return"), "EVM return data")


# -- gas ------------------------------------------------------------------------------------

# Lotus chain/messagepool/config.go GasLimitOverestimation = 1.25, applied in integers:
# int64(float64(used) * 1.25) equals used * 5 // 4 for every gas amount below 2^50.
GAS_LIMIT_OVERESTIMATION_NUM: Final = 5
GAS_LIMIT_OVERESTIMATION_DEN: Final = 4
# Lotus node/impl/full/gas.go MinGasPremium.
MIN_GAS_PREMIUM: Final = 100_000
# GasEstimateMessageGas asks GasEstimateFeeCap for 20 blocks of base-fee growth.
FEE_CAP_QUEUE_BLOCKS: Final = 20
# build.BaseFeeMaxChangeDenom: the base fee changes by at most 1/8 per epoch.
BASE_FEE_MAX_CHANGE_DENOM: Final = 8
# node/config/def.go DefaultDefaultMaxFee = 0.07 FIL.
DEFAULT_MAX_FEE: Final = 7 * FILECOIN_PRECISION // 100

TrialApply: TypeAlias = Callable[[Message], Receipt]
"""Runs a message against a throwaway copy of the current state and returns its receipt."""


class GasEstimationFailed(FvmNodeError):
    """The trial run of a message did not exit OK, so it has no gas estimate."""

    def __init__(self, message: Message, receipt: Receipt) -> None:
        self.exit_code = receipt.exit_code
        self.receipt = receipt
        super().__init__(
            f"gas estimation failed: message to {message.to} method {message.method_num} "
            f"exited {receipt.exit_code}"
        )


def estimate_gas_limit(message: Message, apply: TrialApply) -> int:
    """Lotus ``GasEstimateGasLimit`` times ``GasLimitOverestimation``, capped at a block's limit.

    The trial runs with the block gas limit and no fee cap or premium (so it costs the sender
    nothing); a trial that does not exit OK raises :class:`GasEstimationFailed`.
    """
    trial = replace(message, gas_limit=BLOCK_GAS_LIMIT, gas_fee_cap=0, gas_premium=0)
    receipt = apply(trial)
    if receipt.exit_code != ExitCode.OK:
        raise GasEstimationFailed(message, receipt)
    limit = receipt.gas_used * GAS_LIMIT_OVERESTIMATION_NUM // GAS_LIMIT_OVERESTIMATION_DEN
    return min(limit, BLOCK_GAS_LIMIT)


def estimate_fee_cap(
    base_fee: TokenAmount, gas_premium: TokenAmount, queue_blocks: int = FEE_CAP_QUEUE_BLOCKS
) -> TokenAmount:
    """Lotus ``gasEstimateFeeCap``: the base fee after ``queue_blocks`` blocks of maximal
    growth (factor taken to 1/256 as Lotus does) plus the premium."""
    growth = math.pow(1.0 + 1.0 / BASE_FEE_MAX_CHANGE_DENOM, queue_blocks)
    return base_fee * int(growth * 256) // 256 + gas_premium


def cap_gas_fee(message: Message, max_fee: TokenAmount = DEFAULT_MAX_FEE) -> Message:
    """Lotus ``CapGasFee``: lower the fee cap so that fee cap * gas limit <= ``max_fee``, and keep
    the premium at or below the fee cap."""
    fee_cap = message.gas_fee_cap
    if fee_cap * message.gas_limit > max_fee:
        fee_cap = max_fee // message.gas_limit
    return replace(message, gas_fee_cap=fee_cap, gas_premium=min(fee_cap, message.gas_premium))


def with_gas(
    message: Message,
    *,
    apply: TrialApply,
    base_fee: TokenAmount,
    gas_premium: TokenAmount = MIN_GAS_PREMIUM,
    max_fee: TokenAmount = DEFAULT_MAX_FEE,
) -> Message:
    """``message`` with gas limit, premium and fee cap set as Lotus's ``GasEstimateMessageGas``
    sets them for a message that has none (see the module docstring)."""
    limit = estimate_gas_limit(message, apply)
    priced = replace(
        message,
        gas_limit=limit,
        gas_premium=gas_premium,
        gas_fee_cap=estimate_fee_cap(base_fee, gas_premium),
    )
    return cap_gas_fee(priced, max_fee)


def trial_chain_length(message: Message) -> int:
    """The on-chain size a trial charges for, as Lotus's ``CallWithGas`` does: a secp256k1 or
    delegated sender's message is measured with a stand-in 65-byte signature, a BLS sender's
    without one. The sender must be given by its key address."""
    protocol = message.from_.protocol
    if protocol is Protocol.SECP256K1:
        stand_in = Signature(SignatureType.SECP256K1, bytes(SECP_SIG_LEN))
    elif protocol is Protocol.DELEGATED:
        stand_in = Signature(SignatureType.DELEGATED, bytes(SECP_SIG_LEN))
    else:
        return message.chain_length()
    return SignedMessage(message, stand_in).chain_length()


def state_trial(
    store: Blockstore, context: MachineContext, externs: Externs, invoker: ActorInvoker
) -> TrialApply:
    """A :data:`TrialApply` over the state ``context.initial_state_root``: each trial builds a
    machine whose state writes stay in its own buffer and are dropped with it.

    Lotus runs the trial after the sender's pending messages; here the state given must already
    include them (the load generator estimates each message on the state its predecessors
    left)."""

    def apply(message: Message) -> Receipt:
        executor = Executor(Machine.create(context, store, externs), invoker)
        length = trial_chain_length(message)
        ret = run_on_execution_stack(
            lambda: executor.execute_message(message, ApplyKind.EXPLICIT, length)
        )
        return ret.receipt

    return apply
