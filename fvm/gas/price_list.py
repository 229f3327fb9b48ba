"""The FVM's price lists: what every operation costs, per network version, as data.

A port of ref-fvm's ``fvm/src/gas/price_list.rs`` across the three ref-fvm generations that ran
on mainnet. Each generation has its own fields and its own pricing functions, so each is its own
frozen dataclass, and every named list is one instance:

* ref-fvm v2 (tag ``fvm@v2.7.0``, unchanged through v2.12), :class:`PriceListV2`:
  ``OH_SNAP_PRICES`` (network version 15) and ``SKYR_PRICES`` (16 and 17). Prices are flat per
  operation with a storage multiplier of 1300 and an extern cost; some are negative refunds.
* ref-fvm v3 (``fvm@v3.3.1`` .. ``fvm@v3.14.1``), :class:`PriceListV3`: ``HYGGE_PRICES``
  (network versions 18-20), FIP-0057's repricing by compute and storage ("other") gas.
* ref-fvm v4 (``fvm@v4.1.0`` .. ``fvm@v4.8.2``), :class:`PriceListV4`: ``WATERMELON_PRICES``
  (network versions 21-24, adding IPLD link tracking, chain lookback and per-entry event
  prices) and ``TEEP_PRICES`` (25-28: FIP-0092 NI-PoRep aggregate prices, a dearer seal
  verification). ref-fvm also maps 29 to Teep, but only behind its ``nv29-dev`` feature.

All amounts are milligas ints; the pricing methods take sizes and counts (ints) where the
reference takes whole structures, and compute exactly what the reference computes, including
where its saturating arithmetic clamps. The per-instruction wasm prices are the engine's
(:mod:`fvm.engine.gas_rules`); the price lists hold a reference to them and add the prices the
syscall layer charges around wasm execution (host calls, memory and table initialisation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import ClassVar, Final, TypeAlias

from fvm.crypto.hashes import (
    BLAKE2B_256,
    BLAKE2B_512,
    KECCAK_256,
    RIPEMD_160,
    SHA2_256,
    UnsupportedHash,
)
from fvm.engine.gas_rules import (
    HYGGE_WASM_RULES,
    OH_SNAP_WASM_RULES,
    SKYR_WASM_RULES,
    TABLE_ELEMENT_SIZE,
    WasmGasRulesV2,
    WasmGasRulesV3,
)
from fvm.gas.charge import GasCharge, Milligas, gas, saturate_i64, saturate_u64
from fvm.gas.proof_types import RegisteredPoStProof, RegisteredSealProof
from fvm.network_version import NetworkVersion
from fvm.signature import SignatureType
from store.errors import FvmNodeError

U64_MASK: Final = (1 << 64) - 1
METHOD_SEND: Final = 0

# fvm_shared ``event::Flags``.
EVENT_FLAG_INDEXED_KEY: Final = 0b01
EVENT_FLAG_INDEXED_VALUE: Final = 0b10

# ref-fvm v3 ``on_get_randomness``: the bytes hashed besides the entropy (domain separation
# tag 8, VRF digest 32, round 8).
RANDOMNESS_INITIAL_HASH_BYTES: Final = 8 + 32 + 8
# ref-fvm v3 ``on_actor_event_accept``: actor ID and CBOR framing added to the event's size.
STAMPED_EVENT_EXTRA_BYTES: Final = 12
# ref-fvm v4 ``EVENT_OVERHEAD`` and ``EVENT_ENTRY_OVERHEAD``: the most CBOR framing one event,
# and one event entry, can add.
EVENT_OVERHEAD_BYTES: Final = 12
EVENT_ENTRY_OVERHEAD_BYTES: Final = 9

_STORAGE_GAS_MULTIPLIER: Final = 1300


class UnsupportedNetworkVersion(FvmNodeError, ValueError):
    """A network version no ref-fvm release prices."""

    def __init__(self, network_version: int) -> None:
        self.network_version = network_version
        super().__init__(f"no FVM price list for network version {network_version}")


class UnsupportedSignatureType(FvmNodeError, ValueError):
    """A signature type the price list has no price for (ref-fvm knows secp256k1 and BLS)."""


@dataclass(frozen=True, slots=True)
class ScalingCost:
    """A flat price plus a price per unit (``ScalingCost`` of ref-fvm v3+)."""

    flat: Milligas
    scale: Milligas

    def apply(self, units: int) -> Milligas:
        """``flat + scale * units``, saturating at ``u64::MAX`` as the reference does."""
        return saturate_u64(self.flat + self.scale * units)


@dataclass(frozen=True, slots=True)
class Step:
    start: int
    cost: Milligas


@dataclass(frozen=True, slots=True)
class StepCost:
    """A staircase: the cost of the last step starting at or below the looked-up value.

    Steps must be in ascending order of ``start`` (ref-fvm v2 scans forwards, v3+ backwards;
    on ascending steps both find the same step).
    """

    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        starts = [step.start for step in self.steps]
        if starts != sorted(starts):
            raise ValueError("step costs must be in ascending order of start")

    def lookup(self, units: int) -> Milligas:
        for step in reversed(self.steps):
            if step.start <= units:
                return step.cost
        return 0


def _frozen(mapping: dict[int, ScalingCost]) -> Mapping[int, ScalingCost]:
    return MappingProxyType(mapping)


def _steps(*pairs: tuple[int, int]) -> StepCost:
    """A staircase from ``(start, whole gas)`` pairs."""
    return StepCost(tuple(Step(start, gas(cost)) for start, cost in pairs))


def _hashing_price(hashing_cost: Mapping[int, ScalingCost], hash_code: int) -> ScalingCost:
    try:
        return hashing_cost[hash_code]
    except KeyError:
        raise UnsupportedHash(hash_code) from None


def _signature_price(sig_cost: Mapping[int, ScalingCost], sig_type: int) -> ScalingCost:
    try:
        return sig_cost[sig_type]
    except KeyError:
        raise UnsupportedSignatureType(f"no price for signature type {sig_type}") from None


def _aggregate_seal_price(
    per_proof: Mapping[int, Milligas],
    steps: Mapping[int, StepCost],
    seal_proof: int,
    proof_count: int,
) -> Milligas:
    """Per-proof price times the count plus the staircase; unknown types priced as 32GiB V1P1."""
    fallback = RegisteredSealProof.STACKED_DRG_32GIB_V1P1
    price = per_proof.get(seal_proof)
    if price is None:
        price = per_proof[fallback]
    staircase = steps.get(seal_proof)
    if staircase is None:
        staircase = steps[fallback]
    return price * proof_count + staircase.lookup(proof_count)


def _post_price(
    lookup: Mapping[int, ScalingCost], post_proof: int | None, default: RegisteredPoStProof
) -> ScalingCost:
    """The first proof's type picks the price; none or an unknown type uses ``default``'s."""
    price = lookup.get(default if post_proof is None else post_proof)
    return lookup[default] if price is None else price


# --------------------------------------------------------------------------------------------
# ref-fvm v2


@dataclass(frozen=True, slots=True)
class PriceListV2:
    """ref-fvm v2's ``PriceList`` (network versions 15-17). Amounts in milligas."""

    fvm_version: ClassVar[int] = 2

    name: str
    storage_gas_multiplier: int
    on_chain_message_compute_base: Milligas
    on_chain_message_storage_base: Milligas
    on_chain_message_storage_per_byte: Milligas
    on_chain_return_value_per_byte: Milligas
    send_base: Milligas
    send_transfer_funds: Milligas
    send_transfer_only_premium: Milligas
    send_invoke_method: Milligas
    create_actor_compute: Milligas
    create_actor_storage: Milligas
    delete_actor: Milligas
    bls_sig_cost: Milligas
    secp256k1_sig_cost: Milligas
    secp256k1_recover_cost: Milligas
    hashing_base: Milligas
    compute_unsealed_sector_cid_base: Milligas
    verify_seal_base: Milligas
    # Listed by the reference but never used by its pricing functions.
    verify_aggregate_seal_base: Milligas
    verify_aggregate_seal_per: Mapping[int, Milligas]
    verify_aggregate_seal_steps: Mapping[int, StepCost]
    verify_consensus_fault: Milligas
    verify_replica_update: Milligas
    verify_post_lookup: Mapping[int, ScalingCost]
    get_randomness_base: Milligas
    get_randomness_per_byte: Milligas
    block_memcpy_per_byte_cost: Milligas
    block_open_base: Milligas
    block_open_memret_per_byte_cost: Milligas
    block_link_base: Milligas
    block_link_storage_per_byte_cost: Milligas
    block_create_base: Milligas
    block_create_memret_per_byte_cost: Milligas
    block_read_base: Milligas
    block_stat_base: Milligas
    syscall_cost: Milligas
    extern_cost: Milligas
    wasm_rules: WasmGasRulesV2

    def on_chain_message(self, message_size: int) -> GasCharge:
        storage = (
            self.on_chain_message_storage_base
            + self.on_chain_message_storage_per_byte * message_size
        ) * self.storage_gas_multiplier
        return GasCharge(
            "OnChainMessage", self.on_chain_message_compute_base, saturate_i64(storage)
        )

    def on_chain_return_value(self, data_size: int) -> GasCharge:
        storage = self.on_chain_return_value_per_byte * data_size * self.storage_gas_multiplier
        return GasCharge("OnChainReturnValue", 0, saturate_i64(storage))

    def on_method_invocation(self, value: int, method_num: int) -> GasCharge:
        compute = self.send_base
        if value != 0:
            compute += self.send_transfer_funds
            if method_num == METHOD_SEND:
                compute += self.send_transfer_only_premium
        if method_num != METHOD_SEND:
            compute += self.send_invoke_method
        return GasCharge("OnMethodInvocation", compute, 0)

    def on_syscall(self) -> GasCharge:
        return GasCharge("OnSyscall", self.syscall_cost, 0)

    def on_create_actor(self) -> GasCharge:
        return GasCharge(
            "OnCreateActor",
            self.create_actor_compute,
            self.create_actor_storage * self.storage_gas_multiplier,
        )

    def on_delete_actor(self) -> GasCharge:
        return GasCharge("OnDeleteActor", 0, self.delete_actor * self.storage_gas_multiplier)

    def on_verify_signature(self, sig_type: int) -> GasCharge:
        if sig_type == SignatureType.BLS:
            price = self.bls_sig_cost
        elif sig_type == SignatureType.SECP256K1:
            price = self.secp256k1_sig_cost
        else:
            raise UnsupportedSignatureType(f"no price for signature type {sig_type}")
        return GasCharge("OnVerifySignature", price, 0)

    def on_recover_secp_public_key(self) -> GasCharge:
        return GasCharge("OnRecoverSecpPublicKey", self.secp256k1_recover_cost, 0)

    def on_hashing(self, data_size: int) -> GasCharge:
        """A flat price whatever the size (v2 only hashes with blake2b-256)."""
        return GasCharge("OnHashing", self.hashing_base, 0)

    def on_compute_unsealed_sector_cid(self) -> GasCharge:
        return GasCharge("OnComputeUnsealedSectorCid", self.compute_unsealed_sector_cid_base, 0)

    def on_verify_seal(self) -> GasCharge:
        return GasCharge("OnVerifySeal", self.verify_seal_base, 0)

    def on_verify_aggregate_seals(self, seal_proof: int, proof_count: int) -> GasCharge:
        price = _aggregate_seal_price(
            self.verify_aggregate_seal_per, self.verify_aggregate_seal_steps, seal_proof,
            proof_count,
        )
        return GasCharge("OnVerifyAggregateSeals", saturate_i64(price), 0)

    def on_verify_replica_update(self) -> GasCharge:
        return GasCharge("OnVerifyReplicaUpdate", self.verify_replica_update, 0)

    def on_verify_post(self, post_proof: int | None, challenged_sectors: int) -> GasCharge:
        """``post_proof`` is the first proof's type, or None when the PoSt has no proofs."""
        price = _post_price(
            self.verify_post_lookup, post_proof, RegisteredPoStProof.STACKED_DRG_WINDOW_512MIB_V1
        )
        compute = saturate_i64(price.flat + price.scale * challenged_sectors)
        return GasCharge("OnVerifyPost", compute, 0)

    def on_verify_consensus_fault(self) -> GasCharge:
        compute = self.extern_cost + self.verify_consensus_fault
        return GasCharge("OnVerifyConsensusFault", compute, 0)

    def on_get_randomness(self, entropy_size: int) -> GasCharge:
        compute = (
            self.extern_cost
            + self.get_randomness_base
            + self.get_randomness_per_byte * entropy_size
        )
        return GasCharge("OnGetRandomness", saturate_i64(compute), 0)

    def on_block_open_base(self) -> GasCharge:
        return GasCharge("OnBlockOpenBase", self.extern_cost + self.block_open_base, 0)

    def on_block_open_per_byte(self, data_size: int) -> GasCharge:
        compute = (
            self.block_open_memret_per_byte_cost * data_size
            + self.block_memcpy_per_byte_cost * data_size
        )
        return GasCharge("OnBlockOpenPerByte", saturate_i64(compute), 0)

    def on_block_read(self, data_size: int) -> GasCharge:
        compute = self.block_read_base + self.block_memcpy_per_byte_cost * data_size
        return GasCharge("OnBlockRead", saturate_i64(compute), 0)

    def on_block_create(self, data_size: int) -> GasCharge:
        memory = (
            self.block_create_memret_per_byte_cost * data_size
            + self.block_memcpy_per_byte_cost * data_size
        )
        return GasCharge("OnBlockCreate", saturate_i64(self.block_create_base + memory), 0)

    def on_block_link(self, data_size: int) -> GasCharge:
        # Two copies: into the buffered blockstore, and from it to the node's store on flush.
        memcpy = self.block_memcpy_per_byte_cost * data_size
        storage = self.block_link_storage_per_byte_cost * self.storage_gas_multiplier * data_size
        return GasCharge(
            "OnBlockLink", saturate_i64(self.block_link_base + memcpy * 2), saturate_i64(storage)
        )

    def on_block_stat(self) -> GasCharge:
        return GasCharge("OnBlockStat", self.block_stat_base, 0)

    def init_memory_gas(self, min_memory_bytes: int) -> Milligas:
        """ref-fvm v2 charges nothing for a module's initial memory."""
        return 0

    def grow_memory_gas(self, grow_memory_bytes: int) -> Milligas:
        """ref-fvm v2 does not charge for memory growth (``MemoryGrowCost::Free``)."""
        return 0

    def init_table_gas(self, min_table_elements: int) -> Milligas:
        """ref-fvm v2 charges nothing for a module's initial tables."""
        return 0


