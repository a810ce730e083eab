"""Batch scoring (`reward.scoring.batch.prefill`) against the batch stand-in: the same output as a synchronous
run, resumed batches never sent twice, re-asks in a follow-up batch, failed batches, judges without a batch API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reward.cache.disk import Store
from reward.judge.fake.batch_server import FakeBatchServer
from reward.judge.litellm_judge import LiteLLMJudge
from reward.rubric.load import Rubric
from reward.scoring.batch import BatchReport, prefill
from reward.scoring.batch_state import state_path
from reward.scoring.runner import score_file
from reward.scoring.scorer import Scorer
from tests.conftest import EXAMPLES, group, read_jsonl, rollout, settings_for


@pytest.fixture(scope="module")
def batch_server() -> Iterator[FakeBatchServer]:
    with FakeBatchServer() as fb:
        yield fb


@pytest.fixture
def fb(batch_server: FakeBatchServer) -> Iterator[FakeBatchServer]:
    batch_server.reset()
    b = batch_server.batch
    b.delay, b.fail_next, b.expire_after, b.creates = 0.0, [], 0, 0
    b.max_requests, b.max_bytes = 50_000, 200 * 1024**2
    yield batch_server
    batch_server.reset()


@pytest.fixture
def scorers(fb: FakeBatchServer, rubric: Rubric, tmp_path: Path) -> Iterator[Any]:
    stores: list[Store] = []

    def make(name: str, **overrides: Any) -> Scorer:
        store = Store(tmp_path / f"cache-{name}")
        stores.append(store)
        return Scorer(rubric, LiteLLMJudge(settings_for(fb, **overrides)), store)

    yield make
    for s in stores:
        s.close()


def sync_calls(fb: FakeBatchServer) -> int:
    """Chat completions the stand-in answered synchronously (not in a batch)."""
    with fb.state.lock:
        return sum(1 for c in fb.state.calls if not c.get("batch"))


def without_usage(path: Path) -> list[dict[str, Any]]:
    """Scored lines, less what differs by construction: the usage of the calls this run made itself."""
    rows = read_jsonl(path)
    for r in rows:
        r.pop("usage", None)
    return sorted(rows, key=lambda r: r["group_id"])


def run(coro: Any) -> Any:
    async def main() -> Any:
        try:
            return await coro
        finally:
            # litellm's clients of this loop (imported already, by reward.judge.llm's rules)
            from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

            await close_litellm_async_clients()

    return asyncio.run(main())


def batched(scorer: Scorer, inp: Path, out: Path, **kw: Any) -> BatchReport:
    return run(prefill(scorer, inp, out, poll_s=0.02, **kw))


def test_batch_then_run_writes_what_a_synchronous_run_writes(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    sync_out, batch_out = tmp_path / "sync.jsonl", tmp_path / "batch.jsonl"
    run(score_file(scorers("sync"), EXAMPLES, sync_out))
    sent_sync = sync_calls(fb)
    assert sent_sync > 0
    fb.reset()
    scorer = scorers("batch")
    report = batched(scorer, EXAMPLES, batch_out)
    assert fb.batch.creates == 2  # plans, then verdicts
    assert report.requests == report.answered == sent_sync  # every call the synchronous run made, once
    assert report.left == {} and report.warnings == []
    assert sync_calls(fb) == 0
    run(score_file(scorer, EXAMPLES, batch_out))
    assert sync_calls(fb) == 0  # everything was cached
    assert without_usage(batch_out) == without_usage(sync_out)
    assert not state_path(batch_out).exists()


def test_k_samples_batch_like_the_synchronous_run(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(group("g1")) + "\n" + json.dumps(group("g2", [rollout("a"), rollout("b")])) + "\n")
    run(score_file(scorers("sync", samples=3), inp, tmp_path / "sync.jsonl"))
    sent = sorted((c["kind"], -1 if c["seed"] is None else c["seed"]) for c in fb.state.calls)
    assert len({s for k, s in sent if k == "grade"}) == 3  # three samples, three seeds
    fb.reset()
    scorer = scorers("batch", samples=3)
    batched(scorer, inp, tmp_path / "batch.jsonl")
    assert sorted((c["kind"], -1 if c["seed"] is None else c["seed"]) for c in fb.state.calls) == sent
    run(score_file(scorer, inp, tmp_path / "batch.jsonl"))
    assert sync_calls(fb) == 0
    assert without_usage(tmp_path / "batch.jsonl") == without_usage(tmp_path / "sync.jsonl")
