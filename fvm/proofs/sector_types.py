"""The sector, seal, PoSt and piece structures actors hand to the proof syscalls, as DAG-CBOR.

Ported from ref-fvm's ``shared/src/sector/`` (``mod.rs``, ``seal.rs``, ``post.rs``,
``registered_proof.rs``), ``shared/src/piece/mod.rs`` and ``shared/src/randomness`` at
``fvm@v2.12.1``, ``fvm@v3.13.3`` and ``fvm@v4.8.2``. Every structure is a serde *tuple*: a CBOR
array with exactly one item per field, in declaration order. The decoders here accept what
those derives accept and nothing else:

* unsigned fields (actor IDs, sector and deal numbers, piece sizes) are ``u64``: a CBOR
  unsigned integer;
* registered proof types are ``i64``: any integer in range decodes, an unknown one becomes the
  reference's ``Invalid(n)`` and is only refused when something needs to know its meaning;
* byte fields (proofs, randomness) are strict: a CBOR byte string, never an array or text
  (``strict_bytes``; v2's ``cs_serde_bytes`` is the same) - except ``ReplicaUpdateInfo.proof``,
  a plain ``Vec<u8>`` the reference (de)serialises as an array of integers 0..255;
* randomness has no fixed length here (it is a ``Vec`` "for go compat").

Bad input raises :class:`SectorTypeError`; the syscall layer maps it to ``IllegalArgument`` as
ref-fvm's ``read_cbor`` does. Sector sizes and the proof types each ref-fvm generation knows are
here too, because the syscalls validate proof types before charging gas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final

from fvm.gas.proof_types import RegisteredPoStProof, RegisteredSealProof
from store.cid import CID
from store.errors import MalformedInput

U64_MAX: Final = (1 << 64) - 1
I64_MIN: Final = -(1 << 63)
I64_MAX: Final = (1 << 63) - 1
BYTE_MAX: Final = 0xFF


class SectorTypeError(MalformedInput):
    """A decoded CBOR value that is not the sector structure it should be."""


class RegisteredUpdateProof(IntEnum):
    """Replica update (SnapDeals) proof types (``i64_conversion!`` in ``registered_proof.rs``)."""

    STACKED_DRG_2KIB_V1 = 0
    STACKED_DRG_8MIB_V1 = 1
    STACKED_DRG_512MIB_V1 = 2
    STACKED_DRG_32GIB_V1 = 3
    STACKED_DRG_64GIB_V1 = 4


class RegisteredAggregateProof(IntEnum):
    """Seal aggregation (SnarkPack) proof types."""

    SNARK_PACK_V1 = 0
    SNARK_PACK_V2 = 1


class SectorSize(IntEnum):
    """The sector sizes the network knows, in bytes (``SectorSize``)."""

    SIZE_2KIB = 2 << 10
    SIZE_8MIB = 8 << 20
    SIZE_512MIB = 512 << 20
    SIZE_32GIB = 32 << 30
    SIZE_64GIB = 64 << 30


# Every block of five seal proof codes lists the sizes in this order.
_SIZES_BY_CODE_POSITION: Final = (
    SectorSize.SIZE_2KIB,
    SectorSize.SIZE_8MIB,
    SectorSize.SIZE_512MIB,
    SectorSize.SIZE_32GIB,
    SectorSize.SIZE_64GIB,
)

# The seal proof codes each ref-fvm generation converts to a known type (anything else is
# ``Invalid``): V1 and V1P1 in v2, plus synthetic PoRep in v3, plus NI-PoRep in v4.
SEAL_PROOF_TYPES: Final = MappingProxyType(
    {2: frozenset(range(10)), 3: frozenset(range(15)), 4: frozenset(range(20))}
)
# PoSt proof codes: winning 0-4, window V1 5-9 (gone in v4), window V1P1 10-14 (v3 on).
POST_PROOF_TYPES: Final = MappingProxyType(
    {
        2: frozenset(range(10)),
        3: frozenset(range(15)),
        4: frozenset((*range(5), *range(10, 15))),
    }
)


def is_known_seal_proof(fvm_version: int, proof_type: int) -> bool:
    """Whether ``proof_type`` is a seal proof type the ref-fvm generation knows."""
    return proof_type in SEAL_PROOF_TYPES[fvm_version]


def is_known_post_proof(fvm_version: int, proof_type: int) -> bool:
    """Whether ``proof_type`` is a PoSt proof type the ref-fvm generation knows."""
    return proof_type in POST_PROOF_TYPES[fvm_version]


def seal_proof_sector_size(fvm_version: int, proof_type: int) -> SectorSize:
    """The sector size of a seal proof type (``RegisteredSealProof::sector_size``)."""
    if not is_known_seal_proof(fvm_version, proof_type):
        raise SectorTypeError(f"unsupported seal proof type {proof_type}")
    return _SIZES_BY_CODE_POSITION[proof_type % len(_SIZES_BY_CODE_POSITION)]


# -- field decoders ---------------------------------------------------------------------------


def _items(value: Any, fields: Sequence[str], what: str) -> list[Any]:
    if type(value) is not list:
        raise SectorTypeError(f"{what} must be a CBOR array, not {type(value).__name__}")
    if len(value) != len(fields):
        raise SectorTypeError(
            f"{what} has {len(fields)} fields ({', '.join(fields)}), got {len(value)} items"
        )
    return value


def _u64(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= U64_MAX:
        raise SectorTypeError(f"{what} must be an unsigned 64-bit integer, got {value!r}")
    return value


def _i64(value: Any, what: str) -> int:
    if type(value) is not int or not I64_MIN <= value <= I64_MAX:
        raise SectorTypeError(f"{what} must be a signed 64-bit integer, got {value!r}")
    return value


def _strict_bytes(value: Any, what: str) -> bytes:
    if type(value) is not bytes:
        raise SectorTypeError(f"{what} must be a CBOR byte string, not {type(value).__name__}")
    return value


def _byte_array(value: Any, what: str) -> bytes:
    """A serde ``Vec<u8>`` without a bytes attribute: a CBOR array of integers 0..255."""
    if type(value) is not list:
        raise SectorTypeError(f"{what} must be a CBOR array of bytes, not {type(value).__name__}")
    for item in value:
        if type(item) is not int or not 0 <= item <= BYTE_MAX:
            raise SectorTypeError(f"{what} holds {item!r}, not a byte")
    return bytes(value)


def _cid(value: Any, what: str) -> CID:
    if not isinstance(value, CID):
        raise SectorTypeError(f"{what} must be a CID link, not {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise SectorTypeError(f"{what} must be a CBOR array, not {type(value).__name__}")
    return value


# -- structures -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SectorID:
    """A sector: its miner's actor ID and its number."""

    miner: int
    number: int

    @classmethod
    def from_cbor(cls, value: Any) -> SectorID:
        miner, number = _items(value, ("miner", "number"), "SectorID")
        return cls(_u64(miner, "SectorID.miner"), _u64(number, "SectorID.number"))

    def to_cbor(self) -> list[Any]:
        return [self.miner, self.number]