_SEAL_32GIB_V1P1: Final = RegisteredSealProof.STACKED_DRG_32GIB_V1P1
_SEAL_64GIB_V1P1: Final = RegisteredSealProof.STACKED_DRG_64GIB_V1P1
_SEAL_32GIB_NI: Final = RegisteredSealProof.STACKED_DRG_32GIB_V1P2_FEAT_NI_POREP
_SEAL_64GIB_NI: Final = RegisteredSealProof.STACKED_DRG_64GIB_V1P2_FEAT_NI_POREP

_AGGREGATE_SEAL_PER_PROOF: Final[Mapping[int, Milligas]] = MappingProxyType(
    {_SEAL_32GIB_V1P1: gas(449900), _SEAL_64GIB_V1P1: gas(359272)}
)
_AGGREGATE_SEAL_STEPS: Final[Mapping[int, StepCost]] = MappingProxyType(
    {
        _SEAL_32GIB_V1P1: _steps(
            (4, 103994170), (7, 112356810), (13, 122912610), (26, 137559930),
            (52, 162039100), (103, 210960780), (205, 318351180), (410, 528274980),
        ),
        _SEAL_64GIB_V1P1: _steps(
            (4, 102581240), (7, 110803030), (13, 120803700), (26, 134642130),
            (52, 157357890), (103, 203017690), (205, 304253590), (410, 509880640),
        ),
    }
)

