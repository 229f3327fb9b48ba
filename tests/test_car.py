"""CAR v1 files: reading the real genesis (zstd) and vector (gzip) CARs, byte-exact rewriting,
and typed errors that name the offset of truncated or corrupt input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
import zstandard

from fvm.conformance.vector import load_vector
from store.car import (
    CarReader,
    CarWriter,
    decompress_bytes,
    open_maybe_compressed,
    read_car,
    write_car,
)
from store.cid import CID, DAG_CBOR
from store.errors import BlockHashMismatch, CARError
from store.varint import encode_uvarint

GENESIS_CID = CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2")
SEND_VECTOR = "extracted/0001-shark-01/fil_9_account/Send/Ok/ext-0001-fil_9_account-Send-Ok-1.json"


def _genesis_car_bytes(path: Path) -> bytes:
    with open_maybe_compressed(path) as stream:
        return stream.read()


def _sections(car: bytes) -> list[int]:
    """The offset of every framed section (header first) in an uncompressed CAR."""
    offsets = []
    pos = 0
    while pos < len(car):
        offsets.append(pos)
        size = 0
        shift = 0
        while True:
            byte = car[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        pos += size
    assert pos == len(car)
    return offsets


def test_reads_mainnet_genesis_from_zstd(mainnet_genesis: Path) -> None:
    header, blocks = read_car(mainnet_genesis)
    assert header.roots == (GENESIS_CID,)
    assert header.version == 1
    assert len(blocks) == 1222
    assert sum(len(data) for _, data in blocks) == 1055730
    assert blocks[0][0] == GENESIS_CID
    assert all(cid.verify(data) for cid, data in blocks)


def test_reader_offset_counts_decompressed_bytes(mainnet_genesis: Path) -> None:
    raw = _genesis_car_bytes(mainnet_genesis)
    assert len(raw) == 1104195
    with open_maybe_compressed(mainnet_genesis) as stream:
        reader = CarReader(stream)
        assert reader.offset == _sections(raw)[1]
        count = sum(1 for _ in reader)
        assert reader.offset == len(raw)
    assert count == 1222


def test_reads_a_vector_gzip_car(vectors_dir: Path) -> None:
    vector = load_vector(vectors_dir / SEND_VECTOR)
    assert vector.car[:2] == b"\x1f\x8b"
    reader = CarReader.from_bytes(vector.car)
    assert reader.header.roots == (vector.pre_state_root, vector.post_state_root)
    blocks = list(reader)
    assert len(blocks) == 38
    assert all(cid.codec == DAG_CBOR for cid, _ in blocks)
    cids = {cid for cid, _ in blocks}
    assert vector.pre_state_root in cids
    assert vector.post_state_root in cids


def test_read_car_opens_gzip_files(vectors_dir: Path, tmp_path: Path) -> None:
    vector = load_vector(vectors_dir / SEND_VECTOR)
    path = tmp_path / "vector.car.gz"
    path.write_bytes(vector.car)
    header, blocks = read_car(path)
    assert header.roots == vector.car_roots()
    assert blocks == list(CarReader.from_bytes(vector.car))


def test_rewriting_genesis_reproduces_the_file_byte_for_byte(mainnet_genesis: Path) -> None:
    header, blocks = read_car(mainnet_genesis)
    out = io.BytesIO()
    write_car(out, header.roots, blocks)
    assert out.getvalue() == _genesis_car_bytes(mainnet_genesis)


def test_rewriting_a_vector_car_reproduces_its_bytes(vectors_dir: Path) -> None:
    vector = load_vector(vectors_dir / SEND_VECTOR)
    reader = CarReader.from_bytes(vector.car)
    out = io.BytesIO()
    write_car(out, reader.header.roots, reader)
    assert out.getvalue() == gzip.decompress(vector.car)


def test_write_then_read_round_trips_through_zstd(tmp_path: Path) -> None:
    blocks = [(CID.hash_of(bytes([0x80 + i % 24])), bytes([0x80 + i % 24])) for i in range(24)]
    roots = [blocks[0][0], blocks[5][0]]
    plain = io.BytesIO()
    writer = CarWriter(plain, roots)
    for cid, data in blocks:
        writer.write(cid, data)
    path = tmp_path / "round.car.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(plain.getvalue()))
    header, again = read_car(path)
    assert header.roots == tuple(roots)
    assert again == blocks
    assert decompress_bytes(path.read_bytes()) == plain.getvalue()


def test_truncated_section_names_its_offset(mainnet_genesis: Path) -> None:
    raw = _genesis_car_bytes(mainnet_genesis)
    offsets = _sections(raw)
    cut = offsets[100] + 10
    reader = CarReader(io.BytesIO(raw[:cut]), source="genesis")
    with pytest.raises(CARError, match="truncated CAR section") as raised:
        list(reader)
    assert raised.value.where == f"genesis offset {offsets[100]}"


def test_truncated_header_is_a_car_error(mainnet_genesis: Path) -> None:
    raw = _genesis_car_bytes(mainnet_genesis)
    with pytest.raises(CARError, match="truncated CAR header"):
        CarReader(io.BytesIO(raw[:20]))
    with pytest.raises(CARError, match="empty stream"):
        CarReader(io.BytesIO(b""))


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"\x80", "truncated varint"),
        (b"\x80\x00", "not minimally encoded"),
        (b"\xff" * 9, "longer than 9 bytes"),
        (b"\xff\xff\xff\x7f", "exceeds the limit"),
    ],
)
def test_bad_section_varint_names_its_offset(
    mainnet_genesis: Path, tail: bytes, message: str
) -> None:
    raw = _genesis_car_bytes(mainnet_genesis)
    reader = CarReader(io.BytesIO(raw + tail), source="genesis")
    with pytest.raises(CARError, match=message) as raised:
        list(reader)
    assert raised.value.where == f"genesis offset {len(raw)}"


def test_block_not_hashing_to_its_cid_names_its_offset(mainnet_genesis: Path) -> None:
    raw = bytearray(_genesis_car_bytes(mainnet_genesis))
    offsets = _sections(bytes(raw))
    raw[offsets[51] - 1] ^= 0x01  # the last byte of the 50th block
    reader = CarReader(io.BytesIO(bytes(raw)), source="genesis")
    with pytest.raises(BlockHashMismatch, match="do not hash to") as raised:
        list(reader)
    assert raised.value.where == f"genesis offset {offsets[50]}"
    unverified = list(CarReader(io.BytesIO(bytes(raw)), verify=False))
    assert len(unverified) == 1222


def test_section_with_bad_cid_names_its_offset() -> None:
    out = io.BytesIO()
    write_car(out, [GENESIS_CID], [])
    start = len(out.getvalue())
    section = b"\x02\x71\xa0\xe4\x02\x20" + bytes(32) + b"\x80"
    out.write(encode_uvarint(len(section)) + section)
    with pytest.raises(CARError, match="bad CID in section") as raised:
        list(CarReader(io.BytesIO(out.getvalue()), source="x.car"))
    assert raised.value.where == f"x.car offset {start}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\xa1\x67version\x02", "version 1"),
        (b"\x82\x01\x02", "version 1"),
        (b"\xa1\x67version\x01", "roots must be a list of CIDs"),
        (b"\xa2\x65roots\x81\x01\x67version\x01", "roots must be a list of CIDs"),
        (b"\xa3\x61x\x00\x65roots\x80\x67version\x01", "unexpected CAR header fields"),
        (b"\xa1\x67version\x18\x01", "not DAG-CBOR"),
    ],
)
def test_malformed_headers_are_car_errors(header: bytes, message: str) -> None:
    with pytest.raises(CARError, match=message):
        CarReader(io.BytesIO(encode_uvarint(len(header)) + header))


def test_corrupt_gzip_payload_is_a_car_error(vectors_dir: Path) -> None:
    vector = load_vector(vectors_dir / SEND_VECTOR)
    with pytest.raises(CARError, match="corrupt gzip"):
        CarReader.from_bytes(vector.car[: len(vector.car) // 2])
