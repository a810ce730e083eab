"""Rendering of the judge prompts from jinja2 templates (StrictUndefined: a missing variable is an error)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import meta, nodes

from reward.core.trajectory import CondenseInput, ShownStep
from reward.errors import RewardError
from reward.rubric.sandbox import MAX_CHARS, BoundedSandbox, render_budget

if TYPE_CHECKING:
    from reward.rubric.load import Rubric, RubricSpec

# Everything that comes from a rollout (query, commands, outputs, final answer, and plans condensed from
# them) is fenced between these markers. The marker characters cannot occur inside fenced text: they are
# replaced there by look-alikes, so no rollout can close its fence early or open a fake one.
FENCE_OPEN, FENCE_CLOSE = "\u27ea", "\u27eb"  # ⟪ ⟫
_NEUTRAL = str.maketrans({FENCE_OPEN: "\u00ab", FENCE_CLOSE: "\u00bb"})  # « »


def neutralise(text: str) -> str:
    return text.translate(_NEUTRAL)


def fence(text: object, label: str, inline: bool = False) -> str:
    """`{{ output | data("output") }}`: untrusted text between markers it cannot forge."""
    body = neutralise(str(text))
    sep = "" if inline else "\n"
    return f"{FENCE_OPEN}data:{label}{FENCE_CLOSE}{sep}{body}{sep}{FENCE_OPEN}/data:{label}{FENCE_CLOSE}"


def group_prefix_chars(user_content: str) -> int:
    """Length of the part of a grade prompt shared by every rollout of a group: everything before the
    candidate's fenced plan. The opening marker cannot occur inside fenced data, so its first occurrence
    is the template's own; 0 when the template has none (nothing is marked as shared)."""
    at = user_content.find(f"{FENCE_OPEN}data:candidate_plan{FENCE_CLOSE}")
    return max(at, 0)


_OPTIONS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "autoescape": False,  # plain-text prompts, not HTML
    "keep_trailing_newline": False,
    "trim_blocks": True,
    "lstrip_blocks": True,
}
# Templates are rubric files: a shared rubric repository is a supply-chain path, and a branch a trial render
# never takes (`{% if "trigger" in final_answer %}`) is still code. Every render, at load and at scoring time,
# runs in jinja's immutable sandbox: no private or internal attribute (`attr` filter and computed subscripts
# included), no str.format escape, no mutation of the values given, and bounds on what one render may build and do
# (reward.rubric.sandbox). It costs ~0.15 ms per grade prompt (53 -> 193 µs measured on a 2-core machine), against
# milliseconds of litellm per call.
_ENV = BoundedSandbox(**_OPTIONS)
_ENV.filters["data"] = fence

Messages = list[dict[str, str]]


@lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


class TemplateProblem(RewardError, ValueError):
    """A template that does not parse, or that fails to render (a sandbox violation included)."""


def render(source: str, variables: dict[str, Any]) -> Messages:
    """Render a template that defines `system()` and `user()` macros into chat messages (sandboxed); any
    failure is a TemplateProblem, which the scorer reports as an error of the rollout, never a 500."""
    try:
        with render_budget():
            module = _compile(source).make_module(variables)
            # macros are attributes jinja2 creates at render time: looked up by name
            system, user = getattr(module, "system"), getattr(module, "user")  # noqa: B009
            messages = [
                {"role": "system", "content": str(system()).strip()},
                {"role": "user", "content": str(user()).strip()},
            ]
    except Exception as exc:  # SecurityError, UndefinedError, a filter's own error: the rubric's problem
        raise TemplateProblem(f"the template fails to render: {type(exc).__name__}: {exc}") from exc
    for m in messages:
        if len(m["content"]) > MAX_CHARS:  # more than a judge's context holds: never sent
            raise TemplateProblem(f"the {m['role']} prompt is {len(m['content']):,} characters, over {MAX_CHARS:,}")
    return messages


def template_problems(source: str, available: set[str]) -> list[str]:
    """What is wrong with a template given the variables it will be rendered with (empty: nothing)."""
    try:
        tree = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
    macros = {m.name for m in tree.find_all(nodes.Macro)}
    problems = [f"it must define the macro {name}()" for name in ("system", "user") if name not in macros]
    private = sorted(
        {n.attr for n in tree.find_all(nodes.Getattr) if n.attr.startswith("_")}
        | {
            str(n.arg.value)
            for n in tree.find_all(nodes.Getitem)
            if isinstance(n.arg, nodes.Const) and str(n.arg.value).startswith("_")
        }
    )
    if private:
        problems.append(f"reaches into Python internals ({', '.join(private)}): templates may not")
    # Attribute names computed at render time cannot be checked here (every branch is walked, but a name built
    # from strings is only known when rendered): `attr` is refused outright; the sandbox guards the rest.
    if any(f.name == "attr" for f in tree.find_all(nodes.Filter)):
        problems.append("uses the `attr` filter (attribute names computed at render time): templates may not")
    unknown = meta.find_undeclared_variables(tree) - set(_ENV.globals) - macros - available
    if unknown:
        problems.append(
            f"uses {', '.join(sorted(unknown))}: neither given by the engine nor declared in `inputs` "
            f"(available: {', '.join(sorted(available))})"
        )
    return problems


