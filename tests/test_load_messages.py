"""The devnet load generator's messages, applied through the real FVM (actors v10, nv18).

The state is taken from mainnet: the pre-state of the conformance vector
``0002-hygge-01/fil_10_multisig/Approve/Ok/…-1`` (network version 18) holds a funded f1 account
(f01550795's signer ``f1numpwk…``, about 7.15 FIL), the system actor (whose state names the v10
manifest), the reward and burnt-funds actors. An extracted vector only carries the blocks its
own message touched, so its actors HAMT and the init actor's address map have holes: a lookup
of any new address (a transfer's new account, an Exec'd multisig) hits a missing block, and the
EAM (f010) is not there at all. The fixture therefore moves those real actors, unchanged, into a
fresh state tree with a fresh init address map (holding the f1 account and keeping mainnet's
``next_id``) and creates the EAM as the nv18 migration does (go-state-types
``builtin/v10/migration`` ``CreateEAMActor``: manifest code, empty state, no funds). The f1
account's own state block (its key address, which the EAM asks for) is missing from the CAR
too; it is rebuilt and checked against the state CID mainnet recorded.

Every message is priced with :func:`with_gas` over a trial on the current state, then applied
for real and flushed, like a node would. Signatures are not checked by the executor, so the
mainnet account can send without its key.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.actor_state import ActorState
from fvm.address import Address, Protocol
from fvm.bundle import load_bundle
from fvm.conformance.externs import ReplayingExterns
from fvm.conformance.vector import TestVector, load_vector
from fvm.crypto import bls, secp256k1
from fvm.crypto.hashes import keccak_256
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import ApplyKind, ApplyRet, Executor
from fvm.machine import (
    BURNT_FUNDS_ACTOR_ID,
    EAM_ACTOR_ID,
    INIT_ACTOR_ID,
    REWARD_ACTOR_ID,
    SYSTEM_ACTOR_ID,
    Machine,
    MachineContext,
    NetworkConfig,
)
from fvm.message import BLOCK_GAS_LIMIT, Message
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.receipt import ExitCode, Receipt
from fvm.state_tree import HAMT_BIT_WIDTH, InitActorState, StateTree, hamt_layout
from fvm.token import FILECOIN_PRECISION, encode_bigint
from fvm.wasm_invoker import WasmActorInvoker
from node.devnet import evm_contract
from node.devnet.load_messages import (
    DEFAULT_MAX_FEE,
    EAM_ACTOR_ADDRESS,
    EVM_INVOKE_CONTRACT_METHOD,
    MIN_GAS_PREMIUM,
    ActorReturnError,
    ApproveReturn,
    EamCreateReturn,
    ExecReturn,
    GasEstimationFailed,
    ProposeReturn,
    TrialApply,
    approve,
    cap_gas_fee,
    create_evm_contract,
    create_multisig,
    decode_approve_return,
    decode_eam_create_return,
    decode_evm_return,
    decode_exec_return,
    decode_propose_return,
    estimate_fee_cap,
    estimate_gas_limit,
    frc42_method_number,
    invoke_evm_contract,
    proposal_hash,
    propose,
    state_trial,
    transfer,
    trial_chain_length,
    with_gas,
)
from store import dag_cbor
from store.blockstore import MemoryBlockstore, put
from store.cid import CID, RAW
from store.errors import MalformedInput
from store.hamt import Hamt

VECTOR = (
    "extracted/0002-hygge-01/fil_10_multisig/Approve/Ok/ext-0002-fil_10_multisig-Approve-Ok-1.json"
)
FIL = FILECOIN_PRECISION
EVM_GET_BYTECODE_METHOD = 3
# Signers the test holds keys for (the mainnet account's key is nobody's here).
SECOND_SIGNER_KEY = bytes.fromhex("11" * 32)
BLS_KEY = bytes.fromhex("22" * 31 + "01")


def transplanted_state(vector: TestVector, store: MemoryBlockstore) -> tuple[CID, Address]:
    """A complete state tree made of the vector's real actors (see the module docstring);
    returns its root and the funded f1 account's key address."""
    source = StateTree(store, vector.pre_state_root)
    sender = Message.decode(vector.messages[0].data).from_
    assert sender.protocol is Protocol.SECP256K1
    sender_id = source.lookup_id(sender)
    assert sender_id is not None
    tree = StateTree(store, version=source.version)
    for actor_id in (SYSTEM_ACTOR_ID, REWARD_ACTOR_ID, BURNT_FUNDS_ACTOR_ID, sender_id):
        actor = source.get_actor(actor_id)
        assert actor is not None
        tree.set_actor(actor_id, actor)
    # The account's state block (its key address) was not read by the vector's message, so
    # the CAR lacks it; it is rebuilt here and must hash to the CID mainnet recorded.
    account = source.get_actor(sender_id)
    assert account is not None
    rebuilt = put(store, dag_cbor.encode([sender.to_bytes()]))
    assert rebuilt == account.state
    init_actor = source.get_actor(INIT_ACTOR_ID)
    assert init_actor is not None
    init_state = InitActorState.from_cbor(dag_cbor.decode(store.get(init_actor.state) or b""))
    address_map = Hamt(store, bit_width=HAMT_BIT_WIDTH, version=hamt_layout(tree.version))
    address_map.set(sender.to_bytes(), sender_id)
    fresh_init = InitActorState(address_map.flush(), init_state.next_id, init_state.network_name)
    tree.set_actor(
        INIT_ACTOR_ID,
        replace(init_actor, state=put(store, dag_cbor.encode(fresh_init.to_cbor()))),
    )
    system = source.get_actor(SYSTEM_ACTOR_ID)
    assert system is not None
    manifest = dag_cbor.decode(store.get(system.state) or b"")[0]
    entries = dict(dag_cbor.decode(store.get(manifest) or b""))
    tree.set_actor(EAM_ACTOR_ID, ActorState.new_empty(entries["eam"]))
    return tree.flush(), sender


