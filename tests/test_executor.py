"""The executor and call manager on real mainnet state from the conformance vectors.

Two vectors provide the state: a network version 17 value-less send from a BLS account to f099
(ref-fvm v2 semantics) and a network version 18 send of 3800 FIL from a secp account to a miner
(ref-fvm v3). Preflight cases rewrite the vector's message; the call manager's handling of
actor code is exercised with a scripted invoker standing in for the WebAssembly runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fvm.address import Address
from fvm.call_manager import CallManager
from fvm.conformance.runner import BundleSource, machine_for_variant, raw_length
from fvm.conformance.vector import TestVector, load_vector
from fvm.executor import (
    ApplyKind,
    ApplyRet,
    Executor,
    ExecutorError,
    MessageFailure,
    PreValidationFailure,
)
from fvm.gas.charge import GasCharge, round_up
from fvm.gas.gas_outputs import GasOutputs
from fvm.gas.gas_tracker import OutOfGas
from fvm.gas.price_list import PriceListV2, PriceListV3
from fvm.invocation import (
    ActorCodeUnavailable,
    ActorExit,
    ActorFatal,
    ActorInvoker,
    ActorOutcome,
    ActorOutOfGas,
    Block,
    InvocationRequest,
)
from fvm.machine import BURNT_FUNDS_ACTOR_ID, REWARD_ACTOR_ID, Machine, MachineError
from fvm.message import Message
from fvm.receipt import RECEIPT_V0, RECEIPT_V1, ExitCode
from fvm.state_tree import HAMT_BIT_WIDTH, INIT_ACTOR_ID, InitActorState, StateTree, hamt_layout
from fvm.syscalls.abi import ErrorNumber, SyscallError
from store import dag_cbor
from store.blockstore import get_required, put
from store.cid import CBOR, CID
from store.hamt import Hamt

SHARK_SEND = (
    "test-vectors/extracted/0001-shark-01/fil_9_account/Send/Ok/"
    "ext-0001-fil_9_account-Send-Ok-1.json"
)
# Enough gas to create an actor (the vectors' own limits are tight).
ROOMY_GAS_LIMIT = 10_000_000
HYGGE_SEND = (
    "test-vectors/extracted/0002-hygge-01/fil_10_storageminer/Send/Ok/"
    "ext-0002-fil_10_storageminer-Send-Ok-1.json"
)
BOTH = pytest.mark.parametrize("relative", [SHARK_SEND, HYGGE_SEND], ids=["nv17", "nv18"])
UNKNOWN_SECP = Address.new_secp256k1(bytes([4]) + bytes(range(64)))
UNKNOWN_ACTOR = Address.new_actor(b"no such actor")


@dataclass
class Setup:
    vector: TestVector
    machine: Machine
    executor: Executor
    message: Message

    def apply(
        self, message: Message | None = None, kind: ApplyKind = ApplyKind.EXPLICIT
    ) -> ApplyRet:
        message = self.message if message is None else message
        return self.executor.execute_message(message, kind, raw_length(message, message.encode()))

    def inclusion_gas(self, message: Message | None = None) -> int:
        message = self.message if message is None else message
        charge = self.machine.context.price_list.on_chain_message(
            raw_length(message, message.encode())
        )
        return round_up(charge.total)


def _setup(shared: Path, relative: str, invoker: ActorInvoker | None = None) -> Setup:
    vector = load_vector(shared / relative)
    store = vector.blockstore()
    bundles = BundleSource(shared / "actors")
    machine = machine_for_variant(vector, vector.variants[0], store, bundles)
    executor = Executor(machine, invoker)
    return Setup(vector, machine, executor, Message.decode(vector.messages[0].data))


def _forget_addresses_except(setup: Setup, *kept: Address) -> None:
    """Replace the init actor's address map by one holding only ``kept`` (with their IDs).

    The vectors hold only the parts of the (huge) address map their messages looked at, so an
    address the message never used cannot be looked up in them; with a small complete map,
    every other address is simply unknown.
    """
    tree = setup.machine.state_tree
    store = setup.machine.blockstore
    init = tree.get_actor(INIT_ACTOR_ID)
    assert init is not None
    state = InitActorState.from_cbor(dag_cbor.decode(get_required(store, init.state)))
    address_map = Hamt(store, bit_width=HAMT_BIT_WIDTH, version=hamt_layout(tree.version))
    for address in kept:
        actor_id = tree.lookup_id(address)
        assert actor_id is not None
        address_map.set(address.to_bytes(), actor_id)
    new_state = InitActorState(address_map.flush(), state.next_id, state.network_name)
    tree.set_actor(
        INIT_ACTOR_ID, replace(init, state=put(store, dag_cbor.encode(new_state.to_cbor())))
    )


@pytest.fixture
def shared(shared_dir: Path, actors_dir: Path) -> Path:
    return shared_dir


# -- preflight --------------------------------------------------------------------------------


@BOTH
def test_message_whose_inclusion_gas_exceeds_its_limit_is_refused_as_out_of_gas(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    inclusion = setup.inclusion_gas()
    message = replace(setup.message, gas_limit=inclusion - 1)
    ret = setup.apply(message)
    assert ret.receipt.exit_code == ExitCode.SYS_OUT_OF_GAS
    assert ret.receipt.gas_used == 0
    assert ret.penalty == setup.machine.context.base_fee * round_up(
        setup.machine.context.price_list.on_chain_message(
            raw_length(message, message.encode())
        ).total
    )
    assert isinstance(ret.failure_info, PreValidationFailure)
    assert setup.executor.flush() == setup.vector.pre_state_root


@BOTH
def test_message_from_an_unknown_address_is_refused_as_sender_invalid(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    _forget_addresses_except(setup)
    before = setup.executor.flush()
    ret = setup.apply(replace(setup.message, from_=UNKNOWN_SECP))
    assert ret.receipt.exit_code == ExitCode.SYS_SENDER_INVALID
    assert ret.receipt.gas_used == 0
    assert ret.penalty == setup.machine.context.base_fee * setup.message.gas_limit
    assert setup.executor.flush() == before


@BOTH
def test_message_from_the_reward_actor_is_refused_as_sender_invalid(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    ret = setup.apply(replace(setup.message, from_=Address.new_id(REWARD_ACTOR_ID)))
    assert ret.receipt.exit_code == ExitCode.SYS_SENDER_INVALID
    assert setup.executor.flush() == setup.vector.pre_state_root


@BOTH
def test_message_with_a_stale_nonce_is_refused_as_sender_state_invalid(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    ret = setup.apply(replace(setup.message, sequence=setup.message.sequence - 1))
    assert ret.receipt.exit_code == ExitCode.SYS_SENDER_STATE_INVALID
    assert ret.receipt.gas_used == 0
    assert setup.executor.flush() == setup.vector.pre_state_root


@BOTH
def test_sender_that_cannot_escrow_fee_cap_times_limit_is_refused(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    sender = setup.machine.state_tree.get_actor(setup.message.from_)
    assert sender is not None
    fee_cap = sender.balance // setup.message.gas_limit + 1
    ret = setup.apply(replace(setup.message, gas_fee_cap=fee_cap, gas_premium=0))
    assert ret.receipt.exit_code == ExitCode.SYS_SENDER_STATE_INVALID
    assert setup.executor.flush() == setup.vector.pre_state_root


@BOTH
def test_message_without_gas_limit_cannot_be_applied(shared: Path, relative: str) -> None:
    setup = _setup(shared, relative)
    with pytest.raises(ExecutorError, match="no gas limit"):
        setup.apply(replace(setup.message, gas_limit=0))


# -- sends that run no actor code --------------------------------------------------------------


@BOTH
def test_send_reproduces_the_recorded_receipt_and_fee_movements(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    ret = setup.apply()
    expected = setup.vector.receipts[0]
    nv = setup.machine.context.network_version
    assert (ret.receipt.exit_code, ret.receipt.return_data, ret.receipt.gas_used) == (
        expected.exit_code,
        expected.return_data,
        expected.gas_used,
    )
    assert ret.receipt.version == (RECEIPT_V1 if nv >= 18 else RECEIPT_V0)
    assert ret.receipt.events_root is None
    outputs = GasOutputs.compute(
        expected.gas_used,
        setup.message.gas_limit,
        setup.machine.context.base_fee,
        setup.message.gas_fee_cap,
        setup.message.gas_premium,
    )
    assert (ret.base_fee_burn, ret.miner_tip, ret.refund) == (
        outputs.base_fee_burn,
        outputs.miner_tip,
        outputs.refund,
    )
    root = setup.executor.flush()
    assert root == setup.vector.post_state_root
    # Every fee went where the chain recorded it: compare balances with the expected tree.
    expected_tree = StateTree(setup.machine.blockstore, setup.vector.post_state_root)
    actual_tree = StateTree(setup.machine.blockstore, root)
    for target in (setup.message.from_, setup.message.to, REWARD_ACTOR_ID, BURNT_FUNDS_ACTOR_ID):
        assert actual_tree.get_actor(target) == expected_tree.get_actor(target)


@BOTH
def test_send_to_an_unknown_actor_address_fails_with_invalid_receiver(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    _forget_addresses_except(setup, setup.message.from_)
    message = replace(setup.message, to=UNKNOWN_ACTOR)
    ret = setup.apply(message)
    assert ret.receipt.exit_code == ExitCode.SYS_INVALID_RECEIVER
    # Only inclusion is charged: resolving the receiver fails before anything else.
    assert ret.receipt.gas_used == setup.inclusion_gas(message)
    assert isinstance(ret.failure_info, MessageFailure)
    assert "actor does not exist" in str(ret.failure_info)
    sender = setup.machine.state_tree.get_actor(setup.message.from_)
    assert sender is not None
    assert sender.sequence == setup.message.sequence + 1


@BOTH
def test_send_to_a_new_key_address_needs_the_account_constructor(
    shared: Path, relative: str
) -> None:
    setup = _setup(shared, relative)
    _forget_addresses_except(setup, setup.message.from_)
    message = replace(setup.message, to=UNKNOWN_SECP, gas_limit=ROOMY_GAS_LIMIT)
    with pytest.raises(ActorCodeUnavailable, match=r"method 1 of f0[0-9]+ \(account"):
        setup.apply(message)
    assert not setup.machine.state_tree.in_transaction


def test_nv18_send_to_an_unknown_eam_address_creates_a_funded_placeholder(
    shared: Path,
) -> None:
    setup = _setup(shared, HYGGE_SEND)
    _forget_addresses_except(setup, setup.message.from_)
    f4 = Address.new_delegated(10, bytes(range(20)))
    message = replace(setup.message, to=f4, gas_limit=ROOMY_GAS_LIMIT)
    ret = setup.apply(message)
    assert ret.receipt.exit_code == ExitCode.OK
    prices = setup.machine.context.price_list
    assert isinstance(prices, PriceListV3)
    charges = [
        prices.on_chain_message(raw_length(message, message.encode())),
        prices.on_create_actor(True),
        prices.on_actor_lookup(),
        prices.on_actor_update(),
        prices.on_value_transfer(),
    ]
    assert ret.receipt.gas_used == round_up(sum(charge.total for charge in charges))
    placeholder = setup.machine.state_tree.get_actor(f4)
    assert placeholder is not None
    assert placeholder.code == setup.machine.builtin_actors.code_of("placeholder")
    assert placeholder.delegated_address == f4
    assert placeholder.balance == message.value


def test_nv18_placeholder_sender_with_an_eam_address_sends_as_an_ethaccount(
    shared: Path,
) -> None:
    setup = _setup(shared, HYGGE_SEND)
    tree = setup.machine.state_tree
    sender_id = tree.lookup_id(setup.message.from_)
    assert sender_id is not None
    sender = tree.get_actor(sender_id)
    assert sender is not None
    builtin = setup.machine.builtin_actors
    f4 = Address.new_delegated(10, bytes(20))
    tree.set_actor(
        sender_id,
        replace(sender, code=builtin.code_of("placeholder"), sequence=0, delegated_address=f4),
    )
    ret = setup.apply(replace(setup.message, sequence=0))
    assert ret.receipt.exit_code == ExitCode.OK
    assert ret.receipt.gas_used == setup.vector.receipts[0].gas_used
    after = tree.get_actor(sender_id)
    assert after is not None
    assert after.code == builtin.code_of("ethaccount")
    assert after.sequence == 1


def test_nv17_sender_must_be_an_account_actor(
    shared: Path,
) -> None:
    setup = _setup(shared, SHARK_SEND)
    tree = setup.machine.state_tree
    sender_id = tree.lookup_id(setup.message.from_)
    assert sender_id is not None
    sender = tree.get_actor(sender_id)
    assert sender is not None
    tree.set_actor(sender_id, replace(sender, code=setup.machine.builtin_actors.code_of("init")))
    ret = setup.apply()
    assert ret.receipt.exit_code == ExitCode.SYS_SENDER_INVALID


@BOTH
def test_implicit_message_skips_the_nonce_and_pays_nothing(shared: Path, relative: str) -> None:
    setup = _setup(shared, relative)
    message = replace(setup.message, from_=Address.new_id(0), value=0, sequence=12345)
    ret = setup.apply(message, ApplyKind.IMPLICIT)
    assert ret.receipt.exit_code == ExitCode.OK
    prices = setup.machine.context.price_list
    expected_charge = (
        prices.on_method_invocation(0, 0) if isinstance(prices, PriceListV2) else GasCharge("", 0)
    )
    assert ret.receipt.gas_used == round_up(expected_charge.total)
    assert (ret.base_fee_burn, ret.miner_tip, ret.refund, ret.penalty) == (0, 0, 0, 0)
    system = setup.machine.state_tree.get_actor(0)
    assert system is not None and system.sequence == 0


# -- actor code, scripted -----------------------------------------------------------------------


Script = Callable[[CallManager, InvocationRequest], ActorOutcome]


@dataclass
class ScriptedInvoker:
    """Plays the WebAssembly runtime's part: runs ``script`` for every invocation."""

    script: Script
    requests: list[InvocationRequest]

    def invoke(self, call_manager: CallManager, request: InvocationRequest) -> ActorOutcome:
        self.requests.append(request)
        return self.script(call_manager, request)


