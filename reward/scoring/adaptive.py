"""The loop of `--samples auto` over one scored group: the rule (reward.rubric.adaptive) says which rollouts
get another verdict sample, the scorer draws them (each its own cached request, seed = sample index), until
the rule stops. Only the group's own samples decide, so groups scored concurrently never affect each other.

Every graded rollout has its reward from sample 0 already, so an extra sample that fails (or outlives the
request's deadline) costs no reward: the rounds stop there ("judge_error" / "deadline") and each rollout keeps
the samples it has; no round starts after the deadline. Rollouts whose grading requests are identical are one
unit: one request per round draws the unit's sample, which each copy keeps. Under a batch prefill
(reward.scoring.batch), a sample the batch has not answered yet is no failure: the group's rounds stop for this
pass, and the next pass (with the answers) goes on from the same decisions, so the batches send exactly the
requests the synchronous run would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING

from reward.core.results import RolloutResult, SamplingInfo
from reward.judge.base import JudgeError, Usage
from reward.rubric.adaptive import next_round, units_of
from reward.rubric.finish import sample_rewards
from reward.scoring.batch_replay import FAILED, PENDING

if TYPE_CHECKING:
    from reward.scoring.scorer import Graded, Scorer


async def adapt(
    scorer: Scorer,
    results: list[RolloutResult],
    graded: list[Graded | None],
    usage: Usage,
    deadline: float | None,
) -> tuple[list[RolloutResult], bool, SamplingInfo]:
    """The group's rollouts after adaptive sampling, whether any new judgement was fake, and what was spent."""
    rubric = scorer.rubric
    most = scorer.judge.settings.max_samples or 2
    results = list(results)
    live = [i for i, (r, g) in enumerate(zip(results, graded, strict=True)) if r.status == "ok" and g is not None]
    fixed = [float(r.reward) for r in results if r.status == "penalized" and r.reward is not None]
    rewards = {i: sample_rewards(rubric, _of(graded[i]).samples) for i in live}
    unit = units_of([_request_key(scorer, _of(graded[i])) for i in live])  # positions in `live`
    info = _Info(most, results, graded, live, unit)
    fake = False
    if any(_unanswered(r.error.category if r.error else None) for r in results):
        # the first samples are not all in: any round now would be decided on a partial group
        return results, fake, info("batch_pending")
    loop = asyncio.get_running_loop()
    while True:
        step = next_round([rewards[i] for i in live], fixed, most, unit)
        if not step.more:
            reason = step.reason or "settled"
            break
        if deadline is not None and loop.time() >= deadline:
            reason = "deadline"  # a round started now could only time out
            break
        heads = [live[j] for j in step.more if unit[j] == j]  # one request per unit
        outcomes = await asyncio.gather(*(_more(scorer, _of(graded[i]), usage, deadline) for i in heads))
        if any(_unanswered(outcome) for outcome in outcomes):
            # this pass stops here; the next one reads the answers and decides the next round from them
            return results, fake, info("batch_pending")
        got = {i for i, outcome in zip(heads, outcomes, strict=True) if outcome is None}
        for j in step.more:
            head = live[unit[j]]
            if head in got:
                if live[j] != head:  # a copy: the unit's sample is its own (the identical request's verdict)
                    _copy_last(scorer, _of(graded[head]), _of(graded[live[j]]))
                rewards[live[j]] = sample_rewards(rubric, _of(graded[live[j]]).samples)
        if len(got) < len(heads):  # the rollouts keep what they have; no reward is lost to an extra sample
            reason = "deadline" if "deadline" in outcomes else "judge_error"
            break
    for i in live:
        g = _of(graded[i])
        if len(g.verdicts) > 1:
            finished, was_fake = scorer.finish(g, results[i])
            finished._transcript = results[i]._transcript
            results[i], fake = finished, fake or was_fake
    return results, fake, info(reason)


class _Info:
    """The group's SamplingInfo, from the samples each graded rollout holds when sampling stops."""

    def __init__(
        self, most: int, results: list[RolloutResult], graded: list[Graded | None], live: list[int], unit: list[int]
    ) -> None:
        self.most, self.results, self.graded, self.live = most, results, graded, live
        ids = [results[i].id for i in live]
        units = {u: [ids[j] for j, v in enumerate(unit) if v == u] for u in dict.fromkeys(unit)}
        self.together = [m for m in units.values() if len(m) > 1] or None

    def __call__(self, reason: str) -> SamplingInfo:
        per = {self.results[i].id: len(_of(self.graded[i]).verdicts) for i in self.live}
        spent = sum(per.values())
        return SamplingInfo(
            mode="auto", max=self.most, spent=spent, per_rollout=per, reason=reason, together=self.together
        )


def _request_key(scorer: Scorer, g: Graded) -> str:
    """What makes every sample's grading request of `g`: its sample-0 grading request, and with
    resample_condense its condensing request (whose seeded plans the later samples grade)."""
    request: list[object] = [
        scorer.grade_request(g.group, g.rollout, g.ci, g.ref, g.candidates[0] if g.candidates else None)
    ]
    if scorer.judge.settings.resample_condense and scorer.rubric.spec.condenses:
        request.append(scorer.condense_request(g.group, g.ci))
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _copy_last(scorer: Scorer, head: Graded, copy: Graded) -> None:
    """The unit's new sample, for a copy whose requests are the head's (the cache would answer them alike)."""
    copy.verdicts.append(head.verdicts[-1])
    if scorer.judge.settings.resample_condense and head.candidates:
        copy.candidates.append(head.candidates[-1])


def _unanswered(outcome: str | None) -> bool:
    """A batch prefill's outcome for a request its batches have not answered (yet, or at all): a rollout in
    that state is no failure to decide rounds on (the synchronous run would have its verdict)."""
    return outcome in (PENDING, FAILED)


def _of(g: Graded | None) -> Graded:
    assert g is not None, "a graded rollout keeps what grading it took"
    return g


async def _more(scorer: Scorer, g: Graded, usage: Usage, deadline: float | None) -> str | None:
    """Draw one more sample of `g`: None when it came, else why not ("deadline", a batch prefill's
    PENDING / FAILED category, or "judge_error")."""
    try:
        async with asyncio.timeout_at(deadline):
            await scorer.more(g, usage)
    except TimeoutError:
        return "deadline"
    except JudgeError as exc:
        return exc.category if _unanswered(exc.category) else "judge_error"
    return None
