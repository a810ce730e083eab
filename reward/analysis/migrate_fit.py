"""Fitting and judging a judge migration: per dimension, how the new judge's scores agree with the old ones
(Kendall tau, mean shift, rank flips within groups), and the monotone map from the new judge's scores onto
the old scale (isotonic regression, pool-adjacent-violators): the least-squares non-decreasing fit of the old
scores on the new ones, written as a `ScoreMap` through each distinct new score.

Pure: pairs of (old, new) scores in, numbers out. `reward.analysis.migrate` gets the pairs from a judge.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from reward.analysis.compare_kendall import kendall_tau
from reward.rubric.score_maps import ScoreMap

MIN_FIT = 8  # re-graded rollouts below which no map is fitted: a handful of points says nothing of a scale
MAX_KNOTS = 256  # points of a map at most (ScoreMap's limit): a continuous scale has as many scores as rollouts


@dataclass(frozen=True)
class Pair:
    """One re-graded rollout: its group, the old and new value (a dimension's score, or the reward)."""

    group_id: str
    old: float
    new: float


def isotonic(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float]]:
    """The non-decreasing least-squares fit of ys on xs, as (x, fitted y) at each distinct x, x increasing.
    Pool adjacent violators over the distinct xs (each weighted by its count), then one value per x."""
    by_x: dict[float, list[float]] = defaultdict(list)
    for x, y in zip(xs, ys, strict=True):
        by_x[x].append(y)
    blocks: list[list[float]] = []  # [sum of y, weight, number of distinct xs pooled]
    for x in sorted(by_x):
        blocks.append([sum(by_x[x]), float(len(by_x[x])), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, w, k = blocks.pop()
            blocks[-1] = [blocks[-1][0] + s, blocks[-1][1] + w, blocks[-1][2] + k]
    fitted = [b[0] / b[1] for b in blocks for _ in range(int(b[2]))]
    return list(zip(sorted(by_x), fitted, strict=True))


def thin(points: Sequence[tuple[float, float]], most: int = MAX_KNOTS) -> list[tuple[float, float]]:
    """At most `most` of the points (x increasing, y non-decreasing), the ends kept. First the points the line
    through their neighbours already passes through (inside a flat block or a straight run: the map is the same
    without them); then, if still too many, knots evenly spaced among the rest (the map between them is the
    chord, still monotone)."""
    if len(points) <= 2:
        return list(points)
    span = max(1.0, points[-1][1] - points[0][1])
    kept = [points[0]]
    for here, after in itertools.pairwise(points[1:]):
        (x0, y0), (x1, y1), (x2, y2) = kept[-1], here, after
        if abs(y0 + (y2 - y0) * (x1 - x0) / (x2 - x0) - y1) > 1e-9 * span:
            kept.append(here)
    kept.append(points[-1])
    if len(kept) <= most:
        return kept
    n = len(kept)
    return [kept[round(i * (n - 1) / (most - 1))] for i in range(most)]


def _on_scale(y: float, scale: tuple[float, float]) -> float:
    return min(max(round(y, 4), scale[0]), scale[1])


def fit_map(pairs: Sequence[Pair], judge: str, onto: str, scale: tuple[float, float]) -> ScoreMap | None:
    """The monotone map new -> old on `scale` (at most MAX_KNOTS points: `thin`), or None when the new judge gave
    fewer than two distinct scores (a constant says nothing of how its scale bends: see `flat_map`)."""
    points = isotonic([p.new for p in pairs], [p.old for p in pairs])
    if len(points) < 2:
        return None
    return ScoreMap(points=thin([(x, _on_scale(y, scale)) for x, y in points]), judge=judge, onto=onto)


def flat_map(pairs: Sequence[Pair], judge: str, onto: str, scale: tuple[float, float]) -> ScoreMap:
    """The map of a dimension the new judge scored with one value only: the old mean everywhere. It is that
    value's isotonic fit, flat beyond it as every map is beyond its ends; without it the new judge's raw score
    would shift the reward by however far it lies from the old scores."""
    mean = _on_scale(sum(p.old for p in pairs) / len(pairs), scale)
    return ScoreMap(points=[(scale[0], mean), (scale[1], mean)], judge=judge, onto=onto)


class Agreement(BaseModel):
    """How one dimension (or the reward) moved from the old judge to the new one on the re-graded rollouts."""

    n: int
    kendall_tau: float | None  # over all re-graded rollouts; None when undefined (a constant side)
    mean_old: float
    mean_new: float
    mean_shift: float  # new - old
    mean_abs_diff: float  # |new - old|, before any map
    pairs: int  # within-group pairs the old judge ordered strictly
    rank_flips: int  # of those, ordered the other way by the new judge
    mapped_mean_shift: float | None = None  # mapped new - old, with the fitted map (in sample)
    mapped_mean_abs_diff: float | None = None


def rank_flips(pairs: Sequence[Pair]) -> tuple[int, int]:
    """(strictly ordered pairs within groups by old, of which the new judge orders the other way)."""
    by_group: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_group[p.group_id].append(p)
    ordered = flipped = 0
    for members in by_group.values():
        for a, b in itertools.combinations(members, 2):
            if a.old != b.old:
                ordered += 1
                flipped += (a.old - b.old) * (a.new - b.new) < 0
    return ordered, flipped


def agreement(pairs: Sequence[Pair], mapped: Sequence[float] | None = None) -> Agreement:
    """`mapped`: the new values through the fitted map, in the order of `pairs` (in-sample residuals)."""
    n = len(pairs)
    old = [p.old for p in pairs]
    new = [p.new for p in pairs]
    ordered, flipped = rank_flips(pairs)
    extra = {}
    if mapped is not None:
        extra = {
            "mapped_mean_shift": sum(m - o for m, o in zip(mapped, old, strict=True)) / n,
            "mapped_mean_abs_diff": sum(abs(m - o) for m, o in zip(mapped, old, strict=True)) / n,
        }
    return Agreement(
        n=n,
        kendall_tau=kendall_tau(old, new),
        mean_old=sum(old) / n,
        mean_new=sum(new) / n,
        mean_shift=sum(new) / n - sum(old) / n,
        mean_abs_diff=sum(abs(b - a) for a, b in zip(old, new, strict=True)) / n,
        pairs=ordered,
        rank_flips=flipped,
        **extra,
    )
