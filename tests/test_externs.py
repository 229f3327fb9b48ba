"""Conformance externs replay the randomness a real vector recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from fvm.conformance.externs import FALLBACK_RANDOMNESS, ReplayingExterns
from fvm.conformance.vector import find_vectors, load_vector
from fvm.externs import ExternsError
from fvm.randomness import draw_randomness


def _vector_with_randomness(vectors_dir: Path) -> Path:
    for path in find_vectors(vectors_dir):
        if "ProveCommitAggregate" in str(path):
            return path
    raise AssertionError("no ProveCommitAggregate vector")


def test_replaying_externs_serve_each_recorded_answer(vectors_dir: Path) -> None:
    vector = load_vector(_vector_with_randomness(vectors_dir))
    externs = ReplayingExterns(vector.randomness)
    chain = [m for m in vector.randomness if m.kind == "chain"]
    beacon = [m for m in vector.randomness if m.kind == "beacon"]
    assert chain and beacon
    first_chain: dict[int, bytes] = {}
    for match in chain:
        first_chain.setdefault(match.epoch, match.ret)
    for epoch, ret in first_chain.items():
        assert externs.get_chain_randomness(epoch) == ret
        assert len(ret) == 32
    assert externs.get_beacon_randomness(beacon[0].epoch) == beacon[0].ret


def test_replaying_externs_fall_back_like_the_reference_runner(vectors_dir: Path) -> None:
    vector = load_vector(_vector_with_randomness(vectors_dir))
    externs = ReplayingExterns(vector.randomness)
    assert externs.get_chain_randomness(-12345) == FALLBACK_RANDOMNESS
    assert externs.get_beacon_randomness(-12345) == FALLBACK_RANDOMNESS
    with pytest.raises(ExternsError):
        externs.get_tipset_cid(1)


def test_draw_randomness_refuses_a_base_that_is_not_32_bytes() -> None:
    with pytest.raises(ValueError):
        draw_randomness(b"short", 5, 100, b"")
    assert len(draw_randomness(bytes(32), 5, 100, b"entropy")) == 32
