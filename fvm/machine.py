"""The machine: one epoch's execution environment (state tree, builtin actors, prices, externs).

Ported from ref-fvm ``fvm/src/machine/{mod,default,manifest}.rs`` and
``fvm/src/system_actor.rs`` at ``fvm@v2.12.1`` (network versions 15-17) and ``fvm@v3.13.3``
(18-20). A :class:`Machine` owns:

* the :class:`MachineContext`: network version, price list, epoch, timestamp, base fee,
  circulating supply and the state root execution starts from;
* the state tree, over a :class:`~store.buffered_blockstore.BufferedBlockstore` so that the
  intermediate blocks of execution never reach the node's store; :meth:`Machine.flush` writes
  the tree and moves to the base store only the blocks the new root reaches;
* :class:`BuiltinActors`: the code CID of every builtin actor type, read from the manifest
  the system actor's state names (its only field, ``builtin_actors``, links the manifest's
  ``[[name, code], …]`` list) unless the network configuration overrides it.

Where ref-fvm's generations differ, the differences are data: :class:`FvmGeneration` rows in
:data:`GENERATIONS`, found by network version with :func:`generation_for`. The executor
(:mod:`fvm.executor`) and the call manager (:mod:`fvm.call_manager`) read their rules there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from fvm.engine.config import engine_config_for_network_version
from fvm.externs import Externs
from fvm.gas.price_list import PriceList, UnsupportedNetworkVersion, price_list_for
from fvm.network_version import NetworkVersion
from fvm.state_tree import StateTree
from fvm.token import TOTAL_FILECOIN, TokenAmount
from store import dag_cbor
from store.blockstore import Blockstore, put
from store.buffered_blockstore import BufferedBlockstore
from store.cid import CBOR, CID, DAG_CBOR, RAW
from store.errors import FvmNodeError, MalformedInput

SYSTEM_ACTOR_ID: Final = 0
INIT_ACTOR_ID: Final = 1
REWARD_ACTOR_ID: Final = 2
EAM_ACTOR_ID: Final = 10
BURNT_FUNDS_ACTOR_ID: Final = 99

MANIFEST_VERSION: Final = 1
# ref-fvm v2's singleton actor types (``SINGLETON_ACTOR_NAMES``): the kernel refuses to create
# another instance of them.
SINGLETON_ACTOR_NAMES: Final = (
    "system",
    "init",
    "reward",
    "cron",
    "storagepower",
    "storagemarket",
    "verifiedregistry",
)
# ref-fvm v3 ``NetworkConfig::new``: the chain ID actors see unless the node sets one.
DEFAULT_CHAIN_ID: Final = 0
# The seconds between epochs: ref-fvm's conformance runner derives the timestamp with it.
EPOCH_DURATION_SECONDS: Final = 30


class MachineError(FvmNodeError):
    """The machine cannot be built: unsupported network version, missing state root."""


class ManifestLoadError(MalformedInput):
    """A builtin-actors manifest or system actor state that is missing or malformed."""


@dataclass(frozen=True, slots=True)
class FvmGeneration:
    """What one ref-fvm major version does that another does not, as data.

    * ``network_versions``: the first and last network version the generation executes;
    * ``required_actors``: manifest entries ``Manifest::new`` insists on;
    * ``sender_actor_types``: actor types an explicit message may come from;
    * ``placeholder_sender_type``: the type a placeholder sender with an f4 address in the
      EAM's namespace and sequence 0 is turned into (None: placeholders cannot send);
    * ``extra_call_depth``: v2 checks the depth before counting the call, allowing one more
      nested call than ``max_call_depth``;
    * ``send_params_codec``/``method_params_codec``: the codec of a top-level message's
      parameters for method 0 and for any other method; ``constructor_params_codec``: that of
      the account constructor's parameters when a send creates an account;
    * ``creates_placeholders``: a send to an unknown f4 address in the EAM's namespace creates
      a placeholder actor there (FIP-0048);
    * ``stores_empty_array``: the machine stores the empty-array block when it starts;
    * ``traces_invocations``: execution traces record each invoked actor, each call's gas limit
      and read-only flag, and running out of gas as a ``SYS_OUT_OF_GAS`` return (v3); v2 records
      none of these and traces running out of gas as a syscall error.
    """

    name: str
    network_versions: tuple[int, int]
    required_actors: tuple[str, ...]
    sender_actor_types: tuple[str, ...]
    placeholder_sender_type: str | None
    extra_call_depth: int
    send_params_codec: int
    method_params_codec: int
    constructor_params_codec: int
    creates_placeholders: bool
    stores_empty_array: bool
    traces_invocations: bool

    def covers(self, network_version: int) -> bool:
        first, last = self.network_versions
        return first <= network_version <= last

    def top_level_params_codec(self, method: int) -> int:
        return self.send_params_codec if method == 0 else self.method_params_codec


FVM_V2: Final = FvmGeneration(
    name="v2",
    network_versions=(NetworkVersion.V15, NetworkVersion.V17),
    required_actors=("account", "system", "init"),
    sender_actor_types=("account",),
    placeholder_sender_type=None,
    extra_call_depth=1,
    send_params_codec=DAG_CBOR,
    method_params_codec=DAG_CBOR,
    constructor_params_codec=DAG_CBOR,
    creates_placeholders=False,
    stores_empty_array=False,
    traces_invocations=False,
)

FVM_V3: Final = FvmGeneration(
    name="v3",
    network_versions=(NetworkVersion.V18, NetworkVersion.V20),
    required_actors=("account", "system", "init", "placeholder", "eam", "ethaccount"),
    sender_actor_types=("account", "ethaccount"),
    placeholder_sender_type="ethaccount",
    extra_call_depth=0,
    send_params_codec=RAW,
    method_params_codec=CBOR,
    constructor_params_codec=CBOR,
    creates_placeholders=True,
    stores_empty_array=True,
    traces_invocations=True,
)

GENERATIONS: Final[tuple[FvmGeneration, ...]] = (FVM_V2, FVM_V3)


def generation_for(network_version: int) -> FvmGeneration:
    """The ref-fvm generation that executes messages at ``network_version``."""
    for generation in GENERATIONS:
        if generation.covers(network_version):
            return generation
    raise UnsupportedNetworkVersion(network_version)


# -- builtin actors ----------------------------------------------------------------------------


class BuiltinActors:
    """The builtin actor types of the bundle in force (ref-fvm ``machine::Manifest``).

    Types are numbered from 1 in manifest order (0 is "not a builtin actor"); a name or code
    listed twice keeps its last entry, as in the reference.
    """

    __slots__ = ("_by_code", "_by_id", "_by_name", "_names", "data_cid")

    def __init__(self, data_cid: CID, entries: list[tuple[str, CID]], required: tuple[str, ...]):
        self.data_cid = data_cid
        by_name: dict[str, CID] = {}
        by_id: dict[int, CID] = {}
        by_code: dict[CID, int] = {}
        names: dict[CID, str] = {}
        for type_id, (name, code) in enumerate(entries, start=1):
            by_name[name] = code
            by_id[type_id] = code
            by_code[code] = type_id
            names[code] = name
        for name in required:
            if name not in by_name:
                raise ManifestLoadError(f"manifest missing {name} actor", f"manifest {data_cid}")
        self._by_name: Mapping[str, CID] = MappingProxyType(by_name)
        self._by_id: Mapping[int, CID] = MappingProxyType(by_id)
        self._by_code: Mapping[CID, int] = MappingProxyType(by_code)
        self._names: Mapping[CID, str] = MappingProxyType(names)

    @classmethod
    def load(cls, store: Blockstore, data_cid: CID, required: tuple[str, ...]) -> BuiltinActors:
        """Read the ``[[name, code], …]`` list at ``data_cid``."""
        where = f"manifest {data_cid}"
        raw = store.get(data_cid)
        if raw is None:
            raise ManifestLoadError(f"cannot find manifest root cid {data_cid}", where)
        decoded = dag_cbor.decode(raw, where)
        if type(decoded) is not list:
            raise ManifestLoadError("manifest must be a list of [name, code] pairs", where)
        entries: list[tuple[str, CID]] = []
        for entry in decoded:
            if (
                type(entry) is not list
                or len(entry) != 2
                or type(entry[0]) is not str
                or type(entry[1]) is not CID
            ):
                raise ManifestLoadError("manifest entry must be [name, code CID]", where)
            entries.append((entry[0], entry[1]))
        return cls(data_cid, entries, required)

    def code_of(self, name: str) -> CID:
        """The code CID of an actor type the manifest lists (KeyError otherwise)."""
        return self._by_name[name]

    def name_of(self, code: CID) -> str | None:
        return self._names.get(code)

    def is_type(self, code: CID, name: str) -> bool:
        return self._by_name.get(name) == code

    def is_account_actor(self, code: CID) -> bool:
        return self.is_type(code, "account")

    def is_placeholder_actor(self, code: CID) -> bool:
        return self.is_type(code, "placeholder")

    def is_ethaccount_actor(self, code: CID) -> bool:
        return self.is_type(code, "ethaccount")

    def is_singleton_actor(self, code: CID) -> bool:
        """ref-fvm v2's singleton test (the reference dropped it in v3)."""
        return any(self._by_name.get(name) == code for name in SINGLETON_ACTOR_NAMES)

    def builtin_id(self, code: CID) -> int:
        """The actor type number of ``code`` (``id_by_code``), 0 for non-builtin code."""
        return self._by_code.get(code, 0)

    def code_by_id(self, type_id: int) -> CID | None:
        return self._by_id.get(type_id)

    def codes(self) -> Iterator[CID]:
        """Every builtin actor's code CID."""
        return iter(self._by_id.values())


