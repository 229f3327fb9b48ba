"""The FVM price lists against ref-fvm's ``fvm/src/gas/price_list.rs`` and the mainnet vectors.

Expected numbers are written from the Rust source (tag named in each test), in whole gas times
1000 where the reference writes ``Gas::new``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.conformance.vector import find_vectors, load_vector
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
    wasm_rules_for_network_version,
)
from fvm.gas import (
    HYGGE_PRICES,
    OH_SNAP_PRICES,
    PRICE_LISTS,
    SKYR_PRICES,
    TEEP_PRICES,
    WATERMELON_PRICES,
    GasCharge,
    PriceListV2,
    PriceListV3,
    PriceListV4,
    Step,
    StepCost,
    UnsupportedNetworkVersion,
    UnsupportedSignatureType,
    gas,
    price_list_for,
    round_up,
)
from fvm.gas.charge import U64_MAX
from fvm.gas.proof_types import RegisteredPoStProof, RegisteredSealProof
from fvm.message import Message
from fvm.network_version import NetworkVersion
from fvm.receipt import ExitCode
from fvm.signature import SignatureType
from fvm.state_tree import StateTree

SEAL_32 = RegisteredSealProof.STACKED_DRG_32GIB_V1P1
SEAL_64 = RegisteredSealProof.STACKED_DRG_64GIB_V1P1
SEAL_32_NI = RegisteredSealProof.STACKED_DRG_32GIB_V1P2_FEAT_NI_POREP
SEAL_64_NI = RegisteredSealProof.STACKED_DRG_64GIB_V1P2_FEAT_NI_POREP


# -- the network version table ------------------------------------------------------------


@pytest.mark.parametrize(
    ("network_version", "name", "fvm_version"),
    [
        # fvm@v2.7.0 price_list_by_network_version: V15 => OH_SNAP, otherwise SKYR.
        (15, "OhSnap", 2),
        (16, "Skyr", 2),
        (17, "Skyr", 2),
        # fvm@v3.14.1: V18 | V19 | V20 => HYGGE.
        (18, "Hygge", 3),
        (19, "Hygge", 3),
        (20, "Hygge", 3),
        # fvm@v4.8.2: V21..=V24 => WATERMELON, V25..=V28 => TEEP.
        (21, "Watermelon", 4),
        (22, "Watermelon", 4),
        (23, "Watermelon", 4),
        (24, "Watermelon", 4),
        (25, "Teep", 4),
        (26, "Teep", 4),
        (27, "Teep", 4),
        (28, "Teep", 4),
    ],
)
def test_price_list_for_network_version_matches_ref_fvm_tables(
    network_version: int, name: str, fvm_version: int
) -> None:
    prices = price_list_for(network_version)
    assert prices.name == name
    assert prices.fvm_version == fvm_version
    assert PRICE_LISTS[NetworkVersion(network_version)] is prices


def test_price_lists_cover_exactly_network_versions_15_to_28() -> None:
    assert sorted(PRICE_LISTS) == list(range(15, 29))


@pytest.mark.parametrize("network_version", [0, 14, 29, 30, -1])
def test_network_versions_without_an_fvm_price_list_are_rejected(network_version: int) -> None:
    with pytest.raises(UnsupportedNetworkVersion) as info:
        price_list_for(network_version)
    assert info.value.network_version == network_version


def test_price_lists_use_the_engine_wasm_rules_of_their_generation() -> None:
    assert OH_SNAP_PRICES.wasm_rules is OH_SNAP_WASM_RULES
    assert SKYR_PRICES.wasm_rules is SKYR_WASM_RULES
    for prices in (HYGGE_PRICES, WATERMELON_PRICES, TEEP_PRICES):
        assert prices.wasm_rules is HYGGE_WASM_RULES
    for nv in range(15, 29):
        assert price_list_for(nv).wasm_rules is wasm_rules_for_network_version(nv)


def test_price_lists_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SKYR_PRICES.syscall_cost = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        HYGGE_PRICES.hashing_cost[SHA2_256] = HYGGE_PRICES.hashing_cost[BLAKE2B_256]  # type: ignore[index]


# -- ref-fvm v2: OhSnap and Skyr (fvm@v2.7.0) ---------------------------------------------


def test_skyr_differs_from_oh_snap_only_in_memory_syscall_extern_and_wasm_prices() -> None:
    differing = {
        field.name
        for field in dataclasses.fields(PriceListV2)
        if getattr(SKYR_PRICES, field.name) != getattr(OH_SNAP_PRICES, field.name)
    }
    assert differing == {
        "name",
        "block_memcpy_per_byte_cost",
        "block_open_memret_per_byte_cost",
        "block_create_memret_per_byte_cost",
        "syscall_cost",
        "extern_cost",
        "wasm_rules",
    }
    assert SKYR_PRICES.block_memcpy_per_byte_cost == 500  # Gas::from_milligas(500)
    assert SKYR_PRICES.block_open_memret_per_byte_cost == gas(10)
    assert SKYR_PRICES.syscall_cost == gas(14000)
    assert SKYR_PRICES.extern_cost == gas(21000)
    assert OH_SNAP_PRICES.syscall_cost == 0
    assert OH_SNAP_PRICES.extern_cost == 0


def test_skyr_on_chain_message_charges_storage_at_1300_per_byte() -> None:
    # compute 38863, storage (36 + 1 * size) * 1300.
    assert SKYR_PRICES.on_chain_message(91) == GasCharge(
        "OnChainMessage", gas(38863), gas((36 + 91) * 1300)
    )
    assert SKYR_PRICES.on_chain_return_value(10) == GasCharge(
        "OnChainReturnValue", 0, gas(10 * 1300)
    )


@pytest.mark.parametrize(
    ("value", "method", "expected_gas"),
    [
        (0, 0, 29233),  # send_base
        (1, 0, 29233 + 27500 + 159672),  # + transfer + transfer-only premium
        (0, 2, 29233 - 5377),  # + send_invoke_method (negative)
        (5, 2, 29233 + 27500 - 5377),
    ],
)
def test_skyr_method_invocation_adds_transfer_and_invoke_prices(
    value: int, method: int, expected_gas: int
) -> None:
    assert SKYR_PRICES.on_method_invocation(value, method) == GasCharge(
        "OnMethodInvocation", gas(expected_gas), 0
    )


def test_skyr_actor_creation_and_deletion_prices() -> None:
    assert SKYR_PRICES.on_create_actor() == GasCharge(
        "OnCreateActor", gas(1108454), gas((36 + 40) * 1300)
    )
    # Deleting refunds storage: a negative charge.
    assert SKYR_PRICES.on_delete_actor() == GasCharge("OnDeleteActor", 0, gas(-(36 + 40) * 1300))


def test_skyr_crypto_and_proof_prices_are_flat() -> None:
    assert SKYR_PRICES.on_verify_signature(SignatureType.BLS).compute_gas == gas(16598605)
    assert SKYR_PRICES.on_verify_signature(SignatureType.SECP256K1).compute_gas == gas(1637292)
    with pytest.raises(UnsupportedSignatureType):
        SKYR_PRICES.on_verify_signature(SignatureType.DELEGATED)
    assert SKYR_PRICES.on_recover_secp_public_key().compute_gas == gas(1637292)
    assert SKYR_PRICES.on_hashing(0) == SKYR_PRICES.on_hashing(1 << 20)
    assert SKYR_PRICES.on_hashing(32).compute_gas == gas(31355)
    assert SKYR_PRICES.on_compute_unsealed_sector_cid().compute_gas == gas(98647)
    assert SKYR_PRICES.on_verify_seal().compute_gas == gas(2000)
    assert SKYR_PRICES.on_verify_replica_update().compute_gas == gas(36316136)
    # The extern cost is added to the consensus-fault check, randomness and block opens.
    assert SKYR_PRICES.on_verify_consensus_fault().compute_gas == gas(21000 + 495422)
    assert OH_SNAP_PRICES.on_verify_consensus_fault().compute_gas == gas(495422)
    assert SKYR_PRICES.on_get_randomness(32) == GasCharge("OnGetRandomness", gas(21000), 0)


def test_skyr_block_prices() -> None:
    assert SKYR_PRICES.on_block_open_base().compute_gas == gas(21000 + 114617)
    assert OH_SNAP_PRICES.on_block_open_base().compute_gas == gas(114617)
    # 10 gas retained + 0.5 gas copied per byte.
    assert SKYR_PRICES.on_block_open_per_byte(100).compute_gas == 100 * (10_000 + 500)
    assert SKYR_PRICES.on_block_read(100).compute_gas == 100 * 500
    assert SKYR_PRICES.on_block_create(100).compute_gas == 100 * (10_000 + 500)
    # Two copies, plus 1 gas * 1300 storage per byte.
    assert SKYR_PRICES.on_block_link(100) == GasCharge(
        "OnBlockLink", gas(353640) + 2 * 500 * 100, gas(1300) * 100
    )
    assert SKYR_PRICES.on_block_stat() == GasCharge("OnBlockStat", 0, 0)
    assert SKYR_PRICES.on_syscall() == GasCharge("OnSyscall", gas(14000), 0)
    assert SKYR_PRICES.grow_memory_gas(1 << 16) == 0


def test_v2_post_price_scales_with_challenged_sectors_and_falls_back_to_512mib() -> None:
    window_32 = RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1
    expected = gas(117680921) + gas(43780) * 10
    assert SKYR_PRICES.on_verify_post(window_32, 10).compute_gas == expected
    # No proofs, or a type v2 does not list (the V1P1 codes), use the 512MiB V1 price.
    assert SKYR_PRICES.on_verify_post(None, 10).compute_gas == expected
    assert SKYR_PRICES.on_verify_post(RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1P1, 10) == (
        SKYR_PRICES.on_verify_post(window_32, 10)
    )
    assert set(SKYR_PRICES.verify_post_lookup) == {7, 8, 9}


def test_skyr_prices_explain_gas_used_by_nv17_messages_that_run_no_actor_code(
    vectors_dir: Path,
) -> None:
    # A ref-fvm v2 message that invokes no actor code pays exactly its inclusion and the
    # method invocation: plain sends (method 0) that succeed, and messages whose sender cannot
    # cover the value once the gas is escrowed, which fail at the top-level transfer.
    checked = 0
    for path in find_vectors(vectors_dir / "extracted"):
        vector = load_vector(path)
        if vector.variants[0].network_version != 17:
            continue
        store = vector.blockstore(verify=False)
        pre = StateTree(store, vector.pre_state_root)
        for applied, receipt in zip(vector.messages, vector.receipts, strict=True):
            message = Message.decode(applied.data)
            sender_id = pre.lookup_id(message.from_)
            assert sender_id is not None
            sender = pre.get_actor(sender_id)
            assert sender is not None
            escrowed = message.gas_limit * message.gas_fee_cap
            plain_send = message.method_num == 0 and receipt.exit_code == ExitCode.OK
            transfer_fails = (
                receipt.exit_code == ExitCode.SYS_INSUFFICIENT_FUNDS
                and sender.balance - escrowed < message.value
            )
            if not (plain_send or transfer_fails):
                continue
            inclusion = SKYR_PRICES.on_chain_message(len(applied.data))
            invocation = SKYR_PRICES.on_method_invocation(message.value, message.method_num)
            returned = SKYR_PRICES.on_chain_return_value(len(receipt.return_data))
            total = inclusion.total + invocation.total + returned.total
            assert round_up(total) == receipt.gas_used, path.name
            checked += 1
    assert checked == 14  # 9 plain sends, 5 failed transfers


# -- ref-fvm v3: Hygge (fvm@v3.3.1) -------------------------------------------------------


def test_hygge_on_chain_message_includes_the_sender_actor_update() -> None:
    assert HYGGE_PRICES.on_chain_message(100) == GasCharge(
        "OnChainMessage", gas(38863), gas(475_000) + gas(36 * 1300) + gas(1300) * 100
    )


def test_hygge_return_value_is_charged_only_at_the_top_level() -> None:
    assert HYGGE_PRICES.on_method_return(1, 10) == GasCharge(
        "OnChainReturnValue", 0, gas(1300) * 10
    )
    assert HYGGE_PRICES.on_method_return(2, 10) is None
    assert HYGGE_PRICES.on_chain_return_value(0) == GasCharge("OnChainReturnValue", 0, 0)


def test_hygge_send_and_actor_prices() -> None:
    assert HYGGE_PRICES.on_value_transfer() == GasCharge("OnValueTransfer", gas(6000), 0)
    assert HYGGE_PRICES.on_method_invocation() == GasCharge("OnMethodInvocation", gas(75000), 0)
    assert HYGGE_PRICES.on_syscall() == GasCharge("OnSyscall", gas(14000), 0)
    assert HYGGE_PRICES.on_create_actor(False) == GasCharge("OnCreateActor", 0, gas(650_000))
    assert HYGGE_PRICES.on_create_actor(True) == GasCharge(
        "OnCreateActor", 0, gas(650_000 + 1_000_000 + 1_050_000)
    )
    assert HYGGE_PRICES.on_delete_actor() == GasCharge("OnDeleteActor", 0, 0)
    assert HYGGE_PRICES.on_actor_lookup() == GasCharge("OnActorLookup", 0, gas(500_000))
    assert HYGGE_PRICES.on_actor_update() == GasCharge("OnActorUpdate", 0, gas(475_000))
    assert HYGGE_PRICES.on_actor_create() == GasCharge("OnActorCreate", 0, gas(650_000))
    assert HYGGE_PRICES.preloaded_actors == (0, 1, 2, 3, 4, 5, 6, 7, 10, 99)
    for free in (
        HYGGE_PRICES.on_self_balance(),
        HYGGE_PRICES.on_balance_of(),
        HYGGE_PRICES.on_resolve_address(),
        HYGGE_PRICES.on_lookup_delegated_address(),
        HYGGE_PRICES.on_get_actor_code_cid(),
        HYGGE_PRICES.on_get_builtin_actor_type(),
        HYGGE_PRICES.on_network_context(),
        HYGGE_PRICES.on_message_context(),
        HYGGE_PRICES.on_block_stat(),
    ):
        assert free.total == 0
    assert HYGGE_PRICES.on_lookup_delegated_address().name == "OnLookupAddress"


@pytest.mark.parametrize(
    ("hash_code", "gas_per_byte"),
    [(SHA2_256, 7), (BLAKE2B_256, 10), (BLAKE2B_512, 10), (KECCAK_256, 33), (RIPEMD_160, 35)],
)
def test_hygge_hashing_is_priced_per_byte_by_function(hash_code: int, gas_per_byte: int) -> None:
    assert HYGGE_PRICES.on_hashing(hash_code, 100) == GasCharge(
        "OnHashing", gas(gas_per_byte) * 100, 0
    )
    assert WATERMELON_PRICES.on_hashing(hash_code, 100) == HYGGE_PRICES.on_hashing(hash_code, 100)


def test_unsupported_hash_functions_have_no_price() -> None:
    with pytest.raises(UnsupportedHash):
        HYGGE_PRICES.on_hashing(0x00, 10)  # identity
    with pytest.raises(UnsupportedHash):
        WATERMELON_PRICES.on_block_link(0x13, 10)  # sha2-512


def test_hygge_signature_prices_scale_with_the_signed_data() -> None:
    assert HYGGE_PRICES.on_verify_signature(SignatureType.BLS, 100).compute_gas == (
        gas(16598605) + gas(26) * 100
    )
    assert HYGGE_PRICES.on_verify_signature(SignatureType.SECP256K1, 100).compute_gas == (
        gas(1637292) + gas(10) * 100
    )
    with pytest.raises(UnsupportedSignatureType):
        HYGGE_PRICES.on_verify_signature(SignatureType.DELEGATED, 1)


def test_hygge_randomness_and_tipset_prices() -> None:
    # get_randomness_seed + blake2b over the entropy and 48 bytes of domain tag, digest, round.
    assert HYGGE_PRICES.on_get_randomness(32) == GasCharge(
        "OnGetRandomness", 0, gas(21000) + gas(10) * (32 + 48)
    )
    assert HYGGE_PRICES.on_tipset_cid(False) == GasCharge("OnTipsetCid", 0, gas(50_000))
    assert HYGGE_PRICES.on_tipset_cid(True) == GasCharge("OnTipsetCid", 0, gas(215_000))
    assert HYGGE_PRICES.on_verify_consensus_fault() == GasCharge(
        "OnVerifyConsensusFault", 0, gas(516422)
    )


def test_hygge_read_write_charge_ten_gas_per_byte() -> None:
    # fvm@v3.3.1 price_list.rs test_read_write.
    assert HYGGE_PRICES.on_block_open_per_byte(10).total == gas(100)
    assert HYGGE_PRICES.on_block_create(10).total == gas(100)
    # Split: 2.4 gas/byte compute (allocate + copy), the retention top-up as other gas.
    assert HYGGE_PRICES.on_block_create(10) == GasCharge("OnBlockCreate", 24_000, 76_000)
    assert HYGGE_PRICES.on_block_open_base() == GasCharge("OnBlockOpenBase", 0, gas(187440))
    assert HYGGE_PRICES.on_block_read(10) == GasCharge("OnBlockRead", 4_000, 0)


def test_hygge_block_link_charges_copy_hash_and_persistence() -> None:
    assert HYGGE_PRICES.on_block_link(BLAKE2B_256, 100) == GasCharge(
        "OnBlockLink",
        100 * 400 + gas(2) * 100 + gas(10) * 100,
        gas(172000) + gas(334000) + gas(3340) * 100,
    )


def test_hygge_event_prices() -> None:
    assert HYGGE_PRICES.on_actor_event_validate(100) == GasCharge(
        "OnActorEventValidate", 100 * 400 + gas(2) * 100 + gas(1750) + gas(25) * 100, 0
    )
    # Indexing is free at Hygge; a 200-byte event is stamped to 212 bytes.
    entries = [(0b11, 5, 10), (0b01, 4, 100), (0b00, 7, 7)]
    memcpy, alloc, hashing = 212 * 400, gas(2) * 212, gas(10) * 212
    assert HYGGE_PRICES.on_actor_event_accept(entries, 200) == GasCharge(
        "OnActorEventAccept", memcpy + alloc, 2 * memcpy + alloc + hashing
    )


def test_hygge_memory_and_table_initialisation_prices() -> None:
    # 0.4 gas per byte filled, tables at 8 bytes per element.
    assert HYGGE_PRICES.init_memory_gas(65536) == 400 * 65536
    assert HYGGE_PRICES.grow_memory_gas(100) == 400 * 100
    assert HYGGE_PRICES.init_table_gas(10) == 400 * 10 * 8


def test_hygge_post_prices_include_the_fip0061_proof_types() -> None:
    assert set(HYGGE_PRICES.verify_post_lookup) == {7, 8, 9, 12, 13, 14}
    v1p1 = RegisteredPoStProof.STACKED_DRG_WINDOW_64GIB_V1P1
    assert HYGGE_PRICES.on_verify_post(v1p1, 3).compute_gas == gas(117680921) + gas(43780) * 3


# -- ref-fvm v4: Watermelon and Teep (fvm@v4.8.2) -----------------------------------------


def test_watermelon_read_write_charge_ten_gas_per_byte() -> None:
    # fvm@v4.8.2 price_list.rs test_read_write.
    assert WATERMELON_PRICES.on_block_open(10, 0).total == gas(100)
    assert WATERMELON_PRICES.on_block_create(10, 0).total == gas(100)


def test_watermelon_tracks_ipld_links() -> None:
    assert WATERMELON_PRICES.on_block_open_base() == GasCharge(
        "OnBlockOpenBase", gas(300), gas(187440)
    )
    # Links tracked are compute; the per-byte costs and the retention top-up are other gas.
    assert WATERMELON_PRICES.on_block_open(10, 0) == GasCharge("OnBlockOpen", 0, gas(100))
    assert WATERMELON_PRICES.on_block_open(10, 2) == GasCharge("OnBlockOpen", gas(600), 24_000)
    assert WATERMELON_PRICES.on_block_create(10, 2) == GasCharge(
        "OnBlockCreate", 24_000 + gas(600), 0
    )
    assert WATERMELON_PRICES.on_block_link(BLAKE2B_256, 100).compute_gas == (
        100 * 400 + gas(2) * 100 + gas(10) * 100 + gas(300)
    )
    assert WATERMELON_PRICES.on_method_invocation(100, 3) == GasCharge(
        "OnMethodInvocation", gas(75000) + gas(300) * 3, 0
    )
    assert WATERMELON_PRICES.on_method_return(1, 10, 2) == GasCharge(
        "OnChainReturnValue", 0, gas(1300) * 10
    )
    assert WATERMELON_PRICES.on_method_return(2, 10, 2) == GasCharge(
        "OnReturnValue", gas(300) * 2, 0
    )
    assert WATERMELON_PRICES.on_get_root() == GasCharge("OnActorGetRoot", gas(300), 0)
    assert WATERMELON_PRICES.on_set_root() == GasCharge("OnActorSetRoot", gas(300), 0)
    assert WATERMELON_PRICES.ipld_cbor_scan_per_field == gas(35)
    assert WATERMELON_PRICES.ipld_cbor_scan_per_cid == gas(400)


def test_watermelon_lookback_prices_randomness_and_tipset_cids() -> None:
    flat = gas(5800 * 19 + 15000 + 21000)
    assert WATERMELON_PRICES.on_get_randomness(0) == GasCharge("OnGetRandomness", 0, flat)
    assert WATERMELON_PRICES.on_get_randomness(10).other_gas == flat + gas(75) * 10
    assert WATERMELON_PRICES.on_tipset_cid(10) == GasCharge("OnTipsetCid", 0, flat + gas(750))
    # A negative lookback wraps to a huge u64 and the charge saturates.
    assert WATERMELON_PRICES.on_get_randomness(-1).other_gas == U64_MAX


def test_watermelon_syscall_event_and_signature_prices() -> None:
    assert WATERMELON_PRICES.on_syscall() == GasCharge("OnSyscall", gas(14000), 0)
    # 2 entries, keys 10 bytes, values 100: estimated size 12 + 2 * 9 + 10 + 100 = 140.
    memory = 140 * 400 + gas(2) * 140
    assert WATERMELON_PRICES.on_actor_event(2, 10, 100) == GasCharge(
        "OnActorEvent",
        2 * memory + gas(2000) + gas(1400) * 2 + gas(500) + gas(16) * 10,
        gas(10) * 140 + memory,
    )
    assert WATERMELON_PRICES.on_utf8_validation(10) == GasCharge(
        "OnUtf8Validation", gas(500) + gas(16) * 10, 0
    )
    # One pairing per signature plus one for the aggregate, 7 gas per byte hashed.
    assert WATERMELON_PRICES.on_verify_aggregate_signature(3, 100) == GasCharge(
        "OnVerifyBlsAggregateSignature", gas(8299302) * 4 + gas(7) * 100, 0
    )
    assert WATERMELON_PRICES.on_install_actor(1000) == GasCharge("OnInstallActor", 0, 0)


def test_watermelon_post_prices_only_know_the_v1p1_types() -> None:
    assert set(WATERMELON_PRICES.verify_post_lookup) == {12, 13, 14}
    expected = gas(117680921) + gas(43780) * 5
    assert WATERMELON_PRICES.on_verify_post(None, 5).compute_gas == expected
    # The removed V1 code falls back to the 512MiB V1P1 price.
    old = RegisteredPoStProof.STACKED_DRG_WINDOW_32GIB_V1
    assert WATERMELON_PRICES.on_verify_post(old, 5).compute_gas == expected


def test_hygge_and_watermelon_agree_on_their_common_prices() -> None:
    common = {f.name for f in dataclasses.fields(PriceListV3)} & {
        f.name for f in dataclasses.fields(PriceListV4)
    }
    differing = {
        name
        for name in common
        if getattr(HYGGE_PRICES, name) != getattr(WATERMELON_PRICES, name)
    }
    assert differing == {"name", "verify_post_lookup"}


def test_teep_differs_from_watermelon_only_in_seal_prices() -> None:
    differing = {
        field.name
        for field in dataclasses.fields(PriceListV4)
        if getattr(TEEP_PRICES, field.name) != getattr(WATERMELON_PRICES, field.name)
    }
    assert differing == {
        "name",
        "verify_seal_base",
        "verify_aggregate_seal_per",
        "verify_aggregate_seal_steps",
    }
    assert TEEP_PRICES.on_verify_seal().compute_gas == gas(42_000_000)
    assert WATERMELON_PRICES.on_verify_seal().compute_gas == gas(2000)


# fvm@v4.8.2 price_list.rs tests::test_aggregate_porep_gas_charges.
INTERACTIVE_32GIB_CASES = [
    (1, 0),
    (3, 0),
    (4, 103994170),
    (7, 112356810),
    (13, 122912610),
    (26, 137559930),
    (52, 162039100),
    (65, 162039100),
]


@pytest.mark.parametrize("network_version", [24, 25, 26])
@pytest.mark.parametrize(("sectors", "step_gas"), INTERACTIVE_32GIB_CASES)
def test_aggregate_porep_charges_match_ref_fvm(
    network_version: int, sectors: int, step_gas: int
) -> None:
    prices = price_list_for(network_version)
    expected = gas(449900) * sectors + gas(step_gas)
    assert prices.on_verify_aggregate_seals(SEAL_32, sectors).compute_gas == expected
    if network_version < 25:
        # Before Teep, NI-PoRep aggregates were priced as interactive 32GiB ones.
        assert prices.on_verify_aggregate_seals(SEAL_32_NI, sectors).compute_gas == expected
        assert prices.on_verify_aggregate_seals(SEAL_64_NI, sectors).compute_gas == expected


# fvm@v4.8.2 price_list.rs tests::test_niporep_aggregate_gas_charges.
NI_POREP_CASES = [
    (1, 112356810, 110803030),
    (2, 122912610, 120803700),
    (3, 137559930, 134642130),
    (4, 137559930, 134642130),
    (5, 162039100, 157357890),
    (8, 162039100, 157357890),
    (9, 210960780, 203017690),
    (16, 210960780, 203017690),
    (17, 318351180, 304253590),
    (32, 318351180, 304253590),
    (33, 528274980, 509880640),
    (64, 528274980, 509880640),
    (65, 528274980, 509880640),
]


@pytest.mark.parametrize(("sectors", "step_32gib", "step_64gib"), NI_POREP_CASES)
def test_teep_ni_porep_aggregate_charges_match_ref_fvm(
    sectors: int, step_32gib: int, step_64gib: int
) -> None:
    prices = price_list_for(25)
    assert prices.on_verify_aggregate_seals(SEAL_32_NI, sectors).compute_gas == (
        gas(44990 * 126) * sectors + gas(step_32gib)
    )
    assert prices.on_verify_aggregate_seals(SEAL_64_NI, sectors).compute_gas == (
        gas(35928 * 126) * sectors + gas(step_64gib)
    )


def test_single_ni_porep_sector_matches_the_fip0092_formula() -> None:
    # fvm@v4.8.2 tests::test_niporep_single_sector_matches_fip092_formula.
    assert TEEP_PRICES.on_verify_aggregate_seals(SEAL_32_NI, 1).compute_gas == gas(118025550)
    assert TEEP_PRICES.on_verify_aggregate_seals(SEAL_64_NI, 1).compute_gas == gas(115329958)


def test_64gib_aggregates_and_unknown_seal_types() -> None:
    assert SKYR_PRICES.on_verify_aggregate_seals(SEAL_64, 10).compute_gas == (
        gas(359272) * 10 + gas(110803030)
    )
    # Unknown types are priced as 32GiB V1P1.
    v1 = RegisteredSealProof.STACKED_DRG_32GIB_V1
    assert HYGGE_PRICES.on_verify_aggregate_seals(v1, 10) == (
        HYGGE_PRICES.on_verify_aggregate_seals(SEAL_32, 10)
    )


# -- the helper types ---------------------------------------------------------------------


def test_step_cost_lookup_matches_ref_fvm() -> None:
    # price_list.rs test_step_cost, test_step_cost_empty, test_step_cost_zero.
    costs = StepCost((Step(10, gas(1)), Step(20, gas(2))))
    assert [costs.lookup(x) for x in (0, 5, 10, 11, 19, 20, 100)] == [
        0, 0, gas(1), gas(1), gas(1), gas(2), gas(2),
    ]
    empty = StepCost(())
    assert empty.lookup(0) == 0
    assert empty.lookup(10) == 0
    from_zero = StepCost((Step(0, gas(1)),))
    assert from_zero.lookup(0) == gas(1)
    assert from_zero.lookup(10) == gas(1)


def test_step_costs_out_of_order_are_rejected() -> None:
    with pytest.raises(ValueError, match="ascending"):
        StepCost((Step(20, 1), Step(10, 2)))


@given(st.integers(min_value=0, max_value=1 << 70))
def test_scaling_costs_saturate_at_u64_max(units: int) -> None:
    price = HYGGE_PRICES.block_persist_storage
    assert price.apply(units) == min(price.flat + price.scale * units, U64_MAX)


@given(st.integers(min_value=0, max_value=1 << 66), st.integers(min_value=0, max_value=1 << 20))
def test_block_reads_and_writes_never_charge_below_memory_retention(
    data_size: int, links: int
) -> None:
    retention = gas(10) * data_size
    floor = min(retention, U64_MAX)
    assert HYGGE_PRICES.on_block_open_per_byte(data_size).total >= floor
    assert HYGGE_PRICES.on_block_create(data_size).total >= floor
    assert WATERMELON_PRICES.on_block_open(data_size, links).total >= floor
    assert WATERMELON_PRICES.on_block_create(data_size, links).total >= floor
    for charge in (
        WATERMELON_PRICES.on_block_open(data_size, links),
        WATERMELON_PRICES.on_block_create(data_size, links),
    ):
        assert 0 <= charge.compute_gas <= U64_MAX
        assert 0 <= charge.other_gas <= U64_MAX
