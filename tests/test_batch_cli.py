"""`reward score --batch` and `reward plans --batch`: the batch round trips, then the run from the cache, with the
same output as a synchronous run and no synchronous judge call; refusals before anything is sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward.judge.fake.batch_server import FakeBatchServer
from tests.conftest import EXAMPLES, TEST_MODEL, read_jsonl, run_cli


@pytest.fixture
def fb() -> Iterator[FakeBatchServer]:
    with FakeBatchServer() as server:
        yield server


def env_for(fb: FakeBatchServer, cache: Path) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "REWARD_JUDGE_MODEL": TEST_MODEL,
        "REWARD_JUDGE_API_BASE": fb.api_base,
        "REWARD_JUDGE_API_KEY": "sk-test",
        "REWARD_CACHE_DIR": str(cache),
        "COLUMNS": "200",
    }


def sync_calls(fb: FakeBatchServer) -> int:
    with fb.state.lock:
        return sum(1 for c in fb.state.calls if not c.get("batch"))


def without_usage(path: Path) -> list[dict[str, Any]]:
    rows = read_jsonl(path)
    for r in rows:
        r.pop("usage", None)
    return sorted(rows, key=lambda r: r["group_id"])


def test_score_batch_writes_what_a_synchronous_run_writes_without_a_synchronous_call(fb, tmp_path: Path):
    sync = tmp_path / "sync.jsonl"
    run_cli("score", EXAMPLES, "-o", sync, "--no-progress", env=env_for(fb, tmp_path / "c1"))
    paid = sync_calls(fb)
    fb.reset()
    out = tmp_path / "batch.jsonl"
    ran = run_cli(
        "score", EXAMPLES, "-o", out, "--batch", "--batch-poll", "0.05", "--no-progress",
        env=env_for(fb, tmp_path / "c2"),
    )  # fmt: skip
    assert sync_calls(fb) == 0 and fb.batch.creates >= 2  # plans, then verdicts
    assert f"batch: {paid} requests in {fb.batch.creates} batch(es), {paid} answered" in ran.stderr
    assert without_usage(out) == without_usage(sync)
    assert not (tmp_path / "batch.jsonl.batches.json").exists()  # done: no pending batch kept


def test_plans_batch_writes_the_synchronous_plans(fb, tmp_path: Path):
    refs = EXAMPLES.parent / "references.jsonl"
    run_cli("plans", refs, "-o", tmp_path / "sync.jsonl", "--no-progress", env=env_for(fb, tmp_path / "c1"))
    fb.reset()
    out = tmp_path / "batch.jsonl"
    run_cli(
        "plans", refs, "-o", out, "--batch", "--batch-poll", "0.05", "--no-progress", env=env_for(fb, tmp_path / "c2")
    )
    assert sync_calls(fb) == 0 and fb.batch.creates == 1
    assert sorted(read_jsonl(out), key=str) == sorted(read_jsonl(tmp_path / "sync.jsonl"), key=str)


def test_a_judge_without_a_batch_api_is_refused_before_anything_is_sent(fb, tmp_path: Path):
    out = tmp_path / "o.jsonl"
    env = {**env_for(fb, tmp_path / "c"), "REWARD_CACHE_DIR": "none"}  # a memory-only cache cannot keep answers
    ran = run_cli("score", EXAMPLES, "-o", out, "--batch", "--no-progress", env=env, check=False)
    assert ran.returncode == 2 and "cache" in ran.stderr
    assert fb.counts()["total"] == 0 and fb.batch.creates == 0 and fb.batch.files == {}


def test_score_batch_spends_the_budget_and_the_summary_counts_it(fb, tmp_path: Path):
    env = {**env_for(fb, tmp_path / "c"), "REWARD_JUDGE_MODEL": "openai/gpt-4o-mini"}  # priced, batch price too
    out = tmp_path / "batch.jsonl"
    ran = run_cli(
        "score", EXAMPLES, "-o", out, "--batch", "--batch-poll", "0.05", "--no-progress", "--max-cost", "1",
        env=env,
    )  # fmt: skip
    [batch_cost] = re.findall(r"\$(\d+\.\d{4}) at the batch price", ran.stderr)
    assert float(batch_cost) > 0 and sync_calls(fb) == 0
    assert f"${batch_cost} spent of $1.0000" in ran.stdout + ran.stderr  # the batches' (nothing else ran)


def test_a_logprob_rubric_batches_the_logprobs_the_synchronous_run_asks_for(fb, tmp_path: Path):
    """The batch lines ask for the score tokens' logprobs as the synchronous calls do: the same expected scores,
    marked as such, never the written values in their place."""
    lp = ("--set", "judge.grade.logprobs=true", "--no-progress")
    sync = tmp_path / "sync.jsonl"
    run_cli("score", EXAMPLES, "-o", sync, *lp, env=env_for(fb, tmp_path / "c1"))
    fb.reset()
    out = tmp_path / "batch.jsonl"
    run_cli("score", EXAMPLES, "-o", out, *lp, "--batch", "--batch-poll", "0.05", env=env_for(fb, tmp_path / "c2"))
    assert sync_calls(fb) == 0
    graded = [r for g in read_jsonl(out) for r in g["rollouts"] if r["status"] == "ok"]
    assert graded and all(r["scores_from"] == "logprobs" for r in graded)
    assert without_usage(out) == without_usage(sync)
