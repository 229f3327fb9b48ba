"""``fvm-node import FILE`` and ``fvm-node export``: chain snapshots in the CAR format Lotus and
Forest exchange (roots = the head tipset's block CIDs), as :mod:`node.snapshot_import` and
:mod:`node.snapshot_export` read and write them.

The data directory comes from ``--data``, else from the settings (``FVM_NODE_DATA_DIR``, then
the network's default folder); the store is its ``chain/`` folder, where ``fvm-node run`` and
``fvm-node replay`` look. Bad files
end in one ``error:`` line naming the offset or block, exit status 2, with the store unchanged.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from chainsync.chain_store import ChainStore
from config.settings import CHAIN_DIR, SettingsError, load_settings
from node.snapshot_export import ExportProgress, export_snapshot
from node.snapshot_import import ImportProgress, import_snapshot
from store.errors import FvmNodeError
from store.lmdb_blockstore import LmdbBlockstore


def _data_dir(data: Path | None, network: str | None) -> Path:
    try:
        settings = load_settings(overrides={"data_dir": data, "network": network})
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    return settings.data_dir


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Node data directory (default: the settings' data_dir).",
)
@click.option("--network", default=None, help="Network preset, for the default data directory.")
def import_command(file: Path, data: Path | None, network: str | None) -> None:
    """Stream a chain snapshot (.car, .car.zst) into the store and make its tipset the head.

    Every block is hash-checked and the header chain must link back to genesis; an interrupted
    import resumes where it stopped when run again on the same file.
    """
    data_dir = _data_dir(data, network)
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    size = file.stat().st_size
    try:
        with (
            LmdbBlockstore(data_dir / CHAIN_DIR) as blockstore,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[blocks]} blocks"),
                TimeElapsedColumn(),
                transient=True,
                disable=not sys.stderr.isatty(),
            ) as progress,
        ):
            task = progress.add_task("import", total=None, blocks=0)

            def report(step: ImportProgress) -> None:
                progress.update(task, completed=step.offset, blocks=step.blocks)

            result = import_snapshot(file, ChainStore(blockstore), report)
    except FvmNodeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    seconds = time.perf_counter() - started
    resumed = f", resumed after {result.resumed_from} blocks" if result.resumed_from else ""
    click.echo(
        f"imported {file.name} ({size} bytes) into {data_dir}: {result.blocks} blocks "
        f"({result.new_blocks} new, {result.batches_written} batches{resumed}), "
        f"{result.tipsets} tipsets, head {result.head.key} at epoch {result.head.height} "
        f"in {seconds:.1f} s"
    )


@click.command("export")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Node data directory (default: the settings' data_dir).",
)
@click.option("--network", default=None, help="Network preset, for the default data directory.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Snapshot file to write (.car, or .car.zst for zstd).",
)
@click.option(
    "--tipset",
    "epoch",
    type=int,
    default=None,
    help="Epoch of the tipset to export (default: the head).",
)
@click.option(
    "--state-roots",
    type=click.IntRange(min=1),
    default=900,
    show_default=True,
    help="Epochs whose messages and full state are included.",
)
@click.option(
    "--receipts",
    is_flag=True,
    default=False,
    help="Also include those epochs' message receipts (Lotus leaves them out).",
)
def export_command(
    data: Path | None,
    network: str | None,
    out: Path,
    epoch: int | None,
    state_roots: int,
    receipts: bool,
) -> None:
    """Write a chain snapshot: headers back to genesis, messages and state of the last N epochs.

    ``fvm-node import`` reads it back into an identical store.
    """
    data_dir = _data_dir(data, network)
    if not (data_dir / CHAIN_DIR).is_dir():
        click.echo(f"error: no node data directory at {data_dir}", err=True)
        sys.exit(2)
    started = time.perf_counter()
    try:
        with (
            LmdbBlockstore(data_dir / CHAIN_DIR) as blockstore,
            Progress(
                TextColumn("exporting"),
                TextColumn("{task.fields[blocks]} blocks"),
                TextColumn("down to epoch {task.fields[height]}"),
                TimeElapsedColumn(),
                transient=True,
                disable=not sys.stderr.isatty(),
            ) as progress,
        ):
            task = progress.add_task("export", total=None, blocks=0, height="-")

            def report(step: ExportProgress) -> None:
                progress.update(task, blocks=step.blocks, height=step.lowest_height)

            result = export_snapshot(
                ChainStore(blockstore),
                out,
                epoch,
                state_roots,
                include_receipts=receipts,
                progress=report,
            )
    except FvmNodeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    seconds = time.perf_counter() - started
    click.echo(
        f"exported {result.path}: head {result.head.key} at epoch {result.head.height}, "
        f"{result.blocks} blocks ({result.block_bytes} bytes), {result.headers} headers, "
        f"{result.state_roots} state roots in {seconds:.1f} s"
    )
