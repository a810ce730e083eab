"""Per-task checklists (Rubrics as Rewards): a group's own criteria as the dimensions it is graded on.

A checklist rubric (`grading: {mode: checklist, criteria: <input>}`) declares no dimensions. Each group line
carries a list of criteria in that group input, `[{text, category} | {text, weight}, ...]`; criterion i becomes
dimension `c<i>` (its text the description, shown to the judge fenced: it is task data), judged on the rubric's
scale like any dimension, one grading call per rollout. The reward is RaR's explicit aggregation
sum(w_i * s_i) / sum(positive w_i), s_i normalised to [0, 1]: written with the rubric's formula language as

    max(-0.5, met - pitfall_weight * pitfalls)        (the default formula; the floor keeps it above the penalties)

where `met` is the weighted mean of the positive criteria, `pitfalls` that of the negative ones (by |w|, 0 when
there are none) and `pitfall_weight` = sum |negative w| / sum positive w. `checklist_spec` makes this a plain
rubric spec per group, so the verdict schema, its validation, the formula and `--samples K` are the engine's own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from reward.core.clean import sanitize
from reward.core.trajectory import Group
from reward.rubric.checklist_field import MAX_WEIGHT, ChecklistField
from reward.rubric.load import Rubric
from reward.rubric.spec import Dimension, DimensionGroup, RubricSpec

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Criterion:
    """One criterion of a group's checklist: `c<i>` in its verdict and output, with the weight it counts with."""

    id: str
    text: str
    category: str | None
    weight: float
    explicit: bool  # the item gave its weight (else its category's weight in the rubric)

    def as_item(self) -> dict[str, Any]:
        """The criterion as a group line gives it (what a rescore with another rubric's weights reads)."""
        weight = {"weight": self.weight} if self.explicit else {}
        return {"text": self.text, **({"category": self.category} if self.category else {}), **weight}


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _item(field: ChecklistField, item: Any, at: str) -> tuple[list[str], tuple[str, str | None, float, bool] | None]:
    """One item's problems, or its (text, category, weight, explicit)."""
    if not isinstance(item, dict):
        return [f"{at}: must be an object {{text, category}} or {{text, weight}}, not {type(item).__name__}"], None
    problems = [
        f"{at}.{k}: unknown key (text, category, weight)" for k in item if k not in ("text", "category", "weight")
    ]
    text, category, weight = item.get("text"), item.get("category"), item.get("weight")
    # checked as the judge will see it: control and zero-width characters removed, whitespace folded
    clean = _norm(sanitize(text)) if isinstance(text, str) else ""
    if not clean:
        problems.append(f"{at}.text: required, a non-empty string (of visible characters)")
    elif len(clean) > field.max_chars:
        problems.append(f"{at}.text: {len(clean)} characters, more than the rubric's {field.max_chars}")
    known = ", ".join(field.categories)
    if category is not None and (not isinstance(category, str) or category not in field.categories):
        problems.append(f"{at}.category: {category!r} is not a category of this rubric ({known})")
    if weight is not None:
        number = isinstance(weight, int | float) and not isinstance(weight, bool)
        if number and isinstance(weight, int) and abs(weight) > MAX_WEIGHT:  # 10**400 overflows a float
            number = False
        if not (number and math.isfinite(weight) and 1 / MAX_WEIGHT <= abs(weight) <= MAX_WEIGHT):
            problems.append(
                f"{at}.weight: {weight!r} is not a finite number from ±{1 / MAX_WEIGHT:g} to ±{MAX_WEIGHT:g}"
            )
    elif category is None:
        problems.append(f"{at}: needs a category ({known}) or a weight")
    if problems:
        return problems, None
    default = None if category is None else field.categories[category]
    w = float(weight) if weight is not None else default
    assert w is not None  # a weight, or a known category (checked above)
    if default is not None and (w < 0) != (default < 0):
        kind = "negative (a pitfall)" if default < 0 else "positive"
        return [f"{at}.weight: {w:g} contradicts category {category}, whose weights are {kind}"], None
    return [], (clean, category, w, weight is not None)


def checklist_problems(field: ChecklistField, value: Any, where: str) -> list[str]:
    """Everything wrong with a group's checklist, one line each with its path (`inputs.criteria[2].category`)."""
    return _parse(field, value, where)[1]


