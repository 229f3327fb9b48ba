"""A devnet directory: its keys, its genesis and the description every devnet command reads.

Lotus makes a local devnet in two steps (``cmd/lotus-seed``: ``genesis new`` and ``genesis
add-miner`` write a JSON genesis template and the miner's keys; ``lotus daemon
--lotus-make-genesis`` turns the template into ``devgen.car``). Here one command,
:func:`init_devnet`, does both and leaves a directory the other devnet commands take as their
only argument::

    DIR/devnet.toml       what the devnet is: network name, block time, genesis CID and
                          timestamp, the miner and every funded account with its key file
    DIR/genesis.car       the genesis block and state (built through the FVM from the actors
                          v10 devnet bundle by :func:`node.devnet.genesis.build_devnet_genesis`)
    DIR/keys/*.key        Lotus key files (hex KeyInfo), readable by the owner only
    DIR/node.toml         a node settings file (:func:`config.settings.load_settings`) for any
                          node that joins: ``fvm-node run --config DIR/node.toml``
    DIR/producer/         the producer node's data directory (created when it first runs)

The genesis timestamp is the time of ``init``: the producer makes the block of the epoch the
wall clock is at (``genesis + epoch * block time``), so a devnet started long after ``init``
begins with that many null rounds. Accounts alternate secp256k1 and BLS keys, so both message
signature kinds are available to the load generator.
"""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from config.bundles import actors_search_path, load_network_bundle
from config.networks import DEVNET_GENESIS_FILE, DEVNET_NETWORK_VERSION, devnet_preset
from fvm.address import Address, AddressError
from fvm.network_version import actors_version_for
from fvm.token import FILECOIN_PRECISION, TokenAmount
from node.devnet.genesis import (
    DevnetGenesis,
    DevnetGenesisSpec,
    build_devnet_genesis,
    write_genesis_car,
)
from node.devnet.keys import Key, KeyType
from store.blockstore import MemoryBlockstore
from store.cid import CID
from store.errors import FvmNodeError, MalformedInput

DEVNET_FILE: Final = "devnet.toml"
NODE_SETTINGS_FILE: Final = "node.toml"
KEYS_DIR: Final = "keys"
PRODUCER_DIR: Final = "producer"
DEFAULT_NETWORK_NAME: Final = "devnet"
DEFAULT_ACCOUNTS: Final = 4
MAX_ACCOUNTS: Final = 100
DEFAULT_BLOCK_DELAY_SECS: Final = 4
# Each funded account's balance: 10 million FIL (Lotus's devnet templates fund accounts with
# tens of millions); 100 accounts stay far below the 900 million FIL left after the storage
# mining allocation.
ACCOUNT_BALANCE: Final = 10_000_000 * FILECOIN_PRECISION
LAYOUT_VERSION: Final = 1


class DevnetLayoutError(FvmNodeError):
    """A devnet directory that cannot be created (exists, bad options) or read."""


@dataclass(frozen=True, slots=True)
class DevnetAccount:
    """A funded genesis account: its key, its actor ID and its genesis balance (attoFIL)."""

    name: str
    key: Key
    actor_id: int
    balance: TokenAmount

    @property
    def address(self) -> Address:
        return self.key.address


@dataclass(frozen=True, slots=True)
class Devnet:
    """A devnet directory as :func:`load_devnet` reads it."""

    root: Path
    network_name: str
    block_delay_secs: int
    genesis_cid: CID
    genesis_timestamp: int
    network_version: int
    miner: Address
    miner_owner: Key
    miner_worker: Key
    accounts: tuple[DevnetAccount, ...]

    @property
    def genesis_path(self) -> Path:
        return self.root / DEVNET_GENESIS_FILE

    @property
    def producer_dir(self) -> Path:
        return self.root / PRODUCER_DIR

    @property
    def node_settings_path(self) -> Path:
        return self.root / NODE_SETTINGS_FILE

    def account(self, address: Address) -> DevnetAccount:
        for account in self.accounts:
            if account.address == address:
                return account
        raise DevnetLayoutError(f"{address} is not an account of the devnet in {self.root}")


# -- init ---------------------------------------------------------------------------------------


def _account_kind(index: int) -> KeyType:
    return KeyType.SECP256K1 if index % 2 == 0 else KeyType.BLS


def _generate(kind: KeyType, seed: bytes | None, name: str) -> Key:
    return Key.generate(kind, None if seed is None else seed + b"/" + name.encode())


def _toml_string(text: str) -> str:
    # A JSON string of printable ASCII is a valid TOML basic string.
    return json.dumps(text, ensure_ascii=True)


