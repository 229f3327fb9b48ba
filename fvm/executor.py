"""The executor: applies one message to the machine and produces its receipt and fee movements.

Ported from ref-fvm ``fvm/src/executor/{mod,default}.rs`` at ``fvm@v2.12.1`` (network versions
15-17) and ``fvm@v3.13.3`` (18-20). :meth:`Executor.execute_message`:

1. **preflight** (explicit messages): the message must have a positive gas limit (else a
   fatal error); its inclusion gas (the price list's ``on_chain_message`` of ``raw_length``,
   the on-chain size) must fit the limit (else ``SYS_OUT_OF_GAS``, the miner penalised the base
   fee times the inclusion gas); the sender must resolve to an actor of a sender type (v2:
   account; v3: account, EthAccount, or a placeholder with an f4 address in the EAM's
   namespace and sequence 0, which becomes an EthAccount) (else ``SYS_SENDER_INVALID``), with
   the message's sequence (else ``SYS_SENDER_STATE_INVALID``) and enough balance for
   ``gas_fee_cap * gas_limit`` (else ``SYS_SENDER_STATE_INVALID``). Failures use no gas and
   change no state; the miner is penalised the base fee times the gas limit. On success the
   sender's sequence is incremented and the gas funds are taken from it. Implicit messages
   (cron, rewards) skip all but the sender lookup and pay nothing.
2. **the call**: a :class:`~fvm.call_manager.CallManager` first charges the inclusion gas, then
   sends the message. ``OutOfGas`` gives ``SYS_OUT_OF_GAS``; a send that cannot be dispatched
   gives ``SYS_INSUFFICIENT_FUNDS`` (value transfer), ``SYS_INVALID_RECEIVER`` (no receiver)
   or ``SYS_ASSERTION_FAILED``; a fatal error gives ``SYS_ASSERTION_FAILED`` with the whole gas
   limit used.
3. **gas outputs** (explicit messages): the base fee burn and the over-estimation burn go to
   the burnt-funds actor (f099), the miner tip to the reward actor (f02), the rest back to the
   sender.

Receipts carry the events root from network version 18 (FIP-0049). When the machine context
asks for tracing, :attr:`ApplyRet.exec_trace` holds the message's execution trace (ref-fvm's
``ApplyRet::exec_trace``, see :mod:`fvm.execution_trace`); refused messages have none.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final, TypeAlias

from fvm.actor_state import ActorState
from fvm.address import Protocol as AddressProtocol
from fvm.call_manager import CallManager, EncodableEvent, FinishedCallStack
from fvm.execution_trace import ExecutionTrace
from fvm.gas.charge import GasCharge, round_up
from fvm.gas.gas_outputs import GasOutputs
from fvm.gas.gas_tracker import OutOfGas
from fvm.invocation import (
    ActorInvoker,
    Backtrace,
    Block,
    FatalCause,
    FatalError,
    InvocationResult,
    SyscallCause,
    UnavailableActorInvoker,
)
from fvm.machine import BURNT_FUNDS_ACTOR_ID, EAM_ACTOR_ID, REWARD_ACTOR_ID, Machine
from fvm.message import Message
from fvm.receipt import ExitCode, Receipt, receipt_version_for
from fvm.syscalls.abi import ErrorNumber, SyscallError
from fvm.token import TokenAmount
from store.cid import CID
from store.errors import BlockNotFound, FvmNodeError, MalformedInput

# What a send failing with each syscall error number leaves in the receipt; any other number
# gives SYS_ASSERTION_FAILED.
SEND_ERROR_EXIT_CODES: Final = {
    ErrorNumber.INSUFFICIENT_FUNDS: ExitCode.SYS_INSUFFICIENT_FUNDS,
    ErrorNumber.NOT_FOUND: ExitCode.SYS_INVALID_RECEIVER,
}
NO_INCLUSION_COST: Final = GasCharge("none", 0, 0)


def send_error_exit_code(number: ErrorNumber) -> int:
    """The exit code a send failing with syscall error ``number`` leaves in the receipt."""
    return SEND_ERROR_EXIT_CODES.get(number, ExitCode.SYS_ASSERTION_FAILED)


# Errors raised inside the call that the reference classifies as fatal: the VM's own failures
# and state that cannot be read.
_FATAL_ERRORS: Final = (FatalError, MalformedInput, BlockNotFound)


class ApplyKind(enum.Enum):
    """Explicit messages come from accounts and pay for gas; implicit ones (cron, rewards)
    may come from any actor, skip the nonce check and pay nothing."""

    EXPLICIT = "explicit"
    IMPLICIT = "implicit"


class ExecutorError(FvmNodeError):
    """The message could not be applied at all (ref-fvm's ``execute_message`` error)."""


@dataclass(frozen=True, slots=True)
class PreValidationFailure:
    """Why preflight refused the message."""

    message: str

    def __str__(self) -> str:
        return f"pre-validation failed: {self.message}"


@dataclass(frozen=True, slots=True)
class MessageFailure:
    """The backtrace of a message that failed during execution."""

    backtrace: Backtrace

    def __str__(self) -> str:
        return f"message failed with backtrace:\n{self.backtrace}"


ApplyFailure: TypeAlias = PreValidationFailure | MessageFailure


@dataclass(frozen=True, slots=True)
class ApplyRet:
    """The receipt and where the message's gas funds went (ref-fvm ``ApplyRet``), with the
    execution trace when tracing."""

    receipt: Receipt
    penalty: TokenAmount = 0
    miner_tip: TokenAmount = 0
    base_fee_burn: TokenAmount = 0
    over_estimation_burn: TokenAmount = 0
    refund: TokenAmount = 0
    gas_refund: int = 0
    gas_burned: int = 0
    failure_info: ApplyFailure | None = None
    events: tuple[EncodableEvent, ...] = ()
    exec_trace: ExecutionTrace = ()


@dataclass(frozen=True, slots=True)
class _Preflight:
    sender_id: int
    gas_cost: TokenAmount
    inclusion_cost: GasCharge


class Executor:
    """Applies messages to a :class:`~fvm.machine.Machine` (ref-fvm ``DefaultExecutor``).

    ``invoker`` runs actor code; without one, a message that needs actor code raises
    :class:`~fvm.invocation.ActorCodeUnavailable`.
    """

    def __init__(self, machine: Machine, invoker: ActorInvoker | None = None) -> None:
        self.machine = machine
        self.invoker: ActorInvoker = invoker if invoker is not None else UnavailableActorInvoker()

    def flush(self) -> CID:
        """Flush the state tree; return the new state root."""
        return self.machine.flush()

    def execute_message(self, message: Message, kind: ApplyKind, raw_length: int) -> ApplyRet:
        """Apply ``message``; ``raw_length`` is its size on chain (signature included)."""
        preflight = self._preflight(message, kind, raw_length)
        if isinstance(preflight, ApplyRet):
            return preflight
        machine = self.machine
        context = machine.context
        receiver_id = machine.state_tree.lookup_id(message.to)
        call_manager = CallManager(
            machine,
            self.invoker,
            gas_limit=message.gas_limit,
            origin=preflight.sender_id,
            origin_address=message.from_,
            receiver=receiver_id,
            receiver_address=message.to,
            nonce=message.sequence,
            gas_premium=message.effective_gas_premium(context.base_fee),
        )
        try:
            call_manager.charge_gas(preflight.inclusion_cost)
        except OutOfGas as exc:
            raise ExecutorError(f"inclusion gas exceeds the checked limit: {exc}") from exc
        params = None
        if message.params:
            codec = machine.generation.top_level_params_codec(message.method_num)
            params = Block(codec, message.params)

        outcome: InvocationResult | FvmNodeError
        try:
            outcome = call_manager.send(
                preflight.sender_id, message.to, message.method_num, params, message.value
            )
        except (OutOfGas, SyscallError, *_FATAL_ERRORS) as exc:
            outcome = exc
        finished = call_manager.finish()
        backtrace = finished.backtrace
        gas_used = finished.gas_used
        exit_code: int
        return_data = b""
        if isinstance(outcome, InvocationResult):
            exit_code = outcome.exit_code
            if outcome.value is not None:
                return_data = outcome.value.data
            if outcome.succeeded:
                backtrace.clear()
        elif isinstance(outcome, OutOfGas):
            exit_code = ExitCode.SYS_OUT_OF_GAS
        elif isinstance(outcome, SyscallError):
            exit_code = send_error_exit_code(outcome.number)
            backtrace.begin(SyscallCause.from_error("send", "send", outcome))
        else:
            exit_code = ExitCode.SYS_ASSERTION_FAILED
            gas_used = message.gas_limit
            backtrace.set_cause(
                FatalCause(
                    f"{outcome} [from={message.from_}, to={message.to}, seq={message.sequence}, "
                    f"m={message.method_num}, h={context.epoch}]"
                )
            )
        receipt = Receipt(
            exit_code,
            return_data,
            gas_used,
            finished.events_root,
            receipt_version_for(context.network_version),
        )
        failure = (
            None if backtrace.is_empty() or exit_code == ExitCode.OK else MessageFailure(backtrace)
        )
        if kind is ApplyKind.IMPLICIT:
            return ApplyRet(
                receipt,
                failure_info=failure,
                events=finished.events,
                exec_trace=finished.exec_trace,
            )
        return self._finish_message(preflight, message, receipt, failure, finished)

    # -- preflight ------------------------------------------------------------------------

    def _preflight(
        self, message: Message, kind: ApplyKind, raw_length: int
    ) -> _Preflight | ApplyRet:
        """Check and charge the sender; an :class:`ApplyRet` when the message is refused."""
        try:
            message.check()
        except MalformedInput as exc:
            raise ExecutorError(str(exc)) from exc
        machine = self.machine
        base_fee = machine.context.base_fee
        inclusion_cost = NO_INCLUSION_COST
        penalty = 0
        if kind is ApplyKind.EXPLICIT:
            inclusion_cost = machine.context.price_list.on_chain_message(raw_length)
            inclusion_total = round_up(inclusion_cost.total)
            if inclusion_total > message.gas_limit:
                return _refused(
                    machine,
                    ExitCode.SYS_OUT_OF_GAS,
                    f"Out of gas ({inclusion_total} > {message.gas_limit})",
                    base_fee * inclusion_total,
                )
            penalty = base_fee * message.gas_limit

        state_tree = machine.state_tree
        sender_id = state_tree.lookup_id(message.from_)
        if sender_id is None:
            return _refused(machine, ExitCode.SYS_SENDER_INVALID, "Sender invalid", penalty)
        if kind is ApplyKind.IMPLICIT:
            return _Preflight(sender_id, 0, inclusion_cost)

        sender = state_tree.get_actor(sender_id)
        if sender is None:
            return _refused(machine, ExitCode.SYS_SENDER_INVALID, "Sender invalid", penalty)
        valid_sender = self._as_valid_sender(sender)
        if valid_sender is None:
            return _refused(
                machine, ExitCode.SYS_SENDER_INVALID, "Send not from valid sender", penalty
            )
        if message.sequence != valid_sender.sequence:
            return _refused(
                machine,
                ExitCode.SYS_SENDER_STATE_INVALID,
                f"Actor sequence invalid: {message.sequence} != {valid_sender.sequence}",
                penalty,
            )
        gas_cost = message.gas_fee_cap * message.gas_limit
        if valid_sender.balance < gas_cost:
            return _refused(
                machine,
                ExitCode.SYS_SENDER_STATE_INVALID,
                f"Actor balance less than needed: {valid_sender.balance} < {gas_cost}",
                penalty,
            )
        state_tree.set_actor(
            sender_id,
            replace(
                valid_sender,
                sequence=valid_sender.sequence + 1,
                balance=valid_sender.balance - gas_cost,
            ),
        )
        return _Preflight(sender_id, gas_cost, inclusion_cost)

    def _as_valid_sender(self, sender: ActorState) -> ActorState | None:
        """The sender as it may send (a placeholder becomes its sender type), or None."""
        generation = self.machine.generation
        builtin = self.machine.builtin_actors
        if any(builtin.is_type(sender.code, name) for name in generation.sender_actor_types):
            return sender
        delegated = sender.delegated_address
        if (
            generation.placeholder_sender_type is not None
            and builtin.is_placeholder_actor(sender.code)
            and sender.sequence == 0
            and delegated is not None
            and delegated.protocol is AddressProtocol.DELEGATED
            and delegated.namespace == EAM_ACTOR_ID
        ):
            return replace(sender, code=builtin.code_of(generation.placeholder_sender_type))
        return None

    # -- gas outputs ----------------------------------------------------------------------

    def _finish_message(
        self,
        preflight: _Preflight,
        message: Message,
        receipt: Receipt,
        failure: ApplyFailure | None,
        finished: FinishedCallStack,
    ) -> ApplyRet:
        outputs = GasOutputs.compute(
            receipt.gas_used,
            message.gas_limit,
            self.machine.context.base_fee,
            message.gas_fee_cap,
            message.gas_premium,
        )
        self._deposit(BURNT_FUNDS_ACTOR_ID, outputs.base_fee_burn)
        self._deposit(REWARD_ACTOR_ID, outputs.miner_tip)
        self._deposit(BURNT_FUNDS_ACTOR_ID, outputs.over_estimation_burn)
        self._deposit(preflight.sender_id, outputs.refund)
        paid = (
            outputs.base_fee_burn
            + outputs.over_estimation_burn
            + outputs.refund
            + outputs.miner_tip
        )
        if paid != preflight.gas_cost:
            raise ExecutorError("Gas handling math is wrong")
        return ApplyRet(
            receipt,
            penalty=outputs.miner_penalty,
            miner_tip=outputs.miner_tip,
            base_fee_burn=outputs.base_fee_burn,
            over_estimation_burn=outputs.over_estimation_burn,
            refund=outputs.refund,
            gas_refund=outputs.gas_refund,
            gas_burned=outputs.gas_burned,
            failure_info=failure,
            events=finished.events,
            exec_trace=finished.exec_trace,
        )

    def _deposit(self, actor_id: int, amount: TokenAmount) -> None:
        if amount < 0:
            raise ExecutorError("attempted to transfer negative value into actor")
        if amount == 0:
            return
        self.machine.state_tree.mutate_actor(
            actor_id, lambda actor: replace(actor, balance=actor.balance + amount)
        )


def _refused(machine: Machine, exit_code: int, reason: str, penalty: TokenAmount) -> ApplyRet:
    """ref-fvm ``ApplyRet::prevalidation_fail``: no gas used, the miner penalised."""
    receipt = Receipt(exit_code, b"", 0, None, receipt_version_for(machine.context.network_version))
    return ApplyRet(receipt, penalty=penalty, failure_info=PreValidationFailure(reason))
