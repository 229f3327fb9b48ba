"""Builtin actors' state layouts, as data: every field of every state struct, per actors version.

Each (actors version, actor type) maps to an ordered list of fields with their kinds (see
:mod:`fvm.actor_schemas.kinds`), including the exact HAMT/AMT bit widths the actors create their
collections with, so that state can be decoded to named fields, checked, and searched for every
HAMT/AMT root it reaches (the real-data rebuild tests use that to find collections to rebuild).
The tables are read from builtin-actors' ``actors/*/src/state.rs`` and the types they hold, at
the release tags named in each version module: actors v9 and v10 (checked against the mainnet
state in the conformance vectors) and v16, v17, v18 (read from the sources only: no real state of
those versions is in ``../shared``).

API: :func:`schema_for`, :func:`decode_state`, :func:`decode_value`, :func:`decode_key`,
:func:`iter_collections` (and :class:`StateWalker` to also learn which blocks were missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, Final

from fvm.actor_schemas.decode import (
    SchemaMismatch,
    UnknownSchema,
    decode_fields,
    decode_key,
    decode_value,
    format_key,
)
from fvm.actor_schemas.kinds import (
    Amt,
    BitWidthFromField,
    Field,
    Hamt,
    Kamt,
    KeyType,
    Kind,
    Link,
    ListOf,
    Nullable,
    Scalar,
    ScalarType,
    Struct,
    VersionSchema,
)
from fvm.actor_schemas.v9 import V9, V10
from fvm.actor_schemas.v16 import V16, V17, V18
from fvm.actor_schemas.walk import CollectionRef, MissingBlock, StateWalker
from store.blockstore import Blockstore

SCHEMAS: Final = MappingProxyType({schema.version: schema for schema in (V9, V10, V16, V17, V18)})

__all__ = [
    "SCHEMAS",
    "Amt",
    "BitWidthFromField",
    "CollectionRef",
    "Field",
    "Hamt",
    "Kamt",
    "KeyType",
    "Kind",
    "Link",
    "ListOf",
    "MissingBlock",
    "Nullable",
    "Scalar",
    "ScalarType",
    "SchemaMismatch",
    "StateWalker",
    "Struct",
    "UnknownSchema",
    "VersionSchema",
    "decode_key",
    "decode_state",
    "decode_value",
    "format_key",
    "iter_collections",
    "schema_for",
]


def schema_for(version: int) -> VersionSchema:
    """The schema of one actors version; :class:`UnknownSchema` if there is none."""
    try:
        return SCHEMAS[version]
    except KeyError:
        raise UnknownSchema(f"no actor state schemas for actors v{version}") from None


def decode_state(version: int, actor_name: str, value: Any) -> dict[str, Any]:
    """An actor's decoded head block as ``{field: value}``, checked against its schema.

    Raises :class:`SchemaMismatch` (a :class:`~store.errors.MalformedInput`) when the arity or
    a field's type is wrong, :class:`UnknownSchema` for an unknown version or actor type.
    """
    schema = schema_for(version)
    try:
        state_fields = schema.state_fields(actor_name)
    except KeyError:
        raise UnknownSchema(f"no state schema for {actor_name!r} in actors v{version}") from None
    return decode_fields(schema, state_fields, value, actor_name)


def iter_collections(
    store: Blockstore, version: int, actor_name: str, state_value: Any
) -> Iterator[CollectionRef]:
    """Every HAMT/AMT/KAMT root reachable from an actor's state, with path and bit width.

    Nested collections (a deadline's partitions, each partition's expiration queue, the inner
    HAMTs of a set multimap…) are found by reading the enclosing collections from ``store``;
    branches whose blocks are absent are skipped (use :class:`StateWalker` to see which).
    """
    return StateWalker(store, schema_for(version)).collections(actor_name, state_value)
