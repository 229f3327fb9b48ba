"""Filecoin's RLE+ bitfield: the run-length encoded sets of sector numbers, partitions and
deadlines kept in miner and market actor state.

Semantics follow ref-fvm's ``fvm_ipld_bitfield`` crate (``ipld/bitfield``: the ``rleplus``
reader and writer, ``BitField`` and its range combinators) and the RLE+ section of the Filecoin
spec. The bit stream is read least-significant bit first; after the two version bits ``00`` and
one bit giving the value of the first run, each run length is a block: ``1`` (length 1),
``01`` + 4 bits (2..15) or ``00`` + an unsigned LEB128 varint (16 and more).

Decoding is as strict as the reference's deserializer: anything it refuses raises
:class:`~store.errors.BitfieldError` naming the problem and the bit offset — a wrong version, a
trailing zero byte, a run written in a longer block than needed (every run must be non-empty,
since the header bit already gives the first run's value), a run of zeros at the end, a varint
that is not minimal or exceeds 64 bits, a total length past 2^64 - 1, or more than
:data:`MAX_ENCODED_SIZE` bytes. The encoding is unique, so decoding then encoding a valid input
gives back the same bytes. (go-bitfield, in Lotus, is laxer: it accepts non-minimal blocks. The
FVM's rules are the ones consensus applies to actor state.)

A bitfield is kept as a sorted tuple of run boundaries, never as a set of integers: miner
bitfields cover millions of sectors in a handful of runs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Final, final

from store.errors import BitfieldError
from store.varint import encode_uvarint

# The reference refuses to read or write an encoded bitfield larger than 32 KiB.
MAX_ENCODED_SIZE: Final = 32 << 10
# Bit indices are u64 values other than u64::MAX: every bit is below this bound.
BIT_LIMIT: Final = (1 << 64) - 1
# The RLE+ varint may take ten bytes so that a single run can span the whole u64 range.
_VARINT_MAX_BYTES: Final = 10
# Zeros appended to the decoded bit string: reads past the end see zeros, as in the reference.
_READ_PADDING: Final = "0" * (8 * _VARINT_MAX_BYTES + 16)

_SHORT_BLOCKS: Final = {n: "01" + format(n, "04b")[::-1] for n in range(2, 16)}


# One subclass per error of the reference's ``rleplus::Error``, so callers and tests can tell
# them apart; a bitfield over the size cap or of the wrong type raises plain BitfieldError.


class BitfieldNotMinimal(BitfieldError):
    """RLE+ that decodes but is not the unique minimal encoding of its bits."""


class UnsupportedBitfieldVersion(BitfieldError):
    """RLE+ whose two version bits are not ``00``."""


class BitfieldOverflow(BitfieldError):
    """Runs adding up past 2^64 - 1 bits, or a bit index outside ``0..2^64 - 2``."""


class InvalidBitfieldVarint(BitfieldError):
    """A long block's varint that is not minimal or does not fit in 64 bits."""


def _encode_run(length: int) -> str:
    """The RLE+ block for one run, as bits in stream order."""
    if length == 1:
        return "1"
    if length < 16:
        return _SHORT_BLOCKS[length]
    return "00" + "".join(format(byte, "08b")[::-1] for byte in encode_uvarint(length))


def _read_varint(bits: str, pos: int) -> tuple[int, int]:
    """A varint of up to ten bytes starting at bit ``pos``; returns ``(value, pos_after)``."""
    start = pos
    value = 0
    for i in range(_VARINT_MAX_BYTES):
        byte = int(bits[pos : pos + 8][::-1], 2)
        pos += 8
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i == _VARINT_MAX_BYTES - 1 and byte > 1:
                raise InvalidBitfieldVarint("run length varint overflows 64 bits", f"bit {start}")
            if byte == 0 and i != 0:
                raise InvalidBitfieldVarint(
                    "run length varint is not minimally encoded", f"bit {start}"
                )
            return value, pos
    raise InvalidBitfieldVarint("run length varint longer than 10 bytes", f"bit {start}")


