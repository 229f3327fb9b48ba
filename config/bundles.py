"""Where the node finds its read-only data: builtin-actors bundles and genesis CARs.

Lotus embeds both in its binary (``build/actors/vN.tar.zst``, ``build/genesis/*.car.zst``); we
read them from a shared data directory instead, never from the repository. Places are tried in
a fixed order so a run is reproducible: an explicitly configured directory, then
``$FVM_NODE_SHARED``, then ``../shared`` beside the project, then ``../shared`` relative to the
working directory. When nothing is found the error names every place that was tried.

Bundles are loaded with :func:`fvm.bundle.load_bundle`, which checks the manifest CID against
Lotus's table (``build/builtin_actors_gen.go``) where that table has the network and version.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from config.networks import NetworkPreset
from fvm.bundle import Bundle, load_bundle
from store.errors import FvmNodeError

log = logging.getLogger(__name__)

SHARED_ENV: Final = "FVM_NODE_SHARED"
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent


class BundleNotFound(FvmNodeError, LookupError):
    """No ``vN.tar.zst`` for the wanted actors version in any searched directory."""


class GenesisNotFound(FvmNodeError, LookupError):
    """The network's genesis CAR is in none of the searched places."""


def _unique(paths: Sequence[Path]) -> tuple[Path, ...]:
    seen: set[Path] = set()
    kept: list[Path] = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return tuple(kept)


def shared_dirs(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> tuple[Path, ...]:
    """Candidate shared data directories, in search order: ``$FVM_NODE_SHARED``, then
    ``../shared`` from the project root, then ``../shared`` from ``cwd``."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    candidates: list[Path] = []
    if env.get(SHARED_ENV):
        candidates.append(Path(env[SHARED_ENV]).expanduser())
    candidates.append(PROJECT_ROOT.parent / "shared")
    candidates.append(cwd.parent / "shared")
    return _unique(candidates)


def actors_search_path(
    actors_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Path, ...]:
    """Directories to look for bundles in: ``actors_dir`` (the ``actors_dir`` setting) first,
    then the ``actors`` folder of every :func:`shared_dirs` candidate."""
    candidates = [] if actors_dir is None else [actors_dir]
    candidates.extend(shared / "actors" for shared in shared_dirs(env, cwd))
    return _unique(candidates)


def find_bundle_file(actors_version: int, actors_dirs: Sequence[Path]) -> Path:
    """The first ``v<actors_version>.tar.zst`` in ``actors_dirs``; :class:`BundleNotFound`
    naming every directory looked in otherwise."""
    name = f"v{actors_version}.tar.zst"
    for directory in actors_dirs:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(directory) for directory in actors_dirs) or "no directory given"
    raise BundleNotFound(f"actors bundle {name} not found; looked in: {looked}")


def load_network_bundle(
    preset: NetworkPreset, actors_version: int, actors_dirs: Sequence[Path]
) -> Bundle:
    """The ``preset``'s build of the builtin actors ``actors_version``.

    Raises :class:`BundleNotFound`, or :class:`fvm.bundle.BundleError` (and its
    ``ManifestMismatch``) for a tarball that is unreadable or not the one Lotus ships.
    ``Bundle.verified`` is False when Lotus's table, as :mod:`fvm.bundle` holds it, has no
    manifest for this network and version; that is logged as a warning.
    """
    path = find_bundle_file(actors_version, actors_dirs)
    bundle = load_bundle(path, network=preset.bundle_network)
    if not bundle.verified:
        log.warning(
            "actors v%d bundle for %s (manifest %s, from %s) is not in the known-manifest table;"
            " it was not checked against Lotus",
            actors_version,
            preset.bundle_network,
            bundle.manifest_cid,
            path,
        )
    return bundle


def locate_genesis(preset: NetworkPreset, search_dirs: Sequence[Path]) -> Path:
    """The preset's genesis CAR: ``preset.genesis`` itself when absolute, else the first
    ``<dir>/<preset.genesis>`` that exists among ``search_dirs`` (normally
    :func:`shared_dirs`)."""
    if preset.genesis is None:
        raise GenesisNotFound(f"network {preset.name} has no genesis file configured")
    if preset.genesis.is_absolute():
        if preset.genesis.is_file():
            return preset.genesis
        raise GenesisNotFound(f"{preset.name} genesis not found at {preset.genesis}")
    candidates = [directory / preset.genesis for directory in search_dirs]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates) or "no directory given"
    raise GenesisNotFound(f"{preset.name} genesis {preset.genesis} not found; looked in: {looked}")
