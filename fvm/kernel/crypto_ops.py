"""The crypto syscalls' semantics: what each charges, checks, computes and refuses.

A port of the ``CryptoOps`` implementation of ref-fvm's ``DefaultKernel``
(``fvm/src/kernel/default.rs``) and of the argument checks in ``fvm/src/syscalls/crypto.rs``, at
``fvm@v2.12.1`` (network versions 15-17) and ``fvm@v3.13.3`` (18-20); ref-fvm v4
(``fvm@v4.8.2``, where the proof syscalls moved to ``kernel/filecoin.rs``) behaves as v3 except
where noted. The generation is the price list's (``price_list.fvm_version``).

The kernel's syscall handlers read the arguments from the actor's memory and decode them (CBOR
parameters with :func:`decode_cbor_param` and the ``from_cbor`` decoders of
:mod:`fvm.proofs.sector_types`), then call one function here per syscall:

* ``verify_signature``: :func:`verify_signature` (the handler may call
  :func:`check_signature_type` first, as the reference does before reading memory);
* ``verify_bls_aggregate`` (ref-fvm v4.3 on): :func:`verify_bls_aggregate`;
* ``recover_secp_public_key``: :func:`recover_secp_public_key`;
* ``hash``: :func:`compute_hash` (the full digest; the handler truncates it to the buffer);
* ``compute_unsealed_sector_cid``: :func:`compute_unsealed_sector_cid` (proof type checked by
  :func:`check_seal_proof_type`);
* ``verify_seal`` (v2, and v3 before 3.8): :func:`verify_seal`;
* ``verify_post``, ``verify_aggregate_seals``, ``verify_replica_update``: the functions of those
  names;
* ``batch_verify_seals``: :func:`batch_verify_seals` (one bool per seal, written as 0/1 bytes);
* ``verify_consensus_fault``: :func:`verify_consensus_fault`, and
  :func:`consensus_fault_result` for the ``VerifyConsensusFault`` fields.

Each function charges exactly what the reference charges, in the same order and before the
same failures (a check that fails after a charge leaves the charge in place). Bad input raises
:class:`~fvm.syscalls.abi.SyscallError` with the reference's error number; running out of gas
raises whatever the context's ``charge`` raises. Where ref-fvm's ``catch_and_log_panic`` turns
a panic into ``IllegalArgument``, so do these functions.

Where the reference generations differ:

* ``verify_signature``: v2 prices per signature type only and resolves a non-key signer to its
  account's key address, charging for reading the account state; v3 prices per plaintext byte
  too and refuses (after charging) any signer that is not an f1/f3 address. Both refuse types
  other than secp256k1 (1) and BLS (2) before charging;
* ``hash``: v2 charges a flat price first and refuses an unknown code after; v3 refuses it
  first and charges per byte for the function;
* ``verify_consensus_fault``: v2 at network version 15 or lower also charges the gas the node
  reports for its state accesses; v3 ignores it;
* ``batch_verify_seals``: v2 charges nothing (the power actor paid when enqueuing); v3 charges
  ``on_verify_seal`` for every seal before verifying any;
* ``verify_post``: v3 (from 3.10) verifies V1P1 32GiB proofs as V1 on calibration net up to
  epoch 498691, to honour a historical bug; v2 and v4 do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol, TypeVar

from fvm.address import Address
from fvm.address import Protocol as AddressProtocol
from fvm.crypto import InvalidSignatureInput, bls, hashes, secp256k1
from fvm.crypto.signature_verify import verify_signature as verify_signature_of
from fvm.externs import ConsensusFault, Externs, ExternsError
from fvm.gas.charge import GasCharge, gas, saturate_i64
from fvm.gas.price_list import PriceList, PriceListV2, PriceListV4
from fvm.gas.proof_types import RegisteredPoStProof
from fvm.proofs.commcid import CommitmentCIDError, data_commitment_v1_to_cid
from fvm.proofs.commp import PieceCommitmentError, unsealed_sector_commitment
from fvm.proofs.sector_types import (
    AggregateSealVerifyProofAndInfos,
    PieceInfo,
    ReplicaUpdateInfo,
    SealVerifyInfo,
    WindowPoStVerifyInfo,
    is_known_seal_proof,
    seal_proof_sector_size,
)
from fvm.proofs.verifier import ProofInputError, ProofVerifier
from fvm.signature import Signature, SignatureType
from fvm.syscalls.abi import ErrorNumber, SyscallError
from store import dag_cbor
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

T = TypeVar("T")

# fvm_shared ``crypto::signature``.
SECP_SIG_LEN: Final = 65
SECP_SIG_MESSAGE_HASH_SIZE: Final = 32
BLS_SIG_LEN: Final = 96
BLS_PUB_LEN: Final = 48
U32_MASK: Final = (1 << 32) - 1

# ref-fvm v3 ``verify_post``: calibration net's chain ID and the last epoch at which its V1P1
# 32GiB window PoSts are verified as V1 ones.
CALIBNET_CHAIN_ID: Final = 314159
CALIBNET_V1P1_CUTOFF_EPOCH: Final = 498691
# ref-fvm v2 ``verify_consensus_fault``: the last network version that charges the extern's gas.
LAST_VERSION_CHARGING_FAULT_ACCESSES: Final = 15
FAULT_ACCESSES_CHARGE_NAME: Final = "verify_consensus_fault_accesses"

_KEY_PROTOCOLS: Final = (AddressProtocol.SECP256K1, AddressProtocol.BLS)


class CryptoContext(Protocol):
    """What the crypto syscalls need from the kernel running them."""

    @property
    def price_list(self) -> PriceList:
        """The generation's price list (it also tells the generation: ``fvm_version``)."""
        ...

    @property
    def network_version(self) -> int:
        """The network version the message executes at."""
        ...

    @property
    def chain_id(self) -> int:
        """The network's chain ID (314 mainnet, 314159 calibration net)."""
        ...

    @property
    def epoch(self) -> int:
        """The epoch the message executes at."""
        ...

    @property
    def proof_verifier(self) -> ProofVerifier:
        """Who verifies seal, PoSt, aggregate and replica update proofs."""
        ...

    @property
    def externs(self) -> Externs:
        """The node's externs (consensus faults)."""
        ...

    def charge(self, charge: GasCharge) -> None:
        """Charge gas; raises the tracker's out-of-gas error past the limit."""
        ...

    def resolve_key_address(self, addr: Address) -> Address | None:
        """ref-fvm v2 ``resolve_to_key_addr(addr, charge_gas=true)``; only v2 calls it.

        An f1/f3 address is its own key address, free. Otherwise: no actor at ``addr`` raises
        ``SyscallError(NOT_FOUND)``, a non-account actor ``SyscallError(ILLEGAL_ARGUMENT)``;
        for an account the kernel charges ``on_block_open_base``, reads the account state,
        charges ``on_block_open_per_byte`` of its size and returns its ``address`` (a missing
        or undecodable state is fatal).
        """
        ...


