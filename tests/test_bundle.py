"""Builtin-actors bundles from ``../shared/actors`` against Lotus's manifest table."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from fvm.bundle import (
    ACTOR_NAMES,
    KNOWN_MANIFESTS,
    WASM_MAGIC,
    ActorType,
    BundleError,
    Manifest,
    ManifestError,
    ManifestMismatch,
    actor_type,
    bundle_index,
    expected_manifest,
    list_bundles,
    load_bundle,
    parse_car_name,
)
from store import dag_cbor
from store.blockstore import MemoryBlockstore, put
from store.cid import CID

# From Lotus build/builtin_actors_gen.go (mainnet, actors v9 and v10).
MAINNET_V9 = CID.parse("bafy2bzaceb6j6666h36xnhksu3ww4kxb6e25niayfgkdnifaqi6m6ooc66i6i")
MAINNET_V10 = CID.parse("bafy2bzacecsuyf7mmvrhkx2evng5gnz5canlnz2fdlzu2lvcgptiq2pzuovos")
MAINNET_V9_MINER = CID.parse("bafk2bzacedyux5hlrildwutvvjdcsvjtwsoc5xnqdjl73ouiukgklekeuyfl4")
MAINNET_V9_INIT = CID.parse("bafk2bzacebtdq4zyuxk2fzbdkva6kc4mx75mkbfmldplfntayhbl5wkqou33i")
MAINNET_V10_MINER = CID.parse("bafk2bzaced4h7noksockro7glnssz2jnmo2rpzd7dvnmfs4p24zx3h6gtx47s")
MAINNET_V10_EVM = CID.parse("bafk2bzaceahmzdxhqsm7cu2mexusjp6frm7r4kdesvti3etv5evfqboos2j4g")
PLACEHOLDER = CID.parse("bafk2bzacedfvut2myeleyq67fljcrw4kkmn5pb5dpyozovj7jpoez5irnc3ro")
CALIBNET_V16_0_0 = CID.parse("bafy2bzacebc7zpsrihpyd2jdcvmegbbk6yhzkifre3hxtoul5wdxxklbwitry")


def test_bundle_folder_lists_every_actors_version(actors_dir: Path) -> None:
    assert [b.actors_version for b in list_bundles(actors_dir)] == [9, 10, 16, 17, 18]


def test_mainnet_v9_bundle_loads_and_matches_lotus(actors_dir: Path) -> None:
    bundle = load_bundle(actors_dir / "v9.tar.zst", "mainnet")
    assert bundle.manifest_cid == MAINNET_V9
    assert bundle.verified
    assert (bundle.version, bundle.network, bundle.release) == (9, "mainnet", None)
    assert list(bundle.actors) == list(ACTOR_NAMES[:12])
    assert bundle.actors["storageminer"] == MAINNET_V9_MINER
    assert bundle.actors["init"] == MAINNET_V9_INIT
    assert [cid for cid, _ in bundle.blocks] == list(bundle.actors.values())
    assert all(data.startswith(WASM_MAGIC) and cid.verify(data) for cid, data in bundle.blocks)


def test_mainnet_v10_bundle_loads_and_matches_lotus(actors_dir: Path) -> None:
    bundle = load_bundle(actors_dir / "v10.tar.zst")
    assert bundle.manifest_cid == MAINNET_V10
    assert bundle.verified
    assert list(bundle.actors) == list(ACTOR_NAMES)
    assert bundle.actors["storageminer"] == MAINNET_V10_MINER
    assert bundle.actors["evm"] == MAINNET_V10_EVM
    assert bundle.actors["placeholder"] == PLACEHOLDER
    assert len(bundle.blocks) == 16


@pytest.mark.parametrize("network", ["mainnet", "calibnet"])
def test_every_bundle_in_the_folder_is_the_one_lotus_lists(actors_dir: Path, network: str) -> None:
    for bundle_file in list_bundles(actors_dir):
        bundle = load_bundle(bundle_file.path, network)
        assert bundle.verified
        assert bundle.manifest_cid == expected_manifest(network, bundle_file.actors_version)


def test_superseded_calibnet_build_loads_by_its_release(actors_dir: Path) -> None:
    bundle = load_bundle(actors_dir / "v16.tar.zst", "calibrationnet", release="v16.0.0")
    assert bundle.manifest_cid == CALIBNET_V16_0_0
    assert bundle.verified
    current = load_bundle(actors_dir / "v16.tar.zst", "calibrationnet")
    assert current.manifest_cid != bundle.manifest_cid


def test_lotus_table_has_mainnet_for_every_version_from_8() -> None:
    mainnet = sorted(k.actors_version for k in KNOWN_MANIFESTS if k.network == "mainnet")
    assert mainnet == list(range(8, 20))
    assert expected_manifest("mainnet", 18) == expected_manifest("mainnet", 19)
    assert expected_manifest("mainnet", 7) is None


def test_manifest_from_store_numbers_actors_in_manifest_order(actors_dir: Path) -> None:
    bundle = load_bundle(actors_dir / "v10.tar.zst")
    store = MemoryBlockstore()
    bundle.put_into(store)
    manifest = Manifest.from_store(store, bundle.manifest_cid)
    assert manifest == bundle.manifest
    assert manifest.version == 1
    assert manifest.builtin_id(manifest.code_of("system")) == 1
    assert manifest.builtin_id(manifest.code_of("ethaccount")) == 16
    assert manifest.name_of(MAINNET_V10_MINER) == "storageminer"
    assert manifest.name_of(MAINNET_V9_MINER) is None
    assert manifest.builtin_id(MAINNET_V9_MINER) == 0
    assert all(store.get(code) is not None for code in manifest.actors.values())


def test_actor_type_looks_code_up_over_every_bundle(actors_dir: Path) -> None:
    assert actor_type(MAINNET_V9_MINER, actors_dir) == ActorType(9, "storageminer")
    assert actor_type(MAINNET_V10_EVM, actors_dir) == (10, "evm")
    assert actor_type(PLACEHOLDER, actors_dir) == (10, "placeholder")
    assert bundle_index(actors_dir).versions_of(PLACEHOLDER) == (10, 16, 17, 18)
    assert actor_type(MAINNET_V9, actors_dir) is None
    index = bundle_index(actors_dir)
    calibnet_v16 = index.manifest(16, "calibnet")
    assert calibnet_v16 is not None
    assert index.actor_type(calibnet_v16.code_of("storagemarket")) == (16, "storagemarket")


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("builtin-actors-mainnet.car", ("mainnet", None)),
        ("builtin-actors-testing-fake-proofs.car", ("testing-fake-proofs", None)),
        ("builtin-actors-devnet-v16.0.0.car", ("devnet", "v16.0.0")),
        ("manifest.json", None),
    ],
)
def test_car_member_names_give_network_and_release(
    name: str, parsed: tuple[str, str | None] | None
) -> None:
    assert parse_car_name(name) == parsed


# -- malformed bundles ---------------------------------------------------------------------------


def _car_bytes(tarball: Path, member: str) -> bytes:
    with open(tarball, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for entry in tar:
                if entry.name == member:
                    stream = tar.extractfile(entry)
                    assert stream is not None
                    return stream.read()
    raise AssertionError(f"{member} not in {tarball}")


def _write_tarball(path: Path, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))
    return path


def test_bundle_whose_manifest_is_not_lotuss_is_refused(actors_dir: Path, tmp_path: Path) -> None:
    calibnet = _car_bytes(actors_dir / "v9.tar.zst", "builtin-actors-calibrationnet.car")
    tarball = _write_tarball(tmp_path / "v9.tar.zst", {"builtin-actors-mainnet.car": calibnet})
    with pytest.raises(ManifestMismatch) as raised:
        load_bundle(tarball, "mainnet")
    assert raised.value.expected == MAINNET_V9
    assert raised.value.actual == expected_manifest("calibnet", 9)
    unchecked = load_bundle(tarball, "mainnet", verify=False)
    assert not unchecked.verified


def test_truncated_tarball_is_a_bundle_error(actors_dir: Path, tmp_path: Path) -> None:
    whole = (actors_dir / "v9.tar.zst").read_bytes()
    truncated = tmp_path / "v9.tar.zst"
    truncated.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(BundleError):
        load_bundle(truncated, "mainnet")


def test_missing_network_and_bad_names_are_bundle_errors(actors_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle for network nosuchnet"):
        load_bundle(actors_dir / "v9.tar.zst", "nosuchnet")
    with pytest.raises(BundleError, match=r"vN\.tar\.zst"):
        load_bundle(tmp_path / "actors.tar.zst")


def test_manifest_with_an_unknown_version_is_refused() -> None:
    store = MemoryBlockstore()
    data = put(store, dag_cbor.encode([["system", MAINNET_V9_INIT]]))
    root = put(store, dag_cbor.encode([2, data]))
    with pytest.raises(ManifestError, match="unsupported manifest version 2"):
        Manifest.from_store(store, root)


def test_manifest_without_required_actors_or_its_blocks_is_refused() -> None:
    store = MemoryBlockstore()
    no_init = put(store, dag_cbor.encode([["system", MAINNET_V9_INIT], ["account", PLACEHOLDER]]))
    with pytest.raises(ManifestError, match="lacks the 'init' actor"):
        Manifest.from_store(store, put(store, dag_cbor.encode([1, no_init])))
    with pytest.raises(ManifestError, match="missing"):
        Manifest.from_store(store, CID.hash_of(b"\x80"))
    with pytest.raises(ManifestError, match=r"\[name, code CID\]"):
        bad_entry = put(store, dag_cbor.encode([["system"]]))
        Manifest.from_store(store, put(store, dag_cbor.encode([1, bad_entry])))


def test_manifest_listing_a_name_twice_keeps_the_last_entry_like_ref_fvm() -> None:
    store = MemoryBlockstore()
    entries = [
        ["system", MAINNET_V9_INIT],
        ["init", MAINNET_V9_MINER],
        ["account", MAINNET_V10_EVM],
        ["system", PLACEHOLDER],
    ]
    manifest = Manifest.from_store(
        store, put(store, dag_cbor.encode([1, put(store, dag_cbor.encode(entries))]))
    )
    assert manifest.code_of("system") == PLACEHOLDER
    assert manifest.builtin_id(PLACEHOLDER) == 4
    assert manifest.builtin_id(MAINNET_V9_INIT) == 1
    assert len(manifest.entries) == 4
