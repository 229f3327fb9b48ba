"""Parsing of FVM conformance test vectors (``class: message``).

Layout, as filecoin-project/fvm-test-vectors and ref-fvm's ``testing/conformance`` define it:
``car`` is base64 of a gzipped CAR v1 with every block of the pre- and post-state;
``preconditions`` give the epoch, network version, state root, base fee and circulating supply;
``apply_messages`` are base64 DAG-CBOR messages; ``postconditions`` the expected state root and
one receipt per message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fvm.token import TOTAL_FILECOIN
from store.blockstore import MemoryBlockstore
from store.car import CarReader
from store.cid import CID
from store.errors import CIDError, MalformedInput

# ref-fvm's runner (testing/conformance/src/vm.rs) uses these when a vector omits them.
DEFAULT_BASE_FEE = 100


class VectorError(MalformedInput):
    """A test-vector file that does not follow the format."""


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    epoch: int
    network_version: int


@dataclass(frozen=True, slots=True)
class ExpectedReceipt:
    exit_code: int
    return_data: bytes
    gas_used: int


@dataclass(frozen=True, slots=True)
class ApplyMessage:
    data: bytes
    epoch_offset: int | None = None


@dataclass(frozen=True, slots=True)
class RandomnessMatch:
    """One recorded externs answer: ``kind`` is "chain" or "beacon", asked at ``epoch``.

    The vectors record the externs' raw per-epoch randomness (ref-fvm v3+ externs take only
    the epoch; domain separation and entropy are mixed in by the kernel).
    """

    kind: str
    epoch: int
    ret: bytes


@dataclass(slots=True)
class TestVector:
    path: Path
    id: str
    car: bytes
    variants: list[Variant]
    pre_state_root: CID
    post_state_root: CID
    base_fee: int
    circ_supply: int
    messages: list[ApplyMessage]
    receipts: list[ExpectedReceipt]
    randomness: list[RandomnessMatch] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    __test__ = False  # not a pytest test class

    def blockstore(self, *, verify: bool = True) -> MemoryBlockstore:
        """Every block of the vector's CAR, hash-checked unless ``verify`` is False."""
        reader = CarReader.from_bytes(self.car, verify=verify, source=f"{self.path} car")
        return MemoryBlockstore(reader)

    def car_roots(self) -> tuple[CID, ...]:
        return CarReader.from_bytes(self.car, source=f"{self.path} car").header.roots


def _cid_field(obj: Any, where: str) -> CID:
    if not isinstance(obj, dict) or "/" not in obj:
        raise VectorError("expected a {'/': cid} object", where)
    try:
        return CID.parse(obj["/"])
    except CIDError as exc:
        raise VectorError(f"bad CID: {exc.what}", where) from None


def _b64(text: Any, where: str) -> bytes:
    if text is None:
        return b""
    if not isinstance(text, str):
        raise VectorError("expected base64 text", where)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VectorError("invalid base64", where) from None


def parse_vector(doc: dict[str, Any], path: Path) -> TestVector:
    where = str(path)
    try:
        if doc.get("class") != "message":
            raise VectorError(f"unsupported vector class {doc.get('class')!r}", where)
        pre = doc["preconditions"]
        post = doc["postconditions"]
        variants = [
            Variant(str(v.get("id", "")), int(v["epoch"]), int(v["nv"]))
            for v in pre.get("variants", [])
        ]
        receipts = [
            ExpectedReceipt(
                int(r["exit_code"]), _b64(r.get("return"), f"{where} receipt"), int(r["gas_used"])
            )
            for r in post.get("receipts", [])
        ]
        messages = [
            ApplyMessage(_b64(m["bytes"], f"{where} message"), m.get("epoch_offset"))
            for m in doc.get("apply_messages", [])
        ]
        randomness = []
        for r in doc.get("randomness", []) or []:
            kind, epoch = r["on"]
            if kind not in ("chain", "beacon"):
                raise VectorError(f"unknown randomness kind {kind!r}", f"{where} randomness")
            randomness.append(
                RandomnessMatch(str(kind), int(epoch), _b64(r["ret"], f"{where} randomness"))
            )
        return TestVector(
            path=path,
            id=str(doc.get("_meta", {}).get("id", path.stem)),
            car=_b64(doc["car"], f"{where} car"),
            variants=variants,
            pre_state_root=_cid_field(pre["state_tree"]["root_cid"], f"{where} preconditions"),
            post_state_root=_cid_field(post["state_tree"]["root_cid"], f"{where} postconditions"),
            base_fee=int(pre.get("basefee") or DEFAULT_BASE_FEE),
            circ_supply=int(pre.get("circ_supply") or TOTAL_FILECOIN),
            messages=messages,
            receipts=receipts,
            randomness=randomness,
            raw=doc,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, VectorError):
            raise
        raise VectorError(f"missing or malformed field: {exc}", where) from None


def load_vector(path: str | Path) -> TestVector:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VectorError(f"cannot read vector: {exc}", str(path)) from None
    if not isinstance(doc, dict):
        raise VectorError("vector must be a JSON object", str(path))
    return parse_vector(doc, path)


def find_vectors(*roots: str | Path) -> Iterator[Path]:
    """Every ``*.json`` vector under the given files or folders, in sorted order."""
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
        else:
            yield from sorted(root.rglob("*.json"))
