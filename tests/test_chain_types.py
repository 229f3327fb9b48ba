"""Block headers, tipsets and their keys against real chain data and the references' vectors.

Real data: the mainnet and calibnet genesis blocks. Vectors: filecoin-project
``serialization-vectors`` ``block_headers.json`` (a Lotus-made header with its CID), Lotus
``chain/types/blockheader_test.go`` (``TestInteropBH`` signing bytes), ``tipset_key_test.go``
(key CIDs) and ``blockmsg_test.go``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsync.chain_types import (
    BeaconEntry,
    BlockHeader,
    BlockMsg,
    ChainTypeError,
    ElectionProof,
    InvalidTipSet,
    MsgMeta,
    PoStProof,
    Ticket,
    TipSet,
    TipSetKey,
)
from fvm.address import Address
from fvm.crypto import bls
from fvm.crypto.signature_verify import verify_signature
from fvm.signature import Signature, SignatureType
from store import dag_cbor
from store.car import read_car
from store.cid import CID
from store.errors import MalformedInput

MAINNET_GENESIS_CID = "bafy2bzacecnamqgqmifpluoeldx7zzglxcljo6oja4vrmtj7432rphldpdmm2"
CALIBNET_GENESIS_CID = "bafy2bzacecyaggy24wol5ruvs6qm73gjibs2l2iyhcqmvi7r7a4ph7zx3yqd4"
# The genesis block's parent: the CID of the "filecoin genesis" DAG both networks share.
GENESIS_PARENT_CID = "bafyreiaqpwbbyjo4a42saasj36kkrpv4tsherf2e7bvezkert2a7dhonoi"
EMPTY_AMT_CID = "bafy2bzacedswlcz5ddgqnyo3sak3jmhmkxashisnlpq6ujgyhe4mlobzpnhs6"

# serialization-vectors block_headers.json, first case (height 1, miner t01000).
VECTOR_HEADER_CID = "bafy2bzacecv2dnse37l6p2xwhqaq63txtme7hc7ajkgawuswyzqftgdmuhrfs"
VECTOR_HEADER_BYTES = bytes.fromhex(
    "904300e80781586082cb7477a801f55c1f2ea5e5d1167661feea60a39f697e1099af132682b81cc5047beacf"
    "5b6e80d5f52b9fd90323fb8510a5396416dd076c13c85619e176558582744053a3faef6764829aa02132a157"
    "1a76aabdc498a638ea0054d3bb57f41d82015860812d2396cc4592cdf7f829374b01ffd03c5469a4b0a9acc5"
    "ccc642797aa0a5498b97b28d90820fedc6f79ff0a6005f5c15dbaca3b8a45720af7ed53000555667207a0ccb"
    "50073cd24510995abd4c4e45c1e9e114905018b2da9454190499941e818201582012dd0a6a7d0e222a97926d"
    "a03adb5a7768d31cc7c5c2bd6828e14a7d25fa3a608182004b76616c69642070726f6f6681d82a5827000171"
    "a0e4022030f89a8b0373ad69079dbcbc5addfe9b34dce932189786e50d3eb432ede3ba9c43000f0001d82a58"
    "27000171a0e4022052238c7d15c100c1b9ebf849541810c9e3c2d86e826512c6c416d2318fcd496dd82a5827"
    "000171a0e40220e5658b3d18cd06e1db9015b4b0ec55c123a24d5be1ea24d83938c5b8397b4f2fd82a582700"
    "0171a0e4022018d351341c302a21786b585708c9873565a0d07c42521d4aaf52da3ff6f2e461586102c00000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000001a5f2c5439586102b5cd48724dce0fec8799d77fd6c5113276e7f470c8391faa0b5a6033a3eaf3"
    "57d635705c36abe10309d73592727289680515afd9d424793ba4796b052682d21b03c5c8a37d94827fecc59c"
    "dc5750e198fdf20dee012f4d627c6665132298ab95004500053724e0"
)


def vector_header_from_its_json_fields() -> BlockHeader:
    """The vector's header built from the JSON fields next to its bytes, not from the bytes."""
    return BlockHeader(
        miner=Address.parse("t01000"),
        ticket=Ticket(
            base64.b64decode(
                "gst0d6gB9VwfLqXl0RZ2Yf7qYKOfaX4Qma8TJoK4HMUEe+rPW26A1fUrn9kDI/uFEKU5ZBbdB2wTyFYZ"
                "4XZVhYJ0QFOj+u9nZIKaoCEyoVcadqq9xJimOOoAVNO7V/Qd"
            )
        ),
        election_proof=ElectionProof(
            1,
            base64.b64decode(
                "gS0jlsxFks33+Ck3SwH/0DxUaaSwqazFzMZCeXqgpUmLl7KNkIIP7cb3n/CmAF9cFduso7ikVyCvftUw"
                "AFVWZyB6DMtQBzzSRRCZWr1MTkXB6eEUkFAYstqUVBkEmZQe"
            ),
        ),
        beacon_entries=(
            BeaconEntry(1, base64.b64decode("Et0Kan0OIiqXkm2gOttad2jTHMfFwr1oKOFKfSX6OmA=")),
        ),
        win_post_proof=(PoStProof(0, b"valid proof"),),
        parents=(CID.parse("bafy2bzaceayprgulanz222ihtw6lyww572ntjxhjgimjpbxfbu7limxn4o5jy"),),
        parent_weight=3840,
        height=1,
        parent_state_root=CID.parse(
            "bafy2bzacebjchdd5cxaqbqnz5p4esvaycde6hqwyn2bgkewgyqlnemmpzvew2"
        ),
        parent_message_receipts=CID.parse(EMPTY_AMT_CID),
        messages=CID.parse("bafy2bzaceamngujudqycuilynnmfocgjq42wligqprbfehkkv5jnup7w6lsgc"),
        bls_aggregate=Signature.new_bls(bls.IDENTITY_SIGNATURE),
        timestamp=1596740665,
        block_sig=Signature.new_bls(
            base64.b64decode(
                "tc1Ick3OD+yHmdd/1sURMnbn9HDIOR+qC1pgM6Pq81fWNXBcNqvhAwnXNZJycoloBRWv2dQkeTukeWsF"
                "JoLSGwPFyKN9lIJ/7MWc3FdQ4Zj98g3uAS9NYnxmZRMimKuV"
            )
        ),
        fork_signaling=0,
        parent_base_fee=87500000,
    )


