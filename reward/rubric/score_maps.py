"""Score maps: a per-dimension monotone map from one judge's scores onto another judge's scale.

`reward migrate` fits them when a run switches judges and writes them into a rubric overlay; scoring with
that rubric applies them to every verdict sample before the formula, so rewards keep their scale across the
switch. The verdicts themselves (and the cache) keep the judge's own scores: a map is applied, never stored.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScoreMap(BaseModel):
    """Piecewise-linear through `points` [(judge score, mapped score)], flat beyond the ends."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    points: list[tuple[float, float]] = Field(min_length=2, max_length=256)
    # Which judges the map was fitted between (`reward migrate` writes both): `judge` is the grading model whose
    # scores it takes, `onto` the one whose scale it gives. A map used with another grading model is wrong.
    judge: str | None = Field(default=None, min_length=1, max_length=200)
    onto: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _monotone(self) -> ScoreMap:
        xs = [x for x, _ in self.points]
        ys = [y for _, y in self.points]
        if any(b <= a for a, b in itertools.pairwise(xs)):
            raise ValueError("score map points must have strictly increasing judge scores")
        if any(b < a for a, b in itertools.pairwise(ys)):
            raise ValueError("a score map must be monotone: mapped scores may not decrease")
        return self

    def __call__(self, score: float) -> float:
        xs = [x for x, _ in self.points]
        if score <= xs[0]:
            return self.points[0][1]
        if score >= xs[-1]:
            return self.points[-1][1]
        i = bisect_right(xs, score) - 1
        (x0, y0), (x1, y1) = self.points[i], self.points[i + 1]
        return y0 + (y1 - y0) * (score - x0) / (x1 - x0)


def outside_scale(maps: dict[str, ScoreMap], lo: float, hi: float) -> tuple[tuple[str, str, int], str] | None:
    """((dimension, "points", index), why) of the first point outside the scale [lo, hi], or None. Both sides of
    a map are scores on the rubric's scale: a point beyond it would put rewards far outside their range."""
    for name, m in maps.items():
        for i, (x, y) in enumerate(m.points):
            if not (lo <= x <= hi and lo <= y <= hi):
                why = f"score map point [{x:g}, {y:g}] is outside the scale [{lo:g}, {hi:g}]"
                return (name, "points", i), why + ": a map takes the judge's scores to scores on the same scale"
    return None


Sample = dict[str, tuple[float, str]]  # one verdict: dimension -> (score, reason)


def apply_score_maps(maps: dict[str, ScoreMap], samples: list[Sample]) -> list[Sample]:
    """Each sample with its mapped dimensions' scores mapped (reasons kept); no maps: the samples unchanged."""
    if not maps:
        return samples
    return [{d: ((maps[d](s), r) if d in maps else (s, r)) for d, (s, r) in sample.items()} for sample in samples]


def score_map_problem(maps: dict[str, ScoreMap], grade_model: str) -> str | None:
    """Why these maps should not be used with `grade_model` as the grading judge, or None. A map fitted for
    another judge moves that judge's scores, not this one's: rewards would silently change scale."""
    fitted = sorted({m.judge for m in maps.values() if m.judge is not None})
    if not fitted or fitted == [grade_model]:
        return None
    dims = sorted(d for d, m in maps.items() if m.judge is not None and m.judge != grade_model)
    onto = sorted({m.onto for m in maps.values() if m.onto is not None})
    return (
        f"the rubric's score maps ({', '.join(dims)}) were fitted for grading judge {', '.join(fitted)}"
        + (f" (onto {', '.join(onto)}'s scale)" if onto else "")
        + f", but the grading judge is {grade_model}: its scores would be mapped by another judge's map; "
        "grade with that judge, or refit with `reward migrate --to " + grade_model + "`"
    )
