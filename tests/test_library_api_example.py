"""The README's *Library API* example, run as written against the real vector it names.

The test reads the first ``python`` code block under the README's ``## Library API`` heading
and executes it unchanged (pointing ``FVM_NODE_SHARED`` at the shared data), so the documented
example cannot drift from the library: if a name it imports moves or a call changes, this test
fails. The block itself asserts the recorded receipt and post-state root; this test checks
what it leaves behind as well.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fvm.conformance.vector import load_vector
from fvm.executor import ApplyRet
from fvm.receipt import ExitCode

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Library API"
EXAMPLE_VECTOR = (
    "extracted/0002-hygge-01/fil_10_multisig/Propose/Ok/ext-0002-fil_10_multisig-Propose-Ok-1.json"
)


def library_api_example() -> str:
    """The first python code block of the README's Library API section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else len(text)]
    match = re.search(r"^```python\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert match is not None, "the Library API section has no python example"
    return match.group(1)


def test_the_section_says_loudly_that_accept_all_verifies_nothing() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) : text.index("\n## ", text.index(SECTION) + 1)]
    assert "AcceptAllProofVerifier VERIFIES NOTHING" in library_api_example()
    assert "**`AcceptAllProofVerifier` verifies nothing**" in " ".join(section.split())


def test_the_readme_example_replays_the_vector_to_its_recorded_state(
    shared_dir: Path, vectors_dir: Path, actors_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FVM_NODE_SHARED", str(shared_dir))
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(library_api_example(), str(README), "exec"), namespace)

    vector = load_vector(vectors_dir / EXAMPLE_VECTOR)
    assert namespace["root"] == vector.post_state_root
    rets: list[ApplyRet] = namespace["rets"]
    explicit, implicit = rets
    (expected,) = vector.receipts
    assert (
        explicit.receipt.exit_code,
        explicit.receipt.return_data,
        explicit.receipt.gas_used,
    ) == (expected.exit_code, expected.return_data, expected.gas_used)
    # The proposal returns [txn id, applied, exit code, return]: a real, non-empty value.
    assert explicit.receipt.return_data == bytes.fromhex("84190216f40040")
    assert explicit.events == () and explicit.receipt.events_root is None
    assert explicit.failure_info is None
    paid = (
        explicit.base_fee_burn
        + explicit.over_estimation_burn
        + explicit.miner_tip
        + explicit.refund
    )
    message = namespace["Message"].decode(vector.messages[0].data)
    assert paid == message.gas_fee_cap * message.gas_limit
    # The implicit stand-in: no code ran, no gas, no fees.
    assert implicit.receipt.exit_code == ExitCode.OK
    assert implicit.receipt.gas_used == 0
    assert (implicit.base_fee_burn, implicit.miner_tip, implicit.refund) == (0, 0, 0)
    assert namespace["machine"].context.network.chain_id == 314
