"""Issue 5's snapshot round trip at scale, through the ``fvm-node`` command line.

A devnet chain of 120 epochs (a secp256k1 and a BLS transfer in every produced epoch, three
null rounds) is exported with ``fvm-node export --state-roots N --receipts`` (N covering every
epoch, as replaying every epoch needs every parent state), imported into an empty data directory
with ``fvm-node import``, and replayed there with ``fvm-node replay --from 1 --to head``: every
epoch agrees with the chain. The imported store answers as the original: the same head, the
same tipset at every height, the same messages in every block, the same receipts, and
byte-identical blocks for every DAG the snapshot carries (state trees, message and receipt
AMTs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from devnet_chain import DevnetKeys, produce_transfer_chain
from node_harness import tipsets_to_genesis

from chainsync.chain_store import ChainStore
from chainsync.chain_types import TipSet
from chainsync.messages_root import load_receipts
from config.settings import CHAIN_DIR
from fvm.bundle import Bundle
from node.cli import main
from store import dag_cbor
from store.blockstore import Blockstore
from store.cid import CBOR, CID, DAG_CBOR, IDENTITY
from store.lmdb_blockstore import LmdbBlockstore

KEYS = DevnetKeys.labelled("roundtrip cli")
HEAD = 120
NULL_ROUNDS = frozenset({40, 41, 97})
PRODUCED = [height for height in range(1, HEAD + 1) if height not in NULL_ROUNDS]
STATE_ROOTS = HEAD + 1  # every epoch's state, messages and receipts


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, devnet_bundle: Bundle) -> Path:
    """Data directory A: the produced chain in ``A/chain``, closed."""
    root = tmp_path_factory.mktemp("roundtrip-original")
    head = produce_transfer_chain(root, KEYS, devnet_bundle, CHAIN_DIR, PRODUCED)
    assert head.height == HEAD
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, original: Path) -> Path:
    """Data directory B: A exported and imported through the command line."""
    work = tmp_path_factory.mktemp("roundtrip-imported")
    snapshot = work / "devnet.car.zst"
    exported = CliRunner().invoke(
        main,
        [
            "export",
            "--data",
            str(original),
            "--out",
            str(snapshot),
            "--state-roots",
            str(STATE_ROOTS),
            "--receipts",
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert f"at epoch {HEAD}" in exported.output
    target = work / "B"
    assert not target.exists()
    imported = CliRunner().invoke(main, ["import", str(snapshot), "--data", str(target)])
    assert imported.exit_code == 0, imported.output
    assert f"at epoch {HEAD}" in imported.output
    return target


@contextmanager
def both_stores(first: Path, second: Path) -> Iterator[tuple[ChainStore, ChainStore]]:
    with ExitStack() as stack:
        stores = [
            ChainStore(stack.enter_context(LmdbBlockstore(path / CHAIN_DIR, readonly=True)))
            for path in (first, second)
        ]
        yield stores[0], stores[1]


def head_chain(store: ChainStore) -> list[TipSet]:
    head = store.heaviest()
    assert head is not None
    return [*tipsets_to_genesis(store, head)][::-1]


def reachable(store: Blockstore, roots: Iterable[CID]) -> dict[CID, bytes]:
    """Every block reachable from ``roots`` through CBOR links (identity CIDs carry their own
    bytes and are not stored)."""
    found: dict[CID, bytes] = {}
    pending = list(roots)
    while pending:
        cid = pending.pop()
        if cid in found or cid.mh_code == IDENTITY:
            continue
        data = store.get(cid)
        assert data is not None, f"{cid} is missing"
        found[cid] = data
        if cid.codec in (DAG_CBOR, CBOR):
            pending.extend(dag_cbor.links(dag_cbor.decode_lenient(data, str(cid))))
    return found


def test_replaying_every_epoch_of_the_imported_chain_through_the_cli_agrees(
    imported: Path, actors_dir: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "replay",
            "--data",
            str(imported),
            "--from",
            "1",
            "--to",
            "head",
            "--actors",
            str(actors_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:-2] == [f"epoch {height} OK" for height in PRODUCED[:-1]]
    assert lines[-2] == f"epoch {HEAD} UNCHECKED (the head: no child records its result)"
    assert lines[-1].startswith(
        f"replayed {len(PRODUCED)} epochs with 1 worker(s): 0 mismatches, 0 errors, gas "
    )


def test_the_imported_store_has_the_same_head_tipsets_messages_and_receipts(
    original: Path, imported: Path
) -> None:
    with both_stores(original, imported) as (a, b):
        assert b.heaviest() == a.heaviest()
        assert [b.tipset_at_height(h) for h in range(HEAD + 1)] == [
            a.tipset_at_height(h) for h in range(HEAD + 1)
        ]
        tipsets = head_chain(a)
        assert head_chain(b) == tipsets
        assert [tipset.height for tipset in tipsets] == [0, *PRODUCED]
        for tipset in tipsets:
            for header in tipset.blocks:
                assert b.get_block_messages(header) == a.get_block_messages(header)
        transfers = sum(
            len(bls) + len(secp)
            for tipset in tipsets
            for bls, secp in map(a.get_block_messages, tipset.blocks)
        )
        assert transfers == 2 * len(PRODUCED)
        receipts = 0
        for child in tipsets[1:]:
            recorded = load_receipts(a.blockstore, child.parent_message_receipts)
            assert load_receipts(b.blockstore, child.parent_message_receipts) == recorded
            receipts += len(recorded)
        assert receipts == 2 * (len(PRODUCED) - 1)  # the head's messages have none yet


def test_every_block_the_snapshot_carries_is_byte_identical_in_the_imported_store(
    original: Path, imported: Path
) -> None:
    with both_stores(original, imported) as (a, b):
        tipsets = head_chain(a)
        headers = [header for tipset in tipsets for header in tipset.blocks]
        roots = [
            *{tipset.parent_state for tipset in tipsets},
            *{tipset.parent_message_receipts for tipset in tipsets[1:]},
            *(header.messages for header in headers),
        ]
        blocks = reachable(a.blockstore, roots)
        # headers link to their parents and beyond genesis: compared one by one, not walked
        for tipset in tipsets:
            for cid in tipset.cids:
                header = a.blockstore.get(cid)
                assert header is not None
                blocks[cid] = header
        assert len(blocks) > 1_000
        differing = [cid for cid, data in blocks.items() if b.blockstore.get(cid) != data]
        assert differing == []