def system_actor_manifest(state_tree: StateTree) -> CID:
    """The ``builtin_actors`` field of the system actor's state: the manifest's data list."""
    system = state_tree.get_actor(SYSTEM_ACTOR_ID)
    if system is None:
        raise ManifestLoadError("system actor address could not be resolved", "state tree")
    where = f"system actor state {system.state}"
    raw = state_tree.store.get(system.state)
    if raw is None:
        raise ManifestLoadError("system actor state not found", where)
    decoded: Any = dag_cbor.decode(raw, where)
    if type(decoded) is not list or len(decoded) != 1 or type(decoded[0]) is not CID:
        raise ManifestLoadError("system actor state must be [builtin_actors]", where)
    manifest: CID = decoded[0]
    return manifest


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Per-network settings (ref-fvm ``NetworkConfig``). ``builtin_actors_override`` names a
    manifest root (``[version, data]``) to use instead of the system actor's."""

    network_version: int
    price_list: PriceList
    max_call_depth: int
    chain_id: int = DEFAULT_CHAIN_ID
    builtin_actors_override: CID | None = None

    @classmethod
    def for_version(cls, network_version: int) -> NetworkConfig:
        """ref-fvm ``NetworkConfig::new``: the defaults of ``network_version``."""
        generation_for(network_version)
        return cls(
            network_version=network_version,
            price_list=price_list_for(network_version),
            max_call_depth=engine_config_for_network_version(network_version).max_call_depth,
        )


