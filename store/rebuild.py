"""Rebuild a HAMT or AMT from its decoded entries and compare it node by node with the original.

This is the byte-exactness check behind ``fvm-node inspect state --verify`` and the real-data
tests: if our HAMT/AMT code serialized, ordered or collapsed anything differently from the
Go/Rust implementations that wrote mainnet state, the rebuilt root would differ. On a difference
the report names the nodes whose bytes are not reproduced.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from store import dag_cbor
from store.amt import Amt
from store.blockstore import Blockstore, MemoryBlockstore, get_required
from store.cid import CID
from store.errors import BlockNotFound, HamtError
from store.hamt import LAYOUT_V0, LAYOUT_V3, Hamt


@dataclass(slots=True)
class RebuildReport:
    """The outcome of one rebuild: ``ok`` when the root and every node are identical."""

    kind: str
    original_root: CID
    rebuilt_root: CID
    entries: int
    nodes_compared: int = 0
    absent_subtrees: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.original_root == self.rebuilt_root and not self.differences


def _amt_children(node: Any) -> list[CID | None]:
    return list(node[1])


def _compare_trees(
    original_store: Blockstore,
    rebuilt_store: Blockstore,
    original: CID,
    rebuilt: CID,
    node_of: Callable[[Any], Any],
    children_of: Callable[[Any], list[CID | None]],
    report: RebuildReport,
) -> None:
    """Walk both trees in step; record the first few nodes whose bytes differ."""
    stack: list[tuple[str, CID, CID, bool]] = [("/", original, rebuilt, True)]
    while stack and len(report.differences) < 5:
        path, a_cid, b_cid, is_root = stack.pop()
        a_bytes = get_required(original_store, a_cid)
        b_bytes = get_required(rebuilt_store, b_cid)
        report.nodes_compared += 1
        if a_bytes == b_bytes:
            continue
        a_node = dag_cbor.decode(a_bytes, str(a_cid))
        b_node = dag_cbor.decode(b_bytes, str(b_cid))
        if is_root:
            a_node, b_node = node_of(a_node), node_of(b_node)
        a_kids, b_kids = children_of(a_node), children_of(b_node)
        if len(a_kids) != len(b_kids) or a_node[0] != b_node[0]:
            report.differences.append(
                f"node {path}: original {a_cid} and rebuilt {b_cid} differ in layout"
            )
            continue
        child_differs = False
        for index, (a_kid, b_kid) in enumerate(zip(a_kids, b_kids, strict=True)):
            if a_kid != b_kid:
                child_differs = True
                if a_kid is not None and b_kid is not None:
                    stack.append((f"{path}{index}/", a_kid, b_kid, False))
        if not child_differs:
            report.differences.append(
                f"node {path}: original {a_cid} and rebuilt {b_cid} differ in their entries"
            )


def rebuild_amt(
    store: Blockstore, root: CID, *, legacy: bool = False, seed: int = 0
) -> RebuildReport:
    """Rebuild the AMT at ``root`` (v3, or legacy v0) from its entries and compare."""
    original = Amt(store, root, legacy=legacy)
    entries = list(original.items())
    random.Random(seed).shuffle(entries)
    fresh = MemoryBlockstore()
    root_block = dag_cbor.decode(get_required(store, root), str(root))
    bit_width = 3 if legacy else int(root_block[0])
    amt = Amt(fresh, None, bit_width=bit_width, legacy=legacy)
    for index, value in entries:
        amt.set(index, value)
    new_root = amt.flush()
    report = RebuildReport("amt", root, new_root, len(entries))
    node_pos = 2 if legacy else 3
    _compare_trees(
        store, fresh, root, new_root, lambda r: r[node_pos], _amt_children, report
    )
    return report


def _hamt_node_pointers(node: Any, version: int, where: str) -> list[tuple[int, Any]]:
    """``(slot index, pointer)`` of a raw HAMT node, pointers unwrapped from the v0 layout."""
    bitfield = int.from_bytes(node[0], "big")
    indices = [i for i in range(bitfield.bit_length()) if bitfield >> i & 1]
    pointers = node[1]
    if len(indices) != len(pointers):
        raise HamtError("bitfield and pointer count differ", where)
    out: list[tuple[int, Any]] = []
    for idx, pointer in zip(indices, pointers, strict=True):
        if version == LAYOUT_V0 and isinstance(pointer, dict):
            pointer = pointer.get("0", pointer.get("1"))
        out.append((idx, pointer))
    return out


@dataclass(slots=True)
class PresentHamt:
    """What a store holds of a HAMT: the entries of its present nodes, the links to absent
    subtrees (with their slot paths), and the present nodes' bytes."""

    entries: list[tuple[bytes, Any]]
    absent: list[tuple[list[int], CID]]
    present: dict[CID, bytes]


def walk_present_hamt(store: Blockstore, root: CID, *, version: int = LAYOUT_V3) -> PresentHamt:
    """Walk every node of the HAMT at ``root`` that ``store`` holds; the root must be there."""
    walk = PresentHamt([], [], {})
    stack: list[tuple[CID, list[int]]] = [(root, [])]
    while stack:
        cid, path = stack.pop()
        data = store.get(cid)
        if data is None:
            if not path:
                raise BlockNotFound(cid)
            walk.absent.append((path, cid))
            continue
        walk.present[cid] = data
        where = f"HAMT node {cid}"
        for idx, pointer in _hamt_node_pointers(dag_cbor.decode(data, where), version, where):
            if isinstance(pointer, CID):
                stack.append((pointer, [*path, idx]))
            else:
                walk.entries.extend((entry[0], entry[1]) for entry in pointer)
    return walk


def rebuild_hamt(
    store: Blockstore,
    root: CID,
    *,
    bit_width: int = 5,
    seed: int = 0,
    version: int = LAYOUT_V3,
) -> RebuildReport:
    """Rebuild the HAMT at ``root`` from its entries in shuffled order and compare every node.

    ``version`` is the node layout (``store.hamt.LAYOUT_V3``, or ``LAYOUT_V0`` for actors v0-v2
    state such as the mainnet genesis). Subtrees absent from ``store`` are allowed: they are
    grafted as links at their slot paths, then every entry found in the present nodes is
    inserted in shuffled order. The result is exact: a subtree exists only
    where more than a bucket's worth of keys share its prefix, so every node above an absent
    one is a node in both trees, and everything else depends only on the present entries.
    Every present node must come back with identical bytes.
    """
    walk = walk_present_hamt(store, root, version=version)
    entries, absent, present = list(walk.entries), walk.absent, walk.present
    fresh = MemoryBlockstore()
    hamt = Hamt(fresh, None, bit_width=bit_width, version=version)
    for path, link in absent:
        hamt.graft_link(path, link)
    random.Random(seed).shuffle(entries)
    for key, value in entries:
        hamt.set(key, value)
    new_root = hamt.flush()
    report = RebuildReport("hamt", root, new_root, len(entries), absent_subtrees=len(absent))
    for cid, data in present.items():
        report.nodes_compared += 1
        if fresh.get(cid) != data:
            report.differences.append(f"node {cid} is not reproduced by the rebuild")
            if len(report.differences) >= 5:
                break
    return report
