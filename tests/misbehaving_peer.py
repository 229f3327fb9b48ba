"""A misbehaving Filecoin peer for tests: a real py-libp2p host that says hello and answers chain
exchange, but badly.

Issue 4 asks that a peer serving wrong state roots, bad signatures, malformed CBOR, oversized or
endless responses is penalised and never stops sync from an honest peer. The in-process syncer
tests cover the logic; this harness lets the node meet such a peer over TCP, Noise and yamux on
loopback. It runs the project's own services and codecs: the host of :mod:`node.p2p_host`, the
hello service of :mod:`node.hello_service` (announcing a head so the node syncs from it), the
chain exchange server of :mod:`node.chain_exchange_service` and the wire types of
:mod:`chainsync.chain_exchange`. Only the answers are bad.

Two families of misbehaviour:

* a *forged chain*, served faithfully: one block on the devnet genesis, made by the devnet
  producer with the miner's worker key, then altered (:func:`forge_chain`). With a wrong
  ``ParentStateRoot`` the block is re-signed by the worker, so it passes the signature check and
  only executing its parent reveals the lie (the pipeline records a consensus mismatch); with a
  block signed by another key, or a message whose signature is not its sender's (the block
  re-signed by the worker around it), block validation refuses it;
* a *broken server*, announcing a head an honest peer has (the node will want it) and answering
  every request with bytes that are not a response (a response whose error text is not UTF-8, so
  strict DAG-CBOR refuses it), more bytes than the node's response cap (a response claiming a
  million tipsets, the announced one repeated), or a response that trickles out a byte at a time
  and never ends.

It can also send requests of its own (:meth:`MisbehavingPeer.send_request`), such as
:data:`MALFORMED_REQUEST`, to the node's chain exchange server.

A test can hold the first answers (:meth:`MisbehavingPeer.hold`) until it has connected the node
to an honest peer as well, so the node's request moves on to the honest peer instead of failing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import trio
from libp2p.abc import INetStream
from libp2p.peer.id import ID as PeerID

from chainsync.chain_exchange import (
    BSTipSet,
    ChainStoreReader,
    Request,
    Response,
    Status,
    serve_request,
)
from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.hello import HelloMessage, LatencyMessage
from chainsync.messages_root import compute_msg_meta
from chainsync.tipset_pipeline import devnet_pipeline
from config.networks import devnet_preset
from fvm.bundle import Bundle
from fvm.message import Message, SignedMessage
from fvm.token import FILECOIN_PRECISION
from node.cbor_rpc import read_cbor_item, request
from node.chain_exchange_service import (
    CHAIN_EXCHANGE_PROTOCOL,
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    serve_chain_exchange,
)
from node.devnet.keys import Key, KeyType
from node.devnet.layout import Devnet, DevnetAccount
from node.devnet.producer import DevnetProducer, head_state_view
from node.hello_service import HelloCallbacks, HelloService
from node.message_pool import MessagePool
from node.p2p_host import HostConfig, P2PHost, running_host
from store.blockstore import MemoryBlockstore
from store.cid import CID
from store.lmdb_blockstore import LmdbBlockstore

logger = logging.getLogger(__name__)

OVERSIZED_CLAIMED_TIPSETS: Final = 1 << 20
"""The chain length an oversized response claims: far more bytes than the response cap."""
OVERSIZED_EXTRA_BYTES: Final = 1 << 20
"""How far past the node's response cap the oversized response goes before it stops writing."""
WRITE_CHUNK_BYTES: Final = 64 * 1024
TRICKLE_INTERVAL_SECONDS: Final = 0.2
STRANGER_SEED: Final = b"misbehaving-peer: not the devnet's worker"


