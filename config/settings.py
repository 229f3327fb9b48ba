"""Typed node settings, merged from a TOML file, the environment and command-line options.

Precedence, lowest first: built-in defaults < the TOML file < ``FVM_NODE_*`` environment
variables < command-line overrides. Every value is checked where it enters, so a bad one is
reported as one line naming the setting and where it came from (the file, the variable or the
option) even when a later source would have replaced it.

Keys are the dataclass fields below; nested sections are TOML tables (``[sync]``) and, in the
environment, a double underscore (``FVM_NODE_SYNC__BATCH_LENGTH`` is ``sync.batch_length``).
Environment values and string overrides are text (lists comma-separated; an empty value clears
an optional setting); the TOML file is typed, so ``batch_length = "5"`` is an error. Relative
paths in the file are relative to the file's directory; elsewhere to the working directory.

The chain-exchange limits follow Lotus ``chain/exchange/protocol.go``: a request asks for at
most ``MaxRequestLength`` = 900 tipsets (the chain finality), and a server gets
``WriteResDeadline`` = 60 s to answer.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import multiaddr
import multiaddr.exceptions

from config.bundles import locate_genesis, shared_dirs
from config.networks import PRESETS, NetworkPreset, devnet_preset, preset
from store.errors import FvmNodeError

ENV_PREFIX: Final = "FVM_NODE_"
# FVM_NODE_* variables that are not settings (the shared data directory, see config.bundles).
RESERVED_ENV: Final = frozenset({"FVM_NODE_SHARED"})
# Benchmarks take their knobs from FVM_NODE_BENCH_* variables; they are not node settings.
RESERVED_ENV_PREFIX: Final = "FVM_NODE_BENCH_"

MAX_REQUEST_LENGTH: Final = 900  # Lotus exchange.MaxRequestLength (= policy.ChainFinality)
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Proof verifiers the node has. "accept-all" verifies NOTHING: every seal, PoSt, aggregate and
# replica-update proof is taken as valid (its gas is still charged), as ref-fvm's conformance
# runner does. There is no Python proof verifier yet.
PROOF_VERIFIERS: Final = ("accept-all",)
DEFAULT_LISTEN: Final = ("/ip4/127.0.0.1/tcp/0",)


class SettingsError(FvmNodeError, ValueError):
    """A setting that is unknown, of the wrong type or out of range (``key`` names it), or a
    config file that cannot be read or parsed (``key`` is empty)."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        self.key = key
        self.source = source
        self.problem = problem
        where = f"setting {key} from {source}" if key else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP endpoint given as ``host:port`` (``[v6 address]:port`` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Chain-exchange client behaviour."""

    batch_length: int = 100  # tipsets per chain-exchange request, 1..900
    max_concurrent_requests: int = 4  # requests in flight at once, over all peers
    request_timeout_secs: float = 60.0  # for one request's whole response
    peer_penalty_threshold: int = 3  # bad or failed responses before a peer is dropped


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    """Tipset execution: where compiled actor modules are cached."""

    module_cache_dir: Path | None = None  # None: fvm.engine.module_cache.default_cache_dir()
    persist_module_cache: bool = True  # False: compile into memory only


@dataclass(frozen=True, slots=True)
class DevnetSettings:
    """Only read when ``network = "devnet"``."""

    block_delay_secs: int = 4


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """The node's settings. Build them with :func:`load_settings`, which replaces the
    ``data_dir`` and ``bootstrap`` placeholders below with the network's defaults.
    ``proof_verifier = "accept-all"`` (the only one) verifies no proof at all."""

    network: str = "mainnet"
    data_dir: Path = Path("fvm-node-data")
    listen: tuple[str, ...] = DEFAULT_LISTEN
    bootstrap: tuple[str, ...] = ()
    metrics: HostPort | None = None
    actors_dir: Path | None = None
    genesis: Path | None = None
    log_level: str = "INFO"
    proof_verifier: str = "accept-all"
    sync: SyncSettings = field(default_factory=SyncSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    devnet: DevnetSettings = field(default_factory=DevnetSettings)
    # Where each resolved value came from, by dotted key ("default", a file, a variable, …).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


# -- value parsers ----------------------------------------------------------------------------


class _Invalid(Exception):
    """A value a parser refuses; becomes a SettingsError once key and source are known."""


@dataclass(frozen=True, slots=True)
class _Raw:
    """One value as a source gave it. ``textual`` values are strings to be parsed (the
    environment, string options); others are TOML-typed. ``base`` anchors relative paths."""

    value: object
    source: str
    textual: bool
    base: Path


Parser = Callable[[_Raw], Any]


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}.get(
        type(value), type(value).__name__
    )


def _string(raw: _Raw) -> str:
    if not isinstance(raw.value, str):
        raise _Invalid(f"expected a string, got {_type_name(raw.value)}")
    return raw.value.strip()


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Parser:
    def parse(raw: _Raw) -> str:
        text = _string(raw)
        text = text.upper() if upper else text
        if text not in choices:
            raise _Invalid(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _integer(low: int, high: int | None = None, note: str = "") -> Parser:
    def parse(raw: _Raw) -> int:
        value = raw.value
        if raw.textual and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise _Invalid(f"{raw.value!r} is not an integer") from None
        if type(value) is not int:
            raise _Invalid(f"expected an integer, got {_type_name(value)}")
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise _Invalid(f"{value} is out of range: must be {bound}{note}")
        return value

    return parse


def _positive_number(raw: _Raw) -> float:
    value = raw.value
    if raw.textual and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _Invalid(f"{raw.value!r} is not a number") from None
    if type(value) not in (int, float):
        raise _Invalid(f"expected a number, got {_type_name(value)}")
    number = float(value)  # type: ignore[arg-type]
    if not number > 0 or number == float("inf"):
        raise _Invalid(f"{value} is out of range: must be a positive number")
    return number


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _boolean(raw: _Raw) -> bool:
    value = raw.value
    if raw.textual and isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _Invalid(f"{value!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
    if type(value) is not bool:
        raise _Invalid(f"expected a boolean, got {_type_name(value)}")
    return value


def _path(raw: _Raw) -> Path:
    value = raw.value
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = Path(value.strip())
    else:
        raise _Invalid(f"expected a non-empty path, got {_type_name(value)} {value!r}")
    path = path.expanduser()
    return path if path.is_absolute() else raw.base / path


def _optional(parse: Parser) -> Parser:
    def parse_optional(raw: _Raw) -> object:
        if raw.value is None or (isinstance(raw.value, str) and not raw.value.strip()):
            return None
        return parse(raw)

    return parse_optional


def _multiaddrs(raw: _Raw) -> tuple[str, ...]:
    value = raw.value
    if isinstance(value, str) and raw.textual:
        items: list[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise _Invalid(f"expected a list of multiaddrs, got {_type_name(value)}")
    addresses: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _Invalid(f"expected multiaddr strings, got {_type_name(item)}")
        try:
            addresses.append(str(multiaddr.Multiaddr(item.strip())))
        except (ValueError, multiaddr.exceptions.Error) as exc:
            raise _Invalid(f"bad multiaddr: {exc}") from None
    return tuple(addresses)


_HOST_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-_")


def _host_port(raw: _Raw) -> HostPort:
    text = _string(raw)
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise _Invalid(f"{text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise _Invalid(f"{text!r} is not host:port (write IPv6 hosts as [addr]:port)")
    elif not all(part and set(part) <= _HOST_CHARS for part in host.split(".")):
        raise _Invalid(f"{host!r} is not a host name or address")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise _Invalid(f"port {port_text!r} is not a number from 0 to 65535")
    return HostPort(host, int(port_text))


CHAIN_DIR: Final = "chain"
"""The LMDB chain store's folder inside a node's ``data_dir`` (node, import, export, replay)."""


def parse_host_port(text: str) -> HostPort:
    """``host:port`` (``[v6 address]:port``) as the ``metrics`` setting reads it, for commands
    that take an endpoint outside the settings; ValueError names what is wrong."""
    try:
        return _host_port(_Raw(text, "argument", True, Path.cwd()))
    except _Invalid as exc:
        raise ValueError(str(exc)) from None


# Every setting by dotted key, in the order describe_settings lists them.
_PARSERS: Final[dict[str, Parser]] = {
    "network": _choice(tuple(PRESETS)),
    "data_dir": _path,
    "listen": _multiaddrs,
    "bootstrap": _multiaddrs,
    "metrics": _optional(_host_port),
    "actors_dir": _optional(_path),
    "genesis": _optional(_path),
    "log_level": _choice(LOG_LEVELS, upper=True),
    "proof_verifier": _choice(PROOF_VERIFIERS),
    "sync.batch_length": _integer(1, MAX_REQUEST_LENGTH, " (Lotus MaxRequestLength)"),
    "sync.max_concurrent_requests": _integer(1),
    "sync.request_timeout_secs": _positive_number,
    "sync.peer_penalty_threshold": _integer(1),
    "execution.module_cache_dir": _optional(_path),
    "execution.persist_module_cache": _boolean,
    "devnet.block_delay_secs": _integer(1),
}
SECTIONS: Final = ("sync", "execution", "devnet")
SETTING_KEYS: Final = tuple(_PARSERS)


# -- sources ----------------------------------------------------------------------------------


def _file_layer(config_file: Path) -> dict[str, _Raw]:
    source = f"config file {config_file}"
    try:
        with open(config_file, "rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        raise SettingsError("", source, f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError("", source, f"not valid TOML: {exc}") from None
    base = config_file.resolve().parent
    layer: dict[str, _Raw] = {}
    for key, value in document.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                problem = f"expected a table [{key}], got {_type_name(value)}"
                raise SettingsError(key, source, problem)
            for inner, inner_value in value.items():
                layer[f"{key}.{inner}"] = _Raw(inner_value, source, False, base)
        else:
            layer[key] = _Raw(value, source, False, base)
    return layer


def is_setting_variable(name: str) -> bool:
    """Whether the environment variable ``name`` sets a node setting (``FVM_NODE_*``, not
    reserved)."""
    return (
        name.startswith(ENV_PREFIX)
        and name not in RESERVED_ENV
        and not name.startswith(RESERVED_ENV_PREFIX)
    )


def _env_layer(env: Mapping[str, str], cwd: Path) -> dict[str, _Raw]:
    layer: dict[str, _Raw] = {}
    for name, value in env.items():
        if not is_setting_variable(name):
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        layer[key] = _Raw(value, f"environment {name}", True, cwd)
    return layer


def option_name(key: str) -> str:
    """How a dotted key is named as a command-line option in messages: ``--sync-batch-length``."""
    return "--" + key.replace(".", "-").replace("_", "-")


def _override_layer(overrides: Mapping[str, object], cwd: Path) -> dict[str, _Raw]:
    return {
        key: _Raw(value, f"option {option_name(key)}", isinstance(value, str), cwd)
        for key, value in overrides.items()
        if value is not None
    }


def _parse_layer(layer: Mapping[str, _Raw]) -> dict[str, tuple[object, str]]:
    parsed: dict[str, tuple[object, str]] = {}
    for key, raw in layer.items():
        parser = _PARSERS.get(key)
        if parser is None:
            close = difflib.get_close_matches(key, SETTING_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(key, raw.source, f"unknown setting{hint}")
        try:
            parsed[key] = (parser(raw), raw.source)
        except _Invalid as exc:
            raise SettingsError(key, raw.source, str(exc)) from None
    return parsed


def default_data_dir(network: str, env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/fvm-node/<network>`` (``~/.local/share`` when unset)."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "fvm-node" / network


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    *,
    cwd: Path | None = None,
) -> NodeSettings:
    """Resolve the settings: defaults < ``config_file`` < ``env`` (``FVM_NODE_*``; None reads
    ``os.environ``) < ``overrides``.

    ``overrides`` maps dotted keys (``"data_dir"``, ``"sync.batch_length"``) to values, typed
    or as text; None values are skipped, so unset command-line options can be passed as they
    are. Defaults that depend on the network: ``data_dir`` (:func:`default_data_dir`) and
    ``bootstrap`` (the preset's peers). Raises :class:`SettingsError`.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    merged: dict[str, tuple[object, str]] = {}
    if config_file is not None:
        merged.update(_parse_layer(_file_layer(config_file)))
    merged.update(_parse_layer(_env_layer(env, cwd)))
    merged.update(_parse_layer(_override_layer(overrides or {}, cwd)))

    defaults = NodeSettings()
    network = str(merged.get("network", (defaults.network, ""))[0])
    merged.setdefault("data_dir", (default_data_dir(network, env), "default"))
    merged.setdefault("bootstrap", (preset(network).bootstrap_peers, f"{network} preset"))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in SETTING_KEYS:
        if key in merged:
            values[key], sources[key] = merged[key]
        else:
            sources[key] = "default"

    def section(name: str) -> dict[str, Any]:
        prefix = name + "."
        return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}

    top = {k: v for k, v in values.items() if "." not in k}
    return replace(
        defaults,
        **top,
        sync=SyncSettings(**section("sync")),
        execution=ExecutionSettings(**section("execution")),
        devnet=DevnetSettings(**section("devnet")),
        sources=sources,
    )


# -- using the settings -----------------------------------------------------------------------


def setting_value(settings: NodeSettings, key: str) -> object:
    """The value of a dotted key."""
    value: object = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _display(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) or "(none)"
    return str(value)


@dataclass(frozen=True, slots=True)
class ResolvedSetting:
    key: str
    value: str
    source: str

    def __str__(self) -> str:
        return f"{self.key} = {self.value} ({self.source})"


def describe_settings(settings: NodeSettings) -> list[ResolvedSetting]:
    """Every setting, its value as text and where it came from, for the start-up log."""
    return [
        ResolvedSetting(
            key, _display(setting_value(settings, key)), settings.sources.get(key, "default")
        )
        for key in SETTING_KEYS
    ]


def resolve_preset(settings: NodeSettings, env: Mapping[str, str] | None = None) -> NetworkPreset:
    """The network preset with this node's genesis path filled in.

    Devnet: ``<data_dir>/genesis.car`` (or the ``genesis`` setting) and the configured block
    delay. Mainnet/calibnet: the ``genesis`` setting, else the preset's CAR found in the shared
    data directories (:func:`config.bundles.shared_dirs`); raises
    :class:`config.bundles.GenesisNotFound` when it is nowhere.
    """
    if settings.network == "devnet":
        found = devnet_preset(settings.data_dir, block_delay_secs=settings.devnet.block_delay_secs)
        return found if settings.genesis is None else replace(found, genesis=settings.genesis)
    chosen = preset(settings.network)
    if settings.genesis is not None:
        chosen = replace(chosen, genesis=settings.genesis)
    return replace(chosen, genesis=locate_genesis(chosen, shared_dirs(env)))
