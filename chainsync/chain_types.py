"""The chain's own data types: block headers, tipsets and their keys, block message lists.

Ported from Lotus ``chain/types`` (``blockheader.go``, ``tipset.go``, ``tipset_key.go``,
``blockmsg.go``, ``fullblock.go``, ``electionproof.go`` and the cbor-gen encoders in
``cbor_gen.go``) and go-state-types ``proof.PoStProof``. Every type is a DAG-CBOR tuple (an
array, fields in declaration order):

* ``BlockHeader``: 16 fields — Miner (address bytes), Ticket (nullable), ElectionProof
  (nullable), BeaconEntries, WinPoStProof, Parents (CIDs), ParentWeight (big integer bytes),
  Height (int64), ParentStateRoot, ParentMessageReceipts, Messages (CIDs), BLSAggregate
  (nullable signature), Timestamp (uint64), BlockSig (nullable signature), ForkSignaling
  (uint64), ParentBaseFee (big integer bytes). Its CID is the blake2b-256 DAG-CBOR CID of that
  encoding; what the miner signs is the encoding with BlockSig null (``SigningBytes``).
* ``Ticket`` [VRFProof], ``ElectionProof`` [WinCount int64, VRFProof],
  ``BeaconEntry`` [Round uint64, Data], ``PoStProof`` [PoStProof int64, ProofBytes].
* ``MsgMeta`` [BlsMessages root, SecpkMessages root] (the block's Messages CID points at it).
* ``BlockMsg`` [Header, BlsMessages CIDs, SecpkMessages CIDs] (the gossiped block).

Decoding is strict DAG-CBOR followed by shape checks that name the offending field, with
cbor-gen's limits (at most 8192 array elements, byte strings of at most 2 MiB, integers in
their Go types' ranges). One rule is stricter than Lotus: a decoded header must re-encode to
the very bytes it came from. Lotus accepts non-minimal big integers (a leading zero byte) and
then identifies the block by the CID of its *re-encoded* bytes, which differs from the CID the
sender computed; such a header is refused here instead of being given a second identity.

``TipSet`` sorts its blocks as Lotus's ``tipsetSortFunc`` does — by the blake2b-256 digest of
the ticket's VRF proof, equal tickets by CID bytes — and checks, as ``NewTipSet`` does, that
there is at least one block, every block has a ticket, and all share height and parents.
``TipSetKey`` is the ordered list of block CIDs; its byte form is their concatenated bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from fvm.address import Address
from fvm.crypto.hashes import blake2b_256
from fvm.message import Message, SignedMessage
from fvm.signature import Signature
from fvm.token import bigint_from_cbor, encode_bigint
from store import dag_cbor
from store.cid import CID
from store.errors import CIDError, MalformedInput

# cbor-gen's limits (``cbg.MaxLength``, ``cbg.ByteArrayMaxLen``).
MAX_ARRAY_LENGTH: Final = 8192
MAX_BYTE_ARRAY_LENGTH: Final = 2 << 20
BLOCK_HEADER_FIELDS: Final = 16

MIN_I64: Final = -(1 << 63)
MAX_I64: Final = (1 << 63) - 1
MAX_U64: Final = (1 << 64) - 1


class ChainTypeError(MalformedInput):
    """A chain data structure (header, tipset, block message list) that is not well formed."""


class InvalidTipSet(ChainTypeError):
    """Blocks that cannot form a tipset (none, a missing ticket, differing height or parents)."""


# -- field checks -------------------------------------------------------------------------


def _array(value: Any, name: str, where: str | None, length: int | None = None) -> list[Any]:
    if type(value) is not list:
        raise ChainTypeError(f"{name} must be a CBOR array, not {type(value).__name__}", where)
    if length is not None and len(value) != length:
        raise ChainTypeError(f"{name} must have {length} fields, got {len(value)}", where)
    if len(value) > MAX_ARRAY_LENGTH:
        raise ChainTypeError(
            f"{name} has {len(value)} elements, more than {MAX_ARRAY_LENGTH}", where
        )
    return value


def _bytes(value: Any, name: str, where: str | None) -> bytes:
    if type(value) is not bytes:
        raise ChainTypeError(
            f"{name} must be a CBOR byte string, not {type(value).__name__}", where
        )
    if len(value) > MAX_BYTE_ARRAY_LENGTH:
        raise ChainTypeError(f"{name} of {len(value)} bytes exceeds {MAX_BYTE_ARRAY_LENGTH}", where)
    return value


def _int64(value: Any, name: str, where: str | None) -> int:
    if type(value) is not int or not MIN_I64 <= value <= MAX_I64:
        raise ChainTypeError(f"{name} must be a 64-bit signed integer", where)
    return value


def _uint64(value: Any, name: str, where: str | None) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise ChainTypeError(f"{name} must be a 64-bit unsigned integer", where)
    return value


def _cid(value: Any, name: str, where: str | None) -> CID:
    if type(value) is not CID:
        raise ChainTypeError(f"{name} must be a CID, not {type(value).__name__}", where)
    return value


def _cids(value: Any, name: str, where: str | None) -> tuple[CID, ...]:
    items = _array(value, name, where)
    return tuple(_cid(item, f"{name}[{index}]", where) for index, item in enumerate(items))


def _minimal_bigint(value: Any, name: str, where: str | None) -> int:
    try:
        number = bigint_from_cbor(value, where)
    except MalformedInput as exc:
        raise ChainTypeError(f"{name}: {exc.what}", where) from None
    if encode_bigint(number) != value:
        raise ChainTypeError(f"{name} is not a minimally encoded big integer", where)
    return number


def _address(value: Any, name: str, where: str | None) -> Address:
    try:
        address = Address.from_cbor(value, where)
    except MalformedInput as exc:
        raise ChainTypeError(f"{name}: {exc.what}", where) from None
    if address.to_bytes() != value:
        raise ChainTypeError(f"{name} is not a canonically encoded address", where)
    return address


def _optional_signature(value: Any, name: str, where: str | None) -> Signature | None:
    if value is None:
        return None
    try:
        return Signature.from_cbor(value, where)
    except MalformedInput as exc:
        raise ChainTypeError(f"{name}: {exc.what}", where) from None


def _decode(data: bytes, name: str, where: str | None) -> Any:
    try:
        return dag_cbor.decode(data, where)
    except MalformedInput as exc:
        raise ChainTypeError(f"{name}: {exc.what}", exc.where) from None


# -- small tuples -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticket:
    """The block's ticket: a VRF proof over the miner's ticket randomness."""

    vrf_proof: bytes

    def digest(self) -> bytes:
        """blake2b-256 of the VRF proof: what tickets are compared by (Lotus ``Ticket.Less``)."""
        return blake2b_256(self.vrf_proof)

    def to_cbor(self) -> list[Any]:
        return [self.vrf_proof]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> Ticket:
        (proof,) = _array(value, "Ticket", where, 1)
        return cls(_bytes(proof, "Ticket.VRFProof", where))


@dataclass(frozen=True, slots=True)
class ElectionProof:
    """Proof that the miner won the election: the win count and the VRF proof it came from."""

    win_count: int
    vrf_proof: bytes

    def to_cbor(self) -> list[Any]:
        return [self.win_count, self.vrf_proof]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> ElectionProof:
        win_count, proof = _array(value, "ElectionProof", where, 2)
        return cls(
            _int64(win_count, "ElectionProof.WinCount", where),
            _bytes(proof, "ElectionProof.VRFProof", where),
        )


@dataclass(frozen=True, slots=True)
class BeaconEntry:
    """A drand round and its randomness."""

    round: int
    data: bytes

    def to_cbor(self) -> list[Any]:
        return [self.round, self.data]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> BeaconEntry:
        round_number, data = _array(value, "BeaconEntry", where, 2)
        return cls(
            _uint64(round_number, "BeaconEntry.Round", where),
            _bytes(data, "BeaconEntry.Data", where),
        )


@dataclass(frozen=True, slots=True)
class PoStProof:
    """A proof of spacetime: the registered PoSt proof type and the proof bytes."""

    post_proof: int
    proof_bytes: bytes

    def to_cbor(self) -> list[Any]:
        return [self.post_proof, self.proof_bytes]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> PoStProof:
        post_proof, proof_bytes = _array(value, "PoStProof", where, 2)
        return cls(
            _int64(post_proof, "PoStProof.PoStProof", where),
            _bytes(proof_bytes, "PoStProof.ProofBytes", where),
        )


# -- block header -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockHeader:
    """A block header; fields in Lotus's order (the order of the CBOR array)."""

    miner: Address
    ticket: Ticket | None
    election_proof: ElectionProof | None
    beacon_entries: tuple[BeaconEntry, ...] = ()
    win_post_proof: tuple[PoStProof, ...] = ()
    parents: tuple[CID, ...]
    parent_weight: int
    height: int
    parent_state_root: CID
    parent_message_receipts: CID
    messages: CID
    bls_aggregate: Signature | None
    timestamp: int
    block_sig: Signature | None
    fork_signaling: int = 0
    parent_base_fee: int
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _cid: CID | None = field(default=None, init=False, repr=False, compare=False)

    def to_cbor(self) -> list[Any]:
        """The DAG-CBOR data-model value: the 16-element array."""
        return [
            self.miner.to_bytes(),
            None if self.ticket is None else self.ticket.to_cbor(),
            None if self.election_proof is None else self.election_proof.to_cbor(),
            [entry.to_cbor() for entry in self.beacon_entries],
            [proof.to_cbor() for proof in self.win_post_proof],
            list(self.parents),
            encode_bigint(self.parent_weight),
            self.height,
            self.parent_state_root,
            self.parent_message_receipts,
            self.messages,
            None if self.bls_aggregate is None else self.bls_aggregate.to_cbor(),
            self.timestamp,
            None if self.block_sig is None else self.block_sig.to_cbor(),
            self.fork_signaling,
            encode_bigint(self.parent_base_fee),
        ]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> BlockHeader:
        """The header in a decoded DAG-CBOR value; every field is checked."""
        (
            miner,
            ticket,
            election_proof,
            beacon_entries,
            win_post_proof,
            parents,
            parent_weight,
            height,
            parent_state_root,
            parent_message_receipts,
            messages,
            bls_aggregate,
            timestamp,
            block_sig,
            fork_signaling,
            parent_base_fee,
        ) = _array(value, "BlockHeader", where, BLOCK_HEADER_FIELDS)
        return cls(
            miner=_address(miner, "BlockHeader.Miner", where),
            ticket=None if ticket is None else Ticket.from_cbor(ticket, where),
            election_proof=(
                None if election_proof is None else ElectionProof.from_cbor(election_proof, where)
            ),
            beacon_entries=tuple(
                BeaconEntry.from_cbor(entry, where)
                for entry in _array(beacon_entries, "BlockHeader.BeaconEntries", where)
            ),
            win_post_proof=tuple(
                PoStProof.from_cbor(proof, where)
                for proof in _array(win_post_proof, "BlockHeader.WinPoStProof", where)
            ),
            parents=_cids(parents, "BlockHeader.Parents", where),
            parent_weight=_minimal_bigint(parent_weight, "BlockHeader.ParentWeight", where),
            height=_int64(height, "BlockHeader.Height", where),
            parent_state_root=_cid(parent_state_root, "BlockHeader.ParentStateRoot", where),
            parent_message_receipts=_cid(
                parent_message_receipts, "BlockHeader.ParentMessageReceipts", where
            ),
            messages=_cid(messages, "BlockHeader.Messages", where),
            bls_aggregate=_optional_signature(bls_aggregate, "BlockHeader.BLSAggregate", where),
            timestamp=_uint64(timestamp, "BlockHeader.Timestamp", where),
            block_sig=_optional_signature(block_sig, "BlockHeader.BlockSig", where),
            fork_signaling=_uint64(fork_signaling, "BlockHeader.ForkSignaling", where),
            parent_base_fee=_minimal_bigint(parent_base_fee, "BlockHeader.ParentBaseFee", where),
        )

    def encode(self) -> bytes:
        """The DAG-CBOR encoding (computed once)."""
        encoded = self._encoded
        if encoded is None:
            encoded = dag_cbor.encode(self.to_cbor())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> BlockHeader:
        """Parse a DAG-CBOR encoded header; it must re-encode to exactly ``data``."""
        header = cls.from_cbor(_decode(data, "BlockHeader", where), where)
        if header.encode() != data:
            raise ChainTypeError("BlockHeader does not re-encode to its own bytes", where)
        return header

    def cid(self) -> CID:
        """The header's CID: blake2b-256 over its DAG-CBOR encoding."""
        cid = self._cid
        if cid is None:
            cid = CID.hash_of(self.encode())
            object.__setattr__(self, "_cid", cid)
        return cid

    def signing_bytes(self) -> bytes:
        """What the miner signs: the encoding with BlockSig null (Lotus ``SigningBytes``)."""
        unsigned = self.to_cbor()
        unsigned[13] = None
        return dag_cbor.encode(unsigned)

    def ticket_sort_key(self) -> tuple[bytes, bytes]:
        """Lotus's tipset order: ticket digest, then CID bytes. The ticket must be present."""
        if self.ticket is None:
            raise InvalidTipSet(f"block {self.cid()} has no ticket")
        return (self.ticket.digest(), self.cid().to_bytes())