def _devnet_toml(
    genesis: DevnetGenesis,
    block_delay_secs: int,
    key_files: Mapping[str, Key],
    accounts: Sequence[tuple[str, Key, TokenAmount]],
) -> str:
    spec = genesis.spec
    key_file = {key.address: name for name, key in key_files.items()}

    def key_path(key: Key) -> str:
        return f"{KEYS_DIR}/{key_file[key.address]}.key"

    lines = [
        "# A devnet made by `fvm-node devnet init`. Read by `fvm-node devnet run|load`.",
        f"layout_version = {LAYOUT_VERSION}",
        f"network_name = {_toml_string(spec.network_name)}",
        f"block_delay_secs = {block_delay_secs}",
        f"network_version = {DEVNET_NETWORK_VERSION}",
        f"genesis = {_toml_string(DEVNET_GENESIS_FILE)}",
        f"genesis_cid = {_toml_string(str(genesis.cid))}",
        f"genesis_timestamp = {spec.timestamp}",
        f"bundle_manifest = {_toml_string(str(genesis.manifest))}",
        "",
        "[miner]",
        f"address = {_toml_string(str(genesis.miner))}",
        f"owner = {_toml_string(str(spec.miner_owner.address))}",
        f"owner_key = {_toml_string(key_path(spec.miner_owner))}",
        f"worker = {_toml_string(str(spec.miner_worker.address))}",
        f"worker_key = {_toml_string(key_path(spec.miner_worker))}",
        "",
        "[verifreg_root]",
        f"address = {_toml_string(str(spec.verifreg_root.address))}",
        f"key = {_toml_string(key_path(spec.verifreg_root))}",
        "",
        "[remainder]",
        f"address = {_toml_string(str(spec.remainder_owner.address))}",
        f"key = {_toml_string(key_path(spec.remainder_owner))}",
    ]
    for name, key, balance in accounts:
        lines += [
            "",
            "[[accounts]]",
            f"name = {_toml_string(name)}",
            f"type = {_toml_string(key.kind.value)}",
            f"address = {_toml_string(str(key.address))}",
            f"id = {genesis.account_ids[key.address]}",
            f"balance = {_toml_string(str(balance))}  # attoFIL",
            f"key = {_toml_string(key_path(key))}",
        ]
    return "\n".join(lines) + "\n"


def _node_toml(network_name: str, block_delay_secs: int) -> str:
    return (
        f"# Settings for a node joining the devnet {network_name!r}:\n"
        f"#   fvm-node run --config {NODE_SETTINGS_FILE} --data DIR --bootstrap MULTIADDR\n"
        'network = "devnet"\n'
        f"genesis = {_toml_string(DEVNET_GENESIS_FILE)}\n"
        "\n[devnet]\n"
        f"block_delay_secs = {block_delay_secs}\n"
    )


def init_devnet(
    root: Path,
    *,
    accounts: int = DEFAULT_ACCOUNTS,
    block_delay_secs: int = DEFAULT_BLOCK_DELAY_SECS,
    network_name: str = DEFAULT_NETWORK_NAME,
    force: bool = False,
    actors_dir: Path | None = None,
    seed: bytes | None = None,
    timestamp: int | None = None,
) -> Devnet:
    """Create the devnet directory ``root`` (see the module docstring) and return it as read
    back by :func:`load_devnet`.

    An existing ``devnet.toml`` or ``genesis.car`` in ``root`` is refused unless ``force``, which
    removes the old keys, genesis and producer data first. ``seed`` makes the keys
    deterministic (tests); ``timestamp`` defaults to now. The v10 devnet bundle is looked for as
    :func:`config.bundles.actors_search_path` says.
    """
    if not 1 <= accounts <= MAX_ACCOUNTS:
        raise DevnetLayoutError(f"--accounts must be between 1 and {MAX_ACCOUNTS}, not {accounts}")
    if block_delay_secs < 1:
        raise DevnetLayoutError(f"--block-time must be at least 1 second, not {block_delay_secs}")
    if not network_name or not network_name.isprintable() or not network_name.isascii():
        raise DevnetLayoutError(f"network name {network_name!r} must be printable ASCII")
    existing = [
        root / name for name in (DEVNET_FILE, DEVNET_GENESIS_FILE) if (root / name).exists()
    ]
    if existing and not force:
        raise DevnetLayoutError(
            f"{root} already holds a devnet ({existing[0].name}); use --force to replace it"
        )
    preset = devnet_preset(root, block_delay_secs=block_delay_secs, network_name=network_name)
    bundle = load_network_bundle(
        preset, actors_version_for(DEVNET_NETWORK_VERSION), actors_search_path(actors_dir)
    )

    funded = [
        (f"account-{index}", _generate(_account_kind(index), seed, f"account-{index}"))
        for index in range(accounts)
    ]
    roles = {
        "miner-owner": _generate(KeyType.SECP256K1, seed, "miner-owner"),
        "miner-worker": _generate(KeyType.BLS, seed, "miner-worker"),
        "verifreg-root": _generate(KeyType.SECP256K1, seed, "verifreg-root"),
        "remainder": _generate(KeyType.SECP256K1, seed, "remainder"),
    }
    spec = DevnetGenesisSpec(
        network_name=network_name,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        accounts=[(key, ACCOUNT_BALANCE) for _, key in funded],
        miner_owner=roles["miner-owner"],
        miner_worker=roles["miner-worker"],
        verifreg_root=roles["verifreg-root"],
        remainder_owner=roles["remainder"],
    )
    genesis = build_devnet_genesis(spec, bundle, MemoryBlockstore())

    if force:
        for stale in (root / KEYS_DIR, root / PRODUCER_DIR):
            if stale.exists():
                shutil.rmtree(stale)
    keys_dir = root / KEYS_DIR
    keys_dir.mkdir(parents=True, exist_ok=True)
    key_files = dict(funded) | roles
    for name, key in key_files.items():
        key.save(keys_dir / f"{name}.key")
    write_genesis_car(root / DEVNET_GENESIS_FILE, genesis)
    described = [(name, key, ACCOUNT_BALANCE) for name, key in funded]
    (root / NODE_SETTINGS_FILE).write_text(_node_toml(network_name, block_delay_secs))
    # devnet.toml last: its presence is what marks the directory as a complete devnet.
    (root / DEVNET_FILE).write_text(_devnet_toml(genesis, block_delay_secs, key_files, described))
    return load_devnet(root)


