"""A write-back overlay blockstore: the FVM's buffer between execution and the node's store.

Message execution writes many intermediate blocks (every HAMT/AMT node of every transient state)
that are unreachable once a tipset's final state root is computed. Like ref-fvm's
``BufferedBlockstore`` (``fvm/src/blockstore/buffered.rs``), this store keeps every write in
memory, answers reads from the buffer first and then from the base store, and on
``flush(root)`` moves to the base store only the buffered blocks reachable from ``root``, in one
``put_many_keyed`` call.

The reachability walk is ported from the reference's ``take_reachable``/``scan_for_links``:

* links are followed only out of DAG-CBOR blocks that are *in the buffer* (a block missing from
  the buffer is assumed to be in the base store already, with all its children);
* fil-commitment (sealed/unsealed) CIDs are skipped; raw, CBOR and DAG-CBOR CIDs are accepted
  when hashed with untruncated blake2b-256 or with the identity hash; anything else is an error;
* identity-hashed DAG-CBOR CIDs are scanned for links inside their digest;
* the link scanner walks CBOR headers without building values and without canonical-form
  checks, so it accepts exactly what the reference's scanner accepts.

As in the reference, ``flush`` *moves* the reachable blocks out of the buffer and leaves the
unreachable ones in it; ``discard`` drops them and ``flush_all`` writes everything. Unlike the
reference, a failed flush leaves the buffer untouched (the reference has already removed the
blocks it walked before the error).
"""

from __future__ import annotations

from collections.abc import Iterable

from store.blockstore import Blockstore
from store.cid import (
    BLAKE2B_256,
    CBOR,
    CID,
    DAG_CBOR,
    FIL_COMMITMENT_SEALED,
    FIL_COMMITMENT_UNSEALED,
    IDENTITY,
    RAW,
)
from store.errors import CBORError, CIDError, MalformedInput, VarintError

_BLAKE2B_256_SIZE = 32
_CID_TAG = 42
_MAJOR_BYTES = 2
_MAJOR_TEXT = 3
_MAJOR_ARRAY = 4
_MAJOR_MAP = 5
_MAJOR_TAG = 6


class FlushError(MalformedInput):
    """A link reachable from the flushed root that the FVM cannot store (bad codec or hash)."""


def _read_header(data: bytes, pos: int, where: str) -> tuple[int, int, int]:
    """One CBOR item head at ``pos``: ``(major type, argument, offset after the head)``."""
    if pos >= len(data):
        raise CBORError("unexpected end of CBOR while scanning for links", where)
    first = data[pos]
    major = first >> 5
    low = first & 0x1F
    pos += 1
    if low < 24:
        return major, low, pos
    if low > 27:
        raise CBORError(f"invalid CBOR head 0x{first:02x} while scanning for links", where)
    size = 1 << (low - 24)
    end = pos + size
    if end > len(data):
        raise CBORError("unexpected end of CBOR while scanning for links", where)
    return major, int.from_bytes(data[pos:end], "big"), end


def scan_for_links(data: bytes, where: str = "block") -> list[CID]:
    """Every CID (tag 42) in one CBOR item, in encounter order, without decoding values.

    Mirrors ref-fvm's header-walking scanner: any head encoding is accepted, bytes after the
    item are ignored, and a link's bytes may carry trailing data after the CID.
    """
    out: list[CID] = []
    pos = 0
    remaining = 1
    while remaining > 0:
        major, arg, pos = _read_header(data, pos, where)
        if major in (_MAJOR_BYTES, _MAJOR_TEXT):
            if arg > len(data) - pos:
                raise CBORError("unexpected end of CBOR while scanning for links", where)
            pos += arg
        elif major == _MAJOR_TAG:
            if arg == _CID_TAG:
                major, arg, pos = _read_header(data, pos, where)
                if major != _MAJOR_BYTES:
                    raise CBORError("tag 42 must wrap a byte string", where)
                if arg > len(data) - pos:
                    raise CBORError("unexpected end of CBOR while scanning for links", where)
                if arg == 0 or data[pos] != 0:
                    raise CBORError("DAG-CBOR link does not start with the 0x00 prefix", where)
                try:
                    cid, _ = CID.read_bytes(data[pos + 1 : pos + arg])
                except (CIDError, VarintError) as exc:
                    raise CBORError(f"invalid link: {exc.what}", where) from None
                out.append(cid)
                pos += arg
            else:
                remaining += 1
        elif major == _MAJOR_ARRAY:
            remaining += arg
        elif major == _MAJOR_MAP:
            remaining += arg * 2
        remaining -= 1
    return out


