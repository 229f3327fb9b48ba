"""The syscall ABI tables against ref-fvm's constants and the real actor bundles' imports."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fvm.bundle import load_bundle
from fvm.engine import wasm_module as wm
from fvm.syscalls.abi import (
    INVOCATION_CONTEXT,
    IPLD_OPEN,
    IPLD_STAT,
    MESSAGE_CONTEXT,
    NETWORK_CONTEXT,
    SEND,
    SYSCALL_TABLES,
    TOKEN_AMOUNT,
    VERIFY_CONSENSUS_FAULT,
    AbiGeneration,
    ErrorNumber,
    Syscall,
    default_syscalls,
    generation_for_network_version,
    syscalls_for_network_version,
)

_WASM_TYPE_NAMES = {wm.I32: "i32", wm.I64: "i64", wm.F32: "f32", wm.F64: "f64"}


def test_error_numbers_are_ref_fvm_values() -> None:
    # fvm_shared::error::ErrorNumber (ReadOnly from v3).
    assert {number.name: number.value for number in ErrorNumber} == {
        "ILLEGAL_ARGUMENT": 1,
        "ILLEGAL_OPERATION": 2,
        "LIMIT_EXCEEDED": 3,
        "ASSERTION_FAILED": 4,
        "INSUFFICIENT_FUNDS": 5,
        "NOT_FOUND": 6,
        "INVALID_HANDLE": 7,
        "ILLEGAL_CID": 8,
        "ILLEGAL_CODEC": 9,
        "SERIALIZATION": 10,
        "FORBIDDEN": 11,
        "BUFFER_TOO_SMALL": 12,
        "READ_ONLY": 13,
    }


def test_result_layouts_have_the_packed_sizes_of_the_rust_structs() -> None:
    sizes = {
        layout.rust_type: layout.size
        for layout in (
            TOKEN_AMOUNT,
            IPLD_OPEN,
            IPLD_STAT,
            SEND,
            VERIFY_CONSENSUS_FAULT,
            INVOCATION_CONTEXT,
            MESSAGE_CONTEXT,
            NETWORK_CONTEXT,
        )
    }
    assert sizes == {
        "TokenAmount": 16,
        "IpldOpen": 16,
        "IpldStat": 12,
        "Send": 20,
        "VerifyConsensusFault": 20,
        "InvocationContext": 52,
        "MessageContext": 80,
        "NetworkContext": 44,
    }


def test_send_result_is_written_little_endian_in_field_order() -> None:
    data = SEND.pack((16, 7, 0x71, 300))
    assert data == bytes([16, 0, 0, 0, 7, 0, 0, 0, 0x71, 0, 0, 0, 0, 0, 0, 0, 44, 1, 0, 0])
    assert SEND.unpack(data) == (16, 7, 0x71, 300)


@given(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1))
def test_token_amount_layout_round_trips(lo: int, hi: int) -> None:
    assert TOKEN_AMOUNT.unpack(TOKEN_AMOUNT.pack((lo, hi))) == (lo, hi)


@pytest.mark.parametrize("generation", list(AbiGeneration))
def test_each_table_names_each_syscall_once_and_diverging_ones_return_nothing(
    generation: AbiGeneration,
) -> None:
    table = SYSCALL_TABLES[generation]
    keys = [syscall.key for syscall in table]
    assert len(keys) == len(set(keys))
    for syscall in table:
        assert syscall.wasm_results == ("i32",)
        assert syscall.description
        if syscall.diverges:
            assert syscall.result is None


def test_out_pointer_comes_first_in_the_wasm_signature() -> None:
    v3 = default_syscalls(AbiGeneration.V3)
    send = v3[("send", "send")]
    assert send.wasm_params == ("i32", "i32", "i32", "i64", "i32", "i64", "i64", "i64", "i64")
    assert v3[("self", "set_root")].wasm_params == ("i32",)
    assert v3[("vm", "exit")].wasm_params == ("i32", "i32", "i32", "i32")


def test_network_versions_map_to_ref_fvm_generations() -> None:
    assert generation_for_network_version(15) is AbiGeneration.V2
    assert generation_for_network_version(17) is AbiGeneration.V2
    assert generation_for_network_version(18) is AbiGeneration.V3
    assert generation_for_network_version(20) is AbiGeneration.V3
    assert generation_for_network_version(21) is AbiGeneration.V4
    with pytest.raises(ValueError):
        generation_for_network_version(14)


def test_releases_and_features_select_the_bound_syscalls() -> None:
    assert ("crypto", "verify_seal") in default_syscalls(AbiGeneration.V3, "3.3.1")
    assert ("crypto", "verify_seal") not in default_syscalls(AbiGeneration.V3, "3.8.0")
    assert ("crypto", "verify_bls_aggregate") not in default_syscalls(AbiGeneration.V4, "4.1.0")
    assert ("crypto", "verify_bls_aggregate") in default_syscalls(AbiGeneration.V4, "4.3.0")
    # Feature-gated syscalls stay out of default builds.
    assert ("actor", "install_actor") not in syscalls_for_network_version(18)
    assert ("actor", "upgrade_actor") not in syscalls_for_network_version(25)


Signature = tuple[tuple[str, ...], tuple[str, ...]]


def _function_imports(wasm: bytes) -> dict[tuple[str, str], Signature]:
    module = wm.decode_module(wasm)
    imports: dict[tuple[str, str], Signature] = {}
    for entry in module.imports:
        assert entry.kind == wm.KIND_FUNCTION, f"{entry.module}.{entry.name} is not a function"
        assert isinstance(entry.desc, int)
        func_type = module.type_at(entry.desc)
        imports[(entry.module, entry.name)] = (
            tuple(_WASM_TYPE_NAMES[t] for t in func_type.params),
            tuple(_WASM_TYPE_NAMES[t] for t in func_type.results),
        )
    return imports


# (bundle, network version it runs at, table syscalls no actor of the bundle imports)
BUNDLES = [
    (
        9,
        17,
        {("crypto", "recover_secp_public_key"), ("crypto", "verify_seal"),
         ("debug", "store_artifact")},
    ),
    (10, 18, {("crypto", "verify_seal"), ("debug", "store_artifact")}),
    (
        16,
        25,
        {("crypto", "verify_bls_aggregate"), ("debug", "store_artifact"), ("gas", "charge")},
    ),
    (
        18,
        28,
        {("crypto", "verify_bls_aggregate"), ("debug", "store_artifact"), ("gas", "charge")},
    ),
]


@pytest.mark.parametrize(("actors_version", "network_version", "unused"), BUNDLES)
def test_every_actor_import_is_a_syscall_with_the_same_wasm_signature(
    actors_dir: Path,
    actors_version: int,
    network_version: int,
    unused: set[tuple[str, str]],
) -> None:
    bundle = load_bundle(actors_dir / f"v{actors_version}.tar.zst")
    table: dict[tuple[str, str], Syscall] = dict(syscalls_for_network_version(network_version))
    imported: set[tuple[str, str]] = set()
    for code, wasm in bundle.blocks:
        for key, (params, results) in _function_imports(wasm).items():
            assert key in table, f"{bundle.manifest.name_of(code)} imports unknown {key}"
            assert (params, results) == (table[key].wasm_params, table[key].wasm_results), key
            imported.add(key)
    assert set(table) - imported == unused


@pytest.mark.parametrize("actors_version", [9, 10, 18])
def test_every_actor_exports_memory_and_an_invoke_taking_and_returning_a_block_id(
    actors_dir: Path, actors_version: int
) -> None:
    bundle = load_bundle(actors_dir / f"v{actors_version}.tar.zst")
    for _, wasm in bundle.blocks:
        module = wm.decode_module(wasm)
        exports = {export.name: export for export in module.exports}
        assert exports["memory"].kind == wm.KIND_MEMORY
        invoke = exports["invoke"]
        assert invoke.kind == wm.KIND_FUNCTION
        assert module.function_type(invoke.index) == wm.FuncType((wm.I32,), (wm.I32,))