_WINDOW_POST_PRICE: Final = ScalingCost(flat=gas(117680921), scale=gas(43780))
_WINDOW_POST_V1: Final = (
    RegisteredPoStProof.STACKED_DRG_WINDOW_512MIB_V1,
    RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1,
    RegisteredPoStProof.STACKED_DRG_WINDOW_64GIB_V1,
)
_WINDOW_POST_V1P1: Final = (
    RegisteredPoStProof.STACKED_DRG_WINDOW_512MIB_V1P1,
    RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1P1,
    RegisteredPoStProof.STACKED_DRG_WINDOW_64GIB_V1P1,
)

# ref-fvm v2 ``OH_SNAP_PRICES``.
OH_SNAP_PRICES: Final = PriceListV2(
    name="OhSnap",
    storage_gas_multiplier=_STORAGE_GAS_MULTIPLIER,
    on_chain_message_compute_base=gas(38863),
    on_chain_message_storage_base=gas(36),
    on_chain_message_storage_per_byte=gas(1),
    on_chain_return_value_per_byte=gas(1),
    send_base=gas(29233),
    send_transfer_funds=gas(27500),
    send_transfer_only_premium=gas(159672),
    send_invoke_method=gas(-5377),
    create_actor_compute=gas(1108454),
    create_actor_storage=gas(36 + 40),
    delete_actor=gas(-(36 + 40)),
    bls_sig_cost=gas(16598605),
    secp256k1_sig_cost=gas(1637292),
    secp256k1_recover_cost=gas(1637292),
    hashing_base=gas(31355),
    compute_unsealed_sector_cid_base=gas(98647),
    verify_seal_base=gas(2000),
    verify_aggregate_seal_base=0,
    verify_aggregate_seal_per=_AGGREGATE_SEAL_PER_PROOF,
    verify_aggregate_seal_steps=_AGGREGATE_SEAL_STEPS,
    verify_consensus_fault=gas(495422),
    verify_replica_update=gas(36316136),
    verify_post_lookup=_frozen({proof: _WINDOW_POST_PRICE for proof in _WINDOW_POST_V1}),
    get_randomness_base=0,
    get_randomness_per_byte=0,
    block_memcpy_per_byte_cost=0,
    block_open_base=gas(114617),
    block_open_memret_per_byte_cost=0,
    block_link_base=gas(353640),
    block_link_storage_per_byte_cost=gas(1),
    block_create_base=0,
    block_create_memret_per_byte_cost=0,
    block_read_base=0,
    block_stat_base=0,
    syscall_cost=0,
    extern_cost=0,
    wasm_rules=OH_SNAP_WASM_RULES,
)

# ref-fvm v2 ``SKYR_PRICES``: OhSnap plus memory, syscall and extern prices, and wasm execution.
SKYR_PRICES: Final = replace(
    OH_SNAP_PRICES,
    name="Skyr",
    block_memcpy_per_byte_cost=500,
    block_open_memret_per_byte_cost=gas(10),
    block_create_memret_per_byte_cost=gas(10),
    syscall_cost=gas(14000),
    extern_cost=gas(21000),
    wasm_rules=SKYR_WASM_RULES,
)


# --------------------------------------------------------------------------------------------
# ref-fvm v3


