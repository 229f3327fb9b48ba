"""Issue 4: a syncing node killed with SIGKILL at random moments restarts from its stored head
and ends in the same state as a node never killed; SIGTERM and SIGINT stop a node cleanly.

Every node is a real ``fvm-node`` process on loopback TCP, started with the helpers of
``fvm-node devnet demo`` (:mod:`node.devnet.demo`): a devnet producer (block time 1 s) under a
modest ``devnet load``, a follower that is never killed, and a victim follower killed
:data:`KILLS` times and restarted after a random 0 to 3 s, so that it restarts a few epochs
behind and catches up by chain exchange. Half the kills (at random) come within 0.2 s of the
victim opening its store, while it catches up (fetching and executing the missed tipsets takes
about that long), the others 0.2 to 3 s after, while it follows gossip and executes each new
tipset. The moments come from a seeded ``random.Random``: the seed and the kills so far are in
every assertion message, and ``CRASH_TEST_SEED`` picks another seed.

After each kill the victim's LMDB store is opened read-only and checked: its head's chain is
stored down to genesis (headers, messages, index entries) and every tipset below the head has
execution results whose roots are what its child's header claims. The next run must resume from
exactly that head: the node logs the height of the head it opens the store at, and the
single-producer devnet stores one tipset per height (checked), so the height names the tipset.
At the end the producer is stopped with SIGTERM at a moment the three stores agree, and the
three chains must be identical tipset by tipset, execution result by execution result.

The other tests stop nodes (and ``devnet demo``) with SIGTERM or SIGINT, which must end them
with exit status 0 and a store that reopens at its head, and check the command runner of
:mod:`node.node_commands` in-process.
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
import trio
from node_harness import (
    BLOCK_TIME,
    LOG_TAIL_CHARS,
    POLL_SECONDS,
    SETTLE_TIMEOUT,
    STOP_TIMEOUT,
    CliProcess,
    CliProcesses,
    NodeProcess,
    agreed_head,
    cli_processes,
    one_second_devnet,
    open_store,
    stored_head,
    tipsets_to_genesis,
)

from chainsync.chain_types import TipSet, TipSetKey
from node import node_commands
from node.devnet.layout import Devnet
from node.filecoin_node import NodeError
from store.chain_index import ExecutionResult

KILLS: Final = 10
SEED: Final = int(os.environ.get("CRASH_TEST_SEED", "4242"))
CATCHING_UP_SECONDS: Final = (0.0, 0.2)
FOLLOWING_SECONDS: Final = (0.2, 3.0)
DOWN_SECONDS: Final = (0.0, 3.0)
LOAD_MESSAGES: Final = 30
LOAD_RATE: Final = 2.0
# How often a starting victim's log is read: the kill moments count from its resume line.
RESUME_POLL_SECONDS: Final = 0.005
# The producer is stopped only this long before its next block is due, so that it is stopped
# between blocks rather than between making a block and publishing it.
STOP_MARGIN_SECONDS: Final = 0.3

RESUMED: Final = re.compile(r"head tipset \{([^}]*)\}, genesis \S+, head (\d+)$", re.MULTILINE)
SYNC_STATE: Final = re.compile(r"sync state: \w+ -> (\w+)")
STOPPING: Final = "stopping on SIGTERM"
LOAD_SUMMARY: Final = re.compile(r"submitted \d+, on chain (\d+)")
DEMO_REPORT: Final = re.compile("syncing node: head")


# -- stores -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredChain:
    """A store's head chain: tipsets from the head down to genesis, and execution results."""

    head: TipSet
    tipsets: dict[int, TipSetKey]
    results: dict[int, ExecutionResult]


