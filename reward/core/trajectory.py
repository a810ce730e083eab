"""Input models: one prompt group per JSONL line, as saved by a trainer or written by hand.

Every model forbids unknown fields, so a typo in a field name is an error with its path rather than a
silently ignored value.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from reward.core.clean import canonical_whitespace, prepare_output, readable


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(Strict):
    """One terminal command the subagent ran."""

    command: str
    exit_code: int | None = None
    output: str = ""
    # Why the policy's call was not a valid terminal command (unparsable arguments, another tool, ...).
    # Such a step is shown to the judge as behaviour but never counts as a command.
    invalid: str | None = None


class Trajectory(Strict):
    """Steps and final answer, given explicitly or in a trainer-native form (see reward.native)."""

    steps: list[Step] = Field(default_factory=list)
    final_answer: str = ""
    messages: list[dict[str, Any]] | None = None  # OpenAI chat-completions messages
    text: str | None = None  # decoded Qwen3 / Hermes chat text
    # The prompt as the trainer holds it: `text` is the response alone, or starts with exactly this prompt.
    prompt: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Trajectory:
        native: list[str] = [f for f in ("messages", "text") if getattr(self, f) is not None]
        explicit: list[str] = [f for f in ("steps", "final_answer") if f in self.model_fields_set]
        if len(native) > 1 or (native and explicit):
            raise ValueError(f"give either steps/final_answer, messages or text, not {' and '.join(native + explicit)}")
        if self.prompt is not None and self.text is None:
            raise ValueError("prompt goes with text (the prompt a decoded text starts with)")
        return self

    @property
    def is_native(self) -> bool:
        return self.messages is not None or self.text is not None


class TrajectoryReference(Trajectory):
    """A reference given as a raw trajectory: condensed into a plan once, then cached."""


class PlanReference(Strict):
    """A reference given as a ready Execution Plan (for example a line written by `reward plans`)."""

    plan: str = Field(min_length=1)
    id: str | None = None
    fake: bool = False  # condensed by the fake judge: whatever is built on it is marked fake too


class IdReference(Strict):
    """A reference plan loaded at start-up (`--plans`), referred to by its id."""

    id: str = Field(min_length=1)


def _reference_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "plan" in value:
            return "plan"
        return "id" if set(value) == {"id"} else "trajectory"
    if isinstance(value, PlanReference):
        return "plan"
    return "id" if isinstance(value, IdReference) else "trajectory"


Reference = Annotated[
    Annotated[PlanReference, Tag("plan")]
    | Annotated[IdReference, Tag("id")]
    | Annotated[TrajectoryReference, Tag("trajectory")],
    Discriminator(_reference_kind),
]


MAX_FREE_DEPTH = 64  # free JSON (meta, inputs) echoed in the output: deeper than this cannot be written back


def _shallow(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Free JSON nested at most MAX_FREE_DEPTH deep: it is copied to the output, whose writer refuses deeper
    nesting; a line error now, before any judge call is paid for, rather than a lost run after it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_FREE_DEPTH:
                raise ValueError(f"nested more than {MAX_FREE_DEPTH} deep")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return value


FreeJson = Annotated[dict[str, Any] | None, AfterValidator(_shallow)]


class Rollout(Trajectory):
    """One rollout of a group: a trajectory in any form, with an id, the trainer's exact token count and free `meta`."""

    id: str | None = None
    # Trainers know the exact token count of a rollout; without it we count offline (see penalties).
    num_tokens: int | None = Field(default=None, ge=0)
    # Free labels (e.g. {"kind": "hallucinated"}) copied to the output untouched; never shown to the judge.
    meta: FreeJson = None
    # The judge's rollout-level input fields, as the rubric declares them (checked by reward.rubric.inputs).
    inputs: FreeJson = None


class Group(Strict):
    """One prompt group (an input line): the task `query`, the `reference`, and the G rollouts scored together."""

    group_id: str = Field(min_length=1)
    query: str = ""  # the task query; required by rubrics with a condensing stage (reward.rubric.inputs)
    reference: Reference | None = None  # required by rubrics with `reference: true`
    rollouts: list[Rollout] = Field(min_length=1)
    # The judge's group-level input fields, as the rubric declares them (checked by reward.rubric.inputs).
    inputs: FreeJson = None

    @model_validator(mode="after")
    def _ids(self) -> Group:
        seen: set[str] = set()
        for i, rollout in enumerate(self.rollouts):
            if rollout.id is None:
                rollout.id = str(i)
            if rollout.id in seen:
                raise ValueError(f"duplicate rollout id {rollout.id!r}")
            seen.add(rollout.id)
        return self


