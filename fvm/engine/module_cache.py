"""Compiled actor modules, cached in memory and on disk.

ref-fvm's ``Engine`` (``fvm/src/engine/mod.rs`` at ``fvm@v3.13.3``, ``fvm/src/machine/engine.rs``
at ``fvm@v2.12.1``) keeps one wasmtime ``Module`` per code CID: it validates the raw module,
instruments it (stack limiter, then gas metering) and compiles the result, once per engine
configuration; from v3 wasmtime's pooling allocator refuses, when compiling, modules beyond its
limits (:func:`check_pooling_limits`). :class:`ModuleCache` does the same with
:func:`fvm.engine.instrument_module` and a wasmtime engine configured from
:class:`~fvm.engine.config.EngineConfig`, and additionally keeps the compiled machine code on
disk (wasmtime ``Module.serialize``), so that a node restart does not pay for instrumentation
and compilation again: for the whole actors v10 bundle that is 10-15 seconds cold against
40-70 ms warm on the project machine (two cores).

A disk entry is keyed by everything its contents depend on: the code CID, the wasmtime version,
the instrumenter release and a digest of the instrumenter's source, the gas rules' cost table
and the engine settings. Entries are written to a temporary file and renamed into place, carry a
SHA-256 of the compiled bytes, and anything that does not read back exactly (truncated, corrupt,
written by another wasmtime or configuration) is ignored and rebuilt.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import struct
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import wasmtime

from fvm.engine import wasm_module as wm
from fvm.engine.config import EngineConfig, PoolingLimits, check_disabled_features
from fvm.engine.instrument import instrument_module
from store.cid import CID
from store.errors import MalformedInput

CACHE_FORMAT: Final = 1
_MAGIC: Final = b"fvm-node cwasm\x00\x01"
_HEADER_LENGTH: Final = struct.Struct("<I")
_FILE_SUFFIX: Final = ".cwasm"
WASM_PAGE_SIZE: Final = 65536
# The modules whose code decides the instrumented bytes; their source is part of the key.
_INSTRUMENTATION_MODULES: Final = tuple(
    f"fvm.engine.{name}"
    for name in (
        "wasm_module", "function_code", "stack_limiter", "gas_metering", "instrument", "config"
    )
)


class ModuleLoadError(MalformedInput):
    """Actor code that wasmtime or the instrumentation refuses."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fvm-node/wasm-modules`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "fvm-node" / "wasm-modules"


@dataclass(frozen=True, slots=True)
class ModuleLayout:
    """What the runtime needs to know about a module that wasmtime does not expose.

    ``table_elements`` is the summed minimum size of the module's own tables (ref-fvm's memory
    limiter counts 8 bytes per element); ``memory_pages`` the minimum of its own memory.
    """

    table_elements: int
    memory_pages: int

    @classmethod
    def of(cls, module: wm.WasmModule) -> ModuleLayout:
        return cls(
            table_elements=sum(table.limits.minimum for table in module.tables),
            memory_pages=sum(memory.limits.minimum for memory in module.memories),
        )


@dataclass(frozen=True, slots=True)
class CompiledModule:
    """An instrumented, compiled actor module.

    ``instrumented_size`` is the byte size of the instrumented module, what ref-fvm v3 records
    as the module's size.
    """

    code_cid: CID
    module: wasmtime.Module
    layout: ModuleLayout
    instrumented_size: int


def _source_digest() -> str:
    digest = hashlib.sha256()
    for name in _INSTRUMENTATION_MODULES:
        path = importlib.import_module(name).__file__
        assert path is not None
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _rules_digest(config: EngineConfig) -> str:
    costs = sorted(config.wasm_rules.costs.items())
    return hashlib.sha256(repr((config.wasm_rules.name, costs)).encode()).hexdigest()


def wasmtime_version() -> str:
    return importlib.metadata.version("wasmtime")