def _scripted(shared: Path, relative: str, script: Script) -> tuple[Setup, ScriptedInvoker]:
    invoker = ScriptedInvoker(script, [])
    return _setup(shared, relative, invoker), invoker


def test_nv18_return_value_is_charged_when_returned_to_the_chain(shared: Path) -> None:
    returned = Block(CBOR, b"\x82\x01\x02")
    setup, invoker = _scripted(shared, HYGGE_SEND, lambda cm, req: ActorExit(0, returned))
    message = replace(setup.message, method_num=2, params=b"\x80")
    ret = setup.apply(message)
    assert ret.receipt.exit_code == ExitCode.OK
    assert ret.receipt.return_data == returned.data
    prices = setup.machine.context.price_list
    assert isinstance(prices, PriceListV3)
    method_return = prices.on_method_return(1, returned.size)
    assert method_return is not None
    charges = [
        prices.on_chain_message(raw_length(message, message.encode())),
        prices.on_value_transfer(),
        prices.on_actor_update(),
        prices.on_method_invocation(),
        method_return,
    ]
    assert ret.receipt.gas_used == round_up(sum(charge.total for charge in charges))
    (request,) = invoker.requests
    assert request.params == Block(CBOR, b"\x80")
    assert request.method == 2
    assert request.value == message.value