# -- messages of a block ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MsgMeta:
    """The block's message lists: AMT roots of the BLS and the secp256k1 message CIDs."""

    bls_messages_root: CID
    secp_messages_root: CID

    def to_cbor(self) -> list[Any]:
        return [self.bls_messages_root, self.secp_messages_root]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> MsgMeta:
        bls_root, secp_root = _array(value, "MsgMeta", where, 2)
        return cls(
            _cid(bls_root, "MsgMeta.BlsMessages", where),
            _cid(secp_root, "MsgMeta.SecpkMessages", where),
        )

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> MsgMeta:
        return cls.from_cbor(_decode(data, "MsgMeta", where), where)

    def cid(self) -> CID:
        return CID.hash_of(self.encode())


TxMeta = MsgMeta
"""The name the Filecoin spec gives :class:`MsgMeta`."""


@dataclass(frozen=True, slots=True)
class BlockMsg:
    """A block as gossiped: the header and the CIDs of its BLS and secp256k1 messages."""

    header: BlockHeader
    bls_messages: tuple[CID, ...]
    secpk_messages: tuple[CID, ...]

    def to_cbor(self) -> list[Any]:
        return [self.header.to_cbor(), list(self.bls_messages), list(self.secpk_messages)]

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> BlockMsg:
        header, bls_messages, secpk_messages = _array(value, "BlockMsg", where, 3)
        if header is None:
            raise ChainTypeError("BlockMsg.Header is missing", where)
        return cls(
            BlockHeader.from_cbor(header, where),
            _cids(bls_messages, "BlockMsg.BlsMessages", where),
            _cids(secpk_messages, "BlockMsg.SecpkMessages", where),
        )

    def encode(self) -> bytes:
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes, where: str | None = None) -> BlockMsg:
        """Parse a DAG-CBOR encoded block message; it must re-encode to exactly ``data``."""
        block = cls.from_cbor(_decode(data, "BlockMsg", where), where)
        if block.encode() != data:
            raise ChainTypeError("BlockMsg does not re-encode to its own bytes", where)
        return block

    def cid(self) -> CID:
        return self.header.cid()