@dataclass(frozen=True, slots=True)
class PriceListV3:
    """ref-fvm v3's ``PriceList`` (network versions 18-20). Amounts in milligas."""

    fvm_version: ClassVar[int] = 3

    name: str
    on_chain_message_compute: ScalingCost
    on_chain_message_storage: ScalingCost
    on_chain_return_compute: ScalingCost
    on_chain_return_storage: ScalingCost
    send_transfer_funds: Milligas
    send_invoke_method: Milligas
    actor_lookup: Milligas
    actor_update: Milligas
    actor_create_storage: Milligas
    address_lookup: Milligas
    address_assignment: Milligas
    sig_cost: Mapping[int, ScalingCost]
    secp256k1_recover_cost: Milligas
    hashing_cost: Mapping[int, ScalingCost]
    tipset_cid_latest: Milligas
    tipset_cid_historical: Milligas
    compute_unsealed_sector_cid_base: Milligas
    verify_seal_base: Milligas
    verify_aggregate_seal_per: Mapping[int, Milligas]
    verify_aggregate_seal_steps: Mapping[int, StepCost]
    verify_consensus_fault: Milligas
    verify_replica_update: Milligas
    verify_post_lookup: Mapping[int, ScalingCost]
    get_randomness_seed: Milligas
    block_allocate: ScalingCost
    block_memcpy: ScalingCost
    block_memory_retention_minimum: ScalingCost
    block_open: ScalingCost
    block_persist_storage: ScalingCost
    block_persist_compute: Milligas
    syscall_cost: Milligas
    builtin_actor_manifest_lookup: Milligas
    network_context: Milligas
    message_context: Milligas
    # Only charged by the ``m2-native`` feature (actor installation), off on mainnet.
    install_wasm_per_byte_cost: Milligas
    wasm_rules: WasmGasRulesV3
    event_validation_cost: ScalingCost
    event_accept_per_index_element: ScalingCost
    # FIP-0055: actors whose state-tree entries are free to look up and update.
    preloaded_actors: tuple[int, ...]

    def on_chain_message(self, message_size: int) -> GasCharge:
        """The message's inclusion, including updating the sender's nonce and balance."""
        return GasCharge(
            "OnChainMessage",
            self.on_chain_message_compute.apply(message_size),
            saturate_u64(self.actor_update + self.on_chain_message_storage.apply(message_size)),
        )

    def on_chain_return_value(self, data_size: int) -> GasCharge:
        """The top-level return value's storage (the name ref-fvm v3.0-v3.5 charged it under)."""
        return GasCharge(
            "OnChainReturnValue",
            self.on_chain_return_compute.apply(data_size),
            self.on_chain_return_storage.apply(data_size),
        )

    def on_method_return(self, call_depth: int, data_size: int) -> GasCharge | None:
        """The return value's charge: only the top-level call (depth 1) pays one."""
        return self.on_chain_return_value(data_size) if call_depth == 1 else None

    def on_value_transfer(self) -> GasCharge:
        return GasCharge("OnValueTransfer", self.send_transfer_funds, 0)

    def on_method_invocation(self) -> GasCharge:
        return GasCharge("OnMethodInvocation", self.send_invoke_method, 0)

    def on_syscall(self) -> GasCharge:
        return GasCharge("OnSyscall", self.syscall_cost, 0)

    def on_create_actor(self, new_address: bool) -> GasCharge:
        other = self.actor_create_storage
        if new_address:
            other += self.address_assignment + self.address_lookup
        return GasCharge("OnCreateActor", 0, other)

    def on_delete_actor(self) -> GasCharge:
        return GasCharge("OnDeleteActor", 0, 0)

    def on_verify_signature(self, sig_type: int, data_size: int) -> GasCharge:
        price = _signature_price(self.sig_cost, sig_type)
        return GasCharge("OnVerifySignature", price.apply(data_size), 0)

    def on_recover_secp_public_key(self) -> GasCharge:
        return GasCharge("OnRecoverSecpPublicKey", self.secp256k1_recover_cost, 0)

    def on_hashing(self, hash_code: int, data_size: int) -> GasCharge:
        price = _hashing_price(self.hashing_cost, hash_code)
        return GasCharge("OnHashing", price.apply(data_size), 0)

    def on_compute_unsealed_sector_cid(self) -> GasCharge:
        return GasCharge("OnComputeUnsealedSectorCid", self.compute_unsealed_sector_cid_base, 0)

    def on_verify_seal(self) -> GasCharge:
        return GasCharge("OnVerifySeal", self.verify_seal_base, 0)

    def on_verify_aggregate_seals(self, seal_proof: int, proof_count: int) -> GasCharge:
        price = _aggregate_seal_price(
            self.verify_aggregate_seal_per, self.verify_aggregate_seal_steps, seal_proof,
            proof_count,
        )
        return GasCharge("OnVerifyAggregateSeals", saturate_u64(price), 0)

    def on_verify_replica_update(self) -> GasCharge:
        return GasCharge("OnVerifyReplicaUpdate", self.verify_replica_update, 0)

    def on_verify_post(self, post_proof: int | None, challenged_sectors: int) -> GasCharge:
        """``post_proof`` is the first proof's type, or None when the PoSt has no proofs."""
        price = _post_price(
            self.verify_post_lookup, post_proof, RegisteredPoStProof.STACKED_DRG_WINDOW_512MIB_V1
        )
        return GasCharge("OnVerifyPost", price.apply(challenged_sectors), 0)

    def on_verify_consensus_fault(self) -> GasCharge:
        return GasCharge("OnVerifyConsensusFault", 0, self.verify_consensus_fault)

    def on_get_randomness(self, entropy_size: int) -> GasCharge:
        hashed = saturate_u64(entropy_size + RANDOMNESS_INITIAL_HASH_BYTES)
        hashing = self.hashing_cost[BLAKE2B_256].apply(hashed)
        return GasCharge("OnGetRandomness", 0, saturate_u64(self.get_randomness_seed + hashing))

    def on_block_open_base(self) -> GasCharge:
        return GasCharge("OnBlockOpenBase", 0, self.block_open.flat)

    def on_block_open_per_byte(self, data_size: int) -> GasCharge:
        compute = saturate_u64(
            self.block_allocate.apply(data_size) + self.block_memcpy.apply(data_size)
        )
        block_open = saturate_u64(self.block_open.scale * data_size)
        # At least the memory-retention price is charged, topped up as "other" gas.
        retention_min = self.block_memory_retention_minimum.apply(data_size)
        surcharge = max(retention_min - saturate_u64(compute + block_open), 0)
        return GasCharge("OnBlockOpenPerByte", compute, saturate_u64(block_open + surcharge))

    def on_block_read(self, data_size: int) -> GasCharge:
        return GasCharge("OnBlockRead", self.block_memcpy.apply(data_size), 0)

    def on_block_create(self, data_size: int) -> GasCharge:
        compute = saturate_u64(
            self.block_memcpy.apply(data_size) + self.block_allocate.apply(data_size)
        )
        retention_min = self.block_memory_retention_minimum.apply(data_size)
        return GasCharge("OnBlockCreate", compute, max(retention_min - compute, 0))

    def on_block_link(self, hash_code: int, data_size: int) -> GasCharge:
        hashing = _hashing_price(self.hashing_cost, hash_code).apply(data_size)
        compute = saturate_u64(
            self.block_memcpy.apply(data_size) + self.block_allocate.apply(data_size) + hashing
        )
        storage = self.block_persist_storage.apply(data_size)
        return GasCharge("OnBlockLink", compute, saturate_u64(self.block_persist_compute + storage))

    def on_block_stat(self) -> GasCharge:
        return GasCharge("OnBlockStat", 0, 0)

    def on_actor_lookup(self) -> GasCharge:
        return GasCharge("OnActorLookup", 0, self.actor_lookup)

    def on_actor_update(self) -> GasCharge:
        return GasCharge("OnActorUpdate", 0, self.actor_update)

    def on_actor_create(self) -> GasCharge:
        return GasCharge("OnActorCreate", 0, self.actor_create_storage)

    def on_self_balance(self) -> GasCharge:
        return GasCharge("OnSelfBalance", 0, 0)

    def on_balance_of(self) -> GasCharge:
        return GasCharge("OnBalanceOf", 0, 0)

    def on_resolve_address(self) -> GasCharge:
        return GasCharge("OnResolveAddress", 0, 0)

    def on_lookup_delegated_address(self) -> GasCharge:
        return GasCharge("OnLookupAddress", 0, 0)

    def on_get_actor_code_cid(self) -> GasCharge:
        return GasCharge("OnGetActorCodeCid", 0, 0)

    def on_get_builtin_actor_type(self) -> GasCharge:
        return GasCharge("OnGetBuiltinActorType", self.builtin_actor_manifest_lookup, 0)

    def on_get_code_cid_for_type(self) -> GasCharge:
        return GasCharge("OnGetCodeCidForType", self.builtin_actor_manifest_lookup, 0)

    def on_tipset_cid(self, lookback: bool) -> GasCharge:
        """``lookback`` is False for the latest tipset's CID, True for an older one."""
        price = self.tipset_cid_historical if lookback else self.tipset_cid_latest
        return GasCharge("OnTipsetCid", 0, price)

    def on_network_context(self) -> GasCharge:
        return GasCharge("OnNetworkContext", self.network_context, 0)

    def on_message_context(self) -> GasCharge:
        return GasCharge("OnMessageContext", self.message_context, 0)

    def init_memory_gas(self, min_memory_bytes: int) -> Milligas:
        rules = self.wasm_rules
        return saturate_u64(
            rules.memory_fill_base_cost + rules.memory_fill_per_byte_cost * min_memory_bytes
        )

    def grow_memory_gas(self, grow_memory_bytes: int) -> Milligas:
        rules = self.wasm_rules
        return saturate_u64(
            rules.memory_fill_base_cost + rules.memory_fill_per_byte_cost * grow_memory_bytes
        )

    def init_table_gas(self, min_table_elements: int) -> Milligas:
        rules = self.wasm_rules
        per_element = rules.memory_fill_per_byte_cost * min_table_elements * TABLE_ELEMENT_SIZE
        return saturate_u64(rules.memory_fill_base_cost + per_element)

    def on_actor_event_validate(self, data_size: int) -> GasCharge:
        compute = saturate_u64(
            self.block_memcpy.apply(data_size)
            + self.block_allocate.apply(data_size)
            + self.event_validation_cost.apply(data_size)
        )
        return GasCharge("OnActorEventValidate", compute, 0)

    def on_actor_event_accept(
        self, entries: Iterable[tuple[int, int, int]], serialized_size: int
    ) -> GasCharge:
        """An accepted event: ``entries`` are ``(flags, key length, value length)`` each."""
        indexed_bytes = 0
        indexed_elements = 0
        for flags, key_size, value_size in entries:
            if flags & EVENT_FLAG_INDEXED_KEY:
                indexed_bytes += key_size
                indexed_elements += 1
            if flags & EVENT_FLAG_INDEXED_VALUE:
                indexed_bytes += value_size
                indexed_elements += 1
        stamped_size = serialized_size + STAMPED_EVENT_EXTRA_BYTES
        # Three copies (stamping, into the AMT, to the client) and two allocations.
        memcpy = self.block_memcpy.apply(stamped_size)
        alloc = self.block_allocate.apply(stamped_size)
        hashing = self.hashing_cost[BLAKE2B_256].apply(stamped_size)
        indexing = saturate_u64(
            self.event_accept_per_index_element.flat * indexed_elements
            + self.event_accept_per_index_element.scale * indexed_bytes
        )
        # The deferred copies, allocation and hashing are "other" gas, out of the benchmarks.
        other = saturate_u64(indexing + saturate_u64(memcpy * 2) + alloc + hashing)
        return GasCharge("OnActorEventAccept", saturate_u64(memcpy + alloc), other)