def _parse(field: ChecklistField, value: Any, where: str) -> tuple[list[Criterion], list[str]]:
    if not isinstance(value, list):
        return [], [f"{where}: must be a list of criteria, not {type(value).__name__}"]
    if not value:
        return [], [f"{where}: empty; a checklist needs at least one criterion"]
    if len(value) > field.max_items:
        return [], [f"{where}: {len(value)} criteria, more than the rubric's {field.max_items}"]
    problems: list[str] = []
    criteria: list[Criterion] = []
    first: dict[str, int] = {}
    for i, item in enumerate(value):
        found, ok = _item(field, item, f"{where}[{i}]")
        problems += found
        text = item.get("text") if isinstance(item, dict) else None
        key = _norm(sanitize(text)).casefold() if isinstance(text, str) else ""
        if key in first:  # whatever else is wrong with either: the same criterion twice
            problems.append(f"{where}[{i}].text: the same text as {where}[{first[key]}]")
        elif key:
            first[key] = i
        if ok is not None and not problems:
            criteria.append(Criterion(f"c{i + 1}", ok[0], ok[1], ok[2], ok[3]))
    if not problems and not any(c.weight > 0 for c in criteria):
        problems.append(f"{where}: only pitfalls; a checklist needs a criterion of positive weight")
    return criteria, problems


def criteria_of(spec: RubricSpec, group: Group) -> list[Criterion]:
    """The group's checklist, validated (`ValueError` naming each problem: normally caught before, by
    reward.rubric.inputs, as an invalid line or a 422)."""
    name = spec.grading.criteria
    return parse_criteria(spec, (group.inputs or {}).get(name or ""))


def parse_criteria(spec: RubricSpec, value: Any) -> list[Criterion]:
    """A checklist (a group input's value, or `Criterion.as_item`s) as this rubric reads it: `ValueError` naming
    each problem."""
    name = spec.grading.criteria
    field = spec.inputs.group.get(name or "")
    if not isinstance(field, ChecklistField):
        raise ValueError(f"rubric {spec.name} is not a checklist rubric")
    criteria, problems = _parse(field, value, f"inputs.{name}")
    if problems:
        raise ValueError("; ".join(problems))
    return criteria


def template_criteria(field: ChecklistField, value: Any) -> list[SimpleNamespace]:
    """What a template sees of a checklist: `id`, `text`, `category` and `pitfall` (a negative weight) of each
    criterion; weight sizes are not shown, as a dimension's are not."""
    criteria, _ = _parse(field, value, "")
    # the sign only (a pitfall is scored the other way round); the size never reaches the judge
    return [SimpleNamespace(id=c.id, text=c.text, category=c.category, pitfall=c.weight < 0) for c in criteria]


def checklist_spec(spec: RubricSpec, criteria: list[Criterion]) -> RubricSpec:
    """The rubric a group with these criteria is graded with: dimensions c1..cN in groups `met` and `pitfalls`,
    the checklist rubric's formula and scale, one grading call per rollout."""
    positive = sum(c.weight for c in criteria if c.weight > 0)
    negative = sum(-c.weight for c in criteria if c.weight < 0)
    dims = [
        # Not the criterion's text: it is group data (from the trainer), shown fenced by the template's checklist;
        # a dimension's description reaches templates and the verdict schema raw.
        Dimension(
            name=c.id,
            group="met" if c.weight > 0 else "pitfalls",
            description=f"checklist criterion {c.id} (its text is in the checklist)",
            weight=abs(c.weight),
        )
        for c in criteria
    ]
    groups = {"met": DimensionGroup(title="CRITERIA (met is better)")}
    constants = {**spec.constants, "pitfall_weight": negative / positive}
    if negative:
        groups["pitfalls"] = DimensionGroup(title="PITFALLS (met is worse)", failure_mode=True)
    else:
        constants["pitfalls"] = 0.0  # no pitfall: nothing subtracts
    return RubricSpec.model_validate(
        {
            **spec.model_dump(exclude={"dimensions", "groups", "constants", "grading"}),
            "dimensions": [d.model_dump() for d in dims],
            "groups": {n: g.model_dump() for n, g in groups.items()},
            "constants": constants,
            "grading": {"mode": "rollout"},
        },
        context={"engine_constants": ("pitfall_weight",)},  # past ±1e6 with extreme weights: bounded by them
    )


def checklist_rubric(rubric: Rubric, criteria: list[Criterion]) -> Rubric:
    """The loaded rubric as one group's: its own dimensions, the file's versions (the prompts show the criteria,
    so each group's requests are its own; the file's prompt version says how they are built)."""
    return Rubric(
        spec=checklist_spec(rubric.spec, criteria),
        path=rubric.path,
        condense_template=rubric.condense_template,
        grade_template=rubric.grade_template,
        version=rubric.version,
        prompt_version=rubric.prompt_version,
        overrides=rubric.overrides,
    )
