"""Guest memory access with ref-fvm's bounds rules (``Memory::try_slice`` and friends)."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import given
from hypothesis import strategies as st

from fvm.address import Address
from fvm.engine.guest_memory import GuestMemory, GuestMemoryError
from fvm.syscalls.abi import IPLD_OPEN, U32, ErrorNumber, SyscallError
from store.cid import CID, RAW, SHA2_256

PAGE = 65536


def _memory(pages: int = 1) -> tuple[wasmtime.Store, wasmtime.Memory, GuestMemory]:
    store = wasmtime.Store()
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(pages, None)))
    return store, memory, GuestMemory(store, memory)


def test_writes_are_read_back_at_the_edges_of_memory() -> None:
    _, _, guest = _memory()
    assert guest.size == PAGE
    guest.write(0, b"\x01\x02\x03\x04")
    guest.write(PAGE - 3, b"end")
    assert guest.read(0, 4) == b"\x01\x02\x03\x04"
    assert guest.read(PAGE - 3, 3) == b"end"
    assert guest.read(PAGE, 0) == b""
    assert guest.read_u32(0) == 0x04030201


def test_little_endian_integers() -> None:
    _, _, guest = _memory()
    guest.write(8, (-2).to_bytes(8, "little", signed=True))
    assert guest.read_u64(8) == (1 << 64) - 2
    assert guest.read_i64(8) == -2


@pytest.mark.parametrize(
    ("offset", "length"), [(PAGE, 1), (PAGE - 1, 2), (PAGE + 1, 0), (0, PAGE + 1)]
)
def test_ranges_beyond_memory_are_illegal_arguments(offset: int, length: int) -> None:
    _, _, guest = _memory()
    with pytest.raises(GuestMemoryError) as raised:
        guest.read(offset, length)
    assert isinstance(raised.value, SyscallError)
    assert raised.value.number is ErrorNumber.ILLEGAL_ARGUMENT
    with pytest.raises(GuestMemoryError):
        guest.write(offset, bytes(length))
    with pytest.raises(GuestMemoryError):
        guest.check_bounds(offset, length)


@given(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1))
def test_bounds_match_rust_slice_get(offset: int, length: int) -> None:
    """``memory.get(offset..).and_then(|d| d.get(..length))`` succeeds iff the range fits."""
    size = 4 * PAGE
    fits_in_rust = offset <= size and length <= size - offset
    guest = _SIZED[size]
    if fits_in_rust:
        assert len(guest.read(offset, min(length, 64))) == min(length, 64)
        guest.check_bounds(offset, length)
    else:
        with pytest.raises(GuestMemoryError):
            guest.check_bounds(offset, length)


_STORE, _MEMORY, _GUEST = _memory(4)
_SIZED = {4 * PAGE: _GUEST}


def test_memory_growth_is_seen_after_refresh() -> None:
    store, memory, guest = _memory()
    guest.write(10, b"kept")
    memory.grow(store, 2)
    with pytest.raises(GuestMemoryError):
        guest.read(2 * PAGE, 4)
    assert guest.refresh() == 3 * PAGE
    guest.write(3 * PAGE - 4, b"tail")
    assert guest.read(3 * PAGE - 4, 4) == b"tail"
    assert guest.read(10, 4) == b"kept"


def test_a_cid_is_read_up_to_its_own_end_even_at_the_end_of_memory() -> None:
    _, _, guest = _memory()
    cid = CID.hash_of(b"block")
    raw = cid.to_bytes()
    guest.write(PAGE - len(raw), raw)
    assert guest.read_cid(PAGE - len(raw)) == cid
    guest.write(100, raw + b"trailing bytes are not part of it")
    assert guest.read_cid(100) == cid


def test_a_cid_cut_off_by_the_end_of_memory_is_an_illegal_argument() -> None:
    _, _, guest = _memory()
    raw = CID.hash_of(b"block", codec=RAW, mh_code=SHA2_256).to_bytes()
    guest.write(PAGE - len(raw) + 1, raw[:-1])
    with pytest.raises(GuestMemoryError):
        guest.read_cid(PAGE - len(raw) + 1)
    with pytest.raises(GuestMemoryError):
        guest.read_cid(PAGE)
    with pytest.raises(GuestMemoryError):
        guest.read_cid(PAGE + 1)


def test_cid_output_needs_room_in_memory_and_in_the_buffer() -> None:
    _, _, guest = _memory()
    cid = CID.hash_of(b"x")
    assert guest.write_cid(cid, 200, 100) == len(cid.to_bytes())
    assert guest.read(200, len(cid.to_bytes())) == cid.to_bytes()
    with pytest.raises(SyscallError) as raised:
        guest.write_cid(cid, 400, len(cid.to_bytes()) - 1)
    assert raised.value.number is ErrorNumber.BUFFER_TOO_SMALL
    with pytest.raises(GuestMemoryError):
        guest.write_cid(cid, PAGE - 10, 100)


def test_addresses_are_parsed_or_refused_as_illegal_arguments() -> None:
    _, _, guest = _memory()
    guest.write(0, Address.new_id(1234).to_bytes())
    assert guest.read_address(0, 3) == Address.new_id(1234)
    guest.write(16, b"\x09\x00")
    with pytest.raises(GuestMemoryError):
        guest.read_address(16, 2)


def test_results_fit_only_when_the_whole_value_lies_in_memory() -> None:
    _, _, guest = _memory()
    assert guest.fits(PAGE - 16, IPLD_OPEN)
    assert not guest.fits(PAGE - 15, IPLD_OPEN)
    assert not guest.fits(PAGE + 4, U32)
    guest.write_result(PAGE - 16, IPLD_OPEN, (0x71, 5, 300))
    assert IPLD_OPEN.unpack(guest.read(PAGE - 16, 16)) == (0x71, 5, 300)