_SIG_COST: Final = _frozen(
    {
        SignatureType.SECP256K1: ScalingCost(flat=gas(1637292), scale=gas(10)),
        SignatureType.BLS: ScalingCost(flat=gas(16598605), scale=gas(26)),
    }
)
_HASHING_COST: Final = _frozen(
    {
        SHA2_256: ScalingCost(flat=0, scale=gas(7)),
        BLAKE2B_256: ScalingCost(flat=0, scale=gas(10)),
        BLAKE2B_512: ScalingCost(flat=0, scale=gas(10)),
        KECCAK_256: ScalingCost(flat=0, scale=gas(33)),
        RIPEMD_160: ScalingCost(flat=0, scale=gas(35)),
    }
)
_ZERO: Final = ScalingCost(flat=0, scale=0)
_PRELOADED_ACTORS: Final = (0, 1, 2, 3, 4, 5, 6, 7, 10, 99)

# ref-fvm v3 ``HYGGE_PRICES`` (as of fvm@v3.3.1, with the FIP-0061 V1P1 window PoSt types; ref-fvm
# v3.0/v3.1 lacked them and priced them through the identical 512MiB V1 fallback).
HYGGE_PRICES: Final = PriceListV3(
    name="Hygge",
    on_chain_message_compute=ScalingCost(flat=gas(38863), scale=0),
    on_chain_message_storage=ScalingCost(flat=gas(36 * 1300), scale=gas(1300)),
    on_chain_return_compute=_ZERO,
    on_chain_return_storage=ScalingCost(flat=0, scale=gas(1300)),
    send_transfer_funds=gas(6000),
    send_invoke_method=gas(75000),
    actor_lookup=gas(500_000),
    actor_update=gas(475_000),
    actor_create_storage=gas(650_000),
    address_lookup=gas(1_050_000),
    address_assignment=gas(1_000_000),
    sig_cost=_SIG_COST,
    secp256k1_recover_cost=gas(1637292),
    hashing_cost=_HASHING_COST,
    tipset_cid_latest=gas(50_000),
    tipset_cid_historical=gas(215_000),
    compute_unsealed_sector_cid_base=gas(98647),
    verify_seal_base=gas(2000),
    verify_aggregate_seal_per=_AGGREGATE_SEAL_PER_PROOF,
    verify_aggregate_seal_steps=_AGGREGATE_SEAL_STEPS,
    verify_consensus_fault=gas(516422),
    verify_replica_update=gas(36316136),
    verify_post_lookup=_frozen(
        {proof: _WINDOW_POST_PRICE for proof in _WINDOW_POST_V1 + _WINDOW_POST_V1P1}
    ),
    get_randomness_seed=gas(21000),
    block_allocate=ScalingCost(flat=0, scale=gas(2)),
    block_memcpy=ScalingCost(flat=0, scale=400),
    block_memory_retention_minimum=ScalingCost(flat=0, scale=gas(10)),
    block_open=ScalingCost(flat=gas(187440), scale=0),
    block_persist_storage=ScalingCost(flat=gas(334000), scale=gas(3340)),
    block_persist_compute=gas(172000),
    syscall_cost=gas(14000),
    builtin_actor_manifest_lookup=0,
    network_context=0,
    message_context=0,
    install_wasm_per_byte_cost=0,
    wasm_rules=HYGGE_WASM_RULES,
    event_validation_cost=ScalingCost(flat=gas(1750), scale=gas(25)),
    event_accept_per_index_element=_ZERO,
    preloaded_actors=_PRELOADED_ACTORS,
)


