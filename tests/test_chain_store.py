"""The chain store over LMDB: genesis import (mainnet, calibnet), message lists as Lotus
stores them (checked against the real genesis blocks), blocks refused when their Messages link
is wrong, tipsets by key and by height across null rounds, and the head across reopening."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chainsync.chain_store import ChainStore, GenesisError, MessagesRootMismatch, TipSetNotFound
from chainsync.chain_types import BlockHeader, MsgMeta, Ticket, TipSet, TipSetKey
from chainsync.messages_root import (
    BlockMessagesError,
    MissingBlockMessages,
    compute_msg_meta,
    load_block_messages,
    load_receipts,
    read_msg_meta_cids,
    receipts_root,
)
from fvm.address import Address
from fvm.crypto import secp256k1
from fvm.message import Message, SignedMessage
from fvm.receipt import RECEIPT_V0, Receipt
from fvm.signature import Signature
from store import dag_cbor
from store.amt import Amt
from store.blockstore import MemoryBlockstore, put
from store.car import CarWriter
from store.cid import CID
from store.lmdb_blockstore import LmdbBlockstore

MAINNET_GENESIS = CID.parse("bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2")
# The empty legacy (v0) AMT, [height 0, count 0, [bitmap 0x00, [], []]]: both message lists and
# the receipts of the real genesis blocks point at it.
EMPTY_LEGACY_AMT = CID.parse("bafy2bzacedswlcz5ddgqnyo3sak3jmhmkxashisnlpq6ujgyhe4mlobzpnhs6")
EMPTY_MSG_META = CID.parse("bafy2bzacecmda75ovposbdateg7eyhwij65zklgyijgcjwynlklmqazpwlhba")


@pytest.fixture
def chain(tmp_path: Path) -> ChainStore:
    return ChainStore(LmdbBlockstore(tmp_path / "chain", map_size=1 << 26))


@pytest.fixture
def mainnet(chain: ChainStore, mainnet_genesis: Path) -> TipSet:
    return chain.load_genesis(mainnet_genesis)


def child(parent: TipSet, height: int, seed: int, **fields: object) -> BlockHeader:
    """A header on ``parent`` made from its first block, with its own ticket."""
    template = parent.blocks[0]
    values: dict[str, object] = {
        "parents": parent.cids,
        "height": height,
        "ticket": Ticket(bytes([seed]) * 32),
        "timestamp": template.timestamp + 30 * (height - parent.height),
        "messages": EMPTY_MSG_META,
    }
    values.update(fields)
    return replace(template, **values)  # type: ignore[arg-type]


def test_mainnet_genesis_loads_and_becomes_the_head(chain: ChainStore, mainnet: TipSet) -> None:
    assert mainnet.cids == (MAINNET_GENESIS,)
    assert mainnet.height == 0
    assert chain.heaviest() == mainnet
    assert chain.genesis() == mainnet
    assert chain.index.head() == mainnet.key.to_bytes()
    result = chain.index.execution_result(mainnet.key.to_bytes())
    assert result is not None
    assert result.state_root == CID.parse(
        "bafy2bzacech3yb7xlb7c57v2xh7rvmt4skeidk7z2g36llksaz4biflblbt24"
    )
    assert result.receipts_root == EMPTY_LEGACY_AMT
    assert len(chain.blockstore) == 1222


def test_the_head_is_found_again_after_reopening(tmp_path: Path, mainnet_genesis: Path) -> None:
    with LmdbBlockstore(tmp_path / "chain", map_size=1 << 26) as blockstore:
        genesis = ChainStore(blockstore).load_genesis(mainnet_genesis)
    with LmdbBlockstore(tmp_path / "chain") as blockstore:
        assert ChainStore(blockstore).heaviest() == genesis


def test_calibnet_genesis_loads(chain: ChainStore, calibnet_genesis: Path) -> None:
    genesis = chain.load_genesis(calibnet_genesis)
    assert str(genesis.cids[0]) == "bafy2bzacecyaggy24wol5ruvs6qm73gjibs2l2iyhcqmvi7r7a4ph7zx3yqd4"
    assert genesis.blocks[0].timestamp == 1667326380
    assert chain.heaviest() == genesis


def test_a_second_genesis_does_not_move_the_head(
    chain: ChainStore, mainnet: TipSet, calibnet_genesis: Path
) -> None:
    calibnet = chain.load_genesis(calibnet_genesis)
    assert chain.heaviest() == mainnet
    assert sorted(chain.index.keys_at_height(0)) == sorted(
        [mainnet.key.to_bytes(), calibnet.key.to_bytes()]
    )


def test_a_genesis_car_must_have_one_root_at_height_zero(chain: ChainStore, tmp_path: Path) -> None:
    path = tmp_path / "two-roots.car"
    a, b = CID.hash_of(b"\x01"), CID.hash_of(b"\x02")
    with path.open("wb") as stream:
        writer = CarWriter(stream, [a, b])
        writer.write(a, b"\x01")
        writer.write(b, b"\x02")
    with pytest.raises(GenesisError, match="has 2"):
        chain.load_genesis(path)
    path = tmp_path / "not-a-header.car"
    with path.open("wb") as stream:
        CarWriter(stream, [a]).write(a, b"\x01")
    with pytest.raises(GenesisError, match="genesis block"):
        chain.load_genesis(path)


# -- message lists and receipts ---------------------------------------------------------------


def test_empty_message_lists_and_receipts_give_the_real_genesis_roots(mainnet: TipSet) -> None:
    header = mainnet.blocks[0]
    scratch = MemoryBlockstore()
    assert compute_msg_meta(scratch, [], []) == header.messages == EMPTY_MSG_META
    assert receipts_root(scratch, []) == header.parent_message_receipts == EMPTY_LEGACY_AMT
    assert scratch.get(EMPTY_LEGACY_AMT) == bytes.fromhex("8300008341008080")
    assert scratch.get(EMPTY_MSG_META) == MsgMeta(EMPTY_LEGACY_AMT, EMPTY_LEGACY_AMT).encode()


def test_calibnet_genesis_carries_the_same_empty_roots(
    calibnet_genesis: Path, tmp_path: Path
) -> None:
    with LmdbBlockstore(tmp_path / "c", map_size=1 << 26) as blockstore:
        header = ChainStore(blockstore).load_genesis(calibnet_genesis).blocks[0]
        assert header.messages == EMPTY_MSG_META
        assert header.parent_message_receipts == EMPTY_LEGACY_AMT
        assert load_block_messages(blockstore, header.messages) == ([], [])
        assert load_receipts(blockstore, header.parent_message_receipts) == []


def test_message_lists_are_legacy_amts_that_grow_past_eight_entries() -> None:
    store = MemoryBlockstore()
    cids = [CID.hash_of(bytes([n])) for n in range(9)]
    meta_cid = compute_msg_meta(store, cids, cids[:2])
    meta = MsgMeta.decode(store.get(meta_cid) or b"")
    height, count, node = dag_cbor.decode(store.get(meta.bls_messages_root) or b"")
    assert (height, count) == (1, 9)  # no bit-width field: the v0 layout
    assert node[0] == b"\x03"  # children in slots 0 and 1
    assert read_msg_meta_cids(store, meta_cid) == (cids, cids[:2])


def test_receipts_round_trip_through_their_array() -> None:
    store = MemoryBlockstore()
    receipts = [Receipt(0, b"", 10, None, RECEIPT_V0), Receipt(16, b"\x01", 7, None, RECEIPT_V0)]
    rebuilt = load_receipts(store, receipts_root(store, receipts))
    assert rebuilt == receipts
    v1 = [Receipt(0, b"", 10, CID.hash_of(b"events"))]
    assert load_receipts(store, receipts_root(store, v1)) == v1


def test_broken_message_lists_are_typed_errors() -> None:
    store = MemoryBlockstore()
    missing = CID.hash_of(b"absent")
    with pytest.raises(MissingBlockMessages, match="MsgMeta not found"):
        load_block_messages(store, missing)
    not_meta = put(store, dag_cbor.encode([1, 2, 3]))
    with pytest.raises(BlockMessagesError, match="MsgMeta"):
        load_block_messages(store, not_meta)
    ints = Amt.from_list(store, [5], legacy=True).flush()
    with pytest.raises(BlockMessagesError, match="entry 0 is not a CID"):
        load_block_messages(store, put(store, MsgMeta(ints, ints).encode()))
    v3_root = Amt.from_list(store, [missing]).flush()
    with pytest.raises(BlockMessagesError, match="legacy AMT root"):
        load_block_messages(store, put(store, MsgMeta(v3_root, v3_root).encode()))
    absent = compute_msg_meta(store, [missing], [])
    with pytest.raises(MissingBlockMessages, match="BLS message not found"):
        load_block_messages(store, absent)
    garbage = put(store, dag_cbor.encode("not a message"))
    with pytest.raises(BlockMessagesError, match="BLS message"):
        load_block_messages(store, compute_msg_meta(store, [garbage], []))


# -- blocks and tipsets -----------------------------------------------------------------------


def messages_for_a_block() -> tuple[list[Message], list[SignedMessage]]:
    key = bytes(range(1, 33))
    sender = Address.new_secp256k1(secp256k1.public_key(key))
    bls = [Message(to=Address.new_id(100), from_=Address.new_id(101), sequence=n) for n in range(2)]
    unsigned = Message(to=Address.new_id(100), from_=sender, sequence=0, gas_limit=1000)
    signature = Signature.new_secp256k1(secp256k1.sign(key, unsigned.encode()))
    return bls, [SignedMessage(unsigned, signature)]


def test_a_block_is_stored_with_its_messages(chain: ChainStore, mainnet: TipSet) -> None:
    bls, secp = messages_for_a_block()
    messages = compute_msg_meta(MemoryBlockstore(), [m.cid() for m in bls], [m.cid() for m in secp])
    header = child(mainnet, 1, 1, messages=messages)
    assert chain.put_block(header, bls, secp) == header.cid()
    assert chain.get_block_messages(header) == (bls, secp)
    assert chain.blockstore.get(header.cid()) == header.encode()


def test_a_block_whose_messages_link_is_wrong_is_refused(
    chain: ChainStore, mainnet: TipSet
) -> None:
    bls, secp = messages_for_a_block()
    header = child(mainnet, 1, 1)
    with pytest.raises(MessagesRootMismatch, match="its messages give"):
        chain.put_block(header, bls, secp)
    assert not chain.blockstore.has(header.cid())
    assert not chain.blockstore.has(bls[0].cid())


def build_chain(chain: ChainStore, genesis: TipSet, heights: list[int]) -> dict[int, TipSet]:
    """A chain of one-block tipsets at ``heights`` (gaps are null rounds)."""
    tipsets = {0: genesis}
    parent = genesis
    for height in heights:
        parent = TipSet([child(parent, height, height)])
        chain.put_tipset(parent)
        tipsets[height] = parent
    return tipsets


def test_tipsets_are_found_by_height_across_null_rounds(chain: ChainStore, mainnet: TipSet) -> None:
    tipsets = build_chain(chain, mainnet, [1, 2, 5, 6])
    head = tipsets[6]
    assert chain.tipset_at_height(2, head) == tipsets[2]
    assert chain.tipset_at_height(6, head) == head
    assert chain.tipset_at_height(0, head) == mainnet
    # Epochs 3 and 4 are null rounds: the tipset after them, or with prev the one before.
    assert chain.tipset_at_height(3, head) == tipsets[5]
    assert chain.tipset_at_height(4, head, prev=True) == tipsets[2]
    assert chain.tipset_at_height(5, head, prev=True) == tipsets[5]
    # From the head by default; the head is still genesis.
    assert chain.tipset_at_height(0) == mainnet
    with pytest.raises(Exception, match="above the starting tipset"):
        chain.tipset_at_height(7, head)
    with pytest.raises(Exception, match="negative"):
        chain.tipset_at_height(-1, head)


def test_tipsets_survive_reopening_and_forks_are_indexed(
    tmp_path: Path, mainnet_genesis: Path
) -> None:
    with LmdbBlockstore(tmp_path / "chain", map_size=1 << 26) as blockstore:
        chain = ChainStore(blockstore)
        genesis = chain.load_genesis(mainnet_genesis)
        tipsets = build_chain(chain, genesis, [1, 2])
        fork = TipSet([child(tipsets[1], 2, 99)])
        chain.put_tipset(fork, weight=12345)
        chain.advance_head(tipsets[2])
    with LmdbBlockstore(tmp_path / "chain") as blockstore:
        chain = ChainStore(blockstore)
        assert chain.heaviest() == tipsets[2]
        assert chain.get_tipset(tipsets[1].key) == tipsets[1]
        assert sorted(chain.index.keys_at_height(2)) == sorted(
            [tipsets[2].key.to_bytes(), fork.key.to_bytes()]
        )
        meta = chain.index.tipset_meta(fork.key.to_bytes())
        assert meta is not None
        assert (meta.height, meta.parents, meta.weight) == (2, tipsets[1].key.to_bytes(), 12345)


def test_a_multi_block_tipset_is_found_by_its_key_in_any_order(
    chain: ChainStore, mainnet: TipSet
) -> None:
    blocks = [child(mainnet, 1, seed) for seed in (7, 3, 5)]
    tipset = TipSet(blocks)
    chain.put_tipset(tipset)
    shuffled = TipSetKey(tuple(reversed(tipset.cids)))
    assert chain.get_tipset(shuffled).cids == tipset.cids


def test_an_unknown_tipset_is_a_typed_error(chain: ChainStore) -> None:
    with pytest.raises(TipSetNotFound, match="missing"):
        chain.get_tipset(TipSetKey((CID.hash_of(b"nothing"),)))
    with pytest.raises(TipSetNotFound, match="empty key"):
        chain.get_tipset(TipSetKey())
    assert chain.heaviest() is None
