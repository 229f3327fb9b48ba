"""Plumbing shared by the whole-node tests, so each of them states only its scenario and checks.

Four test modules run complete nodes on a devnet with one-second blocks: two in-process
(:mod:`test_node_integration`, :mod:`test_misbehaving_peer`, with
:class:`~node.filecoin_node.FilecoinNode`) and two as ``fvm-node`` processes
(:mod:`test_node_acceptance`, :mod:`test_node_crash_restart`, started with the process helpers
of ``fvm-node devnet demo`` in :mod:`node.devnet.demo`). They build the same devnet and node
settings, wait on conditions the same way, scrape ``/metrics`` as Prometheus text exposition,
and read a node's LMDB store read-only (a running node's committed transactions are visible to
readers in other processes) to walk its chain from the head down to genesis.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import lmdb
import trio
from prometheus_client.parser import text_string_to_metric_families

from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from config.settings import CHAIN_DIR, NodeSettings, load_settings
from node.devnet.demo import start_cli_process, stop_processes, wait_for_listen_address
from node.devnet.layout import Devnet, init_devnet
from node.filecoin_node import FilecoinNode, ProgressLine
from store.chain_index import ExecutionResult
from store.lmdb_blockstore import LmdbBlockstore

BLOCK_TIME: Final = 1
"""Seconds between devnet blocks: short, so that a test sees many epochs in a minute."""
LOOPBACK_ANY_PORT: Final = "127.0.0.1:0"
"""Where nodes serve metrics: any free loopback port, so tests can run side by side."""
# The timeouts are generous: two cores are shared with other test runs.
WAIT_TIMEOUT: Final = 40.0
"""How long an in-process condition may take to come true."""
START_TIMEOUT: Final = 120.0
"""How long a process may take to log a line (startup includes loading the actors bundle)."""
STOP_TIMEOUT: Final = 30.0
"""How long a signalled process may take to exit before it is killed."""
SETTLE_TIMEOUT: Final = 90.0
"""How long node processes may take to reach a height or agree on a head."""
POLL_SECONDS: Final = 0.05
LOG_TAIL_CHARS: Final = 3000
"""How much of a process's log an assertion message quotes."""


# -- devnet and in-process nodes ----------------------------------------------------------------


def one_second_devnet(tmp_path: Path, actors_dir: Path, seed: bytes) -> Devnet:
    """The two-account devnet with 1 s blocks each whole-node test module runs its nodes on."""
    return init_devnet(
        tmp_path / "devnet",
        accounts=2,
        block_delay_secs=BLOCK_TIME,
        seed=seed,
        actors_dir=actors_dir,
    )


def producer_settings(devnet: Devnet) -> NodeSettings:
    """The devnet producer's settings, with no bootstrap peers and metrics on a free port."""
    return load_settings(
        None,
        env={},
        overrides={
            "network": "devnet",
            "data_dir": str(devnet.producer_dir),
            "genesis": str(devnet.genesis_path),
            "devnet.block_delay_secs": BLOCK_TIME,
            "bootstrap": (),
            "metrics": LOOPBACK_ANY_PORT,
        },
    )


def follower_settings(devnet: Devnet, data_dir: Path, *bootstrap: str) -> NodeSettings:
    """A syncing node's settings from the devnet's ``node.toml``, its store in ``data_dir``."""
    return load_settings(
        devnet.node_settings_path,
        env={},
        overrides={"data_dir": str(data_dir), "bootstrap": bootstrap, "metrics": LOOPBACK_ANY_PORT},
    )


def quiet() -> ProgressLine:
    """No progress line: in-process nodes would otherwise draw on the test's terminal."""
    return ProgressLine(enabled=False)


async def wait_until(
    what: str,
    condition: Callable[[], bool],
    *,
    timeout: float = WAIT_TIMEOUT,
    poll: float = POLL_SECONDS,
) -> None:
    """Poll ``condition`` while in-process nodes run; a timeout names ``what`` was awaited."""
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(poll)
        return
    raise AssertionError(f"timed out waiting for {what}")


def results(node: FilecoinNode, up_to: int) -> Iterator[tuple[int, ExecutionResult | None]]:
    """Height and execution results of each tipset up to ``up_to`` on an in-process node's head
    chain: equal results at every height mean two nodes computed the same state."""
    store = node.chain_store
    head = store.heaviest()
    assert head is not None
    for height in range(up_to + 1):
        tipset = store.tipset_at_height(height, head)
        yield tipset.height, store.index.execution_result(tipset.key.to_bytes())


