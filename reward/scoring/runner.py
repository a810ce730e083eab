"""Offline scoring of a JSONL file: resumable, concurrent, one whole line per scored group.

Crash safety: each group is written with a single `write` on an O_APPEND descriptor once it is fully
scored, so a killed run leaves only whole lines (plus, at worst, one torn last line, which the next run
removes). A rerun skips the groups already in the output; groups that came out with judge errors are
scored again unless told otherwise (their results are cached, so only the failed calls are repeated).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward.core.trajectory import Group, LineError, PlanReference, RefLine, Rollout, parse_line
from reward.judge.base import JudgeError, Usage
from reward.native.prepare import GroupInputError, materialize, prepare_group
from reward.scoring.output_file import LineWriter, exclusive, load_done, read_lines
from reward.scoring.scorer import Scorer


@dataclass
class RunReport:
    invalid: list[LineError] = field(default_factory=list)
    scored: int = 0  # groups scored in this run
    skipped: int = 0  # groups already in the output
    usage: Usage = field(default_factory=Usage)


Progress = Callable[[int, int], None]  # (groups done, rollouts done) increments


def _no_progress(groups: int, rollouts: int) -> None:
    pass


async def _bounded(limit: int, items: Iterator[Any], work: Callable[[Any], Any]) -> None:
    """Run `work` over `items` with at most `limit` in flight, reading items lazily.

    The first unexpected exception (a bug, not a judge failure: those are results) stops the run.
    """
    slots = asyncio.Semaphore(limit)
    tasks: set[asyncio.Task[Any]] = set()
    failed: list[BaseException] = []

    async def run(item: Any) -> None:
        try:
            await work(item)
        except Exception as exc:
            failed.append(exc)
            raise
        finally:
            slots.release()

    try:
        for item in items:
            await slots.acquire()
            if failed:
                raise failed[0]
            task = asyncio.create_task(run(item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


def foreign_reason(record: dict[str, Any], scorer: Scorer) -> str | None:
    """Why a saved group was not scored by this run's judge models and K (None: it was, or it says nothing)."""
    settings, spec = scorer.judge.settings, scorer.rubric.spec
    judge: dict[str, Any] = record["judge"] if isinstance(record.get("judge"), dict) else {}
    models = (judge.get("condense_model"), judge.get("grade_model"))
    ours = (settings.condense.model if spec.condenses else "", settings.grade.model)
    if judge and models != ours:
        return f"was judged by {'/'.join(str(m) for m in models if m)}, this run asks {'/'.join(m for m in ours if m)}"
    basis: dict[str, Any] = record["basis"] if isinstance(record.get("basis"), dict) else {}
    k = basis.get("samples")
    if k is not None and k != scorer.basis.samples:
        return f"was graded with K = {k} sample(s) per rollout, this run uses {scorer.basis.samples}"
    if k == "auto" and basis.get("max_samples") != scorer.basis.max_samples:
        return (
            f"was sampled adaptively up to {basis.get('max_samples')} per rollout, "
            f"this run up to {scorer.basis.max_samples}"
        )
    resample = basis.get("resample_condense")
    several = k == "auto" or (isinstance(k, int) and k > 1)  # one sample condenses once either way
    if several and resample is not None and resample != scorer.basis.resample_condense:
        return f"was graded with resample_condense {resample}, this run uses {scorer.basis.resample_condense}"
    return None


def has_errors(record: dict[str, Any]) -> bool:
    """A saved group with a judge error in it: scored again unless --keep-errors."""
    return any(r.get("status") == "error" for r in record.get("rollouts", []))


async def score_file(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    *,
    plans: Mapping[str, str | PlanReference] | None = None,
    terminal_tool: str | Sequence[str] | None = None,
    retry_errors: bool = True,
    groups_in_flight: int = 32,
    progress: Progress | None = None,
) -> RunReport:
    """Score a JSONL file of groups into a JSONL output, resuming what is already there (one writer per
    output, whole lines only); returns the run's counts, usage and invalid lines."""
    with exclusive(output_path):
        return await _score_file(
            scorer, input_path, output_path, plans, terminal_tool, retry_errors, groups_in_flight, progress
        )


