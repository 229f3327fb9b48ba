"""Catch-up sync speed on a devnet chain over libp2p on loopback TCP (issue 4's benchmark).

A producer builds a devnet chain of ``FVM_NODE_BENCH_EPOCHS`` epochs (default 1000, genesis
back-dated so every epoch's time has come) on the real v10 devnet bundle, with secp256k1 and BLS
transfers in its blocks. That data directory is then served by ``fvm-node run`` in a separate
process (a real peer with its own interpreter and core), and a fresh :class:`FilecoinNode` in
this process dials it and catches up from genesis the way any node does: hello, then chain
exchange (headers backwards, then message windows, several in flight) and its own tipset
pipeline in a worker thread.

The shares come from wrapping functions from the outside, never from timing code in the node:
the pipeline's ``accept`` (its worker thread), and inside it ``apply_full_blocks`` (execution),
the beacon check and ``validate_block`` (validation) and the chain store's writes (store); the
chain-exchange fetcher's ``fetch`` (network: request sent until the response is decoded, which
includes the server's work and the socket transfer). The syncer fetches the next windows while
the pipeline works, so network time overlaps execution. The reported shares therefore split
the wall time on the critical path, without double counting: time the pipeline works (execution,
validation, store, its own bookkeeping), time the syncer waits for the network with the
pipeline idle, and the rest (connection and hello, response checks, syncer). How much of the
wall time had a request in flight, overlap included, is reported beside them.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import trio

import chainsync.tipset_pipeline as tipset_pipeline_module
from bench.store_bench import Figure
from chainsync.block_validation import validate_block
from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.devnet_beacon import MockBeacon
from chainsync.tipset_execution import apply_full_blocks
from chainsync.tipset_pipeline import TipsetPipeline, devnet_pipeline
from config.bundles import actors_search_path, find_bundle_file
from config.networks import DEVNET_GENESIS_FILE, devnet_preset
from config.settings import CHAIN_DIR, is_setting_variable, load_settings
from fvm.bundle import load_bundle
from fvm.message import Message
from fvm.token import FILECOIN_PRECISION
from node.chain_exchange_service import ChainExchangeClient
from node.devnet.demo import CLI, stop_processes
from node.devnet.genesis import DevnetGenesisSpec, build_devnet_genesis, write_genesis_car
from node.devnet.keys import Key, KeyType
from node.devnet.producer import DevnetProducer, head_state_view
from node.filecoin_node import ChainExchangeFetcher, FilecoinNode, ProgressLine
from node.message_pool import MessagePool
from store.blockstore import MemoryBlockstore
from store.lmdb_blockstore import LmdbBlockstore

EPOCHS: Final = int(os.environ.get("FVM_NODE_BENCH_EPOCHS", "1000"))
SENDERS: Final = [
    Key.generate(KeyType.SECP256K1, b"bench secp"),
    Key.generate(KeyType.BLS, b"bench bls"),
]
WORKER: Final = Key.generate(KeyType.BLS, b"bench worker")
BLOCK_DELAY: Final = 4
NETWORK: Final = "fvm-node-bench"
LOOPBACK: Final = "/ip4/127.0.0.1/tcp/0"
SERVER_START_TIMEOUT_SECONDS: Final = 300.0
SERVER_STOP_TIMEOUT_SECONDS: Final = 30.0
# Generous: the machine may be shared; the bench measures speed, it does not demand it.
SYNC_TIMEOUT_BASE_SECONDS: Final = 300.0
SYNC_TIMEOUT_PER_TIPSET_SECONDS: Final = 5.0

Interval = tuple[float, float]


class SyncBenchError(RuntimeError):
    """The benchmark could not run: the serving node did not start, or sync did not finish."""


# -- intervals of wrapped calls -----------------------------------------------------------------


class _ActivityLog:
    """Wall-clock intervals spent inside wrapped calls, by activity, from any thread."""

    def __init__(self) -> None:
        self.intervals: defaultdict[str, list[Interval]] = defaultdict(list)

    def wrap(self, activity: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.intervals[activity].append((started, time.perf_counter()))

        return timed

    def wrap_async(
        self, activity: str, function: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.intervals[activity].append((started, time.perf_counter()))

        return timed

    def seconds(self, activity: str) -> float:
        """The summed length of the activity's calls (for calls that never overlap)."""
        return sum(end - start for start, end in self.intervals[activity])

    def within(self, start: float, end: float) -> _ActivityLog:
        """The same log cut to the window from ``start`` to ``end``."""
        cut = _ActivityLog()
        for activity, intervals in self.intervals.items():
            cut.intervals[activity] = [
                (max(first, start), min(last, end))
                for first, last in intervals
                if last > start and first < end
            ]
        return cut


