"""``fvm-node devnet init`` and the command-line checks of ``run`` / ``devnet run|load``.

The devnet is built from the real actors v10 devnet bundle in the shared data directory; the
genesis it writes must load into a chain store and hold the accounts and miner ``devnet.toml``
describes, with keys that sign for those addresses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chainsync.chain_store import ChainStore
from fvm.state_tree import StateTree
from node.cli import main
from node.devnet.keys import Key, KeyType
from node.devnet.layout import (
    ACCOUNT_BALANCE,
    DevnetLayoutError,
    init_devnet,
    load_devnet,
)
from store.lmdb_blockstore import LmdbBlockstore


@pytest.fixture(scope="module")
def actors(actors_dir: Path) -> Path:
    return actors_dir


def test_devnet_init_writes_a_genesis_that_loads_with_the_described_accounts(
    tmp_path: Path, actors: Path
) -> None:
    root = tmp_path / "net"
    result = CliRunner().invoke(
        main,
        [
            "devnet",
            "init",
            "--dir",
            str(root),
            "--accounts",
            "3",
            "--block-time",
            "2",
            "--actors",
            str(actors),
        ],
    )
    assert result.exit_code == 0, result.output
    devnet = load_devnet(root)
    assert f"genesis     {devnet.genesis_cid}" in result.output
    assert devnet.block_delay_secs == 2
    assert devnet.network_name == "devnet"
    assert [account.key.kind for account in devnet.accounts] == [
        KeyType.SECP256K1,
        KeyType.BLS,
        KeyType.SECP256K1,
    ]
    assert [account.actor_id for account in devnet.accounts] == [100, 101, 102]
    assert str(devnet.miner) == "f01000"
    assert devnet.miner_worker.kind is KeyType.BLS
    assert sorted(path.name for path in (root / "keys").iterdir()) == [
        "account-0.key",
        "account-1.key",
        "account-2.key",
        "miner-owner.key",
        "miner-worker.key",
        "remainder.key",
        "verifreg-root.key",
    ]
    assert (root / "keys" / "account-0.key").stat().st_mode & 0o777 == 0o600

    with LmdbBlockstore(tmp_path / "store") as blockstore:
        genesis = ChainStore(blockstore).load_genesis(devnet.genesis_path)
        assert genesis.cids == (devnet.genesis_cid,)
        assert genesis.min_timestamp == devnet.genesis_timestamp
        tree = StateTree(blockstore, genesis.parent_state)
        for account in devnet.accounts:
            actor = tree.get_actor(account.address)
            assert actor is not None
            assert actor.balance == ACCOUNT_BALANCE
            assert tree.get_actor(account.actor_id) == actor
        assert tree.get_actor(devnet.miner) is not None

    # The key files are Lotus key files signing for the listed addresses.
    reloaded = Key.load(root / "keys" / "account-1.key")
    assert reloaded.address == devnet.accounts[1].address
    node_toml = (root / "node.toml").read_text()
    assert 'network = "devnet"' in node_toml and "block_delay_secs = 2" in node_toml


def test_devnet_init_refuses_an_existing_devnet_unless_forced(tmp_path: Path, actors: Path) -> None:
    root = tmp_path / "net"
    first = init_devnet(root, accounts=1, block_delay_secs=1, actors_dir=actors)
    runner = CliRunner()
    refused = runner.invoke(main, ["devnet", "init", "--dir", str(root), "--accounts", "1"])
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines() == [
        f"error: {root} already holds a devnet (devnet.toml); use --force to replace it"
    ]
    assert load_devnet(root).genesis_cid == first.genesis_cid

    forced = runner.invoke(
        main,
        [
            "devnet",
            "init",
            "--dir",
            str(root),
            "--accounts",
            "2",
            "--force",
            "--actors",
            str(actors),
        ],
    )
    assert forced.exit_code == 0, forced.output
    replaced = load_devnet(root)
    assert replaced.genesis_cid != first.genesis_cid
    assert len(replaced.accounts) == 2


def test_seeded_devnets_are_identical(tmp_path: Path, actors: Path) -> None:
    one = init_devnet(
        tmp_path / "a", accounts=2, seed=b"same", timestamp=1_700_000_000, actors_dir=actors
    )
    two = init_devnet(
        tmp_path / "b", accounts=2, seed=b"same", timestamp=1_700_000_000, actors_dir=actors
    )
    assert one.genesis_cid == two.genesis_cid
    assert (tmp_path / "a" / "genesis.car").read_bytes() == (
        tmp_path / "b" / "genesis.car"
    ).read_bytes()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--accounts", "0"], "--accounts must be between 1 and 100, not 0"),
        (["--block-time", "0"], "--block-time must be at least 1 second, not 0"),
    ],
)
def test_devnet_init_rejects_bad_options_in_one_line(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["devnet", "init", "--dir", str(tmp_path), *arguments])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {message}"


def test_a_directory_without_devnet_toml_is_not_a_devnet(tmp_path: Path) -> None:
    with pytest.raises(DevnetLayoutError, match="is not a devnet directory"):
        load_devnet(tmp_path)
    result = CliRunner().invoke(main, ["devnet", "run", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: ")
    assert "is not a devnet directory" in result.output


def test_a_tampered_key_file_is_reported(tmp_path: Path, actors: Path) -> None:
    init_devnet(tmp_path, accounts=1, seed=b"k", actors_dir=actors)
    Key.generate(KeyType.SECP256K1, b"other").save(tmp_path / "keys" / "account-0.key")
    with pytest.raises(DevnetLayoutError, match=r"account-0\.key is for"):
        load_devnet(tmp_path)


def test_run_reports_bad_settings_and_unsupported_networks_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_metrics = runner.invoke(
        main, ["run", "--network", "devnet", "--data", str(tmp_path), "--metrics", "nope"]
    )
    assert bad_metrics.exit_code == 2
    assert (
        bad_metrics.output.strip()
        == "error: setting metrics from option --metrics: 'nope' is not host:port"
    )

    mainnet = runner.invoke(main, ["run", "--network", "mainnet", "--data", str(tmp_path)])
    assert mainnet.exit_code == 2
    lines = mainnet.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: network mainnet: only the devnet")


def test_devnet_load_rejects_a_bad_count(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "devnet",
            "load",
            "--dir",
            str(tmp_path),
            "--peer",
            "/ip4/127.0.0.1/tcp/1",
            "--count",
            "0",
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: --count must be at least 1 and --rate positive"