def genesis_block(path: Path) -> tuple[CID, bytes, dict[CID, bytes]]:
    header, blocks = read_car(path)
    store = dict(blocks)
    root = header.roots[0]
    return root, store[root], store


# -- genesis ------------------------------------------------------------------------------


def test_mainnet_genesis_header_decodes_and_reencodes_to_its_cid(mainnet_genesis: Path) -> None:
    root, raw, store = genesis_block(mainnet_genesis)
    header = BlockHeader.decode(raw, str(root))
    assert header.encode() == raw
    assert header.cid() == CID.hash_of(raw) == root
    assert str(header.cid()) == MAINNET_GENESIS_CID
    assert header.height == 0
    assert header.timestamp == 1598306400
    assert str(header.parent_state_root) == (
        "bafy2bzacech3yb7xlb7c57v2xh7rvmt4skeidk7z2g36llksaz4biflblbt24"
    )
    assert header.parent_state_root in store
    assert header.miner == Address.new_id(0)
    assert [str(cid) for cid in header.parents] == [GENESIS_PARENT_CID]
    assert header.parent_weight == 0
    assert header.parent_base_fee == 100_000_000
    assert header.election_proof == ElectionProof(0, b"")
    assert header.ticket is not None and len(header.ticket.vrf_proof) == 32
    assert header.beacon_entries == (BeaconEntry(0, bytes(32)),)
    assert header.win_post_proof == ()
    assert header.bls_aggregate is None and header.block_sig is None
    assert header.signing_bytes() == raw


def test_calibnet_genesis_header_decodes_and_reencodes_to_its_cid(calibnet_genesis: Path) -> None:
    root, raw, store = genesis_block(calibnet_genesis)
    header = BlockHeader.decode(raw, str(root))
    assert header.encode() == raw
    assert header.cid() == root
    assert str(header.cid()) == CALIBNET_GENESIS_CID
    assert header.height == 0
    assert header.timestamp == 1667326380
    assert str(header.parent_state_root) == (
        "bafy2bzacecgqgzh3gxpariy3mzqb37y2vvxoaw5nwbrlzkhso6owus3zqckwe"
    )
    assert header.parent_state_root in store
    assert [str(cid) for cid in header.parents] == [GENESIS_PARENT_CID]
    assert header.parent_base_fee == 100_000_000


