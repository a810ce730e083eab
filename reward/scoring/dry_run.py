"""`reward score --dry-run`: what a run would cost, judge calls by stage, tokens and price, with no judge call.

The dry run walks the input as the run does (the same groups skipped as done, the same invalid lines, the
same penalty checks) and builds every judge request the run would send with the scorer's own code, then asks
the cache whether it holds the answer, through the cache's own lookup (a planted or corrupt entry is a miss
there as in the run). So its counts are the run's:

- a penalised rollout needs no call; a rollout whose request cannot be rendered (a template error) ends in an
  error before any call, as in the run;
- identical requests are one call (the run's cache and single-flight make them one): counted as `shared`;
- K samples grade K times (sample 0 without a seed, as K = 1; sample i with seed i), and condense K times with
  resample_condense, as the run does; with `--samples auto` the counts are those of one sample each (the
  least auto makes) and `extra_max` bounds what it may add (per group, the rule's budget: reward.rubric.adaptive);
- a group's reference plan is counted once, and only when one of its rollouts reaches grading.

A grading request contains the plans; when a plan is not cached yet its text is unknown, so the grading
request is counted as a call (it cannot be in the cache under a plan that does not exist yet) and its plan
at the condensing `max_tokens`. What is not foreseen: judge failures and their re-asks and retries.

Tokens are estimates: prompts are counted with the scorer's token counter (tiktoken cl100k_base) plus 4 per
message and 3 per request (the chat format's framing) and the response format's JSON schema; completions at
the call's `max_tokens`, an upper bound. The cost uses litellm's prices for the configured models; a model
litellm has no price for makes the cost unknown (None), never $0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from reward.core.trajectory import CondenseInput, Group, LineError, PlanReference, Trajectory, parse_line
from reward.errors import RewardError
from reward.judge.base import JudgeError
from reward.native.prepare import GroupInputError, prepare_group
from reward.rubric.adaptive import budget
from reward.rubric.penalties import check_penalty
from reward.rubric.prompts import Messages
from reward.rubric.verdict import verdict_from_cache, verdict_model
from reward.scoring.checklist_stage import group_scorer, verdict_loader
from reward.scoring.dry_run_report import DryRun, Stage, price
from reward.scoring.output_file import load_done, read_lines
from reward.scoring.runner import foreign_reason, has_errors
from reward.scoring.scorer import Plan, Scorer

_PLACEHOLDER = re.compile(r"PLAN[0-9a-f]{24}")  # stands for a plan not condensed yet (its request's key)
MESSAGE_TOKENS, REQUEST_TOKENS = 4, 3  # the chat format's framing per message and per request (OpenAI's count)


class _Miss(RewardError):
    """Raised by the dry run's computation: the cache had no answer, and nothing is asked or stored."""


def done_groups(scorer: Scorer, output: Path, retry_errors: bool) -> set[str]:
    """The group ids the run would skip, read only (the run also drops a torn last line: the dry run leaves the
    file as it is). Refuses what the run refuses: another rubric version, judge or K."""
    return load_done(
        output,
        "group_id",
        rubric_version=scorer.rubric.version,
        keep=(lambda r: not has_errors(r)) if retry_errors else None,
        foreign=lambda r: foreign_reason(r, scorer),
        rewrite=False,
    )


class _Planner:
    """Counts one run's judge requests: each distinct request once, looked up in the cache once."""

    def __init__(self, scorer: Scorer, report: DryRun) -> None:
        self.scorer = scorer
        self.report = report
        self.seen: dict[str, Any] = {}  # request key -> the cached value, or None: a call
        spec = scorer.rubric.spec
        self._verdict_model = verdict_model(spec)
        self.load_verdict: Callable[[Any], Any] = lambda v: verdict_from_cache(spec, v, self._verdict_model)
        # placeholder plan text -> (the plan's estimated tokens, the placeholder's own)
        self._placeholders: dict[str, tuple[int, int]] = {}

    def _prompt_tokens(self, messages: Messages, response_format: dict[str, Any] | None) -> int:
        count = self.scorer.counter
        tokens = REQUEST_TOKENS + (count(json.dumps(response_format)) if response_format is not None else 0)
        for m in messages:
            text = str(m.get("content") or "")
            tokens += MESSAGE_TOKENS + count(text)
            for found in _PLACEHOLDER.findall(text):  # an unknown plan: its estimate instead of the placeholder
                estimate, own = self._placeholders.get(found, (0, 0))
                tokens += estimate - own
        return tokens

    async def request(
        self,
        role: str,
        messages: Messages,
        seed: int | None,
        load: Callable[[Any], Any] | None,
        response_format: dict[str, Any] | None = None,
    ) -> Any:
        """The cached answer of this request, or None: a call (counted with its tokens). `load` None: the
        request contains a plan that does not exist yet, so it cannot be cached."""
        stage = self.report.stages[role]
        key = self.scorer.cached.request_key(role, messages, response_format, seed)
        if key in self.seen:
            stage.shared += 1
            return self.seen[key]
        value = None
        if load is not None:
            value = await self._peek(key, load)
        self.seen[key] = value
        if value is None:
            stage.calls += 1
            stage.prompt_tokens += self._prompt_tokens(messages, response_format)
            call = self.scorer.judge.settings.condense if role == "condense" else self.scorer.judge.settings.grade
            stage.completion_tokens += call.max_tokens
        else:
            stage.cached += 1
        return value

    async def _peek(self, key: str, load: Callable[[Any], Any]) -> Any:
        async def miss() -> Any:
            raise _Miss

        try:
            value = await self.scorer.store.get_or_compute(key, miss, accept=load)
        except _Miss:
            return None
        return load(value)

    async def plan(self, messages: Messages, seed: int | None) -> Plan:
        """The cached plan, or a placeholder standing for the plan the call would write."""
        cached = await self.request("condense", messages, seed, self.scorer.load_plan)
        if cached is not None:
            return Plan(cached.text, cached.fake)
        key = self.scorer.cached.request_key("condense", messages, None, seed)
        placeholder = f"PLAN{key.rpartition(':')[2][:24]}"
        estimate = self.scorer.judge.settings.condense.max_tokens
        self._placeholders[placeholder] = (estimate, self.scorer.counter(placeholder))
        return Plan(placeholder, False)

    def unknown(self, messages: Messages) -> bool:
        """Does the request contain a plan that does not exist yet?"""
        return any(
            found in self._placeholders for m in messages for found in _PLACEHOLDER.findall(str(m.get("content") or ""))
        )


