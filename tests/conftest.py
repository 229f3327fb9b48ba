"""Shared fixtures: where the real data in ``../shared`` lives.

The folder is found at ``$FVM_NODE_SHARED`` or ``../shared`` beside the project. When it is
missing, tests that need it are skipped with a reason locally, and *fail* under CI (``CI`` set),
so a missing folder never turns into a silent pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fvm.bundle import Bundle, load_bundle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FVM_NODE_SHARED", PROJECT_ROOT.parent / "shared"))


def require_shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        message = f"real data not found: {path} (set FVM_NODE_SHARED)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require_shared(".")


@pytest.fixture(scope="session")
def mainnet_genesis() -> Path:
    return require_shared("genesis/mainnet.car.zst")


@pytest.fixture(scope="session")
def calibnet_genesis() -> Path:
    return require_shared("genesis/calibnet.car.zst")


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return require_shared("test-vectors")


@pytest.fixture(scope="session")
def actors_dir() -> Path:
    return require_shared("actors")


@pytest.fixture(scope="session")
def devnet_bundle(actors_dir: Path) -> Bundle:
    """The v10 *devnet* builtin-actors bundle the devnet runs (network version 18), loaded and
    hash-checked once per test session."""
    return load_bundle(actors_dir / "v10.tar.zst", network="devnet")