def _check_flushable(cid: CID) -> bool:
    """False for CIDs the walk skips; raises for CIDs it rejects; True otherwise."""
    if cid.codec in (FIL_COMMITMENT_UNSEALED, FIL_COMMITMENT_SEALED):
        return False
    if cid.codec not in (RAW, DAG_CBOR, CBOR):
        raise FlushError(f"cid {cid} has unexpected codec ({cid.codec})", "flush")
    blake2b = cid.mh_code == BLAKE2B_256 and len(cid.digest) == _BLAKE2B_256_SIZE
    if not blake2b and cid.mh_code != IDENTITY:
        raise FlushError(
            f"cid {cid} has unexpected multihash (code={cid.mh_code}, len={len(cid.digest)})",
            "flush",
        )
    return True


class BufferedBlockstore:
    """Buffers writes in memory over ``base``; ``flush(root)`` writes back what ``root`` reaches.

    Not thread-safe, like the reference: one executor owns it.
    """

    def __init__(self, base: Blockstore) -> None:
        self._base = base
        self._buffer: dict[CID, bytes] = {}

    @property
    def base(self) -> Blockstore:
        return self._base

    def get(self, cid: CID) -> bytes | None:
        data = self._buffer.get(cid)
        return data if data is not None else self._base.get(cid)

    def has(self, cid: CID) -> bool:
        return cid in self._buffer or self._base.has(cid)

    def put_keyed(self, cid: CID, data: bytes) -> None:
        self._buffer[cid] = bytes(data)

    def put_many_keyed(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._buffer.update((cid, bytes(data)) for cid, data in blocks)

    def buffer_len(self) -> int:
        """How many blocks are buffered and not yet written to the base store."""
        return len(self._buffer)

    def reachable(self, root: CID) -> list[tuple[CID, bytes]]:
        """The buffered blocks reachable from ``root``, in the reference's walk order."""
        found: list[tuple[CID, bytes]] = []
        taken: set[CID] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            if not _check_flushable(cid):
                continue
            if cid.mh_code == IDENTITY:
                if cid.codec == DAG_CBOR:
                    stack.extend(scan_for_links(cid.digest, f"identity cid {cid}"))
                continue
            if cid in taken:
                continue
            data = self._buffer.get(cid)
            if data is None:
                continue
            taken.add(cid)
            if cid.codec == DAG_CBOR:
                stack.extend(scan_for_links(data, f"block {cid}"))
            found.append((cid, data))
        return found

    def flush(self, root: CID) -> int:
        """Move the buffered blocks reachable from ``root`` to the base store; return how many.

        Unreachable blocks stay buffered (see :meth:`discard`). Raises :class:`FlushError` for a
        reachable CID with a codec or hash the FVM never stores, and :class:`CBORError` for a
        reachable DAG-CBOR block whose links cannot be scanned; the buffer is then unchanged.
        """
        blocks = self.reachable(root)
        self._base.put_many_keyed(blocks)
        for cid, _ in blocks:
            del self._buffer[cid]
        return len(blocks)

    def flush_all(self) -> int:
        """Write every buffered block to the base store, reachable or not; return how many."""
        count = len(self._buffer)
        self._base.put_many_keyed(list(self._buffer.items()))
        self._buffer.clear()
        return count

    def discard(self) -> int:
        """Drop every buffered block without writing it; return how many were dropped."""
        count = len(self._buffer)
        self._buffer.clear()
        return count