@dataclass(frozen=True, slots=True)
class SealVerifyInfo:
    """What verifying one sector's seal (PoRep) proof needs."""

    registered_proof: int
    sector_id: SectorID
    deal_ids: tuple[int, ...]
    randomness: bytes
    interactive_randomness: bytes
    proof: bytes
    sealed_cid: CID
    unsealed_cid: CID

    _FIELDS = (
        "registered_proof", "sector_id", "deal_ids", "randomness", "interactive_randomness",
        "proof", "sealed_cid", "unsealed_cid",
    )

    @classmethod
    def from_cbor(cls, value: Any) -> SealVerifyInfo:
        proof_type, sector_id, deal_ids, rand, irand, proof, sealed, unsealed = _items(
            value, cls._FIELDS, "SealVerifyInfo"
        )
        return cls(
            registered_proof=_i64(proof_type, "SealVerifyInfo.registered_proof"),
            sector_id=SectorID.from_cbor(sector_id),
            deal_ids=tuple(
                _u64(deal, "SealVerifyInfo.deal_ids[]")
                for deal in _list(deal_ids, "SealVerifyInfo.deal_ids")
            ),
            randomness=_strict_bytes(rand, "SealVerifyInfo.randomness"),
            interactive_randomness=_strict_bytes(irand, "SealVerifyInfo.interactive_randomness"),
            proof=_strict_bytes(proof, "SealVerifyInfo.proof"),
            sealed_cid=_cid(sealed, "SealVerifyInfo.sealed_cid"),
            unsealed_cid=_cid(unsealed, "SealVerifyInfo.unsealed_cid"),
        )

    def to_cbor(self) -> list[Any]:
        return [
            self.registered_proof, self.sector_id.to_cbor(), list(self.deal_ids),
            self.randomness, self.interactive_randomness, self.proof, self.sealed_cid,
            self.unsealed_cid,
        ]


