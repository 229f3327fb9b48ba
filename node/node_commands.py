"""The ``fvm-node run`` and ``fvm-node devnet init|run|load`` commands.

Each command turns its options into :class:`config.settings.NodeSettings` (through
:func:`config.settings.load_settings`, so a bad value is reported the same way wherever it came
from) or a devnet directory (:mod:`node.devnet.layout`), then runs the trio program. Errors an
operator can act on are one line on stderr and exit status 2.

SIGINT (Ctrl-C) and SIGTERM stop a command the same way: the signal is received by a trio task
(``trio.open_signal_receiver``) that logs "stopping on SIGTERM" (or SIGINT) and cancels the
command, so every ``async with`` unwinds (libp2p host, metrics exporter, LMDB store closed) and
the process exits with status 0, as a service manager's ``stop`` expects. Trio's own Ctrl-C
handling would instead raise ``KeyboardInterrupt`` inside the node's nurseries, where it arrives
wrapped in an exception group and ends the process with a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any, Final, NoReturn

import click
import trio

from store.errors import FvmNodeError

MULTIADDR_HELP = "a libp2p multiaddr such as /ip4/127.0.0.1/tcp/1347"
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger(__name__)


def _fail(exc: BaseException) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # py-libp2p logs every dial and stream at INFO; only its warnings are of use to an operator.
    logging.getLogger("libp2p").setLevel(max(logging.WARNING, logging.getLevelName(level)))


async def _until_stopped(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` until it returns or a stop signal cancels it (its cleanup then runs)."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for number in signals:
                    logger.info("stopping on %s", signal.Signals(number).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            await main()
            nursery.cancel_scope.cancel()


def _run_trio(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` until it ends or SIGINT/SIGTERM (exit status 0); typed errors, alone or
    inside trio's exception groups, become one line and exit status 2."""
    try:
        trio.run(_until_stopped, main)
    except KeyboardInterrupt:
        # Ctrl-C before the signal receiver was installed.
        click.echo("stopped", err=True)
    except (FvmNodeError, OSError) as exc:
        _fail(exc)
    except BaseExceptionGroup as group:
        typed, rest = group.split((FvmNodeError, OSError))
        if typed is None or rest is not None:
            raise
        _fail(_first_leaf(typed))


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class _StopRequested(BaseException):
    """Raised in the main thread by the SIGTERM handler of a command that does not run trio;
    like ``KeyboardInterrupt`` it is no ``Exception``, so no ``except Exception`` swallows it."""


def _raise_stop_requested(number: int, _frame: FrameType | None) -> None:
    click.echo(f"stopping on {signal.Signals(number).name}", err=True)
    raise _StopRequested


def _build_settings(config_file: Path | None, overrides: dict[str, Any]) -> Any:
    from config.settings import load_settings

    try:
        return load_settings(config_file, overrides=overrides)
    except FvmNodeError as exc:
        _fail(exc)


@click.command("run")
@click.option("--network", default=None, help="mainnet, calibnet or devnet.")
@click.option(
    "--data",
    "data_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (chain store and libp2p identity).",
)
@click.option("--bootstrap", multiple=True, help=f"Peer to dial at start ({MULTIADDR_HELP}).")
@click.option("--listen", multiple=True, help=f"Address to listen on ({MULTIADDR_HELP}).")
@click.option("--metrics", default=None, help="Serve Prometheus metrics on HOST:PORT.")
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (options override it; see config/example.toml).",
)
def run_command(
    network: str | None,
    data_dir: Path | None,
    bootstrap: tuple[str, ...],
    listen: tuple[str, ...],
    metrics: str | None,
    config_file: Path | None,
) -> None:
    """Run a node that follows the chain: sync from peers, serve it, gossip blocks and messages."""
    from node.filecoin_node import FilecoinNode

    settings = _build_settings(
        config_file,
        {
            "network": network,
            "data_dir": None if data_dir is None else str(data_dir),
            "bootstrap": bootstrap or None,
            "listen": listen or None,
            "metrics": metrics,
        },
    )
    _setup_logging(settings.log_level)

    async def main() -> None:
        async with FilecoinNode(settings) as node:
            for address in node.listen_addrs():
                click.echo(f"listening on {address}")
            await node.serve_forever()

    _run_trio(main)


@click.group("devnet")
def devnet_group() -> None:
    """Make and run a local devnet (network version 18, actors v10)."""


