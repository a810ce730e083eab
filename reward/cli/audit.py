"""`reward audit` (registered by reward.cli.main): is the configured judge fooled by known attacks?

Canaries (reward.analysis.canaries) are built from each group's reference trajectory, placed next to the
group's honest rollouts and scored with the configured judge (through the cache, so honest rollouts already
scored cost nothing); per kind, how often a canary reached the median honest reward of its group, and per
dimension, which ones paid out. Nothing is written: canaries never reach a scored file or a trainer.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from reward.cli.console import err, out, report_invalid
from reward.cli.options import BaseOpt, CacheOpt, ConcOpt, FakeOpt, KeyOpt, ModelOpt, RubricOpt, ToolOpt, notify
from reward.errors import UsageError
from reward.settings import DEFAULT_RUBRIC

if TYPE_CHECKING:
    from reward.core.trajectory import Group, LineError
    from reward.scoring.scorer import Scorer


def bundled_examples() -> Path:
    """The example groups (a checkout's examples/, a wheel's copy): the default canaries are built from them."""
    from reward.rubric.load import data_root

    return data_root() / "examples" / "rollouts.jsonl"


def read_groups(path: Path, scorer: Scorer, tools: str | None) -> tuple[list[Group], list[LineError]]:
    from reward.core.trajectory import Group, LineError, parse_line
    from reward.native.prepare import GroupInputError, prepare_group
    from reward.scoring.output_file import read_lines

    groups: list[Group] = []
    invalid: list[LineError] = []
    seen: set[str] = set()
    for lineno, line in read_lines(path):
        parsed = parse_line(Group, line, lineno)
        if isinstance(parsed, LineError):
            invalid.append(parsed)
            continue
        if parsed.group_id in seen:
            invalid.append(LineError(lineno, (f"group_id: duplicate {parsed.group_id!r}",)))
            continue
        seen.add(parsed.group_id)
        try:
            groups.append(prepare_group(parsed, None, tools, spec=scorer.rubric.spec))
        except GroupInputError as exc:
            invalid.append(LineError(lineno, tuple(exc.problems)))
    return groups, invalid


async def score_all(scorer: Scorer, groups: list[Group]) -> tuple[list[Any], Any]:
    from reward.judge.base import Usage

    usage = Usage()
    results = await asyncio.gather(*(scorer.score_group(g, usage) for g in groups))
    return list(results), usage


def audit(
    rubric: RubricOpt = DEFAULT_RUBRIC,
    input: Annotated[
        Path | None,
        typer.Option("--input", "-i", help="Groups with reference trajectories [the bundled examples/rollouts.jsonl]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {canaries, dimensions, judge, cost} as JSON.")] = False,
    cache: CacheOpt = None,
    judge_model: ModelOpt = None,
    judge_api_base: BaseOpt = None,
    judge_api_key: KeyOpt = None,
    concurrency: ConcOpt = None,
    fake_judge: FakeOpt = False,
    fake_weakness: Annotated[
        str | None,
        typer.Option(
            "--fake-weakness",
            help="With --fake-judge: a fake that pays out on canaries of this kind (to test the audit itself).",
        ),
    ] = None,
    terminal_tool: ToolOpt = None,
) -> None:
    """Score known-bad canaries (built from the references) with the judge: how often each kind is fooled through."""
    from reward.analysis.canaries import KINDS, built_kinds, canary_rollouts, tally
    from reward.scoring.build import open_scorer, run_scoring
    from reward.scoring.plan_check import plan_sections

    if fake_weakness is not None:
        if not fake_judge:
            raise UsageError("--fake-weakness goes with --fake-judge (a real judge's verdicts are never rewritten)")
        if fake_weakness not in KINDS:
            raise UsageError(f"--fake-weakness: unknown canary kind {fake_weakness!r}; known: {', '.join(KINDS)}")
    path = input or bundled_examples()
    if not path.is_file():
        raise UsageError(f"input file not found: {path}" + ("" if input else " (give --input FILE)"))
    with open_scorer(
        rubric,
        cache=cache,
        model=judge_model,
        api_base=judge_api_base,
        api_key=judge_api_key,
        concurrency=concurrency,
        fake=fake_judge,
        notify=notify,
    ) as scorer:
        spec = scorer.rubric.spec
        if not spec.reference:
            raise UsageError(f"rubric {scorer.rubric.name} takes no reference: canaries are built from references")
        if fake_weakness is not None:
            from reward.judge.fake.planted import PlantedWeaknessJudge
            from reward.scoring.scorer import Scorer

            scorer = Scorer(scorer.rubric, PlantedWeaknessJudge(scorer.judge, fake_weakness, spec), scorer.store)
        groups, invalid = read_groups(path, scorer, terminal_tool)
        report_invalid(invalid)
        headings = plan_sections(scorer.rubric.condense_template or "") or None
        names = [d.name for d in spec.dimensions]
        scale = (spec.scale.min, spec.scale.max)
        audited, skipped = [], []
        built: dict[str, dict[str, str]] = {}
        for g in groups:
            canaries = canary_rollouts(g, names, scale, *([headings] if headings else []))
            if not canaries:
                skipped.append(g.group_id)
            else:  # known by the ids built here: an honest rollout's meta.canary is the input's, not a canary
                audited.append(g.model_copy(update={"rollouts": [*g.rollouts, *canaries]}))
                built[g.group_id] = built_kinds(canaries)
        if not audited:
            raise UsageError(f"{path}: no group has a reference trajectory to build canaries from")
        results, usage = run_scoring(scorer, score_all(scorer, audited))
        failure = {n for n, grp in spec.groups.items() if grp.failure_mode}
        report = tally(results, built, {d.name for d in spec.dimensions if d.group in failure})
        settings = scorer.judge.settings
        report = {
            **report,
            "rubric": scorer.rubric.name,
            "judge": {
                "grade_model": settings.grade.model,
                "fake": any(r.judge.fake for r in results),
                **({"planted_weakness": fake_weakness} if fake_weakness else {}),
            },
            "groups": len(audited),
            "skipped_groups": skipped,
            "judge_calls": {
                **{role: usage.calls[role] for role in ("condense", "grade")},
                "total": sum(usage.calls.values()),
            },
            "cache": {"hits": usage.cache.hits + usage.cache.coalesced, "misses": usage.cache.misses},
        }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    if invalid:
        raise typer.Exit(1)
    if not any(row["n"] for row in report["canaries"].values()):
        err.print("[red]error:[/red] no canary could be judged")
        raise typer.Exit(5)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _print(report: dict[str, Any]) -> None:
    judge = report["judge"]
    title = f"audit · rubric {report['rubric']} · judge {judge['grade_model']}"
    table = Table(title=title)
    for col in ("canary kind", "n", "fooled", "rate", "penalised", "errors"):
        table.add_column(col, justify="left" if col == "canary kind" else "right")
    for kind, row in report["canaries"].items():
        table.add_row(
            kind, str(row["n"]), str(row["fooled"]), _pct(row["rate"]), str(row["penalized"]), str(row["errors"])
        )
    out.print(table)
    paid = [(name, col) for name, col in report["dimensions"].items() if col["paid"]]
    paid.sort(key=lambda nc: -(nc[1]["rate"] or 0))
    if paid:
        dims = Table(title="dimensions that paid out (canary at or above the honest median; failure modes at or below)")
        for col in ("dimension", "paid", "n", "rate", "by kind"):
            dims.add_column(col, justify="left" if col in ("dimension", "by kind") else "right")
        for name, col in paid:
            kinds = ", ".join(f"{k} {v}" for k, v in col["by_kind"].items() if v)
            dims.add_row(name, str(col["paid"]), str(col["n"]), _pct(col["rate"]), escape(kinds))
        out.print(dims)
    calls = report["judge_calls"]
    out.print(
        f"{report['groups']} groups audited ({len(report['skipped_groups'])} without a reference trajectory skipped); "
        f"{calls['total']} judge calls (condense {calls['condense']}, grade {calls['grade']}), "
        f"{report['cache']['hits']} answered by the cache"
    )
    if judge["fake"]:
        planted = f" (planted weakness: {judge['planted_weakness']})" if judge.get("planted_weakness") else ""
        out.print(
            f"[bold yellow]Judged by the FAKE judge{planted}: this measures nothing about a real judge.[/bold yellow]"
        )


def register(app: typer.Typer) -> None:
    app.command()(audit)
