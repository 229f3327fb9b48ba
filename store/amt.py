"""Filecoin's AMT: the persistent sparse array behind actor state, receipts and block messages.

Ported from ref-fvm's ``ipld/amt`` crate (``fvm_ipld_amt``: ``amt.rs``, ``node.rs``,
``root.rs``, ``lib.rs``). Two layouts share one algorithm:

- v3 (go-amt-ipld v3/v4, ref-fvm's ``Amt``), used by all actor state from network version 17
  and by event AMTs: the root block is ``[bit_width, height, count, node]``;
- legacy v0 (go-amt-ipld v0/v2, ref-fvm's ``Amtv0``), which Lotus still uses through
  specs-actors v0's ``adt`` for the block's BLS and secp message arrays (``TxMeta``) and the
  receipts array: the root block is ``[height, count, node]`` and the bit width is fixed at 3.

A node is ``[bmap, links, values]``. ``bmap`` is a byte string of ``max(1, 2**bit_width / 8)``
bytes; bit ``i`` (bit ``i % 8`` of byte ``i // 8``, least significant first) set means slot
``i`` is occupied. Nodes at height 0 are leaves and list the occupied slots' values; higher
nodes list the CIDs of their children. The index ``i`` selects, at height ``h``, the slot
``i // width**h`` and the remainder is looked up in that child.

The tree is canonical, so the root CID depends only on the contents: a set past the capacity
grows the root by pushing the old root down into slot 0; a delete removes every node it leaves
empty, resets an empty tree to height 0, and while the root links only its slot 0 child that
child becomes the root. Indices run from 0 to ``MAX_INDEX`` (2**64 - 2).

Loading validates what go-amt-ipld v4 (``LoadAMT``, ``newNode``) checks and ref-fvm relies on:
the block shape, the bitmap length for the width, the number of links or values against the set
bits, links only above height 0 and values only at height 0, no empty node below the root, a
height that the width can address (``bit_width * height < 64``) and a count the height can hold.
As in both references, bitmap bits past the node's width are ignored. Nodes are loaded on
first use and cached; :meth:`Amt.flush` encodes and writes only the nodes changed since the
last flush.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from store import dag_cbor
from store.blockstore import Blockstore, get_required
from store.cid import BLAKE2B_256, CID, DAG_CBOR
from store.errors import AmtError, CBORError

DEFAULT_BIT_WIDTH: Final = 3
# The legacy layout does not record its width; go-amt-ipld v2 hard-codes 8 slots per node.
LEGACY_BIT_WIDTH: Final = 3
# go-amt-ipld refuses widths below 1 (a node must have at least two slots). A node's bitmap
# alone takes 2**(bit_width - 3) bytes, so 22 is the widest whose nodes still fit in a block
# the FVM will store (ref-fvm's ``max_block_size``, 1 MiB).
MIN_BIT_WIDTH: Final = 1
MAX_BIT_WIDTH: Final = 22
# ref-fvm's ``MAX_HEIGHT``; go-amt-ipld v4 also requires ``bit_width * height < 64``.
MAX_HEIGHT: Final = 64
# ref-fvm's and go-amt-ipld v4's ``MAX_INDEX``: one below u64::MAX so a length never overflows.
MAX_INDEX: Final = (1 << 64) - 2
_U64_MAX: Final = (1 << 64) - 1


def nodes_for_height(bit_width: int, height: int) -> int:
    """How many indices a subtree of ``height`` levels spans: ``2**(bit_width * height)``.

    Saturates at u64::MAX as ref-fvm does, so heights that overflow 64 bits compare sanely.
    """
    shift = bit_width * height
    return _U64_MAX if shift >= 64 else 1 << shift


def bmap_bytes(bit_width: int) -> int:
    """Length of a node's bitmap: one bit per slot, at least one byte."""
    return 1 if bit_width <= 3 else 1 << (bit_width - 3)


class _Link:
    """A child slot: the child's CID (None until first flushed), its cached node, and whether
    the cached node changed since the CID was computed."""

    __slots__ = ("cid", "dirty", "node")

    def __init__(self, cid: CID | None, node: _Node | None, dirty: bool) -> None:
        self.cid = cid
        self.node = node
        self.dirty = dirty


