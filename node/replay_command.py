"""``fvm-node replay``: re-execute stored tipsets and check them against the chain.

The command is :func:`chainsync.replay.replay_range` (``--to head`` for everything up to the
head) with a line per epoch (``epoch E OK`` /
``epoch E MISMATCH state <computed> != <expected>``), a summary line (epochs, mismatches, gas,
gas/s, seconds) and the exit status an operator's script can test: 0 when every epoch agrees,
1 on any mismatch or failed execution, 2 for bad arguments or data it cannot open (one line on
stderr, as every ``fvm-node`` command reports errors). With ``--metrics HOST:PORT`` the
replay counters (``NodeMetrics.on_replay_epoch``) are served while it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click
import lmdb

from chainsync.replay import EpochResult, replay_range
from config.settings import parse_host_port
from metrics.exporter import MetricsExporter
from metrics.node_metrics import NodeMetrics
from node.version import node_version
from store.errors import FvmNodeError

EXIT_MISMATCH = 1
EXIT_USAGE = 2
TO_HEAD = "head"


class _OneLineUsageError(click.UsageError):
    """A usage error shown as a single ``error: …`` line (no usage banner)."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class _OneLineCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _OneLineUsageError(exc.format_message(), ctx) from None


class _HeightOrHead(click.ParamType[int | str, object]):
    """A height (a non-negative integer) or ``head``, kept as the string."""

    name = "HEIGHT|head"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | str:
        if value == TO_HEAD:
            return TO_HEAD
        try:
            height = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither a height nor {TO_HEAD!r}", param, ctx)
        if height < 0:
            self.fail(f"{height} is below 0", param, ctx)
        return height


def _metrics_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    if value is None:
        return None
    try:
        endpoint = parse_host_port(value)
    except ValueError as exc:
        message = f"{value!r} is not HOST:PORT: {exc}"
        raise click.BadParameter(message, param_hint="--metrics") from None
    return endpoint.host, endpoint.port


@click.command("replay", cls=_OneLineCommand)
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Node data directory (its chain/ LMDB store is opened read-only).",
)
@click.option("--from", "start", required=True, type=click.IntRange(min=0), help="First height.")
@click.option(
    "--to",
    "end",
    required=True,
    type=_HeightOrHead(),
    help=f"Last height, or {TO_HEAD} for the head's.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes to split the range over.",
)
@click.option(
    "--report",
    "report_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Write mismatch reports (epoch-<E>/) and replay.json here.",
)
@click.option("--network", default="devnet", show_default=True, help="Network preset.")
@click.option(
    "--actors",
    "actors_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of builtin-actors bundles (vN.tar.zst).",
)
@click.option(
    "--metrics",
    "metrics_address",
    default=None,
    callback=_metrics_option,
    help="Serve metrics on HOST:PORT.",
)
def replay_command(
    data_dir: Path,
    start: int,
    end: int | str,
    workers: int,
    report_dir: Path | None,
    network: str,
    actors_dir: Path | None,
    metrics_address: tuple[str, int] | None,
) -> None:
    """Re-execute the stored tipsets at heights FROM..TO and compare their results with what
    the chain records."""
    last = end if isinstance(end, int) else None
    if last is not None and last < start:
        raise _OneLineUsageError(f"--to {last} is below --from {start}")
    if not data_dir.is_dir():
        raise _OneLineUsageError(f"data directory {data_dir} does not exist")

    def show(result: EpochResult) -> None:
        click.echo(result.line())
        if result.report is not None:
            click.echo(f"  report: {result.report}")

    metrics = NodeMetrics(version=node_version(), network=network)
    exporter = None
    try:
        if metrics_address is not None:
            exporter = MetricsExporter(metrics.registry, *metrics_address)
            exporter.start()
            click.echo(f"metrics on {exporter.url}")
        summary = replay_range(
            data_dir,
            start,
            last,
            workers=workers,
            report_dir=report_dir,
            metrics=metrics,
            network=network,
            actors_dir=actors_dir,
            on_epoch=show,
        )
    except (FvmNodeError, OSError, lmdb.Error) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        if exporter is not None:
            exporter.stop()
    click.echo(summary.line())
    if not summary.ok:
        sys.exit(EXIT_MISMATCH)