@dataclass(frozen=True, slots=True)
class AggregateSealVerifyInfo:
    """One sector of an aggregated seal proof."""

    sector_number: int
    randomness: bytes
    interactive_randomness: bytes
    sealed_cid: CID
    unsealed_cid: CID

    _FIELDS = (
        "sector_number", "randomness", "interactive_randomness", "sealed_cid", "unsealed_cid",
    )

    @classmethod
    def from_cbor(cls, value: Any) -> AggregateSealVerifyInfo:
        number, rand, irand, sealed, unsealed = _items(
            value, cls._FIELDS, "AggregateSealVerifyInfo"
        )
        return cls(
            sector_number=_u64(number, "AggregateSealVerifyInfo.sector_number"),
            randomness=_strict_bytes(rand, "AggregateSealVerifyInfo.randomness"),
            interactive_randomness=_strict_bytes(
                irand, "AggregateSealVerifyInfo.interactive_randomness"
            ),
            sealed_cid=_cid(sealed, "AggregateSealVerifyInfo.sealed_cid"),
            unsealed_cid=_cid(unsealed, "AggregateSealVerifyInfo.unsealed_cid"),
        )

    def to_cbor(self) -> list[Any]:
        return [
            self.sector_number, self.randomness, self.interactive_randomness, self.sealed_cid,
            self.unsealed_cid,
        ]


@dataclass(frozen=True, slots=True)
class AggregateSealVerifyProofAndInfos:
    """An aggregated seal proof over many sectors of one miner."""

    miner: int
    seal_proof: int
    aggregate_proof: int
    proof: bytes
    infos: tuple[AggregateSealVerifyInfo, ...]

    _FIELDS = ("miner", "seal_proof", "aggregate_proof", "proof", "infos")

    @classmethod
    def from_cbor(cls, value: Any) -> AggregateSealVerifyProofAndInfos:
        miner, seal_proof, aggregate_proof, proof, infos = _items(
            value, cls._FIELDS, "AggregateSealVerifyProofAndInfos"
        )
        return cls(
            miner=_u64(miner, "AggregateSealVerifyProofAndInfos.miner"),
            seal_proof=_i64(seal_proof, "AggregateSealVerifyProofAndInfos.seal_proof"),
            aggregate_proof=_i64(
                aggregate_proof, "AggregateSealVerifyProofAndInfos.aggregate_proof"
            ),
            proof=_strict_bytes(proof, "AggregateSealVerifyProofAndInfos.proof"),
            infos=tuple(
                AggregateSealVerifyInfo.from_cbor(info)
                for info in _list(infos, "AggregateSealVerifyProofAndInfos.infos")
            ),
        )

    def to_cbor(self) -> list[Any]:
        return [
            self.miner, self.seal_proof, self.aggregate_proof, self.proof,
            [info.to_cbor() for info in self.infos],
        ]


@dataclass(frozen=True, slots=True)
class ReplicaUpdateInfo:
    """What verifying a replica update (SnapDeals) proof needs."""

    update_proof_type: int
    old_sealed_cid: CID
    new_sealed_cid: CID
    new_unsealed_cid: CID
    proof: bytes

    _FIELDS = (
        "update_proof_type", "old_sealed_cid", "new_sealed_cid", "new_unsealed_cid", "proof",
    )

    @classmethod
    def from_cbor(cls, value: Any) -> ReplicaUpdateInfo:
        proof_type, old_sealed, new_sealed, new_unsealed, proof = _items(
            value, cls._FIELDS, "ReplicaUpdateInfo"
        )
        return cls(
            update_proof_type=_i64(proof_type, "ReplicaUpdateInfo.update_proof_type"),
            old_sealed_cid=_cid(old_sealed, "ReplicaUpdateInfo.old_sealed_cid"),
            new_sealed_cid=_cid(new_sealed, "ReplicaUpdateInfo.new_sealed_cid"),
            new_unsealed_cid=_cid(new_unsealed, "ReplicaUpdateInfo.new_unsealed_cid"),
            proof=_byte_array(proof, "ReplicaUpdateInfo.proof"),
        )

    def to_cbor(self) -> list[Any]:
        return [
            self.update_proof_type, self.old_sealed_cid, self.new_sealed_cid,
            self.new_unsealed_cid, list(self.proof),
        ]