def test_nv17_top_level_parameters_are_dag_cbor_and_the_return_is_charged_by_size(
    shared: Path,
) -> None:
    returned = Block(CBOR, b"\x41\x07")
    setup, invoker = _scripted(shared, SHARK_SEND, lambda cm, req: ActorExit(0, returned))
    message = replace(setup.message, method_num=2, params=b"\x80")
    ret = setup.apply(message)
    prices = setup.machine.context.price_list
    assert isinstance(prices, PriceListV2)
    charges = [
        prices.on_chain_message(raw_length(message, message.encode())),
        prices.on_method_invocation(message.value, 2),
        prices.on_chain_return_value(returned.size),
    ]
    assert ret.receipt.gas_used == round_up(sum(charge.total for charge in charges))
    (request,) = invoker.requests
    assert request.params is not None and request.params.codec == 0x71


@BOTH
def test_actor_abort_reverts_its_changes_and_records_a_frame(shared: Path, relative: str) -> None:
    def abort_after_paying_the_burnt_funds_actor(
        cm: CallManager, request: InvocationRequest
    ) -> ActorOutcome:
        cm.transfer(request.receiver, BURNT_FUNDS_ACTOR_ID, 1)
        return ActorExit(ExitCode.USR_ILLEGAL_STATE, None, "bad state")

    setup, _ = _scripted(shared, relative, abort_after_paying_the_burnt_funds_actor)
    message = replace(setup.message, method_num=3)
    receiver_before = setup.machine.state_tree.get_actor(message.to)
    assert receiver_before is not None
    ret = setup.apply(message)
    assert ret.receipt.exit_code == ExitCode.USR_ILLEGAL_STATE
    assert isinstance(ret.failure_info, MessageFailure)
    (frame,) = ret.failure_info.backtrace.frames
    assert (frame.method, frame.code, frame.message) == (3, ExitCode.USR_ILLEGAL_STATE, "bad state")
    receiver_after = setup.machine.state_tree.get_actor(message.to)
    # The value transfer and the actor's own transfer were both reverted (f099 may be the
    # receiver itself, which then only gains fees, never the aborted transfer).
    assert receiver_after is not None
    if message.to != Address.new_id(BURNT_FUNDS_ACTOR_ID):
        assert receiver_after.balance == receiver_before.balance