@dataclass
class Devnet:
    """A state root advanced one priced, applied and flushed message at a time."""

    store: MemoryBlockstore
    root: CID
    vector: TestVector
    invoker: WasmActorInvoker
    estimates: list[tuple[Message, Receipt]] = field(default_factory=list)

    def context(self) -> MachineContext:
        epoch = self.vector.variants[0].epoch
        return MachineContext(
            network=replace(NetworkConfig.for_version(18), chain_id=314),
            epoch=epoch,
            initial_state_root=self.root,
            base_fee=self.vector.base_fee,
            circ_supply=self.vector.circ_supply,
            timestamp=1598306400 + 30 * epoch,
        )

    def machine(self) -> Machine:
        return Machine.create(self.context(), self.store, ReplayingExterns(self.vector.randomness))

    def tree(self) -> StateTree:
        return StateTree(self.store, self.root)

    def actor(self, address: Address) -> ActorState:
        actor = self.tree().get_actor(address)
        assert actor is not None, f"no actor at {address}"
        return actor

    def balance(self, address: Address) -> int:
        return self.actor(address).balance

    def nonce(self, address: Address) -> int:
        return self.actor(address).sequence

    def trial(self) -> TrialApply:
        trial = state_trial(
            self.store, self.context(), ReplayingExterns(self.vector.randomness), self.invoker
        )

        def recorded(message: Message) -> Receipt:
            receipt: Receipt = trial(message)
            self.estimates.append((message, receipt))
            return receipt

        return recorded

    def price(self, message: Message) -> Message:
        return with_gas(message, apply=self.trial(), base_fee=self.vector.base_fee)

    def send(self, message: Message) -> ApplyRet:
        """Price ``message``, apply it, flush; the result must be exit code OK."""
        priced = self.price(message)
        executor = Executor(self.machine(), self.invoker)
        length = trial_chain_length(priced)
        ret = run_on_execution_stack(
            lambda: executor.execute_message(priced, ApplyKind.EXPLICIT, length)
        )
        assert ret.receipt.exit_code == ExitCode.OK, ret.failure_info
        # The trial message was shorter (zero gas fields), so it paid a little less gas for
        # its bytes; the estimate leaves a quarter of room.
        trial_gas = self.estimates[-1][1].gas_used
        assert priced.gas_limit == trial_gas * 5 // 4
        assert trial_gas <= ret.receipt.gas_used < priced.gas_limit
        self.root = executor.flush()
        return ret


