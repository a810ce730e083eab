"""`reward score --dry-run` for the group and pairwise grading stages: the same condensing requests as rollout by
rollout grading, then the stage's own grading requests, built by the stage's own code, so the counts are the run's
(a group over its window with no anchors, or a pairwise group of one graded rollout, is refused by the run:
errors, no call)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from reward.core.trajectory import Group
from reward.judge.base import JudgeError
from reward.rubric.penalties import check_penalty
from reward.scoring.group_stage import Prepared, group_requests, shuffled, windows
from reward.scoring.judged import Plan
from reward.scoring.pairwise_stage import all_requests

if TYPE_CHECKING:
    from reward.scoring.dry_run import _Planner
    from reward.scoring.scorer import Scorer


async def stage_group(
    planner: _Planner,
    scorer: Scorer,
    group: Group,
    seeds: list[int | None],
    reference_plan: Callable[[], Awaitable[Plan | None]],
) -> None:
    """A group or pairwise stage's group: condensing as rollout by rollout, then the stage's own requests, built
    by its own code (one per sample for a group; two per pair and sample for pairwise)."""
    report, spec = planner.report, scorer.rubric.spec
    live: list[Prepared] = []
    for index, rollout in enumerate(group.rollouts):
        report.rollouts += 1
        if check_penalty(spec.penalties, rollout, scorer.counter) is not None:
            report.penalized += 1
            continue
        report.judged += 1
        ci = scorer.condense_input(group.query, rollout)
        try:
            request = scorer.condense_request(group, ci)
            plan_seeds = seeds if scorer.judge.settings.resample_condense else [None]
            candidates = [await planner.plan(request, s) for s in plan_seeds]
        except JudgeError:
            report.errors += 1
            continue
        live.append(Prepared(index, rollout, True, ci, candidates))
    if not live:
        return
    try:
        ref = await reference_plan()
        if spec.grading.mode == "group":
            g = spec.grading
            too_many = len(live) > g.window and g.anchors == 0  # refused by the run: errors, no call
            shown = shuffled(group.group_id, live)
            parts = [] if too_many else [[shown[i] for i in w] for w in windows(len(shown), g.window, g.anchors)]
            requests = [r for part in parts for r in group_requests(scorer, group, ref, part)]
        else:
            too_many = len(live) < 2  # no pair: an error, no call
            requests = all_requests(scorer, group, ref, live)
    except JudgeError:
        report.errors += len(live)
        return
    if too_many:
        report.errors += len(live)
    for r in requests:
        load = None if planner.unknown(r.messages) else r.load
        await planner.request("grade", r.messages, r.seed, load, r.response_format)
