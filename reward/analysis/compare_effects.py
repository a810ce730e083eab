"""Why the rewards moved between two runs: the mean reward change split by dimension, and judge noise.

The split is exact (the parts sum to the change). For a rollout graded in both runs, the dimensions' scores
are swapped from one run's values to the other's one at a time, in the rubric's order, and each swap's
reward change through the rubric's own formula (group means, weights, constants, reward scale) is that
dimension's part; for the rubric's linear formulas the order does not matter. What is left (the recorded
change minus the swaps) is the formula side: formula, constants, weights, reward scale, and dimensions
only one run has. Penalised rollouts contribute the change of their penalty value, and rollouts graded in
one run and penalised in the other contribute a part of their own.

Noise: a reward is the mean of K verdict samples whose spread the file records as `reward_std`, so its
standard error is reward_std / sqrt(K) and a move's is that of both runs combined. A move smaller than
twice that is within the judge's noise. A run with one sample has no measured noise; the other run's
measurement of the same rollout stands in for it (and is said to), and with neither, the noise is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean
from typing import Any

from pydantic import BaseModel

from reward.analysis.compare_kendall import kendall_tau
from reward.analysis.scored import ScoredDimension, ScoredRollout
from reward.rubric.formula import graded_reward
from reward.rubric.spec import RubricSpec
from reward.rubric.verdict import DimensionScore

NOISE_Z = 2.0  # a move within two standard errors is not told apart from the judge's noise


class RewardChange(BaseModel):
    n: int  # rollouts with a reward in both runs: what the means are over
    mean_a: float | None
    mean_b: float | None
    delta: float | None  # mean_b - mean_a; the parts below sum to it
    graded: int  # of them graded in both
    scores_moved: int  # of those, rollouts with at least one dimension score that changed
    by_dimension: dict[str, float]  # each dimension's score change, through the formula
    formula: float | None  # graded in both, the rest: the formula side (None: no rubric to split with)
    graded_total: float  # all that graded-in-both rollouts contribute (= by_dimension + formula)
    penalty_values: float  # penalised in both: the change of the penalty values
    status: float  # graded in one run, penalised in the other
    formula_from: str | None  # the run whose rubric split the scores' part; None when neither is known
    noise_se: float | None  # standard error of delta from the judges' measured noise
    within_noise: bool | None  # |delta| < 2 standard errors; None when the noise is unknown


def attribute(
    a: dict[str, ScoredDimension], b: dict[str, ScoredDimension], spec: RubricSpec, base_is_a: bool
) -> dict[str, float] | None:
    """Each common dimension's part of one rollout's reward change (B minus A) through `spec`'s formula; None
    when the scores do not fit the rubric (a dimension it needs is missing from the run it belongs to)."""
    if spec.grading.mode == "checklist":  # each group's criteria are its dimensions: no rubric-wide split
        return None
    start, other = (a, b) if base_is_a else (b, a)
    if any(d.name not in start for d in spec.dimensions):
        return None
    scores = {d.name: DimensionScore(start[d.name].score, "") for d in spec.dimensions}
    parts: dict[str, float] = {}
    before = graded_reward(spec, scores)[0]
    for d in spec.dimensions:
        if d.name not in other or other[d.name].score == scores[d.name].score:
            continue
        scores[d.name] = DimensionScore(other[d.name].score, "")
        after = graded_reward(spec, scores)[0]
        parts[d.name] = (after - before) if base_is_a else (before - after)
        before = after
    return parts


class Splitter:
    """`attribute` through one run's rubric, once per pair of rollouts (the totals and the list of what moved
    most both need it, and it evaluates the formula once per changed dimension)."""

    def __init__(self, spec: RubricSpec, base_is_a: bool, label: str) -> None:
        self.spec, self.base_is_a, self.label = spec, base_is_a, label
        self._done: dict[tuple[int, int], dict[str, float] | None] = {}

    def parts(self, ra: ScoredRollout, rb: ScoredRollout) -> dict[str, float] | None:
        key = (id(ra), id(rb))  # the rollouts outlive the comparison that asks
        if key not in self._done:
            self._done[key] = attribute(ra.dimensions or {}, rb.dimensions or {}, self.spec, self.base_is_a)
        return self._done[key]


def _var(r: ScoredRollout, k: int | None, other: ScoredRollout) -> tuple[float | None, bool]:
    """The variance of one run's reward of a rollout, and whether it was borrowed from the other run."""
    if r.status != "ok":
        return 0.0, False  # a penalty is exact
    if r.reward_std is not None:
        return r.reward_std**2 / max(k or 1, 1), False
    if other.status == "ok" and other.reward_std is not None:
        return other.reward_std**2 / max(k or 1, 1), True
    return None, False


def move_se(ra: ScoredRollout, rb: ScoredRollout, ka: int | None, kb: int | None) -> float | None:
    """Standard error of one rollout's reward move; None when neither run measured the judge's noise."""
    va, _ = _var(ra, ka, rb)
    vb, _ = _var(rb, kb, ra)
    if va is None or vb is None:
        return None
    if ra.status == "ok" and rb.status == "ok" and ra.reward_std is None and rb.reward_std is None:
        return None
    return math.sqrt(va + vb)


