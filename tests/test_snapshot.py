"""Chain snapshots (CAR v1 rooted at a tipset) in and out of the LMDB chain store.

Real data: the mainnet and calibnet genesis CARs are snapshots of a one-tipset chain; they
import, export and re-import. A synthetic chain built on the real mainnet genesis (null round,
a two-block tipset, messages, per-epoch state trees with raw and identity links, receipts)
checks that an export holds exactly the blocks Lotus's WalkSnapshot would write, and that bad
files (truncated, tampered, incomplete, another network's) are refused with one line while the
head stays where it was. Interrupted imports resume without rewriting committed batches.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainsync.chain_store import ChainStore
from chainsync.chain_types import Ticket, TipSet
from chainsync.messages_root import compute_msg_meta, receipts_root
from fvm.address import Address
from fvm.crypto import secp256k1
from fvm.message import Message, SignedMessage
from fvm.receipt import RECEIPT_V0, Receipt
from fvm.signature import Signature
from node.snapshot_export import ExportProgress, SnapshotExportError, export_snapshot
from node.snapshot_import import ImportProgress, ProgressCallback, SnapshotError, import_snapshot
from store import dag_cbor
from store.blockstore import MemoryBlockstore, put
from store.car import CarReader, CarWriter, read_car
from store.cid import CBOR, CID, DAG_CBOR, IDENTITY, RAW
from store.errors import BlockHashMismatch, CARError
from store.lmdb_blockstore import LmdbBlockstore

MAINNET_GENESIS = "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"
CALIBNET_GENESIS = "bafy2bzacecyaggy24wol5ruvs6qm73gjibs2l2iyhcqmvi7r7a4ph7zx3yqd4"
# Heights of the synthetic chain above genesis: 3 is a null round, 4 has two blocks.
HEIGHTS = (1, 2, 4, 5, 6, 7)
TWO_BLOCK_HEIGHT = 4


def new_store(path: Path) -> ChainStore:
    return ChainStore(LmdbBlockstore(path, map_size=1 << 26))


@contextmanager
def scratch_store() -> Iterator[ChainStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store = new_store(Path(tmp) / "chain")
        try:
            yield store
        finally:
            store.blockstore.close()


def car_cids(path: Path) -> list[CID]:
    return [cid for cid, _ in read_car(path)[1]]


def car_sections(path: Path) -> list[tuple[CID, int, int]]:
    """Each block of an uncompressed CAR with where its bytes start and end in the file."""
    sections = []
    with path.open("rb") as stream:
        reader = CarReader(stream)
        for cid, data in reader:
            sections.append((cid, reader.offset - len(data), reader.offset))
    return sections


def reachable(store: LmdbBlockstore, root: CID) -> set[CID]:
    """The exportable blocks reachable from ``root``: an oracle written without the walk's
    bookkeeping (links followed out of DAG-CBOR blocks, identity blocks read from the CID)."""
    out: set[CID] = set()
    visited: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in visited:
            continue
        visited.add(cid)
        if cid.mh_code != IDENTITY and cid.codec in (DAG_CBOR, CBOR, RAW):
            out.add(cid)
        if cid.codec == DAG_CBOR:
            data = cid.digest if cid.mh_code == IDENTITY else store.get(cid)
            assert data is not None, cid
            stack.extend(dag_cbor.links(dag_cbor.decode_lenient(data)))
    return out


# -- the synthetic chain ----------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    store: ChainStore
    tipsets: tuple[TipSet, ...]  # genesis first, head last
    leaves: dict[int, CID]  # per height: a block reachable only through an identity CID

    @property
    def head(self) -> TipSet:
        return self.tipsets[-1]

    def expected(self, state_roots: int, skip_old: bool = True, receipts: bool = False) -> set[CID]:
        blockstore = self.store.blockstore
        genesis = self.tipsets[0].blocks[0]
        out = {cid for tipset in self.tipsets for cid in tipset.cids}
        out |= set(genesis.parents) | reachable(blockstore, genesis.parent_state_root)
        for tipset in self.tipsets:
            recent = tipset.height > self.head.height - state_roots
            for header in tipset.blocks:
                if recent or not skip_old:
                    out |= reachable(blockstore, header.messages)
                if recent or header.height == 0:
                    out |= reachable(blockstore, header.parent_state_root)
                    if receipts:
                        out |= reachable(blockstore, header.parent_message_receipts)
        return out


def block_messages(height: int, index: int) -> tuple[list[Message], list[SignedMessage]]:
    key = bytes(range(1, 33))
    sender = Address.new_secp256k1(secp256k1.public_key(key))
    bls = [Message(to=Address.new_id(100), from_=Address.new_id(101), sequence=height * 10 + index)]
    unsigned = Message(to=Address.new_id(100), from_=sender, sequence=height, gas_limit=index + 1)
    signature = Signature.new_secp256k1(secp256k1.sign(key, unsigned.encode()))
    return bls, [SignedMessage(unsigned, signature)]


def state_tree_for(blockstore: LmdbBlockstore, height: int, genesis_state: CID) -> tuple[CID, CID]:
    """A per-height 'state' linking the genesis state, a leaf, a raw block and an identity
    DAG-CBOR block whose inline bytes link a further leaf; returns (root, that further leaf)."""
    leaf = put(blockstore, dag_cbor.encode(["leaf", height]))
    code = put(blockstore, f"code {height}".encode(), codec=RAW)
    hidden = put(blockstore, dag_cbor.encode(["behind identity", height]))
    inline = CID.hash_of(dag_cbor.encode([hidden]), DAG_CBOR, IDENTITY)
    root = put(blockstore, dag_cbor.encode(["state", height, genesis_state, leaf, code, inline]))
    return root, hidden


def build_chain(store: ChainStore, genesis_car: Path) -> Chain:
    genesis = store.load_genesis(genesis_car)
    template = genesis.blocks[0]
    tipsets = [genesis]
    leaves: dict[int, CID] = {}
    for height in HEIGHTS:
        parent = tipsets[-1]
        state, leaves[height] = state_tree_for(store.blockstore, height, genesis.parent_state)
        receipts = receipts_root(
            store.blockstore, [Receipt(0, b"", 1000 + height, None, RECEIPT_V0)]
        )
        headers = []
        for index in range(2 if height == TWO_BLOCK_HEIGHT else 1):
            bls, secp = block_messages(height, index) if height != 1 else ([], [])
            messages = compute_msg_meta(
                MemoryBlockstore(), [m.cid() for m in bls], [m.cid() for m in secp]
            )
            header = replace(
                template,
                parents=parent.cids,
                height=height,
                ticket=Ticket(bytes([height * 2 + index]) * 32),
                timestamp=template.timestamp + 30 * height,
                messages=messages,
                parent_state_root=state,
                parent_message_receipts=receipts,
            )
            store.put_block(header, bls, secp)
            headers.append(header)
        tipset = TipSet(headers)
        store.put_tipset(tipset)
        tipsets.append(tipset)
    store.set_head(tipsets[-1])
    return Chain(store, tuple(tipsets), leaves)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, mainnet_genesis: Path) -> Iterator[Chain]:
    store = new_store(tmp_path_factory.mktemp("synthetic") / "chain")
    yield build_chain(store, mainnet_genesis)
    store.blockstore.close()


@pytest.fixture(scope="module")
def chain_car(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic chain exported with its last 3 epochs' state, uncompressed."""
    path = tmp_path_factory.mktemp("export") / "chain.car"
    export_snapshot(chain.store, path, state_roots=3)
    return path


