"""Sector and piece commitments as CIDs: the conversions the FVM applies at the proof boundary.

A commitment is a 32-byte Merkle root. On chain it travels as a CIDv1 whose codec says which
kind it is and whose multihash code says how it was hashed (ref-fvm ``shared/src/commcid``,
go-fil-commcid for Lotus):

* data (unsealed) and piece commitments, CommD / CommP: codec ``fil-commitment-unsealed``
  (0xf101), multihash ``sha2-256-trunc254-padded`` (0x1012);
* replica (sealed) commitments, CommR: codec ``fil-commitment-sealed`` (0xf102), multihash
  ``poseidon-bls12_381-a2-fc1`` (0xb401).

A CID whose codec and multihash code disagree, whose codec is neither, or whose digest is not 32
bytes is refused with :class:`CommitmentCIDError` (ref-fvm turns that into ``IllegalArgument``).
"""

from __future__ import annotations

from typing import Final

from store.cid import (
    CID,
    FIL_COMMITMENT_SEALED,
    FIL_COMMITMENT_UNSEALED,
    POSEIDON_BLS12_381_A1_FC1,
    SHA2_256_TRUNC254_PADDED,
)
from store.errors import MalformedInput

COMMITMENT_LEN: Final = 32

_HASH_OF_CODEC: Final = {
    FIL_COMMITMENT_UNSEALED: SHA2_256_TRUNC254_PADDED,
    FIL_COMMITMENT_SEALED: POSEIDON_BLS12_381_A1_FC1,
}


class CommitmentCIDError(MalformedInput):
    """A CID that is not a commitment of the expected kind."""


def _check_segments(codec: int, mh_code: int, digest: bytes) -> None:
    expected_hash = _HASH_OF_CODEC.get(codec)
    if expected_hash is None:
        raise CommitmentCIDError(
            f"codec 0x{codec:x} is neither the sealed nor the unsealed commitment codec"
        )
    if mh_code != expected_hash:
        raise CommitmentCIDError(
            f"multihash 0x{mh_code:x} does not go with commitment codec 0x{codec:x}"
        )
    if len(digest) != COMMITMENT_LEN:
        raise CommitmentCIDError(
            f"commitments are {COMMITMENT_LEN} bytes long, this digest is {len(digest)}"
        )


def commitment_to_cid(codec: int, mh_code: int, commitment: bytes) -> CID:
    """The CIDv1 of a raw commitment under a consistent commitment codec and multihash code."""
    _check_segments(codec, mh_code, commitment)
    return CID(1, codec, mh_code, bytes(commitment))


def cid_to_commitment(cid: CID) -> tuple[int, int, bytes]:
    """The codec, multihash code and 32-byte commitment of a commitment CID."""
    _check_segments(cid.codec, cid.mh_code, cid.digest)
    return cid.codec, cid.mh_code, cid.digest


def data_commitment_v1_to_cid(comm_d: bytes) -> CID:
    """CommD (or CommP) as a CID: ``fil-commitment-unsealed`` / ``sha2-256-trunc254-padded``."""
    return commitment_to_cid(FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED, comm_d)


def cid_to_data_commitment_v1(cid: CID) -> bytes:
    """The raw CommD (or CommP) of an unsealed-commitment CID."""
    codec, _, comm_d = cid_to_commitment(cid)
    if codec != FIL_COMMITMENT_UNSEALED:
        raise CommitmentCIDError("a data commitment must use the unsealed commitment codec")
    return comm_d


def replica_commitment_v1_to_cid(comm_r: bytes) -> CID:
    """CommR as a CID: ``fil-commitment-sealed`` / ``poseidon-bls12_381-a2-fc1``."""
    return commitment_to_cid(FIL_COMMITMENT_SEALED, POSEIDON_BLS12_381_A1_FC1, comm_r)


def cid_to_replica_commitment_v1(cid: CID) -> bytes:
    """The raw CommR of a sealed-commitment CID."""
    codec, _, comm_r = cid_to_commitment(cid)
    if codec != FIL_COMMITMENT_SEALED:
        raise CommitmentCIDError("a replica commitment must use the sealed commitment codec")
    return comm_r


def piece_commitment_v1_to_cid(comm_p: bytes) -> CID:
    """CommP as a CID (the same form as CommD)."""
    return data_commitment_v1_to_cid(comm_p)


def cid_to_piece_commitment_v1(cid: CID) -> bytes:
    """The raw CommP of a piece CID (the same rules as CommD)."""
    return cid_to_data_commitment_v1(cid)
