"""Reading and writing an actor instance's linear memory from syscall handlers.

Every syscall passes its inputs as (offset, length) pairs into the actor's exported memory and
gets its outputs written back the same way. ref-fvm's ``Memory`` (``fvm/src/syscalls/
context.rs``) checks every range against the memory's current length and fails the syscall with
``IllegalArgument`` when it does not fit; :class:`GuestMemory` does the same, raising
:class:`GuestMemoryError`, a :class:`~fvm.syscalls.abi.SyscallError` with that number.

Access goes through the raw pointer of the wasmtime memory (the C API's
``wasmtime_memory_data``) and :mod:`ctypes` copies: measured on the project machine, one copy in
or out costs well under a microsecond this way, several times less than the binding's
``Memory.read``/``Memory.write``, which re-fetch the pointer and check types on every call. The
pointer moves when the memory grows, so :meth:`GuestMemory.refresh` reloads it; the runtime
calls it on every entry into the host, and wasm cannot run (so cannot grow the memory) while a
syscall handler runs.
"""

from __future__ import annotations

import ctypes
from typing import Final

import wasmtime
from wasmtime import _ffi

from fvm.address import Address
from fvm.syscalls.abi import ErrorNumber, ResultLayout, SyscallError
from store.cid import CID
from store.errors import MalformedInput

# The longest binary CID ref-fvm reads: four varints of at most 10 bytes and a 64-byte digest.
MAX_CID_READ: Final = 4 * 10 + 64

# Private function objects (``CDLL[name]`` makes a new one) so that their return types can be
# plain addresses without touching the binding's own declarations.
_memory_data = _ffi.dll["wasmtime_memory_data"]
_memory_data.restype = ctypes.c_void_p
_memory_data.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_memory_data_size = _ffi.dll["wasmtime_memory_data_size"]
_memory_data_size.restype = ctypes.c_size_t
_memory_data_size.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

_string_at = ctypes.string_at
_memmove = ctypes.memmove


def store_context_address(store: wasmtime.Store) -> int:
    """The address of a store's ``wasmtime_context_t`` (the same one host calls receive)."""
    address = ctypes.cast(store._context(), ctypes.c_void_p).value
    assert address is not None
    return address


class GuestMemoryError(SyscallError):
    """A range outside the actor's memory, or bytes there that are not what was asked for."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorNumber.ILLEGAL_ARGUMENT, message)


class GuestMemory:
    """One instance's exported linear memory (ref-fvm ``Memory``), bounds-checked.

    ``base`` and ``size`` are the memory's address and length in bytes as of the last
    :meth:`refresh`.
    """

    __slots__ = ("_context", "_memory", "_memory_address", "_store", "base", "size")

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        # Both are kept so that the raw addresses below stay valid.
        self._store = store
        self._context = store_context_address(store)
        self._memory = memory
        self._memory_address = ctypes.addressof(memory._memory)
        self.base = 0
        self.size = 0
        self.refresh()

    def refresh(self) -> int:
        """Reload the memory's address and length (after wasm ran); return the length."""
        self.base = _memory_data(self._context, self._memory_address) or 0
        self.size = _memory_data_size(self._context, self._memory_address)
        return self.size

    # -- reads -------------------------------------------------------------------------------

    def check_bounds(self, offset: int, length: int) -> None:
        """ref-fvm ``check_bounds``: ``offset..offset+length`` must lie within the memory."""
        if offset + length > self.size:
            raise GuestMemoryError(f"buffer {offset} (length {length}) out of bounds")

    def read(self, offset: int, length: int) -> bytes:
        """A copy of ``length`` bytes at ``offset`` (ref-fvm ``try_slice``)."""
        if offset + length > self.size:
            raise GuestMemoryError(f"buffer {offset} (length {length}) out of bounds")
        return _string_at(self.base + offset, length)

    def read_u32(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 4), "little")

    def read_u64(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 8), "little")

    def read_i64(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 8), "little", signed=True)

    def read_cid(self, offset: int) -> CID:
        """The binary CID at ``offset`` (ref-fvm ``read_cid``).

        As the reference, the CID may run to the end of memory, and no length is given: the
        CID's own varints say where it ends.
        """
        if offset > self.size:
            raise GuestMemoryError(f"cid at offset {offset} is out of bounds")
        window = _string_at(self.base + offset, min(self.size - offset, MAX_CID_READ))
        try:
            cid, _ = CID.read_bytes(window)
        except MalformedInput as exc:
            raise GuestMemoryError(f"failed to parse cid: {exc.what}") from None
        return cid

    def read_address(self, offset: int, length: int) -> Address:
        """The binary address in ``offset..offset+length`` (ref-fvm ``read_address``)."""
        data = self.read(offset, length)
        try:
            return Address.from_bytes(data)
        except MalformedInput as exc:
            raise GuestMemoryError(f"invalid address: {exc.what}") from None

    # -- writes ------------------------------------------------------------------------------

    def write(self, offset: int, data: bytes) -> None:
        """Copy ``data`` to ``offset`` (ref-fvm ``try_slice_mut`` then a copy)."""
        length = len(data)
        if offset + length > self.size:
            raise GuestMemoryError(f"buffer {offset} (length {length}) out of bounds")
        _memmove(self.base + offset, data, length)

    def write_cid(self, cid: CID, offset: int, length: int) -> int:
        """Write ``cid`` into the buffer ``offset..offset+length``; return the CID's length.

        ref-fvm ``write_cid``: the buffer must lie in memory (``IllegalArgument``) and hold
        the CID (``BufferTooSmall``).
        """
        self.check_bounds(offset, length)
        raw = cid.to_bytes()
        if len(raw) > length:
            raise SyscallError(ErrorNumber.BUFFER_TOO_SMALL, "cid output buffer is too small")
        _memmove(self.base + offset, raw, len(raw))
        return len(raw)

    def fits(self, offset: int, layout: ResultLayout) -> bool:
        """Whether a syscall result of ``layout`` fits at the out-pointer ``offset``."""
        return offset <= self.size and self.size - offset >= layout.size

    def write_result(self, offset: int, layout: ResultLayout, value: object) -> None:
        """Write a syscall's result through its out-pointer (the caller checked :meth:`fits`)."""
        data = layout.pack(value)
        _memmove(self.base + offset, data, len(data))
