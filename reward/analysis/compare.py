"""Compare two scored runs of the same rollouts (a rubric change, a judge change): pure functions.

GRPO sees only the order of rewards within a group, so the headline per group is Kendall's tau-b between
the two runs' rewards of the rollouts graded in both, and how many advantages changed sign.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from statistics import fmean, pstdev

from pydantic import BaseModel

from reward.analysis.scored import ScoredGroup, ScoredRollout


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties in either sequence handled); None when it is undefined (fewer than two
    items, or every item tied in one sequence). Knight's O(n log n) algorithm: the pairs are counted from
    tie groups and the inversions of a merge sort, not one by one."""
    if len(x) != len(y):
        raise ValueError("kendall_tau needs two sequences of the same length")
    rx, ry = _tie_ranks(x), _tie_ranks(y)
    pairs = sorted(zip(rx, ry, strict=True))
    n0 = len(pairs) * (len(pairs) - 1) // 2
    n1 = _tied_pairs(rx)  # tied in x (including those tied in both)
    n2 = _tied_pairs(ry)
    n3 = _tied_pairs(pairs)  # tied in both
    # Sorted by (x, y), a pair is discordant exactly when its y values are inverted.
    discordant = _inversions([b for _, b in pairs])
    # concordant - discordant, and (C + D + tied in x only) * (C + D + tied in y only), from the counts
    denom = math.sqrt((n0 - n2) * (n0 - n1))
    return None if denom == 0 else (n0 - n1 - n2 + n3 - 2 * discordant) / denom


