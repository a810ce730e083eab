"""A fake judge with a planted monotone distortion: it answers as the fake judge it wraps, except that every
grading score s becomes f(s) = min + (max - min) * ((s - min) / (max - min)) ** gamma, rounded as a judge on
the rubric's scale would answer (an integer, or two decimals on a continuous scale). Another judge whose
scores mean the same thing on another scale: what `reward migrate` must map back (f's inverse).

Only a fake judge may be wrapped (a real judge's verdicts are never rewritten). Its grading model is named
for the distortion and its identity holds it, so its verdicts never share cache keys with the plain fake's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from reward.judge.base import Judge
from reward.judge.fake.rewriting import VerdictRewriter
from reward.rubric.spec import RubricSpec


@dataclass(frozen=True)
class Distortion:
    """f(s) = lo + (hi - lo) * ((s - lo) / (hi - lo)) ** gamma on the scale [lo, hi]; `integer`: rounded."""

    gamma: float
    lo: float
    hi: float
    integer: bool = True

    def __post_init__(self) -> None:
        if not (self.gamma > 0 and self.hi > self.lo):
            raise ValueError("a distortion needs gamma > 0 and a scale with max > min")

    def exact(self, s: float) -> float:
        u = min(1.0, max(0.0, (s - self.lo) / (self.hi - self.lo)))
        return self.lo + (self.hi - self.lo) * u**self.gamma

    def __call__(self, s: float) -> float:
        y = self.exact(s)
        return float(round(y)) if self.integer else round(y, 2)

    def inverse(self, y: float) -> float:
        """f's exact inverse (before rounding): the map `reward migrate` should recover."""
        u = min(1.0, max(0.0, (y - self.lo) / (self.hi - self.lo)))
        return self.lo + (self.hi - self.lo) * u ** (1 / self.gamma)

    @classmethod
    def on(cls, spec: RubricSpec, gamma: float) -> Distortion:
        return cls(gamma, float(spec.scale.min), float(spec.scale.max), spec.scale.kind == "integer")


class DistortedJudge(VerdictRewriter):
    """`inner` (a fake judge) whose grading scores go through `distortion`, for rubric `spec`."""

    def __init__(self, inner: Judge, distortion: Distortion, spec: RubricSpec) -> None:
        super().__init__(inner, "a planted distortion")
        self.distortion = distortion
        grade = inner.settings.grade
        self.settings = replace(inner.settings, grade=replace(grade, model=f"{grade.model}~gamma{distortion.gamma:g}"))
        self.identity: dict[str, Any] = {**inner.identity, "distortion": distortion.gamma}
        self._names = [f"{d.name}_score" for d in spec.dimensions]

    def rewrite(self, messages: list[dict[str, str]], verdict: dict[str, Any]) -> bool:
        for key in self._names:
            value = verdict.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                y = self.distortion(value)
                verdict[key] = int(y) if self.distortion.integer else y
        return True
