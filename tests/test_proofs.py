"""Known answers for piece and sector commitments, the sector structures' CBOR, and the verifier.

Known answers: ref-fvm ``shared/src/piece/zero.rs`` (the zero piece commitments);
go-fil-commcid ``commcid_test.go`` (the empty 32 GiB and 64 GiB sector CommDs and the CommP of
127 bytes each of 0, 1, 2 and 3); go-commp-utils ``commp_test.go`` (a CommP computed with
separate tooling) and ``commd_test.go`` (the CommD of mainnet sector f01392893:139074 from its
ten deals' piece CIDs); Lotus ``storage/sealer/ffiwrapper/sealer_test.go``
``TestGenerateUnsealedCID`` (a sector's CommD from its pieces equals the CommP of the sector's
data laid out with zero padding).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fvm.proofs import commp
from fvm.proofs.commcid import (
    CommitmentCIDError,
    cid_to_data_commitment_v1,
    cid_to_piece_commitment_v1,
    cid_to_replica_commitment_v1,
    data_commitment_v1_to_cid,
    replica_commitment_v1_to_cid,
)
from fvm.proofs.sector_types import (
    AggregateSealVerifyProofAndInfos,
    PieceInfo,
    PoStProof,
    ReplicaUpdateInfo,
    SealVerifyInfo,
    SectorSize,
    SectorTypeError,
    WindowPoStVerifyInfo,
    decode_piece_infos,
    decode_seal_verify_infos,
    is_known_post_proof,
    is_known_seal_proof,
    seal_proof_sector_size,
)
from fvm.proofs.verifier import DESCRIPTION, AcceptAllProofVerifier, ProofVerifier
from store import dag_cbor
from store.cid import CID

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
SECTOR_2KIB = 2 * KIB
UNPADDED_2KIB = SECTOR_2KIB - SECTOR_2KIB // 128


def comm_d_cid(sector_size: int, pieces: list[PieceInfo]) -> str:
    return str(data_commitment_v1_to_cid(commp.unsealed_sector_commitment(sector_size, pieces)))


def piece_of(data: bytes) -> PieceInfo:
    padded_size = len(data) // 127 * 128
    return PieceInfo(padded_size, data_commitment_v1_to_cid(commp.piece_commitment(data)))


# -- zero pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("padded_size", "commitment"),
    [
        (128, "3731bb99ac689f66eef5973e4a94da188f4ddcae580724fc6f3fd60dfd488333"),
        (256, "642a607ef886b004bf2c1978463ae1d4693ac0f410eb2d1b7a47fe205e5e750f"),
        (512, "57a2381a28652bf47f6bef7aca679be4aede5871ab5cf3eb2c08114488cb8526"),
        (1 << 41, "aaaa8c4cb40aacee1e02dc65424b2a6c8e99f803b72f7929c4101d7fae6bff32"),
    ],
)
def test_zero_piece_commitments_match_ref_fvm_table(padded_size: int, commitment: str) -> None:
    assert commp.zero_piece_commitment(padded_size).hex() == commitment


def test_zero_piece_table_spans_128_bytes_to_2_tib() -> None:
    assert len(commp.ZERO_PIECE_COMMITMENTS) == 35
    for outside in (0, 64, 1 << 42):
        with pytest.raises(commp.PieceCommitmentError):
            commp.zero_piece_commitment(outside)


@pytest.mark.parametrize(
    ("sector_size", "expected"),
    [
        (32 * GIB, "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"),
        (64 * GIB, "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq"),
    ],
)
def test_empty_sector_comm_d_is_go_fil_commcid_fixture(sector_size: int, expected: str) -> None:
    assert comm_d_cid(sector_size, []) == expected


# -- CommP of data ----------------------------------------------------------------------------


def test_piece_commitment_of_go_commp_utils_cat_sentence() -> None:
    data = bytearray(127)
    sentence = b"i am the biggest cat, what do you think about that"
    data[: len(sentence)] = sentence
    cid = data_commitment_v1_to_cid(commp.piece_commitment(bytes(data)))
    assert str(cid) == "baga6ea4seaqozp3abki6vgdf7ztbipcycmxfyt2o64cpuyvdkczsjxsg7bqmioi"


def test_piece_commitment_of_127_bytes_each_of_0_1_2_3() -> None:
    data = b"".join(bytes([value]) * 127 for value in range(4))
    cid = data_commitment_v1_to_cid(commp.piece_commitment(data))
    assert str(cid) == "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"


def test_fr32_padding_inserts_two_zero_bits_every_254() -> None:
    padded = commp.fr32_pad(b"\xff" * 127)
    assert len(padded) == 128
    for element in range(4):
        node = int.from_bytes(padded[32 * element : 32 * element + 32], "little")
        assert node == (1 << 254) - 1


def test_piece_commitment_refuses_sizes_that_are_not_127_times_a_power_of_two() -> None:
    for size in (0, 126, 128, 381):
        with pytest.raises(commp.PieceCommitmentError):
            commp.piece_commitment(bytes(size))


# -- CommD ------------------------------------------------------------------------------------

# go-commp-utils commd_test.go: sector 139074 of f01392893 (32 GiB), its deals' pieces in order.
MAINNET_SECTOR_PIECES = [
    ("baga6ea4seaqknzm22isnhsxt2s4dnw45kfywmhenngqq3nc7jvecakoca6ksyhy", 256 * MIB),
    ("baga6ea4seaqnq6o5wuewdpviyoafno4rdpqnokz6ghvg2iyeyfbqxgcwdlj2egi", 1024 * MIB),
    ("baga6ea4seaqpixk4ifbkzato3huzycj6ty6gllqwanhdpsvxikawyl5bg2h44mq", 512 * MIB),
    ("baga6ea4seaqaxwe5dy6nt3ko5tngtmzvpqxqikw5mdwfjqgaxfwtzenc6bgzajq", 512 * MIB),
    ("baga6ea4seaqpy33nbesa4d6ot2ygeuy43y4t7amc4izt52mlotqenwcmn2kyaai", 1024 * MIB),
    ("baga6ea4seaqphvv4x2s2v7ykgc3ugs2kkltbdeg7icxstklkrgqvv72m2v3i2aa", 256 * MIB),
    ("baga6ea4seaqf5u55znk6jwhdsrhe37emzhmehiyvjxpsww274f6fiy3h4yctady", 512 * MIB),
    ("baga6ea4seaqa3qbabsbmvk5er6rhsjzt74beplzgulthamm22jue4zgqcuszofi", 1024 * MIB),
    ("baga6ea4seaqiekvf623muj6jpxg6vsqaikyw3r4ob5u7363z7zcaixqvfqsc2ji", 256 * MIB),
    ("baga6ea4seaqhsewv65z2d4m5o4vo65vl5o6z4bcegdvgnusvlt7rao44gro36pi", 512 * MIB),
]
MAINNET_SECTOR_COMM_D = "baga6ea4seaqiw3gbmstmexb7sqwkc5r23o3i7zcyx5kr76pfobpykes3af62kca"


def mainnet_sector_pieces() -> list[PieceInfo]:
    return [PieceInfo(size, CID.parse(cid)) for cid, size in MAINNET_SECTOR_PIECES]


def test_mainnet_sector_comm_d_from_its_deal_pieces() -> None:
    assert comm_d_cid(32 * GIB, mainnet_sector_pieces()) == MAINNET_SECTOR_COMM_D


def test_mainnet_sector_comm_d_with_the_tail_padding_given_explicitly() -> None:
    # As the go-commp-utils test passes them: the 8 GiB and 16 GiB zero pieces that fill the sector.
    tail = [
        PieceInfo(size, data_commitment_v1_to_cid(commp.zero_piece_commitment(size)))
        for size in (8 * GIB, 16 * GIB)
    ]
    assert comm_d_cid(32 * GIB, mainnet_sector_pieces() + tail) == MAINNET_SECTOR_COMM_D


def barr(value: int, denominator: int) -> bytes:
    return bytes([value]) * (UNPADDED_2KIB // denominator)


# Lotus TestGenerateUnsealedCID: pieces in a 2 KiB sector, and the sector's data with padding.
LOTUS_LAYOUTS: list[tuple[str, list[bytes], list[bytes]]] = [
    ("zero", [], [barr(0, 1)]),
    ("one", [barr(1, 1)], [barr(1, 1)]),
    ("one|2", [barr(1, 2)], [barr(1, 2), barr(0, 2)]),
    ("one|4", [barr(1, 4)], [barr(1, 4), barr(0, 4), barr(0, 2)]),
    ("one|2-two|4", [barr(1, 2), barr(2, 4)], [barr(1, 2), barr(2, 4), barr(0, 4)]),
    ("one|4-two|2", [barr(1, 4), barr(2, 2)], [barr(1, 4), barr(0, 4), barr(2, 2)]),
    (
        "one|8-two|4",
        [barr(1, 8), barr(2, 4)],
        [barr(1, 8), barr(0, 8), barr(2, 4), barr(0, 2)],
    ),
    (
        "one|4-two|8",
        [barr(1, 4), barr(2, 8)],
        [barr(1, 4), barr(2, 8), barr(0, 8), barr(0, 2)],
    ),
    (
        "one|16-two|8-three|16-four|4-five|16",
        [barr(1, 16), barr(2, 8), barr(3, 16), barr(4, 4), barr(5, 16)],
        [
            barr(1, 16), barr(0, 16), barr(2, 8), barr(3, 16), barr(0, 16), barr(0, 8),
            barr(4, 4), barr(5, 16), barr(0, 16), barr(0, 8),
        ],
    ),
]


@pytest.mark.parametrize(
    ("pieces", "layout"),
    [(pieces, layout) for _, pieces, layout in LOTUS_LAYOUTS],
    ids=[name for name, _, _ in LOTUS_LAYOUTS],
)
def test_comm_d_of_pieces_is_comm_p_of_the_padded_sector_data(
    pieces: list[bytes], layout: list[bytes]
) -> None:
    sector_data = b"".join(layout)
    assert len(sector_data) == UNPADDED_2KIB
    expected = commp.piece_commitment(sector_data)
    actual = commp.unsealed_sector_commitment(SECTOR_2KIB, [piece_of(data) for data in pieces])
    assert actual == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 255)), min_size=1, max_size=8))
def test_comm_d_matches_comm_p_of_aligned_layout(pieces: list[tuple[int, int]]) -> None:
    """Any piece sequence: CommD is the CommP of the data laid out as ref-fvm aligns it."""
    layout = bytearray()
    infos = []
    for log_size, fill in pieces:
        size = 127 << log_size
        if len(layout) % size:
            layout += bytes(size - len(layout) % size)
        data = bytes([fill]) * size
        layout += data
        infos.append(piece_of(data))
    if len(layout) > UNPADDED_2KIB:
        with pytest.raises(commp.PieceCommitmentError):
            commp.unsealed_sector_commitment(SECTOR_2KIB, infos)
        return
    layout += bytes(UNPADDED_2KIB - len(layout))
    expected = commp.piece_commitment(bytes(layout))
    assert commp.unsealed_sector_commitment(SECTOR_2KIB, infos) == expected


def zero_piece(padded_size: int) -> PieceInfo:
    return PieceInfo(padded_size, data_commitment_v1_to_cid(commp.ZERO_PIECE_COMMITMENTS[0]))


@pytest.mark.parametrize(
    "sizes",
    [
        [0],  # divides by zero in get_required_padding
        [64],  # below the smallest zero piece
        [200],  # not a power of two
        [4096],  # larger than the sector
        [2048, 128],  # the sector overflows
        [1 << 63, 1 << 63],  # wraps to 0 in u64, but each piece exceeds the sector
    ],
)
def test_pieces_the_reference_refuses(sizes: list[int]) -> None:
    with pytest.raises(commp.PieceCommitmentError):
        commp.unsealed_sector_commitment(SECTOR_2KIB, [zero_piece(size) for size in sizes])


def test_piece_with_a_non_commitment_cid_is_refused() -> None:
    dag_cbor_cid = CID.hash_of(b"\x80")
    with pytest.raises(CommitmentCIDError):
        commp.unsealed_sector_commitment(SECTOR_2KIB, [PieceInfo(128, dag_cbor_cid)])


def test_sealed_commitment_cid_is_not_a_piece_cid() -> None:
    comm_r = replica_commitment_v1_to_cid(bytes(range(32)))
    with pytest.raises(CommitmentCIDError):
        commp.unsealed_sector_commitment(SECTOR_2KIB, [PieceInfo(128, comm_r)])


def test_fr32_size_conversions_are_filecoin_proofs_ones() -> None:
    assert commp.fr32_padded_size(127) == 128
    assert commp.fr32_padded_size(2032) == 2048
    assert commp.fr32_padded_size(1) == 1
    assert commp.fr32_padded_size(64) == 65  # 512 bits straddle two elements: ceil(516 / 8)
    assert commp.fr32_unpadded_size(2048) == 2032
    assert commp.fr32_unpadded_size(32 * GIB) == 32 * GIB // 128 * 127
    assert commp.unpadded_piece_size(128) == 127


def test_required_padding_is_ref_fvms() -> None:
    assert commp.required_padding(0, 2048) == []
    assert commp.required_padding(128, 2048) == [128, 256, 512, 1024]
    assert commp.required_padding(256 * MIB, 1024 * MIB) == [256 * MIB, 512 * MIB]


# -- commitment CIDs --------------------------------------------------------------------------


def test_commitment_cids_round_trip_and_check_codec_and_hash() -> None:
    comm = bytes(range(32))
    comm_d = data_commitment_v1_to_cid(comm)
    comm_r = replica_commitment_v1_to_cid(comm)
    assert (comm_d.codec, comm_d.mh_code) == (0xF101, 0x1012)
    assert (comm_r.codec, comm_r.mh_code) == (0xF102, 0xB401)
    assert cid_to_data_commitment_v1(comm_d) == comm
    assert cid_to_piece_commitment_v1(comm_d) == comm
    assert cid_to_replica_commitment_v1(comm_r) == comm
    with pytest.raises(CommitmentCIDError):
        cid_to_data_commitment_v1(comm_r)
    with pytest.raises(CommitmentCIDError):
        cid_to_replica_commitment_v1(comm_d)
    mismatched = CID(1, 0xF101, 0xB401, comm)
    with pytest.raises(CommitmentCIDError):
        cid_to_data_commitment_v1(mismatched)


# -- proof types ------------------------------------------------------------------------------


def test_seal_proof_types_per_generation() -> None:
    assert is_known_seal_proof(2, 9) and not is_known_seal_proof(2, 10)
    assert is_known_seal_proof(3, 14) and not is_known_seal_proof(3, 15)
    assert is_known_seal_proof(4, 19) and not is_known_seal_proof(4, 20)
    assert not is_known_seal_proof(3, -1)
    assert seal_proof_sector_size(2, 0) == SectorSize.SIZE_2KIB
    assert seal_proof_sector_size(3, 8) == SectorSize.SIZE_32GIB
    assert seal_proof_sector_size(3, 14) == SectorSize.SIZE_64GIB
    assert seal_proof_sector_size(4, 17) == SectorSize.SIZE_512MIB
    with pytest.raises(SectorTypeError):
        seal_proof_sector_size(2, 12)


def test_post_proof_types_per_generation() -> None:
    assert is_known_post_proof(2, 8) and not is_known_post_proof(2, 13)
    assert is_known_post_proof(3, 8) and is_known_post_proof(3, 13)
    assert not is_known_post_proof(4, 8) and is_known_post_proof(4, 13)


# -- CBOR -------------------------------------------------------------------------------------

COMM_R = replica_commitment_v1_to_cid(bytes(range(32)))
COMM_D = data_commitment_v1_to_cid(bytes(range(32, 64)))


def seal_info_value() -> list[Any]:
    return [8, [1000, 42], [7, 9], b"\x01" * 32, b"\x02" * 32, b"proof", COMM_R, COMM_D]


def test_seal_verify_info_decodes_and_round_trips() -> None:
    encoded = dag_cbor.encode(seal_info_value())
    info = SealVerifyInfo.from_cbor(dag_cbor.decode(encoded))
    assert info.registered_proof == 8
    assert (info.sector_id.miner, info.sector_id.number) == (1000, 42)
    assert info.deal_ids == (7, 9)
    assert info.proof == b"proof"
    assert info.sealed_cid == COMM_R
    assert dag_cbor.encode(info.to_cbor()) == encoded
    assert decode_seal_verify_infos([seal_info_value()]) == (info,)


def test_unknown_proof_types_decode_as_the_references_invalid_variant() -> None:
    value = seal_info_value()
    value[0] = -5
    assert SealVerifyInfo.from_cbor(value).registered_proof == -5


@pytest.mark.parametrize(
    ("index", "bad"),
    [
        (0, 1 << 63),  # proof type beyond i64
        (1, [1000]),  # SectorID with one field
        (1, [-1, 42]),  # negative miner ID
        (2, [True]),  # a bool is not a deal ID
        (3, [1, 2, 3]),  # randomness as an array: strict bytes only
        (5, "proof"),  # proof as text
        (6, b"not a cid"),
    ],
)
def test_seal_verify_info_refuses_what_serde_refuses(index: int, bad: Any) -> None:
    value = seal_info_value()
    value[index] = bad
    with pytest.raises(SectorTypeError):
        SealVerifyInfo.from_cbor(value)


def test_struct_with_extra_or_missing_fields_or_as_a_map_is_refused() -> None:
    with pytest.raises(SectorTypeError):
        SealVerifyInfo.from_cbor([*seal_info_value(), 0])
    with pytest.raises(SectorTypeError):
        SealVerifyInfo.from_cbor(seal_info_value()[:-1])
    with pytest.raises(SectorTypeError):
        PieceInfo.from_cbor({"size": 128, "cid": COMM_D})


def test_replica_update_proof_is_an_array_of_bytes_not_a_byte_string() -> None:
    value = [3, COMM_R, COMM_R, COMM_D, [1, 2, 255]]
    info = ReplicaUpdateInfo.from_cbor(value)
    assert info.proof == b"\x01\x02\xff"
    assert info.to_cbor() == value
    for bad_proof in (b"\x01\x02\xff", [256], [-1]):
        with pytest.raises(SectorTypeError):
            ReplicaUpdateInfo.from_cbor([3, COMM_R, COMM_R, COMM_D, bad_proof])


def test_window_post_and_aggregate_infos_decode() -> None:
    post = WindowPoStVerifyInfo.from_cbor(
        [b"\x03" * 32, [[13, b"snark"]], [[8, 5, COMM_R], [8, 6, COMM_R]], 1000]
    )
    assert post.proofs == (PoStProof(13, b"snark"),)
    assert [sector.sector_number for sector in post.challenged_sectors] == [5, 6]
    assert post.prover == 1000
    aggregate = AggregateSealVerifyProofAndInfos.from_cbor(
        [1000, 8, 1, b"agg", [[5, b"\x01" * 32, b"\x02" * 32, COMM_R, COMM_D]]]
    )
    assert aggregate.infos[0].sector_number == 5
    assert aggregate.aggregate_proof == 1
    assert AggregateSealVerifyProofAndInfos.from_cbor(aggregate.to_cbor()) == aggregate


def test_piece_infos_decode() -> None:
    assert decode_piece_infos([[2048, COMM_D]]) == (PieceInfo(2048, COMM_D),)
    with pytest.raises(SectorTypeError):
        decode_piece_infos([[-2048, COMM_D]])


# -- verifier ---------------------------------------------------------------------------------


def test_accept_all_verifier_accepts_garbage_and_says_it_does_not_verify() -> None:
    verifier: ProofVerifier = AcceptAllProofVerifier()
    garbage_seal = SealVerifyInfo(-1, SealVerifyInfo.from_cbor(seal_info_value()).sector_id,
                                  (), b"", b"", b"", COMM_D, COMM_R)
    assert verifier.verify_seal(garbage_seal)
    assert verifier.verify_post(WindowPoStVerifyInfo(b"", (), (), 0))
    assert verifier.verify_aggregate_seals(AggregateSealVerifyProofAndInfos(0, -1, -1, b"", ()))
    assert verifier.verify_replica_update(ReplicaUpdateInfo(-1, COMM_D, COMM_D, COMM_R, b""))
    assert "NOT verified" in DESCRIPTION
    assert "NOT VERIFY" in (AcceptAllProofVerifier.__doc__ or "")
