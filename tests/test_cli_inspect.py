"""The ``fvm-node inspect`` commands on the real mainnet genesis and conformance vectors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from fvm.conformance.vector import find_vectors
from node.inspect_report import state_reports
from store import dag_cbor
from store.blockstore import MemoryBlockstore
from store.car import read_car, write_car
from store.cid import CID

GENESIS_CID = "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"
GENESIS_STATE_ROOT = "bafy2bzacech3yb7xlb7c57v2xh7rvmt4skeidk7z2g36llksaz4biflblbt24"


def fvm_node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from node.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_inspect_genesis_prints_the_cid_computed_from_the_block_bytes(
    mainnet_genesis: Path,
) -> None:
    result = fvm_node("inspect", "genesis", str(mainnet_genesis))
    assert result.returncode == 0, result.stderr
    assert f"genesis block: {GENESIS_CID} (computed from the block's bytes)" in result.stdout
    assert "re-encodes identically: yes" in result.stdout
    assert "height: 0" in result.stdout
    assert "timestamp: 1598306400 (2020-08-24T22:00:00+00:00)" in result.stdout
    assert f"parent state root: {GENESIS_STATE_ROOT}" in result.stdout


def test_inspect_car_counts_genesis_blocks_by_codec(mainnet_genesis: Path) -> None:
    result = fvm_node("inspect", "car", str(mainnet_genesis))
    assert result.returncode == 0, result.stderr
    assert f"roots: 1\n  {GENESIS_CID}" in result.stdout
    assert "blocks: 1222 " in result.stdout
    assert "  dag-cbor: 1212" in result.stdout
    assert "  raw: 10" in result.stdout


def test_inspect_state_verifies_the_mainnet_genesis_state(mainnet_genesis: Path) -> None:
    result = fvm_node("inspect", "state", str(mainnet_genesis), "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "actors: 37\n" in result.stdout
    assert "total balance: 2000000000.0 FIL" in result.stdout
    assert "fil/1/account" in result.stdout
    assert f"root {GENESIS_STATE_ROOT}" in result.stdout
    assert ": identical" in result.stdout


def test_inspect_state_verify_succeeds_on_every_vector_pre_and_post_state(
    vectors_dir: Path,
) -> None:
    checked = 0
    for path in find_vectors(vectors_dir):
        reports = list(state_reports(path, None, verify=True, seed=checked))
        assert [passed for _, passed in reports] == [True, True], path
        assert all(": identical" in text for text, _ in reports), path
        checked += 1
    assert checked == 309


def _mis_shaped_genesis(genesis: Path, out: Path) -> None:
    """The genesis state tree with one single-entry bucket pushed down into a child node of
    its own: readable, but not the canonical shape (ref-fvm folds it back into a bucket)."""
    header, blocks = read_car(genesis)
    store = MemoryBlockstore(blocks)
    genesis_block = dag_cbor.decode(store.get(header.roots[0]) or b"")
    state_root: CID = genesis_block[8]
    root_node = dag_cbor.decode(store.get(state_root) or b"")
    position, bucket = next(
        (i, p["1"]) for i, p in enumerate(root_node[1]) if "1" in p and len(p["1"]) == 1
    )
    key = bucket[0][0]
    digest = int.from_bytes(hashlib.sha256(key).digest(), "big")
    depth1_slot = (digest >> (256 - 10)) & 0x1F  # the second group of 5 hash bits
    child = [(1 << depth1_slot).to_bytes((depth1_slot // 8) + 1, "big"), [{"1": bucket}]]
    child_bytes = dag_cbor.encode(child)
    child_cid = CID.hash_of(child_bytes)
    root_node[1][position] = {"0": child_cid}
    root_bytes = dag_cbor.encode(root_node)
    root_cid = CID.hash_of(root_bytes)
    store.put_keyed(child_cid, child_bytes)
    store.put_keyed(root_cid, root_bytes)
    with out.open("wb") as f:
        write_car(f, [root_cid], store.items())


def test_inspect_state_verify_fails_and_names_the_node_on_a_mis_shaped_tree(
    mainnet_genesis: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "mis-shaped.car"
    _mis_shaped_genesis(mainnet_genesis, bad)
    result = fvm_node("inspect", "state", str(bad), "--verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DIFFERENT" in result.stdout
    assert "is not reproduced by the rebuild" in result.stdout
    assert "actors: 37\n" in result.stdout


def test_inspect_reports_malformed_input_as_one_line(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.car"
    truncated.write_bytes(b"\x3a\xa2\x65roots")
    result = fvm_node("inspect", "car", str(truncated))
    assert result.returncode == 2
    assert result.stderr.startswith("error: truncated CAR header")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("root", ["not-a-cid", "bafy"])
def test_inspect_state_rejects_a_bad_root_option(mainnet_genesis: Path, root: str) -> None:
    result = fvm_node("inspect", "state", str(mainnet_genesis), "--root", root)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --root:")
