"""The call manager: one message's call stack, from the top-level send down to nested sends.

Ported from ref-fvm ``fvm/src/call_manager/{mod,default,state_access_tracker}.rs`` and, for
network versions 15-17, the parts of ref-fvm v2 that live elsewhere (``machine/default.rs``
``transfer`` and ``create_actor``; the state transaction around each send, which v2 opened in
the executor and the kernel). Reference tags: ``fvm@v2.12.1`` and ``fvm@v3.13.3``.

A send (:meth:`CallManager.send`):

1. checks the call depth (v2 allows one more nested call than ``max_call_depth``);
2. opens a state-tree transaction (and, in v3, an events layer and a state-access layer),
   reverted when the call fails or exits with a non-zero code;
3. resolves the receiver; an unknown f1/f3 address gets a new account actor (whose
   constructor runs as a call from the system actor) and, from v3, an unknown f4 address in
   the EAM's namespace gets a placeholder; anything else fails with ``NotFound``;
4. transfers the value, returns at once for method 0, and otherwise hands the call to the
   :class:`~fvm.invocation.ActorInvoker`, recording backtrace frames for failures;
5. charges for the return value where the generation does (v2: the top-level success, in the
   executor's transaction; v3: any return block at depth 1).

Errors are ref-fvm's ``ExecutionError``: :class:`~fvm.gas.gas_tracker.OutOfGas`,
:class:`~fvm.syscalls.abi.SyscallError` (the send could not be dispatched) and
:class:`~fvm.invocation.FatalError`. Every other exception also unwinds the transactions (with
revert) and propagates unchanged.

Gas that only one generation charges is chosen by the price list (the per-network-version
table): v2's ``PriceListV2`` prices an invocation by value and method and never charges for
state access; v3's ``PriceListV3`` charges value transfer and invocation separately and meters
actor reads, updates and address resolution (FIP-0057), each charged once per call stack unless
the transaction that recorded it is reverted.

With ``MachineContext.tracing`` the call stack records its execution trace
(:mod:`fvm.execution_trace`) as ref-fvm's ``DefaultCallManager`` does; without it, ``send``
only tests one flag.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.address import Protocol as AddressProtocol
from fvm.execution_trace import (
    FATAL_ERROR,
    OUT_OF_GAS_ERROR,
    CallErrorEvent,
    CallEvent,
    CallReturnEvent,
    ExecutionEvent,
    ExecutionTrace,
    InvokeActorEvent,
)
from fvm.gas.charge import GasCharge, Milligas, gas, round_up
from fvm.gas.gas_tracker import GasTracker, OutOfGas
from fvm.gas.price_list import PriceList, PriceListV2, PriceListV3
from fvm.invocation import (
    METHOD_CONSTRUCTOR,
    METHOD_SEND,
    ActorExit,
    ActorInvoker,
    ActorOutcome,
    ActorOutOfGas,
    Backtrace,
    Block,
    FatalError,
    Frame,
    InvocationRequest,
    InvocationResult,
)
from fvm.machine import EAM_ACTOR_ID, SYSTEM_ACTOR_ID, Machine, MachineError
from fvm.receipt import ExitCode
from fvm.syscalls.abi import ErrorNumber, SyscallError
from fvm.token import TokenAmount
from store.amt import Amt
from store.blockstore import MemoryBlockstore
from store.cid import CID

EVENTS_AMT_BIT_WIDTH: Final = 5

_READ: Final = 1
_UPDATED: Final = 2
_ABSENT: Final = 0


class EncodableEvent(Protocol):
    """A stamped actor event (emitter and entries) as the kernel records it."""

    def to_cbor(self) -> Any:
        """The DAG-CBOR data-model value stored in the events AMT."""


# -- gas that differs by generation ------------------------------------------------------------


class _SendPricing(Protocol):
    """The charges a send makes, as each price-list generation makes them."""

    def before_transfer(self, value: TokenAmount, method: int) -> GasCharge | None: ...

    def invocation(self) -> GasCharge | None: ...

    def account_creation_up_front(self) -> GasCharge | None: ...

    def actor_creation_from_send(self) -> GasCharge | None: ...

    def actor_creation(self) -> GasCharge: ...

    def method_return(self, call_depth: int, value: Block | None) -> GasCharge | None: ...

    def top_level_return(self, result: InvocationResult) -> GasCharge | None: ...


@dataclass(frozen=True, slots=True)
class _SendPricingV2:
    """ref-fvm v2: one invocation charge (by value and method) before the transfer; account
    creation charged before anything is checked; the return value charged by the executor for
    a successful top-level call."""

    prices: PriceListV2

    def before_transfer(self, value: TokenAmount, method: int) -> GasCharge | None:
        return self.prices.on_method_invocation(value, method)

    def invocation(self) -> GasCharge | None:
        return None

    def account_creation_up_front(self) -> GasCharge | None:
        return self.prices.on_create_actor()

    def actor_creation_from_send(self) -> GasCharge | None:
        return None

    def actor_creation(self) -> GasCharge:
        return self.prices.on_create_actor()

    def method_return(self, call_depth: int, value: Block | None) -> GasCharge | None:
        return None

    def top_level_return(self, result: InvocationResult) -> GasCharge | None:
        if not result.succeeded:
            return None
        return self.prices.on_chain_return_value(0 if result.value is None else result.value.size)


@dataclass(frozen=True, slots=True)
class _SendPricingV3:
    """ref-fvm v3: value transfer and invocation charged separately; actors created by a send
    pay for the new address; return blocks charged when returned to the chain (depth 1)."""

    prices: PriceListV3

    def before_transfer(self, value: TokenAmount, method: int) -> GasCharge | None:
        return self.prices.on_value_transfer() if value != 0 else None

    def invocation(self) -> GasCharge | None:
        return self.prices.on_method_invocation()

    def account_creation_up_front(self) -> GasCharge | None:
        return None

    def actor_creation_from_send(self) -> GasCharge | None:
        return self.prices.on_create_actor(True)

    def actor_creation(self) -> GasCharge:
        return self.prices.on_create_actor(False)

    def method_return(self, call_depth: int, value: Block | None) -> GasCharge | None:
        if value is None:
            return None
        return self.prices.on_method_return(call_depth, value.size)

    def top_level_return(self, result: InvocationResult) -> GasCharge | None:
        return None


def _send_pricing(prices: PriceList) -> _SendPricing:
    if isinstance(prices, PriceListV2):
        return _SendPricingV2(prices)
    if isinstance(prices, PriceListV3):
        return _SendPricingV3(prices)
    raise MachineError(f"the {prices.name} price list belongs to an unsupported FVM version")


# -- state access metering ---------------------------------------------------------------------


class _StateAccess(Protocol):
    def begin_transaction(self) -> None: ...

    def end_transaction(self, revert: bool) -> None: ...

    def before_read(self, actor_id: int) -> None: ...

    def after_read(self, actor_id: int) -> None: ...

    def before_update(self, actor_id: int) -> None: ...

    def after_update(self, actor_id: int) -> None: ...

    def before_resolve(self, address: Address) -> None: ...

    def after_resolve(self, address: Address) -> None: ...


class _UnmeteredStateAccess:
    """ref-fvm v2: state access is free."""

    def begin_transaction(self) -> None:
        return None

    def end_transaction(self, revert: bool) -> None:
        return None

    def before_read(self, actor_id: int) -> None:
        return None

    def after_read(self, actor_id: int) -> None:
        return None

    def before_update(self, actor_id: int) -> None:
        return None

    def after_update(self, actor_id: int) -> None:
        return None

    def before_resolve(self, address: Address) -> None:
        return None

    def after_resolve(self, address: Address) -> None:
        return None


class StateAccessTracker:
    """Which actors and addresses this call stack already paid to read, update or resolve
    (ref-fvm v3 ``StateAccessTracker``), with transactions: a reverted one forgets its records.

    Preloaded actors (the price list's ``preloaded_actors``) count as already updated.
    """

    __slots__ = ("_actor_history", "_actors", "_address_history", "_addresses", "_layers")

    def __init__(self, preloaded_actors: tuple[int, ...] = ()) -> None:
        self._actors: dict[int, int] = dict.fromkeys(preloaded_actors, _UPDATED)
        self._actor_history: list[tuple[int, int]] = []
        self._addresses: set[Address] = set()
        self._address_history: list[Address] = []
        self._layers: list[tuple[int, int]] = []

    def begin_transaction(self) -> None:
        self._layers.append((len(self._actor_history), len(self._address_history)))

    def end_transaction(self, revert: bool) -> None:
        if not self._layers:
            raise FatalError("state access tracker not in a transaction")
        actors_height, addresses_height = self._layers.pop()
        if revert:
            while len(self._actor_history) > actors_height:
                actor_id, previous = self._actor_history.pop()
                if previous == _ABSENT:
                    del self._actors[actor_id]
                else:
                    self._actors[actor_id] = previous
            while len(self._address_history) > addresses_height:
                self._addresses.discard(self._address_history.pop())

    def _set(self, actor_id: int, access: int) -> None:
        previous = self._actors.get(actor_id, _ABSENT)
        if previous == access:
            return
        self._actor_history.append((actor_id, previous))
        self._actors[actor_id] = access

    def actor_read(self, actor_id: int) -> bool:
        return self._actors.get(actor_id, _ABSENT) >= _READ

    def actor_updated(self, actor_id: int) -> bool:
        return self._actors.get(actor_id, _ABSENT) >= _UPDATED

    def record_actor_read(self, actor_id: int) -> None:
        if actor_id not in self._actors:
            self._set(actor_id, _READ)

    def record_actor_update(self, actor_id: int) -> None:
        self._set(actor_id, _UPDATED)

    def address_resolved(self, address: Address) -> bool:
        return address.protocol is AddressProtocol.ID or address in self._addresses

    def record_lookup_address(self, address: Address) -> None:
        if address.protocol is AddressProtocol.ID or address in self._addresses:
            return
        self._addresses.add(address)
        self._address_history.append(address)


class _MeteredStateAccess:
    """ref-fvm v3: the first read, update or address resolution of each actor in a call stack
    is charged."""

    __slots__ = ("_gas", "_lookup", "_resolve", "_update", "tracker")

    def __init__(self, prices: PriceListV3, gas_tracker: GasTracker) -> None:
        self.tracker = StateAccessTracker(prices.preloaded_actors)
        self._gas = gas_tracker
        self._lookup = prices.on_actor_lookup()
        self._update = prices.on_actor_update()
        self._resolve = prices.on_resolve_address()

    def begin_transaction(self) -> None:
        self.tracker.begin_transaction()

    def end_transaction(self, revert: bool) -> None:
        self.tracker.end_transaction(revert)

    def before_read(self, actor_id: int) -> None:
        if not self.tracker.actor_read(actor_id):
            self._gas.charge(self._lookup)

    def after_read(self, actor_id: int) -> None:
        self.tracker.record_actor_read(actor_id)

    def before_update(self, actor_id: int) -> None:
        if not self.tracker.actor_read(actor_id):
            self._gas.charge(self._lookup)
        if not self.tracker.actor_updated(actor_id):
            self._gas.charge(self._update)

    def after_update(self, actor_id: int) -> None:
        self.tracker.record_actor_update(actor_id)

    def before_resolve(self, address: Address) -> None:
        if not self.tracker.address_resolved(address):
            self._gas.charge(self._resolve)

    def after_resolve(self, address: Address) -> None:
        self.tracker.record_lookup_address(address)


def _state_access(prices: PriceList, gas_tracker: GasTracker) -> _StateAccess:
    if isinstance(prices, PriceListV3):
        return _MeteredStateAccess(prices, gas_tracker)
    return _UnmeteredStateAccess()


# -- events ------------------------------------------------------------------------------------


class EventsAccumulator:
    """Events emitted in this call stack, in layers that a reverted call discards (ref-fvm v3
    ``EventsAccumulator``)."""

    __slots__ = ("_events", "_layers")

    def __init__(self) -> None:
        self._events: list[EncodableEvent] = []
        self._layers: list[int] = []

    def append(self, event: EncodableEvent) -> None:
        self._events.append(event)

    def begin_transaction(self) -> None:
        self._layers.append(len(self._events))

    def end_transaction(self, revert: bool) -> None:
        if not self._layers:
            raise FatalError("no index in the event accumulator when ending a transaction")
        height = self._layers.pop()
        if revert:
            del self._events[height:]

    def finish(self) -> tuple[tuple[EncodableEvent, ...], CID | None]:
        """The events and the root of their AMT (bit width 5), None when there are none."""
        if self._layers:
            raise FatalError(f"bad events accumulator state; {len(self._layers)} layers still open")
        if not self._events:
            return (), None
        amt = Amt.from_list(
            MemoryBlockstore(),
            [event.to_cbor() for event in self._events],
            bit_width=EVENTS_AMT_BIT_WIDTH,
        )
        return tuple(self._events), amt.flush()


# -- the call manager --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishedCallStack:
    """What a finished call stack leaves: whole gas used, the backtrace, the events, and the
    execution trace (empty unless tracing)."""

    gas_used: int
    backtrace: Backtrace
    events: tuple[EncodableEvent, ...]
    events_root: CID | None
    exec_trace: ExecutionTrace = ()


def _deposit(actor: ActorState, amount: TokenAmount) -> ActorState:
    return replace(actor, balance=actor.balance + amount)


class CallManager:
    """The call stack of one message over a :class:`~fvm.machine.Machine`.

    The kernel the invoker binds to actor code reaches the VM through this object: ``send``,
    ``gas_tracker``/``charge_gas``, ``price_list``, ``machine`` (context, externs, blockstore,
    state tree, builtin actors), ``origin``/``origin_address``/``nonce``/``gas_premium``,
    ``resolve_address``, ``get_actor``/``set_actor``/``delete_actor``, ``transfer``,
    ``create_actor`` and ``next_actor_address`` (v3), ``next_actor_index`` (v2),
    ``append_event`` and ``invocation_count``.
    """

    def __init__(
        self,
        machine: Machine,
        invoker: ActorInvoker,
        *,
        gas_limit: int,
        origin: int,
        origin_address: Address,
        receiver: int | None,
        receiver_address: Address,
        nonce: int,
        gas_premium: TokenAmount = 0,
    ) -> None:
        """``gas_limit`` is whole gas; ``receiver`` is the pre-resolved top-level receiver."""
        self.machine = machine
        self.invoker = invoker
        self.price_list = machine.context.price_list
        self._pricing = _send_pricing(self.price_list)
        self.gas_tracker = GasTracker(gas(gas_limit), tracing=machine.context.tracing)
        self._access = _state_access(self.price_list, self.gas_tracker)
        self.origin = origin
        self.origin_address = origin_address
        self.nonce = nonce
        self.gas_premium = gas_premium
        self.num_actors_created = 0
        self.call_stack_depth = 0
        self.invocation_count = 0
        self.backtrace = Backtrace()
        self.events = EventsAccumulator()
        self._tracing = machine.context.tracing
        self._traces_invocations = machine.generation.traces_invocations
        self._trace_events: list[ExecutionEvent] = []
        # The origin was looked up and updated by the executor; the receiver was pre-resolved.
        self._access.after_update(origin)
        self._access.after_resolve(origin_address)
        if receiver is not None:
            self._access.after_read(receiver)
        self._access.after_resolve(receiver_address)

    # -- gas --------------------------------------------------------------------------------

    def charge_gas(self, charge: GasCharge) -> None:
        self.gas_tracker.charge(charge)

    @property
    def gas_available(self) -> Milligas:
        return self.gas_tracker.gas_available

    # -- sending ----------------------------------------------------------------------------

    def send(
        self,
        caller: int,
        to: Address,
        method: int,
        params: Block | None,
        value: TokenAmount,
        gas_limit: Milligas | None = None,
        read_only: bool = False,
    ) -> InvocationResult:
        """Send ``value`` and call ``method`` of ``to`` on behalf of actor ``caller``.

        ``gas_limit`` (milligas, v3) caps what the call may use. Returns how the call ended;
        raises the ``ExecutionError`` cases when it could not be dispatched or hit a limit.
        """
        generation = self.machine.generation
        tracing = self._tracing
        if tracing:
            self._trace_call(caller, to, method, params, value, gas_limit, read_only)
        if gas_limit is not None:
            self.gas_tracker.push_limit(gas_limit)
        max_depth = self.machine.context.network.max_call_depth + generation.extra_call_depth
        if self.call_stack_depth >= max_depth:
            # As in the reference, a limit pushed above stays pushed on this error.
            error = SyscallError(ErrorNumber.LIMIT_EXCEEDED, "message execution exceeds call depth")
            if tracing:
                self._trace(CallErrorEvent(error.number, error.message))
            raise error
        top_level = self.call_stack_depth == 0
        state_tree = self.machine.state_tree
        state_tree.begin_transaction()
        self.events.begin_transaction()
        self._access.begin_transaction()
        self.call_stack_depth += 1
        try:
            try:
                result = self._send_unchecked(caller, to, method, params, value, read_only)
                if top_level:
                    charge = self._pricing.top_level_return(result)
                    if charge is not None:
                        if tracing:
                            # v2 traces the return before its charge; nothing more to trace.
                            self._trace(CallReturnEvent(result.exit_code, result.value))
                            tracing = False
                        self.charge_gas(charge)
            finally:
                self.call_stack_depth -= 1
        except BaseException as exc:
            self._end_transactions(revert=True, pop_limit=gas_limit is not None)
            if isinstance(exc, OutOfGas) and self.gas_tracker.gas_available > 0:
                # Out of a limit the caller set, not of the message's gas: an exit code.
                if tracing:
                    self._trace(CallReturnEvent(ExitCode.SYS_OUT_OF_GAS))
                return InvocationResult(ExitCode.SYS_OUT_OF_GAS)
            if tracing:
                self._trace(self._failure_event(exc))
            raise
        self._end_transactions(revert=not result.succeeded, pop_limit=gas_limit is not None)
        if tracing:
            self._trace(CallReturnEvent(result.exit_code, result.value))
        return result

    # -- tracing ----------------------------------------------------------------------------

    def _trace(self, event: ExecutionEvent) -> None:
        """Record ``event`` after the gas charges made since the last one (ref-fvm ``trace``)."""
        self._trace_events.extend(self.gas_tracker.drain_trace())
        self._trace_events.append(event)

    def _trace_call(
        self,
        caller: int,
        to: Address,
        method: int,
        params: Block | None,
        value: TokenAmount,
        gas_limit: Milligas | None,
        read_only: bool,
    ) -> None:
        if not self._traces_invocations:
            self._trace(CallEvent(caller, to, method, params, value))
            return
        available = round_up(self.gas_tracker.gas_available)
        limit = available if gas_limit is None else min(round_up(gas_limit), available)
        self._trace(CallEvent(caller, to, method, params, value, limit, read_only))

    def _failure_event(self, error: BaseException) -> ExecutionEvent:
        """How a send that raised ``error`` ends in the trace."""
        if isinstance(error, OutOfGas):
            if self._traces_invocations:
                return CallReturnEvent(ExitCode.SYS_OUT_OF_GAS)
            return OUT_OF_GAS_ERROR
        if isinstance(error, SyscallError):
            return CallErrorEvent(error.number, error.message)
        return FATAL_ERROR

    def _end_transactions(self, *, revert: bool, pop_limit: bool) -> None:
        self._access.end_transaction(revert)
        self.events.end_transaction(revert)
        self.machine.state_tree.end_transaction(revert)
        if pop_limit:
            self.gas_tracker.pop_limit()

    def _send_unchecked(
        self,
        caller: int,
        to: Address,
        method: int,
        params: Block | None,
        value: TokenAmount,
        read_only: bool,
    ) -> InvocationResult:
        actor_id = self.resolve_address(to)
        if actor_id is None:
            if to.protocol in (AddressProtocol.SECP256K1, AddressProtocol.BLS):
                self._refuse_creation_if_read_only(to, read_only)
                actor_id = self._create_account_actor_from_send(to)
            elif (
                self.machine.generation.creates_placeholders
                and to.protocol is AddressProtocol.DELEGATED
                and to.namespace == EAM_ACTOR_ID
            ):
                self._refuse_creation_if_read_only(to, read_only)
                placeholder = ActorState.new_empty(
                    self.machine.builtin_actors.code_of("placeholder"), to
                )
                actor_id = self._create_actor_from_send(to, placeholder)
            else:
                raise SyscallError(
                    ErrorNumber.NOT_FOUND, f"actor does not exist or cannot be created: {to}"
                )
        return self._send_resolved(caller, actor_id, method, params, value, read_only)

    @staticmethod
    def _refuse_creation_if_read_only(to: Address, read_only: bool) -> None:
        if read_only:
            raise SyscallError(
                ErrorNumber.READ_ONLY, f"cannot auto-create account {to} in read-only calls"
            )

    def _create_actor_from_send(self, address: Address, actor: ActorState) -> int:
        """Register ``address`` with the init actor and store ``actor`` under the new ID."""
        charge = self._pricing.actor_creation_from_send()
        if charge is not None:
            self.charge_gas(charge)
        actor_id = self.machine.state_tree.register_new_address(address)
        self._access.after_resolve(address)
        self.set_actor(actor_id, actor)
        return actor_id

    def _create_account_actor_from_send(self, address: Address) -> int:
        """Create an account actor for a key address and run its constructor."""
        charge = self._pricing.account_creation_up_front()
        if charge is not None:
            self.charge_gas(charge)
        if address.is_bls_zero_address():
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT, "cannot create the bls zero address actor"
            )
        account = ActorState.new_empty(self.machine.builtin_actors.code_of("account"))
        actor_id = self._create_actor_from_send(address, account)
        params = Block(self.machine.generation.constructor_params_codec, address.encode())
        self._send_resolved(SYSTEM_ACTOR_ID, actor_id, METHOD_CONSTRUCTOR, params, 0, False)
        return actor_id

    def _send_resolved(
        self,
        caller: int,
        to: int,
        method: int,
        params: Block | None,
        value: TokenAmount,
        read_only: bool,
    ) -> InvocationResult:
        actor = self.get_actor(to)
        if actor is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, f"actor does not exist: {to}")
        if self._tracing and self._traces_invocations:
            self._trace(InvokeActorEvent(to, actor))
        charge = self._pricing.before_transfer(value, method)
        if charge is not None:
            self.charge_gas(charge)
        if value != 0:
            self.transfer(caller, to, value)
        if method == METHOD_SEND:
            return InvocationResult()
        charge = self._pricing.invocation()
        if charge is not None:
            self.charge_gas(charge)
        self.invocation_count += 1
        request = InvocationRequest(caller, to, actor.code, method, params, value, read_only)
        outcome = self.invoker.invoke(self, request)
        result = self._settle(request, outcome)
        charge = self._pricing.method_return(self.call_stack_depth, result.value)
        if charge is not None:
            self.charge_gas(charge)
        return result

    def _settle(self, request: InvocationRequest, outcome: ActorOutcome) -> InvocationResult:
        """Turn how the actor ended into the call's result, recording backtrace frames."""
        if isinstance(outcome, ActorExit):
            if outcome.exit_code != ExitCode.OK:
                if outcome.last_error is not None:
                    self.backtrace.begin(outcome.last_error)
                self.backtrace.push_frame(
                    Frame(request.receiver, request.method, outcome.exit_code, outcome.message)
                )
            return InvocationResult(outcome.exit_code, outcome.value)
        if outcome.last_error is not None:
            self.backtrace.begin(outcome.last_error)
        if isinstance(outcome, ActorOutOfGas):
            self.backtrace.push_frame(
                Frame(request.receiver, request.method, ExitCode.SYS_OUT_OF_GAS, "out of gas")
            )
            raise outcome.error
        self.backtrace.push_frame(
            Frame(request.receiver, request.method, outcome.frame_code, outcome.frame_message)
        )
        raise FatalError(outcome.error)

    # -- state access -----------------------------------------------------------------------

    def resolve_address(self, address: Address) -> int | None:
        """The actor ID ``address`` stands for, charging for the lookup where metered."""
        if address.protocol is AddressProtocol.ID:
            return address.number
        self._access.before_resolve(address)
        actor_id = self.machine.state_tree.lookup_id(address)
        if actor_id is not None:
            self._access.after_resolve(address)
        return actor_id

    def get_actor(self, actor_id: int) -> ActorState | None:
        self._access.before_read(actor_id)
        actor = self.machine.state_tree.get_actor(actor_id)
        self._access.after_read(actor_id)
        return actor

    def set_actor(self, actor_id: int, actor: ActorState) -> None:
        self._access.before_update(actor_id)
        self.machine.state_tree.set_actor(actor_id, actor)
        self._access.after_update(actor_id)

    def delete_actor(self, actor_id: int) -> None:
        self._access.before_update(actor_id)
        self.machine.state_tree.delete_actor(actor_id)
        self._access.after_update(actor_id)

    def transfer(self, sender: int, receiver: int, value: TokenAmount) -> None:
        """Move ``value`` from ``sender`` to ``receiver`` (a self-transfer only checks funds)."""
        if value < 0:
            raise SyscallError(
                ErrorNumber.ILLEGAL_ARGUMENT,
                f"attempted to transfer negative transfer value {value}",
            )
        from_actor = self.get_actor(sender)
        if from_actor is None:
            raise SyscallError(
                ErrorNumber.INSUFFICIENT_FUNDS,
                f"insufficient funds to transfer {value} from {sender} to {receiver}",
            )
        if from_actor.balance < value:
            raise SyscallError(
                ErrorNumber.INSUFFICIENT_FUNDS,
                f"sender does not have funds to transfer (balance {from_actor.balance}, "
                f"transfer {value})",
            )
        if sender == receiver:
            return
        to_actor = self.get_actor(receiver)
        if to_actor is None:
            raise SyscallError(
                ErrorNumber.NOT_FOUND, f"transfer recipient {receiver} does not exist in state-tree"
            )
        self.set_actor(sender, _deposit(from_actor, -value))
        self.set_actor(receiver, _deposit(to_actor, value))

    # -- actor creation (for the kernel) ----------------------------------------------------

    def next_actor_address(self) -> Address:
        """ref-fvm v3: the f2 address the next actor created in this call stack gets."""
        seed = (
            self.origin_address.encode()
            + self.nonce.to_bytes(8, "big")
            + self.num_actors_created.to_bytes(8, "big")
        )
        return Address.new_actor(seed)

    def next_actor_index(self) -> int:
        """ref-fvm v2's ``next_actor_idx``: the count of actors created so far, then one more."""
        index = self.num_actors_created
        self.num_actors_created += 1
        return index

    def create_actor(self, code: CID, actor_id: int, delegated_address: Address | None) -> None:
        """ref-fvm v3's ``create_actor``: put a new actor (or turn a placeholder into one) at an
        ID the init actor has assigned."""
        builtin = self.machine.builtin_actors
        if builtin.is_placeholder_actor(code):
            raise SyscallError(
                ErrorNumber.FORBIDDEN, "cannot explicitly construct a placeholder actor"
            )
        existing = self.get_actor(actor_id)
        if existing is not None and builtin.is_placeholder_actor(existing.code):
            if existing.delegated_address is None:
                raise FatalError(f"placeholder {actor_id} doesn't have a delegated address")
            if existing.delegated_address != delegated_address:
                raise SyscallError(
                    ErrorNumber.FORBIDDEN, "placeholder has a different delegated address"
                )
            actor = replace(existing, code=code)
        elif existing is not None:
            raise SyscallError(ErrorNumber.FORBIDDEN, "Actor address already exists")
        else:
            self.charge_gas(self._pricing.actor_creation())
            actor = ActorState.new_empty(code, delegated_address)
        self.set_actor(actor_id, actor)
        self.num_actors_created += 1

    def append_event(self, event: EncodableEvent) -> None:
        self.events.append(event)

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> FinishedCallStack:
        """Whole gas used (rounded up; v2's negative refunds cannot take it below zero), the
        backtrace, the events and, when tracing, the trace with the charges not yet in it."""
        events, events_root = self.events.finish()
        gas_used = round_up(max(self.gas_tracker.gas_used, 0))
        exec_trace: ExecutionTrace = ()
        if self._tracing:
            self._trace_events.extend(self.gas_tracker.drain_trace())
            exec_trace = tuple(self._trace_events)
        return FinishedCallStack(gas_used, self.backtrace, events, events_root, exec_trace)
