"""The loop of `--samples auto` over one scored group: the rule (reward.rubric.adaptive) says which rollouts
get another verdict sample, the scorer draws them (each its own cached request, seed = sample index), until
the rule stops. Only the group's own samples decide, so groups scored concurrently never affect each other.

A rollout whose extra sample fails (or outlives the deadline) is an error, as with a fixed K. Under a batch
prefill (reward.scoring.batch), a sample the batch has not answered yet is no failure: the group's rounds stop
for this pass, and the next pass (with the answers) goes on from the same decisions, so the batches send
exactly the requests the synchronous run would.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from reward.core.results import RolloutResult, SamplingInfo
from reward.judge.base import JudgeError, Usage
from reward.rubric.adaptive import next_round
from reward.rubric.finish import sample_rewards
from reward.scoring.batch_replay import FAILED, PENDING
from reward.scoring.judged import error_result

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
    fake = False
    if any(_unanswered(r.error.category if r.error else None) for r in results):
        # the first samples are not all in: any round now would be decided on a partial group
        return results, fake, _info(most, results, graded, live, "batch_pending")
    while True:
        step = next_round([rewards[i] for i in live], fixed, most)
        if not step.more:
            reason = step.reason or "settled"
            break
        chosen = [live[j] for j in step.more]
        outcomes = await asyncio.gather(*(_more(scorer, _of(graded[i]), usage, deadline) for i in chosen))
        if any(problem is not None and _unanswered(problem[0]) for problem in outcomes):
            # this pass stops here; the next one reads the answers and decides the next round from them
            return results, fake, _info(most, results, graded, live, "batch_pending")
        for i, problem in zip(chosen, outcomes, strict=True):
            g = _of(graded[i])
            if problem is not None:
                r = results[i]
                results[i] = error_result(g.rollout, r.has_final_answer, *problem)
                results[i].warnings = r.warnings
                live.remove(i)
                continue
            rewards[i] = sample_rewards(rubric, g.samples)
    for i in live:
        g = _of(graded[i])
        if len(g.verdicts) > 1:
            finished, was_fake = scorer.finish(g, results[i])
            finished._transcript = results[i]._transcript
            results[i], fake = finished, fake or was_fake
    return results, fake, _info(most, results, graded, live, reason)


def _info(
    most: int, results: list[RolloutResult], graded: list[Graded | None], live: list[int], reason: str
) -> SamplingInfo:
    per = {results[i].id: len(_of(graded[i]).verdicts) for i in live}
    return SamplingInfo(mode="auto", max=most, spent=sum(per.values()), per_rollout=per, reason=reason)


def _unanswered(category: str | None) -> bool:
    """A batch prefill's outcome for a request its batches have not answered (yet, or at all): a rollout in
    that state is no failure to decide rounds on (the synchronous run would have its verdict)."""
    return category in (PENDING, FAILED)


def _of(g: Graded | None) -> Graded:
    assert g is not None, "a graded rollout keeps what grading it took"
    return g


async def _more(scorer: Scorer, g: Graded, usage: Usage, deadline: float | None) -> tuple[str, str] | None:
    """Draw one more sample of `g`; the error (category, message) that stopped it, or None."""
    try:
        async with asyncio.timeout_at(deadline):
            await scorer.more(g, usage)
    except TimeoutError:
        left = "" if deadline is None else " (the request deadline passed)"
        return "judge_timeout", f"no verdict in time{left}"
    except JudgeError as exc:
        return exc.category, exc.message
    return None
