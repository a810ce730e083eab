"""The declaration of a checklist input (`inputs.group.<name>: {type: checklist, ...}`) and the names a checklist
rubric's formula reads: part of the rubric file's schema (reward.rubric.spec), checked per group by
reward.rubric.checklist."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# A checklist rubric's formula reads these (reward.rubric.checklist): the weighted mean of the met criteria, that
# of the pitfalls met, and the pitfalls' weight relative to the positive criteria'. RaR's explicit aggregation
# sum(w_i * s_i) / sum(positive w_i), floored at -0.5 so a graded reward stays above the hard penalties.
CHECKLIST_VARIABLES = ("met", "pitfalls", "pitfall_weight")
CHECKLIST_FORMULA = "max(-0.5, met - pitfall_weight * pitfalls)"
# RaR's category weights (Gunjal et al. 2025): what a criterion without an explicit weight weighs.
RAR_CATEGORIES = {"essential": 1.0, "important": 0.7, "optional": 0.3, "pitfall": -0.9}
MAX_WEIGHT = 1000.0  # |weight| of a criterion: at least 1/MAX_WEIGHT, at most MAX_WEIGHT


def _weight(value: float) -> float:
    if not (math.isfinite(value) and 1 / MAX_WEIGHT <= abs(value) <= MAX_WEIGHT):
        raise ValueError(
            f"a weight is a number from {1 / MAX_WEIGHT:g} to {MAX_WEIGHT:g} in size (negative: a pitfall)"
        )
    return value


Weight = Annotated[float, AfterValidator(_weight)]
Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]


class ChecklistField(BaseModel):
    """A group input holding a list of criteria `{text, category}` or `{text, weight}` (reward.rubric.checklist):
    checked on each group before any judge call against these limits and categories."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # as every rubric model

    type: Literal["checklist"]
    description: str = ""
    required: Literal[True] = True  # a checklist rubric has nothing to grade without one
    max_items: int = Field(default=40, ge=1, le=200)
    max_chars: int = Field(default=500, ge=1, le=10_000)  # of one criterion's text
    # A criterion's weight when it gives none; negative: a pitfall (met is worse).
    categories: dict[Category, Weight] = Field(default_factory=lambda: dict(RAR_CATEGORIES), min_length=1)


def most_pitfall_weight(field: ChecklistField) -> float:
    """The largest pitfall_weight a checklist of this field can have: all but one criterion pitfalls of the largest
    weight, against one positive criterion of the smallest (the least is 0: no pitfalls)."""
    return (field.max_items - 1) * MAX_WEIGHT * MAX_WEIGHT
