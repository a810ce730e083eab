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
from reward.errors import RunError
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
    b.silent, b.silent_s, b.peers = {}, 30.0, []
    b.max_requests, b.max_bytes = 50_000, 200 * 1024**2
    b.batches.clear()
    b.files.clear()
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


def batch_then_run(scorer: Scorer, inp: Path, out: Path, **kw: Any) -> BatchReport:
    report = batched(scorer, inp, out, **kw)
    run(score_file(scorer, inp, out))
    return report


def stopped_at_create(monkeypatch: Any, scorer: Scorer, out: Path, created: bool) -> None:
    """A run stopped at its first batch's create, after the upload: with `created` the batch was made but its
    id never written down. The create is the real one again afterwards."""
    from reward.judge.batch_api import BatchAPI

    real = BatchAPI.create

    async def stopped(self: BatchAPI, file_id: str) -> Any:
        if created:
            await real(self, file_id)  # the batch exists, its id never written down
        raise RunError("stopped (injected)")

    monkeypatch.setattr(BatchAPI, "create", stopped)
    with pytest.raises(RunError, match="injected"):
        batched(scorer, EXAMPLES, out)
    monkeypatch.setattr(BatchAPI, "create", real)


@pytest.fixture
def sync_examples(fb: FakeBatchServer, scorers: Any, tmp_path: Path) -> list[dict[str, Any]]:
    """The synchronous run's output on the examples (then the stand-in's counts are cleared)."""
    run(score_file(scorers("sync"), EXAMPLES, tmp_path / "sync.jsonl"))
    fb.reset()
    return without_usage(tmp_path / "sync.jsonl")


