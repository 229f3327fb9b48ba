"""Finding every HAMT, AMT and KAMT root reachable from an actor's state.

The walk follows the schema: struct fields, optional values and lists in place, :class:`Link`
fields by loading the linked block, and collections by yielding their root and — when their
values can themselves hold collections or links (a miner's deadlines' partitions, a set
multimap's inner sets, a multimap's AMTs) — by reading every entry and walking it too. Every
value read on the way is decoded against the schema, so a walk also checks the state's shape.

Stores often hold only part of a state (conformance vectors keep the blocks a message touched):
a linked block or collection node that is absent does not end the walk; it is recorded in
:attr:`StateWalker.missing` and that branch is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from fvm.actor_schemas.decode import (
    SchemaMismatch,
    UnknownSchema,
    decode_key,
    decode_value,
    format_key,
)
from fvm.actor_schemas.kinds import (
    Amt,
    BitWidthFromField,
    Collection,
    Field,
    Hamt,
    Kamt,
    Kind,
    Link,
    ListOf,
    Nullable,
    Scalar,
    Struct,
    VersionSchema,
)
from store import amt as amt_module
from store import dag_cbor
from store import hamt as hamt_module
from store.blockstore import Blockstore
from store.cid import CID
from store.errors import BlockNotFound

# fvm_ipld_hamt accepts widths that give 2..256 slots per node (FRC-46 asks for 1 to 8).
MIN_HAMT_BIT_WIDTH: Final = 1
MAX_HAMT_BIT_WIDTH: Final = 8


@dataclass(frozen=True, slots=True)
class CollectionRef:
    """A collection root found in actor state.

    ``bit_width`` is the width the actors use for it (resolved from the state when the schema
    stores it there); ``present`` says whether the root block is in the store.
    """

    path: str
    kind: Collection
    root: CID
    bit_width: int
    present: bool

    @property
    def type_name(self) -> str:
        if isinstance(self.kind, Hamt):
            return "hamt"
        if isinstance(self.kind, Amt):
            return "amt"
        return "kamt"


@dataclass(frozen=True, slots=True)
class MissingBlock:
    """A block the walk needed but the store lacks."""

    path: str
    cid: CID
    what: str


@dataclass(slots=True)
class StateWalker:
    """Walks actor states of one actors version over one store."""

    store: Blockstore
    schema: VersionSchema
    missing: list[MissingBlock] = field(default_factory=list)
    _nests: dict[Kind, bool] = field(default_factory=dict)

    def collections(self, actor_name: str, state_value: Any) -> Iterator[CollectionRef]:
        """Every collection reachable from ``state_value`` (the decoded head block)."""
        try:
            state_struct = self.schema.states[actor_name]
        except KeyError:
            raise UnknownSchema(
                f"no state schema for {actor_name!r} in actors v{self.schema.version}"
            ) from None
        decode_value(self.schema, Struct(state_struct), state_value, actor_name)
        return self._walk(Struct(state_struct), state_value, actor_name, {})

    # -- the walk ---------------------------------------------------------------------------

    def _walk(
        self, kind: Kind, value: Any, path: str, context: dict[str, Any]
    ) -> Iterator[CollectionRef]:
        if isinstance(kind, Scalar) or (value is None and isinstance(kind, Nullable)):
            return
        if isinstance(kind, Nullable):
            yield from self._walk(kind.inner, value, path, context)
        elif isinstance(kind, Struct):
            yield from self._walk_struct(kind, value, path)
        elif isinstance(kind, ListOf):
            for index, item in enumerate(value):
                yield from self._walk(kind.item, item, f"{path}[{index}]", context)
        elif isinstance(kind, Link):
            yield from self._follow(kind, value, path, context)
        else:
            yield from self._collection(kind, value, path, context)

    def _walk_struct(self, kind: Struct, value: Any, path: str) -> Iterator[CollectionRef]:
        """Walk a struct already checked by :func:`decode_value` (its fields give the context)."""
        struct_fields: tuple[Field, ...] = self.schema.structs[kind.name]
        # Trailing defaultable fields may be absent; they are scalars, never collections.
        context = {
            struct_field.name: item
            for struct_field, item in zip(struct_fields, value, strict=False)
        }
        for struct_field, item in zip(struct_fields, value, strict=False):
            if self._nests_collections(struct_field.kind):
                yield from self._walk(
                    struct_field.kind, item, f"{path}.{struct_field.name}", context
                )

    def _follow(
        self, kind: Link, cid: CID, path: str, context: dict[str, Any]
    ) -> Iterator[CollectionRef]:
        data = self.store.get(cid)
        if data is None:
            self.missing.append(MissingBlock(path, cid, "linked block"))
            return
        target = dag_cbor.decode(data, f"{path} ({cid})")
        decode_value(self.schema, kind.target, target, path)
        yield from self._walk(kind.target, target, path, context)

    def _collection(
        self, kind: Collection, root: CID, path: str, context: dict[str, Any]
    ) -> Iterator[CollectionRef]:
        if type(root) is not CID:
            raise SchemaMismatch(f"expected a CID ({kind})", path)
        bit_width = self._bit_width(kind, context, path)
        present = self.store.has(root)
        if present and isinstance(kind, Amt):
            self._check_amt_width(kind, root, path)
        yield CollectionRef(path, kind, root, bit_width, present)
        if not present:
            self.missing.append(MissingBlock(path, root, "collection root"))
            return
        if isinstance(kind, Kamt) or not self._nests_collections(kind.value):
            return
        entries = self._entries(kind, root, bit_width)
        try:
            for key, value in entries:
                where = f"{path}[{key}]"
                decode_value(self.schema, kind.value, value, where)
                yield from self._walk(kind.value, value, where, context)
        except BlockNotFound as exc:
            missing = exc.cid if isinstance(exc.cid, CID) else root
            self.missing.append(MissingBlock(path, missing, "collection node"))

    def _entries(self, kind: Hamt | Amt, root: CID, bit_width: int) -> Iterator[tuple[str, Any]]:
        if isinstance(kind, Hamt):
            for raw_key, value in hamt_module.Hamt(self.store, root, bit_width=bit_width).items():
                yield format_key(decode_key(kind.key, raw_key, str(root))), value
        else:
            for index, value in amt_module.Amt(self.store, root).items():
                yield str(index), value

    def _bit_width(self, kind: Collection, context: dict[str, Any], path: str) -> int:
        width = kind.bit_width
        if isinstance(width, BitWidthFromField):
            stored = context.get(width.field)
            if type(stored) is not int or not MIN_HAMT_BIT_WIDTH <= stored <= MAX_HAMT_BIT_WIDTH:
                raise SchemaMismatch(
                    f"HAMT bit width in field {width.field!r} must be an integer from "
                    f"{MIN_HAMT_BIT_WIDTH} to {MAX_HAMT_BIT_WIDTH}, not {stored!r}",
                    path,
                )
            return stored
        return width

    def _check_amt_width(self, kind: Amt, root: CID, path: str) -> None:
        stored = amt_module.Amt(self.store, root).bit_width
        if stored != kind.bit_width:
            raise SchemaMismatch(
                f"AMT root has bit width {stored}, the actors create it with {kind.bit_width}",
                path,
            )

    def _nests_collections(self, kind: Kind) -> bool:
        """Whether values of ``kind`` can reach a collection or a linked block."""
        known = self._nests.get(kind)
        if known is not None:
            return known
        if isinstance(kind, Scalar):
            result = False
        elif isinstance(kind, Link | Hamt | Amt | Kamt):
            result = True
        elif isinstance(kind, Nullable):
            result = self._nests_collections(kind.inner)
        elif isinstance(kind, ListOf):
            result = self._nests_collections(kind.item)
        else:
            result = any(
                self._nests_collections(struct_field.kind)
                for struct_field in self.schema.structs[kind.name]
            )
        self._nests[kind] = result
        return result
