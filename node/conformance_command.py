"""``fvm-node conformance PATH...``: run conformance vectors and report like ref-fvm's runner.

One line per vector variant (``OK``, ``FAIL`` with the first mismatch, ``SKIP`` with the
reason), the actor-level state diff under a failure whose post-state root differs, then the
execution throughput (message application only, not CAR or bundle loading nor compiling actor
code) and the totals. The runner itself is :mod:`fvm.conformance.runner`; unless told otherwise
it runs actor code in WebAssembly, compiled modules cached in the module cache's default folder.

Builtin-actors bundles come from ``--actors``; without it, from ``$FVM_NODE_SHARED/actors``,
else the nearest ``actors`` folder beside a parent of the first path (the layout of the shared
data: ``shared/test-vectors`` and ``shared/actors``), else the node's own bundle search path
(:func:`config.bundles.actors_search_path`), so vectors kept anywhere find ``../shared/actors``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from config.bundles import actors_search_path
from fvm.conformance.runner import Status, Summary, VariantOutcome, run_paths
from fvm.invocation import ActorInvoker

ACTORS_FOLDER = "actors"


def default_actors_dir(paths: Sequence[Path]) -> Path | None:
    """Where bundles are when ``--actors`` is not given (None if nowhere)."""
    shared = os.environ.get("FVM_NODE_SHARED")
    if shared:
        candidate = Path(shared) / ACTORS_FOLDER
        if candidate.is_dir():
            return candidate
    if paths:
        for parent in Path(paths[0]).resolve().parents:
            candidate = parent / ACTORS_FOLDER
            if candidate.is_dir() and any(candidate.glob("v*.tar.zst")):
                return candidate
    for candidate in actors_search_path():
        if candidate.is_dir() and any(candidate.glob("v*.tar.zst")):
            return candidate
    return None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def outcome_lines(outcome: VariantOutcome) -> list[str]:
    """The report lines of one outcome: the status line (naming the variant when the vector
    has several), then any state diff, indented."""
    label = _display(outcome.path)
    if outcome.variant_count > 1:
        label = f"{label} | {outcome.variant}"
    line = f"{outcome.status.value} {label}"
    if outcome.status is not Status.OK and outcome.reason:
        line = f"{line}: {outcome.reason}"
    return [line, *(f"    {detail}" for detail in outcome.details)]


def summary_lines(summary: Summary) -> list[str]:
    return [
        f"execution: {summary.gas_used} gas in {summary.seconds:.3f} s = "
        f"{summary.gas_per_second:.0f} gas/s",
        f"{summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped",
    ]


def run_conformance(
    paths: Sequence[Path],
    actors_dir: Path | None,
    echo: Callable[[str], None],
    invoker: ActorInvoker | None = None,
) -> Summary:
    """Run the vectors under ``paths``, printing each outcome through ``echo`` as it comes."""
    summary = Summary()
    for outcome in run_paths(list(paths), actors_dir, invoker):
        summary.add(outcome)
        for line in outcome_lines(outcome):
            echo(line)
    for line in summary_lines(summary):
        echo(line)
    return summary
