"""What differs between two state trees: actor by actor, and field by field inside actor state.

Replay (:mod:`chainsync.replay`) uses it when the state root it computes for a tipset is not
the one the chain records, to say *which* actors disagree and *where* in their state. Lotus
offers the same inspection as ``lotus-shed`` / ``lotus state compute-state --json`` diffs and
its ``chain/state/statetree`` ``Diff``; ref-fvm has no counterpart.

* Actors: both state roots are opened (:func:`fvm.state_tree.load_state_root`, any state-tree
  version) and their actors HAMTs compared by :func:`hamt_diff`, which follows only the slots
  whose links differ, so a diff costs the size of the change, not of the state. Each differing
  actor is reported with its code (and builtin type name), head, nonce and balance on both sides.
* Fields: when the actor's type has a schema (:mod:`fvm.actor_schemas`) both head blocks are
  walked together: struct fields by name, lists by index, links followed, HAMTs diffed by key
  (pruned the same way), AMTs and KAMTs by index/key (fully read, up to
  :data:`MAX_COLLECTION_ENTRIES` entries a side; beyond it only the changed root is reported).
  A value that is the same raw CBOR on both sides is never descended into.

Values in the report are rendered for JSON: integers as they are, bytes as ``0x`` hex, CIDs,
addresses and bitfields as text. Unreadable state (a block missing, a shape the schema refuses)
ends that actor's field diff with an error message, never the whole diff.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from fvm.actor_schemas import (
    Amt,
    BitWidthFromField,
    Hamt,
    Kamt,
    Kind,
    Link,
    ListOf,
    Nullable,
    Scalar,
    Struct,
    UnknownSchema,
    VersionSchema,
    decode_key,
    decode_value,
    format_key,
    schema_for,
)
from fvm.actor_state import ActorState
from fvm.address import Address
from fvm.state_tree import HAMT_BIT_WIDTH, hamt_layout, load_state_root
from store import amt as amt_module
from store import dag_cbor
from store import hamt as hamt_module
from store import kamt as kamt_module
from store.bitfield import BitField
from store.blockstore import Blockstore, get_required
from store.cid import CID
from store.errors import FvmNodeError, HamtError

# How many entries a side of an AMT or KAMT is read in full to diff it by index or key.
MAX_COLLECTION_ENTRIES: Final = 100_000
# How many field differences one actor's report lists before it is cut short.
DEFAULT_MAX_FIELD_DIFFS: Final = 200

ActorNameOf = Callable[[CID], str | None]
"""The builtin actor type name of a code CID (a bundle manifest's ``name_of``)."""


class Absent:
    """The side of a diff where an entry or field does not exist (a stored CBOR null is
    ``None``, so None cannot mean absent)."""

    _instance: Absent | None = None

    def __new__(cls) -> Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Final = Absent()

# A differing entry of a keyed collection: (key, computed raw value, expected raw value), a
# side lacking the entry holding :data:`ABSENT`.
EntryDiff = tuple[Any, Any, Any]


# -- rendering --------------------------------------------------------------------------------


def render(value: Any) -> Any:
    """``value`` as JSON can hold it (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, CID | Address):
        return str(value)
    if isinstance(value, BitField):
        return ",".join(
            f"{start}-{end - 1}" if end - start > 1 else str(start) for start, end in value.ranges()
        )
    if isinstance(value, dict):
        return {str(key): render(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item) for item in value]
    return repr(value)


# -- pruned HAMT diff -------------------------------------------------------------------------


def _slots(store: Blockstore, cid: CID, bit_width: int, depth: int) -> dict[int, Any]:
    """A v3-layout HAMT node's pointers by slot index."""
    where = f"HAMT node {cid}"
    bitfield, pointers = hamt_module.load_node_frame(store, cid, bit_width, depth, where, HamtError)
    slots: dict[int, Any] = {}
    position = 0
    for index in range(1 << bit_width):
        if bitfield >> index & 1:
            pointer = pointers[position]
            position += 1
            if type(pointer) is list:
                for entry in pointer:
                    if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not bytes:
                        raise HamtError("bucket entry must be [key bytes, value]", where)
            elif type(pointer) is not CID:
                raise HamtError("pointer must be a link or a bucket", where)
            slots[index] = pointer
    return slots


def _pointer_entries(store: Blockstore, pointer: Any, bit_width: int) -> dict[bytes, Any]:
    if pointer is None:
        return {}
    if type(pointer) is list:
        return {entry[0]: entry[1] for entry in pointer}
    return dict(hamt_module.Hamt(store, pointer, bit_width=bit_width).items())


def _dict_diff(computed: dict[Any, Any], expected: dict[Any, Any]) -> Iterator[EntryDiff]:
    for key in sorted(computed.keys() | expected.keys()):
        mine, theirs = computed.get(key, ABSENT), expected.get(key, ABSENT)
        if mine is ABSENT or theirs is ABSENT or mine != theirs:
            yield key, mine, theirs


def _diff_hamt_nodes(
    store: Blockstore, computed: CID, expected: CID, bit_width: int, depth: int
) -> Iterator[EntryDiff]:
    if computed == expected:
        return
    mine = _slots(store, computed, bit_width, depth)
    theirs = _slots(store, expected, bit_width, depth)
    for index in sorted(mine.keys() | theirs.keys()):
        left, right = mine.get(index), theirs.get(index)
        if type(left) is CID and type(right) is CID:
            yield from _diff_hamt_nodes(store, left, right, bit_width, depth + 1)
        elif left != right:
            yield from _dict_diff(
                _pointer_entries(store, left, bit_width), _pointer_entries(store, right, bit_width)
            )


def hamt_diff(
    store: Blockstore,
    computed: CID,
    expected: CID,
    *,
    bit_width: int = hamt_module.DEFAULT_BIT_WIDTH,
    layout: int = hamt_module.LAYOUT_V3,
) -> list[EntryDiff]:
    """The entries (raw key bytes, raw values) that differ between two HAMTs, by key.

    Subtrees whose links are equal are skipped: a key's slot path depends only on its hash,
    so equal links at the same path hold the same entries. The old v0 layout is read in full.
    """
    if computed == expected:
        return []
    if layout != hamt_module.LAYOUT_V3:
        mine = hamt_module.Hamt(store, computed, bit_width=bit_width, version=layout)
        theirs = hamt_module.Hamt(store, expected, bit_width=bit_width, version=layout)
        return list(_dict_diff(dict(mine.items()), dict(theirs.items())))
    return sorted(_diff_hamt_nodes(store, computed, expected, bit_width, 0), key=lambda d: d[0])


# -- field-level diff -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One leaf that differs: its path in the decoded state (``claims[f01000].raw_byte_power``)
    and its rendered value on each side (None where absent)."""

    path: str
    computed: Any
    expected: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "computed": self.computed, "expected": self.expected}


class _TooManyDiffs(Exception):
    pass


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _FieldDiffer:
    """Walks two raw (undecoded DAG-CBOR) values of one schema kind side by side."""

    def __init__(self, store: Blockstore, schema: VersionSchema, limit: int) -> None:
        self.store = store
        self.schema = schema
        self.limit = limit
        self.diffs: list[FieldDiff] = []

    def add(self, path: str, computed: Any, expected: Any) -> None:
        if len(self.diffs) >= self.limit:
            raise _TooManyDiffs
        self.diffs.append(FieldDiff(path or "<state>", render(computed), render(expected)))

    def decoded(self, kind: Kind, value: Any, path: str) -> Any:
        return None if value is ABSENT else decode_value(self.schema, kind, value, path)

    def value(
        self, kind: Kind, computed: Any, expected: Any, path: str, context: dict[str, Any]
    ) -> None:
        if computed is not ABSENT and expected is not ABSENT and computed == expected:
            return
        if computed is ABSENT or expected is ABSENT or isinstance(kind, Scalar):
            self.add(path, self.decoded(kind, computed, path), self.decoded(kind, expected, path))
        elif isinstance(kind, Struct):
            self.struct(kind, computed, expected, path)
        elif isinstance(kind, Nullable):
            if computed is None or expected is None:
                self.add(
                    path, self.decoded(kind, computed, path), self.decoded(kind, expected, path)
                )
            else:
                self.value(kind.inner, computed, expected, path, context)
        elif isinstance(kind, ListOf):
            self.sequence(kind, computed, expected, path, context)
        elif isinstance(kind, Link):
            self.link(kind, computed, expected, path, context)
        else:
            self.collection(kind, computed, expected, path, context)

    def struct(self, kind: Struct, computed: Any, expected: Any, path: str) -> None:
        struct_fields = self.schema.structs[kind.name]
        mine = decode_value(self.schema, kind, computed, path)
        theirs = decode_value(self.schema, kind, expected, path)
        mine_raw = dict(zip((f.name for f in struct_fields), computed, strict=False))
        theirs_raw = dict(zip((f.name for f in struct_fields), expected, strict=False))
        for struct_field in struct_fields:
            name = struct_field.name
            where = _join(path, name)
            if name in mine_raw and name in theirs_raw:
                self.value(struct_field.kind, mine_raw[name], theirs_raw[name], where, mine_raw)
            elif mine[name] != theirs[name]:
                self.add(where, mine[name], theirs[name])

    def sequence(
        self, kind: ListOf, computed: Any, expected: Any, path: str, context: dict[str, Any]
    ) -> None:
        if type(computed) is not list or type(expected) is not list:
            self.add(path, self.decoded(kind, computed, path), self.decoded(kind, expected, path))
            return
        for index, (mine, theirs) in enumerate(
            itertools.zip_longest(computed, expected, fillvalue=ABSENT)
        ):
            self.value(kind.item, mine, theirs, f"{path}[{index}]", context)

    def link(
        self, kind: Link, computed: Any, expected: Any, path: str, context: dict[str, Any]
    ) -> None:
        if type(computed) is not CID or type(expected) is not CID:
            self.add(path, computed, expected)
            return
        self.value(kind.target, self.load(computed, path), self.load(expected, path), path, context)

    def load(self, cid: CID, path: str) -> Any:
        return dag_cbor.decode(get_required(self.store, cid), f"{path} ({cid})")

    def collection(
        self,
        kind: Hamt | Amt | Kamt,
        computed: Any,
        expected: Any,
        path: str,
        context: dict[str, Any],
    ) -> None:
        if type(computed) is not CID or type(expected) is not CID:
            self.add(path, computed, expected)
            return
        if isinstance(kind, Hamt):
            width = kind.bit_width
            if isinstance(width, BitWidthFromField):
                width = context[width.field]
            entries: Iterable[EntryDiff] = hamt_diff(
                self.store, computed, expected, bit_width=width
            )
        else:
            mine, theirs = self.read_all(kind, computed), self.read_all(kind, expected)
            if mine is None or theirs is None:
                self.add(f"{path} (root; too large to diff)", computed, expected)
                return
            entries = _dict_diff(mine, theirs)
        for key, left, right in entries:
            shown = (
                str(key) if isinstance(kind, Amt) else format_key(decode_key(kind.key, key, path))
            )
            self.value(kind.value, left, right, f"{path}[{shown}]", context)

    def read_all(self, kind: Amt | Kamt, root: CID) -> dict[Any, Any] | None:
        items: Iterator[tuple[Any, Any]]
        if isinstance(kind, Amt):
            items = amt_module.Amt(self.store, root).items()
        else:
            items = kamt_module.Kamt(
                self.store,
                root,
                bit_width=kind.bit_width,
                max_bucket_size=kind.max_array_width,
            ).items()
        head = list(itertools.islice(items, MAX_COLLECTION_ENTRIES + 1))
        if len(head) > MAX_COLLECTION_ENTRIES:
            return None
        return dict(head)


def diff_actor_state(
    store: Blockstore,
    actors_version: int,
    actor_name: str,
    computed_head: CID,
    expected_head: CID,
    *,
    max_diffs: int = DEFAULT_MAX_FIELD_DIFFS,
) -> tuple[list[FieldDiff], bool]:
    """The fields that differ between two head blocks of an actor of type ``actor_name``;
    and whether the list was cut at ``max_diffs``.

    Raises :class:`~fvm.actor_schemas.UnknownSchema` for a type or version without a schema,
    :class:`~store.errors.MalformedInput` for state that does not decode (the schema's
    ``SchemaMismatch``, HAMT/AMT errors) and :class:`~store.errors.BlockNotFound`.
    """
    schema = schema_for(actors_version)
    try:
        state_struct = Struct(schema.states[actor_name])
    except KeyError:
        raise UnknownSchema(
            f"no state schema for {actor_name!r} in actors v{actors_version}"
        ) from None
    differ = _FieldDiffer(store, schema, max_diffs)
    try:
        differ.value(
            state_struct,
            differ.load(computed_head, actor_name),
            differ.load(expected_head, actor_name),
            "",
            {},
        )
    except _TooManyDiffs:
        return differ.diffs, True
    return differ.diffs, False


# -- actor-level diff -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActorDiff:
    """One actor whose entry differs between the computed and the expected state tree.

    ``computed`` / ``expected`` are None when the actor exists on one side only. ``fields``
    is the field-level diff of the head blocks (empty when the heads are equal or no schema
    applies; ``field_error`` then says why, when there is a reason).
    """

    address: Address
    actor_type: str | None
    computed: ActorState | None
    expected: ActorState | None
    fields: tuple[FieldDiff, ...] = ()
    fields_truncated: bool = False
    field_error: str | None = None

    @property
    def changed(self) -> tuple[str, ...]:
        """Which of code, head, nonce, balance, delegated address differ (all of them for an
        actor on one side only)."""
        mine, theirs = self.computed, self.expected
        if mine is None or theirs is None:
            return ("code", "head", "nonce", "balance", "delegated_address")
        pairs = (
            ("code", mine.code, theirs.code),
            ("head", mine.state, theirs.state),
            ("nonce", mine.sequence, theirs.sequence),
            ("balance", mine.balance, theirs.balance),
            ("delegated_address", mine.delegated_address, theirs.delegated_address),
        )
        return tuple(name for name, left, right in pairs if left != right)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "actor_type": self.actor_type,
            "changed": list(self.changed),
            "computed": _actor_json(self.computed),
            "expected": _actor_json(self.expected),
            "fields": [diff.to_json() for diff in self.fields],
            "fields_truncated": self.fields_truncated,
            "field_error": self.field_error,
        }


def _actor_json(actor: ActorState | None) -> dict[str, Any] | None:
    if actor is None:
        return None
    return {
        "code": str(actor.code),
        "head": str(actor.state),
        "nonce": actor.sequence,
        "balance": str(actor.balance),
        "delegated_address": render(actor.delegated_address),
    }


@dataclass(frozen=True, slots=True)
class StateDiff:
    """Two state roots compared. ``header`` lists differences of the root block itself
    (state-tree version, info link) beside the actors."""

    computed_root: CID
    expected_root: CID
    actors: tuple[ActorDiff, ...]
    header: tuple[FieldDiff, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "computed_root": str(self.computed_root),
            "expected_root": str(self.expected_root),
            "header": [diff.to_json() for diff in self.header],
            "actors": [actor.to_json() for actor in self.actors],
        }


def _type_name(actor_name_of: ActorNameOf, *actors: ActorState | None) -> str | None:
    for actor in actors:
        if actor is not None:
            name = actor_name_of(actor.code)
            if name is not None:
                return name
    return None


def _actor_fields(
    store: Blockstore,
    actors_version: int,
    actor_type: str | None,
    computed: ActorState | None,
    expected: ActorState | None,
    max_field_diffs: int,
) -> tuple[tuple[FieldDiff, ...], bool, str | None]:
    if computed is None or expected is None or computed.state == expected.state:
        return (), False, None
    if actor_type is None:
        return (), False, "the actor's code is not a builtin actor of the bundle"
    if computed.code != expected.code:
        return (), False, "the code differs; the states are of different types"
    try:
        diffs, truncated = diff_actor_state(
            store,
            actors_version,
            actor_type,
            computed.state,
            expected.state,
            max_diffs=max_field_diffs,
        )
    except FvmNodeError as exc:
        return (), False, f"{type(exc).__name__}: {exc}"
    return tuple(diffs), truncated, None


def diff_state_trees(
    store: Blockstore,
    computed_root: CID,
    expected_root: CID,
    *,
    actors_version: int,
    actor_name_of: ActorNameOf,
    max_field_diffs: int = DEFAULT_MAX_FIELD_DIFFS,
) -> StateDiff:
    """Compare two state roots held in ``store`` (see the module docstring).

    Raises :class:`~store.errors.MalformedInput` / :class:`~store.errors.BlockNotFound` when
    a root or an actors-HAMT node is unreadable; field-level problems are reported per actor.
    """
    computed_version, computed_actors, computed_info = load_state_root(store, computed_root)
    expected_version, expected_actors, expected_info = load_state_root(store, expected_root)
    header: list[FieldDiff] = []
    if computed_version != expected_version:
        header.append(FieldDiff("version", int(computed_version), int(expected_version)))
    if computed_info != expected_info:
        header.append(FieldDiff("info", render(computed_info), render(expected_info)))
    if computed_version != expected_version:
        return StateDiff(computed_root, expected_root, (), tuple(header))
    where = "actors HAMT"
    actors: list[ActorDiff] = []
    for key, mine_raw, theirs_raw in hamt_diff(
        store,
        computed_actors,
        expected_actors,
        bit_width=HAMT_BIT_WIDTH,
        layout=hamt_layout(computed_version),
    ):
        address = Address.from_bytes(key, where)
        mine = (
            None if mine_raw is ABSENT else ActorState.from_cbor(mine_raw, computed_version, where)
        )
        theirs = (
            None
            if theirs_raw is ABSENT
            else ActorState.from_cbor(theirs_raw, expected_version, where)
        )
        actor_type = _type_name(actor_name_of, mine, theirs)
        fields, truncated, error = _actor_fields(
            store, actors_version, actor_type, mine, theirs, max_field_diffs
        )
        actors.append(ActorDiff(address, actor_type, mine, theirs, fields, truncated, error))
    return StateDiff(computed_root, expected_root, tuple(actors), tuple(header))
