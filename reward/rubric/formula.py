"""The reward formula as pure functions: group means of normalised scores, then the rubric's expression.

Every dimension score is normalised to [0, 1] on the rubric's scale; a group's mean is weighted by the
dimensions' weights; the reward is `reward_scale * formula(group means, constants)`. For the paper's
rubric this is eq. 2, r = (1 - alpha) * (s_pos - s_pit) + alpha * s_fa, on a scale of 100 (graded rewards
in [-50, 100], below which the hard penalties -100 / -50 sit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import fmean

from reward.rubric.bounds import reward_range
from reward.rubric.checklist_field import ChecklistField, most_pitfall_weight
from reward.rubric.expression import ExpressionError
from reward.rubric.spec import RubricSpec
from reward.rubric.verdict import DimensionScore

# Output names of the paper's three group means (`s_pos`, `s_pit`, `s_fa` in every result).
LEGACY_FIELDS = {"positive": "s_pos", "pitfall": "s_pit", "final_answer": "s_fa"}


def normalise(score: float, lo: float, hi: float) -> float:
    return (score - lo) / (hi - lo)


def group_means(spec: RubricSpec, scores: Mapping[str, DimensionScore]) -> dict[str, float]:
    lo, hi = spec.scale.min, spec.scale.max
    means: dict[str, float] = {}
    for group in spec.groups:
        dims = spec.in_group(group)
        values = [normalise(scores[d.name].score, lo, hi) for d in dims]
        if all(d.weight == 1.0 for d in dims):
            means[group] = fmean(values)  # the unweighted mean, bit for bit as before weights existed
        else:
            means[group] = sum(d.weight * v for d, v in zip(dims, values, strict=True)) / sum(d.weight for d in dims)
    return means


def combine(spec: RubricSpec, means: Mapping[str, float]) -> float:
    """The reward; an ExpressionError, never an inf or NaN (which JSON would write as null beside status ok)."""
    reward = spec.reward_scale * spec.expression.evaluate({**spec.constants, **means})
    if not math.isfinite(reward):
        raise ExpressionError(f"the reward is {reward} (reward_scale {spec.reward_scale:g} × the formula): not finite")
    return reward


def graded_reward(spec: RubricSpec, scores: Mapping[str, DimensionScore]) -> tuple[float, dict[str, float]]:
    means = group_means(spec, scores)
    return combine(spec, means), means


def graded_range(spec: RubricSpec) -> tuple[float, float]:
    """The lowest and highest reward a graded rollout can get (exact: the formula is piecewise linear). A checklist
    rubric's met, pitfalls and pitfall_weight are set per group (reward.rubric.checklist): its range is over every
    checklist it accepts, pitfall_weight from 0 (no pitfalls) to its largest (reward.rubric.checklist_field)."""
    field = spec.inputs.group.get(spec.grading.criteria or "")
    if spec.grading.mode == "checklist" and isinstance(field, ChecklistField):
        sweep = {"pitfall_weight": most_pitfall_weight(field)}
        return reward_range(spec.expression, ["met", "pitfalls"], spec.constants, spec.reward_scale, sweep)
    return reward_range(spec.expression, list(spec.groups), spec.constants, spec.reward_scale)


def penalty_warnings(spec: RubricSpec) -> list[str]:
    """A hard penalty above the lowest graded reward ranks a degenerate rollout over a graded one."""
    lo, _ = graded_range(spec)
    return [
        f"penalty {kind} = {value:g} is above the lowest graded reward ({lo:g})"
        for kind in spec.penalties.enabled()
        if (value := getattr(spec.penalties, kind)) > lo
    ]


DEFAULT_SCALE = 100.0  # the scale the default group_filter.min_std (0.01) was written for


def filter_warnings(spec: RubricSpec) -> list[str]:
    """`group_filter.min_std` is on the reported scale: the default 0.01 was written for reward_scale 100. A
    rubric that changes the scale and keeps the default filters 100/scale times more strictly than it reads."""
    gf = spec.group_filter
    if "min_std" in gf.model_fields_set or gf.min_std == 0 or spec.reward_scale == DEFAULT_SCALE:
        return []
    same = gf.min_std * spec.reward_scale / DEFAULT_SCALE
    return [
        f"group_filter.min_std is the default {gf.min_std:g}, written for reward_scale {DEFAULT_SCALE:g}; with "
        f"reward_scale {spec.reward_scale:g} it is {DEFAULT_SCALE / spec.reward_scale:g}x as strict: set it explicitly "
        f"(min_std: {same:g} keeps the default's meaning)"
    ]


def rubric_warnings(spec: RubricSpec) -> list[str]:
    """Everything about a rubric's numbers that is allowed but probably not meant."""
    return penalty_warnings(spec) + filter_warnings(spec)


def legacy_fields(means: Mapping[str, float]) -> dict[str, float]:
    return {field: means[group] for group, field in LEGACY_FIELDS.items() if group in means}