class RefLine(Trajectory):
    """One line of a `reward plans` input file: a reference trajectory with its id and query."""

    id: str = Field(min_length=1)
    query: str
    inputs: FreeJson = None  # the group-level inputs a rubric's condensing template uses


@dataclass(frozen=True)
class LineError:
    """A malformed input line: reported with its number and the failing field paths."""

    lineno: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.lineno}: " + "; ".join(self.problems)


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<line>"


def _drop_union_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # A discriminated union puts its tag right after the field name; it means nothing to the user.
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (i and loc[i - 1] == "reference" and part in ("plan", "id", "trajectory"))
    )


def validation_problems(err: ValidationError) -> tuple[str, ...]:
    return tuple(f"{format_loc(_drop_union_tag(tuple(e['loc'])))}: {e['msg']}" for e in err.errors(include_url=False))


M = TypeVar("M", bound=BaseModel)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # only escapes can carry one into the text
_LONE = re.compile("[\ud800-\udfff]")  # json.loads pairs valid pairs: what is left is alone


def _scrub(value: Any) -> Any:
    """Lone surrogates (valid as JSON escapes, not as Unicode) become U+FFFD: an id or query carrying one
    could not even be written back out."""
    if isinstance(value, str):
        return _LONE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _decode_problem(exc: json.JSONDecodeError) -> str:
    """json's message in plain words ("Unterminated string starting at" ends in a dangling "at")."""
    msg = exc.msg.removesuffix(" at")
    msg = msg[:1].lower() + msg[1:]
    if msg.startswith("invalid control character"):
        msg += " (a raw tab, newline or other control character inside a string)"
    doc = exc.doc if isinstance(exc.doc, str) else ""
    if msg.startswith("unterminated") or exc.pos >= len(doc.rstrip()):
        return f"{msg} at column {exc.colno}: the text ends before the JSON does (cut off?)"
    return f"{msg} at column {exc.colno}"


def parse_json(text: str | bytes) -> Any:
    """Strict JSON: NaN/Infinity refused, and Python's own limits (integers over 4300 digits, nesting
    deeper than the recursion limit) reported as ValueError like any other invalid JSON."""
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return _scrub(data) if _SURROGATE.search(text) else data
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {_decode_problem(exc)}") from exc
    except RecursionError as exc:
        raise ValueError("invalid JSON: nested too deeply") from exc
    except ValueError as exc:  # NaN / Infinity, an integer of more than 4300 digits
        reason = "an integer has more than 4300 digits" if "4300" in str(exc) else str(exc)
        raise ValueError(f"invalid JSON: {reason}") from exc


def parse_line(model: type[M], line: str, lineno: int) -> M | LineError:
    try:
        data = parse_json(line)
    except ValueError as exc:
        return LineError(lineno, (str(exc),))
    if not isinstance(data, dict):
        return LineError(lineno, (f"expected a JSON object, got {type(data).__name__}",))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return LineError(lineno, validation_problems(exc))
    except RecursionError:
        return LineError(lineno, ("nested too deeply",))


# --- What the condensing judge sees ---------------------------------------------------------------


@dataclass(frozen=True)
class ShownStep:
    command: str  # a malformed call is shown as "[invalid tool call: why] raw call"
    exit_code: int | None
    output: str


@dataclass(frozen=True)
class CondenseInput:
    """The canonical cleaned trajectory: exactly what the condensing prompt shows, and what its cache
    key hashes, so two rollouts that differ only in cut or invisible bytes share one plan."""

    query: str
    steps: tuple[ShownStep, ...]
    final_answer: str

    def canonical(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "steps": [[s.command, s.exit_code, s.output] for s in self.steps],
            "final_answer": self.final_answer,
        }


def _shown_command(step: Step) -> str:
    return step.command if step.invalid is None else f"[invalid tool call: {step.invalid}] {step.command}"


def condense_input(query: str, trajectory: Trajectory, head: int, tail: int) -> CondenseInput:
    # Whitespace made canonical everywhere the judge reads (reward.core.clean.canonical_whitespace): rollouts
    # that differ only in trailing spaces or blank lines share one judgement.
    return CondenseInput(
        query=canonical_whitespace(readable(query)),
        steps=tuple(
            ShownStep(
                canonical_whitespace(readable(_shown_command(s))).strip("\n"),
                s.exit_code,
                prepare_output(s.output, head, tail),
            )
            for s in trajectory.steps
        ),
        final_answer=canonical_whitespace(readable(trajectory.final_answer)).strip(),
    )
