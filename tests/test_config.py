"""Network presets, bundle and genesis discovery, and settings resolution (config/)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainsync.chain_types import BlockHeader
from config.bundles import (
    PROJECT_ROOT,
    BundleNotFound,
    GenesisNotFound,
    actors_search_path,
    find_bundle_file,
    load_network_bundle,
    locate_genesis,
    shared_dirs,
)
from config.networks import (
    CALIBNET,
    DEVNET,
    MAINNET,
    PRESETS,
    NetworkPreset,
    UnknownNetwork,
    Upgrade,
    devnet_preset,
    expected_epoch,
    preset,
)
from config.settings import (
    SETTING_KEYS,
    HostPort,
    NodeSettings,
    SettingsError,
    describe_settings,
    load_settings,
    resolve_preset,
)
from fvm.bundle import expected_manifest
from fvm.state_tree import InitActorState, StateTree
from store import dag_cbor
from store.blockstore import MemoryBlockstore
from store.car import CarReader, open_maybe_compressed
from store.cid import CID

EXAMPLE_TOML = PROJECT_ROOT / "config" / "example.toml"
# Lotus build/builtin_actors_gen.go: the devnet build of actors v10.
LOTUS_DEVNET_V10_MANIFEST = "bafy2bzacebzz376j5kizfck56366kdz5aut6ktqrvqbi3efa2d4l2o2m653ts"


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _read_genesis(path: Path) -> tuple[CID, BlockHeader, MemoryBlockstore]:
    with open_maybe_compressed(path) as stream:
        reader = CarReader(stream, verify=True, source=str(path))
        store = MemoryBlockstore(reader)
    root = reader.header.roots[0]
    data = store.get(root)
    assert data is not None
    return root, BlockHeader.from_cbor(dag_cbor.decode(data)), store


# -- network schedules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch", "network_version"),
    [
        (0, 0),
        (41280, 0),  # Breeze height: still the genesis version
        (41281, 1),
        (138721, 4),  # Assembly (actors v2)
        (272401, 8),  # Persian = Calico + 60 h
        (1594681, 15),  # OhSnap
        (2383680, 16),  # Shark height runs nv16 …
        (2383681, 17),  # … and the epoch after it nv17
        (2683348, 17),  # Hygge height
        (2683349, 18),
        (2809801, 19),  # Lightning
        (2870280, 19),  # Thunder = Lightning + 21 days
        (2870281, 20),
        (3469381, 21),  # Watermelon
        (3855481, 22),  # Phoenix (drand switch only) is no upgrade
        (5138040, 25),  # Tock = Teep + 90 days
        (5138041, 26),
        (5348281, 27),  # GoldenWeek
        (6052801, 28),  # FireHorse
    ],
)
def test_mainnet_network_version_follows_lotus_schedule(epoch: int, network_version: int) -> None:
    assert MAINNET.network_version_at(epoch) == network_version


def test_mainnet_upgrades_name_their_height_network_and_actors_versions() -> None:
    assert MAINNET.upgrade_at(2683348) == Upgrade(2683348, 18, 10, "Hygge")
    assert MAINNET.upgrade_at(2383680) == Upgrade(2383680, 17, 9, "Shark")
    assert MAINNET.upgrade_at(272400) == Upgrade(272400, 8, 2, "Persian")
    assert MAINNET.upgrade_at(2683349) is None
    assert MAINNET.upgrade_at(0) is None
    assert MAINNET.actors_version_at(2383681) == 9
    assert MAINNET.actors_version_at(2683349) == 10
    assert MAINNET.actors_version_at(2809801) == 11
    assert MAINNET.actors_version_at(5348281) == 17
    # Upgrades disabled on mainnet (negative height in params_mainnet.go) are left out.
    names = [upgrade.name for upgrade in MAINNET.upgrades]
    assert "WatermelonFix" not in names and "TockFix" not in names
    assert len(MAINNET.upgrades) == 31


def test_calibnet_network_version_follows_lotus_schedule() -> None:
    cases = {
        0: 0,  # Breeze..Refuel are disabled on calibnet; the genesis version holds until Assembly
        30: 0,
        31: 4,
        241: 8,  # Persian = Calico + 1 h
        511: 16,
        16801: 17,  # Shark
        322354: 17,
        322355: 18,  # Hygge
        492215: 20,  # Thunder = Lightning + 3120
        1070495: 21,  # WatermelonFix keeps nv21
        1493855: 22,  # CalibrationDragonFix keeps nv22
        2543615: 26,  # Tock = Teep + 7 days
        3694535: 28,
    }
    assert {epoch: CALIBNET.network_version_at(epoch) for epoch in cases} == cases
    fix = CALIBNET.upgrade_at(1070494)
    assert fix is not None and (fix.name, fix.network_version) == ("WatermelonFix", 21)
    assert CALIBNET.actors_version_at(322355) == 10


def test_network_constants_match_lotus() -> None:
    assert (MAINNET.network_name, MAINNET.chain_id, MAINNET.block_delay_secs) == (
        "testnetnet",
        314,
        30,
    )
    assert (CALIBNET.network_name, CALIBNET.chain_id, CALIBNET.bundle_network) == (
        "calibrationnet",
        314159,
        "calibrationnet",
    )
    assert (DEVNET.chain_id, DEVNET.block_delay_secs, DEVNET.consensus) == (31415926, 4, "devnet")
    assert MAINNET.consensus == CALIBNET.consensus == "filecoin"
    assert all(
        peer.startswith("/dns") for peer in MAINNET.bootstrap_peers + CALIBNET.bootstrap_peers
    )
    assert set(PRESETS) == {"mainnet", "calibnet", "devnet"}
    assert preset("calibnet") is CALIBNET


def test_unknown_network_name_is_refused() -> None:
    with pytest.raises(UnknownNetwork, match="unknown network 'testnet'"):
        preset("testnet")


def test_presets_refuse_unordered_or_negative_upgrade_heights() -> None:
    with pytest.raises(ValueError, match="increase"):
        replace(DEVNET, upgrades=(Upgrade(10, 19, 11), Upgrade(10, 20, 11)))
    with pytest.raises(ValueError, match="negative"):
        replace(DEVNET, upgrades=(Upgrade(-1, 19, 11),))


def test_devnet_runs_network_version_18_with_actors_v10_throughout(tmp_path: Path) -> None:
    devnet = devnet_preset(tmp_path, block_delay_secs=2)
    assert devnet.genesis == tmp_path / "genesis.car"
    assert devnet.block_delay_secs == 2
    for epoch in (0, 1, 10**6):
        assert devnet.network_version_at(epoch) == 18
        assert devnet.actors_version_at(epoch) == 10
        assert devnet.upgrade_at(epoch) is None
    assert DEVNET.genesis is None
    with pytest.raises(ValueError, match="block delay"):
        devnet_preset(tmp_path, block_delay_secs=0)


def test_conformance_vectors_epochs_agree_with_mainnet_schedule(vectors_dir: Path) -> None:
    seen: set[int] = set()
    for path in sorted(vectors_dir.glob("extracted/**/*.json")):
        document = json.loads(path.read_text())
        for variant in document["preconditions"]["variants"]:
            assert MAINNET.network_version_at(variant["epoch"]) == variant["nv"], path
            seen.add(variant["nv"])
    assert seen == {17, 18}


def test_upgrade_dates_in_lotus_comments_are_the_expected_epochs(
    mainnet_genesis: Path, calibnet_genesis: Path
) -> None:
    _, mainnet_header, _ = _read_genesis(mainnet_genesis)
    _, calibnet_header, _ = _read_genesis(calibnet_genesis)
    mainnet_start, calibnet_start = mainnet_header.timestamp, calibnet_header.timestamp
    assert expected_epoch(MAINNET, mainnet_start, _utc("2022-11-30T14:00:00")) == 2383680
    assert expected_epoch(MAINNET, mainnet_start, _utc("2023-03-14T15:14:00")) == 2683348
    assert expected_epoch(MAINNET, mainnet_start, _utc("2023-12-12T13:30:00")) == 3469380
    assert expected_epoch(CALIBNET, calibnet_start, _utc("2023-02-21T16:30:00")) == 322354


def test_expected_epoch_counts_whole_block_delays_from_genesis(tmp_path: Path) -> None:
    assert expected_epoch(MAINNET, 1000, 999.0) == 0
    assert expected_epoch(MAINNET, 1000, 1000.0) == 0
    assert expected_epoch(MAINNET, 1000, 1029.9) == 0
    assert expected_epoch(MAINNET, 1000, 1030.0) == 1
    assert expected_epoch(devnet_preset(tmp_path), 1000, 1041.0) == 10


def test_genesis_cars_have_the_presets_cid_and_network_name(shared_dir: Path) -> None:
    for network in (MAINNET, CALIBNET):
        path = locate_genesis(network, [shared_dir])
        root, header, store = _read_genesis(path)
        assert root == network.genesis_cid
        assert header.height == 0
        init_actor = StateTree(store, header.parent_state_root).get_actor(1)
        assert init_actor is not None
        init_state = InitActorState.from_cbor(dag_cbor.decode(store.get(init_actor.state) or b""))
        assert init_state.network_name == network.network_name


epochs = st.integers(min_value=0, max_value=10**16)


@given(first=epochs, second=epochs)
def test_network_and_actors_versions_never_decrease_with_epoch(first: int, second: int) -> None:
    low, high = sorted((first, second))
    for network in (MAINNET, CALIBNET, DEVNET):
        assert network.network_version_at(low) <= network.network_version_at(high)
        assert network.actors_version_at(low) <= network.actors_version_at(high)


def test_every_upgrade_takes_effect_the_epoch_after_its_height() -> None:
    for network in (MAINNET, CALIBNET):
        for upgrade in network.upgrades:
            assert network.upgrade_at(upgrade.height) == upgrade
            assert network.network_version_at(upgrade.height + 1) == upgrade.network_version


# -- bundles and genesis discovery ------------------------------------------------------------


def test_bundle_search_path_order(tmp_path: Path) -> None:
    configured = tmp_path / "mine"
    env = {"FVM_NODE_SHARED": str(tmp_path / "elsewhere")}
    cwd = tmp_path / "project" / "sub"
    assert actors_search_path(configured, env, cwd) == (
        configured,
        tmp_path / "elsewhere" / "actors",
        PROJECT_ROOT.parent / "shared" / "actors",
        tmp_path / "project" / "shared" / "actors",
    )
    assert shared_dirs({}, PROJECT_ROOT) == (PROJECT_ROOT.parent / "shared",)


def test_configured_actors_dir_is_searched_first(tmp_path: Path, actors_dir: Path) -> None:
    (tmp_path / "v10.tar.zst").write_bytes(b"")
    assert find_bundle_file(10, [tmp_path, actors_dir]) == tmp_path / "v10.tar.zst"
    assert find_bundle_file(9, [tmp_path, actors_dir]) == actors_dir / "v9.tar.zst"


def test_missing_bundle_error_names_every_place_looked(tmp_path: Path, actors_dir: Path) -> None:
    with pytest.raises(BundleNotFound) as raised:
        find_bundle_file(11, [tmp_path, actors_dir])
    message = str(raised.value)
    assert "v11.tar.zst" in message and str(tmp_path) in message and str(actors_dir) in message
    assert "\n" not in message


def test_devnet_v10_bundle_is_lotus_devnet_build(actors_dir: Path) -> None:
    bundle = load_network_bundle(DEVNET, 10, actors_search_path(actors_dir))
    assert str(bundle.manifest_cid) == LOTUS_DEVNET_V10_MANIFEST
    assert bundle.network == "devnet"
    assert {"system", "init", "evm", "eam", "ethaccount"} <= set(bundle.actors)


def test_mainnet_and_calibnet_bundles_are_checked_against_lotus(actors_dir: Path) -> None:
    for network in (MAINNET, CALIBNET):
        bundle = load_network_bundle(network, 10, [actors_dir])
        assert bundle.verified
        assert bundle.manifest_cid == expected_manifest(network.bundle_network, 10)


def test_missing_genesis_error_names_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(GenesisNotFound, match="looked in") as raised:
        locate_genesis(MAINNET, [tmp_path / "a", tmp_path / "b"])
    assert str(tmp_path / "a" / "genesis" / "mainnet.car.zst") in str(raised.value)
    with pytest.raises(GenesisNotFound, match="no genesis"):
        locate_genesis(DEVNET, [tmp_path])
    with pytest.raises(GenesisNotFound, match="not found at"):
        locate_genesis(devnet_preset(tmp_path), [])


# -- settings ---------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_defaults_depend_on_the_network(tmp_path: Path) -> None:
    settings = load_settings(None, {"XDG_DATA_HOME": str(tmp_path)}, {})
    assert settings.network == "mainnet"
    assert settings.data_dir == tmp_path / "fvm-node" / "mainnet"
    assert settings.listen == ("/ip4/127.0.0.1/tcp/0",)
    assert settings.bootstrap == MAINNET.bootstrap_peers
    assert settings.metrics is None and settings.actors_dir is None
    assert (settings.log_level, settings.proof_verifier) == ("INFO", "accept-all")
    assert settings.sync.batch_length == 100
    devnet = load_settings(None, {"XDG_DATA_HOME": str(tmp_path)}, {"network": "devnet"})
    assert devnet.data_dir == tmp_path / "fvm-node" / "devnet"
    assert devnet.bootstrap == ()
    assert devnet.sources["bootstrap"] == "devnet preset"


def test_example_file_documents_every_setting_at_its_default(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    from_example = load_settings(EXAMPLE_TOML, env, {})
    assert from_example == load_settings(None, env, {})
    text = EXAMPLE_TOML.read_text()
    for key in SETTING_KEYS:
        assert f"{key.rpartition('.')[2]} = " in text, key


def test_precedence_file_then_environment_then_command_line(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'network = "calibnet"\nlog_level = "debug"\n[sync]\nbatch_length = 200\n'
        "max_concurrent_requests = 8\nrequest_timeout_secs = 5\n",
    )
    env = {
        "FVM_NODE_SYNC__BATCH_LENGTH": "300",
        "FVM_NODE_SYNC__MAX_CONCURRENT_REQUESTS": "9",
        "FVM_NODE_SHARED": "/not/a/setting",
        "FVM_NODE_BENCH_EPOCHS": "30",
    }
    settings = load_settings(config, env, {"sync.batch_length": 400, "log_level": None})
    assert settings.network == "calibnet"
    assert settings.log_level == "DEBUG"
    assert settings.sync.batch_length == 400
    assert settings.sync.max_concurrent_requests == 9
    assert settings.sync.request_timeout_secs == 5.0
    assert settings.bootstrap == CALIBNET.bootstrap_peers
    assert settings.sources["network"] == f"config file {config}"
    assert settings.sources["sync.max_concurrent_requests"] == (
        "environment FVM_NODE_SYNC__MAX_CONCURRENT_REQUESTS"
    )
    assert settings.sources["sync.batch_length"] == "option --sync-batch-length"
    assert settings.sources["sync.peer_penalty_threshold"] == "default"


def test_text_values_from_environment_and_options(tmp_path: Path) -> None:
    config = _write(tmp_path, 'metrics = "127.0.0.1:9100"\n')
    env = {
        "FVM_NODE_LISTEN": "/ip4/0.0.0.0/tcp/4001, /ip6/::1/tcp/4001",
        "FVM_NODE_METRICS": "",
        "FVM_NODE_EXECUTION__PERSIST_MODULE_CACHE": "off",
    }
    settings = load_settings(config, env, {"bootstrap": "", "devnet.block_delay_secs": "2"})
    assert settings.listen == ("/ip4/0.0.0.0/tcp/4001", "/ip6/::1/tcp/4001")
    assert settings.metrics is None
    assert settings.execution.persist_module_cache is False
    assert settings.bootstrap == ()
    assert settings.devnet.block_delay_secs == 2


def test_relative_paths_follow_their_source(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = tmp_path / "etc" / "node.toml"
    config.write_text('data_dir = "data"\nactors_dir = "../bundles"\n')
    cwd = tmp_path / "run"
    settings = load_settings(config, {"FVM_NODE_GENESIS": "g.car"}, {}, cwd=cwd)
    assert settings.data_dir == tmp_path / "etc" / "data"
    assert settings.actors_dir == tmp_path / "etc" / ".." / "bundles"
    assert settings.genesis == cwd / "g.car"
    from_option = load_settings(config, {}, {"data_dir": Path("/abs/dir")}, cwd=cwd)
    assert from_option.data_dir == Path("/abs/dir")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("colour = 1\n", "colour", "unknown setting"),
        ("[sync]\nbatch_size = 5\n", "sync.batch_size", "did you mean sync.batch_length"),
        ("sync = 5\n", "sync", "expected a table [sync]"),
        ('[sync]\nbatch_length = "5"\n', "sync.batch_length", "expected an integer, got string"),
        ("[sync]\nbatch_length = 901\n", "sync.batch_length", "between 1 and 900"),
        ("[sync]\nbatch_length = 0\n", "sync.batch_length", "between 1 and 900"),
        ("[sync]\nmax_concurrent_requests = true\n", "sync.max_concurrent_requests", "boolean"),
        ("[sync]\nrequest_timeout_secs = -1.0\n", "sync.request_timeout_secs", "positive"),
        ("[execution]\npersist_module_cache = 1\n", "execution.persist_module_cache", "boolean"),
        ('listen = ["/ip4/1.2.3/tcp/1"]\n', "listen", "bad multiaddr"),
        ('listen = "/ip4/127.0.0.1/tcp/1"\n', "listen", "expected a list"),
        ("bootstrap = [1]\n", "bootstrap", "multiaddr strings"),
        ('metrics = "localhost"\n', "metrics", "not host:port"),
        ('metrics = "localhost:65536"\n', "metrics", "0 to 65535"),
        ('metrics = "::1:9100"\n', "metrics", "[addr]:port"),
        ('metrics = "[nope]:9100"\n', "metrics", "not an IPv6 address"),
        ('metrics = "bad host:9100"\n', "metrics", "not a host name"),
        ('network = "testnet"\n', "network", "not one of mainnet, calibnet, devnet"),
        ('log_level = "loud"\n', "log_level", "not one of DEBUG"),
        ('proof_verifier = "groth16"\n', "proof_verifier", "not one of accept-all"),
        ("data_dir = 3\n", "data_dir", "expected a non-empty path"),
        ("[devnet]\nblock_delay_secs = 0\n", "devnet.block_delay_secs", "at least 1"),
    ],
)
def test_bad_file_values_name_the_key_and_the_file(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    config = _write(tmp_path, text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config, {}, {})
    message = str(raised.value)
    assert raised.value.key == key
    assert message.startswith(f"setting {key} from config file {config}: ")
    assert problem in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "value", "key", "problem"),
    [
        ("FVM_NODE_SYNC_BATCH_LENGTH", "5", "sync_batch_length", "did you mean sync.batch_length"),
        ("FVM_NODE_COLOUR", "red", "colour", "unknown setting"),
        ("FVM_NODE_SYNC__BATCH_LENGTH", "many", "sync.batch_length", "not an integer"),
        ("FVM_NODE_SYNC__REQUEST_TIMEOUT_SECS", "soon", "sync.request_timeout_secs", "number"),
        (
            "FVM_NODE_EXECUTION__PERSIST_MODULE_CACHE",
            "maybe",
            "execution.persist_module_cache",
            "boolean",
        ),
        ("FVM_NODE_BOOTSTRAP", "/ip4/1.2.3.4/tcp/1,nonsense", "bootstrap", "bad multiaddr"),
        ("FVM_NODE_METRICS", "host:port", "metrics", "port 'port'"),
        ("FVM_NODE_DATA_DIR", " ", "data_dir", "non-empty path"),
    ],
)
def test_bad_environment_values_name_the_variable(
    name: str, value: str, key: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(None, {name: value}, {})
    assert raised.value.key == key
    assert raised.value.source == f"environment {name}"
    assert problem in str(raised.value)


def test_bad_options_name_the_option() -> None:
    with pytest.raises(
        SettingsError,
        match=r"^setting sync\.batch_length from option "
        r"--sync-batch-length: 1000 is out of range",
    ):
        load_settings(None, {}, {"sync.batch_length": 1000})
    with pytest.raises(SettingsError, match="from option --colour: unknown setting"):
        load_settings(None, {}, {"colour": "red"})
    with pytest.raises(SettingsError, match="from option --listen: expected a list"):
        load_settings(None, {}, {"listen": 5})


def test_a_bad_file_value_is_reported_even_when_overridden(tmp_path: Path) -> None:
    config = _write(tmp_path, "[sync]\nbatch_length = 5000\n")
    with pytest.raises(SettingsError, match="from config file"):
        load_settings(config, {}, {"sync.batch_length": 10})


def test_unreadable_config_files_are_settings_errors(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    with pytest.raises(SettingsError, match=f"^config file {re.escape(str(absent))}: cannot read"):
        load_settings(absent, {}, {})
    broken = _write(tmp_path, "network = \n")
    with pytest.raises(
        SettingsError, match=f"^config file {re.escape(str(broken))}: not valid TOML"
    ) as raised:
        load_settings(broken, {}, {})
    assert "\n" not in str(raised.value)


def test_describe_settings_lists_every_value_with_its_source(tmp_path: Path) -> None:
    settings = load_settings(
        None, {"XDG_DATA_HOME": str(tmp_path), "FVM_NODE_METRICS": "[::1]:9100"}, {}
    )
    lines = {entry.key: str(entry) for entry in describe_settings(settings)}
    assert list(lines) == list(SETTING_KEYS)
    assert lines["metrics"] == "metrics = [::1]:9100 (environment FVM_NODE_METRICS)"
    assert lines["actors_dir"] == "actors_dir = (none) (default)"
    assert lines["data_dir"] == f"data_dir = {tmp_path / 'fvm-node' / 'mainnet'} (default)"
    assert lines["bootstrap"].endswith("(mainnet preset)")
    assert settings.metrics == HostPort("::1", 9100)


def test_resolve_preset_fills_in_the_genesis(tmp_path: Path, shared_dir: Path) -> None:
    env = {"FVM_NODE_SHARED": str(shared_dir)}
    mainnet = resolve_preset(load_settings(None, env, {}), env)
    assert mainnet.genesis == shared_dir / "genesis" / "mainnet.car.zst"
    devnet = resolve_preset(
        load_settings(
            None, {}, {"network": "devnet", "data_dir": tmp_path, "devnet.block_delay_secs": 1}
        )
    )
    assert devnet.genesis == tmp_path / "genesis.car"
    assert devnet.block_delay_secs == 1
    explicit = resolve_preset(
        NodeSettings(network="calibnet", genesis=shared_dir / "genesis" / "calibnet.car.zst")
    )
    assert explicit.genesis == shared_dir / "genesis" / "calibnet.car.zst"
    assert isinstance(explicit, NetworkPreset)


@given(
    host=st.from_regex(
        r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True
    ),
    port=st.integers(min_value=0, max_value=65535),
)
def test_host_port_round_trips_through_text(host: str, port: int) -> None:
    settings = load_settings(None, {"FVM_NODE_METRICS": f"{host}:{port}"}, {})
    assert settings.metrics == HostPort(host, port)
    again = load_settings(None, {"FVM_NODE_METRICS": str(settings.metrics)}, {})
    assert again.metrics == settings.metrics