async def _group(planner: _Planner, scorer: Scorer, group: Group) -> None:
    load_verdict = planner.load_verdict
    if scorer.rubric.spec.grading.mode == "checklist":  # the group's criteria make its own rubric, as in the run
        scorer = group_scorer(scorer, group)[0]
        load_verdict = verdict_loader(scorer)
    report, spec, settings = planner.report, scorer.rubric.spec, scorer.judge.settings
    seeds = [scorer.seed(i) for i in range(scorer.fixed_k)]  # sample 0 is the K = 1 request
    judged = 0
    reference: list[Plan | JudgeError] = []  # the group's, once a rollout reaches grading

    async def reference_plan() -> Plan | None:
        if not spec.reference:
            return None
        if not reference:
            ref = group.reference
            if isinstance(ref, PlanReference):
                reference.append(Plan(ref.plan, ref.fake))
            else:
                assert isinstance(ref, Trajectory)
                try:
                    request = scorer.condense_request(group, scorer.condense_input(group.query, ref))
                    reference.append(await planner.plan(request, None))
                except JudgeError as exc:
                    reference.append(exc)
        found = reference[0]
        if isinstance(found, JudgeError):
            raise found
        return found

    if spec.grading.mode in ("group", "pairwise"):
        from reward.scoring.dry_run_stages import stage_group  # group and pairwise grading stages

        await stage_group(planner, scorer, group, seeds, reference_plan)
        return
    for rollout in group.rollouts:
        report.rollouts += 1
        if check_penalty(spec.penalties, rollout, scorer.counter) is not None:
            report.penalized += 1
            continue
        report.judged += 1
        ci: CondenseInput = scorer.condense_input(group.query, rollout)
        try:
            candidates: list[Plan] = []
            if spec.condenses:
                request = scorer.condense_request(group, ci)
                plan_seeds = seeds if settings.resample_condense else [None]
                candidates = [await planner.plan(request, s) for s in plan_seeds]
            ref = await reference_plan()
            grading = [
                scorer.grade_request(group, rollout, ci, ref, candidates[i % len(candidates)] if candidates else None)
                for i in range(len(seeds))
            ]
        except JudgeError:
            report.errors += 1
            continue
        judged += 1
        for messages, seed in zip(grading, seeds, strict=True):
            load = None if planner.unknown(messages) else load_verdict
            await planner.request("grade", messages, seed, load, scorer.response_format)
    if scorer.basis.samples == "auto" and settings.max_samples is not None:
        per_sample = 2 if spec.condenses and settings.resample_condense else 1  # a grade, and a condense
        report.extra_max += per_sample * min(budget(judged), judged * (settings.max_samples - 1))


async def dry_run(
    scorer: Scorer,
    input_path: Path,
    output_path: Path,
    *,
    plans: Mapping[str, str | PlanReference] | None = None,
    terminal_tool: str | Sequence[str] | None = None,
    retry_errors: bool = True,
) -> DryRun:
    """What `score_file` with these arguments would do, without calling the judge or writing anything."""
    settings, spec = scorer.judge.settings, scorer.rubric.spec
    report = DryRun(
        samples=scorer.basis.samples,
        max_samples=scorer.basis.max_samples,
        resample_condense=scorer.basis.resample_condense,
        stages={
            "condense": Stage(settings.condense.model if spec.condenses else None),
            "grade": Stage(settings.grade.model),
        },
    )
    for stage in report.stages.values():
        stage.price = None if stage.model is None else price(stage.model)
    done = done_groups(scorer, output_path, retry_errors)
    planner = _Planner(scorer, report)
    for group in _groups(scorer, input_path, done, report, plans, terminal_tool):
        report.groups += 1
        await _group(planner, scorer, group)
    return report


def _groups(
    scorer: Scorer,
    input_path: Path,
    done: set[str],
    report: DryRun,
    plans: Mapping[str, str | PlanReference] | None,
    terminal_tool: str | Sequence[str] | None,
) -> Iterator[Group]:
    """The groups the run would score, as its reader finds them (invalid and duplicate lines reported)."""
    seen: set[str] = set()
    for lineno, line in read_lines(input_path):
        parsed = parse_line(Group, line, lineno)
        if isinstance(parsed, LineError):
            report.invalid.append(parsed)
            continue
        if parsed.group_id in seen:
            report.invalid.append(LineError(lineno, (f"group_id: duplicate {parsed.group_id!r}",)))
            continue
        seen.add(parsed.group_id)
        if parsed.group_id in done:
            report.done += 1
            continue
        try:
            yield prepare_group(parsed, plans, terminal_tool, spec=scorer.rubric.spec)
        except GroupInputError as exc:
            report.invalid.append(LineError(lineno, tuple(exc.problems)))
        except Exception as exc:  # as the run: this line's problem
            report.invalid.append(LineError(lineno, (f"cannot be read: {type(exc).__name__}: {exc}",)))
