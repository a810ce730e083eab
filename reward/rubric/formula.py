"""The reward formula as pure functions: group means of normalised scores, then the rubric's expression.

Every dimension score is normalised to [0, 1] on the rubric's scale; a group's mean is weighted by the
dimensions' weights; the reward is `reward_scale * formula(group means, constants)`. For the paper's
rubric this is eq. 2, r = (1 - alpha) * (s_pos - s_pit) + alpha * s_fa, on a scale of 100 (graded rewards
in [-50, 100], below which the hard penalties -100 / -50 sit).
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import fmean

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
    return spec.reward_scale * spec.expression.evaluate({**spec.constants, **means})


def graded_reward(spec: RubricSpec, scores: Mapping[str, DimensionScore]) -> tuple[float, dict[str, float]]:
    means = group_means(spec, scores)
    return combine(spec, means), means


def graded_range(spec: RubricSpec) -> tuple[float, float]:
    """The lowest and highest reward a graded rollout can get (exact: the formula is piecewise linear)."""
    lo, hi = spec.expression.extremes(list(spec.groups), spec.constants)
    return spec.reward_scale * lo, spec.reward_scale * hi


def penalty_warnings(spec: RubricSpec) -> list[str]:
    """A hard penalty above the lowest graded reward ranks a degenerate rollout over a graded one."""
    lo, _ = graded_range(spec)
    return [
        f"penalty {kind} = {value:g} is above the lowest graded reward ({lo:g})"
        for kind in spec.penalties.enabled()
        if (value := getattr(spec.penalties, kind)) > lo
    ]


def legacy_fields(means: Mapping[str, float]) -> dict[str, float]:
    return {field: means[group] for group, field in LEGACY_FIELDS.items() if group in means}
