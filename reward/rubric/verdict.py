"""The judge's structured verdict: a JSON schema sent as `response_format`, and its validation.

Both are built from the rubric's dimensions. The schema is flat (reason before score for each dimension)
because flat schemas are what constrained decoders handle best, and a reason written first makes the score
a conclusion rather than a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, create_model

from reward.core.trajectory import format_loc
from reward.errors import RewardError
from reward.rubric.logprob_scores import Distribution, dists_from_cache, dists_to_cache, reply_distributions, weigh
from reward.rubric.spec import RubricSpec


@dataclass(frozen=True)
class DimensionScore:
    score: float  # on the rubric's scale: an integer on an integer scale; a mean over several samples
    reason: str
    # Logprob-weighted (rubric judge.grade.logprobs): `score` is the expectation over the score token's
    # distribution, `written` the value the judge wrote, `spread` the distribution's standard deviation.
    written: int | float | None = None
    spread: float | None = None


@dataclass(frozen=True)
class Verdict:
    """One validated judgement of one rollout: each dimension's score and reason, and whether the fake
    judge gave it. Cached as {"scores": {name: [score, reason]}, "fake": bool}; a rubric with logprob scores
    adds "dists": {name: {value: p}} (null: the reply had none usable, the written values stand), and
    `scores` keeps the written values, so a cache hit gives the same expectations."""

    scores: dict[str, DimensionScore]
    fake: bool
    weighted: bool = False  # the rubric asks for logprob scores
    dists: dict[str, Distribution] | None = None  # with `weighted`: each score's distribution, or None

    @property
    def scores_from(self) -> Literal["logprobs", "written"] | None:
        """Where the scores come from with logprob scores ("written": the fallback); None without them."""
        if not self.weighted:
            return None
        return "written" if self.dists is None else "logprobs"

    def to_cache(self) -> dict[str, Any]:
        scores = {n: [s.score if s.written is None else s.written, s.reason] for n, s in self.scores.items()}
        out: dict[str, Any] = {"scores": scores, "fake": self.fake}
        if self.weighted:
            out["dists"] = dists_to_cache(self.dists)
        return out


def logprob_mode(spec: RubricSpec) -> bool:
    """Does this rubric make scores from logprobs? Per-rollout grading on an integer scale only (build.py
    refuses the flag elsewhere, so it is never ignored silently)."""
    return spec.judge.grade.logprobs and spec.grading.mode == "rollout" and spec.scale.kind == "integer"


def weighted_verdict(
    spec: RubricSpec, scores: dict[str, DimensionScore], fake: bool, dists: dict[str, Distribution] | None
) -> Verdict:
    """A verdict whose scores are the expectations of `dists` (written values kept); the written values
    alone when `dists` is None; a plain verdict when the rubric has no logprob scores."""
    if not logprob_mode(spec):
        return Verdict(scores, fake)
    if dists is None:
        return Verdict(scores, fake, weighted=True)
    out = {}
    for name, s in scores.items():
        w = weigh(dists[name])
        out[name] = DimensionScore(w.mean, s.reason, written=s.score, spread=w.spread)
    return Verdict(out, fake, weighted=True, dists=dists)


def verdict_of_reply(spec: RubricSpec, reply: Any, scores: dict[str, DimensionScore]) -> Verdict:
    """The verdict of a validated judge reply (`scores`: its written values): with logprob scores, each
    score's distribution read from the reply's tokens (reward.rubric.logprob_scores), or the fallback."""
    dists = None
    if logprob_mode(spec):
        names = [d.name for d in spec.dimensions]
        dists = reply_distributions(reply, names, int(spec.scale.min), int(spec.scale.max))
    return weighted_verdict(spec, scores, reply.fake, dists)


class InvalidVerdict(RewardError, ValueError):
    """A reply that is not a valid verdict; the message is what the judge is told when re-asked."""


def verdict_from_cache(spec: RubricSpec, value: Any, model: type[BaseModel] | None = None) -> Verdict:
    """A cached verdict, validated exactly as a judge reply is (every dimension, numbers on the rubric's scale,
    string reasons) and marked fake or not by a real boolean: a cache is storage someone else may write to,
    so a planted or corrupt value raises InvalidVerdict (a miss), never becomes a reward."""
    weighted = logprob_mode(spec)
    # With logprob scores, an entry without distributions (one from before) is a miss, asked again: never
    # served as logprob scores, never silently as written ones.
    keys = {"scores", "fake", "dists"} if weighted else {"scores", "fake"}
    if not isinstance(value, dict) or set(value) != keys or not isinstance(value["fake"], bool):
        raise InvalidVerdict(f"a cached verdict must be {{{', '.join(sorted(keys))}}} with a boolean fake")
    scores = value["scores"]
    if not isinstance(scores, dict) or set(scores) != {d.name for d in spec.dimensions}:
        raise InvalidVerdict("a cached verdict must score exactly the rubric's dimensions")
    flat: dict[str, Any] = {}
    for name, pair in scores.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidVerdict(f"cached score of {name} is not [score, reason]")
        flat[f"{name}_score"], flat[f"{name}_reason"] = pair
    try:
        checked = (model or verdict_model(spec)).model_validate(flat)
    except ValidationError as exc:
        raise InvalidVerdict(f"cached verdict off the rubric: {exc.errors(include_url=False)[0]['msg']}") from exc
    written = {
        d.name: DimensionScore(getattr(checked, f"{d.name}_score"), getattr(checked, f"{d.name}_reason"))
        for d in spec.dimensions
    }
    if not weighted:
        return Verdict(written, value["fake"])
    try:
        dists = dists_from_cache(value["dists"], list(written), int(spec.scale.min), int(spec.scale.max))
    except ValueError as exc:
        raise InvalidVerdict(str(exc)) from exc
    return weighted_verdict(spec, written, value["fake"], dists)


def _score_schema(spec: RubricSpec) -> dict[str, Any]:
    lo, hi = spec.scale.min, spec.scale.max
    if spec.scale.kind == "integer":
        # An enum rather than minimum/maximum: every constrained decoder (OpenAI strict mode, vLLM's
        # xgrammar/outlines, llama.cpp) supports enums; bounds are not universally honoured.
        return {"type": "integer", "enum": list(range(int(lo), int(hi) + 1))}
    # A continuous scale: bounds are the only way to say it (they are checked here in any case).
    return {"type": "number", "minimum": lo, "maximum": hi}


def verdict_schema(spec: RubricSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for d in spec.dimensions:
        properties[f"{d.name}_reason"] = {"type": "string"}
        properties[f"{d.name}_score"] = _score_schema(spec)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def response_format(spec: RubricSpec) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": True, "schema": verdict_schema(spec)},
    }


def verdict_model(spec: RubricSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    # Numbers, never numeric strings or booleans; a number scale takes 1 as well as 1.0, not NaN or inf.
    kind: Any = StrictInt if spec.scale.kind == "integer" else StrictInt | Annotated[StrictFloat, AllowInfNan(False)]
    for d in spec.dimensions:
        fields[f"{d.name}_reason"] = (str, Field(...))
        fields[f"{d.name}_score"] = (kind, Field(..., ge=spec.scale.min, le=spec.scale.max))
    return create_model("Verdict", __config__=ConfigDict(extra="forbid"), **fields)


def _strip_fence(text: str) -> str:
    # Some judges wrap JSON in a markdown fence despite response_format; that is harmless to undo.
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:  # json.loads would keep the last silently: which score did the judge mean?
            raise InvalidVerdict(f"the reply gives the key {key[:80]!r} twice; give each key once")
        seen[key] = value
    return seen


def loads_verdict_json(text: str) -> Any:
    """json.loads for a judge's reply, refusing an object that repeats a key (re-asked, never merged)."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def parse_verdict(
    spec: RubricSpec, content: str | None, model: type[BaseModel] | None = None
) -> dict[str, DimensionScore]:
    """Validate a judge reply; raise InvalidVerdict naming every problem.

    `model` is `verdict_model(spec)`, passed in by callers that validate many replies.
    """
    if content is None or not content.strip():
        raise InvalidVerdict("the reply was empty; a JSON object with every dimension is required")
    try:
        data = loads_verdict_json(_strip_fence(content))
    except InvalidVerdict:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidVerdict(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InvalidVerdict(f"the reply is not usable JSON ({exc})") from exc
    except RecursionError as exc:
        raise InvalidVerdict("the reply is not usable JSON (nested too deeply)") from exc
    if not isinstance(data, dict):
        raise InvalidVerdict(f"the reply must be a JSON object, not {type(data).__name__}")
    try:
        verdict = (model or verdict_model(spec)).model_validate(data)
    except RecursionError as exc:
        raise InvalidVerdict("the verdict does not match the schema (nested too deeply)") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{format_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise InvalidVerdict(f"the verdict does not match the schema: {problems}") from exc
    return {
        d.name: DimensionScore(score=getattr(verdict, f"{d.name}_score"), reason=getattr(verdict, f"{d.name}_reason"))
        for d in spec.dimensions
    }