class Misbehaviour(enum.Enum):
    """What the peer does wrong; the values name the test cases."""

    WRONG_STATE_ROOT = "wrong_state_root"
    BAD_BLOCK_SIGNATURE = "bad_block_signature"
    BAD_MESSAGE_SIGNATURE = "bad_message_signature"
    MALFORMED_CBOR = "malformed_cbor"
    OVERSIZED_RESPONSE = "oversized_response"
    ENDLESS_RESPONSE = "endless_response"

    @property
    def forges_chain(self) -> bool:
        """Whether the peer serves a forged chain (else it serves bytes that are not answers)."""
        return self in FORGED_CHAIN_MISBEHAVIOURS


FORGED_CHAIN_MISBEHAVIOURS: Final = frozenset(
    {
        Misbehaviour.WRONG_STATE_ROOT,
        Misbehaviour.BAD_BLOCK_SIGNATURE,
        Misbehaviour.BAD_MESSAGE_SIGNATURE,
    }
)


# -- forged chains ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgedChain:
    """A store holding the devnet genesis and one bad block on it (``tipset``).

    ``weight`` is the weight of the valid block the bad one was made from, which the peer claims
    for the bad one. ``wrong_state_root`` is the parent state
    the bad block claims in the wrong-state-root case: the honest block's *own* resulting state,
    where its parent (genesis) state belongs.
    """

    store: ChainStore
    tipset: TipSet
    weight: int
    wrong_state_root: CID | None

    def hello(self) -> HelloMessage:
        tipset = self.tipset
        return HelloMessage(tipset.cids, tipset.height, self.weight, self.store.genesis().cids[0])


@contextmanager
def forge_chain(
    devnet: Devnet,
    bundle: Bundle,
    directory: Path,
    misbehaviour: Misbehaviour,
    epoch: int,
) -> Iterator[ForgedChain]:
    """Make the forged chain of ``misbehaviour`` (one of :data:`FORGED_CHAIN_MISBEHAVIOURS`)
    with its block at ``epoch`` (the wall clock must have reached it), in an LMDB store in
    ``directory`` that is closed on exit."""
    if not misbehaviour.forges_chain:
        raise ValueError(f"{misbehaviour} serves no chain")
    directory.mkdir(parents=True, exist_ok=True)
    blockstore = LmdbBlockstore(directory, map_size=1 << 28)
    try:
        store = ChainStore(blockstore)
        store.load_genesis(devnet.genesis_path)
        preset = devnet_preset(
            devnet.root,
            block_delay_secs=devnet.block_delay_secs,
            genesis_cid=devnet.genesis_cid,
            network_name=devnet.network_name,
        )
        pipeline = devnet_pipeline(store, preset, bundle, devnet.miner)
        pool = MessagePool(head_state_view(pipeline))
        sender = _secp_account(devnet)
        if misbehaviour is Misbehaviour.BAD_MESSAGE_SIGNATURE:
            assert pool.add(sender.key.sign_message(_transfer(sender)), local=True)
        producer = DevnetProducer(pipeline, pool, devnet.miner, devnet.miner_worker)
        honest = producer.produce(epoch)
        if misbehaviour is Misbehaviour.BAD_MESSAGE_SIGNATURE:
            assert honest.secpk_messages, "the transfer was not included"
        honest_tipset = TipSet([honest.header])
        weight = pipeline.weight(honest_tipset)
        wrong_state_root = None
        unsigned = replace(honest.header, block_sig=None)
        secpk_messages = honest.secpk_messages
        if misbehaviour is Misbehaviour.WRONG_STATE_ROOT:
            wrong_state_root = pipeline.parent_context(honest_tipset).state_root
            header = devnet.miner_worker.sign_block(
                replace(unsigned, parent_state_root=wrong_state_root)
            )
        elif misbehaviour is Misbehaviour.BAD_BLOCK_SIGNATURE:
            header = Key.generate(KeyType.BLS, STRANGER_SEED).sign_block(unsigned)
        else:
            secpk_messages = tuple(_forge_signature(sender, s) for s in honest.secpk_messages)
            messages_root = compute_msg_meta(
                MemoryBlockstore(),
                [message.cid() for message in honest.bls_messages],
                [signed.cid() for signed in secpk_messages],
            )
            header = devnet.miner_worker.sign_block(replace(unsigned, messages=messages_root))
        store.put_block(header, honest.bls_messages, secpk_messages)
        tipset = TipSet([header])
        store.put_tipset(tipset, weight)
        yield ForgedChain(store, tipset, weight, wrong_state_root)
    finally:
        blockstore.close()