def test_genesis_message_meta_points_at_two_empty_message_lists(mainnet_genesis: Path) -> None:
    _, raw, store = genesis_block(mainnet_genesis)
    header = BlockHeader.decode(raw)
    meta_bytes = store[header.messages]
    meta = MsgMeta.decode(meta_bytes)
    assert meta.encode() == meta_bytes
    assert meta.cid() == header.messages
    assert str(meta.bls_messages_root) == EMPTY_AMT_CID
    assert str(meta.secp_messages_root) == EMPTY_AMT_CID
    assert str(header.parent_message_receipts) == EMPTY_AMT_CID


def test_genesis_tipset_has_the_genesis_block_as_its_key(mainnet_genesis: Path) -> None:
    root, raw, _ = genesis_block(mainnet_genesis)
    header = BlockHeader.decode(raw)
    tipset = TipSet([header])
    assert tipset.key == TipSetKey((root,))
    assert tipset.key.to_bytes() == root.to_bytes()
    assert tipset.height == 0
    assert tipset.parents == TipSetKey((CID.parse(GENESIS_PARENT_CID),))
    assert tipset.parent_state == header.parent_state_root
    assert tipset.parent_weight == 0
    assert tipset.min_ticket_block is header
    assert tipset.min_timestamp == 1598306400
    assert tipset.contains(root)


# -- Lotus vectors ------------------------------------------------------------------------


def test_lotus_header_vector_decodes_to_its_json_fields_and_cid() -> None:
    header = BlockHeader.decode(VECTOR_HEADER_BYTES)
    assert header == vector_header_from_its_json_fields()
    assert str(header.cid()) == VECTOR_HEADER_CID


def test_header_built_from_fields_encodes_to_the_lotus_vector_bytes() -> None:
    header = vector_header_from_its_json_fields()
    assert header.encode() == VECTOR_HEADER_BYTES
    assert str(header.cid()) == VECTOR_HEADER_CID


def test_signing_bytes_match_lotus_interop_vector() -> None:
    # Lotus ``TestInteropBH``: go-address's NewSecp256k1Address hashes any bytes it is given,
    # and the BLSAggregate there is Go's zero-valued signature (type byte 0, no data).
    miner = Address.from_bytes(b"\x01" + hashlib.blake2b(b"address0", digest_size=20).digest())
    message_cid = CID.parse("bafy2bzaceaxyj7xq27gc2747adjcirpxx52tt7owqx6z6kckun7tqivvoym4y")
    header = BlockHeader(
        miner=miner,
        ticket=Ticket(bytes([1, 2, 3])),
        election_proof=ElectionProof(0, bytes([0x0A, 0x0B])),
        beacon_entries=(BeaconEntry(5, bytes([0x0C])),),
        win_post_proof=(PoStProof(0, bytes([0x07])),),
        parents=(message_cid,),
        parent_weight=1000,
        height=2,
        parent_state_root=message_cid,
        parent_message_receipts=message_cid,
        messages=message_cid,
        bls_aggregate=Signature(sig_type=0, data=b""),  # type: ignore[arg-type]
        timestamp=1,
        block_sig=Signature.new_bls(bytes([3])),
        fork_signaling=3,
        parent_base_fee=1_000_000_000,
    )
    expected = (
        "905501d04cb15021bf6bd003073d79e2238d4e61f1ad2281430102038200420a0b818205410c818200410781"
        "d82a5827000171a0e402202f84fef0d7cc2d7f9f00d22445f7bf7539fdd685fd9f284aa37f3822b57619cc43"
        "0003e802d82a5827000171a0e402202f84fef0d7cc2d7f9f00d22445f7bf7539fdd685fd9f284aa37f3822b5"
        "7619ccd82a5827000171a0e402202f84fef0d7cc2d7f9f00d22445f7bf7539fdd685fd9f284aa37f3822b576"
        "19ccd82a5827000171a0e402202f84fef0d7cc2d7f9f00d22445f7bf7539fdd685fd9f284aa37f3822b57619"
        "cc410001f60345003b9aca00"
    )
    assert header.signing_bytes().hex() == expected