def _merged(intervals: Sequence[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted, disjoint intervals."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Sequence[Interval]) -> float:
    return sum(end - start for start, end in _merged(intervals))


def _length_outside(intervals: Sequence[Interval], excluded: Sequence[Interval]) -> float:
    """How long the union of ``intervals`` lasts outside the union of ``excluded``."""
    overlap = 0.0
    blocked = _merged(excluded)
    for start, end in _merged(intervals):
        for other_start, other_end in blocked:
            overlap += max(0.0, min(end, other_end) - max(start, other_start))
    return _length(intervals) - overlap


# -- the measurement ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatchUp:
    """One catch-up sync. The six ``*_seconds`` parts of the critical path add up to
    ``seconds``; ``in_flight_seconds`` (a request outstanding) overlaps them."""

    epochs: int
    produce_seconds: float
    tipsets: int
    seconds: float
    execution_seconds: float
    validation_seconds: float
    store_seconds: float
    pipeline_other_seconds: float
    network_wait_seconds: float
    other_seconds: float
    in_flight_seconds: float
    requests: int
    bytes_received: int

    def shares(self) -> dict[str, float]:
        """Percent of the wall time per critical-path part (they sum to 100)."""
        parts = {
            "execution": self.execution_seconds,
            "validation": self.validation_seconds,
            "store": self.store_seconds,
            "pipeline other": self.pipeline_other_seconds,
            "network wait": self.network_wait_seconds,
            "other": self.other_seconds,
        }
        return {name: 100 * seconds / self.seconds for name, seconds in parts.items()}

    def figures(self) -> list[Figure]:
        shares = self.shares()
        return [
            ("devnet chain produced (epochs)", float(self.epochs), "epochs"),
            ("production (build + execute + sign)", self.epochs / self.produce_seconds, "epochs/s"),
            ("catch-up over loopback TCP: tipsets synced", float(self.tipsets), "tipsets"),
            ("catch-up sync", self.tipsets / self.seconds, "tipsets/s"),
            ("catch-up: execution share", shares["execution"], "%"),
            ("catch-up: validation share", shares["validation"], "%"),
            ("catch-up: store share", shares["store"], "%"),
            ("catch-up: pipeline bookkeeping share", shares["pipeline other"], "%"),
            ("catch-up: network wait share (pipeline idle)", shares["network wait"], "%"),
            ("catch-up: other (hello, response checks, syncer)", shares["other"], "%"),
            (
                "catch-up: request in flight (overlaps the above)",
                100 * self.in_flight_seconds / self.seconds,
                "%",
            ),
            ("catch-up: chain-exchange requests", float(self.requests), "requests"),
            ("catch-up: chain-exchange bytes received", self.bytes_received / 1e3, "kB"),
        ]


def _produce_chain(server_dir: Path, epochs: int, actors_dir: Path | None) -> TipSet:
    """Build the chain into ``server_dir`` laid out as a node's data directory; its head."""
    bundle = load_bundle(find_bundle_file(10, actors_search_path(actors_dir)), network="devnet")
    spec = DevnetGenesisSpec(
        network_name=NETWORK,
        timestamp=int(time.time()) - (epochs + 10) * BLOCK_DELAY,
        accounts=[(key, 10_000 * FILECOIN_PRECISION) for key in SENDERS],
        miner_owner=Key.generate(KeyType.SECP256K1, b"bench owner"),
        miner_worker=WORKER,
        verifreg_root=Key.generate(KeyType.SECP256K1, b"bench root"),
        remainder_owner=Key.generate(KeyType.SECP256K1, b"bench remainder"),
    )
    genesis = build_devnet_genesis(spec, bundle, MemoryBlockstore())
    server_dir.mkdir(parents=True)
    write_genesis_car(server_dir / DEVNET_GENESIS_FILE, genesis)
    preset = devnet_preset(
        server_dir, block_delay_secs=BLOCK_DELAY, genesis_cid=genesis.cid, network_name=NETWORK
    )
    with LmdbBlockstore(server_dir / CHAIN_DIR) as blockstore:
        store = ChainStore(blockstore)
        store.load_genesis(server_dir / DEVNET_GENESIS_FILE)
        pipeline = devnet_pipeline(store, preset, bundle, genesis.miner)
        pool = MessagePool(head_state_view(pipeline))
        producer = DevnetProducer(pipeline, pool, genesis.miner, WORKER)
        for epoch in range(1, epochs + 1):
            for key in SENDERS:
                message = Message(
                    to=SENDERS[1].address if key is SENDERS[0] else SENDERS[0].address,
                    from_=key.address,
                    sequence=epoch - 1,
                    value=1000,
                    gas_limit=3_000_000,
                    gas_fee_cap=10**9,
                    gas_premium=10**5,
                )
                pool.add(key.sign_message(message), local=True)
            producer.produce()
        return pipeline.head()


def _settings_file(work: Path, server_dir: Path, actors_dir: Path | None) -> Path:
    lines = [
        'network = "devnet"',
        f"genesis = {str(server_dir / DEVNET_GENESIS_FILE)!r}",
        'log_level = "WARNING"',
    ]
    if actors_dir is not None:
        lines.append(f"actors_dir = {str(actors_dir)!r}")
    lines += ["", "[devnet]", f"block_delay_secs = {BLOCK_DELAY}", ""]
    path = work / "server.toml"
    path.write_text("\n".join(lines))
    return path


def _server_environment() -> dict[str, str]:
    """This environment without ``FVM_NODE_*`` settings: the server runs with its settings file
    alone, whatever the caller's shell has set."""
    return {
        **{name: value for name, value in os.environ.items() if not is_setting_variable(name)},
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def _serving_node(work: Path, server_dir: Path, actors_dir: Path | None) -> Iterator[str]:
    """``fvm-node run`` over ``server_dir`` in its own process; yields its listen address."""
    log_path = work / "server.log"
    command = [
        *CLI,
        "run",
        "--config",
        str(_settings_file(work, server_dir, actors_dir)),
        "--data",
        str(server_dir),
        "--listen",
        LOOPBACK,
    ]
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, env=_server_environment()
        ) as server,
    ):
        try:
            assert server.stdout is not None
            yield _read_listen_address(server, server.stdout, log_path)
        finally:
            stop_processes([server], SERVER_STOP_TIMEOUT_SECONDS)


def _read_listen_address(server: subprocess.Popen[bytes], stdout: IO[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([stdout], [], [], remaining)
        if not readable:
            break
        line = stdout.readline().decode()
        if not line:
            raise SyncBenchError(
                f"the serving node exited ({server.wait()}): {log_path.read_text()[-2000:]}"
            )
        if line.startswith("listening on "):
            return line.removeprefix("listening on ").strip()
    raise SyncBenchError(f"the serving node did not listen within {SERVER_START_TIMEOUT_SECONDS} s")


@contextmanager
def _patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def _instrumented(log: _ActivityLog, tally: dict[str, int]) -> Iterator[None]:
    """Wrap the node's functions so ``log`` sees each activity and ``tally`` the pipeline's
    accepted tipsets and the chain-exchange requests and response bytes."""
    accept = log.wrap("pipeline", TipsetPipeline.accept)

    def counted_accept(pipeline: TipsetPipeline, full_tipsets: Any) -> Any:
        outcomes = accept(pipeline, full_tipsets)
        tally["tipsets"] += len(outcomes)
        return outcomes

    request = ChainExchangeClient.request

    async def counted_request(client: ChainExchangeClient, *args: Any, **kwargs: Any) -> bytes:
        response = await request(client, *args, **kwargs)
        tally["requests"] += 1
        tally["bytes"] += len(response)
        return response

    replacements = [
        (TipsetPipeline, "accept", counted_accept),
        (
            tipset_pipeline_module,
            "apply_full_blocks",
            log.wrap("execution", apply_full_blocks),
        ),
        (
            tipset_pipeline_module,
            "validate_block",
            log.wrap("validation", validate_block),
        ),
        (
            MockBeacon,
            "check_block_entries",
            log.wrap("validation", MockBeacon.check_block_entries),
        ),
        (ChainStore, "put_block", log.wrap("store", ChainStore.put_block)),
        (ChainStore, "put_tipset", log.wrap("store", ChainStore.put_tipset)),
        (ChainStore, "advance_head", log.wrap("store", ChainStore.advance_head)),
        (ChainExchangeFetcher, "fetch", log.wrap_async("network", ChainExchangeFetcher.fetch)),
        (ChainExchangeClient, "request", counted_request),
    ]
    with ExitStack() as stack:
        for owner, name, replacement in replacements:
            stack.enter_context(_patched(owner, name, replacement))
        yield


async def _catch_up(
    client_dir: Path, genesis: Path, actors_dir: Path | None, server: str, target: TipSet
) -> tuple[float, float]:
    """Start a fresh node, dial ``server`` and wait until its head is ``target``; the start
    and end (``perf_counter``) of the catch-up, from the dial to the last accepted tipset."""
    settings = load_settings(
        None,
        env={},
        overrides={
            "network": "devnet",
            "data_dir": str(client_dir),
            "genesis": str(genesis),
            "devnet.block_delay_secs": BLOCK_DELAY,
            "actors_dir": None if actors_dir is None else str(actors_dir),
            "listen": (LOOPBACK,),
            "bootstrap": (),
        },
    )
    timeout = SYNC_TIMEOUT_BASE_SECONDS + SYNC_TIMEOUT_PER_TIPSET_SECONDS * target.height
    async with FilecoinNode(settings, progress=ProgressLine(enabled=False)) as client:
        syncer = client.syncer
        assert syncer is not None
        started = time.perf_counter()
        await client.host.connect(server)
        with trio.move_on_after(timeout):
            await syncer.wait_for_height(target.height)
        finished = time.perf_counter()
        if client.head() != target:
            raise SyncBenchError(
                f"the node reached {client.head().key} at height {client.head().height}, not "
                f"{target.key} at {target.height}, within {timeout:.0f} s"
            )
    return started, finished


def measure_catch_up(epochs: int = EPOCHS, actors_dir: Path | None = None) -> CatchUp:
    """Produce an ``epochs``-long devnet chain, serve it from another process and measure a
    fresh node catching up over loopback TCP."""
    with tempfile.TemporaryDirectory(prefix="fvm-node-sync-bench-") as tmp:
        work = Path(tmp)
        server_dir = work / "server"
        produce_started = time.perf_counter()
        target = _produce_chain(server_dir, epochs, actors_dir)
        produce_seconds = time.perf_counter() - produce_started

        log = _ActivityLog()
        tally = {"tipsets": 0, "requests": 0, "bytes": 0}
        with _serving_node(work, server_dir, actors_dir) as address, _instrumented(log, tally):
            started, finished = trio.run(
                _catch_up,
                work / "client",
                server_dir / DEVNET_GENESIS_FILE,
                actors_dir,
                address,
                target,
            )
    seconds = finished - started
    log = log.within(started, finished)
    pipeline = log.intervals["pipeline"]
    execution = log.seconds("execution")
    validation = log.seconds("validation")
    storing = log.seconds("store")
    network_wait = _length_outside(log.intervals["network"], pipeline)
    busy = _length(pipeline)
    return CatchUp(
        epochs=epochs,
        produce_seconds=produce_seconds,
        tipsets=tally["tipsets"],
        seconds=seconds,
        execution_seconds=execution,
        validation_seconds=validation,
        store_seconds=storing,
        pipeline_other_seconds=busy - execution - validation - storing,
        network_wait_seconds=network_wait,
        other_seconds=seconds - busy - network_wait,
        in_flight_seconds=_length(log.intervals["network"]),
        requests=tally["requests"],
        bytes_received=tally["bytes"],
    )


def run() -> list[Figure]:
    return measure_catch_up().figures()


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<52} {value:>12,.1f} {unit}")