@BOTH
def test_actor_running_out_of_gas_uses_the_whole_limit(shared: Path, relative: str) -> None:
    def exhaust(cm: CallManager, request: InvocationRequest) -> ActorOutcome:
        try:
            cm.charge_gas(GasCharge("exec", cm.gas_available + 1))
        except OutOfGas as exc:
            return ActorOutOfGas(exc)
        raise AssertionError("the charge must exceed the limit")

    setup, _ = _scripted(shared, relative, exhaust)
    ret = setup.apply(replace(setup.message, method_num=2))
    assert ret.receipt.exit_code == ExitCode.SYS_OUT_OF_GAS
    assert ret.receipt.gas_used == setup.message.gas_limit


@BOTH
def test_fatal_actor_failure_is_an_assertion_failure_using_all_gas(
    shared: Path, relative: str
) -> None:
    setup, _ = _scripted(shared, relative, lambda cm, req: ActorFatal("broken invariant"))
    ret = setup.apply(replace(setup.message, method_num=2))
    assert ret.receipt.exit_code == ExitCode.SYS_ASSERTION_FAILED
    assert ret.receipt.gas_used == setup.message.gas_limit
    assert "broken invariant" in str(ret.failure_info)


@pytest.mark.parametrize(
    ("relative", "reachable_depth"), [(SHARK_SEND, 4), (HYGGE_SEND, 3)], ids=["nv17", "nv18"]
)
def test_call_depth_limit_allows_one_more_call_before_nv18(
    shared: Path, relative: str, reachable_depth: int
) -> None:
    depths: list[int] = []

    def recurse(cm: CallManager, request: InvocationRequest) -> ActorOutcome:
        depths.append(cm.call_stack_depth)
        try:
            cm.send(request.receiver, Address.new_id(request.receiver), 2, None, 0)
        except SyscallError as exc:
            assert exc.number is ErrorNumber.LIMIT_EXCEEDED
        return ActorExit(0)

    setup, _ = _scripted(shared, relative, recurse)
    network = replace(setup.machine.context.network, max_call_depth=3)
    setup.machine.context = replace(setup.machine.context, network=network)
    ret = setup.apply(replace(setup.message, method_num=2, gas_limit=ROOMY_GAS_LIMIT))
    assert ret.receipt.exit_code == ExitCode.OK
    assert max(depths) == reachable_depth


def test_machine_refuses_network_versions_outside_ref_fvm_v2_and_v3(shared: Path) -> None:
    setup = _setup(shared, HYGGE_SEND)
    network = replace(setup.machine.context.network, network_version=21)
    context = replace(setup.machine.context, network=network)
    with pytest.raises(MachineError, match="unsupported network version: 21"):
        Machine.create(context, setup.vector.blockstore(), setup.machine.externs)


def test_manifest_comes_from_the_system_actor_state(shared: Path) -> None:
    setup = _setup(shared, HYGGE_SEND)
    builtin = setup.machine.builtin_actors
    assert builtin.data_cid == CID.parse(
        "bafy2bzacea5a4r4pgc5pjcy2kx7mcbjcmc72chs7qqyl5o4jirxiplnqdmpo2"
    )
    assert builtin.name_of(builtin.code_of("storageminer")) == "storageminer"
    assert builtin.builtin_id(builtin.code_of("system")) == 1
