"""The conformance runner and ``fvm-node conformance`` over the real mainnet vectors.

``conformance_baseline.json`` records what the runner measured on the corpus (which vectors
pass); the corpus test requires at least that many passes, every recorded vector among them,
and no skip other than ref-fvm's ``DisputeWindowedPoSt/Ok``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fvm.conformance.runner import (
    SECP_SIGNATURE_OVERHEAD,
    BundleSource,
    Status,
    Summary,
    raw_length,
    receipt_mismatch,
    run_paths,
    run_variant,
    skip_reason,
)
from fvm.conformance.vector import ExpectedReceipt, load_vector
from fvm.executor import ApplyRet
from fvm.invocation import UnavailableActorInvoker
from fvm.message import Message
from fvm.receipt import Receipt
from node.cli import main

BASELINE = Path(__file__).with_name("conformance_baseline.json")
ACCOUNT_SEND = "extracted/0001-shark-01/fil_9_account/Send/Ok/ext-0001-fil_9_account-Send-Ok-1.json"
MINER_SEND = (
    "extracted/0002-hygge-01/fil_10_storageminer/Send/Ok/"
    "ext-0002-fil_10_storageminer-Send-Ok-1.json"
)
INIT_EXEC = "extracted/0001-shark-01/fil_9_init/Exec/Ok/ext-0001-fil_9_init-Exec-Ok-1.json"
DISPUTE_OK = (
    "extracted/0002-hygge-01/fil_10_storageminer/DisputeWindowedPoSt/Ok/"
    "ext-0002-fil_10_storageminer-DisputeWindowedPoSt-Ok-1.json"
)


def _baseline() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(BASELINE.read_text())
    return loaded


@pytest.mark.slow
def test_whole_corpus_passes_every_vector_the_baseline_records(
    vectors_dir: Path, actors_dir: Path
) -> None:
    baseline = _baseline()
    summary = Summary()
    passed: set[str] = set()
    for outcome in run_paths([vectors_dir], actors_dir):
        summary.add(outcome)
        relative = outcome.path.relative_to(vectors_dir).as_posix()
        if outcome.status is Status.OK:
            passed.add(relative)
        elif outcome.status is Status.SKIP:
            assert "/DisputeWindowedPoSt/Ok/" in relative, relative
        else:
            assert outcome.reason, relative
    assert summary.passed >= baseline["passed"]
    assert set(baseline["vectors"]) <= passed
    assert summary.skipped == baseline["skipped"]
    assert summary.passed + summary.failed + summary.skipped == 309
    # Every message applied was timed, and gas was counted for them.
    assert summary.gas_used > 0 and summary.seconds > 0


def test_vector_needing_actor_code_runs_it_in_webassembly(
    vectors_dir: Path, actors_dir: Path
) -> None:
    (outcome,) = run_paths([vectors_dir / INIT_EXEC], actors_dir)
    assert (outcome.status, outcome.reason) == (Status.OK, "")
    assert outcome.messages_applied == 1
    assert outcome.gas_used == load_vector(vectors_dir / INIT_EXEC).receipts[0].gas_used


def test_without_actor_code_a_vector_needing_it_fails_with_the_reason(
    vectors_dir: Path, actors_dir: Path
) -> None:
    (outcome,) = run_paths([vectors_dir / INIT_EXEC], actors_dir, UnavailableActorInvoker())
    assert outcome.status is Status.FAIL
    assert outcome.reason.startswith("actor code execution not available: method 2 of f01 (init")
    assert outcome.messages_applied == 0


def test_only_dispute_windowed_post_ok_is_skipped(vectors_dir: Path) -> None:
    assert skip_reason(vectors_dir / DISPUTE_OK) is not None
    assert skip_reason(vectors_dir / INIT_EXEC) is None
    assert skip_reason(vectors_dir / INIT_EXEC, load_vector(vectors_dir / INIT_EXEC)) is None


def test_wrong_post_root_is_reported_with_an_actor_level_diff(
    vectors_dir: Path, actors_dir: Path
) -> None:
    vector = load_vector(vectors_dir / ACCOUNT_SEND)
    # Pretend the chain recorded no change at all: the diff must show what the send changed.
    unchanged = replace(vector, post_state_root=vector.pre_state_root)
    message = Message.decode(vector.messages[0].data)
    outcome = run_variant(
        unchanged, vector.variants[0], vector.blockstore(), BundleSource(actors_dir)
    )
    assert outcome.status is Status.FAIL
    assert outcome.reason.startswith(f"wrong post root cid; expected {vector.pre_state_root}")
    details = "\n".join(outcome.details)
    assert f"sender {message.from_} actor state differs:" in details
    assert f"  sequence: actual {message.sequence + 1} != expected {message.sequence}" in details
    assert "builtin f02 actor state differs:" in details
    assert outcome.gas_used == vector.receipts[0].gas_used


def test_missing_bundle_fails_the_vector(vectors_dir: Path) -> None:
    (outcome,) = run_paths([vectors_dir / ACCOUNT_SEND], None)
    assert outcome.status is Status.FAIL
    assert "no builtin-actors folder" in outcome.reason


def test_secp_messages_are_charged_for_their_signature(vectors_dir: Path) -> None:
    secp = load_vector(vectors_dir / MINER_SEND)
    message = Message.decode(secp.messages[0].data)
    assert message.from_.protocol.name == "SECP256K1"
    assert raw_length(message, secp.messages[0].data) == (
        len(secp.messages[0].data) + SECP_SIGNATURE_OVERHEAD
    )
    bls = load_vector(vectors_dir / ACCOUNT_SEND)
    message = Message.decode(bls.messages[0].data)
    assert raw_length(message, bls.messages[0].data) == len(bls.messages[0].data)


def test_receipt_comparison_reports_exit_code_before_return_and_gas() -> None:
    expected = ExpectedReceipt(exit_code=0, return_data=b"\x01", gas_used=10)
    all_wrong = ApplyRet(Receipt(16, b"\x02", 11))
    assert (mismatch := receipt_mismatch(expected, all_wrong, 0)) is not None
    assert mismatch.startswith("exit code of msg 0 did not match; expected: 0, got 16")
    wrong_return = ApplyRet(Receipt(0, b"\x02", 11))
    assert (mismatch := receipt_mismatch(expected, wrong_return, 0)) is not None
    assert mismatch.startswith("return data of msg 0 did not match")
    wrong_gas = ApplyRet(Receipt(0, b"\x01", 11))
    assert receipt_mismatch(expected, wrong_gas, 0) == (
        "gas used of msg 0 did not match; expected: 10, got 11"
    )
    assert receipt_mismatch(expected, ApplyRet(Receipt(0, b"\x01", 10)), 0) is None


def test_cli_reports_each_vector_then_throughput_and_totals(
    vectors_dir: Path, actors_dir: Path
) -> None:
    paths = [str(vectors_dir / p) for p in (ACCOUNT_SEND, MINER_SEND, INIT_EXEC, DISPUTE_OK)]
    result = CliRunner().invoke(main, ["conformance", "--actors", str(actors_dir), *paths])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("OK ") and lines[0].endswith(ACCOUNT_SEND)
    assert lines[1].startswith("OK ") and lines[1].endswith(MINER_SEND)
    assert lines[2].startswith("OK ") and lines[2].endswith(INIT_EXEC)
    assert lines[3].startswith("SKIP ") and DISPUTE_OK in lines[3]
    gas = sum(
        load_vector(vectors_dir / path).receipts[0].gas_used
        for path in (ACCOUNT_SEND, MINER_SEND, INIT_EXEC)
    )
    assert lines[4].startswith(f"execution: {gas} gas in ")
    assert lines[4].endswith(" gas/s")
    assert lines[5] == "3 passed, 0 failed, 1 skipped"
    assert len(lines) == 6


def test_cli_exits_zero_when_nothing_fails(vectors_dir: Path, actors_dir: Path) -> None:
    result = CliRunner().invoke(
        main, ["conformance", "--actors", str(actors_dir), str(vectors_dir / ACCOUNT_SEND)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "1 passed, 0 failed, 0 skipped"


def test_cli_fails_with_the_first_mismatch_when_a_vector_expects_other_gas(
    vectors_dir: Path, actors_dir: Path, tmp_path: Path
) -> None:
    doc = json.loads((vectors_dir / INIT_EXEC).read_text())
    recorded = doc["postconditions"]["receipts"][0]["gas_used"]
    doc["postconditions"]["receipts"][0]["gas_used"] = recorded + 1
    tampered = tmp_path / "init-exec-expecting-one-more-gas.json"
    tampered.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["conformance", "--actors", str(actors_dir), str(tampered)])
    assert result.exit_code == 1, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("FAIL ")
    assert "gas" in first and str(recorded) in first and str(recorded + 1) in first
    assert result.output.splitlines()[-1] == "0 passed, 1 failed, 0 skipped"
