"""The group (listwise) grading stage: one grading call sees the whole group, the reference plan and every
graded rollout's plan and final answer, each fenced and labelled A, B, ... (never the trainer's rollout id),
in an order shuffled with a seed derived from the group id; its verdict scores every label on every dimension,
and each rollout's reward comes from the rubric's formula as with one call per rollout.

What a group gets, rollout by rollout: penalties and condensing exactly as rollout-by-rollout grading does
(the same cached condensing requests), then for the graded ones one request per sample (sample 0 with no seed,
sample i with seed i). A group of one graded rollout is graded alone with the same prompt shape. More graded
rollouts than `grading.window`: windows that all show the same `grading.anchors` rollouts (the first of the
shuffled order) and the next ones, each later window's scores shifted per dimension so that its anchors' mean
equals theirs in the first window (one relative scale across calls); with anchors 0 such a group is refused,
each graded rollout an error `group_too_large`. A verdict that misses, duplicates or invents a label is
re-asked with the reason by the judge's re-ask loop, then is an error, never a number: of every graded rollout
of the group when it has one window; of a window's rollouts shown in no other answered window when it has
several (every window shows the anchors, so any answered one gives the scale: the first answered window's
anchors; with no window answered, every graded rollout of the group).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from reward.core.results import GradingInfo, RolloutResult
from reward.core.trajectory import CondenseInput, Group, Rollout
from reward.judge.base import JudgeError, Reply, Usage
from reward.native.calls import tool_warnings
from reward.rubric.group_verdict import (
    LABELS,
    GroupVerdict,
    group_response_format,
    group_verdict_from_cache,
    parse_group_verdict,
)
from reward.rubric.inputs import group_inputs
from reward.rubric.penalties import check_penalty, has_final_answer
from reward.rubric.prompts import Messages, TemplateProblem, candidates_messages
from reward.rubric.spec import RubricSpec
from reward.rubric.verdict import DimensionScore, Verdict, verdict_model
from reward.scoring.judged import Graded, Plan, error_result, reference_of, transcript_of
from reward.scoring.plan_check import check_verdict

if TYPE_CHECKING:
    from reward.scoring.scorer import Scorer

Outcome = tuple[RolloutResult, bool, Graded | None]


@dataclass
class Prepared:
    """A rollout past penalties and condensing: what a multi-rollout request shows of it."""

    index: int  # in the group's input order
    rollout: Rollout
    fa_ok: bool
    ci: CondenseInput
    candidates: list[Plan]  # one plan, or one per sample with resample_condense

    def plan(self, sample: int) -> Plan:
        return self.candidates[sample % len(self.candidates)]

    def shown(self, label: str, sample: int) -> tuple[str, str, str]:
        return label, self.plan(sample).text, self.ci.final_answer

    @property
    def query(self) -> str:
        """The group's query as condensing and rollout-by-rollout grading show it (cleaned, canonical)."""
        return self.ci.query


@dataclass
class Request:
    """One grading request of a stage, as the run sends it and the dry run counts it."""

    messages: Messages
    response_format: dict[str, Any]
    seed: int | None
    load: Callable[[Any], Any]  # rebuilds the judgement from the cache (raises on a value it cannot trust)
    validate: Callable[[Reply], Any]


def order_seed(group_id: str) -> int:
    """The seed of the order a group is shown in: the same group id, the same order, in every run."""
    return int.from_bytes(hashlib.sha256(group_id.encode()).digest()[:4], "big")


def shuffled(group_id: str, items: list[Prepared]) -> list[Prepared]:
    """`items` in input-order-independent canonical order (by rollout id), then shuffled by the group's seed."""
    canonical = sorted(items, key=lambda p: str(p.rollout.id))
    random.Random(order_seed(group_id)).shuffle(canonical)
    return canonical


async def prepare(scorer: Scorer, group: Group, index: int, usage: Usage) -> Prepared | RolloutResult:
    """Penalties, then the candidate plan(s) (cached), as rollout-by-rollout grading does; a result when done."""
    rollout = group.rollouts[index]
    spec = scorer.rubric.spec
    assert rollout.id is not None
    fa_ok = has_final_answer(rollout.final_answer)
    penalty = await asyncio.to_thread(check_penalty, spec.penalties, rollout, scorer.counter)
    if penalty is not None:
        return RolloutResult(
            id=rollout.id,
            status="penalized",
            reward=penalty.reward,
            penalty=penalty.kind,
            penalty_detail=penalty.detail,
            in_group_stats=True,
            has_final_answer=fa_ok,
        )
    ci = await asyncio.to_thread(scorer.condense_input, group.query, rollout)
    seeds = [scorer.seed(i) for i in range(scorer.fixed_k)] if scorer.judge.settings.resample_condense else [None]
    try:
        request = scorer.condense_request(group, ci)
        plans = list(await asyncio.gather(*(scorer.plan(request, usage, s) for s in seeds)))
    except JudgeError as exc:
        return error_result(rollout, fa_ok, exc.category, exc.message)
    return Prepared(index, rollout, fa_ok, ci, plans)