@dataclass(frozen=True, slots=True)
class FullBlock:
    """A header with its messages themselves (Lotus ``FullBlock``; no CBOR form of its own)."""

    header: BlockHeader
    bls_messages: tuple[Message, ...]
    secpk_messages: tuple[SignedMessage, ...]

    def cid(self) -> CID:
        return self.header.cid()


# -- tipsets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TipSetKey:
    """The ordered CIDs of a tipset's blocks; the empty key names no tipset."""

    cids: tuple[CID, ...] = ()

    def to_bytes(self) -> bytes:
        """The concatenated binary CIDs (Lotus ``TipSetKey.Bytes``)."""
        return b"".join(cid.to_bytes() for cid in self.cids)

    @classmethod
    def from_bytes(cls, data: bytes, where: str | None = None) -> TipSetKey:
        """Split concatenated binary CIDs (Lotus ``TipSetKeyFromBytes``)."""
        cids: list[CID] = []
        offset = 0
        while offset < len(data):
            try:
                cid, offset = CID.read_bytes(data, offset)
            except CIDError as exc:
                raise ChainTypeError(f"TipSetKey: {exc.what}", where or exc.where) from None
            cids.append(cid)
        return cls(tuple(cids))

    def to_cbor(self) -> bytes:
        """The DAG-CBOR data-model value: one byte string holding :meth:`to_bytes`."""
        return self.to_bytes()

    @classmethod
    def from_cbor(cls, value: Any, where: str | None = None) -> TipSetKey:
        return cls.from_bytes(_bytes(value, "TipSetKey", where), where)

    def cid(self) -> CID:
        """The CID of the key's CBOR encoding (Lotus ``TipSetKey.Cid``)."""
        return CID.hash_of(dag_cbor.encode(self.to_bytes()))

    def is_empty(self) -> bool:
        return not self.cids

    def __str__(self) -> str:
        return "{" + ",".join(str(cid) for cid in self.cids) + "}"


