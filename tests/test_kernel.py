"""The kernel on real mainnet state: blocks, actors, sends, randomness, events, per generation.

Each test builds the machine a conformance vector describes (network version 17 for ref-fvm
v2, 18 for v3) and a kernel bound to a call manager over it, then checks one operation's
result, its refusals (as error numbers) and the gas it charges against the price list.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fvm.address import Address
from fvm.call_manager import CallManager
from fvm.conformance.runner import bundle_source, machine_for_variant
from fvm.conformance.vector import TestVector, load_vector
from fvm.gas.charge import GasCharge
from fvm.gas.price_list import PriceListV3
from fvm.invocation import Block, FatalError, UnavailableActorInvoker
from fvm.kernel.block_registry import V2_BLOCK_CODECS, V3_BLOCK_CODECS, BlockRegistry
from fvm.kernel.default import Kernel, KernelV2, KernelV3
from fvm.kernel.events import EventEntry, StampedEvent
from fvm.machine import INIT_ACTOR_ID, Machine
from fvm.message import Message
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.randomness import draw_randomness
from fvm.syscalls.abi import ErrorNumber, SyscallError
from store import dag_cbor
from store.cid import BLAKE2B_256, CBOR, CID, DAG_CBOR, RAW, SHA2_256

HYGGE_MULTISIG = (
    "extracted/0002-hygge-01/fil_10_multisig/Propose/Ok/ext-0002-fil_10_multisig-Propose-Ok-1.json"
)
SHARK_INIT_EXEC = "extracted/0001-shark-01/fil_9_init/Exec/Ok/ext-0001-fil_9_init-Exec-Ok-1.json"
SHARK_AGGREGATE = (
    "extracted/0001-shark-01/fil_9_storageminer/ProveCommitAggregate/Ok/"
    "ext-0001-fil_9_storageminer-ProveCommitAggregate-Ok-2.json"
)
DAG_PB = 0x70


def machine_of(vectors_dir: Path, actors_dir: Path, relative: str) -> tuple[TestVector, Machine]:
    vector = load_vector(vectors_dir / relative)
    machine = machine_for_variant(
        vector, vector.variants[0], vector.blockstore(), bundle_source(actors_dir)
    )
    return vector, machine


def call_manager_for(machine: Machine, message: Message) -> CallManager:
    sender = machine.state_tree.lookup_id(message.from_)
    assert sender is not None
    machine.context = replace(machine.context, tracing=True)
    return CallManager(
        machine,
        UnavailableActorInvoker(),
        gas_limit=message.gas_limit,
        origin=sender,
        origin_address=message.from_,
        receiver=machine.state_tree.lookup_id(message.to),
        receiver_address=message.to,
        nonce=message.sequence,
        gas_premium=message.gas_premium,
    )


def kernel_of(
    kind: type[Kernel], call_manager: CallManager, actor_id: int, *, read_only: bool = False
) -> Kernel:
    return kind(
        call_manager,
        kind.new_block_registry(),
        call_manager.origin,
        actor_id,
        2,
        0,
        read_only,
        proof_verifier=AcceptAllProofVerifier(),
    )


@pytest.fixture
def hygge(vectors_dir: Path, actors_dir: Path) -> tuple[TestVector, Machine, CallManager]:
    vector, machine = machine_of(vectors_dir, actors_dir, HYGGE_MULTISIG)
    message = Message.decode(vector.messages[0].data)
    return vector, machine, call_manager_for(machine, message)


@pytest.fixture
def shark(vectors_dir: Path, actors_dir: Path) -> tuple[TestVector, Machine, CallManager]:
    vector, machine = machine_of(vectors_dir, actors_dir, SHARK_INIT_EXEC)
    message = Message.decode(vector.messages[0].data)
    return vector, machine, call_manager_for(machine, message)


def v3_kernel(call_manager: CallManager, actor_id: int, *, read_only: bool = False) -> KernelV3:
    kernel = kernel_of(KernelV3, call_manager, actor_id, read_only=read_only)
    assert isinstance(kernel, KernelV3)
    return kernel


def v2_kernel(call_manager: CallManager, actor_id: int) -> KernelV2:
    kernel = kernel_of(KernelV2, call_manager, actor_id)
    assert isinstance(kernel, KernelV2)
    return kernel


def charges(call_manager: CallManager) -> list[GasCharge]:
    return call_manager.gas_tracker.drain_trace()


def error_number(call: object) -> ErrorNumber:
    assert callable(call)
    with pytest.raises(SyscallError) as raised:
        call()
    return raised.value.number


# -- the block registry ------------------------------------------------------------------------


def test_block_handles_count_from_one_and_unknown_handles_are_invalid() -> None:
    registry = BlockRegistry(V3_BLOCK_CODECS)
    assert registry.put(Block(DAG_CBOR, b"\x80")) == 1
    assert registry.put(Block(RAW, b"raw")) == 2
    assert registry.get(2) == Block(RAW, b"raw")
    assert registry.stat(1) == (DAG_CBOR, 1)
    for handle in (0, 3):
        assert error_number(lambda handle=handle: registry.get(handle)) is (
            ErrorNumber.INVALID_HANDLE
        )


def test_v2_registers_only_dag_cbor_and_v3_adds_cbor_and_raw() -> None:
    v2 = BlockRegistry(V2_BLOCK_CODECS)
    v3 = BlockRegistry(V3_BLOCK_CODECS)
    for codec in (CBOR, RAW):
        assert error_number(lambda codec=codec: v2.put(Block(codec, b""))) is (
            ErrorNumber.ILLEGAL_CODEC
        )
        assert v3.put(Block(codec, b"")) >= 1
    assert error_number(lambda: v3.put(Block(DAG_PB, b""))) is ErrorNumber.ILLEGAL_CODEC
    assert len(v2) == 0 and len(v3) == 2


# -- blocks ------------------------------------------------------------------------------------


def test_block_link_stores_the_block_under_its_blake2b_cid_and_charges_create_and_link(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    _, machine, call_manager = hygge
    kernel = v3_kernel(call_manager, call_manager.origin)
    data = dag_cbor.encode([1, "two", b"three"])
    charges(call_manager)
    handle = kernel.block_create(DAG_CBOR, data)
    cid = kernel.block_link(handle, BLAKE2B_256, 32)
    assert cid == CID.hash_of(data)
    assert machine.blockstore.get(cid) == data
    prices = kernel.prices
    assert charges(call_manager) == [
        prices.on_block_create(len(data)),
        prices.on_block_link(BLAKE2B_256, len(data)),
    ]
    assert error_number(lambda: kernel.block_link(handle, SHA2_256, 32)) is ErrorNumber.ILLEGAL_CID
    assert error_number(lambda: kernel.block_link(handle, BLAKE2B_256, 20)) is (
        ErrorNumber.ILLEGAL_CID
    )
    assert error_number(lambda: kernel.block_link(9, BLAKE2B_256, 32)) is (
        ErrorNumber.INVALID_HANDLE
    )


def test_block_read_copies_at_most_the_buffer_and_reports_what_is_left(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    _, _, call_manager = hygge
    kernel = v3_kernel(call_manager, call_manager.origin)
    handle = kernel.block_create(RAW, b"0123456789")
    charges(call_manager)
    assert kernel.block_read(handle, 4, 3) == (b"456", 3)
    assert kernel.block_read(handle, 8, 5) == (b"89", -3)
    assert kernel.block_read(handle, 20, 2) == (b"", -12)
    prices = kernel.prices
    assert charges(call_manager) == [
        prices.on_block_read(3),
        prices.on_block_read(2),
        prices.on_block_read(0),
    ]
    assert error_number(lambda: kernel.block_read(handle, 1 << 31, 1)) is (
        ErrorNumber.ILLEGAL_ARGUMENT
    )


def test_block_open_reads_state_and_charges_by_size(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    _, machine, call_manager = hygge
    kernel = v3_kernel(call_manager, INIT_ACTOR_ID)
    root = kernel.root()
    charges(call_manager)
    handle, codec, size = kernel.block_open(root)
    data = machine.blockstore.get(root)
    assert data is not None and (codec, size) == (DAG_CBOR, len(data))
    assert kernel.blocks.get(handle).data == data
    assert charges(call_manager) == [
        kernel.prices.on_block_open_base(),
        kernel.prices.on_block_open_per_byte(len(data)),
    ]
    missing = CID.hash_of(b"not in the store")
    with pytest.raises(FatalError, match="missing state"):
        kernel.block_open(missing)


def test_v3_refuses_blocks_over_one_mebibyte_before_charging(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    _, _, call_manager = hygge
    kernel = v3_kernel(call_manager, call_manager.origin)
    charges(call_manager)
    assert error_number(lambda: kernel.block_create(RAW, bytes((1 << 20) + 1))) is (
        ErrorNumber.LIMIT_EXCEEDED
    )
    assert charges(call_manager) == []


# -- the calling actor and other actors --------------------------------------------------------


def test_set_root_replaces_the_callers_state_and_read_only_calls_cannot(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    _, machine, call_manager = hygge
    origin = call_manager.origin
    new_root = CID.hash_of(dag_cbor.encode(["new state"]))
    v3_kernel(call_manager, origin).set_root(new_root)
    actor = machine.state_tree.get_actor(origin)
    assert actor is not None and actor.state == new_root
    read_only = v3_kernel(call_manager, origin, read_only=True)
    assert error_number(lambda: read_only.set_root(new_root)) is ErrorNumber.READ_ONLY
    assert error_number(lambda: read_only.self_destruct(Address.new_id(0))) is (
        ErrorNumber.READ_ONLY
    )
    assert error_number(lambda: read_only.emit_event(dag_cbor.encode([]))) is (
        ErrorNumber.READ_ONLY
    )
    assert error_number(
        lambda: read_only.send(Address.new_id(INIT_ACTOR_ID), 0, 0, 1)
    ) is ErrorNumber.READ_ONLY


def test_deleted_actor_has_no_root_and_zero_balance(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = hygge
    receiver = Message.decode(vector.messages[0].data).to
    receiver_id = machine.state_tree.lookup_id(receiver)
    assert receiver_id is not None
    kernel = v3_kernel(call_manager, receiver_id)
    balance = kernel.current_balance()
    origin = machine.state_tree.get_actor(call_manager.origin)
    assert origin is not None
    kernel.self_destruct(Address.new_id(call_manager.origin))
    assert machine.state_tree.get_actor(receiver_id) is None
    after = machine.state_tree.get_actor(call_manager.origin)
    assert after is not None and after.balance == origin.balance + balance
    assert kernel.current_balance() == 0
    assert error_number(kernel.root) is ErrorNumber.ILLEGAL_OPERATION


def test_v3_resolves_addresses_and_looks_up_actors_with_named_charges(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = hygge
    message = Message.decode(vector.messages[0].data)
    kernel = v3_kernel(call_manager, call_manager.origin)
    charges(call_manager)
    assert kernel.resolve_address(message.from_) == call_manager.origin
    code = kernel.get_actor_code_cid(call_manager.origin)
    assert machine.builtin_actors.name_of(code) == "account"
    actor_type = kernel.get_builtin_actor_type(code)
    assert actor_type == machine.builtin_actors.builtin_id(code) > 0
    assert kernel.get_code_cid_for_type(actor_type) == code
    assert kernel.lookup_delegated_address(call_manager.origin) is None
    names = [charge.name for charge in charges(call_manager)]
    assert names == [
        "OnResolveAddress",
        "OnGetActorCodeCid",
        "OnGetBuiltinActorType",
        "OnGetCodeCidForType",
        "OnLookupAddress",
    ]
    gone = deleted_receiver(vector, machine)
    assert error_number(lambda: kernel.get_actor_code_cid(gone)) is ErrorNumber.NOT_FOUND
    assert error_number(lambda: kernel.balance_of(gone)) is ErrorNumber.NOT_FOUND
    assert error_number(lambda: kernel.lookup_delegated_address(gone)) is ErrorNumber.NOT_FOUND
    assert error_number(lambda: kernel.get_code_cid_for_type(10_000)) is (
        ErrorNumber.ILLEGAL_ARGUMENT
    )


def deleted_receiver(vector: TestVector, machine: Machine) -> int:
    """Delete the vector's receiver from the state tree; return its (now free) ID.

    Vectors hold only the state their messages touched, so IDs never used cannot be looked
    up; a deleted actor is absent without reading more of the tree.
    """
    receiver = machine.state_tree.lookup_id(Message.decode(vector.messages[0].data).to)
    assert receiver is not None
    machine.state_tree.delete_actor(receiver)
    return receiver


def test_v3_lets_only_the_init_actor_create_actors(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = hygge
    free_id = deleted_receiver(vector, machine)
    code = machine.builtin_actors.code_of("multisig")
    kernel = v3_kernel(call_manager, call_manager.origin)
    assert error_number(lambda: kernel.create_actor(code, free_id, None)) is (
        ErrorNumber.FORBIDDEN
    )
    init = v3_kernel(call_manager, INIT_ACTOR_ID)
    init.create_actor(code, free_id, None)
    created = machine.state_tree.get_actor(free_id)
    assert created is not None and created.code == code and created.balance == 0
    assert error_number(lambda: init.create_actor(code, free_id, None)) is ErrorNumber.FORBIDDEN


def test_v2_creates_builtin_non_singleton_actors_for_any_caller(
    shark: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = shark
    free_id = deleted_receiver(vector, machine)
    builtin = machine.builtin_actors
    kernel = v2_kernel(call_manager, call_manager.origin)
    charges(call_manager)
    kernel.create_actor(builtin.code_of("multisig"), free_id)
    assert charges(call_manager) == [kernel.prices.on_create_actor()]
    created = machine.state_tree.get_actor(free_id)
    assert created is not None and created.code == builtin.code_of("multisig")
    existing = builtin.code_of("multisig")
    assert error_number(lambda: kernel.create_actor(existing, free_id)) is ErrorNumber.FORBIDDEN
    singleton = builtin.code_of("storagepower")
    assert error_number(lambda: kernel.create_actor(singleton, free_id)) is ErrorNumber.FORBIDDEN
    not_builtin = CID.hash_of(b"user code", codec=RAW)
    assert error_number(lambda: kernel.create_actor(not_builtin, free_id)) is (
        ErrorNumber.FORBIDDEN
    )


def store_account_state(machine: Machine, actor_id: int, key_address: Address) -> None:
    """Vectors omit the state of accounts their messages did not read: put it back (an
    account's state is ``[key address]``, so its CID must be the recorded head)."""
    actor = machine.state_tree.get_actor(actor_id)
    assert actor is not None
    data = dag_cbor.encode([key_address.to_bytes()])
    assert CID.hash_of(data) == actor.state
    machine.blockstore.put_keyed(actor.state, data)


def test_v2_new_actor_addresses_hash_the_origin_key_address_nonce_and_a_counter(
    shark: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = shark
    message = Message.decode(vector.messages[0].data)
    # The origin given by ID resolves, through its account state, to its BLS key address.
    store_account_state(machine, call_manager.origin, message.from_)
    call_manager.origin_address = Address.new_id(call_manager.origin)
    kernel = v2_kernel(call_manager, INIT_ACTOR_ID)
    charges(call_manager)
    first = kernel.new_actor_address()
    second = kernel.new_actor_address()
    seed = message.from_.encode() + message.sequence.to_bytes(8, "big")
    assert first == Address.new_actor(seed + (0).to_bytes(8, "big"))
    assert second == Address.new_actor(seed + (1).to_bytes(8, "big"))
    assert charges(call_manager) == []
    # The robust address the chain recorded for the actor init created in this message.
    recorded = dag_cbor.decode(vector.receipts[0].return_data)[1]
    assert Address.from_bytes(recorded) == first


def test_v2_resolves_a_signer_to_its_key_address_charging_for_the_state_read(
    shark: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = shark
    message = Message.decode(vector.messages[0].data)
    store_account_state(machine, call_manager.origin, message.from_)
    kernel = v2_kernel(call_manager, call_manager.origin)
    charges(call_manager)
    assert kernel.resolve_key_address(message.from_) == message.from_
    assert charges(call_manager) == []
    assert kernel.resolve_key_address(Address.new_id(call_manager.origin)) == message.from_
    prices = kernel.prices
    assert charges(call_manager) == [
        prices.on_block_open_base(),
        prices.on_block_open_per_byte(len(dag_cbor.encode([message.from_.to_bytes()]))),
    ]
    assert error_number(lambda: kernel.resolve_key_address(Address.new_id(INIT_ACTOR_ID))) is (
        ErrorNumber.ILLEGAL_ARGUMENT
    )
    gone = deleted_receiver(vector, machine)
    assert error_number(lambda: kernel.resolve_key_address(Address.new_id(gone))) is (
        ErrorNumber.NOT_FOUND
    )


# -- contexts, network, randomness -------------------------------------------------------------


def test_v3_message_and_network_contexts_carry_the_message_and_epoch(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, machine, call_manager = hygge
    message = Message.decode(vector.messages[0].data)
    kernel = v3_kernel(call_manager, 1234, read_only=True)
    premium = message.gas_premium
    assert kernel.message_context() == (
        call_manager.origin,
        message.sequence,
        call_manager.origin,
        1234,
        2,
        0,
        0,
        premium & ((1 << 64) - 1),
        premium >> 64,
        1,
    )
    context = machine.context
    assert kernel.network_context() == (
        vector.variants[0].epoch,
        vector.variants[0].epoch * 30,
        vector.base_fee,
        0,
        0,
        18,
    )
    assert context.network_version == 18


def test_v3_tipset_cids_are_only_looked_up_within_finality(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    vector, _, call_manager = hygge
    kernel = v3_kernel(call_manager, call_manager.origin)
    epoch = vector.variants[0].epoch
    for refused in (-1, epoch, epoch + 1, epoch - 900):
        assert error_number(lambda refused=refused: kernel.tipset_cid(refused)) is (
            ErrorNumber.ILLEGAL_ARGUMENT
        )
    # The vector's externs record no tipsets: asking the node is fatal, after the charge.
    charges(call_manager)
    with pytest.raises(FatalError):
        kernel.tipset_cid(epoch - 2)
    prices = kernel.prices
    assert isinstance(prices, PriceListV3)
    assert charges(call_manager) == [prices.on_tipset_cid(True)]


def test_randomness_mixes_the_recorded_digest_with_tag_epoch_and_entropy(
    vectors_dir: Path, actors_dir: Path
) -> None:
    vector, machine = machine_of(vectors_dir, actors_dir, SHARK_AGGREGATE)
    call_manager = call_manager_for(machine, Message.decode(vector.messages[0].data))
    kernel = v2_kernel(call_manager, call_manager.origin)
    chain = next(match for match in vector.randomness if match.kind == "chain")
    beacon = next(match for match in vector.randomness if match.kind == "beacon")
    assert kernel.get_randomness_from_tickets(5, chain.epoch, b"entropy") == draw_randomness(
        chain.ret, 5, chain.epoch, b"entropy"
    )
    assert kernel.get_randomness_from_beacon(6, beacon.epoch, b"") == draw_randomness(
        beacon.ret, 6, beacon.epoch, b""
    )
    prices = kernel.prices
    assert [charge for charge in charges(call_manager)][-2:] == [
        prices.on_get_randomness(7),
        prices.on_get_randomness(0),
    ]


# -- events ------------------------------------------------------------------------------------


def test_emitted_events_are_validated_charged_and_stamped_with_the_emitter(
    hygge: tuple[TestVector, Machine, CallManager],
) -> None:
    _, _, call_manager = hygge
    kernel = v3_kernel(call_manager, 1001)
    raw = dag_cbor.encode([[3, "topic", RAW, b"value"]])
    call_manager.events.begin_transaction()
    charges(call_manager)
    kernel.emit_event(raw)
    call_manager.events.end_transaction(revert=False)
    events, root = call_manager.events.finish()
    assert events == (StampedEvent(1001, (EventEntry(3, "topic", RAW, b"value"),)),)
    assert events[0].to_cbor() == [1001, [[3, "topic", RAW, b"value"]]]
    assert root is not None
    prices = kernel.prices
    assert charges(call_manager) == [
        prices.on_actor_event_validate(len(raw)),
        prices.on_actor_event_accept([(3, 5, 5)], len(raw)),
    ]


@pytest.mark.parametrize(
    ("event", "number"),
    [
        (b"\xff", ErrorNumber.ILLEGAL_ARGUMENT),
        (dag_cbor.encode({"entries": []}), ErrorNumber.ILLEGAL_ARGUMENT),
        (dag_cbor.encode([[0, "k", DAG_CBOR, b""]]), ErrorNumber.ILLEGAL_CODEC),
        (dag_cbor.encode([[0, "k" * 33, RAW, b""]]), ErrorNumber.ILLEGAL_ARGUMENT),
        (dag_cbor.encode([[0, "k", RAW, b""]] * 257), ErrorNumber.ILLEGAL_ARGUMENT),
        (dag_cbor.encode([[0, "k", RAW, bytes(8193)]]), ErrorNumber.ILLEGAL_ARGUMENT),
    ],
)
def test_malformed_or_oversized_events_are_refused(
    hygge: tuple[TestVector, Machine, CallManager], event: bytes, number: ErrorNumber
) -> None:
    _, _, call_manager = hygge
    kernel = v3_kernel(call_manager, 1001)
    assert error_number(lambda: kernel.emit_event(event)) is number