def test_a_restarted_run_waits_on_its_batch_and_never_sends_it_again(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    out = tmp_path / "batch.jsonl"
    fb.batch.delay = 60.0
    scorer = scorers("batch")

    async def stopped_mid_batch() -> None:
        task = asyncio.ensure_future(prefill(scorer, EXAMPLES, out, poll_s=0.02))
        while fb.batch.creates == 0 or '"batch_id":null' in _read(state_path(out)):
            await asyncio.sleep(0.02)
        task.cancel()  # as a killed run: the batch stays at the provider, its id beside the output
        with pytest.raises(asyncio.CancelledError):
            await task

    run(stopped_mid_batch())
    saved = json.loads(state_path(out).read_text())
    [first] = [b["batch_id"] for b in saved["batches"]]
    assert fb.batch.creates == 1
    fb.batch.batches[first]["_due"] = 0.0  # the provider finishes it while no run is waiting
    fb.batch.delay = 0.0
    report = batch_then_run(scorer, EXAMPLES, out)
    assert report.batches[0] == first
    assert fb.batch.creates == 2  # the plans' batch was not sent again; only the verdicts' followed
    assert sync_calls(fb) == 0
    assert without_usage(out) == sync_examples


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return '"batch_id":null'


def test_invalid_replies_are_reasked_in_a_follow_up_batch(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    fb.script(
        {"kind": "grade", "content": "Sure! scores: none"},  # fails validation: re-asked with the reason
        {"kind": "condense", "content": None, "refusal": "no (injected)"},  # a refusal: the same request again
    )
    out = tmp_path / "batch.jsonl"
    report = batch_then_run(scorers("batch"), EXAMPLES, out)
    assert fb.batch.creates == 3  # plans, verdicts + the plan re-ask, the verdict re-ask + that rollout's verdict
    reasks = [c for c in fb.state.calls if c["kind"] == "grade" and len(c["messages"]) == 4]
    assert len(reasks) == 1
    assert reasks[0]["messages"][2]["content"] == "Sure! scores: none"
    assert "Your reply was invalid" in reasks[0]["messages"][3]["content"]
    assert report.left == {} and sync_calls(fb) == 0
    assert without_usage(out) == sync_examples


def test_a_reply_still_invalid_after_the_reasks_is_asked_by_the_synchronous_run(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    fb.script({"kind": "grade", "content": "not a verdict"})
    out = tmp_path / "batch.jsonl"
    report = batch_then_run(scorers("batch", max_reasks=0), EXAMPLES, out)
    assert fb.batch.creates == 2  # no re-ask allowed: no third batch
    assert report.left == {}  # an invalid reply is not a batch failure
    assert sync_calls(fb) == 1  # the run asked that one request itself
    assert without_usage(out) == sync_examples


def test_a_failed_batch_is_sent_once_more_then_left_to_the_synchronous_run(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    fb.batch.fail_next = ["failed"]
    report = batch_then_run(scorers("once"), EXAMPLES, tmp_path / "once.jsonl")
    assert fb.batch.creates == 3 and len(report.warnings) == 1 and "failed" in report.warnings[0]
    assert report.left == {} and sync_calls(fb) == 0
    assert without_usage(tmp_path / "once.jsonl") == sync_examples
    needed = report.answered  # every request of the run

    fb.reset()
    fb.batch.creates, fb.batch.fail_next = 0, ["failed", "failed"]
    report = batch_then_run(scorers("twice"), EXAMPLES, tmp_path / "twice.jsonl")
    plans = len(report.left)
    assert plans > 0 and all(cid.startswith("condense-") for cid in report.left)
    assert fb.batch.creates == 2 and len(report.warnings) == 2  # no third try
    assert report.answered == 0 and sync_calls(fb) == needed  # the run asked the plans, then their verdicts
    assert without_usage(tmp_path / "twice.jsonl") == sync_examples


def test_an_expired_batch_keeps_what_it_answered(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    fb.batch.fail_next, fb.batch.expire_after = ["expired"], 3
    report = batch_then_run(scorers("batch"), EXAMPLES, tmp_path / "batch.jsonl")
    assert "expired" in report.warnings[0]
    first = fb.batch.batches[report.batches[0]]
    assert first["status"] == "expired" and first["request_counts"]["completed"] == 3
    assert report.requests - report.answered == first["request_counts"]["failed"] > 0  # resent, answered
    assert sync_calls(fb) == 0
    assert without_usage(tmp_path / "batch.jsonl") == sync_examples


def test_batches_split_at_the_providers_limits(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    fb.batch.max_requests = 5  # the stand-in refuses a bigger file, as a provider does
    report = batch_then_run(scorers("batch"), EXAMPLES, tmp_path / "batch.jsonl", max_requests=5)
    assert len(report.batches) == fb.batch.creates > 2
    assert all(b["request_counts"]["total"] <= 5 for b in fb.batch.batches.values())
    assert without_usage(tmp_path / "batch.jsonl") == sync_examples


def test_a_judge_without_a_batch_api_is_refused_before_anything_is_sent(
    fb: FakeBatchServer, fake_judge: Any, rubric: Rubric, scorers: Any, tmp_path: Path
):
    from reward.judge.base import CallSettings
    from reward.judge.fake.in_process import InProcessFakeJudge

    out = tmp_path / "out.jsonl"
    in_process = Scorer(rubric, InProcessFakeJudge(settings_for(fb)), Store(tmp_path / "c1"))
    with pytest.raises(RunError, match="in-process fake judge has none"):
        batched(in_process, EXAMPLES, out)
    other = CallSettings("anthropic/claude-sonnet-4-5-20250929", 0.0, 512)
    with pytest.raises(RunError, match="'anthropic', which has no OpenAI-style batch API"):
        batched(scorers("anthropic", condense=other, grade=other), EXAMPLES, out)
    no_batches = Scorer(rubric, LiteLLMJudge(settings_for(fake_judge)), Store(tmp_path / "c2"))
    with pytest.raises(RunError, match="does not answer the batch API"):
        batched(no_batches, EXAMPLES, out)  # the plain fake judge: chat completions only
    memory_only = Scorer(rubric, LiteLLMJudge(settings_for(fb)), Store(None))
    with pytest.raises(RunError, match="needs a cache directory"):
        batched(memory_only, EXAMPLES, out)
    assert fake_judge.counts()["total"] == 0 and fb.counts()["total"] == 0 and fb.batch.creates == 0
    assert not out.exists() and not state_path(out).exists()


def test_the_batch_api_key_is_the_judges_or_openais_and_an_own_endpoint_may_have_none(
    fb: FakeBatchServer, rubric: Rubric, scorers: Any, tmp_path: Path, monkeypatch, sync_examples: list[dict[str, Any]]
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    openai_no_key = Scorer(rubric, LiteLLMJudge(settings_for(fb, api_base=None, api_key=None)), Store(tmp_path / "c"))
    with pytest.raises(RunError, match="no OpenAI API key"):
        batched(openai_no_key, EXAMPLES, tmp_path / "none.jsonl")
    assert fb.batch.peers == []  # nothing was sent anywhere
    own_endpoint = scorers("batch", api_key=None)  # a vLLM without --api-key: the SDK's header carries a placeholder
    batch_then_run(own_endpoint, EXAMPLES, tmp_path / "batch.jsonl")
    assert fb.batch.creates == 2 and without_usage(tmp_path / "batch.jsonl") == sync_examples


def test_a_state_file_of_another_endpoint_is_refused(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    out = tmp_path / "out.jsonl"
    state_path(out).write_text(json.dumps({"version": 1, "endpoint": "http://elsewhere/v1", "batches": []}))
    with pytest.raises(RunError, match="sent to http://elsewhere/v1"):
        batched(scorers("batch"), EXAMPLES, out)
    state_path(out).write_text("{not json")
    with pytest.raises(RunError, match="not a batch state file"):
        batched(scorers("batch"), EXAMPLES, out)
    assert fb.batch.creates == 0


def test_the_work_is_priced_at_the_batch_rate(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    from reward.judge.base import CallSettings
    from reward.judge.batch_api import batch_price
    from reward.scoring.dry_run_report import price

    model = "openai/gpt-4.1-2025-04-14"  # priced by litellm, batch prices included; answered by the stand-in
    told: list[str] = []
    call = CallSettings(model, 0.0, 512)
    report = batched(scorers("priced", condense=call, grade=call), EXAMPLES, tmp_path / "o.jsonl", progress=told.append)
    u, (bp, bc), (lp, lc) = report.usage, batch_price(model), price(model)
    assert u.prompt_tokens > 0 and u.completion_tokens > 0 and u.cost_known
    assert u.cost == pytest.approx(u.prompt_tokens * bp + u.completion_tokens * bc)
    assert report.list_cost == pytest.approx(u.prompt_tokens * lp + u.completion_tokens * lc)
    assert u.cost == pytest.approx(report.list_cost * 0.5)
    assert sum(u.calls.values()) == report.answered == report.requests
    assert any(f"batch {report.batches[0]}: " in line and "requests sent" in line for line in told)

    unpriced = batched(scorers("unpriced"), EXAMPLES, tmp_path / "u.jsonl")  # the test model: no price known
    assert not unpriced.usage.cost_known and unpriced.list_cost is None


def test_reference_plans_batch_like_plan_file(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    from reward.scoring.batch import prefill_plans
    from reward.scoring.runner import plan_file

    refs = EXAMPLES.parent / "references.jsonl"
    run(plan_file(scorers("sync"), refs, tmp_path / "sync.jsonl"))
    sent = sync_calls(fb)
    fb.reset()
    scorer = scorers("batch")
    report = run(prefill_plans(scorer, refs, tmp_path / "batch.jsonl", poll_s=0.02))
    assert fb.batch.creates == 1 and report.answered == sent > 0
    run(plan_file(scorer, refs, tmp_path / "batch.jsonl"))
    assert sync_calls(fb) == 0
    assert sorted(read_jsonl(tmp_path / "batch.jsonl"), key=str) == sorted(read_jsonl(tmp_path / "sync.jsonl"), key=str)


def test_settings_the_provider_refuses_stop_before_anything_is_sent(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    from reward.judge.base import CallSettings

    call = CallSettings("openai/o3-mini", 0.0, 512)  # o-series: temperature 1 only, litellm refuses 0
    with pytest.raises(RunError, match="refuses the condense call's settings for o3-mini"):
        batched(scorers("o3", condense=call, grade=call), EXAMPLES, tmp_path / "o.jsonl")
    assert fb.batch.files == {} and fb.batch.creates == 0 and fb.counts()["total"] == 0


@pytest.mark.parametrize("created", [False, True])
def test_a_run_stopped_between_upload_and_create_finds_its_batch(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch, created: bool
):
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    stopped_at_create(monkeypatch, scorer, out, created)
    [entry] = json.loads(state_path(out).read_text())["batches"]
    assert entry["batch_id"] is None and entry["file_id"] in fb.batch.files
    report = batch_then_run(scorer, EXAMPLES, out)
    assert fb.batch.creates == 2  # the plans' batch once (found, or made now), then the verdicts'
    assert fb.batch.batches[report.batches[0]]["input_file_id"] == entry["file_id"]
    assert sync_calls(fb) == 0 and without_usage(out) == sync_examples
