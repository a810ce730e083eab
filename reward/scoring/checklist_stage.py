"""Scoring a group with a checklist rubric: the group's criteria make a rubric of its own
(reward.rubric.checklist.checklist_rubric), which a scorer sharing the judge and the cache grades rollout by
rollout; the group's line records the criteria, so its dimensions c1..cN can be read (and rescored) alone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reward.core.results import CriterionInfo, GroupResult
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.rubric.checklist import Criterion, checklist_rubric, criteria_of
from reward.rubric.load import Rubric
from reward.rubric.verdict import Verdict, response_format, verdict_from_cache, verdict_model

if TYPE_CHECKING:
    from reward.scoring.scorer import Scorer


def group_scorer(scorer: Scorer, group: Group) -> tuple[Scorer, list[Criterion]]:
    """A scorer of this group's criteria: the same judge, cache, counter and settings, the group's rubric."""
    criteria = criteria_of(scorer.rubric.spec, group)
    return with_rubric(scorer, checklist_rubric(scorer.rubric, criteria)), criteria


def with_rubric(scorer: Scorer, rubric: Rubric) -> Scorer:
    child = copy.copy(scorer)  # shares the judge, the cache and the basis: only the rubric's dimensions differ
    child.rubric = rubric
    child.response_format = response_format(rubric.spec)
    child._verdict_model = verdict_model(rubric.spec)
    return child


def verdict_loader(scorer: Scorer) -> Callable[[Any], Verdict]:
    """A cached verdict of this group's rubric, checked (what `reward score --dry-run` peeks at)."""
    spec, model = scorer.rubric.spec, scorer._verdict_model
    return lambda value: verdict_from_cache(spec, value, model)


def criteria_info(criteria: list[Criterion]) -> list[CriterionInfo]:
    return [
        CriterionInfo(
            id=c.id,
            text=c.text,
            category=c.category,
            weight=c.weight,
            weight_source="item" if c.explicit else "category",
        )
        for c in criteria
    ]


async def score_checklist(scorer: Scorer, group: Group, usage: Usage, deadline: float | None) -> GroupResult:
    child, criteria = group_scorer(scorer, group)
    result = await child.score_group(group, usage, deadline)
    result.criteria = criteria_info(criteria)
    return result
