"""Adaptive sampling (`--samples auto`): which rollouts of a group get another verdict sample. Pure functions.

Every graded rollout gets sample 0 (the K = 1 request). Then, in rounds, the group's own samples decide:

- noise: the pooled sample variance (ddof=1) of the per-sample rewards of the rollouts sampled more than once;
  unknown before any was (the first round then takes the closest pairs, which measures it);
- uncertainty: rollouts sorted by mean reward, penalised ones included at their exact reward (no noise, never
  sampled). A pair of neighbours is unsure while |difference| <= Z standard errors (sqrt(noise (1/k_i + 1/k_j)));
  a rollout's advantage sign is unsure while |mean - group mean| <= Z standard errors (sqrt(noise / k_i));
- each round gives one more sample to the less-sampled rollout of each unsure pair (and to each rollout of
  unsure sign), most unsure first, at most ROUND per round, never past `max_samples` per rollout and never
  past EXTRA x (graded rollouts) extra samples per group in all (the cost bound: about 1.5 x K = 1);
- it stops when nothing is unsure ("settled"), when the unsure rollouts are at `max_samples` ("max_samples")
  or when the group's extra samples are spent ("budget").

Everything is a function of the samples drawn (seeded), so the decisions are deterministic, independent of
other groups, and `reward rescore` replays them from a saved file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

Z = 2.0  # standard errors within which an order or a sign is unsure
EXTRA = 0.5  # extra samples per group, as a share of its graded rollouts (rounded up)
ROUND = 4  # at most this many extra samples per round (one per rollout): rounds run one after another


@dataclass(frozen=True)
class Round:
    more: list[int]  # indices (into the graded rollouts) that get one more sample now
    reason: str | None  # why sampling stopped, when `more` is empty


def budget(n_graded: int) -> int:
    """Extra samples a group of `n_graded` graded rollouts may spend (beyond one each)."""
    return math.ceil(EXTRA * n_graded)


def pooled_noise(samples: Sequence[Sequence[float]]) -> float | None:
    """The pooled sample variance (ddof=1) of the rollouts sampled at least twice; None when none was."""
    dof = sum(len(s) - 1 for s in samples if len(s) >= 2)
    if dof == 0:
        return None
    return sum(sum((x - fmean(s)) ** 2 for x in s) for s in samples if len(s) >= 2) / dof


def next_round(samples: Sequence[Sequence[float]], fixed: Sequence[float], max_samples: int) -> Round:
    """The next round for graded rollouts whose per-sample rewards are `samples` (each at least one), next
    to rollouts of exact reward `fixed` (penalised)."""
    n = len(samples)
    left = budget(n) - sum(len(s) - 1 for s in samples)
    if n == 0:
        return Round([], "no_graded")
    if n + len(fixed) < 2:  # nothing to order
        return Round([], "settled")
    if left <= 0:
        return Round([], "budget")
    noise = pooled_noise(samples)
    means = [fmean(s) for s in samples]
    ks = [len(s) for s in samples]
    # (mean, index or None for an exact reward) sorted by mean; ties by index, so the order is deterministic
    points = sorted([(m, i) for i, m in enumerate(means)] + [(f, -1 - j) for j, f in enumerate(fixed)])
    unsure: list[tuple[float, int]] = []  # (z statistic, rollout to sample)

    def z_of(diff: float, var_units: float) -> float:
        if noise is None:  # unknown noise: rank by raw distance, the closest measured first
            return diff / math.sqrt(var_units)
        if diff == 0:
            return 0.0
        return math.inf if noise <= 0 else diff / math.sqrt(noise * var_units)

    for (ma, a), (mb, b) in itertools.pairwise(points):
        graded = [i for i in (a, b) if i >= 0]
        if not graded:
            continue
        units = sum(1 / ks[i] for i in graded)
        pick = min(graded, key=lambda i: (ks[i], i))
        unsure.append((z_of(abs(mb - ma), units), pick))
    center = fmean([*means, *fixed])
    unsure += [(z_of(abs(m - center), 1 / ks[i]), i) for i, m in enumerate(means)]
    if noise is not None:
        unsure = [(z, i) for z, i in unsure if z <= Z]
    if not unsure:
        return Round([], "settled")
    more: list[int] = []
    for _, i in sorted(unsure):
        if ks[i] < max_samples and i not in more:
            more.append(i)
    if not more:
        return Round([], "max_samples")
    # with unknown noise, the closest pair only: both of its rollouts, so the first round measures the noise
    width = 2 if noise is None else ROUND
    return Round(more[: min(width, left)], None)


def replay(samples: Sequence[Sequence[float]], fixed: Sequence[float], max_samples: int) -> tuple[list[int], str]:
    """The samples per rollout the rule takes from `samples` (all it may ask for, in order), and why it stopped:
    what a run that drew these samples would have kept. A count over len(samples[i]) means the file holds
    fewer samples than the rule asks for."""
    ks = [1] * len(samples)
    while True:
        step = next_round([list(s[:k]) for s, k in zip(samples, ks, strict=True)], fixed, max_samples)
        if not step.more:
            return ks, step.reason or "settled"
        for i in step.more:
            if ks[i] >= len(samples[i]):
                ks[i] += 1
                return ks, "incomplete"
            ks[i] += 1
