"""The state tree: every actor's :class:`ActorState`, keyed by ID address, with undo layers.

Ported from ref-fvm ``fvm/src/state_tree.rs`` (fvm v3: actor cache and resolve cache with an
undo history, transactions as marks in that history) and ``fvm/src/init_actor.rs``; loading of
every historical layout follows Lotus ``chain/state/statetree.go``.

Layout. The state root is the DAG-CBOR array ``[version, actors, info]`` (``StateRoot``) for
state-tree versions 1 to 5, where ``actors`` is the root of a HAMT (bit width 5) mapping the byte
form of ID addresses to actors and ``info`` links to ``StateInfo0`` (an empty array). Version 0
(network versions 0-3, so the mainnet genesis) has no root object: the state root *is* the
actors HAMT. As Lotus does, a root that does not decode as a ``StateRoot`` is read as version 0.
Versions 0 and 1 store their HAMTs in the older pointer layout (``store.hamt.LAYOUT_V0``).

Non-ID addresses resolve through the init actor (ID 1), whose state is ``[address_map, next_id,
network_name]``; ``address_map`` is a HAMT (bit width 5, the tree's layout) from address bytes
to actor IDs stored as CBOR integers.

Changes are kept in a cache until :meth:`StateTree.flush`. Each change is recorded in an undo
history; :meth:`StateTree.begin_transaction` marks the history and
:meth:`StateTree.end_transaction` either keeps the changes or rolls back to the mark.
Transactions nest; the history is dropped when the outermost one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, TypeVar

from fvm.actor_state import ActorState
from fvm.address import Address, Protocol, encode_leb128
from fvm.network_version import StateTreeVersion
from store import dag_cbor
from store.blockstore import Blockstore, get_required, put
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput
from store.hamt import LAYOUT_V0, LAYOUT_V3, Hamt

HAMT_BIT_WIDTH: Final = 5
INIT_ACTOR_ID: Final = 1
MAX_U64: Final = (1 << 64) - 1
_STATE_ROOT_FIELDS: Final = 3
_INIT_STATE_FIELDS: Final = 3

K = TypeVar("K")
V = TypeVar("V")


class StateTreeError(MalformedInput):
    """State data (root, init actor state, address map) that is not laid out as it must be."""


class StateTreeUsageError(FvmNodeError, RuntimeError):
    """An operation the tree cannot perform in its current situation (a caller's mistake)."""


class ActorNotFound(FvmNodeError, KeyError):
    """An address that resolves to no actor where one is required."""

    def __init__(self, target: object) -> None:
        self.target = target
        super().__init__(f"actor not found: {target}")

    def __str__(self) -> str:
        return f"actor not found: {self.target}"


@dataclass(frozen=True, slots=True)
class InitActorState:
    """The part of the init actor's state the VM reads: the address map and the next ID."""

    address_map: CID
    next_id: int
    network_name: str

    def to_cbor(self) -> list[Any]:
        return [self.address_map, self.next_id, self.network_name]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> InitActorState:
        if type(value) is not list or len(value) != _INIT_STATE_FIELDS:
            raise StateTreeError(
                "init actor state must be [address_map, next_id, network_name]", where
            )
        address_map, next_id, network_name = value
        if type(address_map) is not CID:
            raise StateTreeError("init actor address map must be a CID", where)
        if type(next_id) is not int or not 0 <= next_id <= MAX_U64:
            raise StateTreeError("init actor next ID must be an unsigned 64-bit integer", where)
        if type(network_name) is not str:
            raise StateTreeError("init actor network name must be a string", where)
        return cls(address_map, next_id, network_name)


class _HistoryMap(Generic[K, V]):
    """A dict whose changes are recorded so that they can be undone (ref-fvm ``HistoryMap``)."""

    __slots__ = ("_history", "_map")

    _ABSENT: Final = object()

    def __init__(self) -> None:
        self._map: dict[K, V] = {}
        self._history: list[tuple[K, object]] = []

    def get(self, key: K) -> V | None:
        return self._map.get(key)

    def insert(self, key: K, value: V) -> None:
        """Set ``key``, recording its previous value unless the value does not change."""
        previous = self._map.get(key, self._ABSENT)
        if previous is self._ABSENT:
            self._history.append((key, self._ABSENT))
        elif previous == value:
            return
        else:
            self._history.append((key, previous))
        self._map[key] = value

    def replace_unrecorded(self, key: K, value: V) -> None:
        """Change an existing entry without history (only while no undo mark is held)."""
        self._map[key] = value

    def history_len(self) -> int:
        return len(self._history)

    def rollback(self, height: int) -> None:
        """Undo every change recorded after the history had ``height`` entries."""
        history = self._history
        while len(history) > height:
            key, previous = history.pop()
            if previous is self._ABSENT:
                del self._map[key]
            else:
                self._map[key] = previous  # type: ignore[assignment]

    def discard_history(self) -> None:
        self._history.clear()

    def items(self) -> list[tuple[K, V]]:
        return list(self._map.items())


def _id_key(actor_id: int) -> bytes:
    """The actors HAMT key of an actor: the byte form of its ID address."""
    return b"\x00" + encode_leb128(actor_id)


def hamt_layout(version: StateTreeVersion) -> int:
    """The HAMT pointer layout (``store.hamt.LAYOUT_*``) of a state-tree version's maps."""
    return LAYOUT_V0 if version <= StateTreeVersion.V1 else LAYOUT_V3


def load_state_root(store: Blockstore, root: CID) -> tuple[StateTreeVersion, CID, CID | None]:
    """``(version, actors HAMT root, info)`` of a state root, any version.

    A root that is not a ``[version, actors, info]`` array is a version 0 tree: the HAMT itself.
    """
    where = f"state root {root}"
    decoded = dag_cbor.decode(get_required(store, root), where)
    if (
        type(decoded) is list
        and len(decoded) == _STATE_ROOT_FIELDS
        and type(decoded[0]) is int
        and type(decoded[1]) is CID
        and type(decoded[2]) is CID
    ):
        try:
            version = StateTreeVersion(decoded[0])
        except ValueError:
            raise StateTreeError(f"unsupported state tree version {decoded[0]}", where) from None
        return version, decoded[1], decoded[2]
    return StateTreeVersion.V0, root, None


class StateTree:
    """Actors by ID over a blockstore, with cached changes, transactions and ``flush``.

    ``StateTree(store)`` starts an empty version 5 tree; ``StateTree(store, root)`` loads any
    version (``version``, if also given, must match what is loaded).
    """

    __slots__ = (
        "_actor_cache",
        "_address_map",
        "_hamt",
        "_info",
        "_layers",
        "_layout",
        "_resolve_cache",
        "_store",
        "_version",
    )

    def __init__(
        self,
        store: Blockstore,
        root: CID | None = None,
        *,
        version: StateTreeVersion | None = None,
    ) -> None:
        self._store = store
        actors_root: CID | None
        if root is None:
            self._version = StateTreeVersion.V5 if version is None else StateTreeVersion(version)
            self._info = (
                None if self._version == StateTreeVersion.V0 else put(store, dag_cbor.encode([]))
            )
            actors_root = None
        else:
            loaded, actors_root, self._info = load_state_root(store, root)
            if version is not None and loaded != version:
                raise StateTreeError(
                    f"expected a {StateTreeVersion(version).name} state tree, found {loaded.name}",
                    f"state root {root}",
                )
            self._version = loaded
        self._layout = hamt_layout(self._version)
        self._hamt = Hamt(store, actors_root, bit_width=HAMT_BIT_WIDTH, version=self._layout)
        # actor ID -> (dirty, actor or None when absent / deleted)
        self._actor_cache: _HistoryMap[int, tuple[bool, ActorState | None]] = _HistoryMap()
        self._resolve_cache: _HistoryMap[Address, int] = _HistoryMap()
        self._layers: list[tuple[int, int]] = []
        self._address_map: tuple[CID, Hamt] | None = None

    @property
    def store(self) -> Blockstore:
        return self._store

    @property
    def version(self) -> StateTreeVersion:
        return self._version

    @property
    def info(self) -> CID | None:
        """The ``StateInfo0`` link of versions 1+ (None for version 0)."""
        return self._info

    # -- actors ---------------------------------------------------------------------------

    def _resolve_target(self, target: int | Address) -> int | None:
        if type(target) is int:
            return target
        assert isinstance(target, Address)
        return self.lookup_id(target)

    def _require_id(self, target: int | Address) -> int:
        actor_id = self._resolve_target(target)
        if actor_id is None:
            raise ActorNotFound(target)
        return actor_id

    def get_actor(self, target: int | Address) -> ActorState | None:
        """The actor with this ID (or address, resolved through the init actor), or None."""
        actor_id = self._resolve_target(target)
        if actor_id is None:
            return None
        entry = self._actor_cache.get(actor_id)
        if entry is None:
            value = self._hamt.get(_id_key(actor_id))
            actor = (
                None
                if value is None
                else ActorState.from_cbor(value, self._version, f"actor {actor_id}")
            )
            entry = (False, actor)
            self._actor_cache.insert(actor_id, entry)
        return entry[1]

    def set_actor(self, target: int | Address, actor: ActorState) -> None:
        """Store ``actor`` under this ID (a non-ID address must already resolve)."""
        self._actor_cache.insert(self._require_id(target), (True, actor))

    def delete_actor(self, target: int | Address) -> None:
        self._actor_cache.insert(self._require_id(target), (True, None))

    def mutate_actor(
        self, target: int | Address, change: Callable[[ActorState], ActorState]
    ) -> ActorState:
        """Replace an existing actor by ``change(actor)``; return the new actor."""
        actor_id = self._require_id(target)
        actor = self.get_actor(actor_id)
        if actor is None:
            raise ActorNotFound(target)
        changed = change(actor)
        self.set_actor(actor_id, changed)
        return changed

    def actors(self) -> Iterator[tuple[Address, ActorState]]:
        """Every actor, including changes not yet flushed: the HAMT's in its order, then new ones
        by ID."""
        where = "actors HAMT"
        seen: set[int] = set()
        for key, value in self._hamt.items():
            addr = Address.from_bytes(key, where)
            if addr.protocol is Protocol.ID:
                seen.add(addr.number)
                entry = self._actor_cache.get(addr.number)
                if entry is not None:
                    if entry[1] is not None:
                        yield addr, entry[1]
                    continue
            yield addr, ActorState.from_cbor(value, self._version, f"{where} key {addr}")
        for actor_id, (_, actor) in sorted(self._actor_cache.items(), key=lambda item: item[0]):
            if actor is not None and actor_id not in seen:
                yield Address.new_id(actor_id), actor

    # -- addresses ------------------------------------------------------------------------

    def _load_init(self) -> tuple[ActorState, InitActorState]:
        init_actor = self.get_actor(INIT_ACTOR_ID)
        if init_actor is None:
            raise StateTreeError("init actor (ID 1) is missing from the state tree")
        where = f"init actor state {init_actor.state}"
        state = InitActorState.from_cbor(
            dag_cbor.decode(get_required(self._store, init_actor.state), where), where
        )
        return init_actor, state

    def _address_map_hamt(self, root: CID) -> Hamt:
        cached = self._address_map
        if cached is not None and cached[0] == root:
            return cached[1]
        hamt = Hamt(self._store, root, bit_width=HAMT_BIT_WIDTH, version=self._layout)
        self._address_map = (root, hamt)
        return hamt

    def lookup_id(self, addr: Address) -> int | None:
        """The actor ID ``addr`` stands for, or None when the init actor does not know it."""
        if addr.protocol is Protocol.ID:
            return addr.number
        cached = self._resolve_cache.get(addr)
        if cached is not None:
            return cached
        _, init_state = self._load_init()
        value = self._address_map_hamt(init_state.address_map).get(addr.to_bytes())
        if value is None:
            return None
        if type(value) is not int or not 0 <= value <= MAX_U64:
            raise StateTreeError(
                f"init actor address map holds a non-ID value for {addr}",
                f"address map {init_state.address_map}",
            )
        self._resolve_cache.insert(addr, value)
        return value

    def register_new_address(self, addr: Address) -> int:
        """Assign the init actor's next ID to ``addr`` and record the mapping; return the ID."""
        init_actor, init_state = self._load_init()
        new_id = init_state.next_id
        address_map = Hamt(
            self._store, init_state.address_map, bit_width=HAMT_BIT_WIDTH, version=self._layout
        )
        address_map.set(addr.to_bytes(), new_id)
        updated = InitActorState(address_map.flush(), new_id + 1, init_state.network_name)
        state_cid = put(self._store, dag_cbor.encode(updated.to_cbor()))
        self.set_actor(INIT_ACTOR_ID, replace(init_actor, state=state_cid))
        self._resolve_cache.insert(addr, new_id)
        return new_id

    # -- transactions ---------------------------------------------------------------------

    def begin_transaction(self) -> None:
        self._layers.append((self._actor_cache.history_len(), self._resolve_cache.history_len()))

    def end_transaction(self, revert: bool) -> None:
        """End the innermost transaction, undoing its changes when ``revert`` is true."""
        if not self._layers:
            raise StateTreeUsageError("no transaction to end")
        actor_height, resolve_height = self._layers.pop()
        if revert:
            self._actor_cache.rollback(actor_height)
            self._resolve_cache.rollback(resolve_height)
        if not self._layers:
            self._actor_cache.discard_history()
            self._resolve_cache.discard_history()

    @property
    def in_transaction(self) -> bool:
        return bool(self._layers)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction that is reverted if the block raises, and kept otherwise."""
        self.begin_transaction()
        try:
            yield
        except BaseException:
            self.end_transaction(revert=True)
            raise
        self.end_transaction(revert=False)

    # -- persistence ----------------------------------------------------------------------

    def flush(self) -> CID:
        """Write every change to the store and return the new state root."""
        if self._layers:
            raise StateTreeUsageError("cannot flush while inside of a transaction")
        hamt = self._hamt
        cache = self._actor_cache
        for actor_id, (dirty, actor) in cache.items():
            if not dirty:
                continue
            if actor is None:
                hamt.delete(_id_key(actor_id))
            else:
                hamt.set(_id_key(actor_id), actor.to_cbor(self._version))
            cache.replace_unrecorded(actor_id, (False, actor))
        cache.discard_history()
        self._resolve_cache.discard_history()
        actors_root = hamt.flush()
        if self._version == StateTreeVersion.V0:
            return actors_root
        assert self._info is not None
        return put(self._store, dag_cbor.encode([int(self._version), actors_root, self._info]))