def _reply_check(check: Callable[[str | None, bool], Any], wanted: str) -> Callable[[Reply], Any]:
    """A stage's validator: the checks every grading reply gets (empty, cut off, a refusal), then `check`."""
    return lambda reply: check_verdict(reply, wanted, lambda content: check(content, reply.fake))


def group_requests(scorer: Scorer, group: Group, ref: Plan | None, shown: list[Prepared]) -> list[Request]:
    """The group's grading requests, one per sample, with `shown` in the order given and labelled A, B, ..."""
    spec = scorer.rubric.spec
    labels = list(LABELS[: len(shown)])
    rf = group_response_format(spec, labels)
    model = verdict_model(spec)
    inputs = group_inputs(spec, group)

    def load(value: Any) -> GroupVerdict:
        return group_verdict_from_cache(spec, value, labels, model)

    def check(content: str | None, fake: bool) -> GroupVerdict:
        return parse_group_verdict(spec, content, labels, fake, model)

    out = []
    for sample in range(scorer.fixed_k):
        candidates = [p.shown(label, sample) for label, p in zip(labels, shown, strict=True)]
        try:
            messages = candidates_messages(
                scorer.rubric, shown[0].query, inputs, None if ref is None else ref.text, candidates
            )
        except TemplateProblem as exc:
            raise JudgeError("template_error", str(exc)) from exc
        out.append(
            Request(
                messages,
                rf,
                scorer.seed(sample),
                load,
                _reply_check(check, "a JSON object scoring every label"),
            )
        )
    return out


async def ask(scorer: Scorer, request: Request, usage: Usage) -> Any:
    return await scorer.judgement(
        "grade", request.messages, request.validate, request.load, usage, request.response_format, request.seed
    )


async def ask_all(scorer: Scorer, requests: list[Request], usage: Usage) -> list[Any]:
    """Every request's judgement, or its JudgeError: all are awaited (made, billed and counted in the group's
    usage), whichever fail."""
    done = await asyncio.gather(*(ask(scorer, r, usage) for r in requests), return_exceptions=True)
    for d in done:
        if isinstance(d, BaseException) and not isinstance(d, JudgeError):
            raise d
    return done


def first_error(done: list[Any]) -> JudgeError | None:
    return next((d for d in done if isinstance(d, JudgeError)), None)


# A graded rollout's verdicts (one per sample), or why it has none (its call failed).
Judging = Callable[[list[Prepared], Plan | None], Awaitable[dict[int, list[Verdict] | JudgeError]]]


async def run_stage(
    scorer: Scorer,
    group: Group,
    reference: asyncio.Task[Plan] | None,
    usage: Usage,
    deadline: float | None,
    judging: Judging,
) -> list[Outcome]:
    """Prepare every rollout, judge the graded ones together with `judging`, and finish each as the scorer
    does; a rollout `judging` gives a JudgeError is an error, and a failure of the whole judgement (or the
    deadline) is an error of every graded rollout."""
    results: dict[int, Outcome] = {}
    live: list[Prepared] = []
    try:
        async with asyncio.timeout_at(deadline):
            prepared = await asyncio.gather(*(prepare(scorer, group, i, usage) for i in range(len(group.rollouts))))
            for i, p in enumerate(prepared):
                if isinstance(p, RolloutResult):
                    results[i] = (p, False, None)
                else:
                    live.append(p)
            if live:
                ref = await reference_of(reference)
                verdicts = await judging(live, ref)
                for p in live:
                    got = verdicts[p.index]
                    if isinstance(got, JudgeError):
                        results[p.index] = (error_result(p.rollout, p.fa_ok, got.category, got.message), False, None)
                        continue
                    graded = Graded(group, p.rollout, p.ci, reference, p.candidates, ref, got)
                    shell = RolloutResult(
                        id=str(p.rollout.id), status="ok", reward=None, in_group_stats=True, has_final_answer=p.fa_ok
                    )
                    result, fake = scorer.finish(graded, shell)
                    results[p.index] = (result, fake, graded)
    except TimeoutError:
        left = "" if deadline is None else " (the request deadline passed)"
        for p in live:
            results.setdefault(
                p.index, (error_result(p.rollout, p.fa_ok, "judge_timeout", f"no verdict in time{left}"), False, None)
            )
    except JudgeError as exc:
        for p in live:
            results[p.index] = (error_result(p.rollout, p.fa_ok, exc.category, exc.message), False, None)
    for i, r in enumerate(group.rollouts):
        if i not in results:  # timed out before it was prepared
            results[i] = (
                error_result(r, has_final_answer(r.final_answer), "judge_timeout", "no verdict in time"),
                False,
                None,
            )
        out, _, took = results[i]
        out.warnings = tool_warnings(r)  # as `Scorer.score_rollout` finishes one
        if scorer.keep_plans:
            ci = took.ci if took else await asyncio.to_thread(scorer.condense_input, group.query, r)
            out._transcript = transcript_of(ci)
    return [results[i] for i in range(len(group.rollouts))]