# --------------------------------------------------------------------------------------------
# ref-fvm v4


@dataclass(frozen=True, slots=True)
class PriceListV4:
    """ref-fvm v4's ``PriceList`` (network versions 21-28). Amounts in milligas."""

    fvm_version: ClassVar[int] = 4

    name: str
    on_chain_message_compute: ScalingCost
    on_chain_message_storage: ScalingCost
    on_chain_return_compute: ScalingCost
    on_chain_return_storage: ScalingCost
    send_transfer_funds: Milligas
    send_invoke_method: Milligas
    actor_lookup: Milligas
    actor_update: Milligas
    actor_create_storage: Milligas
    address_lookup: Milligas
    address_assignment: Milligas
    # Behind ref-fvm's ``verify-signature`` feature from v4.3 (the syscall FIP-0079 replaced).
    sig_cost: Mapping[int, ScalingCost]
    secp256k1_recover_cost: Milligas
    # The BLS aggregate-signature syscall's prices (ref-fvm v4.3 on).
    bls_pairing_cost: Milligas
    bls_hashing_cost: ScalingCost
    hashing_cost: Mapping[int, ScalingCost]
    # Walking up the chain: randomness and tipset CIDs, priced by how far back.
    lookback_cost: ScalingCost
    compute_unsealed_sector_cid_base: Milligas
    verify_seal_base: Milligas
    verify_aggregate_seal_per: Mapping[int, Milligas]
    verify_aggregate_seal_steps: Mapping[int, StepCost]
    verify_consensus_fault: Milligas
    verify_replica_update: Milligas
    verify_post_lookup: Mapping[int, ScalingCost]
    block_allocate: ScalingCost
    block_memcpy: ScalingCost
    block_memory_retention_minimum: ScalingCost
    block_open: ScalingCost
    block_persist_storage: ScalingCost
    block_persist_compute: Milligas
    builtin_actor_manifest_lookup: Milligas
    network_context: Milligas
    message_context: Milligas
    install_wasm_per_byte_cost: Milligas
    wasm_rules: WasmGasRulesV3
    # ref-fvm v4 keeps this in ``WasmGasPrices`` as ``host_call_cost``; charged per syscall.
    host_call_cost: Milligas
    event_per_entry: ScalingCost
    utf8_validation: ScalingCost
    preloaded_actors: tuple[int, ...]
    # Charged by the IPLD layer while scanning DAG-CBOR blocks for links.
    ipld_cbor_scan_per_cid: Milligas
    ipld_cbor_scan_per_field: Milligas
    ipld_link_tracked: Milligas
    ipld_link_checked: Milligas

    def on_chain_message(self, message_size: int) -> GasCharge:
        """The message's inclusion, including updating the sender's nonce and balance."""
        return GasCharge(
            "OnChainMessage",
            self.on_chain_message_compute.apply(message_size),
            saturate_u64(self.actor_update + self.on_chain_message_storage.apply(message_size)),
        )

    def on_value_transfer(self) -> GasCharge:
        return GasCharge("OnValueTransfer", self.send_transfer_funds, 0)

    def on_method_invocation(self, param_size: int, param_links: int) -> GasCharge:
        compute = saturate_u64(self.send_invoke_method + self.ipld_link_tracked * param_links)
        return GasCharge("OnMethodInvocation", compute, 0)

    def on_method_return(self, call_depth: int, return_size: int, return_links: int) -> GasCharge:
        """On-chain storage at the top level (depth 1), link tracking below it."""
        if call_depth == 1:
            return GasCharge(
                "OnChainReturnValue",
                self.on_chain_return_compute.apply(return_size),
                self.on_chain_return_storage.apply(return_size),
            )
        return GasCharge("OnReturnValue", saturate_u64(self.ipld_link_tracked * return_links), 0)

    def on_syscall(self) -> GasCharge:
        return GasCharge("OnSyscall", self.host_call_cost, 0)

    def on_create_actor(self, new_address: bool) -> GasCharge:
        other = self.actor_create_storage
        if new_address:
            other += self.address_assignment + self.address_lookup
        return GasCharge("OnCreateActor", 0, other)

    def on_delete_actor(self) -> GasCharge:
        return GasCharge("OnDeleteActor", 0, 0)

    def on_verify_signature(self, sig_type: int, data_size: int) -> GasCharge:
        price = _signature_price(self.sig_cost, sig_type)
        return GasCharge("OnVerifySignature", price.apply(data_size), 0)

    def on_verify_aggregate_signature(self, signature_count: int, data_size: int) -> GasCharge:
        """One pairing per signed message plus one for the aggregate, and hashing the data."""
        pairings = saturate_u64(self.bls_pairing_cost * (signature_count + 1))
        hashing = self.bls_hashing_cost.apply(data_size)
        return GasCharge("OnVerifyBlsAggregateSignature", saturate_u64(pairings + hashing), 0)

    def on_recover_secp_public_key(self) -> GasCharge:
        return GasCharge("OnRecoverSecpPublicKey", self.secp256k1_recover_cost, 0)

    def on_hashing(self, hash_code: int, data_size: int) -> GasCharge:
        price = _hashing_price(self.hashing_cost, hash_code)
        return GasCharge("OnHashing", price.apply(data_size), 0)

    def on_utf8_validation(self, data_size: int) -> GasCharge:
        return GasCharge("OnUtf8Validation", self.utf8_validation.apply(data_size), 0)

    def on_compute_unsealed_sector_cid(self) -> GasCharge:
        return GasCharge("OnComputeUnsealedSectorCid", self.compute_unsealed_sector_cid_base, 0)

    def on_verify_seal(self) -> GasCharge:
        return GasCharge("OnVerifySeal", self.verify_seal_base, 0)

    def on_verify_aggregate_seals(self, seal_proof: int, proof_count: int) -> GasCharge:
        price = _aggregate_seal_price(
            self.verify_aggregate_seal_per, self.verify_aggregate_seal_steps, seal_proof,
            proof_count,
        )
        return GasCharge("OnVerifyAggregateSeals", saturate_u64(price), 0)

    def on_verify_replica_update(self) -> GasCharge:
        return GasCharge("OnVerifyReplicaUpdate", self.verify_replica_update, 0)

    def on_verify_post(self, post_proof: int | None, challenged_sectors: int) -> GasCharge:
        """``post_proof`` is the first proof's type, or None when the PoSt has no proofs."""
        price = _post_price(
            self.verify_post_lookup,
            post_proof,
            RegisteredPoStProof.STACKED_DRG_WINDOW_512MIB_V1P1,
        )
        return GasCharge("OnVerifyPost", price.apply(challenged_sectors), 0)

    def on_verify_consensus_fault(self) -> GasCharge:
        return GasCharge("OnVerifyConsensusFault", 0, self.verify_consensus_fault)

    def on_get_randomness(self, lookback: int) -> GasCharge:
        """``lookback`` epochs back from the current one.

        The reference casts the (signed) lookback to ``u64``; a negative one wraps to a huge
        value and the charge saturates.
        """
        return GasCharge("OnGetRandomness", 0, self.lookback_cost.apply(lookback & U64_MASK))

    def on_block_open_base(self) -> GasCharge:
        return GasCharge("OnBlockOpenBase", self.ipld_link_checked, self.block_open.flat)

    def on_block_open(self, data_size: int, links: int) -> GasCharge:
        compute = saturate_u64(self.ipld_link_tracked * links)
        block_open = saturate_u64(
            saturate_u64(self.block_open.scale * data_size)
            + self.block_allocate.apply(data_size)
            + self.block_memcpy.apply(data_size)
        )
        # At least the memory-retention price is charged, topped up as "other" gas.
        retention_min = self.block_memory_retention_minimum.apply(data_size)
        surcharge = max(retention_min - saturate_u64(compute + block_open), 0)
        return GasCharge("OnBlockOpen", compute, saturate_u64(block_open + surcharge))

    def on_block_read(self, data_size: int) -> GasCharge:
        return GasCharge("OnBlockRead", self.block_memcpy.apply(data_size), 0)

    def on_block_create(self, data_size: int, links: int) -> GasCharge:
        compute = saturate_u64(
            self.block_memcpy.apply(data_size)
            + self.block_allocate.apply(data_size)
            + self.ipld_link_checked * links
        )
        retention_min = self.block_memory_retention_minimum.apply(data_size)
        return GasCharge("OnBlockCreate", compute, max(retention_min - compute, 0))

    def on_block_link(self, hash_code: int, data_size: int) -> GasCharge:
        hashing = _hashing_price(self.hashing_cost, hash_code).apply(data_size)
        compute = saturate_u64(
            self.block_memcpy.apply(data_size)
            + self.block_allocate.apply(data_size)
            + hashing
            + self.ipld_link_tracked
        )
        storage = self.block_persist_storage.apply(data_size)
        return GasCharge("OnBlockLink", compute, saturate_u64(self.block_persist_compute + storage))

    def on_block_stat(self) -> GasCharge:
        return GasCharge("OnBlockStat", 0, 0)

    def on_actor_lookup(self) -> GasCharge:
        return GasCharge("OnActorLookup", 0, self.actor_lookup)

    def on_actor_update(self) -> GasCharge:
        return GasCharge("OnActorUpdate", 0, self.actor_update)

    def on_actor_create(self) -> GasCharge:
        return GasCharge("OnActorCreate", 0, self.actor_create_storage)

    def on_self_balance(self) -> GasCharge:
        return GasCharge("OnSelfBalance", 0, 0)

    def on_balance_of(self) -> GasCharge:
        return GasCharge("OnBalanceOf", 0, 0)

    def on_resolve_address(self) -> GasCharge:
        return GasCharge("OnResolveAddress", 0, 0)

    def on_lookup_delegated_address(self) -> GasCharge:
        return GasCharge("OnLookupAddress", 0, 0)

    def on_get_actor_code_cid(self) -> GasCharge:
        return GasCharge("OnGetActorCodeCid", 0, 0)

    def on_get_builtin_actor_type(self) -> GasCharge:
        return GasCharge("OnGetBuiltinActorType", self.builtin_actor_manifest_lookup, 0)

    def on_get_code_cid_for_type(self) -> GasCharge:
        return GasCharge("OnGetCodeCidForType", self.builtin_actor_manifest_lookup, 0)

    def on_tipset_cid(self, lookback: int) -> GasCharge:
        """``lookback`` epochs back from the current one (wrapped to ``u64`` like the reference)."""
        return GasCharge("OnTipsetCid", 0, self.lookback_cost.apply(lookback & U64_MASK))

    def on_network_context(self) -> GasCharge:
        return GasCharge("OnNetworkContext", self.network_context, 0)

    def on_message_context(self) -> GasCharge:
        return GasCharge("OnMessageContext", self.message_context, 0)

    def on_install_actor(self, wasm_size: int) -> GasCharge:
        return GasCharge(
            "OnInstallActor", saturate_u64(self.install_wasm_per_byte_cost * wasm_size), 0
        )

    def on_actor_event(self, entries: int, key_size: int, value_size: int) -> GasCharge:
        """An emitted event of ``entries`` entries whose keys and values total these sizes."""
        validate_entries = self.event_per_entry.apply(entries)
        validate_utf8 = self.utf8_validation.apply(key_size)
        estimated_size = saturate_u64(
            EVENT_OVERHEAD_BYTES
            + saturate_u64(EVENT_ENTRY_OVERHEAD_BYTES * entries)
            + key_size
            + value_size
        )
        # One copy and one allocation per pass over the event.
        memory = saturate_u64(
            self.block_memcpy.apply(estimated_size) + self.block_allocate.apply(estimated_size)
        )
        hashing = self.hashing_cost[BLAKE2B_256].apply(estimated_size)
        return GasCharge(
            "OnActorEvent",
            saturate_u64(saturate_u64(memory * 2) + validate_entries + validate_utf8),
            saturate_u64(hashing + memory),
        )

    def on_get_root(self) -> GasCharge:
        return GasCharge("OnActorGetRoot", self.ipld_link_tracked, 0)

    def on_set_root(self) -> GasCharge:
        return GasCharge("OnActorSetRoot", self.ipld_link_checked, 0)

    def init_memory_gas(self, min_memory_bytes: int) -> Milligas:
        rules = self.wasm_rules
        return saturate_u64(
            rules.memory_fill_base_cost + rules.memory_fill_per_byte_cost * min_memory_bytes
        )

    def grow_memory_gas(self, grow_memory_bytes: int) -> Milligas:
        rules = self.wasm_rules
        return saturate_u64(
            rules.memory_fill_base_cost + rules.memory_fill_per_byte_cost * grow_memory_bytes
        )

    def init_table_gas(self, min_table_elements: int) -> Milligas:
        rules = self.wasm_rules
        per_element = rules.memory_fill_per_byte_cost * min_table_elements * TABLE_ELEMENT_SIZE
        return saturate_u64(rules.memory_fill_base_cost + per_element)


