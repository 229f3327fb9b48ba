"""Filecoin's HAMT: the persistent hash map behind the state tree and most actor state.

Ported from ref-fvm's ``ipld/hamt`` crate (``fvm_ipld_hamt``: ``node.rs``, ``pointer.rs``,
``bitfield.rs``, ``hash_bits.rs``, ``hamt.rs``), which reads and writes the go-hamt-ipld v3
layout used by the state tree and actors from network version 10 on. The layout:

- a node is the array ``[bitfield, pointers]``; ``bitfield`` is a byte string holding a
  256-bit big-endian number with its leading zero bytes dropped (an empty node has ``h''``);
  bit ``i`` set means slot ``i`` is occupied, and ``pointers`` lists the occupied slots in
  ascending order;
- a pointer is either a link (a CID) to a child node, or a bucket: an array of at most three
  ``[key, value]`` pairs sorted by key bytes;
- a key's slot at depth ``d`` is the ``d``-th group of ``bit_width`` bits of ``sha256(key)``,
  read from the most significant bit on (the last group is shorter when ``bit_width`` does not
  divide 256).

Inserting into a full bucket replaces it with a child node holding the four entries one level
down; deleting folds a child that ends up with at most three entries in buckets (and no links)
back into a bucket of its parent. Together these make the tree, and so its root CID, depend
only on the map's contents, never on the order of operations.

The older layout of actors v0-v2 (go-hamt-ipld before v3, ref-fvm's ``Hamtv0``), found in the
mainnet genesis state, differs only in how a pointer is written: as the map ``{"0": link}`` or
``{"1": bucket}``. ``Hamt(..., version=0)`` reads and writes it.

Nodes are loaded from the store on first use and cached; only nodes changed since the last
flush are encoded and written by :meth:`Hamt.flush`. Loading checks what ``Node::load`` checks
since fvm_ipld_hamt 0.9 (pointer count against bitfield and bit width, no empty non-root
node, buckets non-empty, at most three entries, strictly sorted keys, DAG-CBOR links); like the
reference it accepts a bitfield with leading zero bytes, which a rewrite of the node drops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Final

from store import dag_cbor
from store.blockstore import Blockstore, get_required
from store.cid import CID, DAG_CBOR
from store.errors import CBORError, HamtError

# Largest bucket before it is pushed down into a child node (ref-fvm's ``max_array_width``).
MAX_BUCKET_SIZE: Final = 3
# The HAMT hashes keys to 256 bits and the bitfield has one bit per possible slot index.
HASH_BITS: Final = 256
MAX_BITFIELD_BYTES: Final = 32
DEFAULT_BIT_WIDTH: Final = 5
# Pointer layouts: 3 is go-hamt-ipld v3 (current), 0 is the actors v0-v2 layout.
LAYOUT_V3: Final = 3
LAYOUT_V0: Final = 0

_V0_LINK_KEY: Final = "0"
_V0_BUCKET_KEY: Final = "1"

# A bucket is a list of ``[key, value]`` lists, exactly as they are encoded.
Bucket = list[list[Any]]


class _Node:
    """One HAMT node in memory.

    ``pointers`` holds, per occupied slot, a bucket (a ``list``), an unloaded link (a
    :class:`CID`) or a loaded child (a :class:`_Node`). ``cid`` is the CID the node was loaded
    from or last flushed to, and None while it has changes not yet written.
    """

    __slots__ = ("bitfield", "cid", "pointers")

    def __init__(self, bitfield: int, pointers: list[Any], cid: CID | None) -> None:
        self.bitfield = bitfield
        self.pointers = pointers
        self.cid = cid


def _key_hash(key: bytes) -> int:
    return int.from_bytes(hashlib.sha256(key).digest(), "big")


class Hamt:
    """A HAMT over a blockstore, mapping byte-string keys to DAG-CBOR values.

    Values returned by :meth:`get` and :meth:`items` are the HAMT's own objects: treat them as
    read-only and call :meth:`set` with a new value to change an entry.
    """

    __slots__ = ("_bit_width", "_mask", "_root", "_store", "_version")

    def __init__(
        self,
        store: Blockstore,
        root: CID | None = None,
        *,
        bit_width: int = DEFAULT_BIT_WIDTH,
        version: int = LAYOUT_V3,
    ) -> None:
        if not 1 <= bit_width <= 8:
            raise ValueError(f"HAMT bit width must be between 1 and 8, not {bit_width}")
        if version not in (LAYOUT_V3, LAYOUT_V0):
            raise ValueError(f"unknown HAMT layout version {version}")
        self._store = store
        self._bit_width = bit_width
        self._mask = (1 << bit_width) - 1
        self._version = version
        self._root = _Node(0, [], None) if root is None else self._load(root, 0)

    # -- reading --------------------------------------------------------------------------

    def get(self, key: bytes) -> Any | None:
        """The value stored under ``key``, or None."""
        entry = self._find_entry(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        return self._find_entry(key) is not None

    def _find_entry(self, key: bytes) -> list[Any] | None:
        hashed = _key_hash(key)
        consumed = 0
        node = self._root
        depth = 0
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            if not node.bitfield & bit:
                return None
            slot = (node.bitfield & (bit - 1)).bit_count()
            child = node.pointers[slot]
            if type(child) is list:
                for entry in child:
                    if entry[0] == key:
                        return entry  # type: ignore[no-any-return]
                return None
            depth += 1
            node = self._child(node, slot, child, depth)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """Every entry, depth first in slot order, each bucket in key order (as ref-fvm)."""
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, position = stack[-1]
            if position == len(node.pointers):
                stack.pop()
                continue
            stack[-1] = (node, position + 1)
            child = node.pointers[position]
            if type(child) is list:
                yield from ((entry[0], entry[1]) for entry in child)
            else:
                stack.append((self._child(node, position, child, len(stack)), 0))

    def graft_link(self, indices: list[int], link: CID) -> None:
        """Place an unloaded child ``link`` at the slot path ``indices`` (hash-slot numbers from
        the root down), creating the nodes on the way.

        For rebuilding a tree of which only part is at hand (test vectors carry only the state
        their message touched): the absent subtrees are grafted at their positions first, then
        the known entries are inserted around them. Call it on a tree with no entries yet.
        """
        if not indices:
            raise ValueError("a grafted link needs a non-empty slot path")
        node = self._root
        for depth, idx in enumerate(indices):
            if not 0 <= idx <= self._mask:
                raise ValueError(f"slot {idx} out of range for bit width {self._bit_width}")
            bit = 1 << idx
            slot = (node.bitfield & (bit - 1)).bit_count()
            last = depth == len(indices) - 1
            if node.bitfield & bit:
                child = node.pointers[slot]
                if last or type(child) is not _Node:
                    raise ValueError(f"slot path {indices} collides with an existing pointer")
                node = child
                continue
            node.bitfield |= bit
            node.cid = None
            new: Any = link if last else _Node(0, [], None)
            node.pointers.insert(slot, new)
            if not last:
                node = new

    # -- writing --------------------------------------------------------------------------

    def set(self, key: bytes, value: Any) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        self._check_key(key)
        self._modify(key, value, overwrite=True)

    def set_if_absent(self, key: bytes, value: Any) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was stored."""
        self._check_key(key)
        return self._modify(key, value, overwrite=False)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it was present."""
        hashed = _key_hash(key)
        consumed = 0
        node = self._root
        depth = 0
        # (parent, slot) of every child node on the way down, for dirtying and cleaning.
        path: list[tuple[_Node, int]] = []
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            if not node.bitfield & bit:
                return False
            slot = (node.bitfield & (bit - 1)).bit_count()
            child = node.pointers[slot]
            if type(child) is list:
                break
            depth += 1
            path.append((node, slot))
            node = self._child(node, slot, child, depth)
        position = next((i for i, entry in enumerate(child) if entry[0] == key), None)
        if position is None:
            return False
        if len(child) == 1:
            node.bitfield &= ~bit
            del node.pointers[slot]
        else:
            del child[position]
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

    # -- internals ------------------------------------------------------------------------

    def _next_index(self, hashed: int, consumed: int) -> tuple[int, int]:
        """The next slot index from the key's hash, after ``consumed`` bits (``HashBits``)."""
        remaining = HASH_BITS - consumed
        if remaining <= 0:
            raise HamtError("maximum depth reached: the key's hash bits are exhausted")
        if remaining >= self._bit_width:
            consumed += self._bit_width
            return (hashed >> (HASH_BITS - consumed)) & self._mask, consumed
        return hashed & ((1 << remaining) - 1), HASH_BITS

    @staticmethod
    def _check_key(key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError(f"HAMT keys are bytes, not {type(key).__name__}")

    def _child(self, parent: _Node, slot: int, pointer: Any, depth: int) -> _Node:
        """The child node behind ``pointer``, loading (and caching) a link on first use."""
        if type(pointer) is _Node:
            return pointer
        node = self._load(pointer, depth)
        parent.pointers[slot] = node
        return node

    def _modify(self, key: bytes, value: Any, *, overwrite: bool) -> bool:
        """ref-fvm's ``modify_value``: True when the map changed."""
        encoded_value = dag_cbor.encode(value)
        hashed = _key_hash(key)
        node = self._root
        path = [node]
        consumed = 0
        depth = 0
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            if not node.bitfield & bit:
                slot = (node.bitfield & (bit - 1)).bit_count()
                node.bitfield |= bit
                node.pointers.insert(slot, [[key, value]])
                break
            slot = (node.bitfield & (bit - 1)).bit_count()
            child = node.pointers[slot]
            if type(child) is not list:
                depth += 1
                node = self._child(node, slot, child, depth)
                path.append(node)
                continue
            existing = next((entry for entry in child if entry[0] == key), None)
            if existing is not None:
                if not overwrite:
                    return False
                old = existing[1]
                existing[1] = value
                # The same object may have been changed in place: count that as a change.
                if old is not value and dag_cbor.encode(old) == encoded_value:
                    return False
                break
            if len(child) >= MAX_BUCKET_SIZE:
                node.pointers[slot] = self._split(child, key, value, hashed, consumed)
                break
            position = 0
            while position < len(child) and child[position][0] < key:
                position += 1
            child.insert(position, [key, value])
            break
        for changed in path:
            changed.cid = None
        return True

    def _split(self, bucket: Bucket, key: bytes, value: Any, hashed: int, consumed: int) -> _Node:
        """Push a full bucket and one more entry down into a new child node."""
        sub = _Node(0, [], None)
        self._insert_fresh(sub, key, value, hashed, consumed)
        for old_key, old_value in bucket:
            self._insert_fresh(sub, old_key, old_value, _key_hash(old_key), consumed)
        return sub

    def _insert_fresh(
        self, node: _Node, key: bytes, value: Any, hashed: int, consumed: int
    ) -> None:
        """Insert a key known to be absent into an unsaved subtree (all nodes in memory)."""
        while True:
            idx, consumed = self._next_index(hashed, consumed)
            bit = 1 << idx
            slot = (node.bitfield & (bit - 1)).bit_count()
            if not node.bitfield & bit:
                node.bitfield |= bit
                node.pointers.insert(slot, [[key, value]])
                return
            child = node.pointers[slot]
            if type(child) is _Node:
                node = child
                continue
            if len(child) >= MAX_BUCKET_SIZE:
                node.pointers[slot] = self._split(child, key, value, hashed, consumed)
                return
            position = 0
            while position < len(child) and child[position][0] < key:
                position += 1
            child.insert(position, [key, value])
            return

    @staticmethod
    def _clean(parent: _Node, slot: int) -> None:
        """Fold the child at ``slot`` back into a bucket if it no longer needs a node.

        ref-fvm's ``Pointer::clean``: a child with one pointer that is a bucket becomes that
        bucket; a child with two or three pointers, all buckets, holding at most three entries
        in total becomes one bucket of those entries in key order.
        """
        child: _Node = parent.pointers[slot]
        count = len(child.pointers)
        if count == 0:
            raise HamtError("HAMT child node left with zero pointers after a delete")
        if count == 1:
            only = child.pointers[0]
            if type(only) is list:
                parent.pointers[slot] = only
            return
        if count > MAX_BUCKET_SIZE:
            return
        merged: Bucket = []
        for pointer in child.pointers:
            if type(pointer) is not list:
                return
            merged.extend(pointer)
        if len(merged) > MAX_BUCKET_SIZE:
            return
        merged.sort(key=lambda entry: entry[0])
        parent.pointers[slot] = merged

    def _flush_node(self, node: _Node, blocks: list[tuple[CID, bytes]]) -> CID:
        pointers = node.pointers
        for pointer in pointers:
            if type(pointer) is _Node and pointer.cid is None:
                self._flush_node(pointer, blocks)
        data = dag_cbor.encode([self._bitfield_bytes(node.bitfield), self._wire_pointers(node)])
        cid = CID.hash_of(data)
        blocks.append((cid, data))
        node.cid = cid
        return cid

    @staticmethod
    def _bitfield_bytes(bitfield: int) -> bytes:
        return bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big")

    def _wire_pointers(self, node: _Node) -> list[Any]:
        wire: list[Any] = []
        v0 = self._version == LAYOUT_V0
        for pointer in node.pointers:
            kind = type(pointer)
            if kind is _Node:
                link = pointer.cid
            elif kind is list:
                wire.append({_V0_BUCKET_KEY: pointer} if v0 else pointer)
                continue
            else:
                link = pointer
            wire.append({_V0_LINK_KEY: link} if v0 else link)
        return wire

    def _load(self, cid: CID, depth: int) -> _Node:
        """Fetch and validate one node, with the checks of ref-fvm's ``Node::load``."""
        where = f"HAMT node {cid}"
        bitfield, raw_pointers = load_node_frame(
            self._store, cid, self._bit_width, depth, where, HamtError
        )
        if self._version == LAYOUT_V0:
            pointers = [_unwrap_v0_pointer(pointer, where) for pointer in raw_pointers]
        else:
            pointers = raw_pointers
        for pointer in pointers:
            if type(pointer) is list:
                _check_bucket(pointer, where)
            elif type(pointer) is CID:
                if pointer.codec != DAG_CBOR:
                    raise HamtError(
                        f"HAMT nodes must be DAG-CBOR, not codec 0x{pointer.codec:x}", where
                    )
            else:
                raise HamtError(
                    f"pointer must be a link or a bucket array, not {type(pointer).__name__}",
                    where,
                )
        return _Node(bitfield, pointers, cid)


def load_node_frame(
    store: Blockstore,
    cid: CID,
    bit_width: int,
    depth: int,
    where: str,
    error: type[HamtError],
) -> tuple[int, list[Any]]:
    """Fetch a HAMT or KAMT node and check its ``[bitfield, pointers]`` frame as ref-fvm's
    ``Node::load`` does (shared by both structures); return the bitfield and raw pointers."""
    data = get_required(store, cid)
    try:
        decoded = dag_cbor.decode(data, where)
    except CBORError as exc:
        raise error(f"node is not valid DAG-CBOR: {exc.what}", where) from None
    if type(decoded) is not list or len(decoded) != 2:
        raise error("node must be the array [bitfield, pointers]", where)
    raw_bitfield, raw_pointers = decoded
    if type(raw_bitfield) is not bytes:
        raise error("node bitfield must be a byte string", where)
    if len(raw_bitfield) > MAX_BITFIELD_BYTES:
        raise error(
            f"node bitfield is {len(raw_bitfield)} bytes, more than {MAX_BITFIELD_BYTES}",
            where,
        )
    if type(raw_pointers) is not list:
        raise error("node pointers must be an array", where)
    bitfield = int.from_bytes(raw_bitfield, "big")
    count = len(raw_pointers)
    if count > 1 << bit_width:
        raise error(
            f"number of pointers ({count}) exceeds that allowed by the bit width "
            f"({1 << bit_width})",
            where,
        )
    if bitfield.bit_count() != count:
        raise error(
            f"number of pointers ({count}) doesn't match bitfield ({bitfield.bit_count()})",
            where,
        )
    if count == 0 and depth != 0:
        raise error("a non-root node has zero pointers", where)
    return bitfield, raw_pointers


def _unwrap_v0_pointer(pointer: Any, where: str) -> Any:
    """The link or bucket inside a v0 pointer ``{"0": link}`` / ``{"1": bucket}``."""
    if not isinstance(pointer, dict) or len(pointer) != 1:
        raise HamtError("v0 pointer must be a map with one key, '0' or '1'", where)
    ((tag, inner),) = pointer.items()
    if tag == _V0_LINK_KEY:
        if type(inner) is not CID:
            raise HamtError("v0 link pointer must hold a CID", where)
        return inner
    if tag == _V0_BUCKET_KEY:
        if type(inner) is not list:
            raise HamtError("v0 bucket pointer must hold an array", where)
        return inner
    raise HamtError(f"v0 pointer has unknown key {tag!r}", where)


def _check_bucket(bucket: list[Any], where: str) -> None:
    if not bucket:
        raise HamtError("empty HAMT bucket", where)
    if len(bucket) > MAX_BUCKET_SIZE:
        raise HamtError(f"too many items in bucket {len(bucket)} > {MAX_BUCKET_SIZE}", where)
    previous: bytes | None = None
    for entry in bucket:
        if type(entry) is not list or len(entry) != 2:
            raise HamtError("bucket entry must be the array [key, value]", where)
        key = entry[0]
        if type(key) is not bytes:
            raise HamtError("bucket key must be a byte string", where)
        if previous is not None and not previous < key:
            raise HamtError("duplicate or unsorted keys in bucket", where)
        previous = key