@devnet_group.command("init")
@click.option(
    "--dir",
    "root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to create the devnet in.",
)
@click.option("--accounts", default=4, show_default=True, help="Funded accounts to create.")
@click.option("--block-time", default=4, show_default=True, help="Seconds per epoch.")
@click.option("--network-name", default="devnet", show_default=True, help="Network name.")
@click.option("--force", is_flag=True, help="Replace a devnet already in the directory.")
@click.option(
    "--actors",
    "actors_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with the actors bundle v10.tar.zst (default: the shared data directory).",
)
def devnet_init(
    root: Path,
    accounts: int,
    block_time: int,
    network_name: str,
    force: bool,
    actors_dir: Path | None,
) -> None:
    """Create keys, the genesis and devnet.toml in a directory."""
    from node.devnet.layout import init_devnet

    try:
        devnet = init_devnet(
            root,
            accounts=accounts,
            block_delay_secs=block_time,
            network_name=network_name,
            force=force,
            actors_dir=actors_dir,
        )
    except (FvmNodeError, OSError) as exc:
        _fail(exc)
    click.echo(f"devnet {devnet.network_name!r} in {root}")
    click.echo(f"  genesis     {devnet.genesis_cid} ({devnet.genesis_path})")
    click.echo(f"  block time  {devnet.block_delay_secs} s")
    click.echo(f"  miner       {devnet.miner} (worker {devnet.miner_worker.address})")
    for account in devnet.accounts:
        click.echo(
            f"  account     {account.address} f0{account.actor_id} ({account.key.kind.value})"
        )
    click.echo(f"start it with: fvm-node devnet run --dir {root}")


@devnet_group.command("run")
@click.option(
    "--dir",
    "root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The devnet directory (from devnet init).",
)
@click.option(
    "--listen",
    default="/ip4/127.0.0.1/tcp/0",
    show_default=True,
    help=f"Address to listen on ({MULTIADDR_HELP}).",
)
@click.option("--metrics", default=None, help="Serve Prometheus metrics on HOST:PORT.")
@click.option(
    "--block-time",
    default=None,
    type=int,
    help="Seconds per epoch (default: devnet.toml's; joining nodes must use the same).",
)
def devnet_run(root: Path, listen: str, metrics: str | None, block_time: int | None) -> None:
    """Run the devnet's block producer (its data lives in DIR/producer)."""
    from node.devnet.layout import load_devnet
    from node.filecoin_node import FilecoinNode

    try:
        devnet = load_devnet(root)
    except FvmNodeError as exc:
        _fail(exc)
    delay = devnet.block_delay_secs if block_time is None else block_time
    settings = _build_settings(
        None,
        {
            "network": "devnet",
            "data_dir": str(devnet.producer_dir),
            "genesis": str(devnet.genesis_path),
            "listen": (listen,),
            "bootstrap": (),
            "metrics": metrics,
            "devnet.block_delay_secs": delay,
        },
    )
    _setup_logging(settings.log_level)
    if delay != devnet.block_delay_secs:
        logging.getLogger(__name__).warning(
            "block time %d s differs from devnet.toml's %d s: joining nodes need the same",
            delay,
            devnet.block_delay_secs,
        )

    async def main() -> None:
        async with FilecoinNode(settings, producer=devnet) as node:
            for address in node.listen_addrs():
                click.echo(f"producer listening on {address}")
            await node.serve_forever()

    _run_trio(main)


@devnet_group.command("load")
@click.option(
    "--dir",
    "root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The devnet directory (its keys sign the messages).",
)
@click.option("--peer", required=True, help=f"A devnet node to submit to ({MULTIADDR_HELP}).")
@click.option("--count", default=50, show_default=True, help="Messages to submit.")
@click.option("--rate", default=5.0, show_default=True, help="Messages per second.")
def devnet_load(root: Path, peer: str, count: int, rate: float) -> None:
    """Submit a mix of signed messages over gossipsub: transfers (secp256k1 and BLS in turn),
    repeated multisig rounds (create, propose, approve), EVM counter contracts (deploy) and
    calls (increment) spread over them."""
    from node.devnet.layout import load_devnet
    from node.devnet.load_generator import LoadPlan, run_load

    if count < 1 or not rate > 0:
        _fail(ValueError("--count must be at least 1 and --rate positive"))
    try:
        devnet = load_devnet(root)
    except FvmNodeError as exc:
        _fail(exc)
    _setup_logging("INFO")

    async def main() -> None:
        summary = await run_load(devnet, peer, LoadPlan(count=count, rate=rate))
        click.echo(summary.describe())

    _run_trio(main)


@devnet_group.command("demo")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".devnet"),
    show_default=True,
    help="Devnet directory (re-initialised).",
)
@click.option("--block-time", default=2, show_default=True, help="Seconds per epoch.")
@click.option("--producer-metrics", default=9101, show_default=True, help="Producer port.")
@click.option(
    "--metrics",
    "follower_metrics",
    default=9102,
    show_default=True,
    help="Syncing node's metrics port.",
)
@click.option("--messages", default=60, show_default=True, help="Messages the load submits.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def devnet_demo(
    root: Path,
    block_time: int,
    producer_metrics: int,
    follower_metrics: int,
    messages: int,
    duration: float | None,
) -> None:
    """A producer, a syncing node and the load generator on loopback, with metrics."""
    from node.devnet.demo import DemoError, run_demo

    previous = signal.signal(signal.SIGTERM, _raise_stop_requested)
    try:
        run_demo(
            root,
            block_time=block_time,
            producer_metrics=producer_metrics,
            follower_metrics=follower_metrics,
            messages=messages,
            duration=duration,
            echo=click.echo,
        )
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    except _StopRequested:
        pass
    except (DemoError, FvmNodeError, OSError) as exc:
        _fail(exc)
    finally:
        signal.signal(signal.SIGTERM, previous)