def _decode_bounds(data: bytes) -> tuple[int, ...]:
    """The run boundaries ``(start0, end0, start1, end1, …)`` of strict RLE+ ``data``."""
    if not data:
        return ()
    if data[-1] == 0:
        raise BitfieldNotMinimal(
            "trailing zero byte: not minimally encoded", f"byte {len(data) - 1}"
        )
    bits = format(int.from_bytes(data, "little"), "b")[::-1]
    end = len(bits)  # one past the last 1 bit: nothing is left to read from there on
    bits += _READ_PADDING
    if bits[0:2] != "00":
        raise UnsupportedBitfieldVersion(f"unsupported RLE+ version {int(bits[1::-1], 2)}", "bit 0")
    value = bits[2] == "1"
    pos = 3
    index = 0
    bounds: list[int] = []
    while pos < end:
        block_start = pos
        if bits[pos] == "1":
            length = 1
            pos += 1
        elif bits[pos + 1] == "1":
            length = int(bits[pos + 5 : pos + 1 : -1], 2)
            pos += 6
            if length < 2:
                raise BitfieldNotMinimal(
                    f"run of {length} in a short block: not minimally encoded", f"bit {block_start}"
                )
        else:
            length, pos = _read_varint(bits, pos + 2)
            if length < 16:
                raise BitfieldNotMinimal(
                    f"run of {length} in a long block: not minimally encoded", f"bit {block_start}"
                )
        next_index = index + length
        if next_index > BIT_LIMIT:
            raise BitfieldOverflow("runs add up to more than 2^64 - 1 bits", f"bit {block_start}")
        if value:
            bounds.append(index)
            bounds.append(next_index)
        index = next_index
        value = not value
    if value:
        raise BitfieldNotMinimal("ends with a run of zeros: not minimally encoded", f"bit {pos}")
    return tuple(bounds)


def _combine(
    left: tuple[int, ...], right: tuple[int, ...], keep: Callable[[bool, bool], bool]
) -> tuple[int, ...]:
    """Sweep two boundary lists at once, keeping the bits where ``keep(in_left, in_right)``."""
    out: list[int] = []
    i = j = 0
    in_left = in_right = inside = False
    n_left, n_right = len(left), len(right)
    while i < n_left or j < n_right:
        take_left = j >= n_right or (i < n_left and left[i] <= right[j])
        point = left[i] if take_left else right[j]
        if i < n_left and left[i] == point:
            in_left = not in_left
            i += 1
        if j < n_right and right[j] == point:
            in_right = not in_right
            j += 1
        now = keep(in_left, in_right)
        if now != inside:
            out.append(point)
            inside = now
    return tuple(out)