class UnsupportedCryptoOp(FvmNodeError):
    """A syscall the context's ref-fvm generation does not have (a kernel wiring bug)."""


def _illegal_argument(message: str) -> SyscallError:
    return SyscallError(ErrorNumber.ILLEGAL_ARGUMENT, message)


def decode_cbor_param(data: bytes, decoder: Callable[[Any], T], what: str) -> T:
    """A CBOR syscall parameter decoded as ref-fvm's ``read_cbor``: bad input is
    ``IllegalArgument``. ``decoder`` maps the DAG-CBOR value (e.g.
    ``SealVerifyInfo.from_cbor``)."""
    try:
        return decoder(dag_cbor.decode(data, what))
    except MalformedInput as exc:
        raise _illegal_argument(f"failed to decode {what}: {exc}") from None


# -- signatures -----------------------------------------------------------------------------


def check_signature_type(sig_type: int) -> SignatureType:
    """The syscall's ``SignatureType::from_u32``: only secp256k1 (1) and BLS (2) exist in the FVM.

    Delegated signatures (3) are Lotus's; the FVM refuses them, before any charge.
    """
    if sig_type == SignatureType.SECP256K1:
        return SignatureType.SECP256K1
    if sig_type == SignatureType.BLS:
        return SignatureType.BLS
    raise _illegal_argument(f"unknown signature type {sig_type}")


def verify_signature(
    ctx: CryptoContext, sig_type: int, signature: bytes, signer: Address, plaintext: bytes
) -> bool:
    """``verify_signature``: whether ``signature`` is ``signer``'s over ``plaintext``."""
    checked_type = check_signature_type(sig_type)
    prices = ctx.price_list
    if isinstance(prices, PriceListV2):
        ctx.charge(prices.on_verify_signature(checked_type))
        key_address = ctx.resolve_key_address(signer)
        if key_address is None:
            raise _illegal_argument(f"address {signer} has no key address")
    else:
        ctx.charge(prices.on_verify_signature(checked_type, len(plaintext)))
        if signer.protocol not in _KEY_PROTOCOLS:
            raise _illegal_argument(f"address protocol {int(signer.protocol)} not supported")
        key_address = signer
    return verify_signature_of(Signature(checked_type, bytes(signature)), key_address, plaintext)


