"""Group statistics for GRPO: mean, population std, the zero-signal filter and advantages."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupStats:
    mean: float | None
    std: float | None
    n_scored: int
    filtered: bool
    filter_reason: str | None
    advantages: list[float | None]


def group_stats(rewards: list[float | None], min_std: float, eps: float) -> GroupStats:
    """Statistics over the rollouts that have a reward; a rollout in error (None) is left out and gets
    no advantage. The std is the population std (ddof=0, float64) of the reported rewards, penalties
    included, as GRPO normalises them."""
    scored = np.array([r for r in rewards if r is not None], dtype=np.float64)
    if scored.size == 0:
        return GroupStats(None, None, 0, True, "no rollout of the group has a reward", [None] * len(rewards))
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(scored.mean())
        std = float(scored.std(ddof=0))
    if not (math.isfinite(mean) and math.isfinite(std)):
        # rewards near the float range (or not numbers): no statistics, and no advantage that looks like one
        reason = f"reward mean {mean} / std {std}: not finite numbers, no advantages"
        return GroupStats(None, None, int(scored.size), True, reason, [None] * len(rewards))
    if std < min_std:
        return GroupStats(
            mean,
            std,
            int(scored.size),
            True,
            f"reward std {std:.6g} < {min_std:g}: no signal for GRPO",
            [None] * len(rewards),
        )
    advantages = [None if r is None else (r - mean) / (std + eps) for r in rewards]
    return GroupStats(mean, std, int(scored.size), False, None, advantages)
