"""Batch scoring when things go wrong or get long: a malformed line in a batch's output (a failed request, never a
crash, also on restart), the last batch always read (and `left` saying what was not), `--samples auto` sending
exactly the synchronous run's requests, and the judge budget (`--max-cost`) holding the batches too: what it holds
back waits for a later batch, what can never fit is left to the synchronous run, which refuses it too."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import reward.judge.fake.batch_server as batch_server_module
from reward.judge.base import CallSettings
from reward.judge.budget import budget_status, set_max_cost
from reward.judge.fake.batch_server import FakeBatchServer
from reward.judge.fake.replies import FakeNoise
from reward.scoring.batch import prefill
from reward.scoring.batch_state import state_path
from reward.scoring.runner import score_file
from tests.conftest import EXAMPLES, read_jsonl
from tests.test_batch import (
    _read,
    batch_server,
    batch_then_run,
    batched,
    fb,
    run,
    scorers,
    sync_calls,
    sync_examples,
    without_usage,
)

__all__ = ["batch_server", "fb", "scorers", "sync_examples"]  # test_batch's fixtures, used here
PRICED = "openai/gpt-4o-mini"  # priced by litellm (batch prices too), answered by the stand-in
EVERY_REQUEST = 44  # the examples' plans and verdicts


def corrupt(monkeypatch: pytest.MonkeyPatch, times: int | None) -> list[str]:
    """The stand-in writes the first request it answers with a body that is no completion (`created` not a
    number), `times` times (None: always). Returns that request's id once known."""
    real = batch_server_module._answer_line
    target: list[str] = []

    def answer(judge: Any, line: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        ok, out = real(judge, line)
        if ok and not target:
            target.append(line["custom_id"])
        if ok and line["custom_id"] == target[0] and (times is None or len(target) <= times):
            out["response"]["body"]["created"] = "not-a-number"
            target.append(line["custom_id"])
        return ok, out

    monkeypatch.setattr(batch_server_module, "_answer_line", answer)
    return target


def test_a_malformed_line_is_resent_and_a_restart_reads_it_without_crashing(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch
):
    out = tmp_path / "batch.jsonl"
    fb.batch.delay = 60.0
    scorer = scorers("batch")

    async def stopped_mid_batch() -> None:  # a killed run: its batch at the provider, its id beside the output
        task = asyncio.ensure_future(prefill(scorer, EXAMPLES, out, poll_s=0.02))
        while fb.batch.creates == 0 or '"batch_id":null' in _read(state_path(out)):
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(stopped_mid_batch())
    [first] = [b["batch_id"] for b in json.loads(state_path(out).read_text())["batches"]]
    fb.batch.batches[first]["_due"], fb.batch.delay = 0.0, 0.0
    bad = corrupt(monkeypatch, times=1)  # the restarted run reads an output file with one malformed line
    report = batch_then_run(scorer, EXAMPLES, out)
    assert bad and report.batches[0] == first
    [warning] = report.warnings
    assert (
        "malformed completion" in warning and "ValidationError" in warning and "1 request(s) sent once more" in warning
    )
    assert report.left == {} and sync_calls(fb) == 0  # sent once more in a batch, answered there
    assert without_usage(out) == sync_examples
    assert not state_path(out).exists()


def test_a_line_malformed_every_time_is_left_to_the_synchronous_run(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch
):
    bad = corrupt(monkeypatch, times=None)
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    report = batched(scorer, EXAMPLES, out)
    assert list(report.left) == [bad[0]] and "malformed completion" in report.left[bad[0]]
    assert report.answered == report.requests - 2  # the bad line, twice
    monkeypatch.undo()  # the synchronous run's answer is a good one
    run(score_file(scorer, EXAMPLES, out))
    assert without_usage(out) == sync_examples


def request_ids(calls: list[dict[str, Any]]) -> Counter[tuple[str, Any, str]]:
    """The requests the stand-in answered: kind, seed and the conversation, counted."""
    digest = lambda m: hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()  # noqa: E731
    return Counter((c["kind"], c["seed"], digest(c["messages"])) for c in calls)


def test_samples_auto_batches_exactly_the_synchronous_runs_requests(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(fb.state, "noise", FakeNoise(sd=1.5))  # unsure orders: several rounds of extra samples
    run(score_file(scorers("sync", samples=1, max_samples=4), EXAMPLES, tmp_path / "sync.jsonl"))
    sent = request_ids(fb.state.calls)
    rounds = [g["sampling"] for g in read_jsonl(tmp_path / "sync.jsonl")]
    assert all(s["spent"] > len(s["per_rollout"]) for s in rounds)  # extra samples were drawn, round after round
    fb.reset()
    scorer = scorers("batch", samples=1, max_samples=4)
    report = batch_then_run(scorer, EXAMPLES, tmp_path / "batch.jsonl")
    assert report.requests == report.answered == sum(sent.values())
    assert request_ids(fb.state.calls) == sent  # the same requests, none a guess the run never makes
    assert sync_calls(fb) == 0 and report.left == {}
    assert without_usage(tmp_path / "batch.jsonl") == without_usage(tmp_path / "sync.jsonl")


def test_the_last_batch_is_read_and_left_says_what_was_not_sent(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, monkeypatch
):
    # failed batches double the passes a run needs: every batch sent is still read into the cache
    monkeypatch.setattr(fb.state, "noise", FakeNoise(sd=1.5))
    fb.batch.fail_next = ["failed", "completed"] * 3
    scorer = scorers("auto", samples=1, max_samples=4, max_reasks=0)
    report = batch_then_run(scorer, EXAMPLES, tmp_path / "auto.jsonl")
    assert len(report.warnings) == 3 and report.left == {}
    assert sync_calls(fb) == 0  # nothing the batches paid for is asked again

    # at the pass limit, what is still unanswered is not sent (nobody would read it) and listed as left
    import reward.scoring.batch as batch_module

    monkeypatch.setattr(batch_module, "_stages", lambda scorer, rollouts: 1)  # limit: 2 x 1 x 1 + 1 = 3 passes
    fb.reset()
    fb.batch.creates, fb.batch.fail_next = 0, ["completed", "failed"]
    report = batch_then_run(scorers("limited", max_reasks=0), EXAMPLES, tmp_path / "limited.jsonl")
    assert report.passes == 3 and fb.batch.creates == 2  # plans, verdicts (failed); the resend never made
    assert len(report.left) > 0 and all(cid.startswith("grade-") for cid in report.left)
    assert all("after 3 batch passes" in why for why in report.left.values())
    assert any("left to the synchronous run" in w for w in report.warnings)
    assert sync_calls(fb) == len(report.left)  # exactly those, synchronously; no plan asked again


def priced(scorers: Any, name: str, **overrides: Any) -> Any:
    return scorers(name, condense=CallSettings(PRICED, 0.0, 512), grade=CallSettings(PRICED, 0.0, 1024), **overrides)


def test_the_judge_budget_holds_the_batches_worst_case_and_counts_their_spend(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path
):
    roomy = priced(scorers, "roomy")
    set_max_cost(roomy.judge, 1.0)
    report = batched(roomy, EXAMPLES, tmp_path / "roomy.jsonl")
    status = budget_status(roomy.judge)
    assert status is not None and report.left == {} and report.warnings == []
    assert report.usage.cost > 0 and status.spent == pytest.approx(report.usage.cost)  # the summary's spend
    assert roomy.judge.budget.reserved == 0  # every batch's worst case settled
    assert report.requests == EVERY_REQUEST


def test_requests_the_budget_holds_back_go_in_a_later_batch_never_at_the_list_price(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, monkeypatch
):
    import reward.scoring.batch as batch_module

    monkeypatch.setattr(batch_module, "_stages", lambda scorer, rollouts: 1)  # a pass limit of 2 x 1 x 1 + 1 = 3
    tight = priced(scorers, "tight", max_reasks=0)  # the passes after requests were held back are not counted
    limit = 0.01  # room for the plans' worst case, not for every verdict's too: their actual cost is far less
    set_max_cost(tight.judge, limit)
    told: list[str] = []
    report = batch_then_run(tight, EXAMPLES, tmp_path / "tight.jsonl", progress=told.append)
    assert report.requests == report.answered == EVERY_REQUEST and report.left == {} and report.warnings == []
    assert any("offered to the next batch, once this one is read" in line for line in told)  # held back, then sent
    assert len(report.batches) > 2 and report.passes > 3 and sync_calls(fb) == 0  # all in batches, none at list price
    status = budget_status(tight.judge)
    assert status is not None and status.spent == pytest.approx(report.usage.cost) and status.spent <= limit


def test_requests_that_never_fit_are_left_and_the_synchronous_run_refuses_them(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path
):
    scarce = priced(scorers, "scarce")
    limit = 0.003  # not enough for every request, even at what they cost
    set_max_cost(scarce.judge, limit)
    told = []
    report = batched(scarce, EXAMPLES, tmp_path / "scarce.jsonl", progress=told.append)
    assert 0 < report.requests < EVERY_REQUEST
    assert report.left and all("with no batch in flight" in why for why in report.left.values())
    assert report.warnings and all(
        "even with no batch in flight" in w and "the synchronous run, which refuses them too" in w
        for w in report.warnings
    )
    status = budget_status(scarce.judge)
    assert status is not None and status.spent == pytest.approx(report.usage.cost) and status.spent <= limit
    run(score_file(scarce, EXAMPLES, tmp_path / "scarce.jsonl"))  # as the warning says: refused, never sent
    rows = read_jsonl(tmp_path / "scarce.jsonl")
    errors = [r["error"]["category"] for g in rows for r in g["rollouts"] if r.get("error")]
    assert "budget_exhausted" in errors and sync_calls(fb) == 0
    after = budget_status(scarce.judge)
    assert after is not None and after.spent == status.spent

    fb.reset()
    nothing = priced(scorers, "nothing")
    set_max_cost(nothing.judge, 0.00001)  # not even one request's worst case
    made = fb.batch.creates
    report = batched(nothing, EXAMPLES, tmp_path / "nothing.jsonl")
    assert report.requests == 0 and fb.batch.creates == made and fb.counts()["total"] == 0
    assert report.left and len(report.warnings) == 1 and "even with no batch in flight" in report.warnings[0]


def test_a_status_poll_that_never_answers_is_the_next_polls_to_make(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch
):
    """A connection gone silent (the stand-in reads the poll and never answers): the poll gives up after
    CALL_TIMEOUT_S and the next one asks again, so the run goes on and writes what a synchronous run writes."""
    from reward.judge import batch_api

    monkeypatch.setattr(batch_api, "CALL_TIMEOUT_S", 0.5)
    fb.batch.silent, fb.batch.silent_s = {"retrieve": 1}, 60.0
    started = time.monotonic()
    batch_then_run(scorers("batch"), EXAMPLES, tmp_path / "batch.jsonl")
    assert fb.batch.silent == {"retrieve": 0} and time.monotonic() - started < 30
    assert sync_calls(fb) == 0 and without_usage(tmp_path / "batch.jsonl") == sync_examples


@pytest.mark.parametrize("route", ["upload", "content"])
def test_an_upload_or_results_file_gone_silent_is_sent_again(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch, route: str
):
    """Uploads and results files have no CALL_TIMEOUT_S (they may be 200 MB), but a connection on which no byte
    moves for the stall timeout is dropped and the SDK sends the call again: no 600 s wait, nothing lost."""
    from openai import Timeout

    from reward.judge import batch_api

    monkeypatch.setattr(batch_api, "_STALL", Timeout(600.0, connect=5.0, read=0.5, write=0.5))
    fb.batch.silent, fb.batch.silent_s = {route: 1}, 60.0
    started = time.monotonic()
    batch_then_run(scorers("batch"), EXAMPLES, tmp_path / "batch.jsonl")
    assert fb.batch.silent == {route: 0} and time.monotonic() - started < 30
    assert fb.batch.creates == 2  # the silent upload's file was not made into a batch twice
    assert sync_calls(fb) == 0 and without_usage(tmp_path / "batch.jsonl") == sync_examples


def test_a_runs_batch_api_calls_share_one_client(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    """litellm's batch functions built a client per call and left it open; its finaliser then closed it on the
    event loop of whichever thread collected it. In a process with a second loop (here the stand-in's server
    thread) that removed live connections of the run from the run's loop, and a poll or an upload waited for
    ever. The run's calls go through one client (one connection while they come one at a time), closed on the
    run's own loop when the run ends."""
    batched(scorers("batch"), EXAMPLES, tmp_path / "batch.jsonl")
    assert fb.batch.creates == 2  # the plans' batch, then the verdicts': one call at a time
    assert len(fb.batch.peers) >= 8 and len(set(fb.batch.peers)) == 1