def within(delta: float, se: float | None) -> bool | None:
    if se is None:
        return None
    return abs(delta) < NOISE_Z * se


def dimension_se(
    pairs: Sequence[tuple[ScoredDimension, ScoredDimension]], ka: int | None, kb: int | None
) -> float | None:
    """Standard error of a dimension's mean score change over rollouts graded in both, from its samples' std."""
    total, known = 0.0, False
    for da, db in pairs:
        sa = da.std if da.std is not None else db.std
        sb = db.std if db.std is not None else da.std
        if sa is None or sb is None:
            return None
        known = True
        total += sa**2 / max(ka or 1, 1) + sb**2 / max(kb or 1, 1)
    return math.sqrt(total) / len(pairs) if pairs and known else None


def reward_change(
    pairs: Sequence[tuple[ScoredRollout, ScoredRollout]],
    splitter: Splitter | None,
    ks: tuple[int | None, int | None],
) -> RewardChange:
    both = [(ra, rb) for ra, rb in pairs if ra.reward is not None and rb.reward is not None]
    n = len(both)
    by_dim: dict[str, float] = {}
    graded_total = penalty = status = 0.0
    attributed = 0.0
    split = splitter is not None
    graded = moved = 0
    var_total, noise_known = 0.0, True
    for ra, rb in both:
        assert ra.reward is not None and rb.reward is not None
        delta = rb.reward - ra.reward
        se = move_se(ra, rb, *ks)
        if se is None:
            noise_known = False
        else:
            var_total += se**2
        if ra.status == "ok" and rb.status == "ok":
            graded += 1
            da, db = ra.dimensions or {}, rb.dimensions or {}
            moved += any(n in db and db[n].score != d.score for n, d in da.items())
            graded_total += delta
            if splitter is not None:
                parts = splitter.parts(ra, rb)
                if parts is None:
                    split = False
                else:
                    for name, part in parts.items():
                        by_dim[name] = by_dim.get(name, 0.0) + part
                        attributed += part
        elif ra.status == rb.status:
            penalty += delta
        else:
            status += delta
    mean_a = sum(ra.reward or 0.0 for ra, _ in both) / n if n else None
    mean_b = sum(rb.reward or 0.0 for _, rb in both) / n if n else None
    mean_delta = None if mean_a is None or mean_b is None else mean_b - mean_a
    se = math.sqrt(var_total) / n if n and noise_known else None
    if moved == 0:
        split, by_dim, attributed = True, {}, 0.0  # no score moved: all of the graded change is the formula side
    return RewardChange(
        n=n,
        mean_a=mean_a,
        mean_b=mean_b,
        delta=mean_delta,
        graded=graded,
        scores_moved=moved,
        by_dimension={k: v / n for k, v in by_dim.items()} if split and n else {},
        formula=(graded_total - attributed) / n if split and n else None,
        graded_total=graded_total / n if n else 0.0,
        penalty_values=penalty / n if n else 0.0,
        status=status / n if n else 0.0,
        formula_from=splitter.label if splitter is not None and moved else None,
        noise_se=se,
        within_noise=None if mean_delta is None else within(mean_delta, se),
    )


class DimensionAgreement:
    """Per-dimension agreement over rollouts graded in both runs: Kendall tau of its scores within each group
    (averaged over the groups where it is defined), how many scores changed, and the change's noise."""

    def __init__(self) -> None:
        self.taus: dict[str, list[float]] = {}
        self.pairs: dict[str, list[tuple[ScoredDimension, ScoredDimension]]] = {}

    def add_group(self, graded: Sequence[tuple[ScoredRollout, ScoredRollout]]) -> None:
        by_dim: dict[str, list[tuple[ScoredDimension, ScoredDimension]]] = {}
        for ra, rb in graded:
            da, db = ra.dimensions or {}, rb.dimensions or {}
            for name in da:
                if name in db:
                    by_dim.setdefault(name, []).append((da[name], db[name]))
        for name, pairs in by_dim.items():
            self.pairs.setdefault(name, []).extend(pairs)
            tau = kendall_tau([x.score for x, _ in pairs], [y.score for _, y in pairs])
            if tau is not None:
                self.taus.setdefault(name, []).append(tau)

    def fields(self, name: str, ks: tuple[int | None, int | None]) -> dict[str, Any]:
        taus, pairs = self.taus.get(name, []), self.pairs.get(name, [])
        mean_change = fmean(y.score - x.score for x, y in pairs) if pairs else None
        se = dimension_se(pairs, *ks)
        return {
            "tau": fmean(taus) if taus else None,
            "tau_groups": len(taus),
            "matched": len(pairs),
            "changed": sum(1 for x, y in pairs if x.score != y.score),
            "mean_change": mean_change,
            "noise_se": se,
            "within_noise": None if mean_change is None else within(mean_change, se),
        }
