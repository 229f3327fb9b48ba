"""Builtin-actors bundles: the WASM code of every builtin actor, addressed by its manifest.

A bundle release ships as ``vN.tar.zst`` (N = actors version): a zstd-compressed tar holding one
CAR v1 per network, named ``builtin-actors-<network>.car`` (Lotus also keeps superseded builds as
``builtin-actors-<network>-v<X.Y.Z>.car``). A CAR's single root is the manifest CID. The manifest
block is ``[version, data]`` with ``version == 1``; ``data`` links to a list of
``[actor_name, code_cid]`` pairs, and every ``code_cid`` is a raw (0x55) block holding the
actor's WASM module. ref-fvm (``fvm/src/machine/manifest.rs``) numbers the actors 1, 2, … in the
order the list gives them; builtin-actors' ``runtime/src/runtime/builtins.rs`` names them.

The expected manifest CIDs come from Lotus (``build/builtin_actors_gen.go`` and the superseded
calibnet build in ``build/builtin_actors.go``): a bundle whose root differs from the table is
refused with :class:`ManifestMismatch`. Tarballs are streamed (``tarfile`` over a zstd stream
reader), never extracted to disk.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final, NamedTuple

import zstandard

from store import dag_cbor
from store.blockstore import Blockstore, MemoryBlockstore
from store.car import CarReader
from store.cid import BLAKE2B_256, CID, DAG_CBOR, RAW
from store.errors import CARError, CBORError, MalformedInput

# The names builtin-actors gives its actor types, in its ``Type`` enum order (1 = system).
ACTOR_NAMES: Final = (
    "system",
    "init",
    "cron",
    "account",
    "storagepower",
    "storageminer",
    "storagemarket",
    "paymentchannel",
    "multisig",
    "reward",
    "verifiedregistry",
    "datacap",
    "placeholder",
    "evm",
    "eam",
    "ethaccount",
)
# Every manifest has these; ref-fvm (manifest.rs) refuses one without them. From fvm v3 it also
# requires placeholder, eam and ethaccount, which actors v9 bundles predate.
REQUIRED_ACTORS: Final = ("system", "init", "account")
MANIFEST_VERSION: Final = 1
WASM_MAGIC: Final = b"\x00asm"
NETWORK_ALIASES: Final = {"calibnet": "calibrationnet"}

_TARBALL_NAME: Final = re.compile(r"^v(?P<version>\d+)\.tar\.zst$")
_CAR_NAME: Final = re.compile(
    r"^builtin-actors-(?P<network>[a-z0-9-]+?)(?:-(?P<release>v\d+\.\d+\.\d+))?\.car$"
)
# What reading a CAR out of a (possibly damaged) zstd tar stream can raise besides CARError.
_STREAM_ERRORS: Final = (OSError, EOFError, tarfile.TarError, zstandard.ZstdError)


class BundleError(MalformedInput):
    """A bundle tarball, CAR or manifest that is missing, unreadable or malformed."""


class ManifestError(BundleError):
    """A manifest block that does not have the ``[1, [[name, code], …]]`` shape."""


class ManifestMismatch(BundleError):
    """A bundle whose manifest CID is not the one Lotus lists for its network and version."""

    def __init__(self, expected: CID, actual: CID, where: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"manifest {actual} differs from the expected {expected}", where)


@dataclass(frozen=True, slots=True)
class KnownManifest:
    """One row of Lotus's bundle table. ``release`` names a superseded build kept beside the
    current one (its CAR carries the release in its file name); None is the current build."""

    network: str
    actors_version: int
    manifest: CID
    release: str | None = None


def _known(network: str, version: int, cid: str, release: str | None = None) -> KnownManifest:
    return KnownManifest(network, version, CID.parse(cid), release)


# Mainnet for every actors version Lotus lists, calibnet and devnet for the versions in
# ../shared/actors (Lotus build/builtin_actors_gen.go).
# Mainnet 19 is Lotus's entry for the next upgrade, which for now reuses the v18.0.0 bundle.
KNOWN_MANIFESTS: Final[tuple[KnownManifest, ...]] = (
    _known("mainnet", 8, "bafy2bzacebogjbpiemi7npzxchgcjjki3tfxon4ims55obfyfleqntteljsea"),
    _known("mainnet", 9, "bafy2bzaceb6j6666h36xnhksu3ww4kxb6e25niayfgkdnifaqi6m6ooc66i6i"),
    _known("mainnet", 10, "bafy2bzacecsuyf7mmvrhkx2evng5gnz5canlnz2fdlzu2lvcgptiq2pzuovos"),
    _known("mainnet", 11, "bafy2bzacecnhaiwcrpyjvzl4uv4q3jzoif26okl3m66q3cijp3dfwlcxwztwo"),
    _known("mainnet", 12, "bafy2bzaceapkgfggvxyllnmuogtwasmsv5qi2qzhc2aybockd6kag2g5lzaio"),
    _known("mainnet", 13, "bafy2bzacecdhvfmtirtojwhw2tyciu4jkbpsbk5g53oe24br27oy62sn4dc4e"),
    _known("mainnet", 14, "bafy2bzacecbueuzsropvqawsri27owo7isa5gp2qtluhrfsto2qg7wpgxnkba"),
    _known("mainnet", 15, "bafy2bzaceakwje2hyinucrhgtsfo44p54iw4g6otbv5ghov65vajhxgntr53u"),
    _known("mainnet", 16, "bafy2bzacecnepvsh4lw6pwljobvwm6zwu6mbwveatp7llhpuguvjhjiqz7o46"),
    _known("mainnet", 17, "bafy2bzaceai74ppsvuxs3nvpzzeuptdr3wl7vmdpbphvtz4qt5hfq2qdfvz3e"),
    _known("mainnet", 18, "bafy2bzacedxsqapxwj5znwy4leem5gsuenhhfyqcntews3yis5iek67thy6lc"),
    _known("mainnet", 19, "bafy2bzacedxsqapxwj5znwy4leem5gsuenhhfyqcntews3yis5iek67thy6lc"),
    _known("calibrationnet", 9, "bafy2bzacedbedgynklc4dgpyxippkxmba2mgtw7ecntoneclsvvl4klqwuyyy"),
    _known("calibrationnet", 10, "bafy2bzaced25ta3j6ygs34roprilbtb3f6mxifyfnm7z7ndquaruxzdq3y7lo"),
    _known("calibrationnet", 16, "bafy2bzacecqtwq6hjhj2zy5gwjp76a4tpcg2lt7dps5ycenvynk2ijqqyo65e"),
    _known(
        "calibrationnet",
        16,
        "bafy2bzacebc7zpsrihpyd2jdcvmegbbk6yhzkifre3hxtoul5wdxxklbwitry",
        release="v16.0.0",
    ),
    _known("calibrationnet", 17, "bafy2bzacecn64rlb52rjsvgopnidz6w42z3zobmjxqek5s4xqjh3ly47rcurg"),
    _known("calibrationnet", 18, "bafy2bzacebkfatnbe6w4rj7lf6gkjh7mywlrpdh2dj6hu2dl4rmtwksszm2hs"),
    _known("devnet", 9, "bafy2bzacedozk3jh2j4nobqotkbofodq4chbrabioxbfrygpldgoxs3zwgggk"),
    _known("devnet", 10, "bafy2bzacebzz376j5kizfck56366kdz5aut6ktqrvqbi3efa2d4l2o2m653ts"),
    _known("devnet", 16, "bafy2bzaceclp3wfrwdjgh6c3gee5smwj3zmmrhb4fdbc4yfchfaia6rlljx5o"),
    _known("devnet", 17, "bafy2bzaceasvgkke3j4cs3xsxnjswpcdmokkvkiehzxzcgfox3ozlehimbuqk"),
    _known("devnet", 18, "bafy2bzaced35gjxagazf2fne5dakbok5abmivsh7cq7huwfuptebgwjmcpcf6"),
)

_KNOWN_BY_KEY: Final = {
    (k.network, k.actors_version, k.release): k.manifest for k in KNOWN_MANIFESTS
}


def canonical_network(network: str) -> str:
    """The network name bundles use (``calibnet`` is accepted for ``calibrationnet``)."""
    return NETWORK_ALIASES.get(network, network)


def expected_manifest(network: str, actors_version: int, release: str | None = None) -> CID | None:
    """The manifest CID Lotus lists for this network and actors version, if it lists one."""
    return _KNOWN_BY_KEY.get((canonical_network(network), actors_version, release))


# -- manifest ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Manifest:
    """A decoded bundle manifest: actor names and their code CIDs, in manifest order.

    As in ref-fvm, a name or code listed twice keeps its last entry, and actor ids count the
    entries from 1 in manifest order.
    """

    cid: CID
    version: int
    data_cid: CID
    entries: tuple[tuple[str, CID], ...]
    actors: Mapping[str, CID] = field(repr=False, compare=False)
    _ids: Mapping[CID, int] = field(repr=False, compare=False)
    _names: Mapping[CID, str] = field(repr=False, compare=False)

    @classmethod
    def from_entries(
        cls, cid: CID, version: int, data_cid: CID, entries: list[tuple[str, CID]]
    ) -> Manifest:
        actors: dict[str, CID] = {}
        ids: dict[CID, int] = {}
        names: dict[CID, str] = {}
        for actor_id, (name, code) in enumerate(entries, start=1):
            actors[name] = code
            ids[code] = actor_id
            names[code] = name
        for name in REQUIRED_ACTORS:
            if name not in actors:
                raise ManifestError(f"manifest lacks the {name!r} actor", f"manifest {cid}")
        return cls(
            cid,
            version,
            data_cid,
            tuple(entries),
            MappingProxyType(actors),
            MappingProxyType(ids),
            MappingProxyType(names),
        )

    @classmethod
    def from_store(cls, store: Blockstore, manifest_cid: CID) -> Manifest:
        """Load the manifest rooted at ``manifest_cid`` (``[version, data]``) from ``store``."""
        where = f"manifest {manifest_cid}"
        top = _load_cbor(store, manifest_cid, where)
        if (
            not isinstance(top, list)
            or len(top) != 2
            or type(top[0]) is not int
            or not isinstance(top[1], CID)
        ):
            raise ManifestError("manifest root must be [version, data link]", where)
        version, data_cid = top
        if version != MANIFEST_VERSION:
            raise ManifestError(f"unsupported manifest version {version}", where)
        data = _load_cbor(store, data_cid, f"manifest data {data_cid}")
        if not isinstance(data, list):
            raise ManifestError("manifest data must be a list of [name, code] pairs", where)
        entries: list[tuple[str, CID]] = []
        for entry in data:
            if (
                not isinstance(entry, list)
                or len(entry) != 2
                or not isinstance(entry[0], str)
                or not isinstance(entry[1], CID)
            ):
                raise ManifestError("manifest entry must be [name, code CID]", where)
            entries.append((entry[0], entry[1]))
        return cls.from_entries(manifest_cid, version, data_cid, entries)

    def code_of(self, name: str) -> CID:
        """The code CID of the actor type ``name``; KeyError if this bundle lacks it."""
        return self.actors[name]

    def name_of(self, code: CID) -> str | None:
        """The actor type whose code is ``code``, or None for code outside this bundle."""
        return self._names.get(code)

    def builtin_id(self, code: CID) -> int:
        """ref-fvm's builtin actor id: the 1-based position in the manifest, 0 if absent."""
        return self._ids.get(code, 0)