async def _score_file(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    plans: Mapping[str, str | PlanReference] | None,
    terminal_tool: str | Sequence[str] | None,
    retry_errors: bool,
    groups_in_flight: int,
    progress: Progress | None,
) -> RunReport:
    report = RunReport()
    tick = progress or _no_progress
    done = load_done(
        output_path,
        "group_id",
        rubric_version=scorer.rubric.version,
        keep=(lambda r: not has_errors(r)) if retry_errors else None,
        foreign=lambda r: foreign_reason(r, scorer),
    )
    seen: set[str] = set()
    writer = LineWriter(output_path)

    def groups() -> Iterator[tuple[int, Group]]:
        for lineno, line in read_lines(input_path):
            parsed = parse_line(Group, line, lineno)
            if isinstance(parsed, LineError):
                report.invalid.append(parsed)
                tick(1, 0)
                continue
            if parsed.group_id in seen:
                report.invalid.append(LineError(lineno, (f"group_id: duplicate {parsed.group_id!r}",)))
                tick(1, 0)
                continue
            seen.add(parsed.group_id)
            if parsed.group_id in done:
                report.skipped += 1
                tick(1, len(parsed.rollouts))
                continue
            try:
                prepared = prepare_group(parsed, plans, terminal_tool, spec=scorer.rubric.spec)
            except GroupInputError as exc:
                report.invalid.append(LineError(lineno, tuple(exc.problems)))
                tick(1, 0)
                continue
            except Exception as exc:  # input no reader foresaw: this line's problem, not the run's
                report.invalid.append(LineError(lineno, (f"cannot be read: {type(exc).__name__}: {exc}",)))
                tick(1, 0)
                continue
            yield lineno, prepared

    async def work(item: tuple[int, Group]) -> None:
        lineno, group = item
        try:
            result = await scorer.score_group(group, report.usage)
        except Exception as exc:  # judge failures are results already; anything else fails this line only
            report.invalid.append(LineError(lineno, (f"cannot be scored: {type(exc).__name__}: {exc}",)))
            tick(1, 0)
            return
        writer.write(result.model_dump_json())
        report.scored += 1
        tick(1, len(group.rollouts))

    try:
        await _bounded(groups_in_flight, groups(), work)
    finally:
        writer.close()
    return report


async def plan_file(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    *,
    in_flight: int = 64,
    terminal_tool: str | Sequence[str] | None = None,
    progress: Progress | None = None,
) -> tuple[RunReport, list[str]]:
    """Condense reference trajectories into `{"id", "plan", "fake"}` lines (usable as `{"plan": ...}`)."""
    with exclusive(output_path):
        return await _plan_file(scorer, input_path, output_path, in_flight, terminal_tool, progress)


async def _plan_file(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    in_flight: int,
    terminal_tool: str | Sequence[str] | None,
    progress: Progress | None,
) -> tuple[RunReport, list[str]]:
    report = RunReport()
    tick = progress or _no_progress
    failures: list[str] = []
    done = load_done(output_path, "id")
    writer = LineWriter(output_path)

    def refs() -> Iterator[RefLine]:
        for lineno, line in read_lines(input_path):
            parsed = parse_line(RefLine, line, lineno)
            if isinstance(parsed, LineError):
                report.invalid.append(parsed)
            elif parsed.id in done:
                report.skipped += 1
            else:
                done.add(parsed.id)  # a repeated id is condensed once
                yield parsed
                continue
            tick(1, 0)

    async def work(ref: RefLine) -> None:
        try:
            g = Group(group_id=ref.id, query=ref.query, rollouts=[Rollout()], inputs=ref.inputs)
            ci = scorer.condense_input(ref.query, materialize(ref, terminal_tool))
            plan = await scorer.plan(scorer.condense_request(g, ci), report.usage)
        except JudgeError as exc:
            failures.append(f"{ref.id}: {exc}")
        except Exception as exc:  # input no reader foresaw: this reference fails, the others go on
            failures.append(f"{ref.id}: cannot be read: {type(exc).__name__}: {exc}")
        else:
            line = {"id": ref.id, "plan": plan.text, "fake": plan.fake}
            writer.write(json.dumps(line, ensure_ascii=False))
            report.scored += 1
        tick(1, 0)

    try:
        await _bounded(in_flight, refs(), work)
    finally:
        writer.close()
    return report, failures