def windows(n: int, size: int, anchors: int) -> list[list[int]]:
    """The positions (in the shuffled order) each call shows: all n when they fit in `size`; else the first
    `size`, then windows of the `anchors` first ones and the next `size - anchors` ones, until all are shown."""
    if n <= size:
        return [list(range(n))]
    step = size - anchors
    return [
        list(range(size)),
        *([*range(anchors), *range(start, min(n, start + step))] for start in range(size, n, step)),
    ]


def shift(spec: RubricSpec, first: list[Verdict], here: list[Verdict], verdict: Verdict, window: int) -> Verdict:
    """`verdict` of a later window put on the first window's scale: each dimension shifted by the difference of
    its anchors' mean score there and here, clipped to the scale (rounded on an integer scale)."""
    lo, hi = spec.scale.min, spec.scale.max
    scores = {}
    for name, s in verdict.scores.items():
        offset = fmean(v.scores[name].score for v in first) - fmean(v.scores[name].score for v in here)
        value = min(hi, max(lo, s.score + offset))
        value = round(value) if spec.scale.kind == "integer" else value
        scores[name] = DimensionScore(
            value, f"{s.reason} [window {window + 1}, shifted {offset:+.2f} onto the anchors]"
        )
    return Verdict(scores, verdict.fake)


async def grade_group(
    scorer: Scorer, group: Group, reference: asyncio.Task[Plan] | None, usage: Usage, deadline: float | None
) -> tuple[list[Outcome], GradingInfo]:
    """The group's outcomes (input order) and what the stage did."""
    spec = scorer.rubric.spec
    seed = order_seed(group.group_id)
    size, anchors = spec.grading.window, spec.grading.anchors
    info = GradingInfo(mode="group", calls=0, seed=seed)

    async def judging(live: list[Prepared], ref: Plan | None) -> dict[int, list[Verdict] | JudgeError]:
        nonlocal info
        if len(live) > size and anchors == 0:
            message = (
                f"{len(live)} graded rollouts exceed grading.window {size} and grading.anchors is 0: one call would "
                "not show them all (raise grading.window, set grading.anchors, or use a pairwise rubric)"
            )
            raise JudgeError("group_too_large", message)
        shown = shuffled(group.group_id, live)
        parts = [[shown[i] for i in w] for w in windows(len(shown), size, anchors)]
        flat = [r for part in parts for r in group_requests(scorer, group, ref, part)]
        labels = {str(p.rollout.id): LABELS[i] for part in parts for i, p in enumerate(part)}
        ids = [[str(p.rollout.id) for p in part] for part in parts] if len(parts) > 1 else None
        info = GradingInfo(mode="group", calls=len(flat), seed=seed, labels=labels, windows=ids)  # failed or not
        done = await ask_all(scorer, flat, usage)
        k = scorer.fixed_k
        per_window: list[list[GroupVerdict]] = [done[w * k : (w + 1) * k] for w in range(len(parts))]
        failed = [first_error(got) for got in per_window]
        answered = [w for w, e in enumerate(failed) if e is None]
        base = answered[0] if answered else -1
        scale = per_window[base] if answered else []  # the first answered window's anchors give the scale
        verdicts: dict[int, list[Verdict] | JudgeError] = {}
        for w in [*answered, *(w for w, e in enumerate(failed) if e is not None)]:
            error, got = failed[w], per_window[w]
            for i, p in enumerate(parts[w]):
                if p.index in verdicts:  # an anchor: its scores are the first answered window's
                    continue
                if error is not None:  # shown in no answered window
                    where = f"window {w + 1} of {len(parts)}: " if len(parts) > 1 else ""
                    verdicts[p.index] = JudgeError(error.category, where + error.message)
                    continue
                mine = [g.verdicts[LABELS[i]] for g in got]
                if w != base:
                    anchor = LABELS[:anchors]
                    mine = [
                        shift(spec, [scale[s].verdicts[x] for x in anchor], [got[s].verdicts[x] for x in anchor], v, w)
                        for s, v in enumerate(mine)
                    ]
                verdicts[p.index] = mine
        return verdicts

    outcomes = await run_stage(scorer, group, reference, usage, deadline, judging)
    if info.calls == 0 and any(r.error and r.error.category == "group_too_large" for r, _, _ in outcomes):
        info = info.model_copy(update={"refused": f"more graded rollouts than grading.window {size}, no anchors"})
    return outcomes, info
