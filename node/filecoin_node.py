"""The node: one chain store, its pipeline and syncer, wired to libp2p, gossip and metrics.

Lotus assembles the same parts with dependency injection (``node/builder.go``,
``node/builder_chain.go``); the order here follows what each part needs when it starts:

1. the settings and the proof verifier are logged (``accept-all`` verifies *no* proof: every
   seal, PoSt, aggregate and replica-update proof is taken as valid);
2. the LMDB chain store in ``<data_dir>/chain`` is opened and the genesis imported into an
   empty store, or checked against the one stored (Lotus ``modules.ErrorGenesis`` /
   ``LoadGenesis``);
3. the tipset pipeline (the devnet's: :func:`chainsync.tipset_pipeline.devnet_pipeline`),
   the message pool at the head, the peer manager, the syncer over a chain-exchange fetcher;
4. the libp2p host with gossipsub attached *before* any peer is dialled, the hello service
   (``node/hello/hello.go``: our head; another genesis drops the connection; a peer's head goes
   to the syncer), the chain-exchange server over the chain store (``chain/exchange/server.go``);
5. topic validators (``chain/sub/incoming.go``): ``/fil/blocks/<network>`` decodes a
   ``BlockMsg``, collects its messages from the chain store, the message pool, or by chain
   exchange from the peer that forwarded it (where Lotus uses bitswap), checks them against the
   header's ``Messages`` and hands the full block to the syncer; ``/fil/msgs/<network>`` decodes
   a ``SignedMessage`` and adds it to the pool (a pool error ignores or rejects by its
   ``ignore`` flag);
6. the metrics exporter and a once-a-second update of the expected epoch (wall clock), peers,
   pool size and head, with a progress line on a terminal while catching up;
7. in devnet producer mode, the block production loop instead of the syncer: at every epoch's
   timestamp (``genesis + epoch * block time``, as Lotus's miner waits for the epoch), one block
   on the head, published on the blocks topic. A producer that fell behind the wall clock
   produces at the wall-clock epoch, leaving null rounds.

Only the devnet has a tipset pipeline so far; mainnet and calibnet need state migrations and
builtin-actors bundles per network version, which the node does not have yet.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Final, TextIO

import trio
from libp2p.peer.id import ID as PeerID

from chainsync.chain_exchange import (
    MESSAGES,
    ChainStoreReader,
    ExchangeStatusError,
    Request,
    Response,
    expand_compacted,
    process_response,
    serve_request,
)
from chainsync.chain_store import ChainStore
from chainsync.chain_types import BlockMsg, FullBlock, TipSet
from chainsync.hello import HelloMessage, LatencyMessage
from chainsync.messages_root import compute_msg_meta
from chainsync.syncer import Syncer
from chainsync.tipset_fetcher import STATUS_ERROR_LABEL
from chainsync.tipset_pipeline import TipsetPipeline, devnet_pipeline
from config.bundles import actors_search_path, load_network_bundle
from config.networks import NetworkPreset, expected_epoch
from config.settings import CHAIN_DIR, NodeSettings, describe_settings, resolve_preset
from fvm.address import Address
from fvm.message import Message, SignedMessage
from fvm.network_version import actors_version_for
from fvm.proofs.verifier import AcceptAllProofVerifier
from fvm.signature import SignatureType
from fvm.state_tree import InitActorState, StateTree
from fvm.wasm_invoker import WasmActorInvoker
from metrics.exporter import MetricsExporter
from metrics.node_metrics import Direction, NodeMetrics, SyncState
from node.cbor_rpc import PeerExchangeError
from node.chain_exchange_service import ChainExchangeClient, serve_chain_exchange
from node.devnet.genesis import MINER_START_ID
from node.devnet.layout import Devnet
from node.devnet.producer import DevnetProducer, head_state_view
from node.hello_service import HelloCallbacks, HelloService
from node.message_pool import MessagePool, MessagePoolError, SenderState, StateView
from node.p2p_host import HostConfig, P2PHost, running_host
from node.peer_manager import PeerManager, reason_for_error
from node.pubsub import (
    FilecoinPubsub,
    GossipConfig,
    PublishRejected,
    Subscription,
    Verdict,
    blocks_topic,
    messages_topic,
    running_pubsub,
)
from node.version import node_version
from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore, get_required
from store.car import CarReader, open_maybe_compressed
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput
from store.lmdb_blockstore import LmdbBlockstore

logger = logging.getLogger(__name__)

UPDATE_INTERVAL_SECONDS: Final = 1.0
# A gossiped block's missing messages are asked of its forwarder within this time (the topic
# validator itself has five seconds).
MESSAGE_FETCH_TIMEOUT_SECONDS: Final = 3.0
PROOF_VERIFIER_NOTICE: Final = (
    "proof verifier: accept-all (AcceptAllProofVerifier) verifies NOTHING: every seal, PoSt, "
    "aggregate and replica-update proof is taken as valid (its gas is still charged)"
)


class NodeError(FvmNodeError):
    """The node cannot start: an unsupported network, a store holding another chain."""


Clock = Callable[[], float]


# -- the chain store as the chain-exchange server and the syncer see it ---------------------


class ChainExchangeFetcher:
    """The syncer's :class:`chainsync.tipset_fetcher.TipsetFetcher`: encode the request, send
    it with :class:`ChainExchangeClient`, decode the answer. Raises
    :class:`node.cbor_rpc.PeerExchangeError` when the exchange fails and
    :class:`chainsync.chain_exchange.ExchangeCodecError` when the answer does not decode (the
    caller counts and penalises)."""

    def __init__(self, client: ChainExchangeClient, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    async def fetch(self, peer: PeerID, request: Request) -> Response:
        data = await self._client.request(peer, request.encode(), timeout=self._timeout)
        return Response.decode(data, f"chain exchange response from {peer}")


# -- helpers ------------------------------------------------------------------------------------


def genesis_car_root(path: Path) -> CID:
    """The root of a genesis CAR (its genesis block's CID), reading only the CAR header."""
    with open_maybe_compressed(path) as stream:
        roots = CarReader(stream, source=str(path)).header.roots
    if len(roots) != 1:
        raise NodeError(f"genesis CAR {path} has {len(roots)} roots, not one")
    return roots[0]


def network_name_of(chain_store: ChainStore, genesis: TipSet) -> str:
    """The network name the init actor holds at genesis (Lotus ``stmgr.GetNetworkName``)."""
    tree = StateTree(chain_store.blockstore, genesis.parent_state)
    init_actor = tree.get_actor(Address.new_id(1))
    if init_actor is None:
        raise NodeError("the genesis state has no init actor")
    where = f"init actor state {init_actor.state}"
    state = InitActorState.from_cbor(
        dag_cbor.decode(get_required(chain_store.blockstore, init_actor.state), where), where
    )
    return state.network_name


def parent_state_view(blockstore: Blockstore, head: Callable[[], TipSet]) -> StateView:
    """A message-pool state view over the head's parent state (read-only)."""

    def view(address: Address) -> SenderState | None:
        actor = StateTree(blockstore, head().parent_state).get_actor(address)
        return None if actor is None else SenderState(actor.sequence, actor.balance)

    return view


class ProgressLine:
    """A one-line sync status rewritten in place on a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self._stream = sys.stderr if stream is None else stream
        self.enabled = self._stream.isatty() if enabled is None else enabled
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            self._stream.write("\r\x1b[2K" + text)
            self._stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._shown = False


# -- the node -----------------------------------------------------------------------------------


class FilecoinNode:
    """A running node. ``async with FilecoinNode(settings) as node:`` starts everything and
    stops it on exit; :meth:`serve_forever` waits until cancelled.

    Attributes are available inside the block: :attr:`chain_store`, :attr:`pipeline`,
    :attr:`message_pool`, :attr:`peers`, :attr:`metrics`, :attr:`host`, :attr:`pubsub`, and
    :attr:`syncer` (None for a producer) or :attr:`producer` (None for a follower).
    """

    def __init__(
        self,
        settings: NodeSettings,
        *,
        producer: Devnet | None = None,
        progress: ProgressLine | None = None,
        clock: Clock = time.time,
    ) -> None:
        if settings.network != "devnet":
            raise NodeError(
                f"network {settings.network}: only the devnet can be followed so far (mainnet "
                "and calibnet need state migrations and per-version actor bundles)"
            )
        self.settings = settings
        self._devnet = producer
        self._clock = clock
        self.progress = ProgressLine() if progress is None else progress
        self.syncer: Syncer | None = None
        self.producer: DevnetProducer | None = None
        self._stack: AsyncExitStack | None = None
        self._last_head: TipSet | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> FilecoinNode:
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self._running())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, traceback)

    async def serve_forever(self) -> None:
        await trio.sleep_forever()

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        settings = self.settings
        logger.info("fvm-node %s starting; settings:", node_version())
        for line in describe_settings(settings):
            logger.info("  %s", line)
        logger.warning(PROOF_VERIFIER_NOTICE)
        self._open_chain()
        try:
            self._assemble()
            exporter = self._start_exporter()
            try:
                async with running_host(self._host_config()) as host:
                    self.host = host
                    host.refuse_peers(self.peers.is_banned)
                    gossip = GossipConfig(
                        network_name=self.network_name, bootstrappers=host.bootstrap_peer_ids()
                    )
                    async with running_pubsub(host, gossip) as pubsub:
                        self.pubsub = pubsub
                        async with trio.open_nursery() as nursery:
                            self._nursery = nursery
                            await self._attach_services(host, pubsub, nursery)
                            try:
                                yield
                            finally:
                                nursery.cancel_scope.cancel()
            finally:
                if exporter is not None:
                    exporter.stop()
                self.progress.clear()
        finally:
            self.blockstore.close()

    # -- start-up steps ---------------------------------------------------------------------

    def _open_chain(self) -> None:
        settings = self.settings
        preset = resolve_preset(settings)
        if self._devnet is not None:
            preset = _with_genesis(preset, self._devnet)
        if preset.genesis is None:
            raise NodeError(f"network {preset.name} has no genesis file")
        expected_genesis = genesis_car_root(preset.genesis)
        if self._devnet is not None and expected_genesis != self._devnet.genesis_cid:
            raise NodeError(
                f"{preset.genesis} holds genesis {expected_genesis}, but the devnet's is "
                f"{self._devnet.genesis_cid}"
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.blockstore = LmdbBlockstore(settings.data_dir / CHAIN_DIR)
        self.chain_store = ChainStore(self.blockstore)
        if self.chain_store.heaviest() is None:
            logger.info("importing genesis %s from %s", expected_genesis, preset.genesis)
            genesis = self.chain_store.load_genesis(preset.genesis)
        else:
            genesis = self.chain_store.genesis()
        if genesis.cids != (expected_genesis,):
            self.blockstore.close()
            raise NodeError(
                f"the store in {settings.data_dir} holds the chain of genesis {genesis.cids[0]}, "
                f"not {expected_genesis} ({preset.genesis})"
            )
        self.genesis = genesis
        self.network_name = network_name_of(self.chain_store, genesis)
        self.preset = _named(preset, self.network_name, genesis.cids[0])

    def _assemble(self) -> None:
        settings = self.settings
        preset = self.preset
        self.bundle = bundle = load_network_bundle(
            preset,
            actors_version_for(preset.genesis_network_version),
            actors_search_path(settings.actors_dir),
        )
        invoker = WasmActorInvoker(
            AcceptAllProofVerifier(),
            settings.execution.module_cache_dir,
            persist=settings.execution.persist_module_cache,
        )
        # The devnet's only miner is the first one its genesis creates.
        miner = self._devnet.miner if self._devnet is not None else Address.new_id(MINER_START_ID)
        self.pipeline: TipsetPipeline = devnet_pipeline(
            self.chain_store, preset, bundle, miner, invoker=invoker, clock=self._clock
        )
        head = self.pipeline.head()
        # The producer alone uses its pipeline, so the pool may see the head's executed state.
        # A follower's pipeline runs in the syncer's worker thread: its pool reads the head's
        # parent state (one epoch behind), which is stored and never changes.
        state_view = (
            head_state_view(self.pipeline)
            if self._devnet is not None
            else parent_state_view(self.blockstore, self.head)
        )
        self.message_pool = MessagePool(
            state_view,
            preset.network_version_at(head.height + 1),
            base_fee=head.parent_base_fee,
        )
        self.metrics = NodeMetrics(version=node_version(), network=preset.name)
        self.metrics.set_store_size_source(lambda: self.blockstore.stats().used_bytes)
        self.peers = PeerManager(on_ban=self._on_ban)
        self.exchange_client: ChainExchangeClient | None = None
        if self._devnet is not None:
            self.producer = DevnetProducer(
                self.pipeline, self.message_pool, miner, self._devnet.miner_worker
            )
        logger.info(
            "chain %s (network name %r): head tipset {%s}, genesis %s, head %d",
            preset.name,
            self.network_name,
            ",".join(str(cid) for cid in head.cids),
            self.genesis.cids[0],
            head.height,
        )

    def _start_exporter(self) -> MetricsExporter | None:
        address = self.settings.metrics
        if address is None:
            self.exporter = None
            return None
        exporter = MetricsExporter(self.metrics.registry, address.host, address.port)
        exporter.start()
        self.exporter = exporter
        logger.info("metrics on %s", exporter.url)
        return exporter

    def _host_config(self) -> HostConfig:
        settings = self.settings
        return HostConfig(
            data_dir=settings.data_dir,
            listen_addrs=settings.listen,
            bootstrap_peers=settings.bootstrap,
        )

    async def _attach_services(
        self, host: P2PHost, pubsub: FilecoinPubsub, nursery: trio.Nursery
    ) -> None:
        self.exchange_client = ChainExchangeClient(host)
        if self.producer is None:
            fetcher = ChainExchangeFetcher(
                self.exchange_client, self.settings.sync.request_timeout_secs
            )
            self.syncer = Syncer(
                self.chain_store,
                self.pipeline,
                fetcher,
                self.peers,
                self.settings.sync,
                metrics=self.metrics,
                expected_epoch=self.expected_epoch,
            )
        host.on_connected(self._on_connected)
        host.on_disconnected(self._on_disconnected)
        self.hello = HelloService(
            host,
            HelloCallbacks(
                local_hello=self._local_hello,
                on_hello=self._on_hello,
                encode_latency=lambda arrival, sent: LatencyMessage(arrival, sent).encode(),
                on_latency=self._on_latency,
                on_failure=self._on_exchange_failure,
            ),
        )
        reader = ChainStoreReader(self.chain_store)

        async def answer(peer: PeerID, data: bytes) -> bytes:
            self.metrics.on_chain_exchange_request(Direction.SERVER)
            request = Request.decode(data, f"chain exchange request from {peer}")
            return serve_request(request, reader).encode()

        serve_chain_exchange(host, answer, on_error=self._on_server_error)
        self.blocks_topic = blocks_topic(self.network_name)
        self.messages_topic = messages_topic(self.network_name)
        pubsub.set_validator(self.blocks_topic, self._validate_block)
        pubsub.set_validator(self.messages_topic, self._validate_message)
        for topic in (self.blocks_topic, self.messages_topic):
            subscription = await pubsub.subscribe(topic)
            nursery.start_soon(self._drain, subscription)
        if self.syncer is not None:
            await nursery.start(self.syncer.run)
        if self.producer is not None:
            nursery.start_soon(self._produce_blocks, self.producer)
        nursery.start_soon(self._update_periodically)
        self._update()
        host.start_bootstrap()
        logger.info("listening on %s", ", ".join(host.listen_addrs()))

    # -- queries ----------------------------------------------------------------------------

    def head(self) -> TipSet:
        """The head. A follower reads the syncer's (the pipeline runs in the syncer's worker
        thread, so the event loop does not call into it while it syncs)."""
        return self.pipeline.head() if self.syncer is None else self.syncer.head

    def expected_epoch(self) -> int:
        """The epoch the wall clock says the chain is at."""
        return expected_epoch(self.preset, self.genesis.min_timestamp, self._clock())

    def listen_addrs(self) -> list[str]:
        return self.host.listen_addrs()

    @property
    def metrics_url(self) -> str | None:
        return None if self.exporter is None else self.exporter.url

    def _head_weight(self, head: TipSet) -> int:
        return self.pipeline.weight(head)

    # -- peers and hello --------------------------------------------------------------------

    async def _on_connected(self, peer: PeerID) -> None:
        self.peers.add_peer(peer)

    async def _on_disconnected(self, peer: PeerID) -> None:
        self.peers.mark_disconnected(peer)

    def _on_ban(self, peer: PeerID) -> None:
        logger.warning("banning peer %s", peer)
        self._nursery.start_soon(self.host.disconnect, peer)

    def _local_hello(self) -> bytes:
        head = self.head()
        return HelloMessage(
            head.cids, head.height, self._head_weight(head), self.genesis.cids[0]
        ).encode()

    def _on_hello(self, peer: PeerID, data: bytes) -> bool:
        hello = HelloMessage.decode(data, f"hello from {peer}")
        if hello.genesis_hash != self.genesis.cids[0]:
            logger.info(
                "peer %s is on another chain (genesis %s); disconnecting", peer, hello.genesis_hash
            )
            return False
        self.peers.record_hello(peer, hello.heaviest_tipset_height, hello.heaviest_tipset_weight)
        if self.syncer is not None:
            self.syncer.on_hello(peer, hello)
        return True

    def _on_latency(self, peer: PeerID, data: bytes, seconds: float) -> None:
        try:
            LatencyMessage.decode(data, f"latency from {peer}")
        except MalformedInput as error:
            self._on_exchange_failure(peer, error)
            return
        self.peers.record_latency(peer, seconds)

    def _on_exchange_failure(self, peer: PeerID, error: PeerExchangeError | MalformedInput) -> None:
        reason = reason_for_error(error)
        self.metrics.on_peer_penalty(reason.value)
        self.peers.penalize(peer, reason)

    def _on_server_error(self, peer: PeerID, error: PeerExchangeError) -> None:
        # Labelled by penalty reason, as the syncer's client errors are.
        self.metrics.on_chain_exchange_error(Direction.SERVER, reason_for_error(error).value)
        self._on_exchange_failure(peer, error)

    # -- gossip -----------------------------------------------------------------------------

    async def _drain(self, subscription: Subscription) -> None:
        async for _ in subscription:
            pass

    async def _validate_message(self, forwarder: PeerID, data: bytes) -> Verdict:
        topic = self.messages_topic
        self.metrics.on_gossip_received(topic)
        try:
            signed = SignedMessage.decode(data, f"gossiped message from {forwarder}")
        except MalformedInput:
            self.metrics.on_gossip_rejected(topic, "malformed")
            raise
        try:
            self.message_pool.add(signed)
        except MessagePoolError as error:
            self.metrics.on_gossip_rejected(topic, type(error).__name__)
            logger.debug("message %s from %s refused: %s", signed.cid(), forwarder, error)
            return Verdict.IGNORE if error.ignore else Verdict.REJECT
        self.metrics.set_mpool_pending(self.message_pool.pending_count())
        return Verdict.ACCEPT

    async def _validate_block(self, forwarder: PeerID, data: bytes) -> Verdict:
        topic = self.blocks_topic
        self.metrics.on_gossip_received(topic)
        try:
            block_msg = BlockMsg.decode(data, f"gossiped block from {forwarder}")
        except MalformedInput:
            self.metrics.on_gossip_rejected(topic, "malformed")
            raise
        if self.blockstore.has(block_msg.cid()):
            return Verdict.ACCEPT
        try:
            block = await self._collect_messages(forwarder, block_msg)
        except (PeerExchangeError, FvmNodeError) as error:
            self.metrics.on_gossip_rejected(topic, "messages_unavailable")
            logger.info("messages of block %s unavailable: %s", block_msg.cid(), error)
            return Verdict.IGNORE
        computed = compute_msg_meta(
            MemoryBlockstore(), block_msg.bls_messages, block_msg.secpk_messages
        )
        if computed != block_msg.header.messages:
            self.metrics.on_gossip_rejected(topic, "messages_root")
            return Verdict.REJECT
        if self.syncer is not None:
            self.syncer.on_block(forwarder, block)
        return Verdict.ACCEPT

    async def _collect_messages(self, peer: PeerID, block_msg: BlockMsg) -> FullBlock:
        """The block's messages, from the chain store or the pool, else by chain exchange."""
        bls = [self._known_bls(cid) for cid in block_msg.bls_messages]
        secpk = [self._known_secpk(cid) for cid in block_msg.secpk_messages]
        if all(message is not None for message in bls) and all(m is not None for m in secpk):
            return FullBlock(
                block_msg.header,
                tuple(m for m in bls if m is not None),
                tuple(m for m in secpk if m is not None),
            )
        return await self._fetch_messages(peer, block_msg)

    def _known_bls(self, cid: CID) -> Message | None:
        pending = self.message_pool.get(cid)
        if pending is not None and pending.signature.sig_type is SignatureType.BLS:
            return pending.message
        data = self.blockstore.get(cid)
        return None if data is None else Message.decode(data, str(cid))

    def _known_secpk(self, cid: CID) -> SignedMessage | None:
        pending = self.message_pool.get(cid)
        if pending is not None and pending.signature.sig_type is not SignatureType.BLS:
            return pending
        data = self.blockstore.get(cid)
        return None if data is None else SignedMessage.decode(data, str(cid))

    async def _fetch_messages(self, peer: PeerID, block_msg: BlockMsg) -> FullBlock:
        if self.exchange_client is None:
            raise NodeError("the chain-exchange client is not running")
        header = block_msg.header
        request = Request((header.cid(),), 1, MESSAGES)
        fetcher = ChainExchangeFetcher(self.exchange_client, MESSAGE_FETCH_TIMEOUT_SECONDS)
        tipset = TipSet([header])
        self.metrics.on_chain_exchange_request(Direction.CLIENT)
        # Counted and penalised as the syncer's requests are (chainsync.tipset_fetcher).
        try:
            response = await fetcher.fetch(peer, request)
            validated = process_response(request, response, [tipset])
        except ExchangeStatusError:
            self.metrics.on_chain_exchange_error(Direction.CLIENT, STATUS_ERROR_LABEL)
            raise
        except (PeerExchangeError, MalformedInput) as error:
            self.metrics.on_chain_exchange_error(Direction.CLIENT, reason_for_error(error).value)
            self._on_exchange_failure(peer, error)
            raise
        (block,) = expand_compacted(tipset, validated.messages[0])
        listed = (block_msg.bls_messages, block_msg.secpk_messages)
        got = (
            tuple(message.cid() for message in block.bls_messages),
            tuple(message.cid() for message in block.secpk_messages),
        )
        if got != listed:
            raise NodeError(f"peer {peer} sent other messages than block {header.cid()} lists")
        return block

    # -- production -------------------------------------------------------------------------

    async def _produce_blocks(self, producer: DevnetProducer) -> None:
        delay = self.preset.block_delay_secs
        genesis_time = self.genesis.min_timestamp
        while True:
            head = self.head()
            epoch = max(head.height + 1, self.expected_epoch())
            await trio.sleep(max(0.0, genesis_time + epoch * delay - self._clock()))
            try:
                block = producer.produce(epoch)
            except FvmNodeError as error:
                logger.error("producing the block of epoch %d failed: %s", epoch, error)
                await trio.sleep(delay)
                continue
            logger.info(
                "produced block %s at epoch %d with %d messages",
                block.cid(),
                epoch,
                len(block.bls_messages) + len(block.secpk_messages),
            )
            self._update()
            block_msg = BlockMsg(
                block.header,
                tuple(message.cid() for message in block.bls_messages),
                tuple(message.cid() for message in block.secpk_messages),
            )
            try:
                await self.pubsub.publish(self.blocks_topic, block_msg.encode())
            except PublishRejected as error:
                logger.error("publishing block %s failed: %s", block.cid(), error)

    # -- periodic updates -------------------------------------------------------------------

    async def _update_periodically(self) -> None:
        while True:
            await trio.sleep(UPDATE_INTERVAL_SECONDS)
            self._update()

    def _update(self) -> None:
        metrics = self.metrics
        head = self.head()
        if self._last_head is None or head.key != self._last_head.key:
            self._last_head = head
            self.message_pool.on_head_change(head.parent_base_fee)
        expected = self.expected_epoch()
        metrics.set_head(head.height)
        metrics.set_expected_epoch(expected)
        metrics.set_peers_connected(len(self.host.connected_peers()))
        metrics.set_mpool_pending(self.message_pool.pending_count())
        best = max(
            (
                record.head_height
                for peer in self.peers.best_peers()
                if (record := self.peers.peer(peer)) is not None and record.head_height is not None
            ),
            default=None,
        )
        if best is not None:
            metrics.set_best_peer_epoch(best)
        state = self._sync_state()
        metrics.set_sync_state(state)
        if state is SyncState.CATCHING_UP:
            target = max(expected, best or 0)
            self.progress.show(
                f"syncing: head {head.height} / {target} "
                f"({_percent(head.height, target)}), {len(self.host.connected_peers())} peers"
            )
        else:
            self.progress.clear()

    def _sync_state(self) -> SyncState:
        if self.syncer is None:
            return SyncState.FOLLOWING
        try:
            return SyncState(self.syncer.state)
        except ValueError:
            return SyncState.IDLE


def _percent(done: int, total: int) -> str:
    if total <= 0:
        return "100%"
    return f"{math.floor(100 * min(done, total) / total)}%"


def _with_genesis(preset: NetworkPreset, devnet: Devnet) -> NetworkPreset:
    return replace(preset, genesis=devnet.genesis_path, block_delay_secs=devnet.block_delay_secs)


def _named(preset: NetworkPreset, network_name: str, genesis_cid: CID) -> NetworkPreset:
    return replace(preset, network_name=network_name, genesis_cid=genesis_cid)
