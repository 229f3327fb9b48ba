"""Issue 4's acceptance run: a devnet producer and two syncing nodes as real processes on
loopback TCP, under a load of every message kind, for at least 50 epochs.

The three nodes are ``fvm-node devnet run`` and two ``fvm-node run`` processes (as ``fvm-node
devnet demo`` starts them), so each executes every tipset on its own interpreter instead of three
sharing one GIL; the load generator (:func:`node.devnet.load_generator.run_load`) runs in the
test itself so its summary can be checked. Once the chain is past epoch 50, every node's
``/metrics`` is scraped over HTTP and parsed as Prometheus exposition, the three heads are read
from the stores until they name the same tipset, and after a clean stop (SIGINT) the stores are
compared: the same execution results (state root, receipts root) at every tipset below that
head, each equal to what its child records as ``ParentStateRoot`` and
``ParentMessageReceipts``, every receipt OK, and the messages on chain matching what the load
generator says landed: at least :data:`LEAST_PER_KIND` of every kind (secp256k1 and BLS
transfers, multisig creations, proposals and approvals, contract deployments and calls), all OK.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet, TipSetKey
from chainsync.messages_root import load_receipts
from fvm.message import Message
from fvm.receipt import ExitCode
from node.devnet.layout import Devnet, init_devnet
from node.devnet.load_generator import (
    EVM_DEPLOY,
    EVM_INCREMENT,
    GAS_LIMITS,
    MULTISIG_APPROVE,
    MULTISIG_CREATE,
    MULTISIG_PROPOSE,
    TRANSFER_BLS,
    TRANSFER_SECP256K1,
    LoadPlan,
    LoadSummary,
    run_load,
)
from node.devnet.load_messages import (
    EAM_ACTOR_ADDRESS,
    EAM_CREATE_EXTERNAL_METHOD,
    EVM_INVOKE_CONTRACT_METHOD,
    INIT_ACTOR_ADDRESS,
    INIT_EXEC_METHOD,
    METHOD_SEND,
    MULTISIG_APPROVE_METHOD,
    MULTISIG_PROPOSE_METHOD,
)
from store.chain_index import ExecutionResult
from store.cid import CID
from store.lmdb_blockstore import LmdbBlockstore

BLOCK_TIME: Final = 1
MESSAGES: Final = 210
MESSAGES_PER_SECOND: Final = 5.0
# Issue 4 asks for "200 messages of every kind"; of 210, at least this many of each kind.
LEAST_PER_KIND: Final = {
    TRANSFER_SECP256K1: 20,
    TRANSFER_BLS: 20,
    MULTISIG_CREATE: 8,
    MULTISIG_PROPOSE: 8,
    MULTISIG_APPROVE: 8,
    EVM_DEPLOY: 4,
    EVM_INCREMENT: 20,
}
MIN_HEIGHT: Final = 50
MAX_LAG: Final = 2
# Generous: two cores shared with other test runs.
START_TIMEOUT: Final = 120.0
SETTLE_TIMEOUT: Final = 90.0
STOP_TIMEOUT: Final = 30.0
POLL_SECONDS: Final = 0.2

CLI: Final = [sys.executable, "-c", "from node.cli import main; main()"]
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
LISTENING: Final = re.compile(r"listening on (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+)")
METRICS_AT: Final = re.compile(r"metrics on (http://127\.0\.0\.1:\d+/metrics)")
LOOPBACK_ANY_PORT: Final = "127.0.0.1:0"
APPLIED: Final = "fvmnode_messages_applied_total{kind=explicit}"


# -- node processes -------------------------------------------------------------------------


@dataclass
class NodeProcess:
    """A node started through the CLI, its output in ``log``, its store in ``data_dir``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    def wait_for(self, pattern: re.Pattern[str]) -> str:
        """The first group of ``pattern`` once the node has logged it."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = pattern.search(self.log.read_text(errors="replace"))
            if match:
                return match.group(1)
            self.assert_running()
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"{self.name} did not log {pattern.pattern!r}; see {self.log}")

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{tail}")

    def stop(self) -> bool:
        """Ctrl-C, so the node closes its store; killed if it does not exit in time. True if
        it stopped by itself."""
        if self.process.poll() is not None:
            return True
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return True


@contextmanager
def node_process(
    name: str, arguments: list[str], data_dir: Path, logs: Path, shared: Path
) -> Iterator[NodeProcess]:
    log = logs / f"{name}.log"
    handle: IO[bytes] = log.open("wb")
    environment = {**os.environ, "FVM_NODE_SHARED": str(shared)}
    process = subprocess.Popen(
        [*CLI, *arguments],
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=PROJECT_ROOT,
        env=environment,
    )
    node = NodeProcess(name, process, log, data_dir)
    try:
        yield node
    finally:
        node.stop()
        handle.close()


# -- metrics ----------------------------------------------------------------------------------


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


def scrape_until(
    url: str, ready: Callable[[dict[str, float]], bool], what: str
) -> dict[str, float]:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    samples = scrape(url)
    while not ready(samples):
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: {what} not reached; last samples {samples}")
        time.sleep(POLL_SECONDS)
        samples = scrape(url)
    return samples


def caught_up(samples: dict[str, float]) -> bool:
    return samples["fvmnode_head_epoch"] >= MIN_HEIGHT and samples["fvmnode_epoch_lag"] <= MAX_LAG


def executed_the_load(samples: dict[str, float]) -> bool:
    return caught_up(samples) and samples[APPLIED] >= MESSAGES


# -- stores -----------------------------------------------------------------------------------


@contextmanager
def open_store(data_dir: Path) -> Iterator[ChainStore]:
    """A node's chain store, read-only (the node may still be running: LMDB readers in other
    processes see its committed transactions)."""
    blockstore = LmdbBlockstore(data_dir / "chain", readonly=True)
    try:
        yield ChainStore(blockstore)
    finally:
        blockstore.close()


def head_key(data_dir: Path) -> TipSetKey | None:
    with open_store(data_dir) as store:
        head = store.heaviest()
        return None if head is None else head.key


def common_head(nodes: list[NodeProcess]) -> TipSetKey:
    """A head the three stores hold at the same moment (the producer moves every second, the
    followers within a moment of it)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        keys = {head_key(node.data_dir) for node in nodes}
        if len(keys) == 1:
            (key,) = keys
            if key is not None:
                return key
        for node in nodes:
            node.assert_running()
        time.sleep(POLL_SECONDS / 4)
    raise AssertionError(f"the nodes never agreed on a head; last seen {keys}")