def check_store(data_dir: Path, genesis: TipSetKey, context: str) -> StoredChain | None:
    """Walk the stored head's chain to genesis, asserting that everything a restart needs is
    there; None when no head is stored yet."""
    with open_store(data_dir) as store:
        head = None if store is None else store.heaviest()
        if store is None or head is None:
            return None
        tipsets: dict[int, TipSetKey] = {}
        results: dict[int, ExecutionResult] = {}
        child: TipSet | None = None
        for tipset in tipsets_to_genesis(store, head):
            where = f"{context}: tipset {tipset.key} at height {tipset.height}"
            meta = store.index.tipset_meta(tipset.key.to_bytes())
            assert meta is not None, f"{where} is not in the index"
            assert (meta.height, meta.parents) == (tipset.height, tipset.parents.to_bytes()), where
            for header in tipset.blocks:
                store.get_block_messages(header)
            result = store.index.execution_result(tipset.key.to_bytes())
            if child is not None:
                assert tipset.height < child.height, f"{where}: not below its child"
                assert result is not None, f"{where} lies below the head but has no results"
                assert result.state_root == child.parent_state, f"{where}: state root"
                assert result.receipts_root == child.parent_message_receipts, f"{where}: receipts"
            if result is not None:
                results[tipset.height] = result
            tipsets[tipset.height] = tipset.key
            child = tipset
        assert tipset.key == genesis, f"{context}: the chain ends at {tipset.key}, not genesis"
        for height, key in tipsets.items():
            assert store.index.keys_at_height(height) == [key.to_bytes()], (
                f"{context}: more than one tipset stored at height {height}"
            )
        return StoredChain(head, tipsets, results)


# -- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    """The head the node logged on opening its store: its height and its blocks' CIDs."""

    height: int
    cids: tuple[str, ...]

    @classmethod
    def of(cls, head: TipSet) -> Resumed:
        return cls(head.height, tuple(str(cid) for cid in head.cids))


def wait_resumed(node: CliProcess, context: str) -> Resumed:
    """The head the node logged on opening its store."""
    resumed = node.wait_for_log(RESUMED, context, poll=RESUME_POLL_SECONDS)
    return Resumed(int(resumed.group(2)), tuple(resumed.group(1).split(",")))


def sync_state(node: CliProcess) -> str:
    states = SYNC_STATE.findall(node.text())
    return states[-1] if states else "starting"


def terminate(node: CliProcess, context: str) -> None:
    """SIGTERM: the node must exit 0 promptly after logging why."""
    code = node.stop(signal.SIGTERM)
    assert code is not None, f"{context}: {node.name} ignored SIGTERM"
    assert code == 0, f"{context}: {node.name} exited {code} on SIGTERM:\n{node.tail()}"
    assert_stopped_cleanly(node.text(), STOPPING, f"{context}: {node.name}")


def assert_stopped_cleanly(log: str, line: str, context: str) -> None:
    """``line`` logged once, and no traceback from the shutdown that followed it."""
    tail = log[-LOG_TAIL_CHARS:]
    assert log.count(line) == 1, f"{context}: {line!r} not logged once:\n{tail}"
    assert "Traceback" not in log.split(line)[1], f"{context}: shutdown failed:\n{tail}"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[CliProcesses]:
    with cli_processes(tmp_path) as started:
        yield started


@pytest.fixture
def devnet(tmp_path: Path, actors_dir: Path) -> Devnet:
    return one_second_devnet(tmp_path, actors_dir, seed=b"crash-restart")


def genesis_key(devnet: Devnet) -> TipSetKey:
    return TipSetKey((devnet.genesis_cid,))


