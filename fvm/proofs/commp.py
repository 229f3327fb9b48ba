"""Piece and sector data commitments (CommP, CommD): the ``compute_unsealed_sector_cid`` math.

A sector's data is Fr32-padded (every 254 bits of data get 2 zero bits, so 127 bytes become 128)
and cut into 32-byte nodes; its commitment is the root of a binary Merkle tree over those nodes
whose inner nodes are ``sha256(left ‖ right)`` with the two top bits of the last byte cleared
("sha2-256-trunc254-padded", filecoin-proofs' ``piece_hash``). A piece is a power-of-two
aligned subtree, so a sector's CommD follows from its pieces' CommPs alone, with the gaps filled
by the roots of all-zero subtrees.

:func:`unsealed_sector_commitment` is the semantics of the syscall, in two ported stages:

1. ref-fvm (``compute_unsealed_sector_cid`` in ``fvm/src/kernel/default.rs`` at
   ``fvm@v2.12.1``/``fvm@v3.13.3``, ``filecoin.rs`` at ``fvm@v4.8.2``): an empty piece list
   becomes one zero piece of the sector's size; otherwise each piece is preceded by the zero
   pieces that align it to its own size (``get_required_padding``) and the tail is padded to the
   sector size. Zero pieces come from ``zero_piece_commitment`` (``shared/src/piece/zero.rs``),
   a table for padded sizes 128 B .. 2 TiB;
2. filecoin-proofs' ``compute_comm_d`` (rust-fil-proofs ``filecoin-proofs/src/pieces.rs``,
   v19, through filecoin-proofs-api 19): checks (piece count, total size, power-of-two sizes)
   and a shift-reduce over a stack of pieces, merging equal sizes and padding with zero
   subtrees (``zero_padding``) until one root is left.

Sizes go through the same conversions as in the reference, including 64-bit wrap-around
(``u64``/``usize`` arithmetic in a release build) and the ``f64`` rounding of fr32's
``to_padded_bytes``, so every input gives the reference's answer or its error. Where the
reference panics (division by zero, a zero piece outside the table) the syscall reports
``IllegalArgument`` (``catch_and_log_panic``), and so does :class:`PieceCommitmentError` here.
One input class differs: sizes that make ``zero_padding`` double its counter past ``2^63``,
where the reference loops forever; here that is refused as well.

:func:`piece_commitment` computes CommP from raw data, for tests and tooling.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fvm.proofs.commcid import cid_to_piece_commitment_v1
from fvm.proofs.sector_types import PieceInfo
from store.errors import MalformedInput

NODE_SIZE: Final = 32
U64_MASK: Final = (1 << 64) - 1
# Fr32: 254 bits of data per 256-bit field element.
FR32_DATA_BITS: Final = 254
FR32_ELEMENT_BITS: Final = 256
FR32_UNPADDED_CHUNK: Final = 127
FR32_PADDED_CHUNK: Final = 128
# filecoin-proofs ``MINIMUM_RESERVED_BYTES_FOR_PIECE_IN_FULLY_ALIGNED_SECTOR``: 4 nodes less one
# byte of padding.
MINIMUM_PIECE_SIZE: Final = 4 * NODE_SIZE - 1
# ref-fvm ``zero.rs``: 37 tree levels, the two smallest (32 and 64 bytes) left out, so entry 0 is
# a 128-byte piece and the last a 2^41-byte one.
_ZERO_LEVELS: Final = 37
_ZERO_SKIP: Final = 2
_LOG2_NODE_SIZE: Final = 5
# ``zero_padding`` doubles a u64 counter from 64 up to the padded size.
_ZERO_PADDING_START: Final = 2 * NODE_SIZE
_LARGEST_TERMINATING_ZERO_PADDING: Final = 1 << 63

_LAST_BYTE_MASK: Final = 0b0011_1111
_FR32_DATA_MASK: Final = (1 << FR32_DATA_BITS) - 1


class PieceCommitmentError(MalformedInput):
    """Pieces from which the reference computes no commitment (``IllegalArgument``)."""


def piece_hash(left: bytes, right: bytes) -> bytes:
    """An inner node: sha256 of the two children, truncated to 254 bits."""
    digest = bytearray(hashlib.sha256(left + right).digest())
    digest[-1] &= _LAST_BYTE_MASK
    return bytes(digest)


def _zero_commitments() -> tuple[bytes, ...]:
    node = bytes(NODE_SIZE)
    for _ in range(_ZERO_SKIP):
        node = piece_hash(node, node)
    table = [node]
    for _ in range(_ZERO_LEVELS - _ZERO_SKIP - 1):
        node = piece_hash(node, node)
        table.append(node)
    return tuple(table)


# The commitments of all-zero pieces of padded size 2^7 .. 2^41 (ref-fvm ``PIECE_COMMS``).
ZERO_PIECE_COMMITMENTS: Final = _zero_commitments()


def _trailing_zeros(value: int) -> int:
    """``u64::trailing_zeros`` (64 for zero)."""
    return (value & -value).bit_length() - 1 if value else 64


def zero_piece_commitment(padded_size: int) -> bytes:
    """ref-fvm ``zero_piece_commitment``: the table entry for the size's lowest set bit.

    The reference indexes by trailing zeros alone; an index outside the table (a size below 128
    bytes or beyond 2 TiB) panics there and raises :class:`PieceCommitmentError` here.
    """
    level = _trailing_zeros(padded_size) - _ZERO_SKIP - _LOG2_NODE_SIZE
    if not 0 <= level < len(ZERO_PIECE_COMMITMENTS):
        raise PieceCommitmentError(f"no zero piece commitment for a piece of {padded_size} bytes")
    return ZERO_PIECE_COMMITMENTS[level]


def unpadded_piece_size(padded_size: int) -> int:
    """``PaddedPieceSize::unpadded``: ``size - size / 128``."""
    return padded_size - padded_size // FR32_PADDED_CHUNK


def fr32_padded_size(unpadded_size: int) -> int:
    """fr32 ``to_padded_bytes`` as a 64-bit release build computes it.

    The bit position (``size * 8``, wrapping) is mapped element by element, then rounded up to
    whole bytes through an ``f64`` and cast back (saturating).
    """
    bits = (unpadded_size * 8) & U64_MASK
    elements, remainder = divmod(bits, FR32_DATA_BITS)
    padded_bits = (elements * FR32_ELEMENT_BITS + remainder) & U64_MASK
    padded = math.ceil(float(padded_bits) / 8.0)
    return min(padded, U64_MASK)


def fr32_unpadded_size(padded_size: int) -> int:
    """fr32 ``to_unpadded_bytes`` of a sector size: whole elements lose 2 bits each."""
    bits = padded_size * 8
    elements, remainder = divmod(bits, FR32_ELEMENT_BITS)
    return (elements * FR32_DATA_BITS + remainder) // 8


def required_padding(old_length: int, new_piece_length: int) -> list[int]:
    """ref-fvm ``get_required_padding``: zero pieces aligning ``old_length`` to the new size.

    Smallest first, one per set bit of ``(-old_length) mod new_piece_length`` (u64 arithmetic).
    A zero ``new_piece_length`` divides by zero in the reference (a panic).
    """
    if new_piece_length == 0:
        raise PieceCommitmentError("a piece of size 0 cannot be aligned")
    to_fill = ((-old_length) & U64_MASK) % new_piece_length
    pads = []
    while to_fill:
        lowest = to_fill & -to_fill
        pads.append(lowest)
        to_fill ^= lowest
    return pads


@dataclass(frozen=True, slots=True)
class _StackPiece:
    commitment: bytes
    unpadded_size: int


def _zero_padding(unpadded_size: int) -> _StackPiece:
    """filecoin-proofs ``zero_padding``: an all-zero subtree of the given (unpadded) size."""
    padded = fr32_padded_size(unpadded_size)
    if padded > _LARGEST_TERMINATING_ZERO_PADDING:
        raise PieceCommitmentError(
            f"zero padding of {padded} bytes (the reference does not terminate)"
        )
    node = piece_hash(bytes(NODE_SIZE), bytes(NODE_SIZE))
    hashed = _ZERO_PADDING_START
    while hashed < padded:
        node = piece_hash(node, node)
        hashed *= 2
    if hashed != padded:
        raise PieceCommitmentError(f"zero padding of {padded} bytes is not a power of two")
    return _StackPiece(node, unpadded_size)


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _shift_reduce(stack: list[_StackPiece], piece: _StackPiece) -> None:
    """Push ``piece``, then merge the top two while they are the same size."""
    stack.append(piece)
    while len(stack) > 1 and stack[-1].unpadded_size == stack[-2].unpadded_size:
        right = stack.pop()
        left = stack.pop()
        stack.append(
            _StackPiece(
                piece_hash(left.commitment, right.commitment),
                (left.unpadded_size + right.unpadded_size) & U64_MASK,
            )
        )


def compute_comm_d(sector_size: int, pieces: Sequence[tuple[bytes, int]]) -> bytes:
    """filecoin-proofs ``compute_comm_d``: CommD of ``(commitment, unpadded size)`` pieces."""
    if not pieces:
        return zero_piece_commitment(sector_size)
    if len(pieces) > fr32_unpadded_size(sector_size) // MINIMUM_PIECE_SIZE:
        raise PieceCommitmentError(f"too many pieces ({len(pieces)}) for the sector")
    total = 0
    for _, size in pieces:
        total = (total + fr32_padded_size(size)) & U64_MASK
    if total > sector_size:
        raise PieceCommitmentError(f"pieces of {total} bytes exceed the {sector_size}-byte sector")
    for _, size in pieces:
        if not _is_power_of_two(fr32_padded_size(size)):
            raise PieceCommitmentError(
                f"piece of {fr32_padded_size(size)} padded bytes is not a power of two"
            )
    first_commitment, first_size = pieces[0]
    stack = [_StackPiece(first_commitment, first_size)]
    for commitment, size in pieces[1:]:
        while stack[-1].unpadded_size < size:
            _shift_reduce(stack, _zero_padding(stack[-1].unpadded_size))
        _shift_reduce(stack, _StackPiece(commitment, size))
    while len(stack) > 1:
        _shift_reduce(stack, _zero_padding(stack[-1].unpadded_size))
    return stack[0].commitment


def unsealed_sector_commitment(sector_size: int, pieces: Sequence[PieceInfo]) -> bytes:
    """CommD of a sector of ``sector_size`` bytes holding ``pieces`` in order (ref-fvm).

    Raises :class:`PieceCommitmentError` or
    :class:`~fvm.proofs.commcid.CommitmentCIDError` where the reference fails.
    """
    all_pieces: list[tuple[bytes, int]] = []
    if not pieces:
        all_pieces.append(
            (zero_piece_commitment(sector_size), unpadded_piece_size(sector_size))
        )
        return compute_comm_d(sector_size, all_pieces)
    filled = 0

    def pad_to(new_piece_length: int) -> None:
        nonlocal filled
        for pad in required_padding(filled, new_piece_length):
            all_pieces.append((zero_piece_commitment(pad), unpadded_piece_size(pad)))
            filled = (filled + pad) & U64_MASK

    for piece in pieces:
        pad_to(piece.size)
        all_pieces.append((cid_to_piece_commitment_v1(piece.cid), unpadded_piece_size(piece.size)))
        filled = (filled + piece.size) & U64_MASK
    pad_to(sector_size)
    return compute_comm_d(sector_size, all_pieces)


def fr32_pad(data: bytes) -> bytes:
    """Fr32-pad whole 127-byte chunks: 2 zero bits after every 254 bits (little-endian bits)."""
    if len(data) % FR32_UNPADDED_CHUNK:
        raise PieceCommitmentError(
            f"fr32 padding takes whole {FR32_UNPADDED_CHUNK}-byte chunks, got {len(data)} bytes"
        )
    out = bytearray()
    elements_per_chunk = FR32_PADDED_CHUNK // NODE_SIZE
    for start in range(0, len(data), FR32_UNPADDED_CHUNK):
        bits = int.from_bytes(data[start : start + FR32_UNPADDED_CHUNK], "little")
        for element in range(elements_per_chunk):
            value = (bits >> (FR32_DATA_BITS * element)) & _FR32_DATA_MASK
            out += value.to_bytes(NODE_SIZE, "little")
    return bytes(out)


def piece_commitment(data: bytes) -> bytes:
    """CommP of raw piece data of ``127 * 2^k`` bytes (at least 127)."""
    if len(data) < FR32_UNPADDED_CHUNK or not _is_power_of_two(len(data) // FR32_UNPADDED_CHUNK):
        raise PieceCommitmentError(f"a piece holds 127 * 2^k bytes, not {len(data)}")
    padded = fr32_pad(data)
    level = [padded[i : i + NODE_SIZE] for i in range(0, len(padded), NODE_SIZE)]
    while len(level) > 1:
        level = [piece_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]