def verify_bls_aggregate(
    ctx: CryptoContext,
    signature: bytes,
    public_keys: Sequence[bytes],
    plaintexts: bytes,
    plaintext_lengths: Sequence[int],
) -> bool:
    """``verify_bls_aggregate`` (ref-fvm v4.3 on): one aggregate over per-signer plaintexts.

    ``plaintexts`` is the concatenation the syscall reads, ``plaintext_lengths`` the ``u32``
    lengths that split it. Unequal numbers of keys and lengths are refused before charging;
    lengths that do not split the buffer exactly after. Malformed points fail verification.
    """
    prices = ctx.price_list
    if not isinstance(prices, PriceListV4):
        raise UnsupportedCryptoOp(f"ref-fvm v{prices.fvm_version} has no verify_bls_aggregate")
    if len(signature) != BLS_SIG_LEN or any(len(key) != BLS_PUB_LEN for key in public_keys):
        raise _illegal_argument("BLS signatures are 96 bytes and public keys 48")
    if len(public_keys) != len(plaintext_lengths):
        raise _illegal_argument("unequal numbers of bls public keys and plaintexts")
    ctx.charge(prices.on_verify_aggregate_signature(len(public_keys), len(plaintexts)))
    messages = []
    offset = 0
    for length in plaintext_lengths:
        end = offset + length
        if end > len(plaintexts):
            raise _illegal_argument("bls signature plaintext out of bounds")
        messages.append(bytes(plaintexts[offset:end]))
        offset = end
    if offset != len(plaintexts):
        raise _illegal_argument("plaintexts buffer length doesn't match")
    return bls.verify_aggregate(signature, messages, list(public_keys))


def recover_secp_public_key(ctx: CryptoContext, msg_hash: bytes, signature: bytes) -> bytes:
    """``recover_secp_public_key``: the 65-byte uncompressed key behind ``signature``."""
    if len(msg_hash) != SECP_SIG_MESSAGE_HASH_SIZE or len(signature) != SECP_SIG_LEN:
        raise _illegal_argument("secp256k1 recovery takes a 32-byte hash and a 65-byte signature")
    ctx.charge(ctx.price_list.on_recover_secp_public_key())
    try:
        return secp256k1.recover_public_key(signature, msg_hash)
    except InvalidSignatureInput as exc:
        raise _illegal_argument(f"public key recovery failed: {exc}") from None


# -- hashing --------------------------------------------------------------------------------


def compute_hash(ctx: CryptoContext, hash_code: int, data: bytes) -> bytes:
    """``hash``: the full digest of ``data`` under the multihash function ``hash_code``."""
    prices = ctx.price_list
    if isinstance(prices, PriceListV2):
        ctx.charge(prices.on_hashing(len(data)))
        if hash_code not in hashes.SUPPORTED_HASHES:
            raise _illegal_argument(f"unsupported hash code {hash_code}")
    else:
        if hash_code not in hashes.SUPPORTED_HASHES:
            raise _illegal_argument(f"unsupported hash code {hash_code}")
        ctx.charge(prices.on_hashing(hash_code, len(data)))
    return hashes.digest(hash_code, data)


# -- sectors and proofs ---------------------------------------------------------------------


def check_seal_proof_type(ctx: CryptoContext, proof_type: int) -> None:
    """The syscall's ``RegisteredSealProof::from(i64)``: an ``Invalid`` type is refused."""
    if not is_known_seal_proof(ctx.price_list.fvm_version, proof_type):
        raise _illegal_argument(f"invalid proof type {proof_type}")


def compute_unsealed_sector_cid(
    ctx: CryptoContext, proof_type: int, pieces: Sequence[PieceInfo]
) -> CID:
    """``compute_unsealed_sector_cid``: the CommD CID of a sector holding ``pieces`` in order."""
    check_seal_proof_type(ctx, proof_type)
    ctx.charge(ctx.price_list.on_compute_unsealed_sector_cid())
    sector_size = seal_proof_sector_size(ctx.price_list.fvm_version, proof_type)
    try:
        comm_d = unsealed_sector_commitment(sector_size, pieces)
    except (PieceCommitmentError, CommitmentCIDError) as exc:
        raise _illegal_argument(f"computing unsealed sector CID: {exc}") from None
    return data_commitment_v1_to_cid(comm_d)


