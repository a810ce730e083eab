"""Commands for rubric authors: `reward rubric check`, `reward rubric schema` and `reward prompt`.

Registered on the main app by reward.cli.main. Prompts are printed as plain text, never as rich markup: they
hold rollout text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from reward.cli.console import err, out
from reward.cli.overrides import SetOpt
from reward.errors import UsageError
from reward.rubric.load import Rubric, RubricSpec, load_rubric

RubricArg = Annotated[str, typer.Argument(help="Rubric YAML path or name.")]


def schema_text() -> str:
    """The JSON Schema of a rubric file (what `# yaml-language-server: $schema=` points editors to)."""
    schema = RubricSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "reward rubric"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def rubric_schema() -> None:
    """Print the JSON Schema of rubric files (for editors: rubrics/rubric.schema.json)."""
    sys.stdout.write(schema_text())


def describe(r: Rubric) -> list[str]:
    from reward.rubric.formula import graded_range, rubric_warnings

    spec = r.spec
    lo, hi = graded_range(spec)
    lines = [f"{spec.name} version {r.version}, prompt version {r.prompt_version}  ({r.path})"]
    if r.overrides:
        lines.append(f"  overrides: {', '.join(r.overrides)} (not the file's rubric: its version includes them)")
    for name in spec.groups:
        dims = spec.in_group(name)
        lines.append(f"  {name:<13} {len(dims):>2}: {', '.join(d.name for d in dims)}")
    constants = ", ".join(f"{k} = {v:g}" for k, v in spec.constants.items())
    lines.append(f"  reward = {spec.reward_scale:g} * ({spec.formula}){'  with ' + constants if constants else ''}")
    lines.append(f"  scale {spec.scale.min}..{spec.scale.max} ({spec.scale.kind}), graded rewards in [{lo:g}, {hi:g}]")
    stages = f"condense ({spec.templates.condense}) then grade" if spec.condenses else "grade only"
    lines.append(f"  stages: {stages} ({spec.templates.grade}); reference {'required' if spec.reference else 'none'}")
    for level, fields in (("group", spec.inputs.group), ("rollout", spec.inputs.rollout)):
        if fields:
            shown = ", ".join(f"{n}: {f.type}{'' if f.required else '?'}" for n, f in fields.items())
            lines.append(f"  {level} inputs: {shown}")
    p = spec.penalties
    on = ", ".join(f"{k} {getattr(p, k):g}" for k in p.enabled()) or "none"
    lines.append(f"  penalties: {on}{f' (too long: > {p.max_tokens} tokens)' if p.too_long is not None else ''}")
    judge = spec.judge
    models = " / ".join(c.model for c in (judge.condense, judge.grade) if c is not None)
    lines.append(f"  group filter std < {spec.group_filter.min_std}; judge {models}")
    unused = [g for g in spec.groups if g not in spec.expression.names]
    warnings = rubric_warnings(spec) + [f"group {g} is not used by the formula" for g in unused]
    if not spec.condenses and {"missing_final_answer", "no_commands"} & set(p.enabled()):
        warnings.append("penalties for a missing final answer or no commands apply to terminal trajectories")
    return lines + [f"  warning: {w}" for w in warnings]


def rubric_check(file: RubricArg, overrides: SetOpt = None) -> None:
    """Validate a rubric (schema, formula, templates against the declared inputs) and print a summary."""
    for line in describe(load_rubric(file, overrides or [])):
        out.print(line, markup=False, highlight=False, soft_wrap=True, style="yellow" if "warning:" in line else None)


def _find_group(path: Path, group_id: str) -> Any:
    from reward.core.trajectory import Group, LineError, parse_line

    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    with path.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            # A cheap filter before parsing: the id as written, or as JSON escapes it.
            if group_id not in line and json.dumps(group_id)[1:-1] not in line and "\\u" not in line:
                continue
            parsed = parse_line(Group, line, lineno)
            if isinstance(parsed, LineError):
                if group_id in line:  # most likely the asked group, unreadable: say why
                    raise UsageError(f"{path}: {parsed}")
                continue
            if parsed.group_id == group_id:
                return parsed
    raise UsageError(f"{path}: no group with group_id {group_id!r}")


def prompt(
    input: Annotated[Path, typer.Argument(help="Rollout groups (JSONL), as for `reward score`.")],
    group: Annotated[str, typer.Option("--group", "-g", help="The group's group_id.")],
    rollout: Annotated[str, typer.Option("--rollout", help="The rollout's id (or index in the group).")],
    stage: Annotated[Literal["condense", "grade"], typer.Option("--stage", help="Which request.")] = "grade",
    rubric: Annotated[str, typer.Option("--rubric", "-r", help="Rubric name or YAML path.")] = "execution_subagent",
    as_json: Annotated[bool, typer.Option("--json", help="Print the request as JSON.")] = False,
    cache: Annotated[str | None, typer.Option("--cache-dir", help="[env REWARD_CACHE_DIR]")] = None,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="[env REWARD_JUDGE_MODEL]")] = None,
    judge_api_base: Annotated[str | None, typer.Option("--judge-api-base", help="[env REWARD_JUDGE_API_BASE]")] = None,
    fake_judge: Annotated[bool, typer.Option("--fake-judge", help="Condense with the fake judge.")] = False,
    overrides: SetOpt = None,
) -> None:
    """Print the exact request the judge gets for one rollout: its messages and response format.

    The grading request of a rubric with a condensing stage contains plans: they come from the cache, or
    are condensed now by the configured judge (and cached, so `reward score` reuses them)."""
    from reward.cli.options import notify
    from reward.judge.base import Usage
    from reward.native.prepare import prepare_group
    from reward.rubric.overrides import applying
    from reward.scoring.build import open_scorer, run_scoring

    with (
        applying(overrides),
        open_scorer(
            rubric, cache=cache, model=judge_model, api_base=judge_api_base, fake=fake_judge, notify=notify
        ) as scorer,
    ):
        spec = scorer.rubric.spec
        g = prepare_group(_find_group(input, group), spec=spec)
        if spec.grading.mode == "checklist":  # the group's criteria are the dimensions of its own rubric
            from reward.scoring.checklist_stage import group_scorer

            scorer = group_scorer(scorer, g)[0]
            spec = scorer.rubric.spec
        chosen = next((r for r in g.rollouts if r.id == rollout), None)
        if chosen is None and rollout.isdigit() and int(rollout) < len(g.rollouts):
            chosen = g.rollouts[int(rollout)]
        if chosen is None:
            raise UsageError(f"group {group!r} has no rollout {rollout!r} ({', '.join(str(r.id) for r in g.rollouts)})")
        ci = scorer.condense_input(g.query, chosen)
        rf: dict[str, Any] | None = None
        if stage == "condense":
            if not spec.condenses:
                raise UsageError(f"rubric {spec.name} has no condensing stage")
            messages, role = scorer.condense_request(g, ci), "condense"
        else:
            if spec.grading.mode != "rollout":  # one request holds the group (or a pair), not this rollout
                raise UsageError(
                    f"rubric {spec.name} grades in mode {spec.grading.mode}: its grading request is not one "
                    "rollout's; `--stage condense` prints this rollout's condensing request"
                )
            usage = Usage()

            async def plans() -> tuple[Any, Any]:
                if not spec.condenses:
                    return None, None
                cand = await scorer.plan(scorer.condense_request(g, ci), usage)
                ref = await scorer.reference_plan(g, usage) if spec.reference else None
                return cand, ref

            candidate, reference = run_scoring(scorer, plans())
            calls = sum(usage.calls.values())
            if spec.condenses:
                err.print(f"plans: {calls} condensing call(s) to {scorer.judge.settings.condense.model}, rest cached")
            messages, role, rf = (
                scorer.grade_request(g, chosen, ci, reference, candidate),
                "grade",
                scorer.response_format,
            )
        call = scorer.judge.settings.condense if role == "condense" else scorer.judge.settings.grade
        request = {"model": call.model, "temperature": call.temperature, "max_tokens": call.max_tokens}
        request |= {"messages": messages} | ({"response_format": rf} if rf is not None else {})
    if as_json:
        sys.stdout.write(json.dumps(request, indent=2, ensure_ascii=False) + "\n")
        return
    sys.stdout.write(
        f"# {role} request to {call.model} (temperature {call.temperature}, max_tokens {call.max_tokens})\n"
    )
    for m in messages:
        sys.stdout.write(f"\n===== {m['role']} =====\n{m['content']}\n")
    if rf is not None:
        sys.stdout.write(f"\n===== response_format =====\n{json.dumps(rf, indent=2)}\n")


def register(app: typer.Typer, rubric_app: typer.Typer) -> None:
    rubric_app.command("check")(rubric_check)
    rubric_app.command("schema")(rubric_schema)
    app.command()(prompt)
