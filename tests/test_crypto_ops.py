"""The crypto syscalls' semantics per ref-fvm generation: charges, results and error numbers.

Signature vectors are ref-fvm's syscall test actor's (``testing/test_actors/actors/
fil-syscall-actor``: ``test_secp_signature``, ``test_bls_signature``, ``test_bls_aggregate``),
the same ones ``tests/test_crypto.py`` checks the primitives with. Gas figures are the price
lists' (Skyr for ref-fvm v2 at network version 17, OhSnap at 15, Hygge for v3 at 18,
Watermelon for v4 at 21), spelled out in whole gas where the test pins a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from fvm.address import Address, Protocol
from fvm.crypto import hashes
from fvm.externs import ConsensusFault, Externs, ExternsError
from fvm.gas.charge import GasCharge, gas
from fvm.gas.gas_tracker import GasTracker, OutOfGas
from fvm.gas.price_list import (
    HYGGE_PRICES,
    OH_SNAP_PRICES,
    SKYR_PRICES,
    WATERMELON_PRICES,
    PriceList,
    PriceListV2,
)
from fvm.kernel import crypto_ops
from fvm.kernel.crypto_ops import UnsupportedCryptoOp
from fvm.proofs import commp
from fvm.proofs.commcid import data_commitment_v1_to_cid, replica_commitment_v1_to_cid
from fvm.proofs.sector_types import (
    AggregateSealVerifyInfo,
    AggregateSealVerifyProofAndInfos,
    PieceInfo,
    PoStProof,
    ReplicaUpdateInfo,
    SealVerifyInfo,
    SectorID,
    SectorInfo,
    WindowPoStVerifyInfo,
    decode_piece_infos,
)
from fvm.proofs.verifier import AcceptAllProofVerifier, ProofInputError, ProofVerifier
from fvm.syscalls.abi import ErrorNumber, SyscallError
from store import dag_cbor
from store.cid import CID

# ref-fvm fil-syscall-actor vectors.
SECP_SIGNATURE = bytes.fromhex(
    "50d247f8dbe2558e8feba49bef44c117bfd723461922cb0e7486d6035b16c4ac"
    "699a8680e4ac0c19fba63300d22d175b0c12e42bcc9de95145032c79a71fa83400"
)
SECP_PUBLIC_KEY = bytes.fromhex(
    "04df264eeefe793a3f786d6cb3694cd3fcdfe20114dcd44d17bee08a3e671b30"
    "3c9697e91ed98997d018d475205e2c767d28191f439a6a616e20d13ec2921b1072"
)
SECP_MESSAGE = bytes([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
SECP_SIGNER = Address.new_secp256k1(SECP_PUBLIC_KEY)
BLS_PUBLIC_KEYS = [
    bytes.fromhex(
        "ad9a91bc725565fa81e103cd803da1b9d2129354a00fe972b271738e04dd51d7"
        "bc970b57046e17db7d8f7ab0cf7b4292"
    ),
    bytes.fromhex(
        "a6bcfdba8c10c12edaa1031c4670c0fdc3b3a7b5c58213d833bc56b35828a1d7"
        "74bd9d1d1b3d906fc3dd64576bef19bd"
    ),
    bytes.fromhex(
        "a7f12d4899acc00a7690df78266a8c300e39680043ae94b1cc8a23c95c6cd03c"
        "6de209a902a81b498add4d4a67ba75e1"
    ),
]
BLS_SIGNATURE = bytes.fromhex(
    "b1d1c0aed5c7e709f7c9fac10efa8afc9b1b424e0ecca563c09a608ab33c3bbf"
    "3ab2e5e02bfd2bfec82575f7cb2d6fc305bc0e79283b29309d5859c6b15318d2"
    "feb94e9fe6691d25a96df7436fc1111f3311f160e0fe6f65811210f2b13d8f40"
)
BLS_MESSAGE = bytes(range(10))
BLS_AGGREGATE = bytes.fromhex(
    "a427e0d4b8c1b0810a7f6024653f8505df94fd228b6df4e5f2f75354066009a3"
    "57fcea34693057269a309622a5352a6c076ae15d930b9c6d6ce21b7ed5c79403"
    "4d66f8ef296cb19f0e3299312f16fa71fcaadf963361b413e2abf6c5325c2fb6"
)
BLS_AGGREGATE_MESSAGES = [bytes(range(0, 10)), bytes(range(10, 20)), bytes(range(20, 30))]
BLS_SIGNER = Address.new_bls(BLS_PUBLIC_KEYS[0])

ACCOUNT_ID = Address.new_id(1234)
MINER_ACTOR_ID = Address.new_id(1000)
ACCOUNT_STATE = dag_cbor.encode([SECP_SIGNER.to_bytes()])
COMM_R = replica_commitment_v1_to_cid(bytes(range(32)))
COMM_D = data_commitment_v1_to_cid(bytes(range(32, 64)))


class RecordingExterns:
    """Externs that answer consensus-fault checks from a fixed reply (or fail)."""

    def __init__(self, reply: tuple[ConsensusFault | None, int] | None = None) -> None:
        self.reply = reply
        self.asked: list[tuple[bytes, bytes, bytes]] = []

    def get_chain_randomness(self, epoch: int) -> bytes:
        raise ExternsError("no randomness here")

    def get_beacon_randomness(self, epoch: int) -> bytes:
        raise ExternsError("no randomness here")

    def get_tipset_cid(self, epoch: int) -> CID:
        raise ExternsError("no tipsets here")

    def verify_consensus_fault(
        self, header1: bytes, header2: bytes, extra: bytes
    ) -> tuple[ConsensusFault | None, int]:
        self.asked.append((header1, header2, extra))
        if self.reply is None:
            raise ExternsError("headers not found")
        return self.reply


@dataclass
class FakeKernel:
    """A context that records charges and resolves signers as ref-fvm v2 does."""

    price_list: PriceList
    network_version: int
    chain_id: int = 314
    epoch: int = 1_000_000
    proof_verifier: ProofVerifier = field(default_factory=AcceptAllProofVerifier)
    externs: Externs = field(default_factory=RecordingExterns)
    charges: list[GasCharge] = field(default_factory=list)
    gas_tracker: GasTracker | None = None
    accounts: dict[Address, bytes] = field(default_factory=lambda: {ACCOUNT_ID: ACCOUNT_STATE})
    non_accounts: set[Address] = field(default_factory=lambda: {MINER_ACTOR_ID})

    def charge(self, charge: GasCharge) -> None:
        self.charges.append(charge)
        if self.gas_tracker is not None:
            self.gas_tracker.charge(charge)

    def resolve_key_address(self, addr: Address) -> Address | None:
        if addr.protocol in (Protocol.SECP256K1, Protocol.BLS):
            return addr
        if addr in self.non_accounts:
            raise SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, "target actor is not an account")
        state = self.accounts.get(addr)
        if state is None:
            raise SyscallError(ErrorNumber.NOT_FOUND, "state tree doesn't contain actor")
        prices = self.price_list
        assert isinstance(prices, PriceListV2)
        self.charge(prices.on_block_open_base())
        self.charge(prices.on_block_open_per_byte(len(state)))
        return Address.from_cbor(dag_cbor.decode(state)[0])


def v2_kernel(**kwargs: Any) -> FakeKernel:
    return FakeKernel(SKYR_PRICES, 17, **kwargs)


def v3_kernel(**kwargs: Any) -> FakeKernel:
    return FakeKernel(HYGGE_PRICES, 18, **kwargs)


def v4_kernel(**kwargs: Any) -> FakeKernel:
    return FakeKernel(WATERMELON_PRICES, 21, **kwargs)


def fails_with(number: ErrorNumber, call: Callable[[], object]) -> None:
    with pytest.raises(SyscallError) as info:
        call()
    assert info.value.number is number


# -- verify_signature ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [v2_kernel, v3_kernel, v4_kernel])
def test_reference_secp_and_bls_signatures_verify_in_every_generation(
    make: Callable[[], FakeKernel],
) -> None:
    kernel = make()
    assert crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, SECP_SIGNER, SECP_MESSAGE)
    assert crypto_ops.verify_signature(kernel, 2, BLS_SIGNATURE, BLS_SIGNER, BLS_MESSAGE)
    tampered = bytes([SECP_MESSAGE[0] + 1]) + SECP_MESSAGE[1:]
    assert not crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, SECP_SIGNER, tampered)
    assert not crypto_ops.verify_signature(kernel, 2, BLS_SIGNATURE, SECP_SIGNER, BLS_MESSAGE)
    assert not crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE[:64], SECP_SIGNER, tampered)


def test_v2_signature_gas_is_flat_per_type() -> None:
    kernel = v2_kernel()
    crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, SECP_SIGNER, SECP_MESSAGE)
    crypto_ops.verify_signature(kernel, 2, BLS_SIGNATURE, BLS_SIGNER, BLS_MESSAGE)
    assert kernel.charges == [
        GasCharge("OnVerifySignature", gas(1637292), 0),
        GasCharge("OnVerifySignature", gas(16598605), 0),
    ]


def test_v3_signature_gas_scales_with_the_plaintext() -> None:
    kernel = v3_kernel()
    crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, SECP_SIGNER, SECP_MESSAGE)
    crypto_ops.verify_signature(kernel, 2, BLS_SIGNATURE, BLS_SIGNER, BLS_MESSAGE)
    assert kernel.charges == [
        GasCharge("OnVerifySignature", gas(1637292 + 10 * 10), 0),
        GasCharge("OnVerifySignature", gas(16598605 + 26 * 10), 0),
    ]
    assert kernel.charges == [
        HYGGE_PRICES.on_verify_signature(1, len(SECP_MESSAGE)),
        HYGGE_PRICES.on_verify_signature(2, len(BLS_MESSAGE)),
    ]


def test_v2_resolves_an_id_signer_through_its_account_state_and_charges_the_read() -> None:
    kernel = v2_kernel()
    assert crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, ACCOUNT_ID, SECP_MESSAGE)
    assert kernel.charges == [
        GasCharge("OnVerifySignature", gas(1637292), 0),
        SKYR_PRICES.on_block_open_base(),
        SKYR_PRICES.on_block_open_per_byte(len(ACCOUNT_STATE)),
    ]
    assert kernel.charges[1].total == gas(114617 + 21000)


def test_v2_signer_errors_come_after_the_signature_charge() -> None:
    kernel = v2_kernel()
    fails_with(
        ErrorNumber.NOT_FOUND,
        lambda: crypto_ops.verify_signature(
            kernel, 1, SECP_SIGNATURE, Address.new_id(99999), SECP_MESSAGE
        ),
    )
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.verify_signature(
            kernel, 1, SECP_SIGNATURE, MINER_ACTOR_ID, SECP_MESSAGE
        ),
    )
    assert [charge.name for charge in kernel.charges] == ["OnVerifySignature"] * 2


@pytest.mark.parametrize("make", [v3_kernel, v4_kernel])
def test_v3_refuses_non_key_signers_after_charging(make: Callable[[], FakeKernel]) -> None:
    kernel = make()
    for signer in (ACCOUNT_ID, Address.new_actor(b"x"), Address.new_delegated(10, b"\x01" * 20)):
        with pytest.raises(SyscallError) as info:
            crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, signer, SECP_MESSAGE)
        assert info.value.number is ErrorNumber.ILLEGAL_ARGUMENT
    assert len(kernel.charges) == 3
    assert all(charge.name == "OnVerifySignature" for charge in kernel.charges)


@pytest.mark.parametrize("make", [v2_kernel, v3_kernel])
@pytest.mark.parametrize("sig_type", [0, 3, 4, 1 << 31])
def test_signature_types_other_than_secp_and_bls_are_refused_before_charging(
    make: Callable[[], FakeKernel], sig_type: int
) -> None:
    kernel = make()
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.verify_signature(
            kernel, sig_type, SECP_SIGNATURE, SECP_SIGNER, SECP_MESSAGE
        ),
    )
    assert kernel.charges == []


def test_signature_check_out_of_gas_verifies_nothing() -> None:
    tracker = GasTracker(gas(1637292) - 1)
    kernel = v2_kernel(gas_tracker=tracker)
    with pytest.raises(OutOfGas):
        crypto_ops.verify_signature(kernel, 1, SECP_SIGNATURE, SECP_SIGNER, SECP_MESSAGE)


# -- verify_bls_aggregate -----------------------------------------------------------------


def test_bls_aggregate_verifies_reference_vector_and_charges_pairings_and_bytes() -> None:
    kernel = v4_kernel()
    plaintexts = b"".join(BLS_AGGREGATE_MESSAGES)
    lengths = [len(message) for message in BLS_AGGREGATE_MESSAGES]
    assert crypto_ops.verify_bls_aggregate(
        kernel, BLS_AGGREGATE, BLS_PUBLIC_KEYS, plaintexts, lengths
    )
    assert kernel.charges == [
        GasCharge("OnVerifyBlsAggregateSignature", gas(8299302 * 4 + 7 * 30), 0)
    ]
    swapped = [BLS_PUBLIC_KEYS[1], BLS_PUBLIC_KEYS[0], BLS_PUBLIC_KEYS[2]]
    assert not crypto_ops.verify_bls_aggregate(
        kernel, BLS_AGGREGATE, swapped, plaintexts, lengths
    )


def test_bls_aggregate_length_errors_before_and_after_the_charge() -> None:
    kernel = v4_kernel()
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.verify_bls_aggregate(
            kernel, BLS_AGGREGATE, BLS_PUBLIC_KEYS, b"x" * 30, [10, 20]
        ),
    )
    assert kernel.charges == []
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.verify_bls_aggregate(
            kernel, BLS_AGGREGATE, BLS_PUBLIC_KEYS, b"x" * 30, [10, 10, 5]
        ),
    )
    assert len(kernel.charges) == 1


def test_bls_aggregate_is_not_a_v3_syscall() -> None:
    with pytest.raises(UnsupportedCryptoOp):
        crypto_ops.verify_bls_aggregate(v3_kernel(), BLS_AGGREGATE, [], b"", [])


# -- recover_secp_public_key, hash --------------------------------------------------------


@pytest.mark.parametrize("make", [v2_kernel, v3_kernel])
def test_secp_recovery_returns_the_reference_key_and_charges_its_price(
    make: Callable[[], FakeKernel],
) -> None:
    kernel = make()
    digest = hashes.blake2b_256(SECP_MESSAGE)
    assert crypto_ops.recover_secp_public_key(kernel, digest, SECP_SIGNATURE) == SECP_PUBLIC_KEY
    assert kernel.charges == [GasCharge("OnRecoverSecpPublicKey", gas(1637292), 0)]


def test_secp_recovery_failure_is_illegal_argument_after_the_charge() -> None:
    kernel = v3_kernel()
    bad_recovery_id = SECP_SIGNATURE[:64] + b"\x04"
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.recover_secp_public_key(kernel, bytes(32), bad_recovery_id),
    )
    assert len(kernel.charges) == 1
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.recover_secp_public_key(kernel, bytes(31), SECP_SIGNATURE),
    )
    assert len(kernel.charges) == 1


@pytest.mark.parametrize("code", sorted(hashes.SUPPORTED_HASHES))
def test_hash_gives_the_digest_and_charges_flat_in_v2_per_byte_in_v3(code: int) -> None:
    data = b"abc" * 100
    v2, v3 = v2_kernel(), v3_kernel()
    assert crypto_ops.compute_hash(v2, code, data) == hashes.digest(code, data)
    assert crypto_ops.compute_hash(v3, code, data) == hashes.digest(code, data)
    assert v2.charges == [GasCharge("OnHashing", gas(31355), 0)]
    assert v3.charges == [HYGGE_PRICES.on_hashing(code, len(data))]


def test_v3_blake2b_hash_costs_ten_gas_per_byte() -> None:
    kernel = v3_kernel()
    crypto_ops.compute_hash(kernel, hashes.BLAKE2B_256, bytes(64))
    assert kernel.charges == [GasCharge("OnHashing", gas(640), 0)]


def test_unsupported_hash_is_refused_after_charging_in_v2_before_in_v3() -> None:
    v2, v3 = v2_kernel(), v3_kernel()
    for kernel in (v2, v3):
        with pytest.raises(SyscallError) as info:
            crypto_ops.compute_hash(kernel, 0x1012, b"")
        assert info.value.number is ErrorNumber.ILLEGAL_ARGUMENT
    assert v2.charges == [GasCharge("OnHashing", gas(31355), 0)]
    assert v3.charges == []


# -- compute_unsealed_sector_cid ----------------------------------------------------------


def test_unsealed_sector_cid_of_an_empty_32gib_sector_in_each_generation() -> None:
    empty_32gib = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
    for make in (v2_kernel, v3_kernel, v4_kernel):
        kernel = make()
        assert str(crypto_ops.compute_unsealed_sector_cid(kernel, 8, [])) == empty_32gib
        assert kernel.charges == [GasCharge("OnComputeUnsealedSectorCid", gas(98647), 0)]


def test_unsealed_sector_cid_of_two_pieces_in_a_2kib_sector() -> None:
    halves = [bytes([1]) * 1016, bytes([2]) * 1016]
    pieces = [
        PieceInfo(1024, data_commitment_v1_to_cid(commp.piece_commitment(half)))
        for half in halves
    ]
    expected = data_commitment_v1_to_cid(commp.piece_commitment(b"".join(halves)))
    assert crypto_ops.compute_unsealed_sector_cid(v3_kernel(), 5, pieces) == expected


def test_synthetic_porep_proof_types_exist_from_v3_only() -> None:
    v2, v3 = v2_kernel(), v3_kernel()
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT, lambda: crypto_ops.compute_unsealed_sector_cid(v2, 13, [])
    )
    assert v2.charges == []
    assert crypto_ops.compute_unsealed_sector_cid(v3, 13, []).codec == 0xF101
    for invalid in (-1, 20, 999):
        with pytest.raises(SyscallError) as info:
            crypto_ops.compute_unsealed_sector_cid(v3, invalid, [])
        assert info.value.number is ErrorNumber.ILLEGAL_ARGUMENT
    assert len(v3.charges) == 1


def test_bad_pieces_are_illegal_argument_after_the_charge() -> None:
    kernel = v3_kernel()
    for pieces in ([PieceInfo(200, COMM_D)], [PieceInfo(1024, COMM_R)], [PieceInfo(4096, COMM_D)]):
        with pytest.raises(SyscallError) as info:
            crypto_ops.compute_unsealed_sector_cid(kernel, 5, pieces)
        assert info.value.number is ErrorNumber.ILLEGAL_ARGUMENT
    assert len(kernel.charges) == 3


def test_piece_infos_decode_through_read_cbor_semantics() -> None:
    encoded = dag_cbor.encode([[2048, COMM_D]])
    decoded = crypto_ops.decode_cbor_param(encoded, decode_piece_infos, "pieces")
    assert decoded == (PieceInfo(2048, COMM_D),)
    for bad in (b"\x81", dag_cbor.encode([[2048]]), dag_cbor.encode([[2048, b"cid"]])):
        with pytest.raises(SyscallError) as info:
            crypto_ops.decode_cbor_param(bad, decode_piece_infos, "pieces")
        assert info.value.number is ErrorNumber.ILLEGAL_ARGUMENT


# -- proofs -------------------------------------------------------------------------------

SEAL = SealVerifyInfo(8, SectorID(1000, 1), (), bytes(32), bytes(32), b"proof", COMM_R, COMM_D)
POST = WindowPoStVerifyInfo(
    bytes(32),
    (PoStProof(13, b"snark"),),
    tuple(SectorInfo(8, number, COMM_R) for number in range(3)),
    1000,
)
AGGREGATE = AggregateSealVerifyProofAndInfos(
    1000,
    8,
    1,
    b"agg",
    tuple(AggregateSealVerifyInfo(n, bytes(32), bytes(32), COMM_R, COMM_D) for n in range(5)),
)
REPLICA_UPDATE = ReplicaUpdateInfo(3, COMM_R, COMM_R, COMM_D, b"update")


@dataclass
class ScriptedVerifier:
    """A verifier that records what it is asked and answers as told."""

    answer: bool = False
    refuse: bool = False
    posts: list[WindowPoStVerifyInfo] = field(default_factory=list)
    seals: list[SealVerifyInfo] = field(default_factory=list)

    def _reply(self) -> bool:
        if self.refuse:
            raise ProofInputError("bad commitment")
        return self.answer

    def verify_seal(self, info: SealVerifyInfo) -> bool:
        self.seals.append(info)
        return self._reply()

    def verify_post(self, info: WindowPoStVerifyInfo) -> bool:
        self.posts.append(info)
        return self._reply()

    def verify_aggregate_seals(self, aggregate: AggregateSealVerifyProofAndInfos) -> bool:
        return self._reply()

    def verify_replica_update(self, info: ReplicaUpdateInfo) -> bool:
        return self._reply()


@pytest.mark.parametrize("make", [v2_kernel, v3_kernel])
def test_accept_all_verifier_accepts_after_the_price_lists_charges(
    make: Callable[[], FakeKernel],
) -> None:
    kernel = make()
    prices = kernel.price_list
    assert crypto_ops.verify_post(kernel, POST)
    assert crypto_ops.verify_aggregate_seals(kernel, AGGREGATE)
    assert crypto_ops.verify_replica_update(kernel, REPLICA_UPDATE)
    assert crypto_ops.verify_seal(kernel, SEAL)
    assert kernel.charges == [
        prices.on_verify_post(13, 3),
        prices.on_verify_aggregate_seals(8, 5),
        prices.on_verify_replica_update(),
        prices.on_verify_seal(),
    ]


def test_proof_gas_figures() -> None:
    kernel = v3_kernel()
    crypto_ops.verify_post(kernel, POST)
    crypto_ops.verify_aggregate_seals(kernel, AGGREGATE)
    crypto_ops.verify_replica_update(kernel, REPLICA_UPDATE)
    assert kernel.charges == [
        GasCharge("OnVerifyPost", gas(117680921 + 43780 * 3), 0),
        GasCharge("OnVerifyAggregateSeals", gas(449900 * 5 + 103994170), 0),
        GasCharge("OnVerifyReplicaUpdate", gas(36316136), 0),
    ]


def test_v2_prices_an_unknown_post_type_as_512mib_v1() -> None:
    kernel = v2_kernel()
    crypto_ops.verify_post(kernel, POST)
    assert kernel.charges == [GasCharge("OnVerifyPost", gas(117680921 + 43780 * 3), 0)]


def test_verifier_answers_and_refusals() -> None:
    kernel = v3_kernel(proof_verifier=ScriptedVerifier(answer=False))
    assert not crypto_ops.verify_post(kernel, POST)
    assert not crypto_ops.verify_replica_update(kernel, REPLICA_UPDATE)
    refusing = v3_kernel(proof_verifier=ScriptedVerifier(refuse=True))
    for call in (
        lambda: crypto_ops.verify_post(refusing, POST),
        lambda: crypto_ops.verify_aggregate_seals(refusing, AGGREGATE),
        lambda: crypto_ops.verify_replica_update(refusing, REPLICA_UPDATE),
        lambda: crypto_ops.verify_seal(refusing, SEAL),
    ):
        fails_with(ErrorNumber.ILLEGAL_ARGUMENT, call)
    assert len(refusing.charges) == 4


def test_batch_verify_seals_charges_per_seal_from_v3_and_turns_refusals_into_false() -> None:
    seals = [SEAL, SEAL, SEAL]
    v2 = v2_kernel()
    assert crypto_ops.batch_verify_seals(v2, seals) == [True, True, True]
    assert v2.charges == []
    v3 = v3_kernel(proof_verifier=ScriptedVerifier(refuse=True))
    assert crypto_ops.batch_verify_seals(v3, seals) == [False, False, False]
    assert v3.charges == [GasCharge("OnVerifySeal", gas(2000), 0)] * 3


def test_batch_verify_seals_out_of_gas_verifies_no_seal() -> None:
    verifier = ScriptedVerifier(answer=True)
    kernel = v3_kernel(proof_verifier=verifier, gas_tracker=GasTracker(gas(2000) * 2))
    with pytest.raises(OutOfGas):
        crypto_ops.batch_verify_seals(kernel, [SEAL, SEAL, SEAL])
    assert verifier.seals == []


@pytest.mark.parametrize(
    ("make", "chain_id", "epoch", "verified_type"),
    [
        (v3_kernel, 314159, 498691, 8),  # calibration net up to the cutoff: verified as V1
        (v3_kernel, 314159, 498692, 13),
        (v3_kernel, 314, 100, 13),
        (v2_kernel, 314159, 100, 13),
        (v4_kernel, 314159, 100, 13),
    ],
)
def test_calibnet_v1p1_window_posts_are_verified_as_v1_before_the_cutoff_in_v3(
    make: Callable[..., FakeKernel], chain_id: int, epoch: int, verified_type: int
) -> None:
    verifier = ScriptedVerifier(answer=True)
    kernel = make(proof_verifier=verifier, chain_id=chain_id, epoch=epoch)
    assert crypto_ops.verify_post(kernel, POST)
    assert [proof.post_proof for proof in verifier.posts[0].proofs] == [verified_type]
    assert kernel.charges == [kernel.price_list.on_verify_post(13, 3)]


# -- verify_consensus_fault ---------------------------------------------------------------

FAULT = ConsensusFault(target=1000, epoch=12345, fault_type=1)


def test_consensus_fault_from_externs_and_its_syscall_fields() -> None:
    externs = RecordingExterns((FAULT, 500))
    kernel = v3_kernel(externs=externs)
    fault = crypto_ops.verify_consensus_fault(kernel, b"h1", b"h2", b"extra")
    assert fault == FAULT
    assert externs.asked == [(b"h1", b"h2", b"extra")]
    assert crypto_ops.consensus_fault_result(fault) == (12345, 1000, 1)
    assert crypto_ops.consensus_fault_result(None) == (0, 0, 0)
    assert kernel.charges == [GasCharge("OnVerifyConsensusFault", 0, gas(516422))]


def test_v2_charges_the_externs_access_gas_only_up_to_network_version_15() -> None:
    nv15 = FakeKernel(OH_SNAP_PRICES, 15, externs=RecordingExterns((None, 500)))
    nv17 = v2_kernel(externs=RecordingExterns((None, 500)))
    assert crypto_ops.verify_consensus_fault(nv15, b"a", b"b", b"") is None
    assert crypto_ops.verify_consensus_fault(nv17, b"a", b"b", b"") is None
    assert nv15.charges == [
        GasCharge("OnVerifyConsensusFault", gas(495422), 0),
        GasCharge("verify_consensus_fault_accesses", gas(500), 0),
    ]
    assert nv17.charges == [GasCharge("OnVerifyConsensusFault", gas(21000 + 495422), 0)]


def test_extern_failure_is_illegal_argument_after_the_charge() -> None:
    kernel = v3_kernel(externs=RecordingExterns(None))
    fails_with(
        ErrorNumber.ILLEGAL_ARGUMENT,
        lambda: crypto_ops.verify_consensus_fault(kernel, b"a", b"b", b""),
    )
    assert len(kernel.charges) == 1