def _tie_ranks(v: Sequence[float]) -> list[int]:
    """Dense ranks, a value tied (by `_sign`) with the one below it in sorted order sharing its rank."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0] * len(v)
    rank = 0
    for prev, i in pairwise(order):
        rank += _sign(v[i] - v[prev]) != 0
        ranks[i] = rank
    return ranks


def _tied_pairs(values: Sequence[object]) -> int:
    counts = Counter(values)
    return sum(t * (t - 1) // 2 for t in counts.values())


def _inversions(v: list[int]) -> int:
    """Pairs i < j with v[i] > v[j], counted by a bottom-up merge sort."""
    count, width, n = 0, 1, len(v)
    src = v[:]
    while width < n:
        dst: list[int] = []
        for lo in range(0, n, 2 * width):
            left, right = src[lo : lo + width], src[lo + width : lo + 2 * width]
            i = j = 0
            while i < len(left) and j < len(right):
                if right[j] < left[i]:  # right[j] is below every left[i:]
                    count += len(left) - i
                    dst.append(right[j])
                    j += 1
                else:
                    dst.append(left[i])
                    i += 1
            dst += left[i:]
            dst += right[j:]
        src, width = dst, 2 * width
    return count


def _sign(v: float) -> int:
    # Rewards are means of small integers; rounding keeps float noise from breaking a real tie.
    v = round(v, 9)
    return (v > 0) - (v < 0)


def sign_flips(a: Sequence[float | None], b: Sequence[float | None]) -> int:
    """Advantages that are positive in one run and negative in the other (None or 0 never flips)."""
    return sum(1 for x, y in zip(a, b, strict=True) if x is not None and y is not None and _sign(x) * _sign(y) < 0)


class GroupComparison(BaseModel):
    group_id: str
    n: int  # rollouts graded (status ok) in both runs: what tau is computed over
    kendall_tau: float | None
    advantage_sign_flips: int


class DimensionComparison(BaseModel):
    mean_a: float | None
    mean_b: float | None
    sd_a: float | None  # population SD over the rollouts graded in that run
    sd_b: float | None


class Moved(BaseModel):
    group_id: str
    id: str
    reward_a: float
    reward_b: float
    delta: float
    dimension: str | None  # the dimension whose score moved most, with both runs' reasons
    score_a: float | None
    score_b: float | None
    reason_a: str | None
    reason_b: str | None


class Change(BaseModel):
    group_id: str
    id: str | None  # None for a group-level change (the filter)
    a: str | None
    b: str | None


class Changes(BaseModel):
    penalty: list[Change]
    error: list[Change]
    filter: list[Change]


class Unmatched(BaseModel):
    only_a: int  # rollouts (by group_id, id) present in one run only
    only_b: int


class Comparison(BaseModel):
    groups: list[GroupComparison]
    dimensions: dict[str, DimensionComparison]
    moved: list[Moved]
    changes: Changes
    unmatched: Unmatched


def _moved(group_id: str, ra: ScoredRollout, rb: ScoredRollout) -> Moved | None:
    if ra.reward is None or rb.reward is None:
        return None
    da, db = ra.dimensions or {}, rb.dimensions or {}
    common = [d for d in da if d in db]
    dim = max(common, key=lambda d: abs(db[d].score - da[d].score), default=None)
    return Moved(
        group_id=group_id,
        id=ra.id,
        reward_a=ra.reward,
        reward_b=rb.reward,
        delta=rb.reward - ra.reward,
        dimension=dim,
        score_a=da[dim].score if dim else None,
        score_b=db[dim].score if dim else None,
        reason_a=da[dim].reason if dim else None,
        reason_b=db[dim].reason if dim else None,
    )


def _dimension_stats(rollouts: list[ScoredRollout]) -> dict[str, tuple[float, float]]:
    scores: dict[str, list[float]] = {}
    for r in rollouts:
        if r.status == "ok":
            for name, d in (r.dimensions or {}).items():
                scores.setdefault(name, []).append(d.score)
    return {name: (fmean(v), pstdev(v)) for name, v in scores.items()}


def compare_runs(a: list[ScoredGroup], b: list[ScoredGroup], top: int = 10) -> Comparison:
    """Join by (group_id, rollout id); groups in A's order."""
    b_by_id = {g.group_id: g for g in b}
    a_ids = {g.group_id for g in a}
    groups: list[GroupComparison] = []
    moved: list[Moved] = []
    changes = Changes(penalty=[], error=[], filter=[])
    matched_a: list[ScoredRollout] = []
    matched_b: list[ScoredRollout] = []
    only_a = sum(len(g.rollouts) for g in a if g.group_id not in b_by_id)
    only_b = sum(len(g.rollouts) for g in b if g.group_id not in a_ids)
    for ga in a:
        gb = b_by_id.get(ga.group_id)
        if gb is None:
            continue
        rb_by_id = {r.id: r for r in gb.rollouts}
        pairs = [(ra, rb_by_id[ra.id]) for ra in ga.rollouts if ra.id in rb_by_id]
        only_a += len(ga.rollouts) - len(pairs)
        only_b += len(gb.rollouts) - len(pairs)
        graded = [(ra, rb) for ra, rb in pairs if ra.status == "ok" and rb.status == "ok"]
        tau = kendall_tau([ra.reward or 0.0 for ra, _ in graded], [rb.reward or 0.0 for _, rb in graded])
        flips = sign_flips([ra.advantage for ra, _ in pairs], [rb.advantage for _, rb in pairs])
        groups.append(GroupComparison(group_id=ga.group_id, n=len(graded), kendall_tau=tau, advantage_sign_flips=flips))
        if ga.filtered != gb.filtered:
            changes.filter.append(Change(group_id=ga.group_id, id=None, a=str(ga.filtered), b=str(gb.filtered)))
        for ra, rb in pairs:
            matched_a.append(ra)
            matched_b.append(rb)
            if ra.penalty != rb.penalty:
                changes.penalty.append(Change(group_id=ga.group_id, id=ra.id, a=ra.penalty, b=rb.penalty))
            ea = ra.error.category if ra.error else None
            eb = rb.error.category if rb.error else None
            if ea != eb:
                changes.error.append(Change(group_id=ga.group_id, id=ra.id, a=ea, b=eb))
            m = _moved(ga.group_id, ra, rb)
            if m is not None and m.delta != 0:
                moved.append(m)
    moved.sort(key=lambda m: -abs(m.delta))
    stats_a, stats_b = _dimension_stats(matched_a), _dimension_stats(matched_b)
    names = list(stats_a) + [n for n in stats_b if n not in stats_a]
    dimensions = {
        n: DimensionComparison(
            mean_a=stats_a[n][0] if n in stats_a else None,
            mean_b=stats_b[n][0] if n in stats_b else None,
            sd_a=stats_a[n][1] if n in stats_a else None,
            sd_b=stats_b[n][1] if n in stats_b else None,
        )
        for n in names
    }
    return Comparison(
        groups=groups,
        dimensions=dimensions,
        moved=moved[:top],
        changes=changes,
        unmatched=Unmatched(only_a=only_a, only_b=only_b),
    )


def mean_tau(c: Comparison) -> float | None:
    taus = [g.kendall_tau for g in c.groups if g.kendall_tau is not None]
    return fmean(taus) if taus else None