@pytest.fixture
def mainnet_store(tmp_path: Path, mainnet_genesis: Path) -> Iterator[ChainStore]:
    """A store that already follows the mainnet genesis (the state a snapshot import must
    leave untouched when it fails)."""
    store = new_store(tmp_path / "target")
    store.load_genesis(mainnet_genesis)
    yield store
    store.blockstore.close()


def assert_still_at_genesis(store: ChainStore) -> None:
    head = store.heaviest()
    assert head is not None and str(head.cids[0]) == MAINNET_GENESIS
    assert store.index.max_height() == 0


# -- real genesis CARs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "root"),
    [("mainnet_genesis", MAINNET_GENESIS), ("calibnet_genesis", CALIBNET_GENESIS)],
)
def test_a_genesis_car_imports_into_an_empty_store(
    fixture: str, root: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    car: Path = request.getfixturevalue(fixture)
    store = new_store(tmp_path / "chain")
    result = import_snapshot(car, store)
    header, blocks = read_car(car)
    assert [str(cid) for cid in result.head.cids] == [root] == [str(r) for r in header.roots]
    assert result.head == result.genesis and result.tipsets == 1
    assert result.blocks == result.new_blocks == len(blocks) == len(store.blockstore)
    assert all(store.blockstore.get(cid) == data for cid, data in blocks)
    assert store.heaviest() == result.head and store.genesis() == result.head
    execution = store.index.execution_result(result.head.key.to_bytes())
    assert execution is not None and execution.state_root == result.head.parent_state


@pytest.mark.parametrize("fixture", ["mainnet_genesis", "calibnet_genesis"])
@pytest.mark.parametrize("suffix", [".car", ".car.zst"])
def test_a_genesis_export_reimports_to_the_same_blocks(
    fixture: str, suffix: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    car: Path = request.getfixturevalue(fixture)
    source = new_store(tmp_path / "source")
    original = import_snapshot(car, source)
    out = tmp_path / f"export{suffix}"
    reports: list[ExportProgress] = []
    exported = export_snapshot(source, out, state_roots=1, progress=reports.append)
    assert reports[-1] == ExportProgress(exported.blocks, exported.block_bytes, 0)
    assert (out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd") == suffix.endswith(".zst")
    header, blocks = read_car(out)
    assert header.roots == original.head.cids
    cids = [cid for cid, _ in blocks]
    assert len(cids) == len(set(cids)) == exported.blocks
    # Lotus writes no identity-hash blocks (the genesis CAR's ten inline actor-code CIDs).
    _, original_blocks = read_car(car)
    assert set(cids) == {cid for cid, _ in original_blocks if cid.mh_code != IDENTITY}
    target = new_store(tmp_path / "target")
    again = import_snapshot(out, target)
    assert again.head == original.head and target.heaviest() == source.heaviest()
    assert set(target.blockstore) == set(cids)
    assert all(
        target.blockstore.get(cid) == data == source.blockstore.get(cid) for cid, data in blocks
    )


# -- export -----------------------------------------------------------------------------------


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    state_roots=st.integers(min_value=1, max_value=10),
    skip_old=st.booleans(),
    receipts=st.booleans(),
)
def test_an_export_holds_exactly_the_blocks_lotus_walks(
    chain: Chain, state_roots: int, skip_old: bool, receipts: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chain.car.zst"
        result = export_snapshot(
            chain.store,
            out,
            state_roots=state_roots,
            skip_old_messages=skip_old,
            include_receipts=receipts,
        )
        cids = car_cids(out)
    assert len(cids) == len(set(cids)) == result.blocks
    assert set(cids) == chain.expected(state_roots, skip_old, receipts)
    assert result.headers == sum(len(tipset) for tipset in chain.tipsets)
    recent = [t for t in chain.tipsets if t.height > chain.head.height - state_roots]
    walked_states = {t.parent_state for t in recent} | {chain.tipsets[0].parent_state}
    assert result.state_roots == len(walked_states)


def test_recent_epochs_bring_their_state_and_messages_older_ones_only_headers(
    chain: Chain, chain_car: Path
) -> None:
    cids = set(car_cids(chain_car))
    head = chain.head
    assert head.height == 7
    for tipset in chain.tipsets[1:]:
        recent = tipset.height > 7 - 3  # heights 5, 6, 7
        for header in tipset.blocks:
            assert header.cid() in cids
            assert (header.parent_state_root in cids) is recent
            assert (header.messages in cids) is recent or header.height == 1
            assert (chain.leaves[header.height] in cids) is recent  # found through identity
            assert header.parent_message_receipts not in cids
            inline = dag_cbor.links(
                dag_cbor.decode(chain.store.blockstore.get(header.parent_state_root) or b"")
            )[-1]
            assert inline.mh_code == IDENTITY and inline not in cids
    code = dag_cbor.links(dag_cbor.decode(chain.store.blockstore.get(head.parent_state) or b""))[2]
    assert code.codec == RAW and code in cids  # raw blocks are written, as in Lotus


def test_blocks_are_written_headers_first_breadth_first(chain: Chain, chain_car: Path) -> None:
    header, _ = read_car(chain_car)
    assert header.roots == chain.head.cids
    order = car_cids(chain_car)
    positions = [order.index(cid) for tipset in reversed(chain.tipsets) for cid in tipset.cids]
    assert positions == sorted(positions)
    assert order[0] == chain.head.cids[0]


def test_an_epoch_picks_the_tipset_to_export_and_a_null_round_the_one_before(
    chain: Chain, tmp_path: Path
) -> None:
    at_five = export_snapshot(chain.store, tmp_path / "five.car", tipset=5, state_roots=1)
    assert at_five.head == chain.tipsets[4] and at_five.head.height == 5
    assert read_car(tmp_path / "five.car")[0].roots == chain.tipsets[4].cids
    null_round = export_snapshot(chain.store, tmp_path / "three.car", tipset=3, state_roots=1)
    assert null_round.head.height == 2
    explicit = export_snapshot(
        chain.store, tmp_path / "two.car", tipset=chain.tipsets[2], state_roots=1
    )
    assert explicit.blocks == null_round.blocks


def test_export_refusals_are_typed(chain: Chain, tmp_path: Path) -> None:
    with pytest.raises(SnapshotExportError, match="at least 1"):
        export_snapshot(chain.store, tmp_path / "x.car", state_roots=0)
    with pytest.raises(SnapshotExportError, match="above"):
        export_snapshot(chain.store, tmp_path / "x.car", tipset=99)
    empty = new_store(tmp_path / "empty")
    with pytest.raises(SnapshotExportError, match="no head"):
        export_snapshot(empty, tmp_path / "x.car")
    assert not (tmp_path / "x.car").exists()


def test_a_block_missing_from_the_store_stops_the_export(
    mainnet_genesis: Path, tmp_path: Path
) -> None:
    store = new_store(tmp_path / "chain")
    genesis = store.load_genesis(mainnet_genesis)
    missing = CID.hash_of(dag_cbor.encode(["never stored"]))
    state = put(store.blockstore, dag_cbor.encode([genesis.parent_state, missing]))
    header = replace(genesis.blocks[0], parents=genesis.cids, height=1, parent_state_root=state)
    store.put_tipset(TipSet([header]))
    store.set_head(TipSet([header]))
    with pytest.raises(SnapshotExportError, match=f"{missing} is missing from the store"):
        export_snapshot(store, tmp_path / "out.car", state_roots=1)
    assert not list(tmp_path.glob("out.car*"))


# -- import of the synthetic chain ------------------------------------------------------------


def test_an_export_imports_into_an_empty_store_with_the_same_answers(
    chain: Chain, chain_car: Path, tmp_path: Path
) -> None:
    target = new_store(tmp_path / "target")
    result = import_snapshot(chain_car, target)
    assert result.head == chain.head and target.heaviest() == chain.head
    assert result.genesis == chain.tipsets[0]
    assert result.tipsets == len(chain.tipsets)
    for height in range(chain.head.height + 1):
        assert target.tipset_at_height(height) == chain.store.tipset_at_height(height)
    for tipset in chain.tipsets:
        meta = target.index.tipset_meta(tipset.key.to_bytes())
        assert meta is not None and meta.height == tipset.height
        assert target.index.keys_at_height(tipset.height) == [tipset.key.to_bytes()]
    for tipset in chain.tipsets[-3:]:
        for header in tipset.blocks:
            assert target.get_block_messages(header) == chain.store.get_block_messages(header)
    for cid, data in read_car(chain_car)[1]:
        assert target.blockstore.get(cid) == data == chain.store.blockstore.get(cid)


def test_a_file_cut_mid_block_is_refused_naming_the_offset(
    chain_car: Path, mainnet_store: ChainStore, tmp_path: Path
) -> None:
    sections = car_sections(chain_car)
    _, start, end = sections[len(sections) // 2]
    cut = tmp_path / "cut.car"
    cut.write_bytes(chain_car.read_bytes()[: (start + end) // 2])
    with pytest.raises(CARError, match=r"truncated CAR section.*offset \d+") as caught:
        import_snapshot(cut, mainnet_store)
    assert "\n" not in str(caught.value)
    assert_still_at_genesis(mainnet_store)


def test_a_compressed_file_cut_short_is_refused(
    chain: Chain, mainnet_store: ChainStore, tmp_path: Path
) -> None:
    whole = tmp_path / "chain.car.zst"
    export_snapshot(chain.store, whole, state_roots=3)
    cut = tmp_path / "cut.car.zst"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(CARError, match="offset"):
        import_snapshot(cut, mainnet_store)
    assert_still_at_genesis(mainnet_store)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.floats(min_value=0, max_value=1, exclude_max=True), bit=st.integers(0, 7))
def test_a_tampered_byte_is_refused_naming_the_block(
    chain_car: Path, mainnet_store: ChainStore, where: float, bit: int
) -> None:
    """Any flipped bit in any block's bytes is caught; repeated failed imports into the same
    store (same file size and roots, so the same progress record) never move the head."""
    sections = car_sections(chain_car)
    cid, start, end = sections[int(where * len(sections))]
    data = bytearray(chain_car.read_bytes())
    data[start + int(where * 7919) % (end - start)] ^= 1 << bit
    with tempfile.TemporaryDirectory() as tmp:
        tampered = Path(tmp) / "tampered.car"
        tampered.write_bytes(bytes(data))
        with pytest.raises(BlockHashMismatch, match=f"do not hash to {cid} .*offset") as caught:
            import_snapshot(tampered, mainnet_store, batch_blocks=200)
    assert "\n" not in str(caught.value)
    assert_still_at_genesis(mainnet_store)


def test_the_genuine_file_imports_after_a_tampered_one_failed(
    chain: Chain, chain_car: Path, mainnet_store: ChainStore, tmp_path: Path
) -> None:
    sections = car_sections(chain_car)
    _, start, _ = sections[-1]
    data = bytearray(chain_car.read_bytes())
    data[start] ^= 0xFF
    tampered = tmp_path / "chain.car"
    tampered.write_bytes(bytes(data))
    with pytest.raises(BlockHashMismatch):
        import_snapshot(tampered, mainnet_store, batch_blocks=100)
    assert_still_at_genesis(mainnet_store)
    result = import_snapshot(chain_car, mainnet_store, batch_blocks=100)
    assert result.resumed_from > 0 and result.head == chain.head
    assert set(car_cids(chain_car)) <= set(mainnet_store.blockstore)


def write_car_without(
    source: Path, dest: Path, dropped: set[CID], roots: tuple[CID, ...] | None = None
) -> None:
    """Copy a CAR without ``dropped``, optionally under other roots, which then come first."""
    header, blocks = read_car(source)
    new_roots = header.roots if roots is None else roots
    blocks.sort(key=lambda block: block[0] not in new_roots)
    with dest.open("wb") as stream:
        writer = CarWriter(stream, new_roots)
        for cid, data in blocks:
            if cid not in dropped:
                writer.write(cid, data)


def test_a_chain_that_does_not_reach_genesis_is_refused(
    chain: Chain, chain_car: Path, mainnet_store: ChainStore, tmp_path: Path
) -> None:
    gap = chain.tipsets[2].cids[0]
    broken = tmp_path / "gap.car"
    write_car_without(chain_car, broken, {gap})
    with pytest.raises(SnapshotError, match=f"parent header .*height 4.* {gap} is missing"):
        import_snapshot(broken, mainnet_store)
    assert_still_at_genesis(mainnet_store)


def test_a_head_without_its_state_root_is_refused(
    chain: Chain, chain_car: Path, mainnet_store: ChainStore, tmp_path: Path
) -> None:
    broken = tmp_path / "stateless.car"
    write_car_without(chain_car, broken, {chain.head.parent_state})
    with pytest.raises(SnapshotError, match=f"state root {chain.head.parent_state} of the head"):
        import_snapshot(broken, mainnet_store)
    assert_still_at_genesis(mainnet_store)


def test_roots_that_are_not_one_tipset_are_refused_before_writing(
    chain: Chain, chain_car: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "roots.car"
    roots = (chain.head.cids[0], chain.tipsets[-2].cids[0])
    write_car_without(chain_car, broken, set(), roots=roots)
    store = new_store(tmp_path / "target")
    with pytest.raises(
        SnapshotError, match=r"do not form a tipset.*height 7, not 6.*before offset"
    ):
        import_snapshot(broken, store, batch_blocks=50)
    assert store.heaviest() is None and len(store.blockstore) == 0
    not_header = tmp_path / "not-header.car"
    write_car_without(chain_car, not_header, set(), roots=(chain.head.parent_state,))
    with pytest.raises(SnapshotError, match="is not a block header"):
        import_snapshot(not_header, store)
    assert store.heaviest() is None and len(store.blockstore) == 0


def test_another_networks_snapshot_is_refused(
    calibnet_genesis: Path, mainnet_store: ChainStore
) -> None:
    with pytest.raises(SnapshotError, match="not this store's genesis"):
        import_snapshot(calibnet_genesis, mainnet_store)
    assert_still_at_genesis(mainnet_store)


def test_a_snapshot_of_the_stores_own_chain_moves_the_head(
    chain: Chain, chain_car: Path, mainnet_store: ChainStore
) -> None:
    result = import_snapshot(chain_car, mainnet_store)
    assert mainnet_store.heaviest() == chain.head == result.head
    assert result.new_blocks < result.blocks  # the genesis state was already there


# -- interruption and resumption --------------------------------------------------------------


class Interrupted(Exception):
    pass


def interrupt_after(batches: int) -> ProgressCallback:
    def progress(state: ImportProgress) -> None:
        if state.batches_written >= batches:
            raise Interrupted

    return progress


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.integers(min_value=60, max_value=700), data=st.data())
def test_an_interrupted_import_resumes_without_rewriting_committed_batches(
    chain: Chain, chain_car: Path, batch: int, data: st.DataObject
) -> None:
    total = len(car_cids(chain_car))
    batches = -(-total // batch)
    stop_after = data.draw(st.integers(min_value=1, max_value=max(1, batches - 1)))
    with scratch_store() as store:
        with pytest.raises(Interrupted):
            import_snapshot(chain_car, store, interrupt_after(stop_after), batch_blocks=batch)
        assert store.heaviest() is None and store.index.max_height() is None
        assert len(store.blockstore) == min(total, stop_after * batch)
        seen: list[ImportProgress] = []
        result = import_snapshot(chain_car, store, seen.append, batch_blocks=batch)
        assert result.head == chain.head and store.heaviest() == chain.head
        assert result.resumed_from == min(total, stop_after * batch)
        assert result.batches_written == batches - stop_after
        assert result.new_blocks == total - result.resumed_from
        assert len(seen) == batches and seen[-1].blocks == total
        assert set(store.blockstore) == set(car_cids(chain_car))
        again = import_snapshot(chain_car, store, batch_blocks=batch)
        assert (again.batches_written, again.new_blocks, again.resumed_from) == (0, 0, total)
        assert again.head == chain.head


def test_a_resumed_import_rewrites_blocks_that_went_missing(
    chain_car: Path, tmp_path: Path
) -> None:
    store = new_store(tmp_path / "chain")
    with pytest.raises(Interrupted):
        import_snapshot(chain_car, store, interrupt_after(2), batch_blocks=100)
    first = car_cids(chain_car)[0]
    store.blockstore.transact(
        lambda txn: txn.delete(first.to_bytes(), db=store.blockstore.open_db(b"blocks"))
    )
    result = import_snapshot(chain_car, store, batch_blocks=100)
    assert result.resumed_from == 200
    assert first in store.blockstore
    assert result.batches_written == -(-len(car_cids(chain_car)) // 100) - 2 + 1


def test_a_v2_snapshot_is_refused_with_the_reason(
    mainnet_store: ChainStore, tmp_path: Path
) -> None:
    head = mainnet_store.heaviest()
    assert head is not None
    metadata = dag_cbor.encode([2, list(head.cids), None])
    root = CID.hash_of(metadata)
    v2 = tmp_path / "v2.car"
    with v2.open("wb") as stream:
        CarWriter(stream, [root]).write(root, metadata)
    with pytest.raises(SnapshotError, match="v2 snapshot"):
        import_snapshot(v2, mainnet_store)
    assert_still_at_genesis(mainnet_store)