def configuration_key(config: EngineConfig) -> str:
    """A digest of everything besides the code that decides a compiled module's bytes."""
    description = {
        "format": CACHE_FORMAT,
        "wasmtime": wasmtime_version(),
        "machine": platform.machine(),
        "instrumenter": config.instrumenter.value,
        "instrumenter_source": _source_digest(),
        "wasm_rules": _rules_digest(config),
        "max_wasm_stack": config.max_wasm_stack,
        "gas_module": config.gas_module,
        "gas_counter_name": config.gas_counter_name,
        "wasmtime_settings": dataclasses.asdict(config.wasmtime),
        "pooling": dataclasses.asdict(config.pooling) if config.pooling is not None else None,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def check_pooling_limits(module: wm.WasmModule, limits: PoolingLimits) -> None:
    """Refuse a module wasmtime's pooling allocator cannot hold (its ``validate_module``):
    more defined memories or tables than allowed, a memory whose minimum exceeds the instance
    memory limit, a table whose minimum exceeds the element limit. Imported memories and tables
    are not the allocator's (and never link in the FVM)."""
    if len(module.memories) > limits.memories_per_module:
        raise ModuleLoadError(
            f"defined memories count of {len(module.memories)} exceeds the per-instance limit "
            f"of {limits.memories_per_module}"
        )
    for index, memory in enumerate(module.memories):
        minimum = memory.limits.minimum * WASM_PAGE_SIZE
        if minimum > limits.max_memory_bytes:
            raise ModuleLoadError(
                f"memory index {index} has a minimum byte size of {minimum} which exceeds the "
                f"limit of {limits.max_memory_bytes} bytes"
            )
    if len(module.tables) > limits.tables_per_module:
        raise ModuleLoadError(
            f"defined tables count of {len(module.tables)} exceeds the per-instance limit of "
            f"{limits.tables_per_module}"
        )
    for index, table in enumerate(module.tables):
        if table.limits.minimum > limits.table_elements:
            raise ModuleLoadError(
                f"table index {index} has a minimum element size of {table.limits.minimum} "
                f"which exceeds the limit of {limits.table_elements}"
            )


def prepare(
    wasm: bytes, config: EngineConfig, engine: wasmtime.Engine
) -> tuple[bytes, ModuleLayout]:
    """Validate ``wasm`` as ref-fvm's ``load_raw`` does, check it against the pooling
    allocator's limits (which wasmtime applies when ``load_raw`` compiles it) and instrument it.

    Raises :class:`ModuleLoadError` (or :class:`~fvm.engine.wasm_module.WasmError`) for code
    ref-fvm would refuse to load.
    """
    try:
        wasmtime.Module.validate(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise ModuleLoadError(f"failed to validate actor wasm: {exc}") from None
    module = wm.decode_module(wasm)
    check_disabled_features(module, config.instrumenter)
    if config.pooling is not None:
        check_pooling_limits(module, config.pooling)
    layout = ModuleLayout.of(module)
    instrument_module(
        module,
        config.wasm_rules,
        config.max_wasm_stack,
        config.instrumenter,
        config.gas_module,
        config.gas_counter_name,
    )
    return wm.encode_module(module), layout


class ModuleCache:
    """Compiled modules for one engine configuration, by code CID.

    ``cache_dir=None`` uses :func:`default_cache_dir`; ``persist=False`` keeps modules in memory
    only. All methods may be called from several threads.
    """

    def __init__(
        self,
        config: EngineConfig,
        cache_dir: str | Path | None = None,
        *,
        persist: bool = True,
        engine: wasmtime.Engine | None = None,
    ) -> None:
        self.config = config
        self.engine = engine if engine is not None else wasmtime.Engine(
            config.wasmtime.wasmtime_config()
        )
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.persist = persist
        self.key = configuration_key(config)
        self._modules: dict[CID, CompiledModule] = {}
        self._lock = threading.Lock()
        self.compiled = 0  # modules instrumented and compiled by this cache
        self.loaded = 0  # modules read back from disk

    # -- lookups ---------------------------------------------------------------------------

    def cached(self, code_cid: CID) -> CompiledModule | None:
        """The module if it is in memory (no disk access, no compilation)."""
        return self._modules.get(code_cid)

    def get(self, code_cid: CID, wasm: bytes) -> CompiledModule:
        """The compiled module for ``code_cid``, whose raw code is ``wasm``.

        From memory, else from disk, else instrumented and compiled (and written to disk).
        """
        found = self._modules.get(code_cid)
        if found is not None:
            return found
        compiled = self._load(code_cid)
        if compiled is None:
            compiled = self._compile(code_cid, wasm)
        with self._lock:
            return self._modules.setdefault(code_cid, compiled)

    def preload(
        self, modules: Iterable[tuple[CID, bytes]], *, workers: int | None = None
    ) -> list[CompiledModule]:
        """Bring every ``(code CID, wasm)`` into memory (once per CID), ``workers`` at a time
        (default: one per CPU); return them in order of first appearance.

        Instrumentation holds the GIL while wasmtime's compilation and deserialisation release
        it, so a worker compiling overlaps with one instrumenting; wasmtime already compiles on
        every core, so this gains little (a few percent for a whole bundle on two cores).
        """
        todo = list(dict(modules).items())
        count = workers if workers is not None else (os.cpu_count() or 1)
        if count <= 1 or len(todo) <= 1:
            return [self.get(code_cid, wasm) for code_cid, wasm in todo]
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda item: self.get(*item), todo))

    # -- disk ------------------------------------------------------------------------------

    def path_for(self, code_cid: CID) -> Path:
        """Where the compiled form of ``code_cid`` lives on disk for this configuration."""
        return self.cache_dir / f"{code_cid}-{self.key[:32]}{_FILE_SUFFIX}"

    def _load(self, code_cid: CID) -> CompiledModule | None:
        if not self.persist:
            return None
        path = self.path_for(code_cid)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        compiled = self._decode_entry(code_cid, data)
        if compiled is None:
            path.unlink(missing_ok=True)
        else:
            self.loaded += 1
        return compiled

    def _decode_entry(self, code_cid: CID, data: bytes) -> CompiledModule | None:
        """The module in a disk entry, or None for an entry that does not read back exactly."""
        start = len(_MAGIC) + _HEADER_LENGTH.size
        if len(data) < start or not data.startswith(_MAGIC):
            return None
        (header_length,) = _HEADER_LENGTH.unpack_from(data, len(_MAGIC))
        try:
            header = json.loads(data[start : start + header_length])
            payload = data[start + header_length :]
            if (
                header["key"] != self.key
                or header["code"] != str(code_cid)
                or header["size"] != len(payload)
                or header["sha256"] != hashlib.sha256(payload).hexdigest()
            ):
                return None
            layout = ModuleLayout(header["table_elements"], header["memory_pages"])
            instrumented_size = int(header["instrumented_size"])
            module = wasmtime.Module.deserialize(self.engine, payload)
        except (ValueError, KeyError, TypeError, wasmtime.WasmtimeError):
            return None
        return CompiledModule(code_cid, module, layout, instrumented_size)

    def _store(self, compiled: CompiledModule) -> None:
        payload = bytes(compiled.module.serialize())
        header = json.dumps(
            {
                "key": self.key,
                "code": str(compiled.code_cid),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
                "table_elements": compiled.layout.table_elements,
                "memory_pages": compiled.layout.memory_pages,
                "instrumented_size": compiled.instrumented_size,
            },
            sort_keys=True,
        ).encode()
        path = self.path_for(compiled.code_cid)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(_MAGIC + _HEADER_LENGTH.pack(len(header)) + header + payload)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            # A cache that cannot be written only costs a recompilation next time.
            return

    # -- compilation -----------------------------------------------------------------------

    def _compile(self, code_cid: CID, wasm: bytes) -> CompiledModule:
        if not code_cid.verify(wasm):
            raise ModuleLoadError("code does not hash to its CID", str(code_cid))
        instrumented, layout = prepare(wasm, self.config, self.engine)
        try:
            module = wasmtime.Module(self.engine, instrumented)
        except wasmtime.WasmtimeError as exc:
            raise ModuleLoadError(f"failed to compile instrumented wasm: {exc}") from None
        compiled = CompiledModule(code_cid, module, layout, len(instrumented))
        self.compiled += 1
        if self.persist:
            self._store(compiled)
        return compiled
