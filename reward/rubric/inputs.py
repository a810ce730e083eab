"""The judge's input fields a rubric declares (`inputs:`), checked on each group before any judge call.

A group line carries its group-level fields in `inputs`, each rollout its own. Undeclared, missing or
mistyped fields are input errors (a 422 from the service, an invalid line for the CLI), never a template
crash after some judge calls were paid for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from reward.core.clean import readable
from reward.core.trajectory import Group, Rollout
from reward.rubric.checklist import checklist_problems, template_criteria
from reward.rubric.checklist_field import ChecklistField
from reward.rubric.spec import InputField, RubricSpec

_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false"}


def _fits(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)


def _field_problems(
    declared: Mapping[str, InputField | ChecklistField], given: Mapping[str, Any] | None, where: str
) -> list[str]:
    given = given or {}
    problems = [
        f"{where}.{name}: not an input of this rubric (it declares: {', '.join(declared) or 'none'})"
        for name in given
        if name not in declared
    ]
    for name, field in declared.items():
        if name not in given or given[name] is None:
            if field.required:
                problems.append(f"{where}.{name}: required by the rubric ({field.description or field.type})")
        elif isinstance(field, ChecklistField):
            problems += checklist_problems(field, given[name], f"{where}.{name}")
        elif not _fits(field.type, given[name]):
            problems.append(f"{where}.{name}: must be {_TYPES[field.type]}, not {type(given[name]).__name__}")
    return problems


def input_problems(spec: RubricSpec, group: Group) -> list[str]:
    """Everything a group lacks (or has in excess) for this rubric, with paths inside the group."""
    problems: list[str] = []
    if spec.condenses and "query" not in group.model_fields_set:
        problems.append("query: required by the rubric (its condensing prompt shows the task query)")
    if spec.reference and group.reference is None:
        problems.append("reference: required by the rubric (a reference trajectory, plan or id)")
    problems += _field_problems(spec.inputs.group, group.inputs, "inputs")
    for i, rollout in enumerate(group.rollouts):
        problems += _field_problems(spec.inputs.rollout, rollout.inputs, f"rollouts[{i}].inputs")
    return problems


def _value(field: InputField | ChecklistField, value: Any) -> Any:
    if isinstance(field, ChecklistField):  # criteria with their ids, c1..cN, as the verdict names them
        return template_criteria(field, value)
    return readable(value) if isinstance(value, str) else value


def _values(declared: Mapping[str, InputField | ChecklistField], given: Mapping[str, Any] | None) -> dict[str, Any]:
    # An optional field left out is none in templates (`{% if field %}`); text is made safe to embed.
    given = given or {}
    return {n: _value(f, given.get(n)) for n, f in declared.items()}


def group_inputs(spec: RubricSpec, group: Group) -> dict[str, Any]:
    return _values(spec.inputs.group, group.inputs)


def rollout_inputs(spec: RubricSpec, group: Group, rollout: Rollout) -> dict[str, Any]:
    """The template variables of one rollout's grading request: the group's inputs and its own."""
    return {**group_inputs(spec, group), **_values(spec.inputs.rollout, rollout.inputs)}