@dataclass(frozen=True, slots=True)
class SectorInfo:
    """A sector challenged by a window PoSt: its seal proof type, number and CommR."""

    proof: int
    sector_number: int
    sealed_cid: CID

    @classmethod
    def from_cbor(cls, value: Any) -> SectorInfo:
        proof, number, sealed = _items(
            value, ("proof", "sector_number", "sealed_cid"), "SectorInfo"
        )
        return cls(
            proof=_i64(proof, "SectorInfo.proof"),
            sector_number=_u64(number, "SectorInfo.sector_number"),
            sealed_cid=_cid(sealed, "SectorInfo.sealed_cid"),
        )

    def to_cbor(self) -> list[Any]:
        return [self.proof, self.sector_number, self.sealed_cid]


@dataclass(frozen=True, slots=True)
class PoStProof:
    """One PoSt proof: its registered type and bytes."""

    post_proof: int
    proof_bytes: bytes

    @classmethod
    def from_cbor(cls, value: Any) -> PoStProof:
        post_proof, proof_bytes = _items(value, ("post_proof", "proof_bytes"), "PoStProof")
        return cls(
            post_proof=_i64(post_proof, "PoStProof.post_proof"),
            proof_bytes=_strict_bytes(proof_bytes, "PoStProof.proof_bytes"),
        )

    def to_cbor(self) -> list[Any]:
        return [self.post_proof, self.proof_bytes]


@dataclass(frozen=True, slots=True)
class WindowPoStVerifyInfo:
    """What verifying a window PoSt submitted to a miner actor needs."""

    randomness: bytes
    proofs: tuple[PoStProof, ...]
    challenged_sectors: tuple[SectorInfo, ...]
    prover: int

    _FIELDS = ("randomness", "proofs", "challenged_sectors", "prover")

    @classmethod
    def from_cbor(cls, value: Any) -> WindowPoStVerifyInfo:
        rand, proofs, sectors, prover = _items(value, cls._FIELDS, "WindowPoStVerifyInfo")
        return cls(
            randomness=_strict_bytes(rand, "WindowPoStVerifyInfo.randomness"),
            proofs=tuple(
                PoStProof.from_cbor(proof)
                for proof in _list(proofs, "WindowPoStVerifyInfo.proofs")
            ),
            challenged_sectors=tuple(
                SectorInfo.from_cbor(sector)
                for sector in _list(sectors, "WindowPoStVerifyInfo.challenged_sectors")
            ),
            prover=_u64(prover, "WindowPoStVerifyInfo.prover"),
        )

    def to_cbor(self) -> list[Any]:
        return [
            self.randomness, [proof.to_cbor() for proof in self.proofs],
            [sector.to_cbor() for sector in self.challenged_sectors], self.prover,
        ]


@dataclass(frozen=True, slots=True)
class PieceInfo:
    """A piece of a sector: its padded size and its piece commitment CID (CommP)."""

    size: int
    cid: CID

    @classmethod
    def from_cbor(cls, value: Any) -> PieceInfo:
        size, cid = _items(value, ("size", "cid"), "PieceInfo")
        return cls(size=_u64(size, "PieceInfo.size"), cid=_cid(cid, "PieceInfo.cid"))

    def to_cbor(self) -> list[Any]:
        return [self.size, self.cid]


def decode_seal_verify_infos(value: Any) -> tuple[SealVerifyInfo, ...]:
    """A ``Vec<SealVerifyInfo>`` (``batch_verify_seals``)."""
    return tuple(SealVerifyInfo.from_cbor(info) for info in _list(value, "Vec<SealVerifyInfo>"))


def decode_piece_infos(value: Any) -> tuple[PieceInfo, ...]:
    """A ``Vec<PieceInfo>`` (``compute_unsealed_sector_cid``)."""
    return tuple(PieceInfo.from_cbor(piece) for piece in _list(value, "Vec<PieceInfo>"))


__all__ = [
    "POST_PROOF_TYPES",
    "SEAL_PROOF_TYPES",
    "AggregateSealVerifyInfo",
    "AggregateSealVerifyProofAndInfos",
    "PieceInfo",
    "PoStProof",
    "RegisteredAggregateProof",
    "RegisteredPoStProof",
    "RegisteredSealProof",
    "RegisteredUpdateProof",
    "ReplicaUpdateInfo",
    "SealVerifyInfo",
    "SectorID",
    "SectorInfo",
    "SectorSize",
    "SectorTypeError",
    "WindowPoStVerifyInfo",
    "decode_piece_infos",
    "decode_seal_verify_infos",
    "is_known_post_proof",
    "is_known_seal_proof",
    "seal_proof_sector_size",
]
