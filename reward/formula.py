"""The reward formula (paper eq. 2) as pure functions.

r = (1 - alpha) * (s_pos - s_pit) + alpha * s_fa, with every dimension score normalised to [0, 1] and
the result multiplied by the rubric's reward_scale (100: graded rewards lie in [-50, 100], below which
the hard penalties -100 / -50 sit).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from reward.rubric import RubricSpec
from reward.verdict import DimensionScore


@dataclass(frozen=True)
class GroupMeans:
    s_pos: float
    s_pit: float
    s_fa: float


def normalise(score: float, lo: int, hi: int) -> float:
    return (score - lo) / (hi - lo)


def group_means(spec: RubricSpec, scores: dict[str, DimensionScore]) -> GroupMeans:
    lo, hi = spec.scale.min, spec.scale.max

    def mean(group: str) -> float:
        return fmean(normalise(scores[d.name].score, lo, hi) for d in spec.in_group(group))

    return GroupMeans(s_pos=mean("positive"), s_pit=mean("pitfall"), s_fa=mean("final_answer"))


def combine(means: GroupMeans, alpha: float, scale: float) -> float:
    return scale * ((1 - alpha) * (means.s_pos - means.s_pit) + alpha * means.s_fa)


def graded_reward(spec: RubricSpec, scores: dict[str, DimensionScore]) -> tuple[float, GroupMeans]:
    means = group_means(spec, scores)
    return combine(means, spec.alpha, spec.reward_scale), means


def graded_range(spec: RubricSpec) -> tuple[float, float]:
    """The lowest and highest reward a graded rollout can get (s_pos=0, s_pit=1, s_fa=0 and the reverse)."""
    return (
        combine(GroupMeans(0.0, 1.0, 0.0), spec.alpha, spec.reward_scale),
        combine(GroupMeans(1.0, 0.0, 1.0), spec.alpha, spec.reward_scale),
    )