def chain_below(store: ChainStore, key: TipSetKey) -> Iterator[tuple[TipSet, TipSet]]:
    """(child, parent) pairs from the tipset ``key`` down to genesis."""
    child = store.get_tipset(key)
    while child.height > 0:
        parent = store.get_tipset(child.parents)
        yield child, parent
        child = parent


@dataclass(frozen=True, slots=True)
class ChainRecord:
    """What one node's store says about the chain below an agreed head."""

    results: dict[int, tuple[CID, CID]]
    recorded: dict[int, tuple[CID, CID]]
    receipt_codes: Counter[int]
    messages: Counter[str]
    applied: int


def message_kind(message: Message, signature: str) -> str:
    """The load generator's name for a message, from its recipient and method, and for a
    transfer the signature type of the block message list it is in."""
    method = message.method_num
    if method == METHOD_SEND:
        return {"secp256k1": TRANSFER_SECP256K1, "bls": TRANSFER_BLS}[signature]
    if message.to == INIT_ACTOR_ADDRESS and method == INIT_EXEC_METHOD:
        return MULTISIG_CREATE
    if message.to == EAM_ACTOR_ADDRESS and method == EAM_CREATE_EXTERNAL_METHOD:
        return EVM_DEPLOY
    if method == MULTISIG_PROPOSE_METHOD:
        return MULTISIG_PROPOSE
    if method == MULTISIG_APPROVE_METHOD:
        return MULTISIG_APPROVE
    if method == EVM_INVOKE_CONTRACT_METHOD:
        return EVM_INCREMENT
    return f"method {method} to {message.to}"


def record_chain(data_dir: Path, key: TipSetKey) -> ChainRecord:
    results: dict[int, tuple[CID, CID]] = {}
    recorded: dict[int, tuple[CID, CID]] = {}
    codes: Counter[int] = Counter()
    messages: Counter[str] = Counter()
    applied = 0
    with open_store(data_dir) as store:
        for child, parent in chain_below(store, key):
            result: ExecutionResult | None = store.index.execution_result(parent.key.to_bytes())
            assert result is not None, f"{data_dir}: tipset at {parent.height} not executed"
            results[parent.height] = (result.state_root, result.receipts_root)
            recorded[parent.height] = (child.parent_state, child.blocks[0].parent_message_receipts)
            receipts = load_receipts(store.blockstore, result.receipts_root)
            assert len(receipts) == result.messages_applied
            codes.update(receipt.exit_code for receipt in receipts)
            applied += result.messages_applied
            for header in parent.blocks:
                bls, secpk = store.get_block_messages(header)
                messages.update(message_kind(message, "bls") for message in bls)
                messages.update(message_kind(s.message, "secp256k1") for s in secpk)
    return ChainRecord(results, recorded, codes, messages, applied)


