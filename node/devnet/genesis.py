"""The devnet's genesis: a network-version-18 state built through the FVM, and its block.

Follows Lotus ``chain/gen/genesis`` at v1.20.4, the nv18 release line (``genesis.go``:
``MakeInitialStateTree``, ``MakeGenesisBlock``; ``miners.go``: ``SetupStorageMiners``;
``genesis_eth.go``; ``f0*.go``), with HEAD's rule that only f4 addresses are recorded as an
actor's delegated address. Where Lotus writes each singleton actor's state itself, here the
actors are created in the state tree with the empty-array state ref-fvm gives a new actor and
then *constructed through the FVM*: an implicit message from the system actor to method 1 with
the constructor parameters Lotus's state corresponds to, so the v10 actors write their own
state. The layout and the amounts are Lotus's:

* f00 system: state ``[manifest data]`` written directly (the machine reads the manifest there);
* f01 init (the network name), f02 reward (no power yet; balance: the storage mining allocation,
  1.1 billion FIL), f03 cron (the power and market cron ticks), f04 power, f05 market,
  f06 verified registry (root key f080), f07 datacap (governor f06), f010 EAM: constructed;
* f099 burnt funds: an account whose key address is f099 itself (no constructor accepts an ID
  address, so its state is written directly, as Lotus writes it);
* the spec's accounts from f0100 on, in order (then the miner's owner and worker keys if the spec
  does not fund them), f080 the verified-registry root key, f090 the remainder account holding
  what is left of the 2 billion FIL: registered in the init actor's address map as Lotus's
  ``SetupInitActor`` does, then constructed by the account actor; init's next ID is then set to
  1000 (``MinerStart``);
* the miner f01000: created by an implicit ``CreateMiner`` to the power actor from its owner
  (owner and worker from the spec, window PoSt proof type 2 KiB, no sectors: a devnet consensus
  profile stands in for leader election, so no power is needed);
* the Ethereum null address (``0x0…0``) as an EthAccount at the next ID, f01001, constructed.

Lotus's random f081 verifier and its pre-sealed sectors and deals are not made (no sectors). The
genesis machine runs at epoch 0 with base fee 0, circulating supply 0 and timestamp 0 like
Lotus's genesis VM; randomness is never asked by these constructors and raises if it is.

The block (``MakeGenesisBlock``): miner f00, a 32-byte ticket (Lotus draws it at random; here it
is derived from the network name and timestamp, or given), an empty election proof, one beacon
entry of round 0 with 32 zero bytes, the fixed Filecoin genesis sentinel block as the only
parent, weight and height 0, empty message lists and receipts (the empty legacy AMT), no
signatures, parent base fee 100 000 000 attoFIL (``InitialBaseFee``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final

from chainsync.base_fee import INITIAL_BASE_FEE
from chainsync.chain_types import BeaconEntry, BlockHeader, ElectionProof, MsgMeta, Ticket
from chainsync.tipset_execution import apply_implicit, implicit_message
from config.networks import DEVNET, DEVNET_NETWORK_VERSION
from fvm.actor_state import ActorState
from fvm.address import (
    BURNT_FUNDS_ACTOR_ADDR,
    CRON_ACTOR_ADDR,
    DATACAP_TOKEN_ACTOR_ADDR,
    EAM_ACTOR_ADDR,
    INIT_ACTOR_ADDR,
    REWARD_ACTOR_ADDR,
    STORAGE_MARKET_ACTOR_ADDR,
    STORAGE_POWER_ACTOR_ADDR,
    SYSTEM_ACTOR_ADDR,
    VERIFIED_REGISTRY_ACTOR_ADDR,
    Address,
)
from fvm.bundle import Bundle
from fvm.crypto.hashes import blake2b_256
from fvm.engine.runtime import run_on_execution_stack
from fvm.executor import Executor
from fvm.externs import ConsensusFault, ExternsError
from fvm.invocation import ActorInvoker
from fvm.machine import Machine, MachineContext, NetworkConfig
from fvm.network_version import StateTreeVersion, actors_version_for
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.state_tree import HAMT_BIT_WIDTH, InitActorState, StateTree, hamt_layout
from fvm.token import FILECOIN_PRECISION, TOTAL_FILECOIN, TokenAmount, encode_bigint
from fvm.wasm_invoker import WasmActorInvoker
from node.devnet.keys import Key
from store import dag_cbor
from store.amt import Amt
from store.blockstore import Blockstore, get_required, put
from store.buffered_blockstore import BufferedBlockstore, scan_for_links
from store.car import CarReader, CarWriter, open_maybe_compressed
from store.cid import CID, DAG_CBOR, IDENTITY
from store.errors import FvmNodeError, MalformedInput
from store.hamt import Hamt

# Lotus ``build.InitialBaseFee`` and ``FilAllocStorageMining``.
STORAGE_MINING_ALLOCATION: Final = 1_100_000_000 * FILECOIN_PRECISION
# Lotus genesis ID layout (``AccountStart``, ``MinerStart``, ``RootVerifierID``,
# ``builtin.ReserveAddress``).
ACCOUNT_START_ID: Final = 100
MINER_START_ID: Final = 1000
VERIFREG_ROOT_ID: Final = 80
RESERVE_ID: Final = 90
# go-state-types ``RegisteredPoStProof_StackedDrgWindow2KiBV1``: the devnet bundle's sector size.
WINDOW_POST_2KIB: Final = 5
# builtin-actors method numbers: every constructor, power ``CreateMiner``, and the cron entries
# (power ``OnEpochTickEnd``, market ``CronTick``) go-state-types ``cron.BuiltInEntries`` lists.
CONSTRUCTOR_METHOD: Final = 1
CREATE_MINER_METHOD: Final = 2
POWER_CRON_TICK_METHOD: Final = 5
MARKET_CRON_TICK_METHOD: Final = 9
# The Ethereum null address Lotus gives an EthAccount (``genesis.EthNullAddresses``).
ETH_NULL_ADDRESS: Final = Address.new_delegated(EAM_ACTOR_ADDR.id, bytes(20))

# Lotus ``genesis/genblock.go``: the fixed block every Filecoin genesis names as its parent
# (DAG-CBOR, sha2-256), and its CID.
FILECOIN_GENESIS_SENTINEL: Final = bytes.fromhex(
    "a5684461746574696d6573323031372d30352d30352030313a32373a3531674e6574776f726b6846696c65"
    "636f696e65546f6b656e6846696c65636f696e6c546f6b656e416d6f756e7473a36b546f74616c537570"
    "706c796d322c3030302c3030302c303030664d696e6572736d312c3430302c3030302c3030306c50726f"
    "746f636f6c4c616273a36b446576656c6f706d656e746b3330302c3030302c3030306b46756e6472616973"
    "696e676b3230302c3030302c3030306a466f756e646174696f6e6b3130302c3030302c303030674d6573"
    "73616765784854686973206973207468652047656e6573697320426c6f636b206f66207468652046696c"
    "65636f696e20446563656e7472616c697a65642053746f72616765204e6574776f726b2e"
)
FILECOIN_GENESIS_SENTINEL_CID: Final = CID.parse(
    "bafyreiaqpwbbyjo4a42saasj36kkrpv4tsherf2e7bvezkert2a7dhonoi"
)
_TICKET_DOMAIN: Final = b"fvm-node devnet genesis ticket"


class GenesisError(FvmNodeError):
    """The spec cannot make a genesis (overallocated funds, a key used twice, a failed step)."""


class GenesisCarError(MalformedInput):
    """A genesis CAR whose root is not a genesis block header or whose blocks are missing."""


@dataclass(frozen=True, slots=True)
class DevnetGenesisSpec:
    """What a devnet genesis is made of. Balances are in attoFIL."""

    network_name: str
    timestamp: int
    accounts: Sequence[tuple[Key, TokenAmount]]
    miner_owner: Key
    miner_worker: Key
    verifreg_root: Key
    remainder_owner: Key
    miner_peer_id: bytes = b""
    ticket: bytes | None = None

    def ticket_proof(self) -> bytes:
        """The genesis ticket: the given one, or 32 bytes derived from name and timestamp."""
        if self.ticket is not None:
            return self.ticket
        seed = _TICKET_DOMAIN + self.network_name.encode() + self.timestamp.to_bytes(8, "big")
        return blake2b_256(seed)


@dataclass(frozen=True, slots=True)
class DevnetGenesis:
    """The genesis block and where its state lives.

    ``store`` holds the state, the header, the sentinel and the message/receipt blocks (and the
    bundle's code, put there to run the constructors). ``account_ids`` maps every key address
    given an account to its actor ID; ``miner`` is the miner actor's ID address.
    """

    spec: DevnetGenesisSpec
    header: BlockHeader
    store: Blockstore = field(repr=False)
    manifest: CID
    miner: Address
    account_ids: Mapping[Address, int] = field(repr=False)

    @property
    def cid(self) -> CID:
        return self.header.cid()

    @property
    def state_root(self) -> CID:
        return self.header.parent_state_root


class _GenesisExterns:
    """Externs of the genesis machine: nothing the constructors ask for, so every question is
    an error rather than a made-up answer."""

    def get_chain_randomness(self, epoch: int) -> bytes:
        raise ExternsError(f"genesis asks for no chain randomness (epoch {epoch})")

    def get_beacon_randomness(self, epoch: int) -> bytes:
        raise ExternsError(f"genesis asks for no beacon randomness (epoch {epoch})")

    def get_tipset_cid(self, epoch: int) -> CID:
        raise ExternsError(f"there is no tipset before genesis (epoch {epoch})")

    def verify_consensus_fault(
        self, header1: bytes, header2: bytes, extra: bytes
    ) -> tuple[ConsensusFault | None, int]:
        return None, 0


# -- the state --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _AccountPlan:
    """An account to create: its key address, its ID and its balance."""

    address: Address
    actor_id: int
    balance: TokenAmount


def _plan_accounts(spec: DevnetGenesisSpec) -> list[_AccountPlan]:
    """Lotus's ID layout and balances for the accounts; the remainder account f090 gets what
    the reward actor and the other accounts leave of the total supply."""
    plans: list[_AccountPlan] = []
    seen: set[Address] = set()
    next_id = ACCOUNT_START_ID
    funded = [(key.address, balance) for key, balance in spec.accounts]
    unfunded = [(spec.miner_owner.address, 0), (spec.miner_worker.address, 0)]
    for address, balance in funded + unfunded:
        if address in seen:
            if balance:
                raise GenesisError(f"account {address} is listed twice")
            continue
        if balance < 0:
            raise GenesisError(f"account {address} has a negative balance")
        seen.add(address)
        plans.append(_AccountPlan(address, next_id, balance))
        next_id += 1
    if next_id > MINER_START_ID:
        limit = MINER_START_ID - ACCOUNT_START_ID
        raise GenesisError(f"too many accounts ({len(plans)}); Lotus allows {limit}")
    for role, key in (
        ("verified registry root", spec.verifreg_root),
        ("remainder", spec.remainder_owner),
    ):
        if key.address in seen:
            raise GenesisError(f"the {role} key {key.address} is already an account")
        seen.add(key.address)
    allocated = STORAGE_MINING_ALLOCATION + sum(plan.balance for plan in plans)
    if allocated > TOTAL_FILECOIN:
        raise GenesisError(f"somehow overallocated filecoin (allocated = {allocated} attoFIL)")
    plans.append(_AccountPlan(spec.verifreg_root.address, VERIFREG_ROOT_ID, 0))
    plans.append(_AccountPlan(spec.remainder_owner.address, RESERVE_ID, TOTAL_FILECOIN - allocated))
    return plans


def _initial_state(store: Blockstore, bundle: Bundle, plans: list[_AccountPlan]) -> CID:
    """The state before any constructor runs: the system actor, every singleton with the empty
    state, f099, and the accounts with their balances."""
    manifest = bundle.manifest
    tree = StateTree(store, version=StateTreeVersion.V5)
    system_state = put(store, dag_cbor.encode([manifest.data_cid]))
    tree.set_actor(SYSTEM_ACTOR_ADDR.id, ActorState(manifest.code_of("system"), system_state))
    for name, address, balance in (
        ("init", INIT_ACTOR_ADDR, 0),
        ("reward", REWARD_ACTOR_ADDR, STORAGE_MINING_ALLOCATION),
        ("cron", CRON_ACTOR_ADDR, 0),
        ("storagepower", STORAGE_POWER_ACTOR_ADDR, 0),
        ("storagemarket", STORAGE_MARKET_ACTOR_ADDR, 0),
        ("verifiedregistry", VERIFIED_REGISTRY_ACTOR_ADDR, 0),
        ("datacap", DATACAP_TOKEN_ACTOR_ADDR, 0),
        ("eam", EAM_ACTOR_ADDR, 0),
    ):
        actor = replace(ActorState.new_empty(manifest.code_of(name)), balance=balance)
        tree.set_actor(address.id, actor)
    account_code = manifest.code_of("account")
    burnt_state = put(store, dag_cbor.encode([BURNT_FUNDS_ACTOR_ADDR.to_bytes()]))
    tree.set_actor(BURNT_FUNDS_ACTOR_ADDR.id, ActorState(account_code, burnt_state))
    for plan in plans:
        actor = replace(ActorState.new_empty(account_code), balance=plan.balance)
        tree.set_actor(plan.actor_id, actor)
    return tree.flush()


def _register_accounts(tree: StateTree, plans: list[_AccountPlan]) -> None:
    """Map every account key to its ID in the init actor's address map and move its next ID to
    ``MinerStart``, as Lotus's ``SetupInitActor`` writes the init state."""
    init_actor = tree.get_actor(INIT_ACTOR_ADDR.id)
    if init_actor is None:
        raise GenesisError("init actor is missing")
    where = f"init actor state {init_actor.state}"
    state = InitActorState.from_cbor(
        dag_cbor.decode(get_required(tree.store, init_actor.state), where), where
    )
    address_map = Hamt(
        tree.store, state.address_map, bit_width=HAMT_BIT_WIDTH, version=hamt_layout(tree.version)
    )
    for plan in plans:
        address_map.set(plan.address.to_bytes(), plan.actor_id)
    updated = InitActorState(address_map.flush(), MINER_START_ID, state.network_name)
    head = put(tree.store, dag_cbor.encode(updated.to_cbor()))
    tree.set_actor(INIT_ACTOR_ADDR.id, replace(init_actor, state=head))


def _constructor(executor: Executor, to: Address, params: bytes, what: str) -> None:
    message = implicit_message(SYSTEM_ACTOR_ADDR, to, CONSTRUCTOR_METHOD, params)
    apply_implicit(executor, message, f"constructing {what}")


def _construct(executor: Executor, spec: DevnetGenesisSpec, plans: list[_AccountPlan]) -> Address:
    """Run every constructor and create the miner; return the miner's ID address."""
    encode = dag_cbor.encode
    _constructor(executor, INIT_ACTOR_ADDR, encode([spec.network_name]), "the init actor")
    _register_accounts(executor.machine.state_tree, plans)
    for plan in plans:
        _constructor(
            executor,
            Address.new_id(plan.actor_id),
            encode(plan.address.to_bytes()),
            f"account {plan.address}",
        )
    _constructor(executor, REWARD_ACTOR_ADDR, encode(encode_bigint(0)), "the reward actor")
    cron_entries = [
        [STORAGE_POWER_ACTOR_ADDR.to_bytes(), POWER_CRON_TICK_METHOD],
        [STORAGE_MARKET_ACTOR_ADDR.to_bytes(), MARKET_CRON_TICK_METHOD],
    ]
    _constructor(executor, CRON_ACTOR_ADDR, encode([cron_entries]), "the cron actor")
    _constructor(executor, STORAGE_POWER_ACTOR_ADDR, b"", "the power actor")
    _constructor(executor, STORAGE_MARKET_ACTOR_ADDR, b"", "the market actor")
    root_key = Address.new_id(VERIFREG_ROOT_ID).to_bytes()
    _constructor(executor, VERIFIED_REGISTRY_ACTOR_ADDR, encode(root_key), "verified registry")
    governor = VERIFIED_REGISTRY_ACTOR_ADDR.to_bytes()
    _constructor(executor, DATACAP_TOKEN_ACTOR_ADDR, encode(governor), "the datacap actor")
    _constructor(executor, EAM_ACTOR_ADDR, b"", "the Ethereum address manager")

    miner = _create_miner(executor, spec)

    tree = executor.machine.state_tree
    eth_null_id = tree.register_new_address(ETH_NULL_ADDRESS)
    eth_account = ActorState.new_empty(
        executor.machine.builtin_actors.code_of("ethaccount"), ETH_NULL_ADDRESS
    )
    tree.set_actor(eth_null_id, eth_account)
    _constructor(executor, Address.new_id(eth_null_id), b"", "the Ethereum null address")
    return miner


def _create_miner(executor: Executor, spec: DevnetGenesisSpec) -> Address:
    """power ``CreateMiner`` from the owner, as ``SetupStorageMiners`` sends it."""
    params = dag_cbor.encode(
        [
            spec.miner_owner.address.to_bytes(),
            spec.miner_worker.address.to_bytes(),
            WINDOW_POST_2KIB,
            spec.miner_peer_id,
            [],
        ]
    )
    message = implicit_message(
        spec.miner_owner.address, STORAGE_POWER_ACTOR_ADDR, CREATE_MINER_METHOD, params
    )
    ret = apply_implicit(executor, message, "creating the genesis miner")
    decoded = dag_cbor.decode(ret.receipt.return_data, "CreateMinerReturn")
    if type(decoded) is not list or len(decoded) != 2 or type(decoded[0]) is not bytes:
        raise GenesisError("power actor returned a malformed CreateMinerReturn")
    miner = Address.from_bytes(decoded[0], "CreateMinerReturn")
    expected = Address.new_id(MINER_START_ID)
    if miner != expected:
        raise GenesisError(f"miner assigned wrong address: {miner} != {expected}")
    return miner


def _build_state(
    spec: DevnetGenesisSpec,
    bundle: Bundle,
    store: Blockstore,
    invoker: ActorInvoker,
    plans: list[_AccountPlan],
) -> tuple[CID, Address]:
    staging = BufferedBlockstore(store)
    initial = _initial_state(staging, bundle, plans)
    staging.flush(initial)
    context = MachineContext(
        network=replace(
            NetworkConfig.for_version(DEVNET_NETWORK_VERSION), chain_id=DEVNET.chain_id
        ),
        epoch=0,
        initial_state_root=initial,
        base_fee=0,
        circ_supply=0,
        timestamp=0,
    )
    executor = Executor(Machine.create(context, store, _GenesisExterns()), invoker)
    miner = _construct(executor, spec, plans)
    return executor.flush(), miner


# -- the block --------------------------------------------------------------------------------


def _genesis_header(spec: DevnetGenesisSpec, store: Blockstore, state_root: CID) -> BlockHeader:
    empty_amt = Amt(store, legacy=True).flush()
    msg_meta = MsgMeta(empty_amt, empty_amt)
    messages = put(store, msg_meta.encode())
    store.put_keyed(FILECOIN_GENESIS_SENTINEL_CID, FILECOIN_GENESIS_SENTINEL)
    header = BlockHeader(
        miner=SYSTEM_ACTOR_ADDR,
        ticket=Ticket(spec.ticket_proof()),
        election_proof=ElectionProof(0, b""),
        beacon_entries=(BeaconEntry(0, bytes(32)),),
        win_post_proof=(),
        parents=(FILECOIN_GENESIS_SENTINEL_CID,),
        parent_weight=0,
        height=0,
        parent_state_root=state_root,
        parent_message_receipts=empty_amt,
        messages=messages,
        bls_aggregate=None,
        timestamp=spec.timestamp,
        block_sig=None,
        fork_signaling=0,
        parent_base_fee=INITIAL_BASE_FEE,
    )
    store.put_keyed(header.cid(), header.encode())
    return header


def build_devnet_genesis(
    spec: DevnetGenesisSpec,
    bundle: Bundle,
    store: Blockstore,
    invoker: ActorInvoker | None = None,
) -> DevnetGenesis:
    """Build the genesis state through the FVM and its block; everything goes into ``store``.

    ``bundle`` is the v10 devnet bundle (``load_bundle(path, network="devnet")``); its code is
    put into ``store``. ``invoker`` defaults to a :class:`WasmActorInvoker` with the on-disk
    module cache (genesis verifies no proof).
    """
    actors_version = actors_version_for(DEVNET_NETWORK_VERSION)
    if bundle.version != actors_version:
        raise GenesisError(f"the devnet runs actors v{actors_version}, not v{bundle.version}")
    if len(spec.ticket_proof()) != 32:
        raise GenesisError("the genesis ticket must be 32 bytes")
    plans = _plan_accounts(spec)
    bundle.put_into(store)
    actor_invoker = invoker if invoker is not None else WasmActorInvoker(AcceptAllProofVerifier())
    state_root, miner = run_on_execution_stack(
        lambda: _build_state(spec, bundle, store, actor_invoker, plans)
    )
    header = _genesis_header(spec, store, state_root)
    return DevnetGenesis(
        spec=spec,
        header=header,
        store=store,
        manifest=bundle.manifest_cid,
        miner=miner,
        account_ids=MappingProxyType({plan.address: plan.actor_id for plan in plans}),
    )


# -- CAR --------------------------------------------------------------------------------------


def _dag_blocks(store: Blockstore, root: CID) -> Iterator[tuple[CID, bytes]]:
    """Every DAG-CBOR block reachable from ``root`` through DAG-CBOR blocks, depth first; links
    of other codecs (the actors' WASM code) are not followed."""
    seen: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen or cid.codec != DAG_CBOR or cid.mh_code == IDENTITY:
            continue
        seen.add(cid)
        data = get_required(store, cid)
        yield cid, data
        stack.extend(reversed(scan_for_links(data, str(cid))))


def genesis_blocks(genesis: DevnetGenesis) -> Iterator[tuple[CID, bytes]]:
    """The blocks of the genesis CAR: header, sentinel, message meta, empty AMT, state."""
    store = genesis.store
    header = genesis.header
    yield header.cid(), header.encode()
    yield FILECOIN_GENESIS_SENTINEL_CID, FILECOIN_GENESIS_SENTINEL
    written = {header.cid(), FILECOIN_GENESIS_SENTINEL_CID}
    for root in (header.messages, header.parent_message_receipts, header.parent_state_root):
        for cid, data in _dag_blocks(store, root):
            if cid not in written:
                written.add(cid)
                yield cid, data


def write_genesis_car(path: str | Path, genesis: DevnetGenesis) -> None:
    """Write ``genesis.car``: root the genesis block, without the actors' code."""
    with open(path, "wb") as out:
        writer = CarWriter(out, [genesis.cid])
        for cid, data in genesis_blocks(genesis):
            writer.write(cid, data)


def read_genesis_car(path: str | Path, store: Blockstore) -> BlockHeader:
    """Put a genesis CAR's blocks into ``store`` and return its genesis block header."""
    with open_maybe_compressed(path) as stream:
        reader = CarReader(stream, source=str(path))
        store.put_many_keyed(reader)
        roots = reader.header.roots
    if len(roots) != 1:
        raise GenesisCarError(f"a genesis CAR has one root, not {len(roots)}", str(path))
    data = store.get(roots[0])
    if data is None:
        raise GenesisCarError(f"the root block {roots[0]} is not in the CAR", str(path))
    header = BlockHeader.decode(data, f"{path}: genesis block")
    if header.height != 0:
        raise GenesisCarError(f"the root block is at height {header.height}, not 0", str(path))
    return header
