"""The pairwise grading stage: pairs of graded rollouts, each judged in both orders (A/B and B/A), which
candidate is better on each dimension; a rollout's score on a dimension is its win rate over every judgement
it took part in (a win 1, a tie 1/2, a loss 0), mapped onto the rubric's scale, and its reward is the rubric's
formula over those scores, as with one call per rollout.

The pairs follow the rubric's `grading.schedule` over the graded rollouts in a canonical order (sorted by
rollout id, shuffled with a seed derived from the group id), so the order of rollouts in the input changes
nothing: `all` pairs (G(G-1)/2), a `ring` (each with the next: G pairs), or `k_neighbours` (each with its k
next ones). Each pair costs two calls per sample. The share of pair verdicts (one dimension of one pair in one
sample) whose two orders disagree, translated back to rollout ids, is the group's position disagreement,
recorded in its output (0: the judge never followed the position; 1: it always did).

A group with fewer than two graded rollouts has no pair: its graded rollout is an error (`no_pair`), never a
made-up score. A pair whose judgement fails makes every graded rollout of the group an error (the win rates
would otherwise rest on different comparison sets).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from reward.core.results import GradingInfo
from reward.core.trajectory import Group
from reward.judge.base import JudgeError, Usage
from reward.rubric.group_verdict import PairVerdict, pair_model, pair_response_format, pair_verdict_from_cache
from reward.rubric.group_verdict import parse_pair_verdict as _parse
from reward.rubric.inputs import group_inputs
from reward.rubric.prompts import TemplateProblem, candidates_messages
from reward.rubric.spec import Grading
from reward.rubric.verdict import DimensionScore, Verdict
from reward.scoring.group_stage import (
    Outcome,
    Prepared,
    Request,
    _reply_check,
    ask_all,
    first_error,
    order_seed,
    run_stage,
    shuffled,
)
from reward.scoring.judged import Plan

if TYPE_CHECKING:
    from reward.scoring.scorer import Scorer


def schedule(n: int, grading: Grading) -> list[tuple[int, int]]:
    """The pairs (i, j), i before j in the canonical order, that `grading.schedule` judges among n rollouts."""
    if n < 2:
        return []
    if grading.schedule == "all" or n == 2:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    k = 1 if grading.schedule == "ring" else min(grading.neighbours, n - 1)
    pairs = {tuple(sorted((i, (i + d) % n))) for i in range(n) for d in range(1, k + 1)}
    return sorted((a, b) for a, b in pairs)


def pair_requests(scorer: Scorer, group: Group, ref: Plan | None, first: Prepared, second: Prepared) -> list[Request]:
    """The requests judging `first` (shown as A) against `second` (B), one per sample."""
    spec = scorer.rubric.spec
    rf, model = pair_response_format(spec), pair_model(spec)
    inputs = group_inputs(spec, group)
    out = []
    for sample in range(scorer.fixed_k):
        shown = [first.shown("A", sample), second.shown("B", sample)]
        try:
            messages = candidates_messages(scorer.rubric, first.query, inputs, None if ref is None else ref.text, shown)
        except TemplateProblem as exc:
            raise JudgeError("template_error", str(exc)) from exc
        out.append(
            Request(
                messages,
                rf,
                scorer.seed(sample),
                lambda v: pair_verdict_from_cache(spec, v, model),
                _reply_check(
                    lambda c, f: _parse(spec, c, f, model), "a JSON object preferring A, B or tie on every dimension"
                ),
            )
        )
    return out


def all_requests(scorer: Scorer, group: Group, ref: Plan | None, live: list[Prepared]) -> list[Request]:
    """Every request of the group's schedule: per pair, both orders, per sample (what the dry run counts)."""
    order = shuffled(group.group_id, live)
    out: list[Request] = []
    for i, j in schedule(len(order), scorer.rubric.spec.grading):
        out += pair_requests(scorer, group, ref, order[i], order[j])
        out += pair_requests(scorer, group, ref, order[j], order[i])
    return out


def _outcome(preferred: str, shown_first: bool) -> float:
    """What one judgement gave the rollout shown first (`shown_first`) or second: 1 a win, 1/2 a tie, 0 a loss."""
    if preferred == "tie":
        return 0.5
    return 1.0 if (preferred == "A") == shown_first else 0.0


async def grade_pairwise(
    scorer: Scorer, group: Group, reference: asyncio.Task[Plan] | None, usage: Usage, deadline: float | None
) -> tuple[list[Outcome], GradingInfo]:
    """The group's outcomes (input order) and what the stage did."""
    spec = scorer.rubric.spec
    seed = order_seed(group.group_id)
    lo, hi = spec.scale.min, spec.scale.max
    k = scorer.fixed_k

    info = GradingInfo(mode="pairwise", calls=0, seed=seed, pairs=0)

    async def judging(live: list[Prepared], ref: Plan | None) -> dict[int, list[Verdict] | JudgeError]:
        nonlocal info
        if len(live) < 2:
            raise JudgeError("no_pair", "pairwise grading needs at least two graded rollouts in the group")
        order = shuffled(group.group_id, live)
        pairs = schedule(len(order), spec.grading)
        jobs = [
            (
                pair_requests(scorer, group, ref, order[i], order[j]),
                pair_requests(scorer, group, ref, order[j], order[i]),
            )
            for i, j in pairs
        ]
        flat = [r for ab, ba in jobs for r in (*ab, *ba)]
        info = GradingInfo(mode="pairwise", calls=len(flat), seed=seed, pairs=len(pairs))  # made, failed or not
        done: list[PairVerdict] = await ask_all(scorer, flat, usage)
        failed = first_error(done)
        if failed is not None:  # the win rates would rest on different comparison sets
            raise failed
        # per canonical position, per sample, per dimension: the outcomes of its judgements
        won: list[list[dict[str, list[float]]]] = [[{} for _ in range(k)] for _ in order]
        disagree = 0  # pair verdicts (a dimension of a pair in one sample) whose two orders disagree
        for n, (i, j) in enumerate(pairs):
            ab, ba = done[2 * k * n : 2 * k * n + k], done[2 * k * n + k : 2 * k * (n + 1)]
            for s in range(k):
                for d in spec.dimensions:
                    first, second = ab[s].preferred[d.name][0], ba[s].preferred[d.name][0]
                    for pos, value in (
                        (i, _outcome(first, True)),
                        (j, _outcome(first, False)),
                        (j, _outcome(second, True)),
                        (i, _outcome(second, False)),
                    ):
                        won[pos][s].setdefault(d.name, []).append(value)
                    disagree += _outcome(first, True) != _outcome(second, False)
        fake = any(v.fake for v in done)
        verdicts: dict[int, list[Verdict] | JudgeError] = {}
        for pos, p in enumerate(order):
            samples = []
            for s in range(k):
                scores = {}
                for d in spec.dimensions:
                    got = won[pos][s][d.name]
                    rate = sum(got) / len(got)
                    reason = f"win rate {rate:.3f} over {len(got)} pairwise judgements (ties count 1/2)"
                    scores[d.name] = DimensionScore(lo + rate * (hi - lo), reason)
                samples.append(Verdict(scores, fake))
            verdicts[p.index] = samples
        share = disagree / (len(pairs) * k * len(spec.dimensions))
        info = info.model_copy(update={"position_disagreement": share})
        return verdicts

    outcomes = await run_stage(scorer, group, reference, usage, deadline, judging)
    return outcomes, info
