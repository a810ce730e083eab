"""Bounds on a rubric's numbers, so that every reward it gives is a finite number of sane size: reward_scale,
penalties and constants within ±MAX_NUMBER, and the graded range (reward_scale × the formula's extremes) within
±MAX_REWARD, all checked when the rubric loads."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from reward.rubric.expression import Expression, ExpressionError

MAX_NUMBER = 1e6
# Far beyond any reward scale, far below where a group's variance (a sum of squares) overflows a float.
MAX_REWARD = 1e12
MIN_WEIGHT = 1e-6  # a dimension's weight: smaller ones underflow to 0 in a group's weighted mean


class SpecModel(BaseModel):
    # No NaN or infinity anywhere in a rubric: a penalty, a constant or a scale of .inf is a reward nobody computed.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Bounded = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
# The same bounds, said in the JSON Schema only (constants: checked by constant_problem, with its exceptions)
BoundedInSchema = Annotated[float, Field(json_schema_extra={"minimum": -MAX_NUMBER, "maximum": MAX_NUMBER})]


def constant_problem(constants: Mapping[str, float], engine: Collection[str] = ()) -> str | None:
    """The first constant beyond ±MAX_NUMBER, said; `engine` names those the engine sets (a checklist's
    pitfall_weight, bounded by the checklist's own limits)."""
    for name, value in constants.items():
        if name not in engine and not abs(value) <= MAX_NUMBER:
            return f"constants.{name} = {value:g} is beyond ±{MAX_NUMBER:g}"
    return None


def reward_range(
    expr: Expression,
    variables: list[str],
    constants: Mapping[str, float],
    scale: float,
    sweep: Mapping[str, float] | None = None,
) -> tuple[float, float]:
    """The lowest and highest graded reward: scale × the formula's extremes over [0, 1] for each variable, at
    each end of [0, most] for each `sweep` constant (set per group: a checklist's pitfall_weight). An
    ExpressionError when it is not finite or beyond ±MAX_REWARD."""
    sweep = sweep or {}
    ends = [dict(zip(sweep, c, strict=True)) for c in itertools.product(*((0.0, m) for m in sweep.values()))]
    values = [v for end in ends for v in expr.extremes(variables, {**constants, **end})]
    lo, hi = scale * min(values), scale * max(values)
    if not (math.isfinite(lo) and math.isfinite(hi) and max(-lo, hi) <= MAX_REWARD):
        raise ExpressionError(
            f"graded rewards would span [{lo:g}, {hi:g}] (reward_scale {scale:g} × the formula), "
            f"beyond ±{MAX_REWARD:g}: lower reward_scale or the formula's numbers"
        )
    return lo, hi
