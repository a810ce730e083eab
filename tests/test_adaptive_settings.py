"""Sampling settings around `--samples auto`: resuming a run with another --resample-condense is refused (one
output file, one basis) whenever it matters (K > 1 or auto), and max_samples, which only auto reads, never stops
a fixed-K run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reward.cache.disk import Store
from reward.errors import ConfigError, RunError
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.rubric.load import load_rubric
from reward.scoring.build import judge_settings
from reward.scoring.runner import foreign_reason, score_file
from reward.scoring.scorer import Scorer
from tests.conftest import group, rollout, step

RUBRIC = load_rubric("execution_subagent")


def _scorer(tmp: Path, samples: Any, resample: bool) -> Scorer:
    settings = judge_settings(RUBRIC, samples=samples, max_samples=4, resample_condense=resample)
    return Scorer(RUBRIC, InProcessFakeJudge(settings), Store(tmp))


@pytest.mark.parametrize("samples", [2, "auto"])
def test_resuming_with_another_resample_condense_is_refused(tmp_path, samples):
    source = tmp_path / "in.jsonl"
    lines = [
        group(f"g{j}", rollouts=[rollout(f"r{i}", steps=[step(command=f"pytest t{j}{i}.py")]) for i in range(3)])
        for j in range(2)
    ]
    source.write_text(json.dumps(lines[0]) + "\n")
    out = tmp_path / "out.jsonl"
    first = _scorer(tmp_path / "c", samples, resample=False)
    try:
        asyncio.run(score_file(first, source, out))
    finally:
        first.store.close()
    source.write_text("".join(json.dumps(g) + "\n" for g in lines))
    again = _scorer(tmp_path / "c", samples, resample=True)
    try:
        with pytest.raises(RunError, match="resample_condense False, this run uses True"):
            asyncio.run(score_file(again, source, out))
    finally:
        again.store.close()
    assert len(out.read_text().splitlines()) == 1  # nothing mixed in


def test_resample_condense_says_nothing_with_one_sample(tmp_path):
    one = _scorer(tmp_path, 1, resample=True)  # one sample condenses once: the basis records False
    try:
        assert foreign_reason({"basis": {"samples": 1, "resample_condense": False}}, one) is None
        assert foreign_reason({"basis": {"samples": 1}}, one) is None  # an older line says nothing
    finally:
        one.store.close()


def test_max_samples_only_matters_to_auto(monkeypatch):
    monkeypatch.setenv("REWARD_JUDGE_MAX_SAMPLES", "1")
    assert judge_settings(RUBRIC, samples=3).samples == 3
    assert judge_settings(RUBRIC, samples=1).samples == 1
    with pytest.raises(ConfigError, match="max_samples must be at least 2, got 1"):
        judge_settings(RUBRIC, samples="auto")
