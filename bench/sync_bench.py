"""Catch-up sync speed on a devnet chain (issue 4's benchmark).

A producer builds a devnet chain of ``FVM_NODE_BENCH_EPOCHS`` epochs (default 1000) on a genesis
from the real v10 devnet bundle, with secp256k1 and BLS transfers in its blocks. A second node
then catches up from genesis: the producer's chain is served in chain-exchange batches (the
Lotus wire encoding, headers then messages, decoded and checked with ``process_response``) and
accepted through the receiving node's own tipset pipeline into its own LMDB store.

Reported: tipsets/s and the share of time in execution, validation, store writes and the
chain-exchange encoding. The chain-exchange share here is the codec work both sides do per
batch, measured in one process; the sockets of a libp2p transfer are not included.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import chainsync.tipset_pipeline as tipset_pipeline_module
from bench.store_bench import Figure
from chainsync.block_validation import validate_block
from chainsync.chain_exchange import (
    HEADERS,
    MESSAGES,
    ChainStoreReader,
    Request,
    Response,
    serve_request,
)
from chainsync.chain_exchange import process_response as check_response
from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.tipset_pipeline import TipsetPipeline, devnet_pipeline
from config.bundles import actors_search_path, find_bundle_file
from config.networks import devnet_preset
from fvm.bundle import load_bundle
from fvm.message import Message
from fvm.token import FILECOIN_PRECISION
from node.devnet.genesis import DevnetGenesisSpec, build_devnet_genesis, write_genesis_car
from node.devnet.keys import Key, KeyType
from node.devnet.producer import DevnetProducer, head_state_view
from node.message_pool import MessagePool
from store.blockstore import MemoryBlockstore
from store.lmdb_blockstore import LmdbBlockstore

EPOCHS = int(os.environ.get("FVM_NODE_BENCH_EPOCHS", "1000"))
BATCH = 100
SENDERS = [Key.generate(KeyType.SECP256K1, b"bench secp"), Key.generate(KeyType.BLS, b"bench bls")]
WORKER = Key.generate(KeyType.BLS, b"bench worker")
BLOCK_DELAY = 4
NETWORK = "fvm-node-bench"


class _Clock:
    """Seconds spent inside wrapped functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed


@contextmanager
def _patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _produce_chain(work: Path) -> tuple[TipsetPipeline, Path, Any, Any, Any]:
    bundle = load_bundle(find_bundle_file(10, actors_search_path()), network="devnet")
    genesis_time = int(time.time()) - (EPOCHS + 10) * BLOCK_DELAY
    spec = DevnetGenesisSpec(
        network_name=NETWORK,
        timestamp=genesis_time,
        accounts=[(key, 10_000 * FILECOIN_PRECISION) for key in SENDERS],
        miner_owner=Key.generate(KeyType.SECP256K1, b"bench owner"),
        miner_worker=WORKER,
        verifreg_root=Key.generate(KeyType.SECP256K1, b"bench root"),
        remainder_owner=Key.generate(KeyType.SECP256K1, b"bench remainder"),
    )
    genesis = build_devnet_genesis(spec, bundle, MemoryBlockstore())
    write_genesis_car(work / "genesis.car", genesis)
    preset = devnet_preset(
        work, block_delay_secs=BLOCK_DELAY, genesis_cid=genesis.cid, network_name=NETWORK
    )
    store = ChainStore(LmdbBlockstore(work / "producer", map_size=1 << 32))
    store.load_genesis(work / "genesis.car")
    pipeline = devnet_pipeline(store, preset, bundle, genesis.miner)
    pool = MessagePool(head_state_view(pipeline))
    producer = DevnetProducer(pipeline, pool, genesis.miner, WORKER)
    receiver = SENDERS[0].address
    for epoch in range(1, EPOCHS + 1):
        for key in SENDERS:
            message = Message(
                to=receiver if key is not SENDERS[0] else SENDERS[1].address,
                from_=key.address,
                sequence=epoch - 1,
                value=1000,
                gas_limit=3_000_000,
                gas_fee_cap=10**9,
                gas_premium=10**5,
            )
            pool.add(key.sign_message(message), local=True)
        producer.produce()
    return pipeline, work / "genesis.car", preset, bundle, genesis.miner


def _fetch(reader: ChainStoreReader, head: TipSet, length: int, options: int) -> Response:
    request = Request(head=head.cids, length=length, options=options)
    wire = Request.decode(request.encode()).encode()
    response = serve_request(Request.decode(wire), reader)
    return Response.decode(response.encode())


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="fvm-node-sync-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        source, genesis_car, preset, bundle, miner = _produce_chain(work)
        produce_seconds = time.perf_counter() - started

        reader = ChainStoreReader(source.chain_store)
        target = source.head()
        store = ChainStore(LmdbBlockstore(work / "follower", map_size=1 << 32))
        store.load_genesis(genesis_car)
        clock = _Clock()
        executed = [0.0]

        def on_execute(_tipset: TipSet, _result: Any, seconds: float) -> None:
            executed[0] += seconds

        follower = devnet_pipeline(store, preset, bundle, miner, on_execute=on_execute)
        validate = clock.wrap("validation", validate_block)
        put_block = clock.wrap("store", store.put_block)
        put_tipset = clock.wrap("store", store.put_tipset)
        advance = clock.wrap("store", store.advance_head)
        started = time.perf_counter()
        with (
            _patched(tipset_pipeline_module, "validate_block", validate),
            _patched(store, "put_block", put_block),
            _patched(store, "put_tipset", put_tipset),
            _patched(store, "advance_head", advance),
        ):
            tipsets = 0
            while follower.head() != target:
                network_started = time.perf_counter()
                batch_top = target
                distance = target.height - follower.head().height
                while batch_top.height > follower.head().height + BATCH:
                    batch_top = source.chain_store.get_tipset(batch_top.parents)
                length = min(BATCH, distance)
                request = Request(head=batch_top.cids, length=length, options=HEADERS | MESSAGES)
                response = _fetch(reader, batch_top, length, HEADERS | MESSAGES)
                checked = check_response(request, response)
                full = [
                    list(tipset)
                    for tipset in reversed(checked.full_tipsets())
                    if tipset[0].header.height > follower.head().height
                ]
                clock.seconds["chain exchange"] = (
                    clock.seconds.get("chain exchange", 0.0) + time.perf_counter() - network_started
                )
                tipsets += len(follower.accept(full))
        total = time.perf_counter() - started
        execution = executed[0]
        validation = clock.seconds.get("validation", 0.0)
        storing = clock.seconds.get("store", 0.0)
        exchange = clock.seconds.get("chain exchange", 0.0)
        other = max(total - execution - validation - storing - exchange, 0.0)
        return [
            ("devnet chain produced (epochs)", float(EPOCHS), "epochs"),
            ("production (build + execute + sign)", EPOCHS / produce_seconds, "epochs/s"),
            ("catch-up sync", tipsets / total, "tipsets/s"),
            ("catch-up: execution share", 100 * execution / total, "%"),
            ("catch-up: validation share", 100 * validation / total, "%"),
            ("catch-up: store share", 100 * storing / total, "%"),
            ("catch-up: chain-exchange codec share", 100 * exchange / total, "%"),
            ("catch-up: other (pipeline bookkeeping)", 100 * other / total, "%"),
        ]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name:<48} {value:>12,.1f} {unit}")