def condense_variables(spec: RubricSpec, ci: CondenseInput, group_inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    t = spec.truncation
    return {
        **(group_inputs or {}),
        "query": ci.query,
        "steps": ci.steps,
        "final_answer": ci.final_answer,
        "head": t.head,
        "tail": t.tail,
    }


def template_view(spec: RubricSpec) -> dict[str, Any]:
    """What the grading template sees of the rubric: built once per loaded rubric (`Rubric.view`)."""
    return {
        # Weights are not shown: they only weigh group means, so editing one costs no judge call.
        "dimensions": [SimpleNamespace(**d.model_dump(exclude={"weight"})) for d in spec.dimensions],
        "groups": [SimpleNamespace(**g) for g in spec.group_list()],
        "scale": spec.scale,
    }


def grade_variables(
    spec: RubricSpec,
    ci: CondenseInput,
    inputs: Mapping[str, Any] | None,
    reference_plan: str | None,
    candidate_plan: str | None,
    view: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {**condense_variables(spec, ci, inputs), **(view or template_view(spec))}
    if spec.condenses:
        variables["candidate_plan"] = candidate_plan
    if spec.reference:
        variables["reference_plan"] = reference_plan
    return variables


def candidates_variables(
    spec: RubricSpec,
    query: str,
    inputs: Mapping[str, Any] | None,
    reference_plan: str | None,
    candidates: list[tuple[str, str, str]],
    view: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a group or pair grading template sees: the query, the group's inputs, the reference plan and the
    candidates shown, each `(label, plan, final_answer)`, as `candidates[i].label / .plan / .final_answer`."""
    shown = [SimpleNamespace(label=label, plan=plan, final_answer=fa) for label, plan, fa in candidates]
    variables: dict[str, Any] = {**(inputs or {}), "query": query, "candidates": shown, **(view or template_view(spec))}
    if spec.reference:
        variables["reference_plan"] = reference_plan
    return variables


def candidates_messages(
    rubric: Rubric,
    query: str,
    inputs: Mapping[str, Any] | None,
    reference_plan: str | None,
    candidates: list[tuple[str, str, str]],
) -> Messages:
    """The grading request of a group (listwise) or pairwise stage: several candidates in one prompt."""
    variables = candidates_variables(rubric.spec, query, inputs, reference_plan, candidates, rubric.view)
    return render(rubric.grade_template, variables)


def condense_messages(rubric: Rubric, ci: CondenseInput, group_inputs: Mapping[str, Any] | None = None) -> Messages:
    assert rubric.condense_template is not None, "the rubric has no condensing stage"
    return render(rubric.condense_template, condense_variables(rubric.spec, ci, group_inputs))


def grade_messages(
    rubric: Rubric,
    ci: CondenseInput,
    *,
    inputs: Mapping[str, Any] | None = None,
    reference_plan: str | None = None,
    candidate_plan: str | None = None,
) -> Messages:
    """The grading request: the rollout's cleaned trajectory, its declared inputs, the plans (with a
    condensing stage) and the rubric's dimensions, groups and scale."""
    variables = grade_variables(rubric.spec, ci, inputs, reference_plan, candidate_plan, rubric.view)
    return render(rubric.grade_template, variables)


_SAMPLE = {"string": "text", "integer": 1, "number": 0.5, "boolean": True}


def _sample(kind: str, present: bool) -> Any:
    if kind == "checklist":  # as reward.rubric.inputs gives it: criteria with their ids
        n = 2 if present else 1
        return [
            SimpleNamespace(id=f"c{i}", text=f"criterion {i}", category="essential", pitfall=False)
            for i in range(1, n + 1)
        ]
    return _SAMPLE[kind]


def check_template(spec: RubricSpec, stage: str, source: str) -> list[str]:
    """What is wrong with a rubric's template, found when the rubric is loaded, not after judge calls were
    paid for: variables nobody gives (the names are those of the variables it is rendered with), then a
    render with sample values in the sandbox, once with everything present and once with every optional part
    absent (no steps, empty texts, optional inputs left out): an attribute typo, a misused filter, an include."""
    fields = {**spec.inputs.group, **spec.inputs.rollout}
    full = CondenseInput("query", (ShownStep("ls", 0, "output"),), "<final_answer>a</final_answer>")
    bare = CondenseInput("", (), "")
    trials = []
    for ci, present in ((full, True), (bare, False)):
        inputs = {n: _sample(f.type, present) if present or f.required else None for n, f in fields.items()}
        if stage == "condense":
            trials.append(condense_variables(spec, ci, {n: inputs[n] for n in spec.inputs.group}))
        elif spec.grading.mode in ("group", "pairwise"):  # several candidates: two with everything, one with nothing
            shown = [("A", "plan A", ci.final_answer), ("B", "plan B", ci.final_answer)] if present else [("A", "", "")]
            trials.append(candidates_variables(spec, ci.query, inputs, "reference plan", shown))
        else:
            trials.append(grade_variables(spec, ci, inputs, "reference plan", "candidate plan"))
    problems = template_problems(source, set(trials[0]))
    if problems:  # rendering would only fail on the same names
        return problems
    for variables, what in zip(trials, ("with every field", "with optional parts left out"), strict=True):
        try:
            render(source, variables)
        except TemplateProblem as exc:  # whatever jinja or a filter raises: the rubric's problem, said once
            cause = exc.__cause__
            problems.append(f"rendering {what} fails: {type(cause).__name__}: {cause}" if cause else str(exc))
    return problems