def test_signing_bytes_are_the_header_with_a_null_block_signature() -> None:
    header = BlockHeader.decode(VECTOR_HEADER_BYTES)
    unsigned = BlockHeader.decode(header.signing_bytes())
    assert unsigned.block_sig is None
    assert unsigned == dataclasses.replace(header, block_sig=None)
    assert header.signing_bytes() != VECTOR_HEADER_BYTES


def test_a_worker_signature_over_signing_bytes_verifies_against_the_worker_address() -> None:
    worker_key = (987654321).to_bytes(32, "little")
    worker = Address.new_bls(bls.public_key(worker_key))
    unsigned = dataclasses.replace(BlockHeader.decode(VECTOR_HEADER_BYTES), block_sig=None)
    signed = dataclasses.replace(
        unsigned, block_sig=Signature.new_bls(bls.sign(worker_key, unsigned.signing_bytes()))
    )
    decoded = BlockHeader.decode(signed.encode())
    assert decoded.block_sig is not None
    assert verify_signature(decoded.block_sig, worker, decoded.signing_bytes())
    assert not verify_signature(decoded.block_sig, worker, decoded.encode())


# -- tipset keys --------------------------------------------------------------------------

# Lotus ``TestTipSetKey``: CIDs of the bytes "a", "b", "c" and the CIDs of keys made of them.
KEY_CIDS = [CID.hash_of(text) for text in (b"a", b"b", b"c")]


def test_tipset_key_cids_match_lotus() -> None:
    assert str(KEY_CIDS[0]) == "bafy2bzacecesrkxghscnq7vatble2hqdvwat6ed23vdu4vvo3uuggsoaya7ki"
    assert str(TipSetKey().cid()) == (
        "bafy2bzacea456askyutsf7uk4ta2q5aojrlcji4mhaqokbfalgvoq4ueeh4l2"
    )
    assert str(TipSetKey((KEY_CIDS[0],)).cid()) == (
        "bafy2bzacealem6larzxhf7aggj3cozcefqez3jlksx2tuxehwdil27otcmy4q"
    )
    assert str(TipSetKey(tuple(KEY_CIDS)).cid()) == (
        "bafy2bzacecbnwngwfvxuciumcfudiaoqozisp3hus5im5lg4urrwlxbueissu"
    )


def test_tipset_key_bytes_round_trip_and_keep_order_and_duplicates() -> None:
    for cids in ((), (KEY_CIDS[0],), tuple(KEY_CIDS), (KEY_CIDS[0], KEY_CIDS[0])):
        key = TipSetKey(cids)
        assert TipSetKey.from_bytes(key.to_bytes()) == key
        assert TipSetKey.from_cbor(dag_cbor.decode(dag_cbor.encode(key.to_cbor()))) == key
    assert TipSetKey(tuple(KEY_CIDS[:2])) != TipSetKey(tuple(KEY_CIDS[1::-1]))
    assert TipSetKey().is_empty() and not TipSetKey((KEY_CIDS[0],)).is_empty()
    assert str(TipSetKey(tuple(KEY_CIDS[:2]))) == f"{{{KEY_CIDS[0]},{KEY_CIDS[1]}}}"


def test_tipset_key_refuses_bytes_that_are_not_whole_cids() -> None:
    with pytest.raises(ChainTypeError):
        TipSetKey.from_bytes(TipSetKey((KEY_CIDS[0],)).to_bytes()[1:])
    with pytest.raises(ChainTypeError):
        TipSetKey.from_bytes(TipSetKey((KEY_CIDS[0],)).to_bytes()[:-1])


# -- tipsets ------------------------------------------------------------------------------


def header_with(ticket: bytes | None, miner_id: int = 1000, **changes: Any) -> BlockHeader:
    base = BlockHeader.decode(VECTOR_HEADER_BYTES)
    return dataclasses.replace(
        base,
        ticket=None if ticket is None else Ticket(ticket),
        miner=Address.new_id(miner_id),
        **changes,
    )


