"""Batch scoring: every judge request a run would send, answered through the provider's batch API (at its
batch price) and written into the cache, so that the normal run (`score_file`) then finds everything cached
and writes what a synchronous run writes, by construction.

`prefill` works in passes. Each pass scores the groups with the scorer's own code and a judge that answers
from batch results (`batch_replay.ReplayJudge`): what it cannot answer yet is collected, sent as one batch
(split at the provider's limits: requests and bytes per file), waited for, and the next pass replays it. Pass 1
collects the plans (references and rollouts), pass 2 the verdicts (K samples each if set), later passes the
re-asks of invalid replies (as `Judge.ask` would, up to `max_reasks`) and, with `--samples auto`, each round of
extra samples (decided on the answers, as the synchronous run decides it). Valid replies are validated and
cached exactly as in the synchronous path, under the same keys. The loop always ends on a pass: every batch
sent is read.

What is left uncached is asked by the synchronous run that follows, at the list price: a reply still invalid
after `max_reasks` re-asks, a request whose batch failed, expired, was refused by the provider or lost its
output twice, or whose line came back malformed twice (sent once more, then left; each a warning), one the
judge budget cannot hold even with no batch in flight (never sent; the synchronous run refuses it too;
`batch_cost`), and one still unanswered at the pass limit (never sent). `BatchReport.left` lists each with the
reason. Pending batches are kept in `<output>.batches.json` (`batch_state`): a restarted run waits on them,
reads them in the order they were made and never sends their requests again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from reward.cache.disk import Store
from reward.core.trajectory import Group, LineError, PlanReference, RefLine, Rollout, Trajectory, parse_line
from reward.errors import RunError
from reward.judge.base import JudgeError, Usage
from reward.judge.batch_api import MAX_BYTES, MAX_REQUESTS, BatchAPI, BatchStatus, LineResult
from reward.judge.batch_api import BatchAPIError as APIError
from reward.judge.batch_api import BatchRefused as Refused
from reward.native.prepare import materialize, prepare_group
from reward.rubric.adaptive import budget as extra_samples
from reward.scoring import batch_state
from reward.scoring.batch_cost import BatchCost, BatchProgress, BatchReport
from reward.scoring.batch_replay import ReplayJudge
from reward.scoring.dry_run import done_groups
from reward.scoring.output_file import exclusive, read_lines
from reward.scoring.scorer import Scorer

T = TypeVar("T")


def _quiet(message: str) -> None:
    pass


def _groups(
    scorer: Scorer,
    input_path: Path,
    done: set[str],
    plans: Mapping[str, str | PlanReference] | None,
    terminal_tool: str | Sequence[str] | None,
) -> list[Group]:
    """The groups the run would score (invalid lines are the run's to report)."""
    found: list[Group] = []
    seen: set[str] = set()
    for lineno, line in read_lines(input_path):
        parsed = parse_line(Group, line, lineno)
        if isinstance(parsed, LineError) or parsed.group_id in seen or parsed.group_id in done:
            continue
        seen.add(parsed.group_id)
        with contextlib.suppress(Exception):  # a line the run reports as invalid
            found.append(prepare_group(parsed, plans, terminal_tool, spec=scorer.rubric.spec))
    return found


class _Prefill:
    def __init__(
        self,
        scorer: Scorer,
        api: BatchAPI,
        path: Path,
        progress: BatchProgress,
        poll_s: float,
        limits: tuple[int, int],
    ) -> None:
        self.scorer, self.api, self.path, self.progress, self.poll_s = scorer, api, path, progress, poll_s
        self.max_requests, self.max_bytes = limits
        self.replay = ReplayJudge(scorer.judge, scorer.cached)
        self.clone = Scorer(scorer.rubric, self.replay, scorer.store, scorer.counter)
        self.state = batch_state.load(path, api.where)
        self.report = BatchReport()
        self.cost = BatchCost(api, self.report)

    async def run_pass(self, items: list[T], in_flight: int, work: Callable[[Scorer, T], Awaitable[None]]) -> None:
        self.replay.start_pass()
        slots = asyncio.Semaphore(in_flight)

        async def one(item: T) -> None:
            async with slots:
                await work(self.clone, item)

        await asyncio.gather(*(one(x) for x in items))
        self.report.passes += 1

    async def submit(self) -> bool:
        """Send the collected requests: one model per batch (a provider's rule), split at its limits. A request
        the budget cannot hold beside this batch's worst case waits for the next pass (this batch read, its
        reservation replaced by what it cost); one that does not fit with no batch in flight never will: left.
        Returns whether some were held back."""
        by_model: dict[str, list[tuple[str, bytes, float]]] = defaultdict(list)
        held: list[str] = []
        never: list[str] = []
        for cid, r in self.replay.pending.items():
            line = self.api.line(cid, r.role, r.messages, r.response_format, r.seed)
            if len(line) + 1 > self.max_bytes:
                self.replay.leave(cid, f"{len(line)} bytes: over the batch file limit")
                continue
            worst = self.cost.worst_case(r)
            if not self.cost.budget.try_reserve(worst):
                (held if self.cost.budget.fits_alone(worst) else never).append(cid)
                continue
            by_model[self.api.models[r.role]].append((cid, line, worst))
        if held and not by_model:  # nothing in flight beside them (a reservation from elsewhere): left too
            never, held = never + held, []
        if held:
            self.progress(self.cost.held_back(len(held)))
        if never:
            self.report.warn(self.cost.refused_warning(len(never)), self.progress)
        for cid in never:
            self.replay.leave(cid, "over the judge budget (REWARD_MAX_COST) with no batch in flight: not sent")
        for lines in by_model.values():
            chunk: list[tuple[str, bytes, float]] = []
            size = 0
            for cid, line, worst in lines:
                if chunk and (len(chunk) >= self.max_requests or size + len(line) + 1 > self.max_bytes):
                    await self.create(chunk)
                    chunk, size = [], 0
                chunk.append((cid, line, worst))
                size += len(line) + 1
            if chunk:
                await self.create(chunk)
        return bool(held)

    async def create(self, chunk: list[tuple[str, bytes, float]]) -> None:
        file_id = await self.api.upload([line for _, line, _ in chunk])
        self.cost.held[file_id] = sum(worst for _, _, worst in chunk)
        entry = batch_state.BatchEntry(file_id=file_id, custom_ids=[cid for cid, _, _ in chunk])
        self.state.batches.append(entry)
        batch_state.save(self.path, self.state)  # before the batch exists: a restart finds it by its file
        try:
            status = await self.api.create(file_id)
        except Refused as exc:
            self.drop(entry, f"the provider refused the batch over {file_id}", exc)
            return
        entry.batch_id = status.id
        batch_state.save(self.path, self.state)
        self.report.requests += len(chunk)
        self.progress(f"batch {status.id}: {len(chunk)} requests sent")

    def drop(self, entry: batch_state.BatchEntry, what: str, exc: Refused, billed: bool = False) -> None:
        """A batch refused for good (created, or its output read): out of the state, its requests failed once
        (sent once more in a new batch, then left to the synchronous run), as an expired batch's."""
        later = batch_state.later(self.state, entry)
        self.state.batches = [e for e in self.state.batches if e is not entry]
        batch_state.save(self.path, self.state)
        self.cost.release(entry.file_id, billed)
        failed = self.replay.fail(entry.custom_ids, f"{what} ({exc.status})")
        self.report.warn(f"{what}: {exc}; {self.replay.fates(failed, later)}", self.progress)

    async def wait_all(self) -> None:
        """Wait for every batch in the state not read yet, and take their results in the state's order (the
        order they were made: a restart counts an expired batch's failures before reading the one that re-sent
        them, whichever finishes first)."""
        for entry in list(self.state.batches):
            if entry.batch_id is None:  # stopped between upload and create
                found = await self.api.find(entry.file_id)
                try:
                    found = found or await self.api.create(entry.file_id)
                except Refused as exc:
                    self.drop(entry, f"the provider refused the batch over {entry.file_id}", exc)
                    continue
                entry.batch_id = found.id
                batch_state.save(self.path, self.state)
        todo = [e for e in self.state.batches if e.batch_id not in self.report.batches]
        self.report.batches.extend(e.batch_id for e in todo if e.batch_id)
        done = await asyncio.gather(*(self.wait(e) for e in todo))
        for entry, (status, results) in zip(todo, done, strict=True):
            self.take(entry, status, results)

    async def wait(self, entry: batch_state.BatchEntry) -> tuple[BatchStatus, dict[str, LineResult] | Refused]:
        """A batch's final status and its results (or the refusal to give them: a file gone)."""
        assert entry.batch_id is not None
        status = await self.api.settled(entry.batch_id, self.poll_s, self.progress)
        try:
            return status, await self.api.results(status)
        except Refused as exc:
            return status, exc

    def take(
        self, entry: batch_state.BatchEntry, status: BatchStatus, results: dict[str, LineResult] | Refused
    ) -> None:
        if isinstance(results, Refused):
            what = f"batch {status.id} {status.status}, its results unreadable (its cost not in the summary)"
            self.drop(entry, what, results, billed=True)
            return
        failed = self.replay.record(results, entry.custom_ids)
        self.cost.settle(entry.file_id, results, entry.custom_ids, self.replay.results)
        if status.status != "completed" or failed:
            why = self.replay.results[failed[0]].error if failed else None
            reason = status.errors or (
                f"{len(failed)} of {len(entry.custom_ids)} requests without a usable reply (first: {why})"
            )
            fates = self.replay.fates(failed, batch_state.later(self.state, entry))
            self.report.warn(f"batch {status.id} {status.status}: {reason}; {fates}", self.progress)


async def prefill(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    *,
    plans: Mapping[str, str | PlanReference] | None = None,
    terminal_tool: str | Sequence[str] | None = None,
    retry_errors: bool = True,
    progress: BatchProgress | None = None,
    poll_s: float = 30.0,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    groups_in_flight: int = 32,
) -> BatchReport:
    """Answer every judge request `score_file(scorer, input_path, output_path, ...)` would send (and the cache
    does not hold) through the provider's batch API, into the cache. Call `score_file` with the same arguments
    afterwards: it finds them cached. Refuses (RunError, nothing sent) a judge without a batch API or a scorer
    without a lasting cache. One prefill per output at a time (`<output>.batches.json.lock`)."""

    def groups() -> list[Group]:
        return _groups(scorer, input_path, done_groups(scorer, output_path, retry_errors), plans, terminal_tool)

    async def work(clone: Scorer, group: Group) -> None:
        await clone.score_group(group, Usage())

    def stages(todo: list[Group]) -> int:
        return _stages(scorer, max((len(g.rollouts) for g in todo), default=0))

    job = (groups, work, stages)
    return await _run(scorer, output_path, progress, poll_s, (max_requests, max_bytes), groups_in_flight, job)


async def prefill_plans(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    *,
    terminal_tool: str | Sequence[str] | None = None,
    progress: BatchProgress | None = None,
    poll_s: float = 30.0,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    in_flight: int = 64,
) -> BatchReport:
    """As `prefill`, for `plan_file(scorer, input_path, output_path, ...)` (`reward plans`): the references'
    condensing requests, through the batch API, into the cache."""

    def refs() -> list[tuple[RefLine, Trajectory]]:
        done = _done_ids(output_path)
        found: list[tuple[RefLine, Trajectory]] = []
        for lineno, line in read_lines(input_path):
            ref = parse_line(RefLine, line, lineno)
            if isinstance(ref, LineError) or ref.id in done:
                continue
            done.add(ref.id)
            with contextlib.suppress(Exception):  # a line plan_file reports
                found.append((ref, materialize(ref, terminal_tool)))
        return found

    async def work(clone: Scorer, item: tuple[RefLine, Trajectory]) -> None:  # the request plan_file sends
        ref, trajectory = item
        with contextlib.suppress(JudgeError):
            group = Group(group_id=ref.id, query=ref.query, rollouts=[Rollout()], inputs=ref.inputs)
            await clone.plan(clone.condense_request(group, clone.condense_input(ref.query, trajectory)), Usage())

    def stages(todo: list[tuple[RefLine, Trajectory]]) -> int:
        return 1  # one condensing request each (and its re-asks)

    return await _run(scorer, output_path, progress, poll_s, (max_requests, max_bytes), in_flight, (refs, work, stages))


def _stages(scorer: Scorer, rollouts: int) -> int:
    """How many requests one after another a group may need, re-asks aside: its plans (the reference's too),
    its verdicts, and with `--samples auto` a round per extra sample at most; one more for a checklist or a
    group-graded rubric's own stage."""
    rounds = extra_samples(rollouts) if scorer.basis.samples == "auto" else 0
    return 3 + rounds


def _done_ids(output: Path) -> set[str]:
    """The ids `plan_file` would skip, read only."""
    done: set[str] = set()
    with contextlib.suppress(OSError):
        for chunk in output.read_bytes().split(b"\n"):
            with contextlib.suppress(ValueError, KeyError, TypeError, RecursionError):
                done.add(str(json.loads(chunk)["id"]))
    return done


async def _run(
    scorer: Scorer,
    output_path: Path,
    progress: BatchProgress | None,
    poll_s: float,
    limits: tuple[int, int],
    in_flight: int,
    job_of: tuple[Callable[[], list[T]], Callable[[Scorer, T], Awaitable[None]], Callable[[list[T]], int]],
) -> BatchReport:
    items, work, stages = job_of
    api = BatchAPI.of(scorer.judge)
    store = scorer.store
    if type(store) is Store and store.directory is None:
        raise RunError("batch scoring keeps the batches' answers in the cache for the run: it needs a cache directory")
    try:
        await api.probe()
        path = batch_state.state_path(output_path)
        tell = progress or _quiet
        with exclusive(path):
            job = _Prefill(scorer, api, path, tell, poll_s, limits)
            todo = items()
            try:
                await job.wait_all()  # a restarted run: the batches it had made first
                await _passes(job, todo, in_flight, work, stages(todo))
            except APIError as exc:  # the batches made are kept: a rerun waits on them
                if not job.state.batches:
                    raise
                raise RunError(
                    f"{exc}; {path} keeps this run's batches: rerun to wait on them and read them, or move it away "
                    "to start over (their requests are then sent, and paid for, again)"
                ) from exc
            job.report.left.update(job.replay.left)
            batch_state.remove(path)
        return job.report
    finally:
        await api.aclose()  # on this loop, which opened its connections


async def _passes(
    job: _Prefill, todo: list[T], in_flight: int, work: Callable[[Scorer, T], Awaitable[None]], stages: int
) -> None:
    """Pass after pass until nothing is left to send. Each stage's requests, each re-asked up to max_reasks
    times, each sent twice at most (a failed batch): bounded whatever comes back. A pass after a batch beside
    which the budget held requests back is not counted (that batch sent some: each request is sent twice at
    most, so those passes are bounded too). A pass always reads the last batch: the loop ends on a pass."""
    limit = 2 * (job.scorer.judge.settings.max_reasks + 1) * stages + 1
    n, held = 0, False
    while True:
        await job.run_pass(todo, in_flight, work)
        n += not held
        if not job.replay.pending:
            return
        if n >= limit:  # not sent: nothing is paid for that no pass reads
            why = f"still unanswered after {limit} batch passes (their limit)"
            job.report.left.update(dict.fromkeys(job.replay.pending, why))
            job.report.warn(f"{len(job.replay.pending)} request(s) {why}: left to the synchronous run", job.progress)
            return
        job.progress(f"pass {job.report.passes}: {len(job.replay.pending)} request(s) to send")
        held = await job.submit()
        await job.wait_all()
