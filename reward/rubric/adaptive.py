"""Adaptive sampling (`--samples auto`): which rollouts of a group get another verdict sample. Pure functions.

Every graded rollout gets sample 0 (the K = 1 request). Then, in rounds, the group's own samples decide:

- units: rollouts whose grading requests are identical (the same content: the same cache key) are one unit,
  sampled together (the same count, so the same mean): copies of a rollout are an exact tie, never noise;
- noise: the pooled sample variance (ddof=1) of the per-sample rewards of the units sampled more than once;
  unknown before any was (the first round then takes the closest pairs, which measures it);
- uncertainty: units sorted by mean reward, penalised rollouts included at their exact reward (no noise, never
  sampled). A pair of neighbours is unsure while |difference| <= Z standard errors (sqrt(noise (1/k_i + 1/k_j)));
  a unit's advantage sign is unsure while |mean - group mean| <= Z standard errors (sqrt(noise / k_i)); with
  noise measured as 0 nothing is unsure (an exact tie is a tie);
- each round gives one more sample to the less-sampled unit of each unsure pair (and to each unit of unsure
  sign), most unsure first, at most ROUND units per round, never past `max_samples` per rollout and never past
  ceil(EXTRA x graded rollouts) extra samples per group in all, a unit's sample counting once per rollout (the
  cost bound: 1.5 x the samples of K = 1 for an even number of graded rollouts, a little more for an odd one:
  at most 2 x for a single graded rollout);
- it stops when nothing is unsure ("settled"), when the unsure units are at `max_samples` ("max_samples")
  or when the group's extra samples are spent ("budget"). A run also stops when an extra sample fails
  ("judge_error") or the request's deadline passes ("deadline"): the rollouts keep the samples they have.

Everything is a function of the samples drawn (seeded), so the decisions are deterministic, independent of
other groups, and `reward rescore` replays them from a saved file; only a failed or late extra sample (a stop
the file records) ends them early.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import fmean

Z = 2.0  # standard errors within which an order or a sign is unsure
EXTRA = 0.5  # extra samples per group, as a share of its graded rollouts (rounded up)
ROUND = 4  # at most this many units get an extra sample per round: rounds run one after another
STOPS = ("deadline", "judge_error")  # why a run stopped its rounds short of the rule (an extra sample it lacks)


@dataclass(frozen=True)
class Round:
    more: list[int]  # indices (into the graded rollouts) that get one more sample now (whole units)
    reason: str | None  # why sampling stopped, when `more` is empty


def budget(n_graded: int) -> int:
    """Extra samples a group of `n_graded` graded rollouts may spend (beyond one each)."""
    return math.ceil(EXTRA * n_graded)


def units_of(keys: Sequence[Hashable]) -> list[int]:
    """Each rollout's unit: the index of the first rollout with the same key (its grading request)."""
    first: dict[Hashable, int] = {}
    return [first.setdefault(key, i) for i, key in enumerate(keys)]


def pooled_noise(samples: Sequence[Sequence[float]]) -> float | None:
    """The pooled sample variance (ddof=1) of the rollouts sampled at least twice; None when none was."""
    dof = sum(len(s) - 1 for s in samples if len(s) >= 2)
    if dof == 0:
        return None
    return sum(sum((x - fmean(s)) ** 2 for x in s) for s in samples if len(s) >= 2) / dof


def next_round(
    samples: Sequence[Sequence[float]], fixed: Sequence[float], max_samples: int, units: Sequence[int] | None = None
) -> Round:
    """The next round for graded rollouts whose per-sample rewards are `samples` (each at least one), next
    to rollouts of exact reward `fixed` (penalised); `units` (from `units_of`) joins identical rollouts."""
    n = len(samples)
    if n == 0:
        return Round([], "no_graded")
    unit = list(range(n)) if units is None else list(units)
    members = {u: [i for i in range(n) if unit[i] == u] for u in dict.fromkeys(unit)}
    left = budget(n) - sum(len(s) - 1 for s in samples)
    if len(members) + len(fixed) < 2:  # nothing to order
        return Round([], "settled")
    if left <= 0:
        return Round([], "budget")
    noise = pooled_noise([samples[u] for u in members])  # a copy's samples are its unit's: counted once
    means = [fmean(s) for s in samples]
    ks = [len(s) for s in samples]
    # (mean, unit or None for an exact reward) sorted by mean; ties by index, so the order is deterministic
    points = sorted([(means[u], u) for u in members] + [(f, -1 - j) for j, f in enumerate(fixed)])
    unsure: list[tuple[float, int]] = []  # (z statistic, unit to sample)

    def z_of(diff: float, var_units: float) -> float:
        if noise is None:  # unknown noise: rank by raw distance, the closest measured first
            return diff / math.sqrt(var_units)
        if noise <= 0:  # no noise: every mean is exact, an equal one a true tie
            return math.inf
        return diff / math.sqrt(noise * var_units)

    for (ma, a), (mb, b) in itertools.pairwise(points):
        graded = [i for i in (a, b) if i >= 0]
        if not graded:
            continue
        units_ = sum(1 / ks[i] for i in graded)
        pick = min(graded, key=lambda i: (ks[i], i))
        unsure.append((z_of(abs(mb - ma), units_), pick))
    center = fmean([*means, *fixed])  # the group mean: every rollout, copies included
    unsure += [(z_of(abs(means[u] - center), 1 / ks[u]), u) for u in members]
    if noise is not None:
        unsure = [(z, i) for z, i in unsure if z <= Z]
    if not unsure:
        return Round([], "settled")
    # with unknown noise, the closest pair only: both of its units, so the first round measures the noise
    width = 2 if noise is None else ROUND
    more: list[int] = []
    spend, open_ = 0, False
    for _, u in sorted(unsure):
        if u in more or ks[u] >= max_samples:
            continue
        open_ = True  # a unit that could take a sample, if the budget lets it
        cost = len(members[u])
        if len(more) < width and spend + cost <= left:
            more.append(u)
            spend += cost
    if not more:
        return Round([], "budget" if open_ else "max_samples")
    return Round([i for u in more for i in members[u]], None)


def replay(
    samples: Sequence[Sequence[float]],
    fixed: Sequence[float],
    max_samples: int,
    units: Sequence[int] | None = None,
    stopped: str | None = None,
) -> tuple[list[int], str]:
    """The samples per rollout the rule takes from `samples` (all it may ask for, in order), and why it stopped:
    what a run that drew these samples would have kept. A run whose rounds stopped on an extra sample it could
    not get (`stopped`, one of STOPS) stops where the file first lacks a sample the rule asks for, keeping the
    ones of that round it holds; otherwise a count over len(samples[i]) means the file holds fewer samples than
    the rule asks for ("incomplete")."""
    ks = [1] * len(samples)
    while True:
        step = next_round([list(s[:k]) for s, k in zip(samples, ks, strict=True)], fixed, max_samples, units)
        if not step.more:
            return ks, step.reason or "settled"
        held = [i for i in step.more if ks[i] < len(samples[i])]
        if len(held) < len(step.more):
            if stopped is not None:
                for i in held:
                    ks[i] += 1
                return ks, stopped
            for i in step.more:
                ks[i] += 1
            return ks, "incomplete"
        for i in step.more:
            ks[i] += 1