def _verified(check: Callable[[], bool], what: str) -> bool:
    try:
        return check()
    except ProofInputError as exc:
        raise _illegal_argument(f"{what}: {exc}") from None


def verify_seal(ctx: CryptoContext, info: SealVerifyInfo) -> bool:
    """``verify_seal`` (ref-fvm v2 and v3 before 3.8): one sector's seal proof."""
    ctx.charge(ctx.price_list.on_verify_seal())
    return _verified(lambda: ctx.proof_verifier.verify_seal(info), "verifying seal")


def verify_post(ctx: CryptoContext, info: WindowPoStVerifyInfo) -> bool:
    """``verify_post``: a window PoSt, priced by its first proof's type and sector count."""
    first_type = info.proofs[0].post_proof if info.proofs else None
    ctx.charge(ctx.price_list.on_verify_post(first_type, len(info.challenged_sectors)))
    if (
        ctx.price_list.fvm_version == 3
        and ctx.chain_id == CALIBNET_CHAIN_ID
        and ctx.epoch <= CALIBNET_V1P1_CUTOFF_EPOCH
        and first_type == RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1P1
    ):
        first = replace(info.proofs[0], post_proof=RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1)
        info = replace(info, proofs=(first, *info.proofs[1:]))
    return _verified(lambda: ctx.proof_verifier.verify_post(info), "verifying post")


def verify_aggregate_seals(ctx: CryptoContext, aggregate: AggregateSealVerifyProofAndInfos) -> bool:
    """``verify_aggregate_seals``: an aggregated seal proof, priced by type and count."""
    ctx.charge(ctx.price_list.on_verify_aggregate_seals(aggregate.seal_proof, len(aggregate.infos)))
    return _verified(
        lambda: ctx.proof_verifier.verify_aggregate_seals(aggregate), "verifying aggregate seals"
    )


def verify_replica_update(ctx: CryptoContext, info: ReplicaUpdateInfo) -> bool:
    """``verify_replica_update``: a replica update (SnapDeals) proof."""
    ctx.charge(ctx.price_list.on_verify_replica_update())
    return _verified(
        lambda: ctx.proof_verifier.verify_replica_update(info), "verifying replica update"
    )


def batch_verify_seals(ctx: CryptoContext, infos: Sequence[SealVerifyInfo]) -> list[bool]:
    """``batch_verify_seals``: one verdict per seal; a seal the verifier refuses is ``False``.

    v2 charges nothing; v3 and v4 charge ``on_verify_seal`` per seal, all before verifying.
    """
    prices = ctx.price_list
    if not isinstance(prices, PriceListV2):
        for _ in infos:
            ctx.charge(prices.on_verify_seal())
    verifier = ctx.proof_verifier
    verdicts = []
    for info in infos:
        try:
            verdicts.append(verifier.verify_seal(info))
        except ProofInputError:
            verdicts.append(False)
    return verdicts


# -- consensus faults -----------------------------------------------------------------------


def verify_consensus_fault(
    ctx: CryptoContext, header1: bytes, header2: bytes, extra: bytes
) -> ConsensusFault | None:
    """``verify_consensus_fault``: the fault two block headers (and ``extra``) prove, if any.

    The node answers through its externs; an extern failure is ``IllegalArgument``.
    """
    prices = ctx.price_list
    ctx.charge(prices.on_verify_consensus_fault())
    try:
        fault, access_gas = ctx.externs.verify_consensus_fault(header1, header2, extra)
    except ExternsError as exc:
        raise _illegal_argument(f"verifying consensus fault: {exc}") from None
    if (
        isinstance(prices, PriceListV2)
        and ctx.network_version <= LAST_VERSION_CHARGING_FAULT_ACCESSES
    ):
        ctx.charge(GasCharge(FAULT_ACCESSES_CHARGE_NAME, saturate_i64(gas(access_gas)), 0))
    return fault


def consensus_fault_result(fault: ConsensusFault | None) -> tuple[int, int, int]:
    """The ``VerifyConsensusFault`` fields ``(epoch, target, fault)``: zeros for no fault."""
    if fault is None:
        return (0, 0, 0)
    return (fault.epoch, fault.target, fault.fault_type)