def scrape(url: str) -> dict[str, float]:
    """Every sample of the exposition at ``url``, keyed ``name`` or ``name{k=v,...}``; the
    parser raises on anything that is not Prometheus text exposition."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


# -- node processes -----------------------------------------------------------------------------


@dataclass
class CliProcess:
    """An ``fvm-node`` command running as a child process, its output in ``log``."""

    name: str
    process: subprocess.Popen[str]
    log: Path

    def text(self) -> str:
        """The log so far (the process may be writing it)."""
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        """The end of the log, for assertion messages."""
        return self.text()[-LOG_TAIL_CHARS:]

    def assert_running(self, context: str) -> None:
        """Fail with the log's tail if the process has exited."""
        if self.process.poll() is not None:
            raise AssertionError(
                f"{context}: {self.name} exited {self.process.returncode}:\n{self.tail()}"
            )

    def wait_for_log(
        self,
        pattern: re.Pattern[str],
        context: str,
        *,
        timeout: float = START_TIMEOUT,
        poll: float = POLL_SECONDS,
    ) -> re.Match[str]:
        """The first match of ``pattern`` in the log, once the process has written it."""
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.text())) is None:
            self.assert_running(context)
            assert time.monotonic() < deadline, (
                f"{context}: {self.name} did not log {pattern.pattern!r}:\n{self.tail()}"
            )
            time.sleep(poll)
        return match

    def listen_address(self, timeout: float = START_TIMEOUT) -> str:
        """The loopback multiaddr the node logs once it listens."""
        return wait_for_listen_address(self.log, self.process, timeout, self.name)

    def stop(self, stop_signal: signal.Signals, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send ``stop_signal`` unless the process has exited and wait for it: its exit status,
        or None when it outlived ``timeout`` and was killed."""
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


@dataclass
class NodeProcess(CliProcess):
    """A node process and the folder of its store, which tests read while it runs."""

    data_dir: Path


class CliProcesses:
    """Every process a test started, logging to ``logs``; :meth:`stop_all` ends the stragglers."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[CliProcess] = []

    def start(self, name: str, arguments: list[str]) -> CliProcess:
        """``fvm-node ARGUMENTS``, logging to ``name.log``."""
        log = self.logs / f"{name}.log"
        started = CliProcess(name, start_cli_process(arguments, log), log)
        self.started.append(started)
        return started

    def producer(self, devnet: Devnet, *options: str) -> tuple[NodeProcess, str]:
        """``devnet run`` with ``options``, and its listen address once it logs one."""
        arguments = ["devnet", "run", "--dir", str(devnet.root), *options]
        node = self._start_node("producer", arguments, devnet.producer_dir)
        return node, node.listen_address()

    def follower(
        self, name: str, devnet: Devnet, data_dir: Path, producer: str, *options: str
    ) -> NodeProcess:
        """``run`` with the devnet's ``node.toml``, bootstrapped from ``producer``."""
        config = str(devnet.node_settings_path)
        arguments = ["run", "--config", config, "--data", str(data_dir), "--bootstrap", producer]
        return self._start_node(name, [*arguments, *options], data_dir)

    def stop_all(self) -> None:
        """SIGTERM whatever still runs, then SIGKILL what does not exit in time."""
        stop_processes([started.process for started in self.started])

    def _start_node(self, name: str, arguments: list[str], data_dir: Path) -> NodeProcess:
        log = self.logs / f"{name}.log"
        node = NodeProcess(name, start_cli_process(arguments, log), log, data_dir)
        self.started.append(node)
        return node


@contextmanager
def cli_processes(tmp_path: Path) -> Iterator[CliProcesses]:
    """A test's processes, logging under ``tmp_path/logs``, all stopped when the block exits."""
    logs = tmp_path / "logs"
    logs.mkdir()
    started = CliProcesses(logs)
    try:
        yield started
    finally:
        started.stop_all()


# -- stores of node processes -------------------------------------------------------------------


@contextmanager
def open_store(data_dir: Path) -> Iterator[ChainStore | None]:
    """A node's chain store opened read-only, or None while the node has not created it."""
    try:
        blockstore = LmdbBlockstore(data_dir / CHAIN_DIR, readonly=True)
    except lmdb.Error:
        yield None
        return
    try:
        try:
            store = ChainStore(blockstore)
        except lmdb.NotFoundError:
            # Killed between creating the environment and creating the index tables.
            yield None
            return
        yield store
    finally:
        blockstore.close()


def stored_head(data_dir: Path) -> TipSet | None:
    """The head a node's store holds now, or None when it holds none yet."""
    with open_store(data_dir) as store:
        return None if store is None else store.heaviest()


def agreed_head(nodes: list[NodeProcess]) -> TipSet | None:
    """The head every node's store holds now, or None while they differ or hold none."""
    heads = [stored_head(node.data_dir) for node in nodes]
    keys = {None if head is None else head.key for head in heads}
    return heads[0] if len(keys) == 1 else None


def tipsets_to_genesis(store: ChainStore, head: TipSet) -> Iterator[TipSet]:
    """``head``, its parent, and so on down to the tipset at height 0."""
    tipset = head
    yield tipset
    while tipset.height > 0:
        tipset = store.get_tipset(tipset.parents)
        yield tipset