class TipSet:
    """A non-empty set of blocks at one height with the same parents, in Lotus's order."""

    __slots__ = ("_blocks", "_cids", "_key")

    def __init__(self, blocks: Iterable[BlockHeader]) -> None:
        headers = list(blocks)
        if not headers:
            raise InvalidTipSet("a tipset needs at least one block")
        headers.sort(key=BlockHeader.ticket_sort_key)
        first = headers[0]
        for header in headers[1:]:
            if header.height != first.height:
                raise InvalidTipSet(
                    f"block {header.cid()} is at height {header.height}, not {first.height}"
                )
            if header.parents != first.parents:
                raise InvalidTipSet(f"block {header.cid()} has different parents")
        self._blocks = tuple(headers)
        self._cids = tuple(header.cid() for header in headers)
        self._key = TipSetKey(self._cids)

    @property
    def blocks(self) -> tuple[BlockHeader, ...]:
        return self._blocks

    @property
    def cids(self) -> tuple[CID, ...]:
        return self._cids

    @property
    def key(self) -> TipSetKey:
        return self._key

    @property
    def height(self) -> int:
        return self._blocks[0].height

    @property
    def parents(self) -> TipSetKey:
        """The key of the parent tipset."""
        return TipSetKey(self._blocks[0].parents)

    @property
    def parent_state(self) -> CID:
        """The state root after executing the parent tipset."""
        return self._blocks[0].parent_state_root

    @property
    def parent_message_receipts(self) -> CID:
        return self._blocks[0].parent_message_receipts

    @property
    def parent_weight(self) -> int:
        """The chain weight at the parent tipset (Lotus ``ParentWeight``)."""
        return self._blocks[0].parent_weight

    @property
    def parent_base_fee(self) -> int:
        return self._blocks[0].parent_base_fee

    @property
    def min_ticket_block(self) -> BlockHeader:
        """The block with the smallest ticket digest (the first in tipset order)."""
        return self._blocks[0]

    @property
    def min_timestamp(self) -> int:
        return min(header.timestamp for header in self._blocks)

    def contains(self, cid: CID) -> bool:
        return cid in self._cids

    def is_child_of(self, parent: TipSet) -> bool:
        """Lotus ``IsChildOf``: our parents are ``parent``'s blocks (in any order), and we are
        higher."""
        ours = self._blocks[0].parents
        same_blocks = len(ours) == len(parent.cids) and set(parent.cids) <= set(ours)
        return same_blocks and self.height > parent.height

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TipSet) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return f"TipSet(height={self.height}, key={self._key})"
