"""CAR v1 (content-addressed archive) streaming reader and writer.

Format: a varint-framed DAG-CBOR header ``{"roots": [CID…], "version": 1}`` followed by
varint-framed sections ``CID ‖ block bytes``. Files compressed with zstd or gzip are detected
by their magic bytes and decompressed while streaming, so mainnet snapshots never need to fit
in memory. Every block is checked against its CID unless the caller opts out.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import zstandard

from store import dag_cbor
from store.cid import CID
from store.errors import BlockHashMismatch, CARError, CBORError, CIDError, VarintError
from store.varint import encode_uvarint

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
# A section larger than this is refused: Filecoin blocks are far smaller (ref-fvm caps block
# size at 1 MiB; snapshots' largest blocks are a few MiB at most).
MAX_SECTION_SIZE = 32 << 20
MAX_HEADER_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class CarHeader:
    roots: tuple[CID, ...]
    version: int = 1


def open_maybe_compressed(path: str | Path) -> BinaryIO:
    """Open a file for streaming reads, transparently decompressing zstd or gzip."""
    raw = open(path, "rb")  # noqa: SIM115 - ownership passes to the returned stream
    magic = raw.read(4)
    raw.seek(0)
    if magic.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def decompress_bytes(data: bytes) -> bytes:
    """Decompress an in-memory zstd or gzip payload; other bytes are returned unchanged."""
    if data.startswith(ZSTD_MAGIC):
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        except zstandard.ZstdError as exc:
            raise CARError(f"corrupt zstd data: {exc}") from None
    if data.startswith(GZIP_MAGIC):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise CARError(f"corrupt gzip data: {exc}") from None
    return data


class CarReader:
    """Iterates over a CAR v1 stream's blocks after parsing its header.

    ``offset`` reports how many (decompressed) bytes have been consumed, for error messages
    and progress bars.
    """

    def __init__(self, stream: IO[bytes], *, verify: bool = True, source: str = "CAR") -> None:
        self._stream = stream
        self._verify = verify
        self._source = source
        self.offset = 0
        self.header = self._read_header()

    @classmethod
    def from_bytes(cls, data: bytes, *, verify: bool = True, source: str = "CAR") -> CarReader:
        try:
            raw = decompress_bytes(data)
        except CARError as exc:
            raise CARError(exc.what, source) from None
        return cls(io.BytesIO(raw), verify=verify, source=source)

    def _where(self, offset: int) -> str:
        return f"{self._source} offset {offset}"

    def _read_exact(self, size: int, what: str, start: int) -> bytes:
        try:
            data = self._stream.read(size)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise CARError(f"cannot read {what}: {exc}", self._where(start)) from None
        if len(data) != size:
            raise CARError(
                f"truncated {what}: wanted {size} bytes, got {len(data)}", self._where(start)
            )
        self.offset += size
        return data

    def _read_varint(self) -> int | None:
        """The next section length, or None at a clean end of stream."""
        start = self.offset
        value = 0
        shift = 0
        count = 0
        while True:
            try:
                byte_s = self._stream.read(1)
            except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
                raise CARError(f"cannot read section length: {exc}", self._where(start)) from None
            if not byte_s:
                if count == 0:
                    return None
                raise CARError("truncated varint", self._where(start))
            byte = byte_s[0]
            count += 1
            self.offset += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and count > 1:
                    raise CARError("varint is not minimally encoded", self._where(start))
                return value
            shift += 7
            if count >= 9:
                raise CARError("varint longer than 9 bytes", self._where(start))

    def _read_header(self) -> CarHeader:
        size = self._read_varint()
        if size is None:
            raise CARError("empty stream: no CAR header", self._where(0))
        if size == 0 or size > MAX_HEADER_SIZE:
            raise CARError(f"implausible CAR header length {size}", self._where(0))
        raw = self._read_exact(size, "CAR header", self.offset)
        try:
            header = dag_cbor.decode(raw)
        except CBORError as exc:
            raise CARError(f"CAR header is not DAG-CBOR: {exc.what}", self._where(0)) from None
        if not isinstance(header, dict) or header.get("version") != 1:
            raise CARError("CAR header must be a map with version 1", self._where(0))
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
            raise CARError("CAR header roots must be a list of CIDs", self._where(0))
        if set(header) != {"roots", "version"}:
            raise CARError(f"unexpected CAR header fields {sorted(header)}", self._where(0))
        return CarHeader(tuple(roots), 1)

    def __iter__(self) -> Iterator[tuple[CID, bytes]]:
        while True:
            start = self.offset
            size = self._read_varint()
            if size is None:
                return
            if size > MAX_SECTION_SIZE:
                raise CARError(f"section of {size} bytes exceeds the limit", self._where(start))
            section = self._read_exact(size, "CAR section", start)
            try:
                cid, pos = CID.read_bytes(section, 0)
            except (CIDError, VarintError) as exc:
                raise CARError(f"bad CID in section: {exc.what}", self._where(start)) from None
            data = section[pos:]
            if self._verify and not cid.verify(data):
                raise BlockHashMismatch(
                    f"block bytes do not hash to {cid}", self._where(start)
                )
            yield cid, data


def read_car(path: str | Path, *, verify: bool = True) -> tuple[CarHeader, list[tuple[CID, bytes]]]:
    """Read a whole (possibly compressed) CAR file into memory."""
    with open_maybe_compressed(path) as stream:
        reader = CarReader(stream, verify=verify, source=str(path))
        return reader.header, list(reader)


class CarWriter:
    """Writes a CAR v1 stream: header first, then blocks in the order given."""

    def __init__(self, stream: IO[bytes], roots: Iterable[CID]) -> None:
        self._stream = stream
        header = dag_cbor.encode({"roots": list(roots), "version": 1})
        stream.write(encode_uvarint(len(header)) + header)

    def write(self, cid: CID, data: bytes) -> None:
        raw = cid.to_bytes()
        self._stream.write(encode_uvarint(len(raw) + len(data)))
        self._stream.write(raw)
        self._stream.write(data)


def write_car(stream: IO[bytes], roots: Iterable[CID], blocks: Iterable[tuple[CID, bytes]]) -> None:
    writer = CarWriter(stream, roots)
    for cid, data in blocks:
        writer.write(cid, data)