def _check_bit(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BitfieldError(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value < BIT_LIMIT:
        raise BitfieldOverflow(f"{what} {value} is outside 0..2^64 - 2")


@final
class BitField:
    """An immutable set of u64 bit indices (excluding u64::MAX), stored as runs of set bits."""

    __slots__ = ("_bounds", "_len")

    _bounds: tuple[int, ...]
    _len: int

    def __init__(self) -> None:
        """The empty bitfield."""
        self._bounds = ()
        self._len = 0

    @classmethod
    def _from_bounds(cls, bounds: tuple[int, ...]) -> BitField:
        field = cls.__new__(cls)
        field._bounds = bounds
        field._len = sum(bounds[1::2]) - sum(bounds[0::2])
        return field

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, max_size: int | None = MAX_ENCODED_SIZE
    ) -> BitField:
        """Decode strict RLE+; :class:`BitfieldError` on anything the reference rejects.

        ``max_size`` is the reference deserializer's 32 KiB cap; ``None`` lifts it.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise BitfieldError(f"bitfield must be a byte string, got {type(data).__name__}")
        data = bytes(data)
        if max_size is not None and len(data) > max_size:
            raise BitfieldError(
                f"encoded bitfield of {len(data)} bytes exceeds the {max_size}-byte limit",
                "byte 0",
            )
        return cls._from_bounds(_decode_bounds(data))

    def to_bytes(self, *, max_size: int | None = MAX_ENCODED_SIZE) -> bytes:
        """The canonical RLE+ encoding (empty bytes for the empty bitfield).

        Like the reference serializer, refuses (:class:`BitfieldError`) to produce more than
        ``max_size`` bytes; ``None`` lifts the cap.
        """
        bounds = self._bounds
        if not bounds:
            return b""
        parts = ["00"]
        if bounds[0] == 0:
            parts.append("1")
        else:
            parts.append("0")
            parts.append(_encode_run(bounds[0]))
        parts.extend(_encode_run(bounds[k] - bounds[k - 1]) for k in range(1, len(bounds)))
        stream = int("".join(parts)[::-1], 2)
        encoded = stream.to_bytes((stream.bit_length() + 7) // 8, "little")
        if max_size is not None and len(encoded) > max_size:
            raise BitfieldError(
                f"encoded bitfield of {len(encoded)} bytes exceeds the {max_size}-byte limit"
            )
        return encoded

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[int, int]]) -> BitField:
        """The bits of half-open ``[start, end)`` ranges, in any order, overlapping or not."""
        spans: list[tuple[int, int]] = []
        for start, end in ranges:
            _check_bit(start, "range start")
            if not isinstance(end, int) or isinstance(end, bool):
                raise BitfieldError(f"range end must be an int, got {type(end).__name__}")
            if end > BIT_LIMIT:
                raise BitfieldOverflow(f"range end {end} is past 2^64 - 1")
            if end < start:
                raise BitfieldError(f"range [{start}, {end}) ends before it starts")
            if end > start:
                spans.append((start, end))
        spans.sort()
        bounds: list[int] = []
        for start, end in spans:
            if bounds and start <= bounds[-1]:
                bounds[-1] = max(bounds[-1], end)
            else:
                bounds.append(start)
                bounds.append(end)
        return cls._from_bounds(tuple(bounds))

    @classmethod
    def from_indices(cls, bits: Iterable[int]) -> BitField:
        """The bitfield holding exactly ``bits`` (any order, duplicates allowed)."""
        bounds: list[int] = []
        for bit in sorted(set(bits)):
            _check_bit(bit, "bit")
            if bounds and bounds[-1] == bit:
                bounds[-1] = bit + 1
            else:
                bounds.append(bit)
                bounds.append(bit + 1)
        return cls._from_bounds(tuple(bounds))

    @classmethod
    def from_run_lengths(cls, lengths: Iterable[int]) -> BitField:
        """The JSON form Lotus and ref-fvm use: alternating run lengths starting with a run of
        zeros, e.g. ``[2, 4, 3, 2]`` for bits 2..5 and 9..10. Only the first run may be empty
        (go-bitfield's rule)."""
        bounds: list[int] = []
        index = 0
        ones = False
        for position, length in enumerate(lengths):
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise BitfieldError(f"run length {length!r} is not a non-negative int")
            if length == 0 and position != 0:
                raise BitfieldNotMinimal(
                    "only the first run may be empty", f"run {position} of the run lengths"
                )
            end = index + length
            if end > BIT_LIMIT:
                raise BitfieldOverflow(
                    "runs add up to more than 2^64 - 1 bits", f"run {position} of the run lengths"
                )
            if ones and length:
                bounds.append(index)
                bounds.append(end)
            index = end
            ones = not ones
        return cls._from_bounds(tuple(bounds))

    def to_run_lengths(self) -> list[int]:
        """The JSON form: run lengths starting with zeros (``[0]`` for the empty bitfield)."""
        bounds = self._bounds
        if not bounds:
            return [0]
        return [bounds[0]] + [bounds[k] - bounds[k - 1] for k in range(1, len(bounds))]

    # -- views ----------------------------------------------------------------------------

    def ranges(self) -> Iterator[tuple[int, int]]:
        """The runs of set bits as half-open ``(start, end)``: ascending, non-touching."""
        bounds = self._bounds
        return zip(bounds[0::2], bounds[1::2], strict=True)

    def __iter__(self) -> Iterator[int]:
        return chain.from_iterable(range(start, end) for start, end in self.ranges())

    def __contains__(self, bit: object) -> bool:
        return isinstance(bit, int) and bisect_right(self._bounds, bit) % 2 == 1

    def __len__(self) -> int:
        """The number of set bits (Python caps ``len`` at 2^63 - 1: see :meth:`count`)."""
        return self._len

    def count(self) -> int:
        """The number of set bits, however many (up to 2^64 - 1)."""
        return self._len

    def is_empty(self) -> bool:
        return not self._bounds

    def first(self) -> int | None:
        """The lowest set bit."""
        return self._bounds[0] if self._bounds else None

    def last(self) -> int | None:
        """The highest set bit."""
        return self._bounds[-1] - 1 if self._bounds else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BitField) and other._bounds == self._bounds

    def __hash__(self) -> int:
        return hash(self._bounds)

    def __repr__(self) -> str:
        runs = ", ".join(f"{start}..{end}" for start, end in self.ranges())
        return f"BitField([{runs}])"

    # -- set operations -------------------------------------------------------------------

    def union(self, other: BitField) -> BitField:
        return BitField._from_bounds(_combine(self._bounds, other._bounds, bool.__or__))

    def intersection(self, other: BitField) -> BitField:
        return BitField._from_bounds(_combine(self._bounds, other._bounds, bool.__and__))

    def difference(self, other: BitField) -> BitField:
        return BitField._from_bounds(_combine(self._bounds, other._bounds, _left_only))

    def symmetric_difference(self, other: BitField) -> BitField:
        return BitField._from_bounds(_combine(self._bounds, other._bounds, bool.__xor__))

    __or__ = union
    __and__ = intersection
    __sub__ = difference
    __xor__ = symmetric_difference

    def contains_any(self, other: BitField) -> bool:
        """True when the two bitfields share a bit."""
        return not self.intersection(other).is_empty()

    def contains_all(self, other: BitField) -> bool:
        """True when every bit of ``other`` is in this bitfield."""
        return other.difference(self).is_empty()

    def cut(self, other: BitField) -> BitField:
        """Remove ``other``'s bits and close the gaps, shifting later bits down.

        ``xx-xxx--x`` cut by ``-xx-x----`` is ``xxx--x`` (the reference's ``cut``).
        """
        cut_bounds = other._bounds
        kept = self.difference(other)._bounds
        out: list[int] = []
        removed = 0  # bits of ``other`` below the current run
        k = 0
        for idx in range(0, len(kept), 2):
            start, end = kept[idx], kept[idx + 1]
            while k < len(cut_bounds) and cut_bounds[k] < start:
                removed += cut_bounds[k + 1] - cut_bounds[k]
                k += 2
            new_start, new_end = start - removed, end - removed
            if out and out[-1] == new_start:
                out[-1] = new_end
            else:
                out.append(new_start)
                out.append(new_end)
        return BitField._from_bounds(tuple(out))

    def slice(self, start: int, count: int) -> BitField | None:
        """The ``count`` set bits that follow the first ``start`` set bits, or None when the
        bitfield has fewer than ``start + count`` bits (the reference's ``slice``)."""
        if start < 0 or count < 0 or start + count > self._len:
            return None
        out: list[int] = []
        skip, take = start, count
        for run_start, run_end in self.ranges():
            if take == 0:
                break
            size = run_end - run_start
            if size <= skip:
                skip -= size
                continue
            run_start += skip
            skip = 0
            run_end = min(run_end, run_start + take)
            take -= run_end - run_start
            out.append(run_start)
            out.append(run_end)
        return BitField._from_bounds(tuple(out))


def _left_only(in_left: bool, in_right: bool) -> bool:
    return in_left and not in_right