def wait_for_height(node: NodeProcess, height: int, context: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        head = stored_head(node.data_dir)
        if head is not None and head.height >= height:
            return
        node.assert_running(context)
        assert time.monotonic() < deadline, f"{context}: {node.name} never reached {height}"
        time.sleep(POLL_SECONDS)


# -- the kill test ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """One kill, for the assertion messages: seconds alive after opening the store, the sync
    state last logged, the head stored, seconds down before the restart."""

    alive: float
    down: float
    state: str
    head: int

    def __str__(self) -> str:
        return f"alive {self.alive:.2f}s/{self.state}/head {self.head}/down {self.down:.2f}s"


def stop_producer_between_blocks(
    devnet: Devnet,
    producer: NodeProcess,
    followers: list[NodeProcess],
    min_height: int,
    context: str,
) -> None:
    """SIGTERM the producer once its head is above ``min_height``, both followers store that
    head and its next block is not due for a while: nothing it made can then be missing from
    the followers."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    nodes = [producer, *followers]
    while True:
        if (head := agreed_head(nodes)) is not None:
            due = devnet.genesis_timestamp + (head.height + 1) * BLOCK_TIME
            if head.height > min_height and time.time() < due - STOP_MARGIN_SECONDS:
                terminate(producer, context)
                return
        for node in nodes:
            node.assert_running(context)
        assert time.monotonic() < deadline, f"{context}: the nodes never agreed on a head"
        time.sleep(POLL_SECONDS / 5)


def test_a_follower_killed_ten_times_resumes_from_its_stored_head_and_ends_like_one_never_killed(
    devnet: Devnet, nodes: CliProcesses, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    genesis = genesis_key(devnet)
    genesis_head = Resumed(0, (str(devnet.genesis_cid),))
    producer, address = nodes.producer(devnet)
    load = nodes.start(
        "load",
        [
            *("devnet", "load", "--dir", str(devnet.root), "--peer", address),
            *("--count", str(LOAD_MESSAGES), "--rate", str(LOAD_RATE)),
        ],
    )
    steady_dir = tmp_path / "steady"
    steady = nodes.follower("steady", devnet, steady_dir, address)
    victim_dir = tmp_path / "victim"
    kills: list[Kill] = []
    before: StoredChain | None = None

    for run in range(KILLS):
        context = f"seed {SEED}, kill {run + 1} of {KILLS} (earlier: {[str(k) for k in kills]})"
        victim = nodes.follower(f"victim-{run}", devnet, victim_dir, address)
        resumed = wait_resumed(victim, context)
        expected = genesis_head if before is None else Resumed.of(before.head)
        assert resumed == expected, f"{context}: resumed at {resumed}, stored head {expected}"
        alive = rng.uniform(*(CATCHING_UP_SECONDS if rng.random() < 0.5 else FOLLOWING_SECONDS))
        time.sleep(alive)
        victim.assert_running(context)
        victim.stop(signal.SIGKILL)
        after = check_store(victim_dir, genesis, context)
        assert after is not None, f"{context}: the store lost its head"
        assert after.head.height >= expected.height, f"{context}: the head went back"
        if before is not None:
            assert after.tipsets[expected.height] == before.head.key, f"{context}: another chain"
        down = rng.uniform(*DOWN_SECONDS)
        kills.append(Kill(alive, down, sync_state(victim), after.head.height))
        before = after
        time.sleep(down)

    context = f"seed {SEED}, after {[str(k) for k in kills]}"
    victim = nodes.follower("victim-final", devnet, victim_dir, address)
    expected = genesis_head if before is None else Resumed.of(before.head)
    assert wait_resumed(victim, context) == expected, context
    assert load.process.wait(timeout=SETTLE_TIMEOUT) == 0, f"{context}: load:\n{load.tail()}"
    summary = LOAD_SUMMARY.search(load.text())
    assert summary is not None, f"{context}: load:\n{load.tail()}"
    on_chain = int(summary.group(1))
    # Every message of the load is in a tipset at or below the producer's head now; a tipset's
    # execution results are stored once its child is, so the chain compared must go above it.
    loaded = stored_head(devnet.producer_dir)
    assert loaded is not None, context

    followers = [steady, victim]
    stop_producer_between_blocks(devnet, producer, followers, loaded.height, context)
    final = check_store(devnet.producer_dir, genesis, context)
    assert final is not None
    for node in followers:
        terminate(node, context)
        chain = check_store(node.data_dir, genesis, f"{context}: {node.name}")
        assert chain is not None
        assert chain.head.key == final.head.key, f"{context}: {node.name} ends elsewhere"
        assert chain.tipsets == final.tipsets, f"{context}: {node.name}"
        below = {h: r for h, r in chain.results.items() if h < final.head.height}
        assert below == {h: r for h, r in final.results.items() if h < final.head.height}, (
            f"{context}: {node.name} computed other results"
        )
    applied = sum(result.messages_applied for result in final.results.values())
    assert applied == on_chain == LOAD_MESSAGES, f"{context}: {applied} messages applied"
    assert final.head.height > KILLS, context


# -- clean stops ----------------------------------------------------------------------------


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_node_stopped_by_a_signal_exits_0_and_reopens_at_the_head_it_stored(
    devnet: Devnet, nodes: CliProcesses, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    context = f"stopped with {stop_signal.name}"
    genesis = genesis_key(devnet)
    producer, address = nodes.producer(devnet)
    data_dir = tmp_path / "follower"
    follower = nodes.follower("follower", devnet, data_dir, address)
    wait_for_height(follower, 3, context)

    code = follower.stop(stop_signal)
    log = follower.text()
    assert code == 0, f"{context}: exit status {code}:\n{follower.tail()}"
    assert_stopped_cleanly(log, f"stopping on {stop_signal.name}", context)
    stored = check_store(data_dir, genesis, context)
    assert stored is not None and stored.head.height >= 3

    restarted = nodes.follower("restarted", devnet, data_dir, address)
    assert wait_resumed(restarted, context) == Resumed.of(stored.head)
    wait_for_height(restarted, stored.head.height + 1, context)
    terminate(restarted, context)
    terminate(producer, context)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_demo_on_sigterm_stops_its_three_processes_with_sigterm_and_exits_0(
    nodes: CliProcesses, tmp_path: Path
) -> None:
    root = tmp_path / "demo"
    demo = nodes.start(
        "demo",
        [
            *("devnet", "demo", "--dir", str(root), "--block-time", "1", "--messages", "5"),
            *("--producer-metrics", str(free_port()), "--metrics", str(free_port())),
        ],
    )
    demo.wait_for_log(DEMO_REPORT, "the demo")
    terminate(demo, "demo")
    for child in ("producer", "follower", "load"):
        log = (root / "logs" / f"{child}.log").read_text()
        if child == "load" and LOAD_SUMMARY.search(log):
            # The load ended before the demo was stopped: it must have ended cleanly.
            assert "Traceback" not in log, f"the demo's load failed:\n{log[-LOG_TAIL_CHARS:]}"
        else:
            assert_stopped_cleanly(log, STOPPING, f"the demo's {child}")


# -- the command runner in-process ------------------------------------------------------------


def test_sigterm_cancels_the_command_so_its_cleanup_runs_and_it_returns_normally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleaned_up: list[bool] = []

    async def main() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep(STOP_TIMEOUT)
        finally:
            cleaned_up.append(True)

    with caplog.at_level(logging.INFO, logger="node.node_commands"):
        node_commands._run_trio(main)
    assert cleaned_up == [True]
    assert [record.getMessage() for record in caplog.records] == [STOPPING]


def test_a_typed_error_raised_inside_a_nursery_is_one_line_and_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise NodeError("the store holds another chain")

    with pytest.raises(SystemExit) as exit_info:
        node_commands._run_trio(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: the store holds another chain\n"


def test_an_untyped_error_inside_a_nursery_is_not_hidden() -> None:
    async def main() -> None:
        async with trio.open_nursery():
            raise ZeroDivisionError

    with pytest.raises(BaseExceptionGroup) as group:
        node_commands._run_trio(main)
    assert group.group_contains(ZeroDivisionError)