def test_tipset_orders_blocks_by_ticket_digest_not_by_ticket_bytes() -> None:
    tickets = [bytes([value]) * 4 for value in range(8)]
    headers = [header_with(ticket, 1000 + index) for index, ticket in enumerate(tickets)]
    tipset = TipSet(headers[::-1])
    digests = [hashlib.blake2b(t, digest_size=32).digest() for t in tickets]
    expected = [headers[i] for i in sorted(range(len(tickets)), key=digests.__getitem__)]
    assert list(tipset.blocks) == expected
    assert expected != headers  # digest order differs from byte order for these tickets
    assert tipset.cids == tuple(header.cid() for header in expected)
    assert tipset.key == TipSetKey(tipset.cids)
    assert tipset.min_ticket_block == expected[0]
    assert TipSet(headers) == tipset


def test_tipset_breaks_ticket_ties_by_cid_bytes() -> None:
    headers = [header_with(b"same ticket", miner) for miner in (1001, 1002, 1003)]
    tipset = TipSet(headers)
    assert [cid.to_bytes() for cid in tipset.cids] == sorted(h.cid().to_bytes() for h in headers)


def test_tipset_exposes_the_shared_parent_fields() -> None:
    tipset = TipSet([header_with(b"t1", 1001), header_with(b"t2", 1002, timestamp=7)])
    assert tipset.height == 1
    assert tipset.parents == TipSetKey(
        (CID.parse("bafy2bzaceayprgulanz222ihtw6lyww572ntjxhjgimjpbxfbu7limxn4o5jy"),)
    )
    assert tipset.parent_weight == 3840
    assert tipset.parent_base_fee == 87500000
    assert tipset.min_timestamp == 7
    assert len(tipset) == 2


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([], "at least one block"),
        ([header_with(None)], "no ticket"),
        ([header_with(b"a", 1001), header_with(b"b", 1002, height=2)], "height"),
        (
            [header_with(b"a", 1001), header_with(b"b", 1002, parents=(CID.hash_of(b"x"),))],
            "parents",
        ),
    ],
)
def test_tipset_refuses_blocks_that_do_not_form_one(
    blocks: list[BlockHeader], message: str
) -> None:
    with pytest.raises(InvalidTipSet, match=message):
        TipSet(blocks)


def test_tipset_is_child_of_its_parents() -> None:
    parents = TipSet([header_with(b"p1", 1001, height=5), header_with(b"p2", 1002, height=5)])
    child = TipSet([header_with(b"c", 1003, height=9, parents=parents.cids[::-1])])
    assert child.is_child_of(parents)
    assert not parents.is_child_of(child)
    lower = TipSet([header_with(b"c", 1003, height=5, parents=parents.cids)])
    assert not lower.is_child_of(parents)


# -- block messages -----------------------------------------------------------------------


def test_block_msg_round_trips_and_takes_the_header_cid() -> None:
    header = BlockHeader.decode(VECTOR_HEADER_BYTES)
    block = BlockMsg(header, (KEY_CIDS[0],), (KEY_CIDS[1], KEY_CIDS[2]))
    encoded = block.encode()
    assert BlockMsg.decode(encoded) == block
    assert block.cid() == header.cid()


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x83, 0xF6, 0x80, 0x80, 0x20]),  # trailing byte (Lotus TestDecodeBlockMsg)
        bytes([0x83, 0xF6, 0x80]),  # truncated (Lotus TestDecodeBlockMsg)
        bytes([0x83, 0xF6, 0x80, 0x80]),  # no header: Lotus decodes it, then cannot use it
    ],
)
def test_block_msg_refuses_malformed_input(data: bytes) -> None:
    with pytest.raises(MalformedInput):
        BlockMsg.decode(data)


# -- malformed headers --------------------------------------------------------------------