# ref-fvm v4 ``WATERMELON_PRICES`` (fvm@v4.8.2).
WATERMELON_PRICES: Final = PriceListV4(
    name="Watermelon",
    on_chain_message_compute=ScalingCost(flat=gas(38863), scale=0),
    on_chain_message_storage=ScalingCost(flat=gas(36 * 1300), scale=gas(1300)),
    on_chain_return_compute=_ZERO,
    on_chain_return_storage=ScalingCost(flat=0, scale=gas(1300)),
    send_transfer_funds=gas(6000),
    send_invoke_method=gas(75000),
    actor_lookup=gas(500_000),
    actor_update=gas(475_000),
    actor_create_storage=gas(650_000),
    address_lookup=gas(1_050_000),
    address_assignment=gas(1_000_000),
    sig_cost=_SIG_COST,
    secp256k1_recover_cost=gas(1637292),
    bls_pairing_cost=gas(8299302),
    bls_hashing_cost=ScalingCost(flat=0, scale=gas(7)),
    hashing_cost=_HASHING_COST,
    # 19 skips of 20 epochs at 5800 each, 15000 for the randomness or CID, 21000 extern.
    lookback_cost=ScalingCost(flat=gas(5800 * 19 + 15000 + 21000), scale=gas(75)),
    compute_unsealed_sector_cid_base=gas(98647),
    verify_seal_base=gas(2000),
    verify_aggregate_seal_per=_AGGREGATE_SEAL_PER_PROOF,
    verify_aggregate_seal_steps=_AGGREGATE_SEAL_STEPS,
    verify_consensus_fault=gas(516422),
    verify_replica_update=gas(36316136),
    verify_post_lookup=_frozen({proof: _WINDOW_POST_PRICE for proof in _WINDOW_POST_V1P1}),
    block_allocate=ScalingCost(flat=0, scale=gas(2)),
    block_memcpy=ScalingCost(flat=0, scale=400),
    block_memory_retention_minimum=ScalingCost(flat=0, scale=gas(10)),
    block_open=ScalingCost(flat=gas(187440), scale=0),
    block_persist_storage=ScalingCost(flat=gas(334000), scale=gas(3340)),
    block_persist_compute=gas(172000),
    builtin_actor_manifest_lookup=0,
    network_context=0,
    message_context=0,
    install_wasm_per_byte_cost=0,
    wasm_rules=HYGGE_WASM_RULES,
    host_call_cost=gas(14000),
    event_per_entry=ScalingCost(flat=gas(2000), scale=gas(1400)),
    utf8_validation=ScalingCost(flat=gas(500), scale=gas(16)),
    preloaded_actors=_PRELOADED_ACTORS,
    ipld_cbor_scan_per_cid=gas(400),
    ipld_cbor_scan_per_field=gas(35),
    ipld_link_tracked=gas(300),
    ipld_link_checked=gas(300),
)

