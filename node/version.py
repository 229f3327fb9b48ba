"""The installed fvm-node version, for the start-up log and the ``build_info`` metric."""

from __future__ import annotations

import importlib.metadata


def node_version() -> str:
    """The distribution's version, or ``unknown`` when running from an uninstalled tree."""
    try:
        return importlib.metadata.version("fvm-node")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
