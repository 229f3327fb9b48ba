"""The ``fvm-node`` command line: one entry point for every operator task.

Errors the operator can act on (bad files, malformed data) are printed as one line naming what
and where, with a non-zero exit status; tracebacks are reserved for bugs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from node.node_commands import devnet_group, run_command
from node.replay_command import replay_command
from node.snapshot_commands import export_command, import_command
from store.errors import FvmNodeError

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """Turn the project's typed errors and OS errors into one line on stderr, exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (FvmNodeError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="fvm-node")
def main() -> None:
    """A Filecoin node embedding the Filecoin Virtual Machine."""


@main.group()
def inspect() -> None:
    """Decode and check CAR files, genesis blocks and state trees."""


@inspect.command("car")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_one_line_errors
def inspect_car(file: Path) -> None:
    """Roots, block count and counts by codec of a CAR file (.car, .car.zst, .car.gz)."""
    from node.inspect_report import car_summary

    click.echo(car_summary(file))


@inspect.command("genesis")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_one_line_errors
def inspect_genesis(file: Path) -> None:
    """Decode a genesis CAR's root block: its computed CID, height, timestamp, state root."""
    from node.inspect_report import genesis_summary

    click.echo(genesis_summary(file))


@inspect.command("state")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", "root", default=None, help="State root CID (default: from the file).")
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild the state-tree HAMT from its entries in shuffled order and check that the "
    "root and every node are byte-identical.",
)
@click.option("--seed", default=0, show_default=True, help="Shuffle seed for --verify.")
@_one_line_errors
def inspect_state(file: Path, root: str | None, verify: bool, seed: int) -> None:
    """Walk a state tree in a CAR or test-vector JSON: actors, balances, actor types."""
    from node.inspect_report import state_reports

    ok = True
    for text, passed in state_reports(file, root, verify=verify, seed=seed):
        click.echo(text)
        ok = ok and passed
    if not ok:
        sys.exit(1)


@main.command("conformance")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--actors",
    "actors_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of builtin-actors bundles (vN.tar.zst). Default: $FVM_NODE_SHARED/actors, or "
    "an 'actors' folder beside a parent of the first path.",
)
@_one_line_errors
def conformance(paths: tuple[Path, ...], actors_dir: Path | None) -> None:
    """Run FVM conformance vectors (files or folders of them) as ref-fvm's runner does."""
    from node.conformance_command import default_actors_dir, run_conformance

    if actors_dir is None:
        actors_dir = default_actors_dir(paths)
    summary = run_conformance(paths, actors_dir, click.echo)
    if summary.failed:
        sys.exit(1)


main.add_command(run_command)
main.add_command(devnet_group)
main.add_command(import_command)
main.add_command(export_command)
main.add_command(replay_command)