@dataclass(frozen=True, slots=True)
class MachineContext:
    """What executing one epoch depends on (ref-fvm ``MachineContext``)."""

    network: NetworkConfig
    epoch: int
    initial_state_root: CID
    base_fee: TokenAmount = 0
    circ_supply: TokenAmount = TOTAL_FILECOIN
    timestamp: int = 0
    tracing: bool = False

    @property
    def network_version(self) -> int:
        return self.network.network_version

    @property
    def price_list(self) -> PriceList:
        return self.network.price_list


# -- the machine -------------------------------------------------------------------------------


@dataclass(slots=True)
class Machine:
    """The state tree and environment messages of one epoch are applied to.

    Build it with :meth:`Machine.create`. ``blockstore`` is the write buffer over the node's
    store; ``state_tree`` reads and writes through it.
    """

    context: MachineContext
    generation: FvmGeneration
    externs: Externs
    blockstore: BufferedBlockstore
    state_tree: StateTree
    builtin_actors: BuiltinActors = field(repr=False)

    @classmethod
    def create(cls, context: MachineContext, store: Blockstore, externs: Externs) -> Machine:
        """ref-fvm ``DefaultMachine::new``: check the version and root, load the manifest."""
        try:
            generation = generation_for(context.network_version)
        except UnsupportedNetworkVersion:
            raise MachineError(f"unsupported network version: {context.network_version}") from None
        root = context.initial_state_root
        if not store.has(root):
            raise MachineError(f"blockstore doesn't have the initial state-root {root}")
        if generation.stores_empty_array:
            put(store, dag_cbor.encode([]))
        buffered = BufferedBlockstore(store)
        state_tree = StateTree(buffered, root)
        override = context.network.builtin_actors_override
        if override is None:
            data_cid = system_actor_manifest(state_tree)
        else:
            data_cid = _manifest_data(buffered, override)
        builtin_actors = BuiltinActors.load(buffered, data_cid, generation.required_actors)
        return cls(context, generation, externs, buffered, state_tree, builtin_actors)

    def flush(self) -> CID:
        """Write the state tree, move the blocks its root reaches to the base store, and
        return the root."""
        root = self.state_tree.flush()
        self.blockstore.flush(root)
        return root


def _manifest_data(store: Blockstore, manifest: CID) -> CID:
    """The data list of a ``[version, data]`` manifest root (version 1 only)."""
    where = f"manifest {manifest}"
    raw = store.get(manifest)
    if raw is None:
        raise ManifestLoadError("failed to load actor manifest", where)
    decoded = dag_cbor.decode(raw, where)
    if (
        type(decoded) is not list
        or len(decoded) != 2
        or type(decoded[0]) is not int
        or type(decoded[1]) is not CID
    ):
        raise ManifestLoadError("manifest root must be [version, data]", where)
    if decoded[0] != MANIFEST_VERSION:
        raise ManifestLoadError(f"unsupported manifest version {decoded[0]}", where)
    data: CID = decoded[1]
    return data