def _secp_account(devnet: Devnet) -> DevnetAccount:
    for account in devnet.accounts:
        if account.key.kind is KeyType.SECP256K1:
            return account
    raise ValueError(f"the devnet in {devnet.root} has no secp256k1 account")


def _transfer(sender: DevnetAccount) -> Message:
    """One FIL from ``sender`` to itself: a valid message, only its signature will be bad."""
    return Message(
        to=sender.address,
        from_=sender.address,
        sequence=0,
        value=FILECOIN_PRECISION,
        gas_limit=10_000_000,
        gas_fee_cap=10**10,
        gas_premium=10**5,
    )


def _forge_signature(sender: DevnetAccount, signed: SignedMessage) -> SignedMessage:
    """The message with its sender's signature over a *different* message (one more attoFIL)."""
    other = replace(signed.message, value=signed.message.value + 1)
    return SignedMessage(signed.message, sender.key.sign_message(other).signature)


# -- broken answers -----------------------------------------------------------------------------


def malformed_response(head: TipSet) -> bytes:
    """A complete CBOR item shaped like a response for ``head`` whose error text is not UTF-8,
    which strict DAG-CBOR refuses."""
    encoded = Response(Status.OK, "?", (BSTipSet(head.blocks, None),)).encode()
    valid_prefix = b"\x83\x00\x61?"  # [status 0, text(1) "?", ...
    assert encoded.startswith(valid_prefix)
    return b"\x83\x00\x61\xff" + encoded[len(valid_prefix) :]


MALFORMED_REQUEST: Final = b"\x83\x80\x61\xff\x01"
"""A complete CBOR item shaped like a request ``[[], Length, 1]`` whose length is a text string
that is not UTF-8: strict DAG-CBOR refuses it."""


def long_response_prefix(claimed_tipsets: int) -> bytes:
    """The start of a response ``[0, "", [...]]`` whose chain claims ``claimed_tipsets``."""
    empty = Response(Status.OK, "", ()).encode()
    assert empty == b"\x83\x00\x60\x80"
    return empty[:-1] + b"\x9a" + claimed_tipsets.to_bytes(4, "big")


