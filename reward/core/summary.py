"""Summary statistics over scored groups: the end-of-run table of `reward score` (computed from the output
file, so it covers resumed runs) and the per-step `metrics` of the service."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from reward.core.results import GroupResult

TARGET = 0.8  # the reliability `k_needed` aims at (reward.rubric.reliability)


def spearman_brown(r1: float, k: float) -> float:
    """The reliability of the mean of k samples, from a single sample's (k may be a harmonic mean of K's)."""
    return k * r1 / (1 + (k - 1) * r1)


def k_needed(r1: float | None, target: float = TARGET) -> int | None:
    """The fewest samples whose mean reaches `target` reliability (Spearman-Brown): ceil(T (1 - r1) / (r1 (1 - T))),
    1 when r1 >= T, null when r1 is 0 or unknown (no K reaches it)."""
    if r1 is None or not r1 > 0 or not 0 < target < 1:  # also NaN, and a target no K can reach
        return None
    if r1 >= target:
        return 1
    denominator = r1 * (1 - target)
    k = target * (1 - r1) / denominator - 1e-9 if denominator > 0 else math.inf  # 5e-324 underflows to 0
    return max(1, math.ceil(k)) if math.isfinite(k) and k < 1e12 else None  # beyond any budget: none reaches it


@dataclass
class Summary:
    groups: int = 0
    rollouts: int = 0
    rewards: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    penalties: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)  # one message per error category, to show
    filtered_groups: int = 0
    with_final_answer: int = 0
    fake_groups: int = 0
    dimension_scores: dict[str, list[float]] = field(default_factory=dict)  # graded rollouts only
    reward_stds: list[float] = field(default_factory=list)  # judge noise, when graded with K > 1 samples
    snrs: list[float] = field(default_factory=list)
    reliabilities: list[float] = field(default_factory=list)  # groups' single-sample reward reliability
    dimension_reliabilities: dict[str, list[float]] = field(default_factory=dict)
    noise_penalized: int = 0  # penalised rollouts of groups graded with K > 1: left out of reliability
    unmatched_tool_rollouts: int = 0  # rollouts whose tool calls named no terminal tool (RolloutResult.warnings)

    def add(self, g: GroupResult) -> None:
        self.groups += 1
        self.filtered_groups += bool(g.filtered)
        self.fake_groups += bool(g.judge.fake)
        if g.noise is not None and g.noise.snr is not None:
            self.snrs.append(g.noise.snr)
        if g.noise is not None:
            self.noise_penalized += g.noise.n_penalized
            if g.noise.reliability is not None:
                self.reliabilities.append(g.noise.reliability)
            for name, rel in (g.noise.dimensions or {}).items():
                if rel.reliability is not None:
                    self.dimension_reliabilities.setdefault(name, []).append(rel.reliability)
        for r in g.rollouts:
            self.rollouts += 1
            self.statuses[r.status] += 1
            self.with_final_answer += bool(r.has_final_answer)
            self.unmatched_tool_rollouts += bool(r.warnings)
            if r.reward is not None:
                self.rewards.append(float(r.reward))
            if r.penalty:
                self.penalties[r.penalty] += 1
            if r.error:
                self.errors[r.error.category] += 1
                self.first_error.setdefault(r.error.category, r.error.message)
            if r.status == "ok":
                for name, d in (r.dimensions or {}).items():
                    self.dimension_scores.setdefault(name, []).append(float(d.score))
                if r.reward_std is not None:
                    self.reward_stds.append(r.reward_std)

    @property
    def reward_mean(self) -> float | None:
        return float(np.mean(self.rewards)) if self.rewards else None

    @property
    def reward_std(self) -> float | None:
        return float(np.std(self.rewards)) if self.rewards else None

    @property
    def dimension_means(self) -> dict[str, float]:
        """What to watch for reward hacking: a dimension drifting while the others stay put."""
        return {name: float(np.mean(v)) for name, v in self.dimension_scores.items()}

    @property
    def judge_reward_std(self) -> float | None:
        """Mean over graded rollouts of the SD of their rewards across judge samples."""
        return float(np.mean(self.reward_stds)) if self.reward_stds else None

    @property
    def group_snr(self) -> float | None:
        """Median over groups of their signal-to-noise ratio (see reward.rubric.noise)."""
        return float(np.median(self.snrs)) if self.snrs else None

    @property
    def reliability(self) -> float | None:
        """Mean over groups of the single-sample reliability of their rewards (reward.rubric.reliability): the
        share of one judge sample's variance that is the rollouts', 0 for pure noise."""
        return float(np.mean(self.reliabilities)) if self.reliabilities else None

    @property
    def dimension_reliability(self) -> dict[str, float]:
        """Per dimension, the mean over groups of its single-sample reliability."""
        return {name: float(np.mean(v)) for name, v in self.dimension_reliabilities.items()}

    @property
    def k_needed(self) -> int | None:
        """Samples per rollout that bring the mean reliability to 0.8 (Spearman-Brown); null at 0 or unknown."""
        return k_needed(self.reliability)

    @property
    def needed_judge(self) -> int:
        """Rollouts that needed a judgement (penalised ones never do)."""
        return self.statuses["ok"] + self.statuses["error"]

    @property
    def final_answer_rate(self) -> float | None:
        return self.with_final_answer / self.rollouts if self.rollouts else None


def summarize(groups: Iterable[GroupResult]) -> Summary:
    s = Summary()
    for g in groups:
        s.add(g)
    return s
