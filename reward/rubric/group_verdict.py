"""The verdicts of the engine's multi-rollout grading stages, built from the rubric like the one-rollout verdict
(reward.rubric.verdict): a JSON schema sent as `response_format`, validation of a reply (whose message is what
the judge is told when re-asked), and a cached form that is checked as strictly as a reply.

- group (listwise): `{"rollouts": [{"label": "A", <dim>_reason, <dim>_score, ...}, ...]}`, one item per label
  shown, each label exactly once. An array rather than an object keyed by label: a duplicated key would be
  silently merged by a JSON parser, a duplicated item is seen and re-asked.
- pair: `{<dim>_reason, <dim>_preferred: "A" | "B" | "tie", ...}`: which of the two candidates shown is better
  on each dimension.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from reward.core.trajectory import format_loc
from reward.rubric.spec import RubricSpec
from reward.rubric.verdict import (
    InvalidVerdict,
    Verdict,
    loads_verdict_json,
    parse_verdict,
    verdict_from_cache,
    verdict_schema,
)

LABELS = string.ascii_uppercase  # what the judge calls the candidates: never the trainer's rollout ids
PREFERENCES = ("A", "B", "tie")


def _load_json(content: str | None) -> Any:
    t = (content or "").strip()
    if not t:
        raise InvalidVerdict("the reply was empty; a JSON object is required")
    if t.startswith("```"):  # a markdown fence despite response_format: harmless to undo
        t = t.split("\n", 1)[1] if "\n" in t else ""
        t = t.rstrip().removesuffix("```")
    try:
        return loads_verdict_json(t)
    except InvalidVerdict:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidVerdict(f"the reply is not valid JSON ({exc})") from exc


# --- group (listwise) ----------------------------------------------------------------------------------


def group_schema(spec: RubricSpec, labels: list[str]) -> dict[str, Any]:
    one = verdict_schema(spec)
    item = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}, **one["properties"]},
        "required": ["label", *one["required"]],
        "additionalProperties": False,
    }
    rollouts = {"type": "array", "items": item, "minItems": len(labels), "maxItems": len(labels)}
    return {
        "type": "object",
        "properties": {"rollouts": rollouts},
        "required": ["rollouts"],
        "additionalProperties": False,
    }


def group_response_format(spec: RubricSpec, labels: list[str]) -> dict[str, Any]:
    schema = group_schema(spec, labels)
    return {"type": "json_schema", "json_schema": {"name": "group_verdict", "strict": True, "schema": schema}}


@dataclass(frozen=True)
class GroupVerdict:
    """One validated judgement of a group: a verdict per label shown. Cached as
    {"rollouts": {label: {name: [score, reason]}}, "fake": bool}."""

    verdicts: dict[str, Verdict]
    fake: bool

    def to_cache(self) -> dict[str, Any]:
        return {"rollouts": {k: v.to_cache()["scores"] for k, v in self.verdicts.items()}, "fake": self.fake}


def parse_group_verdict(
    spec: RubricSpec, content: str | None, labels: list[str], fake: bool, model: type[BaseModel] | None = None
) -> GroupVerdict:
    """A group reply, validated: every label shown scored exactly once, none invented, each item a full verdict."""
    data = _load_json(content)
    if not isinstance(data, dict) or set(data) != {"rollouts"} or not isinstance(data["rollouts"], list):
        raise InvalidVerdict('the reply must be a JSON object {"rollouts": [...]} with one item per candidate')
    found: dict[str, Verdict] = {}
    problems: list[str] = []
    for i, item in enumerate(data["rollouts"]):
        label = item.get("label") if isinstance(item, dict) else None
        if not isinstance(label, str):
            problems.append(f"rollouts[{i}] has no string label")
            continue
        if label not in labels:
            problems.append(f"rollouts[{i}] has label {label!r}, which is not a candidate shown ({', '.join(labels)})")
            continue
        if label in found:
            problems.append(f"candidate {label} is scored twice")
            continue
        rest = {k: v for k, v in item.items() if k != "label"}
        try:
            found[label] = Verdict(parse_verdict(spec, json.dumps(rest), model), fake)
        except InvalidVerdict as exc:
            problems.append(f"candidate {label}: {exc}")
    missing = [x for x in labels if x not in found and not any(f"candidate {x}:" in p for p in problems)]
    if missing:
        problems.append(f"candidates {', '.join(missing)} are not scored (each of {', '.join(labels)} once)")
    if problems:
        raise InvalidVerdict("; ".join(problems))
    return GroupVerdict({x: found[x] for x in labels}, fake)


def group_verdict_from_cache(
    spec: RubricSpec, value: Any, labels: list[str], model: type[BaseModel] | None = None
) -> GroupVerdict:
    """A cached group verdict, checked as a reply is: a planted or corrupt value raises (a miss)."""
    if not isinstance(value, dict) or set(value) != {"rollouts", "fake"} or not isinstance(value["fake"], bool):
        raise InvalidVerdict("a cached group verdict must be {rollouts, fake} with a boolean fake")
    rollouts = value["rollouts"]
    if not isinstance(rollouts, dict) or sorted(rollouts) != sorted(labels):
        raise InvalidVerdict("a cached group verdict must score exactly the candidates shown")
    fake = value["fake"]
    return GroupVerdict(
        {x: verdict_from_cache(spec, {"scores": rollouts[x], "fake": fake}, model) for x in labels}, fake
    )


# --- pair ----------------------------------------------------------------------------------------------


def pair_schema(spec: RubricSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for d in spec.dimensions:
        properties[f"{d.name}_reason"] = {"type": "string"}
        properties[f"{d.name}_preferred"] = {"type": "string", "enum": list(PREFERENCES)}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def pair_response_format(spec: RubricSpec) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "pair_verdict", "strict": True, "schema": pair_schema(spec)}}


def pair_model(spec: RubricSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for d in spec.dimensions:
        fields[f"{d.name}_reason"] = (str, Field(...))
        fields[f"{d.name}_preferred"] = (Literal["A", "B", "tie"], Field(...))
    return create_model("PairVerdict", __config__=ConfigDict(extra="forbid", strict=True), **fields)


@dataclass(frozen=True)
class PairVerdict:
    """Which of two candidates (A shown first, B second) is better on each dimension, with the reason.
    Cached as {"preferred": {name: [A|B|tie, reason]}, "fake": bool}."""

    preferred: dict[str, tuple[str, str]]
    fake: bool

    def to_cache(self) -> dict[str, Any]:
        return {"preferred": {n: list(p) for n, p in self.preferred.items()}, "fake": self.fake}


def _checked_pair(spec: RubricSpec, data: Any, model: type[BaseModel]) -> dict[str, tuple[str, str]]:
    try:
        checked = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{format_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise InvalidVerdict(f"the verdict does not match the schema: {problems}") from exc
    return {
        d.name: (getattr(checked, f"{d.name}_preferred"), getattr(checked, f"{d.name}_reason")) for d in spec.dimensions
    }


def parse_pair_verdict(spec: RubricSpec, content: str | None, fake: bool, model: type[BaseModel]) -> PairVerdict:
    data = _load_json(content)
    if not isinstance(data, dict):
        raise InvalidVerdict(f"the reply must be a JSON object, not {type(data).__name__}")
    return PairVerdict(_checked_pair(spec, data, model), fake)


def pair_verdict_from_cache(spec: RubricSpec, value: Any, model: type[BaseModel]) -> PairVerdict:
    if not isinstance(value, dict) or set(value) != {"preferred", "fake"} or not isinstance(value["fake"], bool):
        raise InvalidVerdict("a cached pair verdict must be {preferred, fake} with a boolean fake")
    pairs = value["preferred"]
    if not isinstance(pairs, dict) or not all(isinstance(p, list) and len(p) == 2 for p in pairs.values()):
        raise InvalidVerdict("a cached pair verdict holds [preferred, reason] per dimension")
    flat = {f"{n}_{k}": v for n, p in pairs.items() for k, v in zip(("preferred", "reason"), p, strict=True)}
    return PairVerdict(_checked_pair(spec, flat, model), value["fake"])