# ref-fvm v4 ``TEEP_PRICES``: Watermelon with FIP-0092 NI-PoRep aggregate prices (126 times the
# interactive per-proof price, a steeper staircase) and a dearer single seal verification.
TEEP_PRICES: Final = replace(
    WATERMELON_PRICES,
    name="Teep",
    verify_seal_base=gas(42_000_000),
    verify_aggregate_seal_per=MappingProxyType(
        {
            **_AGGREGATE_SEAL_PER_PROOF,
            _SEAL_32GIB_NI: gas(44990 * 126),
            _SEAL_64GIB_NI: gas(35928 * 126),
        }
    ),
    verify_aggregate_seal_steps=MappingProxyType(
        {
            **_AGGREGATE_SEAL_STEPS,
            _SEAL_32GIB_NI: _steps(
                (1, 112356810), (2, 122912610), (3, 137559930), (5, 162039100),
                (9, 210960780), (17, 318351180), (33, 528274980),
            ),
            _SEAL_64GIB_NI: _steps(
                (1, 110803030), (2, 120803700), (3, 134642130), (5, 157357890),
                (9, 203017690), (17, 304253590), (33, 509880640),
            ),
        }
    ),
)


PriceList: TypeAlias = PriceListV2 | PriceListV3 | PriceListV4


def _spans(*spans: tuple[int, int, PriceList]) -> Mapping[NetworkVersion, PriceList]:
    return MappingProxyType(
        {
            NetworkVersion(nv): prices
            for first, last, prices in spans
            for nv in range(first, last + 1)
        }
    )


# ``price_list_by_network_version`` of ref-fvm v2 (15-17), v3 (18-20) and v4 (21-28).
PRICE_LISTS: Final[Mapping[NetworkVersion, PriceList]] = _spans(
    (15, 15, OH_SNAP_PRICES),
    (16, 17, SKYR_PRICES),
    (18, 20, HYGGE_PRICES),
    (21, 24, WATERMELON_PRICES),
    (25, 28, TEEP_PRICES),
)


def price_list_for(network_version: int) -> PriceList:
    """The price list ref-fvm uses at ``network_version``."""
    try:
        return PRICE_LISTS[NetworkVersion(network_version)]
    except (KeyError, ValueError):
        raise UnsupportedNetworkVersion(network_version) from None