@dataclass
class Scenario:
    """Everything the load generator's message kinds did, in order, for the tests to check."""

    devnet: Devnet
    sender: Address
    second_signer: Address
    bls_account: Address
    balances: dict[str, int] = field(default_factory=dict)
    rets: dict[str, ApplyRet] = field(default_factory=dict)
    multisig: ExecReturn | None = None
    proposal: ProposeReturn | None = None
    wrong_hash_failure: GasEstimationFailed | None = None
    approval: ApproveReturn | None = None
    contract: EamCreateReturn | None = None
    contract_nonce: int = 0
    counts: list[int] = field(default_factory=list)
    bytecode: bytes = b""


def run_scenario(devnet: Devnet, sender: Address) -> Scenario:
    second = Address.new_secp256k1(secp256k1.public_key(SECOND_SIGNER_KEY))
    bls_account = Address.new_bls(bls.public_key(BLS_KEY))
    scenario = Scenario(devnet, sender, second, bls_account)
    b = scenario.balances
    r = scenario.rets

    b["sender_before"] = devnet.balance(sender)
    r["secp"] = devnet.send(
        transfer(sender=sender, nonce=devnet.nonce(sender), to=second, value=2 * FIL)
    )
    r["to_bls"] = devnet.send(
        transfer(sender=sender, nonce=devnet.nonce(sender), to=bls_account, value=FIL)
    )
    b["bls_funded"] = devnet.balance(bls_account)
    b["second_before_bls"] = devnet.balance(second)
    r["bls"] = devnet.send(transfer(sender=bls_account, nonce=0, to=second, value=FIL // 4))
    b["bls_after"] = devnet.balance(bls_account)
    b["second_after_bls"] = devnet.balance(second)

    multisig_code = devnet.machine().builtin_actors.code_of("multisig")
    r["multisig"] = devnet.send(
        create_multisig(
            sender=sender,
            nonce=devnet.nonce(sender),
            multisig_code=multisig_code,
            signers=[sender, second],
            threshold=2,
            value=FIL,
        )
    )
    created = decode_exec_return(r["multisig"].receipt.return_data)
    scenario.multisig = created

    payee = Address.new_id(BURNT_FUNDS_ACTOR_ID)
    b["payee_before"] = devnet.balance(payee)
    r["propose"] = devnet.send(
        propose(
            sender=sender,
            nonce=devnet.nonce(sender),
            multisig=created.robust_address,
            to=payee,
            value=FIL // 2,
        )
    )
    scenario.proposal = decode_propose_return(r["propose"].receipt.return_data)
    b["payee_after_propose"] = devnet.balance(payee)
    proposer_id = devnet.tree().lookup_id(sender)
    assert proposer_id is not None
    good_hash = proposal_hash(proposer=Address.new_id(proposer_id), to=payee, value=FIL // 2)
    wrong_hash = proposal_hash(proposer=Address.new_id(proposer_id), to=payee, value=FIL)
    for hash_ in (wrong_hash, good_hash):
        approval = approve(
            sender=second,
            nonce=devnet.nonce(second),
            multisig=created.robust_address,
            txn_id=scenario.proposal.txn_id,
            proposal_hash=hash_,
        )
        if hash_ == wrong_hash:
            with pytest.raises(GasEstimationFailed) as failure:
                devnet.price(approval)
            scenario.wrong_hash_failure = failure.value
        else:
            r["approve"] = devnet.send(approval)
    scenario.approval = decode_approve_return(r["approve"].receipt.return_data)
    b["payee_after_approve"] = devnet.balance(payee)
    b["multisig_after"] = devnet.balance(created.id_address)

    scenario.contract_nonce = devnet.nonce(sender)
    r["deploy"] = devnet.send(
        create_evm_contract(
            sender=sender, nonce=scenario.contract_nonce, initcode=evm_contract.INIT_CODE
        )
    )
    contract = decode_eam_create_return(r["deploy"].receipt.return_data)
    scenario.contract = contract
    for name in ("increment1", "increment2"):
        r[name] = devnet.send(
            invoke_evm_contract(
                sender=second,
                nonce=devnet.nonce(second),
                contract=contract.f4_address,
                calldata=evm_contract.increment_calldata(),
            )
        )
        scenario.counts.append(
            evm_contract.decode_uint256(decode_evm_return(r[name].receipt.return_data))
        )
    r["get"] = devnet.send(
        invoke_evm_contract(
            sender=bls_account,
            nonce=devnet.nonce(bls_account),
            contract=contract.f4_address,
            calldata=evm_contract.get_calldata(),
        )
    )
    r["get_bytecode"] = devnet.send(
        Message(
            to=contract.f4_address,
            from_=sender,
            sequence=devnet.nonce(sender),
            method_num=EVM_GET_BYTECODE_METHOD,
        )
    )
    bytecode_cid = dag_cbor.decode(r["get_bytecode"].receipt.return_data)
    scenario.bytecode = devnet.store.get(bytecode_cid) or b""
    # An f3 account may deploy too (the EAM takes any Account or EthAccount top-level sender).
    r["deploy_from_bls"] = devnet.send(
        create_evm_contract(
            sender=bls_account, nonce=devnet.nonce(bls_account), initcode=evm_contract.INIT_CODE
        )
    )
    return scenario


@pytest.fixture(scope="module")
def scenario(vectors_dir: Path, actors_dir: Path) -> Scenario:
    vector = load_vector(vectors_dir / VECTOR)
    store = vector.blockstore()
    load_bundle(actors_dir / "v10.tar.zst").put_into(store)
    root, sender = transplanted_state(vector, store)
    devnet = Devnet(store, root, vector, WasmActorInvoker(AcceptAllProofVerifier()))
    return run_scenario(devnet, sender)


def charged(ret: ApplyRet) -> int:
    """What the sender paid for gas: burns plus the miner's tip (the rest was refunded)."""
    return ret.base_fee_burn + ret.over_estimation_burn + ret.miner_tip


# -- through the FVM ------------------------------------------------------------------------


def test_a_secp_transfer_moves_its_value_and_creates_the_account(scenario: Scenario) -> None:
    devnet, r = scenario.devnet, scenario.rets
    second = devnet.actor(scenario.second_signer)
    assert devnet.machine().builtin_actors.name_of(second.code) == "account"
    # The second signer received 2 FIL, then 1/4 FIL from the BLS account.
    assert scenario.balances["second_before_bls"] == 2 * FIL
    # The sender paid 2 + 1 + 1 FIL (second signer, BLS account, multisig) and its gas.
    sent = ("secp", "to_bls", "multisig", "propose", "deploy", "get_bytecode")
    spent = sum(charged(r[name]) for name in sent)
    paid = scenario.balances["sender_before"] - devnet.balance(scenario.sender)
    assert paid == 4 * FIL + spent


def test_a_bls_account_sends_a_transfer(scenario: Scenario) -> None:
    b, r = scenario.balances, scenario.rets
    assert b["bls_funded"] == FIL
    assert b["bls_after"] == FIL - FIL // 4 - charged(r["bls"])
    assert b["second_after_bls"] == b["second_before_bls"] + FIL // 4
    # A transfer, get() and a deployment.
    assert scenario.devnet.actor(scenario.bls_account).sequence == 3


def test_exec_creates_a_multisig_with_decodable_addresses(scenario: Scenario) -> None:
    devnet, created = scenario.devnet, scenario.multisig
    assert created is not None
    assert created.id_address.protocol is Protocol.ID
    assert created.robust_address.protocol is Protocol.ACTOR
    assert devnet.tree().lookup_id(created.robust_address) == created.id_address.id
    actor = devnet.actor(created.id_address)
    assert devnet.machine().builtin_actors.name_of(actor.code) == "multisig"
    signers, threshold = dag_cbor.decode(devnet.store.get(actor.state) or b"")[:2]
    ids = [devnet.tree().lookup_id(a) for a in (scenario.sender, scenario.second_signer)]
    assert signers == [Address.new_id(i).to_bytes() for i in ids if i is not None]
    assert len(signers) == 2
    assert threshold == 2


def test_a_proposal_waits_for_the_second_signer(scenario: Scenario) -> None:
    assert scenario.proposal == ProposeReturn(txn_id=0, applied=False, code=0, ret=b"")
    b = scenario.balances
    assert b["payee_after_propose"] == b["payee_before"] + _fees_burnt(scenario, "propose")


def test_an_approval_with_the_wrong_proposal_hash_fails_estimation(scenario: Scenario) -> None:
    failure = scenario.wrong_hash_failure
    assert failure is not None
    assert failure.exit_code == ExitCode.USR_ILLEGAL_ARGUMENT


def test_the_approval_executes_the_transfer(scenario: Scenario) -> None:
    assert scenario.approval == ApproveReturn(applied=True, code=0, ret=b"")
    b = scenario.balances
    assert b["payee_after_approve"] == (
        b["payee_after_propose"] + FIL // 2 + _fees_burnt(scenario, "approve")
    )
    assert b["multisig_after"] == FIL - FIL // 2


def test_create_external_deploys_the_contract_at_its_eth_address(scenario: Scenario) -> None:
    devnet, contract = scenario.devnet, scenario.contract
    assert contract is not None
    assert contract.robust_address is not None
    assert contract.robust_address.protocol is Protocol.ACTOR
    tree = devnet.tree()
    assert tree.lookup_id(contract.f4_address) == contract.actor_id
    assert tree.lookup_id(contract.robust_address) == contract.actor_id
    actor = devnet.actor(Address.new_id(contract.actor_id))
    assert devnet.machine().builtin_actors.name_of(actor.code) == "evm"
    assert actor.delegated_address == contract.f4_address
    # An account's contract address: CREATE's rule over keccak(key address)[12:] and the nonce.
    creator = keccak_256(scenario.sender.to_bytes())[12:]
    expected = keccak_256(_rlp_list([_rlp_bytes(creator), _rlp_uint(scenario.contract_nonce)]))
    assert contract.eth_address == expected[12:]
    assert scenario.bytecode == evm_contract.RUNTIME_CODE


def test_a_bls_account_may_deploy_a_contract_too(scenario: Scenario) -> None:
    devnet, contract = scenario.devnet, scenario.contract
    created = decode_eam_create_return(scenario.rets["deploy_from_bls"].receipt.return_data)
    assert contract is not None and created.eth_address != contract.eth_address
    actor = devnet.actor(created.f4_address)
    assert devnet.machine().builtin_actors.name_of(actor.code) == "evm"


def test_increment_counts_and_emits_its_event(scenario: Scenario) -> None:
    assert scenario.counts == [1, 2]
    contract = scenario.contract
    assert contract is not None
    for count, name in enumerate(("increment1", "increment2"), start=1):
        ret = scenario.rets[name]
        assert ret.receipt.events_root is not None
        assert len(ret.events) == 1
        event: Any = ret.events[0]
        assert event.emitter == contract.actor_id
        entries = [(e.flags, e.key, e.codec, e.value) for e in event.entries]
        assert entries == [
            (3, "t1", RAW, evm_contract.INCREMENTED_TOPIC),
            (3, "d", RAW, count.to_bytes(32, "big")),
        ]


def test_get_returns_the_incremented_value(scenario: Scenario) -> None:
    ret = scenario.rets["get"]
    assert evm_contract.decode_uint256(decode_evm_return(ret.receipt.return_data)) == 2
    assert ret.events == ()


def test_gas_limits_are_the_trial_gas_plus_a_quarter(scenario: Scenario) -> None:
    estimates = scenario.devnet.estimates
    assert len(estimates) >= 10
    for trial, receipt in estimates:
        assert trial.gas_limit == BLOCK_GAS_LIMIT
        assert trial.gas_fee_cap == 0 and trial.gas_premium == 0
        assert receipt.gas_used > 0


def _fees_burnt(scenario: Scenario, name: str) -> int:
    ret = scenario.rets[name]
    return ret.base_fee_burn + ret.over_estimation_burn


def _rlp_bytes(data: bytes) -> bytes:
    if len(data) == 1 and data[0] < 0x80:
        return data
    assert len(data) < 56
    return bytes([0x80 + len(data)]) + data


def _rlp_uint(value: int) -> bytes:
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_list(items: list[bytes]) -> bytes:
    payload = b"".join(items)
    assert len(payload) < 56
    return bytes([0xC0 + len(payload)]) + payload


# -- builders, decoders and gas without the FVM ---------------------------------------------


def test_frc42_method_numbers_match_the_actors() -> None:
    assert frc42_method_number("InvokeEVM") == EVM_INVOKE_CONTRACT_METHOD == 3844450837
    assert frc42_method_number("Receive") == 3726118371  # multisig UniversalReceiverHook


def test_builders_set_the_v10_method_numbers_and_params() -> None:
    a, b = Address.new_id(100), Address.new_id(101)
    assert transfer(sender=a, nonce=3, to=b, value=5) == Message(
        to=b, from_=a, sequence=3, value=5, method_num=0
    )
    code = CID.hash_of(b"multisig code")
    exec_message = create_multisig(
        sender=a, nonce=0, multisig_code=code, signers=[a, b], threshold=2, value=7
    )
    assert (exec_message.to, exec_message.method_num, exec_message.value) == (
        Address.new_id(1),
        2,
        7,
    )
    code_field, constructor = dag_cbor.decode(exec_message.params)
    assert code_field == code
    assert dag_cbor.decode(constructor) == [[a.to_bytes(), b.to_bytes()], 2, 0, 0]
    proposal = propose(sender=a, nonce=1, multisig=b, to=a, value=9)
    assert proposal.method_num == 2
    assert dag_cbor.decode(proposal.params) == [a.to_bytes(), encode_bigint(9), 0, b""]
    approval = approve(sender=a, nonce=2, multisig=b, txn_id=4, proposal_hash=b"h")
    assert (approval.method_num, dag_cbor.decode(approval.params)) == (3, [4, b"h"])
    deploy = create_evm_contract(sender=a, nonce=0, initcode=b"\x60\x00")
    assert (deploy.to, deploy.method_num) == (EAM_ACTOR_ADDRESS, 4)
    assert dag_cbor.decode(deploy.params) == b"\x60\x00"
    call = invoke_evm_contract(sender=a, nonce=0, contract=b, calldata=b"\xd0\x9d\xe0\x8a")
    assert call.method_num == 3844450837
    assert dag_cbor.decode(call.params) == b"\xd0\x9d\xe0\x8a"


def test_the_proposal_hash_needs_the_proposers_id_address() -> None:
    key = Address.new_secp256k1(secp256k1.public_key(SECOND_SIGNER_KEY))
    with pytest.raises(ValueError, match="ID address"):
        proposal_hash(proposer=key, to=key, value=1)


def _fake_apply(gas_used: int, exit_code: int = 0) -> tuple[list[Message], Any]:
    seen: list[Message] = []

    def apply(message: Message) -> Receipt:
        seen.append(message)
        return Receipt(exit_code, b"", gas_used)

    return seen, apply


def test_the_gas_limit_is_the_trial_gas_used_times_one_and_a_quarter() -> None:
    message = transfer(sender=Address.new_id(100), nonce=0, to=Address.new_id(101), value=1)
    seen, apply = _fake_apply(1_000_003)
    assert estimate_gas_limit(replace(message, gas_fee_cap=5, gas_limit=1), apply) == 1_250_003
    assert (seen[0].gas_limit, seen[0].gas_fee_cap, seen[0].gas_premium) == (BLOCK_GAS_LIMIT, 0, 0)
    _, huge = _fake_apply(BLOCK_GAS_LIMIT)
    assert estimate_gas_limit(message, huge) == BLOCK_GAS_LIMIT


def test_a_failing_trial_raises_with_its_exit_code() -> None:
    message = transfer(sender=Address.new_id(100), nonce=0, to=Address.new_id(101), value=1)
    _, apply = _fake_apply(500, ExitCode.SYS_INSUFFICIENT_FUNDS)
    with pytest.raises(GasEstimationFailed) as failure:
        estimate_gas_limit(message, apply)
    assert failure.value.exit_code == ExitCode.SYS_INSUFFICIENT_FUNDS


def test_fee_cap_is_twenty_blocks_of_base_fee_growth_plus_the_premium() -> None:
    # 1.125^20 = 10.545..., taken to 1/256: 2699/256.
    assert estimate_fee_cap(256, MIN_GAS_PREMIUM) == 2699 + MIN_GAS_PREMIUM
    assert estimate_fee_cap(100, 0) == 100 * 2699 // 256


def test_the_total_fee_is_capped_at_the_max_fee() -> None:
    message = replace(
        transfer(sender=Address.new_id(100), nonce=0, to=Address.new_id(101), value=1),
        gas_limit=1_000_000,
        gas_fee_cap=10**12,
        gas_premium=10**12,
    )
    capped = cap_gas_fee(message)
    assert capped.gas_fee_cap == DEFAULT_MAX_FEE // 1_000_000
    assert capped.gas_premium == capped.gas_fee_cap
    cheap = replace(message, gas_fee_cap=100, gas_premium=10)
    assert cap_gas_fee(cheap) == cheap


def test_with_gas_fills_every_gas_field() -> None:
    message = transfer(sender=Address.new_id(100), nonce=0, to=Address.new_id(101), value=1)
    _, apply = _fake_apply(400_000)
    priced = with_gas(message, apply=apply, base_fee=100)
    assert (priced.gas_limit, priced.gas_premium) == (500_000, MIN_GAS_PREMIUM)
    assert priced.gas_fee_cap == 100 * 2699 // 256 + MIN_GAS_PREMIUM


def test_trial_length_counts_a_stand_in_signature_for_secp_senders_only() -> None:
    secp = Address.new_secp256k1(secp256k1.public_key(SECOND_SIGNER_KEY))
    bls_address = Address.new_bls(bls.public_key(BLS_KEY))
    to = Address.new_id(101)
    from_secp = transfer(sender=secp, nonce=0, to=to, value=1)
    from_bls = transfer(sender=bls_address, nonce=0, to=to, value=1)
    assert trial_chain_length(from_secp) == from_secp.chain_length() + 69
    assert trial_chain_length(from_bls) == from_bls.chain_length()


def test_decoders_read_the_actors_return_layouts() -> None:
    robust = Address.new_actor(b"some actor")
    assert decode_exec_return(
        dag_cbor.encode([Address.new_id(7).to_bytes(), robust.to_bytes()])
    ) == ExecReturn(Address.new_id(7), robust)
    assert decode_propose_return(dag_cbor.encode([3, True, 0, b"r"])) == ProposeReturn(
        3, True, 0, b"r"
    )
    assert decode_approve_return(dag_cbor.encode([False, 0, b""])) == ApproveReturn(False, 0, b"")
    eth = bytes(range(20))
    created = decode_eam_create_return(dag_cbor.encode([9, None, eth]))
    assert created == EamCreateReturn(9, None, eth)
    assert created.f4_address == Address.new_delegated(10, eth)
    assert decode_evm_return(dag_cbor.encode(b"\x01\x02")) == b"\x01\x02"
    assert decode_evm_return(b"") == b""


@pytest.mark.parametrize(
    ("decoder", "value"),
    [
        (decode_exec_return, [Address.new_actor(b"x").to_bytes(), Address.new_id(1).to_bytes()]),
        (decode_exec_return, [Address.new_id(1).to_bytes()]),
        (decode_propose_return, [-(1 << 63) - 1, True, 0, b""]),
        (decode_propose_return, [0, 1, 0, b""]),
        (decode_approve_return, [True, -1, b""]),
        (decode_eam_create_return, [1, None, b"short"]),
        (decode_eam_create_return, [1, b"\x09", bytes(20)]),
        (decode_evm_return, 5),
    ],
)
def test_decoders_refuse_what_the_actors_do_not_return(decoder: Any, value: Any) -> None:
    with pytest.raises(ActorReturnError):
        decoder(dag_cbor.encode(value))


@given(st.binary(max_size=64))
def test_decoders_raise_only_malformed_input_on_arbitrary_bytes(data: bytes) -> None:
    for decoder in (
        decode_exec_return,
        decode_propose_return,
        decode_approve_return,
        decode_eam_create_return,
        decode_evm_return,
    ):
        with contextlib.suppress(MalformedInput):
            decoder(data)


@given(
    st.integers(min_value=0, max_value=(1 << 64) - 1),
    st.one_of(st.none(), st.binary(min_size=1, max_size=40).map(Address.new_actor)),
    st.binary(min_size=20, max_size=20),
)
def test_eam_returns_round_trip(actor_id: int, robust: Address | None, eth: bytes) -> None:
    encoded = dag_cbor.encode([actor_id, None if robust is None else robust.to_bytes(), eth])
    assert decode_eam_create_return(encoded) == EamCreateReturn(actor_id, robust, eth)


# -- the contract ----------------------------------------------------------------------------


def test_the_contract_abi_uses_the_solidity_selectors() -> None:
    assert evm_contract.INCREMENT_SELECTOR.hex() == "d09de08a"
    assert evm_contract.GET_SELECTOR.hex() == "6d4ce63c"
    assert keccak_256(b"Incremented(uint256)") == evm_contract.INCREMENTED_TOPIC


def test_the_init_code_returns_the_runtime_code_that_follows_it() -> None:
    init = evm_contract.assemble(evm_contract.INIT_PROGRAM)
    assert init + evm_contract.RUNTIME_CODE == evm_contract.INIT_CODE
    # PUSH1 size, DUP1, PUSH1 offset, PUSH1 0, CODECOPY, PUSH1 0, RETURN.
    size = len(evm_contract.RUNTIME_CODE)
    assert init == bytes([0x60, size, 0x80, 0x60, len(init), 0x60, 0, 0x39, 0x60, 0, 0xF3])


def test_the_listing_shows_each_instruction_at_its_offset() -> None:
    lines = evm_contract.listing(evm_contract.RUNTIME_PROGRAM)
    assert len(lines) == len(evm_contract.RUNTIME_PROGRAM)
    assert lines[0].split() == ["0x0000", "6000", "PUSH1", "0x00"]
    jumpdests = [line for line in lines if "JUMPDEST" in line]
    offsets = [int(line.split()[0], 16) for line in jumpdests]
    assert [evm_contract.RUNTIME_CODE[offset] for offset in offsets] == [0x5B, 0x5B]
    assert lines[7].split() == ["0x000d", "601e", "PUSH1", "0x1e", ";", "increment"]
    assert offsets[0] == 0x1E


def test_the_assembler_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(evm_contract.AssemblyError, match="undefined label"):
        evm_contract.assemble([evm_contract.push_label("nowhere"), evm_contract.op("JUMPI")])
    with pytest.raises(evm_contract.AssemblyError, match="defined twice"):
        evm_contract.assemble([evm_contract.Label("a"), evm_contract.Label("a")])
    with pytest.raises(evm_contract.AssemblyError):
        evm_contract.op("PUSH1")
    with pytest.raises(evm_contract.AssemblyError):
        evm_contract.push(256, width=1)
    with pytest.raises(evm_contract.AssemblyError):
        evm_contract.push(bytes(33))
    assert evm_contract.push(0x1234).immediate == b"\x12\x34"


def test_uint256_return_data_is_exactly_one_word() -> None:
    assert evm_contract.decode_uint256((7).to_bytes(32, "big")) == 7
    with pytest.raises(evm_contract.ContractReturnError):
        evm_contract.decode_uint256(b"\x07")