class _Node:
    """One node in expanded form: occupied slot -> child link (height > 0) or value (leaf)."""

    __slots__ = ("links", "values")

    def __init__(self) -> None:
        self.links: dict[int, _Link] = {}
        self.values: dict[int, Any] = {}

    def is_empty(self) -> bool:
        return not self.links and not self.values


def _occupied_slots(bmap: bytes, width: int) -> list[int]:
    """The slots whose bits are set, ascending; bits past ``width`` are ignored."""
    bits = int.from_bytes(bmap, "little") & ((1 << width) - 1)
    slots = []
    while bits:
        low = bits & -bits
        slots.append(low.bit_length() - 1)
        bits ^= low
    return slots


def _expand(raw: Any, bit_width: int, height: int, is_root: bool) -> _Node:
    """Check a decoded ``[bmap, links, values]`` node and expand it.

    Errors carry no location; :func:`_expand_block` adds the CID only when one is raised.
    """
    if not isinstance(raw, list) or len(raw) != 3:
        raise AmtError("node must be the 3-element array [bmap, links, values]")
    bmap, links, values = raw
    if not isinstance(bmap, bytes) or not isinstance(links, list) or not isinstance(values, list):
        raise AmtError("node must be [bytes, array of links, array of values]")
    if links and values:
        raise AmtError("node has both links and values")
    expected = bmap_bytes(bit_width)
    if len(bmap) != expected:
        raise AmtError(f"bitmap is {len(bmap)} bytes but bit width {bit_width} needs {expected}")
    slots = _occupied_slots(bmap, 1 << bit_width)
    node = _Node()
    if values:
        if height != 0:
            raise AmtError(f"values in a node at height {height} (only leaves hold values)")
        if len(values) != len(slots):
            raise AmtError(f"bitmap sets {len(slots)} bits but node has {len(values)} values")
        node.values = dict(zip(slots, values, strict=True))
    elif links:
        if height == 0:
            raise AmtError("links in a leaf node (height 0)")
        if len(links) != len(slots):
            raise AmtError(f"bitmap sets {len(slots)} bits but node has {len(links)} links")
        for link in links:
            if not isinstance(link, CID):
                raise AmtError("links array holds a value that is not a CID")
            if link.codec != DAG_CBOR:
                raise AmtError(f"link {link} is not DAG-CBOR (codec 0x{link.codec:x})")
        node.links = {slot: _Link(cid, None, False) for slot, cid in zip(slots, links, strict=True)}
    elif slots:
        raise AmtError(f"bitmap sets {len(slots)} bits but node has no links or values")
    elif not is_root or height != 0:
        raise AmtError(f"empty node at height {height} (only an empty tree's root may be)")
    return node


def _expand_block(raw: Any, bit_width: int, height: int, is_root: bool, cid: CID) -> _Node:
    try:
        return _expand(raw, bit_width, height, is_root)
    except AmtError as exc:
        raise AmtError(exc.what, str(cid)) from None


def _decode_block(store: Blockstore, cid: CID) -> Any:
    data = get_required(store, cid)
    try:
        return dag_cbor.decode(data)
    except CBORError as exc:
        raise AmtError(f"block is not valid DAG-CBOR: {exc.what}", str(cid)) from None


def _is_uint(value: Any, limit: int = _U64_MAX) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _check_bit_width(bit_width: int) -> None:
    if not MIN_BIT_WIDTH <= bit_width <= MAX_BIT_WIDTH:
        raise ValueError(f"AMT bit width must be {MIN_BIT_WIDTH}..{MAX_BIT_WIDTH}, not {bit_width}")


