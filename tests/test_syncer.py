"""Chain sync over real devnet chains: headers backwards in batches, messages forwards, the
real tipset pipeline executing every tipset with the v10 actors.

Source chains are made by the devnet block producer on their own chain stores; the syncing node
starts from the same genesis. Peers are answered in-process from a source store through the
chain exchange server logic and the wire codec (the node layer tests the libp2p transport);
misbehaving peers are variations of that answer.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID as PeerID

from chainsync.chain_exchange import (
    HEADERS,
    MESSAGES,
    BSTipSet,
    ChainStoreReader,
    Request,
    Response,
    Status,
    serve_request,
)
from chainsync.chain_store import ChainStore
from chainsync.chain_types import FullBlock, TipSet
from chainsync.hello import HelloMessage
from chainsync.syncer import Syncer
from chainsync.tipset_pipeline import TipsetPipeline, devnet_pipeline
from config.networks import devnet_preset
from config.settings import SyncSettings
from fvm.address import Address
from fvm.bundle import Bundle
from fvm.message import Message
from metrics.node_metrics import NodeMetrics
from node.cbor_rpc import OversizedMessage
from node.devnet.genesis import (
    DevnetGenesis,
    DevnetGenesisSpec,
    build_devnet_genesis,
    write_genesis_car,
)
from node.devnet.keys import Key, KeyType
from node.devnet.producer import DevnetProducer, head_state_view
from node.message_pool import MessagePool
from node.peer_manager import PeerManager, PenaltyReason
from store.blockstore import MemoryBlockstore
from store.lmdb_blockstore import LmdbBlockstore

GENESIS_TIME = 1_700_000_000
FAR_FUTURE = GENESIS_TIME + 10**7
WORKER = Key.generate(KeyType.BLS, b"syncer-test-worker")
OWNER = Key.generate(KeyType.SECP256K1, b"syncer-test-owner")
ROOT = Key.generate(KeyType.SECP256K1, b"syncer-test-verifreg")
REST = Key.generate(KeyType.SECP256K1, b"syncer-test-remainder")
USER = Key.generate(KeyType.SECP256K1, b"syncer-test-user")
SETTINGS = SyncSettings(batch_length=3, max_concurrent_requests=2, request_timeout_secs=0.5)
TEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Devnet:
    bundle: Bundle
    genesis: DevnetGenesis
    car: Path


def make_devnet(devnet_bundle: Bundle, directory: Path, timestamp: int) -> Devnet:
    spec = DevnetGenesisSpec(
        network_name="syncer-test",
        timestamp=timestamp,
        accounts=[(USER, 10**24)],
        miner_owner=OWNER,
        miner_worker=WORKER,
        verifreg_root=ROOT,
        remainder_owner=REST,
    )
    genesis = build_devnet_genesis(spec, devnet_bundle, MemoryBlockstore())
    car = directory / "genesis.car"
    write_genesis_car(car, genesis)
    return Devnet(devnet_bundle, genesis, car)


@pytest.fixture(scope="module")
def devnet(devnet_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Devnet:
    return make_devnet(devnet_bundle, tmp_path_factory.mktemp("devnet"), GENESIS_TIME)


@dataclass
class Node:
    store: ChainStore
    pipeline: TipsetPipeline
    producer: DevnetProducer
    pool: MessagePool

    def produce(self, count: int, first_epoch: int | None = None) -> list[FullBlock]:
        blocks = [self.producer.produce(first_epoch)]
        blocks.extend(self.producer.produce() for _ in range(count - 1))
        return blocks

    def head(self) -> TipSet:
        return self.pipeline.head()

    def hello(self, devnet: Devnet, tipset: TipSet | None = None) -> HelloMessage:
        announced = self.head() if tipset is None else tipset
        return HelloMessage(
            announced.cids,
            announced.height,
            self.pipeline.weight(announced),
            devnet.genesis.cid,
        )


def make_node(devnet: Devnet, directory: Path) -> Node:
    store = ChainStore(LmdbBlockstore(directory, map_size=1 << 28))
    store.load_genesis(devnet.car)
    preset = devnet_preset(directory, genesis_cid=devnet.genesis.cid)
    pipeline = devnet_pipeline(
        store, preset, devnet.bundle, devnet.genesis.miner, clock=lambda: FAR_FUTURE
    )
    pool = MessagePool(head_state_view(pipeline))
    producer = DevnetProducer(pipeline, pool, devnet.genesis.miner, WORKER)
    return Node(store, pipeline, producer, pool)


def transfer(node: Node, nonce: int) -> None:
    message = Message(
        to=Address.new_id(100),
        from_=USER.address,
        sequence=nonce,
        value=10**18,
        gas_limit=10_000_000,
        gas_fee_cap=10**10,
        gas_premium=10**5,
    )
    assert node.pool.add(USER.sign_message(message), local=True)


Behaviour = Callable[[Request, Response], Awaitable[Response]]


async def honest(request: Request, response: Response) -> Response:
    return response


async def garbage(request: Request, response: Response) -> Response:
    return Response.decode(b"\x83\x00\x60\xff not a response")


async def oversized(request: Request, response: Response) -> Response:
    raise OversizedMessage(1 << 20)


async def silent(request: Request, response: Response) -> Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


async def other_head(request: Request, response: Response) -> Response:
    """A well-formed answer for something else: the chain without its first tipset."""
    return Response(Status.PARTIAL, "", response.chain[1:])


async def dropped_message(request: Request, response: Response) -> Response:
    """Messages answers with every message left out (the includes still fit, so only the
    headers' Messages roots can tell)."""
    if not request.include_messages:
        return response
    chain = tuple(
        BSTipSet(
            bs.blocks,
            None
            if bs.messages is None
            else replace(
                bs.messages,
                secpk=(),
                secpk_includes=tuple(() for _ in bs.messages.secpk_includes),
            ),
        )
        for bs in response.chain
    )
    return Response(response.status, response.error_message, chain)


@dataclass
class InProcessFetcher:
    """Answers each peer from its source store, through the server logic and the wire codec,
    then applies the peer's behaviour."""

    sources: dict[PeerID, tuple[ChainStore, Behaviour]] = field(default_factory=dict)
    requests: list[tuple[PeerID, Request]] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    syncer: Syncer | None = None

    def add(self, peer: PeerID, store: ChainStore, behaviour: Behaviour = honest) -> None:
        self.sources[peer] = (store, behaviour)

    async def fetch(self, peer: PeerID, request: Request) -> Response:
        self.requests.append((peer, request))
        if self.syncer is not None:
            self.states.append(self.syncer.state)
        await trio.sleep(0)
        store, behaviour = self.sources[peer]
        served = serve_request(Request.decode(request.encode()), ChainStoreReader(store))
        return await behaviour(request, Response.decode(served.encode()))

    def asked(self, peer: PeerID) -> list[Request]:
        return [request for asked, request in self.requests if asked == peer]


def peer(name: str) -> PeerID:
    return PeerID(name.encode())


@dataclass
class Harness:
    node: Node
    fetcher: InProcessFetcher
    peers: PeerManager
    metrics: NodeMetrics
    syncer: Syncer


def make_harness(node: Node, settings: SyncSettings = SETTINGS) -> Harness:
    fetcher = InProcessFetcher()
    peers = PeerManager()
    metrics = NodeMetrics(version="test", network="devnet")
    syncer = Syncer(node.store, node.pipeline, fetcher, peers, settings, metrics)
    fetcher.syncer = syncer
    return Harness(node, fetcher, peers, metrics, syncer)


def run_syncer(harness: Harness, scenario: Callable[[Syncer], Awaitable[None]]) -> None:
    async def main() -> None:
        with trio.fail_after(TEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                await nursery.start(harness.syncer.run)
                await scenario(harness.syncer)
                nursery.cancel_scope.cancel()

    trio.run(main)


async def settle() -> None:
    """Let the syncer run until it waits for news (every fetch in these tests is immediate)."""
    for _ in range(50):
        await trio.sleep(0.01)


def sample(metrics: NodeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# -- catching up ----------------------------------------------------------------------------


def test_catches_up_from_genesis_in_batches_and_executes_every_tipset(
    devnet: Devnet, tmp_path: Path
) -> None:
    source = make_node(devnet, tmp_path / "source")
    source.produce(3)
    transfer(source, 0)
    transfer(source, 1)
    source.produce(7)
    assert source.head().height == 10
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    honest_peer = peer("honest")
    harness.fetcher.add(honest_peer, source.store)
    assert harness.syncer.state == "idle"

    async def scenario(syncer: Syncer) -> None:
        syncer.on_hello(honest_peer, source.hello(devnet))
        await syncer.wait_for_height(10)
        await settle()

    run_syncer(harness, scenario)

    store = harness.node.store
    assert harness.syncer.head == source.head()
    assert store.heaviest() == source.head()
    headers = [r for r in harness.fetcher.asked(honest_peer) if r.options == HEADERS]
    messages = [r for r in harness.fetcher.asked(honest_peer) if r.options == MESSAGES]
    assert [r.length for r in headers] == [3, 3, 3, 3]
    assert [len(r.head) for r in headers] == [1, 1, 1, 1]
    assert headers[0].head == source.head().cids
    assert sorted(r.length for r in messages) == [1, 3, 3, 3]
    # Every parent was executed, and agrees with the source's own execution.
    for height in range(10):
        key = store.tipset_at_height(height).key.to_bytes()
        ours = store.index.execution_result(key)
        theirs = source.store.index.execution_result(key)
        assert ours is not None and theirs is not None
        assert ours.state_root == theirs.state_root
        assert ours.receipts_root == theirs.receipts_root
    with_messages = store.index.execution_result(store.tipset_at_height(4).key.to_bytes())
    assert with_messages is not None and with_messages.messages_applied == 2
    metrics = harness.metrics
    # heights 1..9 were executed (genesis has its result; the head waits for a child)
    assert sample(metrics, "fvmnode_tipsets_applied_total") == 9
    assert sample(metrics, "fvmnode_head_epoch") == 10
    assert sample(metrics, "fvmnode_best_peer_epoch") == 10
    assert sample(metrics, "fvmnode_chain_exchange_requests_total", direction="client") == 8
    assert "catching_up" in harness.fetcher.states
    assert harness.syncer.state == "following"
    assert sample(metrics, "fvmnode_sync_state", fvmnode_sync_state="following") == 1
    assert harness.peers.penalties == {}


def test_heaviest_announced_chain_is_synced_and_lighter_ones_ignored(
    devnet: Devnet, tmp_path: Path
) -> None:
    light = make_node(devnet, tmp_path / "light")
    light.produce(5)
    heavy = make_node(devnet, tmp_path / "heavy")
    heavy.produce(7, first_epoch=2)  # a null round at 1: higher and heavier
    assert heavy.pipeline.weight(heavy.head()) > light.pipeline.weight(light.head())
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    light_peer, heavy_peer = peer("light"), peer("heavy")
    harness.fetcher.add(light_peer, light.store)
    harness.fetcher.add(heavy_peer, heavy.store)

    async def scenario(syncer: Syncer) -> None:
        syncer.on_hello(light_peer, light.hello(devnet))
        syncer.on_hello(heavy_peer, heavy.hello(devnet))
        await syncer.wait_for_height(8)
        await settle()

    run_syncer(harness, scenario)

    assert harness.node.store.heaviest() == heavy.head()
    assert harness.fetcher.asked(light_peer) == []


def test_a_heavier_fork_reorganises_the_head(devnet: Devnet, tmp_path: Path) -> None:
    first = make_node(devnet, tmp_path / "first")
    first.produce(4)
    fork = make_node(devnet, tmp_path / "fork")
    fork.produce(6, first_epoch=2)
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    first_peer, fork_peer = peer("first"), peer("fork")
    harness.fetcher.add(first_peer, first.store)
    harness.fetcher.add(fork_peer, fork.store)

    async def scenario(syncer: Syncer) -> None:
        syncer.on_hello(first_peer, first.hello(devnet))
        await syncer.wait_for_height(4)
        assert syncer.head == first.head()
        # A lighter (shorter) head of the fork is not a target.
        syncer.on_hello(fork_peer, fork.hello(devnet, fork.store.tipset_at_height(3)))
        await settle()
        assert harness.fetcher.asked(fork_peer) == []
        syncer.on_hello(fork_peer, fork.hello(devnet))
        await syncer.wait_for_height(7)
        await settle()

    run_syncer(harness, scenario)

    store = harness.node.store
    assert store.heaviest() == fork.head()
    assert store.tipset_at_height(1).height == 2  # the fork's null round, walked over
    assert store.index.tipset_meta(first.head().key.to_bytes()) is not None  # still stored


# -- gossip ---------------------------------------------------------------------------------


def test_gossiped_blocks_extend_the_head_without_fetching(devnet: Devnet, tmp_path: Path) -> None:
    source = make_node(devnet, tmp_path / "source")
    blocks = source.produce(4)
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    gossip_peer = peer("gossip")
    harness.fetcher.add(gossip_peer, source.store)

    async def scenario(syncer: Syncer) -> None:
        syncer.on_block(gossip_peer, blocks[0])
        syncer.on_block(gossip_peer, blocks[1])
        await syncer.wait_for_height(2)
        assert harness.fetcher.requests == []
        # A block whose parent we lack becomes a target, fetched from the peer that sent it.
        syncer.on_block(gossip_peer, blocks[3])
        await syncer.wait_for_height(4)
        await settle()

    run_syncer(harness, scenario)

    assert harness.node.store.heaviest() == source.head()
    assert [r.options for r in harness.fetcher.asked(gossip_peer)] == [HEADERS, MESSAGES]
    assert harness.fetcher.asked(gossip_peer)[0].head == (blocks[3].cid(),)


# -- misbehaving peers ----------------------------------------------------------------------


def test_misbehaving_peers_are_penalised_and_sync_completes_from_an_honest_one(
    devnet: Devnet, tmp_path: Path
) -> None:
    source = make_node(devnet, tmp_path / "source")
    source.produce(2)
    for nonce in range(3):
        transfer(source, nonce)
    source.produce(5)
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    # Peer IDs sort before the honest one, so with equal costs the bad peers are asked first.
    bad_peers = {
        peer("0-garbage"): garbage,
        peer("1-oversized"): oversized,
        peer("2-silent"): silent,
        peer("3-other-head"): other_head,
        peer("4-dropped-messages"): dropped_message,
    }
    honest_peer = peer("9-honest")
    for bad_peer, behaviour in bad_peers.items():
        harness.fetcher.add(bad_peer, source.store, behaviour)
    harness.fetcher.add(honest_peer, source.store)

    async def scenario(syncer: Syncer) -> None:
        for announcer in [*bad_peers, honest_peer]:
            syncer.on_hello(announcer, source.hello(devnet))
        await syncer.wait_for_height(7)
        await settle()

    run_syncer(harness, scenario)

    assert harness.node.store.heaviest() == source.head()
    for bad_peer in bad_peers:
        assert harness.fetcher.asked(bad_peer), bad_peer
        record = harness.peers.peer(bad_peer)
        assert record is not None and record.score < 0, bad_peer
    honest_record = harness.peers.peer(honest_peer)
    assert honest_record is not None and honest_record.score > 0
    assert honest_record.failures == 0
    penalties = harness.peers.penalties
    assert penalties[PenaltyReason.OVERSIZED_RESPONSE] >= 1
    assert penalties[PenaltyReason.TIMEOUT] >= 1
    # garbage bytes, a wrong answer and messages that do not match their headers
    assert penalties[PenaltyReason.MALFORMED_CBOR] >= 3
    assert set(penalties) == {
        PenaltyReason.OVERSIZED_RESPONSE,
        PenaltyReason.TIMEOUT,
        PenaltyReason.MALFORMED_CBOR,
    }
    metrics = harness.metrics
    for reason in ("oversized_response", "timeout", "malformed_cbor"):
        assert (
            sample(
                metrics, "fvmnode_chain_exchange_errors_total", direction="client", reason=reason
            )
            >= 1
        )
        assert sample(metrics, "fvmnode_peer_penalties_total", reason=reason) >= 1
    assert harness.syncer.state == "following"


def test_a_chain_that_does_not_reach_our_genesis_is_refused(
    devnet: Devnet, devnet_bundle: Bundle, tmp_path: Path
) -> None:
    foreign_net = make_devnet(devnet_bundle, tmp_path, GENESIS_TIME + 1)
    foreign = make_node(foreign_net, tmp_path / "foreign")
    foreign.produce(5)
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    liar, stranger = peer("liar"), peer("stranger")
    harness.fetcher.add(liar, foreign.store)
    harness.fetcher.add(stranger, foreign.store)
    genesis = harness.node.store.heaviest()
    # It claims our genesis in its hello, but its chain ends at another one.
    lying_hello = foreign.hello(devnet)

    async def scenario(syncer: Syncer) -> None:
        # An honest hello naming another genesis is not a target at all.
        syncer.on_hello(stranger, foreign.hello(foreign_net))
        await settle()
        assert harness.fetcher.requests == []
        syncer.on_hello(liar, lying_hello)
        await settle()
        assert syncer.state == "error"
        asked = len(harness.fetcher.requests)
        assert asked == 2  # 3 + 3 headers reach the foreign genesis; no messages asked for
        # The refused head is remembered: announcing it again fetches nothing.
        syncer.on_hello(liar, lying_hello)
        await settle()
        assert len(harness.fetcher.requests) == asked

    run_syncer(harness, scenario)

    assert harness.node.store.heaviest() == genesis
    assert all(request.options == HEADERS for _, request in harness.fetcher.requests)
    assert harness.syncer.is_bad(foreign.head().cids[0])
    assert sample(harness.metrics, "fvmnode_tipsets_applied_total") == 0


def test_a_consensus_mismatch_stops_at_that_tipset_and_is_counted(
    devnet: Devnet, tmp_path: Path
) -> None:
    source = make_node(devnet, tmp_path / "source")
    source.produce(4)
    good = source.producer.produce()
    # The same block, properly signed by the miner's worker, claiming another parent state.
    wrong_state = source.store.genesis().parent_state
    unsigned = replace(good.header, parent_state_root=wrong_state, block_sig=None)
    bad_header = WORKER.sign_block(unsigned)
    bad_tipset = TipSet([bad_header])
    source.store.put_block(bad_header, good.bls_messages, good.secpk_messages)
    source.store.put_tipset(bad_tipset, source.pipeline.weight(source.head()))
    harness = make_harness(make_node(devnet, tmp_path / "sync"))
    liar = peer("liar")
    harness.fetcher.add(liar, source.store)

    async def scenario(syncer: Syncer) -> None:
        syncer.on_hello(liar, source.hello(devnet, bad_tipset))
        await syncer.wait_for_height(4)
        await settle()

    run_syncer(harness, scenario)

    store = harness.node.store
    assert store.heaviest() == source.store.tipset_at_height(4, source.head())
    assert store.index.tipset_meta(bad_tipset.key.to_bytes()) is None
    [mismatch] = store.index.mismatches()
    assert mismatch.height == 4
    assert mismatch.expected_state_root == wrong_state
    assert mismatch.computed_state_root == good.header.parent_state_root
    assert sample(harness.metrics, "fvmnode_consensus_mismatches_total") == 1
    assert harness.peers.penalties[PenaltyReason.WRONG_STATE_ROOT] == 1
    assert sample(harness.metrics, "fvmnode_peer_penalties_total", reason="wrong_state_root") == 1
    assert harness.syncer.is_bad(bad_header.cid())
    assert harness.syncer.state == "error"


# -- cancellation ---------------------------------------------------------------------------


def test_cancelling_the_syncer_leaves_a_consistent_store_to_resume_from(
    devnet: Devnet, tmp_path: Path
) -> None:
    source = make_node(devnet, tmp_path / "source")
    source.produce(9)
    node = make_node(devnet, tmp_path / "sync")
    first = make_harness(node, replace(SETTINGS, request_timeout_secs=60.0))
    stalling = peer("stalling")
    messages_served = 0

    async def stall_after_two_windows(request: Request, response: Response) -> Response:
        nonlocal messages_served
        if request.include_messages:
            messages_served += 1
            if messages_served > 2:
                await trio.sleep_forever()
        return response

    first.fetcher.add(stalling, source.store, stall_after_two_windows)
    cancelled_at: list[float] = []

    async def main() -> None:
        with trio.fail_after(TEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                await nursery.start(first.syncer.run)
                first.syncer.on_hello(stalling, source.hello(devnet))
                await first.syncer.wait_for_height(6)
                await settle()
                cancelled_at.append(trio.current_time())
                nursery.cancel_scope.cancel()
        cancelled_at.append(trio.current_time())

    trio.run(main)

    assert cancelled_at[1] - cancelled_at[0] < 1.0
    assert node.store.heaviest() == source.store.tipset_at_height(6, source.head())
    # A new syncer on the same store carries on from there.
    second = make_harness(node)
    honest_peer = peer("honest")
    second.fetcher.add(honest_peer, source.store)

    async def resume(syncer: Syncer) -> None:
        syncer.on_hello(honest_peer, source.hello(devnet))
        await syncer.wait_for_height(9)

    run_syncer(second, resume)

    assert node.store.heaviest() == source.head()
    resumed = second.fetcher.asked(honest_peer)
    assert sum(r.length for r in resumed if r.options == MESSAGES) == 3
    assert math.isclose(sample(second.metrics, "fvmnode_head_epoch"), 9)


def test_a_head_from_the_future_is_not_a_target(devnet: Devnet, tmp_path: Path) -> None:
    source = make_node(devnet, tmp_path / "source")
    source.produce(8)
    node = make_node(devnet, tmp_path / "sync")
    fetcher = InProcessFetcher()
    peers = PeerManager()
    clock_epoch = 2
    syncer = Syncer(
        node.store, node.pipeline, fetcher, peers, SETTINGS, expected_epoch=lambda: clock_epoch
    )
    ahead = peer("ahead")
    fetcher.add(ahead, source.store)

    async def main() -> None:
        nonlocal clock_epoch
        with trio.fail_after(TEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                await nursery.start(syncer.run)
                syncer.on_hello(ahead, source.hello(devnet))
                await settle()
                assert fetcher.requests == []  # 8 > 2 + MAX_HEIGHT_DRIFT
                clock_epoch = 3
                syncer.on_hello(ahead, source.hello(devnet))
                await syncer.wait_for_height(8)
                nursery.cancel_scope.cancel()

    trio.run(main)

    assert node.store.heaviest() == source.head()
