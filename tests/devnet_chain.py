"""Small devnets for tests: deterministic keys per test module, a genesis, signed transfers.

Several test modules build their own devnet genesis through the FVM (two funded accounts, one
miner) and differ only by the seed labels of their keys and the network name; the label keeps
their keys and therefore their chains apart. Built with
:func:`node.devnet.genesis.build_devnet_genesis` on the real v10 devnet bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.tipset_pipeline import TipsetPipeline, devnet_pipeline
from config.networks import NetworkPreset, devnet_preset
from fvm.address import Address
from fvm.bundle import Bundle
from fvm.message import Message, SignedMessage
from fvm.state_tree import StateTree
from fvm.token import FILECOIN_PRECISION
from node.devnet.genesis import (
    DevnetGenesis,
    DevnetGenesisSpec,
    build_devnet_genesis,
    write_genesis_car,
)
from node.devnet.keys import Key, KeyType
from node.devnet.producer import DevnetProducer, head_state_view
from node.message_pool import MessagePool
from store.blockstore import Blockstore, MemoryBlockstore
from store.lmdb_blockstore import BLOCKS_DB, LmdbBlockstore

BALANCE = 1_000 * FILECOIN_PRECISION
GENESIS_TIME = 1_700_000_000


@dataclass(frozen=True)
class DevnetKeys:
    """The keys of one test module's devnet, each generated from ``"<label> <role>"``."""

    label: str
    alice: Key
    bob: Key
    owner: Key
    worker: Key

    @classmethod
    def labelled(cls, label: str) -> DevnetKeys:
        def key(kind: KeyType, role: str) -> Key:
            return Key.generate(kind, f"{label} {role}".encode())

        return cls(
            label=label,
            alice=key(KeyType.SECP256K1, "alice"),
            bob=key(KeyType.BLS, "bob"),
            owner=key(KeyType.SECP256K1, "owner"),
            worker=key(KeyType.BLS, "worker"),
        )

    @property
    def network(self) -> str:
        return f"fvm-node-{self.label}"

    def genesis(self, bundle: Bundle, balance: int = BALANCE) -> DevnetGenesis:
        """Alice (secp256k1) and Bob (BLS) funded with ``balance``; the owner's miner."""
        spec = DevnetGenesisSpec(
            network_name=self.network,
            timestamp=GENESIS_TIME,
            accounts=[(self.alice, balance), (self.bob, balance)],
            miner_owner=self.owner,
            miner_worker=self.worker,
            verifreg_root=Key.generate(KeyType.SECP256K1, f"{self.label} root".encode()),
            remainder_owner=Key.generate(KeyType.SECP256K1, f"{self.label} remainder".encode()),
        )
        return build_devnet_genesis(spec, bundle, MemoryBlockstore())


@dataclass(frozen=True)
class DevnetNodes:
    """Opens pipelines over fresh or existing LMDB directories holding one devnet's genesis."""

    directory: Path
    keys: DevnetKeys
    bundle: Bundle
    genesis: DevnetGenesis
    preset: NetworkPreset

    @classmethod
    def in_directory(
        cls, directory: Path, keys: DevnetKeys, bundle: Bundle, genesis: DevnetGenesis
    ) -> DevnetNodes:
        """Write ``genesis.car`` into ``directory``, with the devnet preset that names it."""
        write_genesis_car(directory / "genesis.car", genesis)
        preset = devnet_preset(directory, genesis_cid=genesis.cid, network_name=keys.network)
        return cls(directory, keys, bundle, genesis, preset)

    def open(self, path: Path) -> TipsetPipeline:
        store = ChainStore(LmdbBlockstore(path, map_size=1 << 30))
        store.load_genesis(self.directory / "genesis.car")
        return devnet_pipeline(store, self.preset, self.bundle, self.genesis.miner)

    def producer(self, pipeline: TipsetPipeline) -> DevnetProducer:
        """A producer signing with the worker key, over a fresh pool on ``pipeline``'s head."""
        pool = MessagePool(head_state_view(pipeline))
        return DevnetProducer(pipeline, pool, self.genesis.miner, self.keys.worker)


def produce_transfer_chain(
    directory: Path, keys: DevnetKeys, bundle: Bundle, chain_dir: str, epochs: list[int]
) -> TipSet:
    """A node directory holding a chain with a block at each of ``epochs`` (the gaps are null
    rounds), Alice and Bob paying each other in every block; returns the head, with the store
    closed."""
    nodes = DevnetNodes.in_directory(directory, keys, bundle, keys.genesis(bundle))
    pipeline = nodes.open(directory / chain_dir)
    producer = nodes.producer(pipeline)
    try:
        for nonce, epoch in enumerate(epochs):
            for sender, receiver in ((keys.alice, keys.bob), (keys.bob, keys.alice)):
                transfer = signed_transfer(sender, receiver.address, nonce, 1_000 * epoch)
                producer.message_pool.add(transfer, local=True)
            producer.produce(epoch)
        return pipeline.head()
    finally:
        pipeline.chain_store.blockstore.close()


def forge_parent_state(
    chain_dir: Path, epoch: int, change: Callable[[StateTree, Blockstore], None]
) -> None:
    """Store, under the CID of the state root the tipset at ``epoch`` starts from, the root
    block of that state after ``change``: a valid block where the honest one was, as a corrupt
    or tampered store would hold it (replay must notice)."""
    with LmdbBlockstore(chain_dir) as blockstore:
        tipset = ChainStore(blockstore).tipset_at_height(epoch)
        assert tipset.height == epoch
        root = tipset.parent_state
        tree = StateTree(blockstore, root)
        change(tree, blockstore)
        forged_root = tree.flush()
        forged = blockstore.get(forged_root)
        assert forged is not None and forged_root != root
        blocks = blockstore.open_db(BLOCKS_DB)
        blockstore.transact(lambda txn: txn.put(root.to_bytes(), forged, db=blocks))


def signed_transfer(
    key: Key, to: Address, nonce: int, value: int = FILECOIN_PRECISION
) -> SignedMessage:
    """A plain value transfer with generous gas, signed by ``key``."""
    message = Message(
        to=to,
        from_=key.address,
        sequence=nonce,
        value=value,
        gas_limit=30_000_000,
        gas_fee_cap=10**9,
        gas_premium=10**5,
    )
    return key.sign_message(message)
