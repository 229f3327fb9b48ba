"""The ``/fil/hello/1.0.0`` protocol's two messages, as Lotus writes and reads them.

When two Filecoin nodes connect, the dialler sends a :class:`HelloMessage` (its heaviest tipset,
that tipset's height and weight, and its genesis CID); the listener answers with a
:class:`LatencyMessage` (when the hello arrived and when the answer was sent, in Unix
nanoseconds), which lets the dialler estimate the link's latency. A node whose genesis differs
is disconnected; the heaviest tipset is the first thing the syncer fetches from a new peer.

Wire form (Lotus ``node/hello/hello.go`` types, encoders in ``node/hello/cbor_gen.go``), each
a DAG-CBOR tuple:

* ``HelloMessage`` ``[HeaviestTipSet [CID…] (≤ 8192), HeaviestTipSetHeight int64,
  HeaviestTipSetWeight bigint bytes, GenesisHash CID]``
* ``LatencyMessage`` ``[TArrival int64, TSent int64]``

Decoding is strict: canonical DAG-CBOR, exact arity, exact CBOR types, integers within int64,
at most 8192 tipset CIDs, and (stricter than cbor-gen, which would re-encode it differently) a
minimally encoded weight. Every failure raises :class:`HelloCodecError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from fvm.token import bigint_from_cbor, encode_bigint
from store import dag_cbor
from store.cid import CID
from store.errors import MalformedInput

HELLO_PROTOCOL_ID: Final = "/fil/hello/1.0.0"
# cbor-gen's default ``MaxLength`` for the HeaviestTipSet slice.
MAX_TIPSET_CIDS: Final = 8192
MIN_I64: Final = -(1 << 63)
MAX_I64: Final = (1 << 63) - 1


class HelloCodecError(MalformedInput):
    """A hello or latency message that does not decode as Lotus's cbor-gen would accept it."""


def _decode_tuple(data: bytes, name: str, arity: int, where: str | None) -> list[Any]:
    try:
        value = dag_cbor.decode(data, where)
    except MalformedInput as exc:
        raise HelloCodecError(f"{name}: {exc.what}", where) from None
    if type(value) is not list:
        raise HelloCodecError(f"{name} must be a CBOR array", where)
    if len(value) != arity:
        raise HelloCodecError(f"{name} must have {arity} fields, got {len(value)}", where)
    return value


def _int64(value: Any, name: str, where: str | None) -> int:
    if type(value) is not int or not MIN_I64 <= value <= MAX_I64:
        raise HelloCodecError(f"{name} must be a 64-bit signed integer", where)
    return value


def _cid(value: Any, name: str, where: str | None) -> CID:
    if type(value) is not CID:
        raise HelloCodecError(f"{name} must be a CID, not {type(value).__name__}", where)
    return value


@dataclass(frozen=True, slots=True)
class HelloMessage:
    """What a node says about its chain when it meets a peer."""

    heaviest_tipset: tuple[CID, ...]
    heaviest_tipset_height: int
    heaviest_tipset_weight: int
    genesis_hash: CID

    def to_cbor(self) -> list[Any]:
        if len(self.heaviest_tipset) > MAX_TIPSET_CIDS:
            raise HelloCodecError(
                f"HeaviestTipSet has {len(self.heaviest_tipset)} CIDs, more than {MAX_TIPSET_CIDS}"
            )
        if not MIN_I64 <= self.heaviest_tipset_height <= MAX_I64:
            raise HelloCodecError("HeaviestTipSetHeight does not fit an int64")
        return [
            list(self.heaviest_tipset),
            self.heaviest_tipset_height,
            encode_bigint(self.heaviest_tipset_weight),
            self.genesis_hash,
        ]

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> HelloMessage:
        tipset, height, weight, genesis = _decode_tuple(data, "HelloMessage", 4, where)
        if type(tipset) is not list:
            raise HelloCodecError("HeaviestTipSet must be a CBOR array", where)
        if len(tipset) > MAX_TIPSET_CIDS:
            raise HelloCodecError(
                f"HeaviestTipSet has {len(tipset)} CIDs, more than {MAX_TIPSET_CIDS}", where
            )
        try:
            weight_value = bigint_from_cbor(weight, where)
        except MalformedInput as exc:
            raise HelloCodecError(f"HeaviestTipSetWeight: {exc.what}", where) from None
        if encode_bigint(weight_value) != weight:
            raise HelloCodecError(
                "HeaviestTipSetWeight is not a minimally encoded big integer", where
            )
        return cls(
            heaviest_tipset=tuple(
                _cid(item, f"HeaviestTipSet[{index}]", where) for index, item in enumerate(tipset)
            ),
            heaviest_tipset_height=_int64(height, "HeaviestTipSetHeight", where),
            heaviest_tipset_weight=weight_value,
            genesis_hash=_cid(genesis, "GenesisHash", where),
        )


@dataclass(frozen=True, slots=True)
class LatencyMessage:
    """The hello's answer: arrival and send times, Unix nanoseconds."""

    t_arrival: int
    t_sent: int

    def to_cbor(self) -> list[Any]:
        for name, value in (("TArrival", self.t_arrival), ("TSent", self.t_sent)):
            if not MIN_I64 <= value <= MAX_I64:
                raise HelloCodecError(f"{name} does not fit an int64")
        return [self.t_arrival, self.t_sent]

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> LatencyMessage:
        arrival, sent = _decode_tuple(data, "LatencyMessage", 2, where)
        return cls(_int64(arrival, "TArrival", where), _int64(sent, "TSent", where))