# -- the run ----------------------------------------------------------------------------------


@pytest.fixture
def devnet(tmp_path: Path, actors_dir: Path) -> Devnet:
    return init_devnet(
        tmp_path / "devnet",
        accounts=2,
        block_delay_secs=BLOCK_TIME,
        seed=b"acceptance",
        actors_dir=actors_dir,
    )


def start_nodes(
    stack: ExitStack, devnet: Devnet, tmp_path: Path, shared: Path
) -> list[NodeProcess]:
    logs = tmp_path / "logs"
    logs.mkdir()
    producer = stack.enter_context(
        node_process(
            "producer",
            ["devnet", "run", "--dir", str(devnet.root), "--metrics", LOOPBACK_ANY_PORT],
            devnet.producer_dir,
            logs,
            shared,
        )
    )
    address = producer.wait_for(LISTENING)
    followers = [
        stack.enter_context(
            node_process(
                name,
                [
                    "run",
                    "--config",
                    str(devnet.node_settings_path),
                    "--data",
                    str(tmp_path / name),
                    "--bootstrap",
                    address,
                    "--listen",
                    "/ip4/127.0.0.1/tcp/0",
                    "--metrics",
                    LOOPBACK_ANY_PORT,
                ],
                tmp_path / name,
                logs,
                shared,
            )
        )
        for name in ("follower-1", "follower-2")
    ]
    return [producer, *followers]


def test_a_producer_and_two_followers_agree_after_fifty_epochs_of_every_kind_of_message(
    devnet: Devnet, tmp_path: Path, actors_dir: Path
) -> None:
    with ExitStack() as stack:
        nodes = start_nodes(stack, devnet, tmp_path, actors_dir.parent)
        producer, *followers = nodes
        producer_address = producer.wait_for(LISTENING)
        urls = {node.name: node.wait_for(METRICS_AT) for node in nodes}
        for follower in followers:
            follower.wait_for(LISTENING)

        summary: LoadSummary = trio.run(
            run_load, devnet, producer_address, LoadPlan(MESSAGES, MESSAGES_PER_SECOND)
        )

        # The producer executes tipsets without the syncer, so only followers count messages.
        metrics = {
            node.name: scrape_until(
                urls[node.name],
                caught_up if node is producer else executed_the_load,
                f"head >= {MIN_HEIGHT} with lag <= {MAX_LAG}",
            )
            for node in nodes
        }
        agreed = common_head(nodes)
        for node in nodes:
            assert node.stop(), f"{node.name} ignored SIGINT; see {node.log}"

    # The load: every kind submitted, none refused, every one on chain and OK.
    assert summary.refused == Counter()
    assert summary.failed == Counter()
    assert summary.succeeded == summary.submitted
    assert sum(summary.submitted.values()) == MESSAGES
    assert set(LEAST_PER_KIND) == set(GAS_LIMITS)
    for kind, least in LEAST_PER_KIND.items():
        assert summary.succeeded[kind] >= least, summary.describe()

    # Metrics, scraped while running: caught up, and the followers executed the load.
    for name, samples in metrics.items():
        assert samples["fvmnode_head_epoch"] >= MIN_HEIGHT, name
        assert 0 <= samples["fvmnode_epoch_lag"] <= MAX_LAG, name
        assert samples["fvmnode_sync_state{fvmnode_sync_state=following}"] == 1, name
        assert samples["fvmnode_peers_connected"] >= 1, name
        assert samples["fvmnode_consensus_mismatches_total"] == 0, name
    for follower in followers:
        samples = metrics[follower.name]
        assert samples[APPLIED] >= MESSAGES
        assert samples["fvmnode_tipsets_applied_total"] >= 1

    # The three stores below the agreed head.
    records = {node.name: record_chain(node.data_dir, agreed) for node in nodes}
    chain = records[producer.name]
    assert min(chain.results) == 0
    assert max(chain.results) >= MIN_HEIGHT - 1
    for name, record in records.items():
        assert record.results == chain.results, name
        assert record.recorded == record.results, name
    assert chain.receipt_codes == Counter({ExitCode.OK: MESSAGES})
    assert chain.applied == MESSAGES

    assert chain.messages == summary.succeeded
    for kind, least in LEAST_PER_KIND.items():
        assert chain.messages[kind] >= least, kind