# -- reading --------------------------------------------------------------------------------------


def _field(table: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = table.get(name)
    if type(value) is not kind:
        raise DevnetLayoutError(f"{where}: {name} must be a {kind.__name__}, got {value!r}")
    return value


def _address(table: Mapping[str, Any], name: str, where: str) -> Address:
    text = _field(table, name, str, where)
    try:
        return Address.parse(text)
    except AddressError as exc:
        raise DevnetLayoutError(f"{where}: {name} {text!r} is not an address: {exc}") from None


def _key(root: Path, table: Mapping[str, Any], name: str, address: Address, where: str) -> Key:
    path = root / _field(table, name, str, where)
    try:
        key = Key.load(path)
    except OSError as exc:
        raise DevnetLayoutError(f"{where}: cannot read key file {path}: {exc.strerror}") from None
    except MalformedInput as exc:
        raise DevnetLayoutError(f"{where}: key file {path}: {exc}") from None
    if key.address != address:
        raise DevnetLayoutError(f"{where}: key file {path} is for {key.address}, not {address}")
    return key


def _table(document: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = document.get(name)
    if not isinstance(value, dict):
        raise DevnetLayoutError(f"{where}: missing table [{name}]")
    return value


def load_devnet(root: Path) -> Devnet:
    """Read the devnet directory ``root`` (its ``devnet.toml`` and the key files it names)."""
    path = root / DEVNET_FILE
    where = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DevnetLayoutError(
            f"{root} is not a devnet directory (no {DEVNET_FILE}); run `fvm-node devnet init`"
        ) from None
    except OSError as exc:
        raise DevnetLayoutError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DevnetLayoutError(f"{path} is not valid TOML: {exc}") from None
    version = document.get("layout_version")
    if version != LAYOUT_VERSION:
        raise DevnetLayoutError(f"{where}: layout_version {version!r} is not {LAYOUT_VERSION}")
    try:
        genesis_cid = CID.parse(_field(document, "genesis_cid", str, where))
    except MalformedInput as exc:
        raise DevnetLayoutError(f"{where}: genesis_cid: {exc}") from None
    block_delay = _field(document, "block_delay_secs", int, where)
    if block_delay < 1:
        raise DevnetLayoutError(f"{where}: block_delay_secs must be at least 1")
    miner_table = _table(document, "miner", where)
    owner = _address(miner_table, "owner", f"{where} [miner]")
    worker = _address(miner_table, "worker", f"{where} [miner]")
    account_tables = document.get("accounts")
    if not isinstance(account_tables, list) or not account_tables:
        raise DevnetLayoutError(f"{where}: no [[accounts]]")
    accounts = []
    for index, table in enumerate(account_tables):
        at = f"{where} [[accounts]] #{index}"
        if not isinstance(table, dict):
            raise DevnetLayoutError(f"{at}: not a table")
        address = _address(table, "address", at)
        balance_text = _field(table, "balance", str, at)
        if not balance_text.isdigit():
            raise DevnetLayoutError(f"{at}: balance {balance_text!r} is not attoFIL")
        accounts.append(
            DevnetAccount(
                name=_field(table, "name", str, at),
                key=_key(root, table, "key", address, at),
                actor_id=_field(table, "id", int, at),
                balance=int(balance_text),
            )
        )
    return Devnet(
        root=root,
        network_name=_field(document, "network_name", str, where),
        block_delay_secs=block_delay,
        genesis_cid=genesis_cid,
        genesis_timestamp=_field(document, "genesis_timestamp", int, where),
        network_version=_field(document, "network_version", int, where),
        miner=_address(miner_table, "address", f"{where} [miner]"),
        miner_owner=_key(root, miner_table, "owner_key", owner, f"{where} [miner]"),
        miner_worker=_key(root, miner_table, "worker_key", worker, f"{where} [miner]"),
        accounts=tuple(accounts),
    )
