"""Restarting a batch run after a stop, and batch API errors on recorded batches: a restart reads its old batches
in the order they were made (never paying twice for a request a re-send answered), a batch the provider
refuses for good (its creation, its output file) is dropped and its requests re-sent once, errors that do stop
a run say how to start over, and a batch made just before a stop is found however many batches came after."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reward.errors import RunError
from reward.judge.batch_api import BatchAPI, LineResult
from reward.judge.fake.batch_server import FakeBatchServer
from reward.judge.fake.http import _completion
from reward.scoring.batch import prefill
from reward.scoring.batch_replay import ReplayJudge
from reward.scoring.batch_state import state_path
from tests.conftest import EXAMPLES
from tests.test_batch import (
    batch_server,
    batch_then_run,
    batched,
    fb,
    run,
    scorers,
    stopped_at_create,
    sync_calls,
    sync_examples,
    without_usage,
)

__all__ = ["batch_server", "fb", "scorers", "sync_examples"]  # test_batch's fixtures, used here


def saved(out: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(state_path(out).read_text())["batches"])
    except (FileNotFoundError, ValueError):
        return []


def stop_when(scorer: Any, out: Path, ready: Any) -> None:
    """A run killed (cancelled) once `ready(fb)` holds: its batches stay at the provider, their ids beside the
    output."""

    async def stopped() -> None:
        task = asyncio.ensure_future(prefill(scorer, EXAMPLES, out, poll_s=0.02))
        while not ready():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(stopped())


def test_a_batch_answer_is_never_replaced_by_another_batchs_failure(scorers: Any):
    scorer = scorers("unit")
    replay = ReplayJudge(scorer.judge, scorer.cached)
    body = _completion("a reply", None, "a prompt", model="test")
    assert replay.record({"cid": LineResult(body)}, ["cid"]) == []
    expired = LineResult(None, "batch_expired: This request could not be executed before expiry.")
    assert replay.record({"cid": expired}, ["cid"]) == []  # the expired batch read after the one that re-sent it
    assert replay.results["cid"].body == body and replay.failures["cid"] == 0
    assert replay.record({}, ["other"]) == ["other"] and replay.failures["other"] == 1  # no answer: a failure


@pytest.mark.parametrize("slow", ["expired", "resent"])
def test_a_restart_reads_its_batches_in_order_and_never_pays_twice(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch, slow: str
):
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    fb.batch.delay, fb.batch.fail_next, fb.batch.expire_after = 60.0, ["expired"], 0

    def resent() -> bool:  # the plans' batch expired unanswered, its requests re-sent in a second batch
        if fb.batch.creates == 1:
            for b in fb.batch.batches.values():
                b["_due"] = 0.0
        entries = saved(out)
        return len(entries) == 2 and all(e["batch_id"] for e in entries)

    stop_when(scorer, out, resent)
    expired, again = [e["batch_id"] for e in saved(out)]
    for b in fb.batch.batches.values():  # both done while no run waits
        b["_due"] = 0.0
    fb.batch.delay, made, answered = 0.0, fb.batch.creates, fb.counts()["total"]
    real = BatchAPI.results

    async def results(self: BatchAPI, status: Any) -> Any:  # one batch's output comes back later than the other's
        if status.id == (expired if slow == "expired" else again):
            await asyncio.sleep(0.3)
        return await real(self, status)

    monkeypatch.setattr(BatchAPI, "results", results)
    report = batch_then_run(scorer, EXAMPLES, out)
    assert report.batches[:2] == [expired, again]
    assert fb.batch.creates == made + 1 and report.requests == 22  # the verdicts only: no plan sent again
    assert fb.counts()["total"] - answered == 22 + 22 and sync_calls(fb) == 0
    [warning] = report.warnings  # the same whichever finished first, said once, never "sent once more"
    assert warning.startswith(f"batch {expired} expired: 22 of 22 requests without a usable reply")
    assert "22 re-sent already in a later batch, 0 left" in warning and "sent once more" not in warning
    assert without_usage(out) == sync_examples


def test_a_batch_the_provider_refuses_to_create_is_sent_once_more_then_left(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    fb.batch.max_requests = 5  # the provider's limit is below the run's: it refuses every batch of the plans
    out = tmp_path / "batch.jsonl"
    report = batch_then_run(scorers("batch"), EXAMPLES, out)
    assert fb.batch.creates == 0 and report.requests == 0 and len(report.warnings) == 2
    assert all("the provider refused the batch over file-" in w and "Error code: 400" in w for w in report.warnings)
    assert "22 request(s) sent once more, 0 left" in report.warnings[0]
    assert "0 request(s) sent once more, 22 left to the synchronous run" in report.warnings[1]
    assert len(report.left) == 22 and all("refused the batch" in why for why in report.left.values())
    assert not state_path(out).exists() and without_usage(out) == sync_examples  # the run asked them itself


def test_a_recorded_batch_the_provider_refuses_to_create_is_dropped_on_restart(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch
):
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    stopped_at_create(monkeypatch, scorer, out, created=False)
    [entry] = saved(out)
    assert entry["batch_id"] is None
    fb.batch.max_requests = 5  # the restart's create of that file is refused: over the provider's limit
    report = batch_then_run(scorer, EXAMPLES, out, max_requests=5)
    assert "the provider refused the batch over " + entry["file_id"] in report.warnings[0]
    assert len(report.warnings) == 1 and report.left == {}  # re-sent in batches of 5, answered
    assert all(b["input_file_id"] != entry["file_id"] for b in fb.batch.batches.values())
    assert sync_calls(fb) == 0 and without_usage(out) == sync_examples


def test_a_batch_whose_output_is_gone_is_sent_once_more(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]]
):
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    fb.batch.delay = 60.0
    stop_when(scorer, out, lambda: any(e["batch_id"] for e in saved(out)))
    [first] = [e["batch_id"] for e in saved(out)]
    fb.batch.batches[first]["_due"], fb.batch.delay = 0.0, 0.0
    gone: list[str] = []

    real = BatchAPI.results

    async def results(self: BatchAPI, status: Any) -> Any:  # the provider deleted that batch's output file
        if status.id == first and status.output_file_id not in gone:
            gone.append(status.output_file_id)
            del fb.batch.files[status.output_file_id]
        return await real(self, status)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(BatchAPI, "results", results)
        report = batch_then_run(scorer, EXAMPLES, out)
    [warning] = report.warnings
    assert f"batch {first} completed, its results unreadable" in warning and "Error code: 404" in warning
    assert "22 request(s) sent once more, 0 left" in warning
    assert report.requests == 22 + 22 and report.left == {}  # the plans again, then the verdicts
    assert sync_calls(fb) == 0 and without_usage(out) == sync_examples
    assert not state_path(out).exists()


def test_an_error_that_stops_a_run_says_how_to_start_over(fb: FakeBatchServer, scorers: Any, tmp_path: Path):
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    fb.batch.delay = 60.0
    stop_when(scorer, out, lambda: any(e["batch_id"] for e in saved(out)))
    [first] = [e["batch_id"] for e in saved(out)]
    del fb.batch.batches[first]  # the provider no longer knows it (another account's key, say)
    with pytest.raises(RunError) as stopped:
        batched(scorer, EXAMPLES, out)
    message = str(stopped.value)
    assert f"no batch {first}" in message
    assert f"{state_path(out)} keeps this run's batches" in message and "move it away to start over" in message
    assert saved(out)  # kept: what the message says
    state_path(out).rename(tmp_path / "old.batches.json")  # as it says: starts over
    fb.batch.delay = 0.0
    assert batched(scorer, EXAMPLES, out).left == {}


def test_a_batch_made_just_before_a_stop_is_found_among_many_newer_ones(
    fb: FakeBatchServer, scorers: Any, tmp_path: Path, sync_examples: list[dict[str, Any]], monkeypatch
):
    out = tmp_path / "batch.jsonl"
    scorer = scorers("batch")
    stopped_at_create(monkeypatch, scorer, out, created=True)
    [entry] = saved(out)
    [ours] = fb.batch.batches.values()
    for n in range(250):  # a busy account: 250 batches made since, listed before it (newest first)
        other = {**ours, "id": f"batch-other-{n}", "input_file_id": f"file-other-{n}", "status": "completed"}
        fb.batch.batches[other["id"]] = other
    made = fb.batch.creates
    report = batch_then_run(scorer, EXAMPLES, out)
    assert report.batches[0] == ours["id"] and ours["input_file_id"] == entry["file_id"]
    assert fb.batch.creates == made + 1  # the verdicts' batch only: the plans' one was found, not made again
    assert sync_calls(fb) == 0 and without_usage(out) == sync_examples
