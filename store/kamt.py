"""The KAMT: a HAMT over fixed-size keys that skips empty levels, used for EVM contract storage.

Ported from ref-fvm's ``ipld/kamt`` crate (``fvm_ipld_kamt`` 0.2 onward: ``node.rs``,
``pointer.rs``, ``ext.rs``, ``hash_bits.rs``, ``kamt.rs``); the EVM actor (builtin-actors v10 and
later, network version 18 on) keeps each contract's storage in one, with 32-byte keys, bit width
5 and buckets of at most one entry.

It differs from :mod:`store.hamt` in three ways:

- keys are not hashed: a key's own bits, most significant first, choose the slot at each level;
- a link may carry an *extension*: a run of levels that every key below it shares, skipped
  instead of stored as a chain of one-pointer nodes. It is written as its length in bits
  (a multiple of the bit width) and those bits packed from the most significant bit of a byte
  string, zero-padded at the end;
- pointers are written as one-entry maps: ``{"v": [[key, value], ...]}`` for a bucket and
  ``{"l": [cid, extension_length, extension_bytes]}`` for a link.

Keys are written as the EVM's 256-bit words are: big-endian with leading zero bytes dropped
(``U256``'s encoding); in this API a key is always the full ``key_size`` bytes, big-endian.
Nodes are ``[bitfield, pointers]`` with the HAMT's bitfield encoding. Inserting into a full
bucket pushes it down into a new node behind the longest extension the keys share; inserting a
key that leaves an extension part-way splits it around a new node; deleting folds one-pointer
nodes back into their parent (merging extensions), so the root depends only on the contents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from store import dag_cbor
from store.blockstore import Blockstore
from store.cid import CID, DAG_CBOR
from store.errors import HamtError
from store.hamt import load_node_frame

DEFAULT_BIT_WIDTH: Final = 5
DEFAULT_MAX_BUCKET_SIZE: Final = 1  # the EVM actor's setting
DEFAULT_KEY_SIZE: Final = 32
_MAX_EXTENSION_LENGTH: Final = (1 << 32) - 1  # serialized as a u32

_BUCKET_TAG: Final = "v"
_LINK_TAG: Final = "l"

Bucket = list[list[Any]]


class KamtError(HamtError):
    """A KAMT node that violates the structure's invariants."""


class _Node:
    """One node in memory: ``pointers`` holds buckets (lists) and :class:`_Link` objects.

    ``cid`` is the CID the node was loaded from or last flushed to; None while it has
    unwritten changes.
    """

    __slots__ = ("bitfield", "cid", "pointers")

    def __init__(self, bitfield: int, pointers: list[Any], cid: CID | None) -> None:
        self.bitfield = bitfield
        self.pointers = pointers
        self.cid = cid


class _Link:
    """A pointer to a child node behind an extension of ``length`` bits packed in ``path``.

    ``path`` is kept exactly as read, so an unchanged link is written back byte for byte.
    ``target`` is the child's CID until it is loaded, then the child node.
    """

    __slots__ = ("length", "path", "target")

    def __init__(self, length: int, path: bytes, target: CID | _Node) -> None:
        self.length = length
        self.path = path
        self.target = target

    def bits(self) -> int:
        """The extension's ``length`` bits as a number."""
        if not self.length:
            return 0
        size = (self.length + 7) // 8
        return int.from_bytes(self.path[:size], "big") >> (size * 8 - self.length)


