"""Typed errors for malformed input.

Every decoder in the project raises a subclass of :class:`MalformedInput` for bad data from disk
or from peers, naming *what* was wrong and *where* (a byte offset, a CID, a file), so that the
node can log one clear line and penalise the source instead of crashing.
"""

from __future__ import annotations


class FvmNodeError(Exception):
    """Base of every error the project raises on purpose."""


class MalformedInput(FvmNodeError, ValueError):
    """Input bytes that do not decode to what they claim to be."""

    def __init__(self, what: str, where: str | None = None) -> None:
        self.what = what
        self.where = where
        super().__init__(f"{what} (at {where})" if where else what)


class VarintError(MalformedInput):
    """An unsigned LEB128 varint that is truncated, too long, or not minimally encoded."""


class CIDError(MalformedInput):
    """Bytes or a string that are not a valid CID."""


class CBORError(MalformedInput):
    """Bytes that are not valid DAG-CBOR as Filecoin accepts it."""


class NonCanonicalCBOR(CBORError):
    """Valid CBOR that is not in DAG-CBOR's canonical form (Filecoin rejects it)."""


class CARError(MalformedInput):
    """A CAR file or stream that is truncated or malformed."""


class BlockHashMismatch(MalformedInput):
    """A block whose bytes do not hash to the CID it was stored or sent under."""


class BlockNotFound(FvmNodeError, KeyError):
    """A CID that the blockstore does not hold."""

    def __init__(self, cid: object) -> None:
        self.cid = cid
        super().__init__(f"block not found: {cid}")

    def __str__(self) -> str:
        return f"block not found: {self.cid}"


class BitfieldError(MalformedInput):
    """An RLE+ bitfield that is not valid or not minimally encoded."""


class HamtError(MalformedInput):
    """A HAMT node that violates the structure's invariants."""


class AmtError(MalformedInput):
    """An AMT node that violates the structure's invariants."""
