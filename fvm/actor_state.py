"""An actor's entry in the state tree: code, state root, sequence, balance, delegated address.

Wire forms, chosen by the state-tree version (ref-fvm ``fvm/src/state_tree.rs`` ``ActorState``
at fvm v2 and v3; Lotus ``chain/types/actor.go`` ``ActorV4`` / ``ActorV5``):

- state trees V0-V4 (up to network version 17): ``[code, head, sequence, balance]``;
- state tree V5 (network version 18 on, FIP-0048): ``[code, head, sequence, balance,
  delegated_address]`` with the address as bytes, or null when the actor has none.

Both references decode exactly the field count of the tree's version, and so does this module.
``state`` is ref-fvm's name for the head (Lotus: ``Head``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from fvm.address import Address
from fvm.network_version import StateTreeVersion
from fvm.token import TokenAmount, bigint_from_cbor, encode_bigint
from store import dag_cbor
from store.cid import CID
from store.errors import MalformedInput

MAX_U64: Final = (1 << 64) - 1
# CID of the DAG-CBOR empty array: the state of an actor that has none yet (EMPTY_ARR_CID).
EMPTY_ARRAY_CID: Final = CID.hash_of(dag_cbor.encode([]))


class ActorStateError(MalformedInput):
    """A state-tree entry that is not an actor as the tree's version lays it out."""


@dataclass(frozen=True, slots=True)
class ActorState:
    code: CID
    state: CID
    sequence: int = 0
    balance: TokenAmount = 0
    delegated_address: Address | None = None

    @classmethod
    def new_empty(cls, code: CID, delegated_address: Address | None = None) -> ActorState:
        """A fresh actor: empty-array state, sequence 0, no funds."""
        return cls(code, EMPTY_ARRAY_CID, 0, 0, delegated_address)

    def to_cbor(self, version: StateTreeVersion = StateTreeVersion.V5) -> list[Any]:
        """The DAG-CBOR data-model value in the layout of state-tree ``version``."""
        fields: list[Any] = [self.code, self.state, self.sequence, encode_bigint(self.balance)]
        delegated = self.delegated_address
        if version >= StateTreeVersion.V5:
            fields.append(None if delegated is None else delegated.to_bytes())
        elif delegated is not None:
            raise ActorStateError(
                f"state tree {version.name} cannot record a delegated address ({delegated})"
            )
        return fields

    @classmethod
    def from_cbor(
        cls,
        value: Any,
        version: StateTreeVersion = StateTreeVersion.V5,
        where: str | None = None,
    ) -> ActorState:
        fields = 5 if version >= StateTreeVersion.V5 else 4
        if type(value) is not list or len(value) != fields:
            raise ActorStateError(
                f"actor in a {version.name} state tree must be an array of {fields} fields", where
            )
        code, head, sequence, balance = value[:4]
        if type(code) is not CID or type(head) is not CID:
            raise ActorStateError("actor code and state must be CIDs", where)
        if type(sequence) is not int or not 0 <= sequence <= MAX_U64:
            raise ActorStateError("actor sequence must be an unsigned 64-bit integer", where)
        delegated = None
        if fields == 5 and value[4] is not None:
            delegated = Address.from_cbor(value[4], where)
        return cls(code, head, sequence, bigint_from_cbor(balance, where), delegated)

    def encode(self, version: StateTreeVersion = StateTreeVersion.V5) -> bytes:
        return dag_cbor.encode(self.to_cbor(version))

    @classmethod
    def decode(
        cls, data: bytes, version: StateTreeVersion = StateTreeVersion.V5, where: str | None = None
    ) -> ActorState:
        return cls.from_cbor(dag_cbor.decode(data, where), version, where)
