"""The blocks an actor invocation holds open, by handle.

Actors never see the blockstore directly: every block they read (``ipld.block_open``), build
(``ipld.block_create``), receive as parameters or get back from a send lives in a per-invocation
registry and is referred to by a handle, a ``u32`` counted from 1 (0 means "no block"). This is
ref-fvm's ``BlockRegistry`` (``fvm/src/kernel/blocks.rs``):

* handles are never reused nor released; the registry refuses a block past ``i32::MAX`` of them
  (``LimitExceeded``);
* ref-fvm v2 (network versions 15-17) registers only DAG-CBOR blocks, v3 (18 on) also plain
  CBOR and raw ones; another codec is ``IllegalCodec``;
* an unknown handle is ``InvalidHandle``.
"""

from __future__ import annotations

from typing import Final

from fvm.invocation import Block
from fvm.syscalls.abi import ErrorNumber, SyscallError
from store.cid import CBOR, DAG_CBOR, RAW

FIRST_BLOCK_ID: Final = 1
MAX_BLOCKS: Final = (1 << 31) - 1  # i32::MAX

# The codecs each ref-fvm generation lets into the registry.
V2_BLOCK_CODECS: Final = frozenset({DAG_CBOR})
V3_BLOCK_CODECS: Final = frozenset({CBOR, DAG_CBOR, RAW})


class BlockRegistry:
    """An invocation's open blocks; ``allowed_codecs`` is the generation's codec set."""

    __slots__ = ("_allowed_codecs", "_blocks")

    def __init__(self, allowed_codecs: frozenset[int]) -> None:
        self._allowed_codecs = allowed_codecs
        self._blocks: list[Block] = []

    def __len__(self) -> int:
        return len(self._blocks)

    def is_full(self) -> bool:
        return len(self._blocks) == MAX_BLOCKS

    def put(self, block: Block) -> int:
        """Register ``block``; return its handle."""
        if self.is_full():
            raise SyscallError(ErrorNumber.LIMIT_EXCEEDED, "too many blocks have been written")
        if block.codec not in self._allowed_codecs:
            raise SyscallError(ErrorNumber.ILLEGAL_CODEC, "invalid or forbidden ipld codec")
        self._blocks.append(block)
        return FIRST_BLOCK_ID + len(self._blocks) - 1

    def get(self, block_id: int) -> Block:
        """The block behind ``block_id``."""
        index = block_id - FIRST_BLOCK_ID
        if index < 0 or index >= len(self._blocks):
            raise SyscallError(
                ErrorNumber.INVALID_HANDLE, f"block handle {block_id} does not exist, or is illegal"
            )
        return self._blocks[index]

    def stat(self, block_id: int) -> tuple[int, int]:
        """The codec and size of the block behind ``block_id``."""
        block = self.get(block_id)
        return block.codec, block.size