def _load_cbor(store: Blockstore, cid: CID, where: str) -> Any:
    data = store.get(cid)
    if data is None:
        raise ManifestError(f"block {cid} is missing", where)
    if cid.codec != DAG_CBOR:
        raise ManifestError(f"block {cid} is not DAG-CBOR", where)
    try:
        return dag_cbor.decode(data, where)
    except CBORError as exc:
        raise ManifestError(f"not valid DAG-CBOR: {exc.what}", where) from None


# -- bundle files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleFile:
    """One ``vN.tar.zst`` release tarball."""

    path: Path
    actors_version: int


@dataclass(frozen=True, slots=True)
class Bundle:
    """One network's build of one actors version: its manifest and its WASM modules."""

    manifest: Manifest
    version: int
    network: str
    release: str | None
    blocks: tuple[tuple[CID, bytes], ...] = field(repr=False)
    manifest_blocks: tuple[tuple[CID, bytes], ...] = field(repr=False)
    verified: bool

    @property
    def manifest_cid(self) -> CID:
        return self.manifest.cid

    @property
    def actors(self) -> Mapping[str, CID]:
        return self.manifest.actors

    def put_into(self, store: Blockstore) -> None:
        """Store the manifest and every module, so a machine can load the bundle by its root."""
        store.put_many_keyed(self.manifest_blocks)
        store.put_many_keyed(self.blocks)


