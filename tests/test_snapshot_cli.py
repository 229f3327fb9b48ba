"""``fvm-node import`` / ``export`` on the real mainnet genesis CAR (itself a snapshot whose root
is the genesis tipset): the round trip through the command line, and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import zstandard
from click.testing import CliRunner

from chainsync.chain_store import ChainStore
from config.settings import CHAIN_DIR
from node.snapshot_commands import export_command, import_command
from store.lmdb_blockstore import LmdbBlockstore

MAINNET_GENESIS_CID = "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"


def _head(data: Path) -> str:
    with LmdbBlockstore(data / CHAIN_DIR) as blockstore:
        head = ChainStore(blockstore).heaviest()
    assert head is not None
    return str(head.key)


def test_import_then_export_then_import_gives_the_same_head(
    mainnet_genesis: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    first = runner.invoke(import_command, [str(mainnet_genesis), "--data", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert "1222 blocks" in first.output and "epoch 0" in first.output
    assert MAINNET_GENESIS_CID in _head(tmp_path / "a")

    out = tmp_path / "exported.car.zst"
    exported = runner.invoke(
        export_command, ["--data", str(tmp_path / "a"), "--out", str(out), "--state-roots", "1"]
    )
    assert exported.exit_code == 0, exported.output
    assert out.is_file() and "1 headers" in exported.output

    second = runner.invoke(import_command, [str(out), "--data", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    assert _head(tmp_path / "b") == _head(tmp_path / "a")


def test_a_truncated_snapshot_is_one_error_line_and_leaves_the_head(
    mainnet_genesis: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    data = tmp_path / "node"
    raw = zstandard.ZstdDecompressor().stream_reader(mainnet_genesis.open("rb")).read()
    truncated = tmp_path / "truncated.car"
    truncated.write_bytes(raw[: len(raw) // 2])

    refused = runner.invoke(import_command, [str(truncated), "--data", str(data)])
    assert refused.exit_code == 2
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "offset" in lines[0]

    complete = tmp_path / "complete.car"
    complete.write_bytes(raw)
    finished = runner.invoke(import_command, [str(complete), "--data", str(data)])
    assert finished.exit_code == 0, finished.output
    assert MAINNET_GENESIS_CID in _head(data)


def test_export_without_a_data_directory_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        export_command, ["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x.car")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: no node data directory at {tmp_path / 'missing'}"