class Amt:
    """A sparse array of DAG-CBOR values keyed by u64 index, stored as an AMT.

    ``root=None`` starts an empty array of ``bit_width``; otherwise the root block is read and
    checked at once (v3: the width comes from the block and ``bit_width`` is ignored), and
    other nodes as they are reached. ``legacy=True`` selects the v0 layout (width 3).

    Values are what :func:`store.dag_cbor.decode` returns; a stored CBOR null reads back as
    None, like an absent index. Iterating while mutating is not supported.
    """

    def __init__(
        self,
        store: Blockstore,
        root: CID | None = None,
        *,
        bit_width: int = DEFAULT_BIT_WIDTH,
        legacy: bool = False,
    ) -> None:
        self._store = store
        self._legacy = legacy
        if legacy and bit_width != LEGACY_BIT_WIDTH:
            raise ValueError(f"the legacy AMT layout has bit width 3, not {bit_width}")
        if root is None:
            _check_bit_width(bit_width)
            self._bit_width = bit_width
            self._height = 0
            self._count = 0
            self._root = _Node()
            self._flushed: CID | None = None
        else:
            self._load_root(root)

    def _load_root(self, cid: CID) -> None:
        where = str(cid)
        raw = _decode_block(self._store, cid)
        if self._legacy:
            if not isinstance(raw, list) or len(raw) != 3:
                raise AmtError("legacy AMT root must be the array [height, count, node]", where)
            height, count, node = raw
            bit_width: Any = LEGACY_BIT_WIDTH
        else:
            if not isinstance(raw, list) or len(raw) != 4:
                raise AmtError("AMT root must be the array [bit_width, height, count, node]", where)
            bit_width, height, count, node = raw
            if not _is_uint(bit_width, (1 << 32) - 1):
                raise AmtError(f"bit width {bit_width!r} is not a u32", where)
            if not MIN_BIT_WIDTH <= bit_width <= MAX_BIT_WIDTH:
                raise AmtError(
                    f"bit width {bit_width} out of bounds {MIN_BIT_WIDTH}..{MAX_BIT_WIDTH}", where
                )
        if not _is_uint(height, (1 << 32) - 1):
            raise AmtError(f"height {height!r} is not a u32", where)
        if not _is_uint(count):
            raise AmtError(f"count {count!r} is not a u64", where)
        if height > MAX_HEIGHT or bit_width * height >= 64:
            raise AmtError(f"height {height} out of bounds for bit width {bit_width}", where)
        if count > nodes_for_height(bit_width, height + 1):
            raise AmtError(f"height {height} is not tall enough for count {count}", where)
        self._bit_width = bit_width
        self._height = height
        self._count = count
        self._root = _expand_block(node, bit_width, height, True, cid)
        self._flushed = cid

    # -- properties ----------------------------------------------------------------------

    @property
    def bit_width(self) -> int:
        return self._bit_width

    @property
    def height(self) -> int:
        return self._height

    @property
    def legacy(self) -> bool:
        return self._legacy

    def __len__(self) -> int:
        return self._count

    # -- reading -------------------------------------------------------------------------

    def _child(self, link: _Link, height: int) -> _Node:
        """The node behind ``link`` (whose node sits at ``height``), loading it on first use."""
        if link.node is None:
            assert link.cid is not None  # a link without a cached node came from a block
            raw = _decode_block(self._store, link.cid)
            link.node = _expand_block(raw, self._bit_width, height, False, link.cid)
        return link.node

    def _check_index(self, index: int) -> None:
        if not 0 <= index <= MAX_INDEX:
            raise AmtError(f"index {index} out of range 0..{MAX_INDEX} for the AMT")

    def get(self, index: int) -> Any | None:
        """The value at ``index``, or None when it is not set."""
        self._check_index(index)
        if index >= nodes_for_height(self._bit_width, self._height + 1):
            return None
        node = self._root
        for height in range(self._height, 0, -1):
            span = nodes_for_height(self._bit_width, height)
            link = node.links.get(index // span)
            if link is None:
                return None
            node = self._child(link, height - 1)
            index %= span
        return node.values.get(index)

    def items(self) -> Iterator[tuple[int, Any]]:
        """Every ``(index, value)`` in ascending index order (loaded nodes stay cached)."""
        return self._walk(self._root, self._height, 0)

    def _walk(self, node: _Node, height: int, offset: int) -> Iterator[tuple[int, Any]]:
        if height == 0:
            for slot in sorted(node.values):
                yield offset + slot, node.values[slot]
            return
        span = nodes_for_height(self._bit_width, height)
        for slot in sorted(node.links):
            child = self._child(node.links[slot], height - 1)
            yield from self._walk(child, height - 1, offset + slot * span)

    # -- writing -------------------------------------------------------------------------

    def set(self, index: int, value: Any) -> None:
        """Store ``value`` at ``index``, growing the tree when the index is past its capacity."""
        self._check_index(index)
        while index >= nodes_for_height(self._bit_width, self._height + 1):
            pushed_down = self._root
            self._root = _Node()
            if not pushed_down.is_empty():
                self._root.links[0] = _Link(None, pushed_down, True)
            self._height += 1
        node = self._root
        for height in range(self._height, 0, -1):
            span = nodes_for_height(self._bit_width, height)
            slot = index // span
            link = node.links.get(slot)
            if link is None:
                link = _Link(None, _Node(), True)
                node.links[slot] = link
            node = self._child(link, height - 1)
            link.dirty = True
            index %= span
        if index not in node.values:
            self._count += 1
        node.values[index] = value
        self._flushed = None

    def delete(self, index: int) -> bool:
        """Remove ``index``; False when it was not set. Keeps the tree canonical."""
        self._check_index(index)
        if index >= nodes_for_height(self._bit_width, self._height + 1):
            return False
        path: list[tuple[_Node, int, _Link]] = []
        node = self._root
        for height in range(self._height, 0, -1):
            span = nodes_for_height(self._bit_width, height)
            slot = index // span
            link = node.links.get(slot)
            if link is None:
                return False
            path.append((node, slot, link))
            node = self._child(link, height - 1)
            index %= span
        if index not in node.values:
            return False
        if self._count == 0:
            raise AmtError("count is 0 but the AMT holds a value", self._where())
        del node.values[index]
        self._count -= 1
        self._flushed = None
        for parent, slot, link in reversed(path):
            child = link.node
            assert child is not None  # loaded on the way down
            if child.is_empty():
                del parent.links[slot]
            else:
                link.dirty = True
        if self._root.is_empty():
            self._root = _Node()
            self._height = 0
        while self._height > 0 and list(self._root.links) == [0]:
            self._root = self._child(self._root.links[0], self._height - 1)
            self._height -= 1
        return True

    def _where(self) -> str:
        return str(self._flushed) if self._flushed is not None else "unflushed AMT"

    def flush(self) -> CID:
        """Write every node changed since the last flush and the root; return the root CID."""
        if self._flushed is not None:
            return self._flushed
        blocks: list[tuple[CID, bytes]] = []
        node = self._collapse(self._root, self._height, blocks)
        if self._legacy:
            root: list[Any] = [self._height, self._count, node]
        else:
            root = [self._bit_width, self._height, self._count, node]
        data = dag_cbor.encode(root)
        cid = CID.hash_of(data, DAG_CBOR, BLAKE2B_256)
        blocks.append((cid, data))
        self._store.put_many_keyed(blocks)
        self._flushed = cid
        return cid

    def _collapse(self, node: _Node, height: int, blocks: list[tuple[CID, bytes]]) -> list[Any]:
        """``node`` in its stored form, after writing its changed descendants into ``blocks``."""
        bits = 0
        if height == 0:
            values = []
            for slot in sorted(node.values):
                bits |= 1 << slot
                values.append(node.values[slot])
            return [bits.to_bytes(bmap_bytes(self._bit_width), "little"), [], values]
        links = []
        for slot in sorted(node.links):
            link = node.links[slot]
            if link.dirty:
                assert link.node is not None  # dirty links always hold their node
                data = dag_cbor.encode(self._collapse(link.node, height - 1, blocks))
                link.cid = CID.hash_of(data, DAG_CBOR, BLAKE2B_256)
                link.dirty = False
                blocks.append((link.cid, data))
            bits |= 1 << slot
            links.append(link.cid)
        return [bits.to_bytes(bmap_bytes(self._bit_width), "little"), links, []]

    @classmethod
    def from_list(
        cls,
        store: Blockstore,
        values: list[Any],
        *,
        bit_width: int = DEFAULT_BIT_WIDTH,
        legacy: bool = False,
    ) -> Amt:
        """A new (unflushed) AMT holding ``values[i]`` at index ``i``."""
        amt = cls(store, bit_width=bit_width, legacy=legacy)
        for index, value in enumerate(values):
            amt.set(index, value)
        return amt