def _pack_extension(length: int, bits: int) -> bytes:
    """The canonical byte string of an extension: its bits from the top, zero-padded."""
    if not length:
        return b""
    return (bits << (-length % 8)).to_bytes((length + 7) // 8, "big")


def _new_link(length: int, bits: int, target: CID | _Node) -> _Link:
    return _Link(length, _pack_extension(length, bits), target)


class Kamt:
    """A KAMT over a blockstore, mapping ``key_size``-byte keys to DAG-CBOR values.

    Values returned by :meth:`get` and :meth:`items` are the KAMT's own objects: treat them as
    read-only and call :meth:`set` with a new value to change an entry.
    """

    __slots__ = ("_bit_width", "_key_bits", "_key_size", "_mask", "_max_bucket", "_root", "_store")

    def __init__(
        self,
        store: Blockstore,
        root: CID | None = None,
        *,
        bit_width: int = DEFAULT_BIT_WIDTH,
        max_bucket_size: int = DEFAULT_MAX_BUCKET_SIZE,
        key_size: int = DEFAULT_KEY_SIZE,
    ) -> None:
        if not 1 <= bit_width <= 8:
            raise ValueError(f"KAMT bit width must be between 1 and 8, not {bit_width}")
        if max_bucket_size < 1:
            raise ValueError(f"KAMT buckets must hold at least one entry, not {max_bucket_size}")
        if key_size < 1:
            raise ValueError(f"KAMT keys must be at least one byte, not {key_size}")
        self._store = store
        self._bit_width = bit_width
        self._mask = (1 << bit_width) - 1
        self._max_bucket = max_bucket_size
        self._key_size = key_size
        self._key_bits = key_size * 8
        self._root = _Node(0, [], None) if root is None else self._load(root, 0)

    # -- reading --------------------------------------------------------------------------

    def get(self, key: bytes) -> Any | None:
        """The value stored under ``key``, or None."""
        entry = self._find_entry(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes) or len(key) != self._key_size:
            return False
        return self._find_entry(key) is not None

    def _find_entry(self, key: bytes) -> list[Any] | None:
        """ref-fvm's ``get_value``: note it loads a child before checking the extension."""
        hashed = self._key_number(key)
        consumed = 0
        node = self._root
        depth = 0
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            if not node.bitfield & bit:
                return None
            pointer = node.pointers[(node.bitfield & (bit - 1)).bit_count()]
            if type(pointer) is list:
                for entry in pointer:
                    if entry[0] == key:
                        return entry  # type: ignore[no-any-return]
                return None
            child = self._target(pointer, depth + 1)
            matched, consumed = self._match_extension(hashed, consumed, pointer)
            if matched != pointer.length:
                return None
            depth += 1
            node = child

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """Every entry, depth first in slot order, each bucket in key order (as ref-fvm)."""
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, position = stack[-1]
            if position == len(node.pointers):
                stack.pop()
                continue
            stack[-1] = (node, position + 1)
            pointer = node.pointers[position]
            if type(pointer) is list:
                yield from ((entry[0], entry[1]) for entry in pointer)
            else:
                stack.append((self._target(pointer, len(stack)), 0))

    # -- writing --------------------------------------------------------------------------

    def set(self, key: bytes, value: Any) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        self._modify(self._root, self._key_number(key), 0, 0, key, value, overwrite=True)

    def set_if_absent(self, key: bytes, value: Any) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was stored."""
        return self._modify(self._root, self._key_number(key), 0, 0, key, value, overwrite=False)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it was present."""
        hashed = self._key_number(key)
        consumed = 0
        node = self._root
        depth = 0
        path: list[tuple[_Node, int]] = []
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            if not node.bitfield & bit:
                return False
            slot = (node.bitfield & (bit - 1)).bit_count()
            pointer = node.pointers[slot]
            if type(pointer) is list:
                break
            matched, consumed = self._match_extension(hashed, consumed, pointer)
            if matched != pointer.length:
                return False
            child = self._target(pointer, depth + 1)
            depth += 1 + matched // self._bit_width
            path.append((node, slot))
            node = child
        position = next((i for i, entry in enumerate(pointer) if entry[0] == key), None)
        if position is None:
            return False
        if len(pointer) == 1:
            node.bitfield &= ~bit
            del node.pointers[slot]
        else:
            del pointer[position]
        node.cid = None
        for parent, parent_slot in reversed(path):
            parent.cid = None
            self._clean(parent, parent_slot)
        return True

    def flush(self) -> CID:
        """Write every changed node to the store and return the root's CID."""
        root = self._root
        if root.cid is not None:
            return root.cid
        blocks: list[tuple[CID, bytes]] = []
        self._flush_node(root, blocks)
        self._store.put_many_keyed(blocks)
        assert root.cid is not None
        return root.cid

    # -- key bits -------------------------------------------------------------------------

    def _key_number(self, key: bytes) -> int:
        if not isinstance(key, bytes):
            raise TypeError(f"KAMT keys are bytes, not {type(key).__name__}")
        if len(key) != self._key_size:
            raise ValueError(f"KAMT keys are {self._key_size} bytes, not {len(key)}")
        return int.from_bytes(key, "big")

    def _next_index(self, hashed: int, consumed: int) -> tuple[int, int]:
        """The next ``bit_width`` bits of a key after ``consumed`` (fewer at the very end)."""
        remaining = self._key_bits - consumed
        if remaining <= 0:
            raise KamtError("maximum depth reached: the key's bits are exhausted")
        if remaining >= self._bit_width:
            consumed += self._bit_width
            return (hashed >> (self._key_bits - consumed)) & self._mask, consumed
        return hashed & ((1 << remaining) - 1), self._key_bits

    def _match_extension(self, hashed: int, consumed: int, link: _Link) -> tuple[int, int]:
        """How many bits of ``link``'s extension the key matches, in whole groups, and the
        key's consumed count after them (ref-fvm's ``longest_match``)."""
        length = link.length
        if not length:
            return 0, consumed
        width = self._bit_width
        extension = link.bits()
        if consumed + length <= self._key_bits:
            window = (hashed >> (self._key_bits - consumed - length)) & ((1 << length) - 1)
            difference = window ^ extension
            if not difference:
                return length, consumed + length
            matched = (length - difference.bit_length()) // width * width
            return matched, consumed + matched
        # The extension runs past the end of the key: compare group by group, as the
        # reference does, until a mismatch or the key runs out.
        matched = 0
        while matched < length:
            group, after = self._next_index(hashed, consumed)
            if group != (extension >> (length - matched - width)) & self._mask:
                break
            consumed = after
            matched += width
        return matched, consumed

    def _common_prefix(self, hashed: int, consumed: int, others: list[int]) -> int:
        """Whole groups after ``consumed`` that ``hashed`` shares with every one of
        ``others``, in bits (ref-fvm's ``longest_common_prefix``)."""
        remaining = self._key_bits - consumed
        shared = remaining
        for other in others:
            difference = (hashed ^ other) & ((1 << remaining) - 1)
            shared = min(shared, remaining - difference.bit_length())
        return shared // self._bit_width * self._bit_width

    # -- modification ---------------------------------------------------------------------

    def _modify(
        self,
        start: _Node,
        hashed: int,
        consumed: int,
        depth: int,
        key: bytes,
        value: Any,
        *,
        overwrite: bool,
    ) -> bool:
        """ref-fvm's ``modify_value`` from ``start``: True when the map changed."""
        encoded_value = dag_cbor.encode(value)
        node = start
        path = [node]
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            slot = (node.bitfield & (bit - 1)).bit_count()
            if not node.bitfield & bit:
                node.bitfield |= bit
                node.pointers.insert(slot, [[key, value]])
                break
            pointer = node.pointers[slot]
            if type(pointer) is _Link:
                matched, consumed = self._match_extension(hashed, consumed, pointer)
                if matched == pointer.length:
                    child = self._target(pointer, depth + 1)
                    depth += 1 + matched // self._bit_width
                    node = child
                    path.append(node)
                    continue
                node.pointers[slot] = self._split_extension(
                    pointer, matched, hashed, consumed, key, value
                )
                break
            existing = next((entry for entry in pointer if entry[0] == key), None)
            if existing is not None:
                if not overwrite:
                    return False
                old = existing[1]
                existing[1] = value
                # The same object may have been changed in place: count that as a change.
                if old is not value and dag_cbor.encode(old) == encoded_value:
                    return False
                break
            if len(pointer) >= self._max_bucket:
                node.pointers[slot] = self._push_down(pointer, key, value, hashed, consumed, depth)
                break
            position = 0
            while position < len(pointer) and pointer[position][0] < key:
                position += 1
            pointer.insert(position, [key, value])
            break
        for changed in path:
            changed.cid = None
        return True

    def _split_extension(
        self, link: _Link, matched: int, hashed: int, consumed: int, key: bytes, value: Any
    ) -> _Link:
        """A key left ``link``'s extension after ``matched`` bits: put a new node there holding
        the rest of the old link and the new entry."""
        width = self._bit_width
        bits = link.bits()
        tail_length = link.length - matched - width
        head = bits >> (link.length - matched)
        old_index = (bits >> tail_length) & self._mask
        tail = bits & ((1 << tail_length) - 1)
        midway = _Node(1 << old_index, [_new_link(tail_length, tail, link.target)], None)
        new_index, _ = self._next_index(hashed, consumed)
        bit = 1 << new_index
        slot = (midway.bitfield & (bit - 1)).bit_count()
        midway.bitfield |= bit
        midway.pointers.insert(slot, [[key, value]])
        return _new_link(matched, head, midway)

    def _push_down(
        self, bucket: Bucket, key: bytes, value: Any, hashed: int, consumed: int, depth: int
    ) -> _Link:
        """Replace a full bucket by a node, behind the extension its keys and ``key`` share."""
        others = [int.from_bytes(entry[0], "big") for entry in bucket]
        length = self._common_prefix(hashed, consumed, others)
        extension = (hashed >> (self._key_bits - consumed - length)) & ((1 << length) - 1)
        below = consumed + length
        depth += 1 + length // self._bit_width
        sub = _Node(0, [], None)
        self._modify(sub, hashed, below, depth, key, value, overwrite=True)
        for (old_key, old_value), old_hashed in zip(bucket, others, strict=True):
            self._modify(sub, old_hashed, below, depth, old_key, old_value, overwrite=True)
        return _new_link(length, extension, sub)

    def _clean(self, parent: _Node, slot: int) -> None:
        """ref-fvm's ``Pointer::clean`` on the link at ``slot`` after a delete below it."""
        link: _Link = parent.pointers[slot]
        child = link.target
        assert type(child) is _Node
        count = len(child.pointers)
        if count == 0:
            raise KamtError("KAMT child node left with zero pointers after a delete")
        if count == 1:
            only = child.pointers[0]
            if type(only) is list:
                parent.pointers[slot] = only
                return
            # Undo a split: the parent's extension, the child's one slot, the grandchild's.
            index = child.bitfield.bit_length() - 1
            length = link.length + self._bit_width + only.length
            bits = (
                (link.bits() << (self._bit_width + only.length))
                | (index << only.length)
                | only.bits()
            )
            parent.pointers[slot] = _new_link(length, bits, only.target)
            return
        if count > self._max_bucket:
            return
        merged: Bucket = []
        for pointer in child.pointers:
            if type(pointer) is not list:
                return
            merged.extend(pointer)
        if len(merged) > self._max_bucket:
            return
        merged.sort(key=lambda entry: entry[0])
        parent.pointers[slot] = merged

    # -- storage --------------------------------------------------------------------------

    def _target(self, link: _Link, depth: int) -> _Node:
        """The node behind ``link``, loading (and caching) it on first use."""
        target = link.target
        if type(target) is _Node:
            return target
        assert isinstance(target, CID)
        node = self._load(target, depth)
        link.target = node
        return node

    def _flush_node(self, node: _Node, blocks: list[tuple[CID, bytes]]) -> CID:
        wire: list[Any] = []
        for pointer in node.pointers:
            if type(pointer) is list:
                wire.append({_BUCKET_TAG: [[_u256_bytes(k), v] for k, v in pointer]})
                continue
            target = pointer.target
            if type(target) is _Node:
                cid = target.cid if target.cid is not None else self._flush_node(target, blocks)
            else:
                cid = target
            wire.append({_LINK_TAG: [cid, pointer.length, pointer.path]})
        bitfield = node.bitfield
        data = dag_cbor.encode([bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big"), wire])
        cid = CID.hash_of(data)
        blocks.append((cid, data))
        node.cid = cid
        return cid

    def _load(self, cid: CID, depth: int) -> _Node:
        """Fetch and validate one node, with the checks of ref-fvm's ``Node::load``."""
        where = f"KAMT node {cid}"
        bitfield, raw_pointers = load_node_frame(
            self._store, cid, self._bit_width, depth, where, KamtError
        )
        pointers = [self._decode_pointer(pointer, depth, where) for pointer in raw_pointers]
        return _Node(bitfield, pointers, cid)

    def _decode_pointer(self, pointer: Any, depth: int, where: str) -> Bucket | _Link:
        if not isinstance(pointer, dict) or len(pointer) != 1:
            raise KamtError("pointer must be a map with one key, 'v' or 'l'", where)
        ((tag, inner),) = pointer.items()
        if tag == _BUCKET_TAG:
            return self._decode_bucket(inner, where)
        if tag != _LINK_TAG:
            raise KamtError(f"pointer has unknown key {tag!r}", where)
        if type(inner) is not list or len(inner) != 3:
            raise KamtError("link must be the array [cid, extension length, extension]", where)
        cid, length, path = inner
        if type(cid) is not CID:
            raise KamtError("link must start with a CID", where)
        if type(length) is not int or not 0 <= length <= _MAX_EXTENSION_LENGTH:
            raise KamtError("extension length must be a 32-bit unsigned integer", where)
        if type(path) is not bytes:
            raise KamtError("extension must be a byte string", where)
        if cid.codec != DAG_CBOR:
            raise KamtError(f"KAMT nodes must be DAG-CBOR, not codec 0x{cid.codec:x}", where)
        if length % self._bit_width:
            raise KamtError(
                f"extension length {length} is not a multiple of the bit width {self._bit_width}",
                where,
            )
        remaining = self._key_bits - (depth + 1) * self._bit_width
        if remaining <= length:
            raise KamtError(
                f"extension length must be less than {remaining} bits, was {length} bits", where
            )
        if len(path) * 8 < length:
            raise KamtError(f"extension of {length} bits has only {len(path)} bytes", where)
        return _Link(length, path, cid)

    def _decode_bucket(self, bucket: Any, where: str) -> Bucket:
        if type(bucket) is not list:
            raise KamtError("bucket must be an array", where)
        if not bucket:
            raise KamtError("empty KAMT bucket", where)
        if len(bucket) > self._max_bucket:
            raise KamtError(f"too many items in bucket {len(bucket)} > {self._max_bucket}", where)
        out: Bucket = []
        for entry in bucket:
            if type(entry) is not list or len(entry) != 2:
                raise KamtError("bucket entry must be the array [key, value]", where)
            raw_key = entry[0]
            if type(raw_key) is not bytes:
                raise KamtError("bucket key must be a byte string", where)
            if len(raw_key) > self._key_size:
                raise KamtError(
                    f"bucket key is {len(raw_key)} bytes, more than {self._key_size}", where
                )
            key = raw_key.rjust(self._key_size, b"\0")
            if out and not out[-1][0] < key:
                raise KamtError("duplicate or unsorted keys in bucket", where)
            out.append([key, entry[1]])
        return out


def _u256_bytes(key: bytes) -> bytes:
    """A key as the EVM's ``U256`` is written: big-endian without leading zero bytes."""
    return key.lstrip(b"\0")