def list_bundles(actors_dir: str | Path) -> list[BundleFile]:
    """Every ``vN.tar.zst`` in ``actors_dir``, by ascending actors version."""
    found: list[BundleFile] = []
    for path in Path(actors_dir).iterdir():
        match = _TARBALL_NAME.match(path.name)
        if match and path.is_file():
            found.append(BundleFile(path, int(match["version"])))
    return sorted(found, key=lambda bundle: bundle.actors_version)


def actors_version_of(path: str | Path) -> int:
    """The actors version a tarball's name (``vN.tar.zst``) declares."""
    match = _TARBALL_NAME.match(Path(path).name)
    if match is None:
        raise BundleError("bundle tarball must be named vN.tar.zst", str(path))
    return int(match["version"])


def parse_car_name(name: str) -> tuple[str, str | None] | None:
    """``(network, release)`` from a member name like ``builtin-actors-mainnet.car``."""
    match = _CAR_NAME.match(Path(name).name)
    if match is None:
        return None
    return match["network"], match["release"]


def _iter_cars(path: Path) -> Iterator[tuple[str, str | None, IO[bytes]]]:
    """Stream the tarball: ``(network, release, CAR stream)`` for every bundle CAR in it."""
    try:
        with open(path, "rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    parsed = parse_car_name(member.name)
                    if parsed is None or not member.isfile():
                        continue
                    stream = tar.extractfile(member)
                    if stream is None:
                        continue
                    yield parsed[0], parsed[1], stream
    except _STREAM_ERRORS as exc:
        raise BundleError(f"cannot read bundle tarball: {exc}", str(path)) from None


def _read_car(stream: IO[bytes], source: str) -> tuple[CID, MemoryBlockstore]:
    """The CAR's root and every block, each checked against its CID."""
    try:
        reader = CarReader(stream, verify=True, source=source)
        store = MemoryBlockstore(reader)
    except CARError as exc:
        raise BundleError(f"bad bundle CAR: {exc.what}", exc.where or source) from None
    except _STREAM_ERRORS as exc:
        raise BundleError(f"cannot read bundle CAR: {exc}", source) from None
    if len(reader.header.roots) != 1:
        raise BundleError(f"bundle CAR must have one root, not {len(reader.header.roots)}", source)
    return reader.header.roots[0], store


def load_bundle(
    path: str | Path,
    network: str = "mainnet",
    *,
    release: str | None = None,
    verify: bool = True,
) -> Bundle:
    """Load one network's bundle from a ``vN.tar.zst`` tarball.

    ``release`` selects a superseded build kept in the same tarball (e.g. ``"v16.0.0"``).
    Every block is hash-checked; with ``verify`` the manifest CID must equal Lotus's, when
    Lotus lists one for this network and version (:attr:`Bundle.verified` says whether it did).
    """
    path = Path(path)
    version = actors_version_of(path)
    network = canonical_network(network)
    for car_network, car_release, stream in _iter_cars(path):
        if car_network != network or car_release != release:
            continue
        source = f"{path}:{network}" + (f"-{release}" if release else "")
        root, store = _read_car(stream, source)
        expected = expected_manifest(network, version, release)
        if verify and expected is not None and expected != root:
            raise ManifestMismatch(expected, root, source)
        manifest = Manifest.from_store(store, root)
        return Bundle(
            manifest=manifest,
            version=version,
            network=network,
            release=release,
            blocks=_wasm_modules(manifest, store, source),
            manifest_blocks=(
                (manifest.cid, _required(store, manifest.cid)),
                (manifest.data_cid, _required(store, manifest.data_cid)),
            ),
            verified=expected is not None and expected == root,
        )
    label = network + (f" ({release})" if release else "")
    raise BundleError(f"no bundle for network {label}", str(path))


def _required(store: MemoryBlockstore, cid: CID) -> bytes:
    data = store.get(cid)
    assert data is not None, "Manifest.from_store has read this block"
    return data


def _wasm_modules(
    manifest: Manifest, store: MemoryBlockstore, source: str
) -> tuple[tuple[CID, bytes], ...]:
    modules: list[tuple[CID, bytes]] = []
    seen: set[CID] = set()
    for name, code in manifest.actors.items():
        if code.codec != RAW or code.mh_code != BLAKE2B_256:
            raise BundleError(f"code CID of {name!r} is not a raw blake2b-256 CID", source)
        data = store.get(code)
        if data is None:
            raise BundleError(f"WASM module of {name!r} ({code}) is missing", source)
        if not data.startswith(WASM_MAGIC):
            raise BundleError(f"block of {name!r} ({code}) is not a WASM module", source)
        if code not in seen:
            seen.add(code)
            modules.append((code, data))
    return tuple(modules)


# -- reverse lookup ---------------------------------------------------------------------------


class ActorType(NamedTuple):
    """What a code CID is: a builtin actor type of one actors version."""

    version: int
    name: str


@dataclass(frozen=True, slots=True)
class IndexedManifest:
    actors_version: int
    network: str
    release: str | None
    manifest: Manifest


class BundleIndex:
    """Every manifest in a folder of tarballs, for looking actor types up by code CID.

    A code CID names one actor type; a few (the ``placeholder`` module, byte-identical from
    actors v10 on) are shared by several versions, and :meth:`actor_type` then answers the
    earliest. :meth:`versions_of` lists them all.
    """

    def __init__(self, manifests: list[IndexedManifest]) -> None:
        self.manifests = tuple(manifests)
        self._types: dict[CID, list[ActorType]] = {}
        for entry in sorted(manifests, key=lambda m: m.actors_version):
            for name, code in entry.manifest.actors.items():
                known = self._types.setdefault(code, [])
                found = ActorType(entry.actors_version, name)
                if found not in known:
                    known.append(found)

    @classmethod
    def scan(cls, actors_dir: str | Path) -> BundleIndex:
        """Read the manifest of every network's CAR in every tarball of ``actors_dir``.

        Only the manifests' DAG-CBOR blocks are kept (and hash-checked); WASM modules are
        streamed past.
        """
        manifests: list[IndexedManifest] = []
        for bundle_file in list_bundles(actors_dir):
            for network, release, stream in _iter_cars(bundle_file.path):
                source = f"{bundle_file.path}:{network}"
                root, store = _manifest_blocks_of(stream, source)
                manifest = Manifest.from_store(store, root)
                manifests.append(
                    IndexedManifest(bundle_file.actors_version, network, release, manifest)
                )
        return cls(manifests)

    def actor_type(self, code: CID) -> ActorType | None:
        """The (earliest) actors version and type name of ``code``; None if no bundle has it."""
        found = self._types.get(code)
        return found[0] if found else None

    def versions_of(self, code: CID) -> tuple[int, ...]:
        """Every actors version whose bundles contain ``code``."""
        return tuple(sorted({t.version for t in self._types.get(code, [])}))

    def manifest(self, actors_version: int, network: str = "mainnet") -> Manifest | None:
        """The current (not superseded) manifest of one network and actors version."""
        network = canonical_network(network)
        for entry in self.manifests:
            if (
                entry.actors_version == actors_version
                and entry.network == network
                and entry.release is None
            ):
                return entry.manifest
        return None


def _manifest_blocks_of(stream: IO[bytes], source: str) -> tuple[CID, MemoryBlockstore]:
    store = MemoryBlockstore()
    try:
        reader = CarReader(stream, verify=False, source=source)
        for cid, data in reader:
            if cid.codec != DAG_CBOR:
                continue
            if not cid.verify(data):
                raise BundleError(f"block bytes do not hash to {cid}", source)
            store.put_keyed(cid, data)
    except CARError as exc:
        raise BundleError(f"bad bundle CAR: {exc.what}", exc.where or source) from None
    except _STREAM_ERRORS as exc:
        raise BundleError(f"cannot read bundle CAR: {exc}", source) from None
    if len(reader.header.roots) != 1:
        raise BundleError(f"bundle CAR must have one root, not {len(reader.header.roots)}", source)
    return reader.header.roots[0], store


@lru_cache(maxsize=4)
def _cached_index(actors_dir: Path) -> BundleIndex:
    return BundleIndex.scan(actors_dir)


def bundle_index(actors_dir: str | Path) -> BundleIndex:
    """The (cached) index of every bundle in ``actors_dir``."""
    return _cached_index(Path(actors_dir).resolve())


def actor_type(code_cid: CID, actors_dir: str | Path) -> ActorType | None:
    """``(actors_version, name)`` of a builtin actor's code CID, over every bundle found."""
    return bundle_index(actors_dir).actor_type(code_cid)
