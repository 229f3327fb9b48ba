"""``fvm-node devnet demo``: the whole product on loopback, for ``make run``.

It initialises a devnet, then starts three real processes talking libp2p over TCP on
127.0.0.1: the block producer (``devnet run``), a syncing node (``run``) bootstrapped from it,
and the load generator (``devnet load``); it prints both metrics URLs and, every few seconds, the
syncing node's head, lag and gas throughput read back from its own ``/metrics`` endpoint.
Ctrl-C, SIGTERM (or ``--duration``) stops all three, each with SIGTERM so it closes its store.
The process helpers here are also what the crash-and-restart test starts its nodes with.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

from node.devnet.layout import init_devnet

CLI: Final = (sys.executable, "-c", "from node.cli import main; main()")
LISTENING: Final = re.compile(r"listening on (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+)")
STOP_TIMEOUT_SECONDS: Final = 10.0


class DemoError(RuntimeError):
    """A demo process failed to start."""


def start_cli_process(arguments: Sequence[str], log: Path) -> subprocess.Popen[str]:
    """``fvm-node ARGUMENTS`` as a child process writing its output to ``log``."""
    with log.open("w") as handle:
        return subprocess.Popen(
            [*CLI, *arguments], stdout=handle, stderr=subprocess.STDOUT, text=True
        )


def wait_for_listen_address(
    log: Path, process: subprocess.Popen[str], timeout: float, name: str = "the producer"
) -> str:
    """The loopback multiaddr the node started as ``process`` reports in ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = LISTENING.search(log.read_text()) if log.exists() else None
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise DemoError(f"{name} exited early; see {log}")
        time.sleep(0.2)
    raise DemoError(f"{name} did not report a listening address in {timeout:.0f} s")


def stop_processes(
    processes: Sequence[subprocess.Popen[Any]], timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """SIGTERM every process still running, then SIGKILL those not gone within ``timeout``."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _sample(url: str) -> tuple[dict[str, float], str]:
    """The unlabelled samples of the node's ``/metrics`` by name, and its sync state (the
    ``fvmnode_sync_state`` enum member whose value is 1)."""
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    state = "?"
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fvmnode_sync_state":
                if sample.value == 1:
                    state = sample.labels["fvmnode_sync_state"]
            elif not sample.labels:
                values[sample.name] = sample.value
    return values, state


def run_demo(
    root: Path,
    *,
    block_time: int,
    producer_metrics: int,
    follower_metrics: int,
    messages: int,
    duration: float | None,
    echo: Callable[[str], None] = print,
) -> None:
    """Run producer, syncing node and load generator until Ctrl-C or ``duration`` seconds."""
    say = echo
    devnet = init_devnet(root, block_delay_secs=block_time, force=True)
    say(f"devnet {devnet.network_name!r} initialised in {root} (genesis {devnet.genesis_cid})")
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    processes: list[subprocess.Popen[str]] = []
    try:
        producer = start_cli_process(
            ["devnet", "run", "--dir", str(root), "--metrics", f"127.0.0.1:{producer_metrics}"],
            logs / "producer.log",
        )
        processes.append(producer)
        address = wait_for_listen_address(logs / "producer.log", producer, timeout=120)
        say(f"producer listening on {address}")
        processes.append(
            start_cli_process(
                [
                    "run",
                    "--config",
                    str(root / "node.toml"),
                    "--data",
                    str(root / "follower"),
                    "--bootstrap",
                    address,
                    "--metrics",
                    f"127.0.0.1:{follower_metrics}",
                ],
                logs / "follower.log",
            )
        )
        processes.append(
            start_cli_process(
                [
                    "devnet",
                    "load",
                    "--dir",
                    str(root),
                    "--peer",
                    address,
                    "--count",
                    str(messages),
                    "--rate",
                    "2",
                ],
                logs / "load.log",
            )
        )
        follower_url = f"http://127.0.0.1:{follower_metrics}/metrics"
        say(
            f"metrics: producer http://127.0.0.1:{producer_metrics}/metrics, "
            f"syncing node {follower_url}"
        )
        say(f"logs in {logs}; Ctrl-C stops the devnet")
        _report(follower_url, processes, duration, say)
    finally:
        stop_processes(processes)


def _report(
    url: str,
    processes: list[subprocess.Popen[str]],
    duration: float | None,
    say: Callable[[str], None],
) -> None:
    started = time.monotonic()
    last_gas = 0.0
    last_time = started
    while duration is None or time.monotonic() - started < duration:
        time.sleep(3)
        if processes[0].poll() is not None or processes[1].poll() is not None:
            raise DemoError("a devnet process exited; see the logs")
        try:
            values, state = _sample(url)
        except OSError:
            say("syncing node: starting ...")
            continue
        now = time.monotonic()
        gas = values.get("fvmnode_gas_used_total", 0.0)
        rate = (gas - last_gas) / (now - last_time)
        last_gas, last_time = gas, now
        say(
            f"syncing node: head {values.get('fvmnode_head_epoch', 0):.0f}, "
            f"lag {values.get('fvmnode_epoch_lag', 0):.0f}, state {state}, "
            f"{values.get('fvmnode_tipsets_applied_total', 0):.0f} tipsets applied, "
            f"{rate / 1e6:.1f} Mgas/s, peers {values.get('fvmnode_peers_connected', 0):.0f}"
        )