def reencoded_with(index: int, value: Any) -> bytes:
    fields = dag_cbor.decode(VECTOR_HEADER_BYTES)
    fields[index] = value
    return dag_cbor.encode(fields)


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        (dag_cbor.encode(dag_cbor.decode(VECTOR_HEADER_BYTES)[:15]), "BlockHeader"),
        (reencoded_with(0, "t01000"), "BlockHeader.Miner"),
        (reencoded_with(0, b"\x09\x00"), "BlockHeader.Miner"),
        (reencoded_with(1, [b"a", b"b"]), "Ticket"),
        (reencoded_with(2, [1 << 63, b""]), "ElectionProof.WinCount"),
        (reencoded_with(3, None), "BlockHeader.BeaconEntries"),
        (reencoded_with(3, [[-1, b""]]), "BeaconEntry.Round"),
        (reencoded_with(4, [[0, "proof"]]), "PoStProof.ProofBytes"),
        (reencoded_with(5, [b"not a cid"]), r"BlockHeader.Parents\[0\]"),
        (reencoded_with(5, [None] * 8193), "BlockHeader.Parents"),
        (reencoded_with(6, b"\x00\x00\x0f\x00"), "BlockHeader.ParentWeight"),
        (reencoded_with(6, b"\x02\x0f\x00"), "BlockHeader.ParentWeight"),
        (reencoded_with(6, 3840), "BlockHeader.ParentWeight"),
        (reencoded_with(7, True), "BlockHeader.Height"),
        (reencoded_with(7, -(1 << 63) - 1), "BlockHeader.Height"),
        (reencoded_with(8, None), "BlockHeader.ParentStateRoot"),
        (reencoded_with(11, b""), "BlockHeader.BLSAggregate"),
        (reencoded_with(11, b"\x07" + bytes(96)), "BlockHeader.BLSAggregate"),
        (reencoded_with(12, -1), "BlockHeader.Timestamp"),
        (reencoded_with(13, b"\x02" + bytes(200)), "BlockHeader.BlockSig"),
        (reencoded_with(14, -1), "BlockHeader.ForkSignaling"),
        (reencoded_with(15, b"\x00"), "BlockHeader.ParentBaseFee"),
    ],
)
def test_malformed_header_fields_are_refused_naming_the_field(data: bytes, field_name: str) -> None:
    with pytest.raises(MalformedInput, match=field_name):
        BlockHeader.decode(data, "test")


def test_non_canonical_header_cbor_is_refused() -> None:
    # The Timestamp written with an 8-byte head instead of its minimal 4-byte head.
    index = VECTOR_HEADER_BYTES.index(bytes.fromhex("1a5f2c5439"))
    padded = (
        VECTOR_HEADER_BYTES[:index]
        + bytes.fromhex("1b000000005f2c5439")
        + VECTOR_HEADER_BYTES[index + 5 :]
    )
    with pytest.raises(MalformedInput):
        BlockHeader.decode(padded)


# -- round trips --------------------------------------------------------------------------

cids = st.binary(min_size=1, max_size=16).map(CID.hash_of)
small_bytes = st.binary(max_size=40)
int64s = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
uint64s = st.integers(min_value=0, max_value=(1 << 64) - 1)
big_ints = st.integers(min_value=-(1 << 1000), max_value=1 << 1000)
signatures = st.builds(Signature, st.sampled_from(list(SignatureType)), st.binary(max_size=120))
addresses = st.one_of(
    st.integers(min_value=0, max_value=(1 << 64) - 1).map(Address.new_id),
    st.binary(min_size=48, max_size=48).map(Address.new_bls),
    st.builds(Address.new_delegated, st.integers(0, 1 << 20), st.binary(max_size=54)),
)
headers = st.builds(
    BlockHeader,
    miner=addresses,
    ticket=st.none() | st.builds(Ticket, small_bytes),
    election_proof=st.none() | st.builds(ElectionProof, int64s, small_bytes),
    beacon_entries=st.lists(st.builds(BeaconEntry, uint64s, small_bytes), max_size=3).map(tuple),
    win_post_proof=st.lists(st.builds(PoStProof, int64s, small_bytes), max_size=3).map(tuple),
    parents=st.lists(cids, max_size=4).map(tuple),
    parent_weight=big_ints,
    height=int64s,
    parent_state_root=cids,
    parent_message_receipts=cids,
    messages=cids,
    bls_aggregate=st.none() | signatures,
    timestamp=uint64s,
    block_sig=st.none() | signatures,
    fork_signaling=uint64s,
    parent_base_fee=big_ints,
)


@settings(max_examples=150, deadline=None)
@given(header=headers)
def test_header_encode_decode_round_trip(header: BlockHeader) -> None:
    encoded = header.encode()
    decoded = BlockHeader.decode(encoded)
    assert decoded == header
    assert decoded.encode() == encoded
    assert decoded.cid() == header.cid() == CID.hash_of(encoded)
    unsigned = BlockHeader.decode(header.signing_bytes())
    assert unsigned == dataclasses.replace(header, block_sig=None)