def repeated_tipset(head: TipSet) -> bytes:
    """About :data:`WRITE_CHUNK_BYTES` of ``head``'s BSTipSet encoding, repeated."""
    encoded = Response(Status.OK, "", (BSTipSet(head.blocks, None),)).encode()
    response_header = b"\x83\x00\x60\x81"  # [status 0, "", [one tipset ...
    assert encoded.startswith(response_header)
    one = encoded[len(response_header) :]
    return one * max(1, WRITE_CHUNK_BYTES // len(one))


# -- the peer -----------------------------------------------------------------------------------


class MisbehavingPeer:
    """The harness; see the module docstring. Use :func:`running_misbehaving_peer`."""

    def __init__(
        self,
        host: P2PHost,
        misbehaviour: Misbehaviour,
        hello: HelloMessage,
        *,
        chain: ForgedChain | None = None,
        head: TipSet | None = None,
    ) -> None:
        if misbehaviour.forges_chain and chain is None:
            raise ValueError(f"{misbehaviour} needs a forged chain")
        if not misbehaviour.forges_chain and head is None:
            raise ValueError(f"{misbehaviour} needs the announced head")
        self.host = host
        self.misbehaviour = misbehaviour
        self.hello_message = hello
        self._chain = chain
        self._head = head
        self.requests: list[tuple[PeerID, Request]] = []
        self.bytes_written = 0
        self._released = trio.Event()
        self._released.set()
        self._request_arrived = trio.Event()
        self.hello = HelloService(
            host,
            HelloCallbacks(
                local_hello=hello.encode,
                on_hello=lambda peer, data: True,
                encode_latency=lambda arrival, sent: LatencyMessage(arrival, sent).encode(),
                on_latency=lambda peer, data, seconds: None,
            ),
        )
        if misbehaviour in (Misbehaviour.OVERSIZED_RESPONSE, Misbehaviour.ENDLESS_RESPONSE):
            host.set_stream_handler(CHAIN_EXCHANGE_PROTOCOL, self._stream_answer)
        else:
            serve_chain_exchange(host, self._answer)

    @property
    def peer_id(self) -> PeerID:
        return self.host.peer_id

    @property
    def address(self) -> str:
        return self.host.listen_addrs()[0]

    def hold(self) -> None:
        """Keep every request waiting (before its answer) until :meth:`release`."""
        self._released = trio.Event()

    def release(self) -> None:
        self._released.set()

    async def wait_for_request(self) -> None:
        await self._request_arrived.wait()

    async def send_request(self, peer: PeerID, data: bytes, *, timeout: float) -> bytes:
        """Send ``data`` as a chain exchange request to ``peer`` and return its answer; raises
        :class:`~node.cbor_rpc.PeerExchangeError` when the peer resets the stream."""
        return await request(
            self.host.libp2p_host,
            peer,
            CHAIN_EXCHANGE_PROTOCOL,
            data,
            timeout=timeout,
            max_response_bytes=MAX_RESPONSE_BYTES,
        )

    async def _take(self, peer: PeerID, data: bytes) -> Request:
        request = Request.decode(data, f"chain exchange request from {peer}")
        self.requests.append((peer, request))
        self._request_arrived.set()
        await self._released.wait()
        return request

    async def _answer(self, peer: PeerID, data: bytes) -> bytes:
        asked = await self._take(peer, data)
        if self._chain is not None:
            answer = serve_request(asked, ChainStoreReader(self._chain.store)).encode()
        else:
            assert self._head is not None
            answer = malformed_response(self._head)
        self.bytes_written += len(answer)
        return answer

    async def _stream_answer(self, stream: INetStream) -> None:
        peer: PeerID = stream.muxed_conn.peer_id
        try:
            await self._take(peer, await read_cbor_item(stream, MAX_REQUEST_BYTES))
            assert self._head is not None
            written = await self._write(stream, long_response_prefix(OVERSIZED_CLAIMED_TIPSETS))
            body = repeated_tipset(self._head)
            if self.misbehaviour is Misbehaviour.OVERSIZED_RESPONSE:
                while written <= MAX_RESPONSE_BYTES + OVERSIZED_EXTRA_BYTES:
                    written += await self._write(stream, body)
                await stream.close()
                return
            while True:
                for index in range(len(body)):
                    await trio.sleep(TRICKLE_INTERVAL_SECONDS)
                    await self._write(stream, body[index : index + 1])
        except Exception as error:  # the node resets the stream it gives up on: the point
            logger.debug("misbehaving answer to %s ended: %r", peer, error)
            with trio.CancelScope(shield=True):
                try:
                    await stream.reset()
                except Exception:
                    logger.debug("reset after a misbehaving answer raised", exc_info=True)

    async def _write(self, stream: INetStream, data: bytes) -> int:
        await stream.write(data)
        self.bytes_written += len(data)
        return len(data)


@asynccontextmanager
async def running_misbehaving_peer(
    data_dir: Path,
    misbehaviour: Misbehaviour,
    hello: HelloMessage,
    *,
    chain: ForgedChain | None = None,
    head: TipSet | None = None,
) -> AsyncIterator[MisbehavingPeer]:
    """A :class:`MisbehavingPeer` listening on loopback, stopped when the block exits."""
    async with running_host(HostConfig(data_dir)) as host:
        yield MisbehavingPeer(host, misbehaviour, hello, chain=chain, head=head)
