"""`reward migrate` (registered by reward.cli.main): switch judges without a jump in the reward's scale."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from reward.analysis.scored import output_target
from reward.cli.analysis import fmt, refuse_overwrite
from reward.cli.console import err, out
from reward.cli.options import BaseOpt, CacheOpt, ConcOpt, FakeOpt, KeyOpt, ToolOpt, notify

if TYPE_CHECKING:
    from reward.analysis.migrate import Migration
    from reward.scoring.dry_run_report import DryRun
    from reward.scoring.scorer import Scorer


def migrate(
    scored: Annotated[Path, typer.Argument(help="A scored run (JSONL from `reward score`) of the current judge.")],
    to: Annotated[str | None, typer.Option("--to", help="The new grading judge (litellm model string).")] = None,
    sample: Annotated[int, typer.Option("--sample", "-n", min=1, help="Graded rollouts to re-grade.")] = 200,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Needed: the rollouts the run scored.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the rubric overlay (YAML) with the fitted score maps.")
    ] = None,
    rubric: Annotated[
        str | None, typer.Option("--rubric", "-r", help="The run's rubric (name or YAML path) [the one it names].")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {estimate, migration, overlay} as JSON (the estimate on stderr).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the cost estimate only: no judge call.")] = False,
    cache: CacheOpt = None,
    judge_api_base: BaseOpt = None,
    judge_api_key: KeyOpt = None,
    concurrency: ConcOpt = None,
    fake_judge: FakeOpt = False,
    fake_distortion: Annotated[
        float | None,
        typer.Option(
            "--fake-distortion",
            min=0.05,
            max=20.0,
            help="With --fake-judge: the new judge is the fake one with scores bent by s -> s^GAMMA on the scale.",
        ),
    ] = None,
    terminal_tool: ToolOpt = None,
) -> None:
    """Re-grade a stratified sample of a run with a new judge, report agreement per dimension, and fit monotone
    score maps (new judge -> old scale) into a rubric overlay, so rewards keep their scale across the switch."""
    from reward.analysis import migrate as m
    from reward.analysis.migrate_judges import open_judges
    from reward.errors import UsageError
    from reward.rubric.score_maps import score_map_problem

    if fake_judge and to is not None:
        raise UsageError("--to and --fake-judge: the fake judge is the new judge; leave --to out")
    if fake_distortion is not None and not fake_judge:
        raise UsageError("--fake-distortion goes with --fake-judge (a real judge's verdicts are never rewritten)")
    if output is not None:
        refuse_overwrite(output, "--output", scored)
        output_target(output)  # a FIFO or a device there is refused now, not after the re-grade was paid
    groups = m.read_run(scored)
    run_rubric = _rubric(rubric, groups)
    if input is None:
        raise UsageError(
            "--input ROLLOUTS.jsonl is needed: the rollouts the run scored (a scored file holds no queries)"
        )
    k = m.samples_of(groups)
    graded, picks = m.sample_targets(groups, run_rubric, sample)
    inputs = m.read_inputs(input, {g for g, _ in picks}, run_rubric, terminal_tool)
    work = m.targets(groups, inputs, picks, input)
    run_judge = groups[0].judge
    own = {mp.onto for mp in run_rubric.spec.score_maps.values() if mp.onto}  # the run's maps gave this scale
    from_judge = own.pop() if len(own) == 1 else run_judge.grade_model
    problem = score_map_problem(run_rubric.spec.score_maps, run_judge.grade_model)
    if problem:  # the run's scores went through maps fitted for another judge: the fit inherits the error
        err.print(Text(f"warning: the run: {problem}", style="yellow"))
    with open_judges(
        run_rubric,
        to_model=to,
        condense_model=run_judge.condense_model or run_judge.grade_model,
        samples=k,
        cache=cache,
        api_base=judge_api_base,
        api_key=judge_api_key,
        concurrency=concurrency,
        fake=fake_judge,
        distortion=fake_distortion,
        notify=notify,
    ) as (grader, condenser):
        report = _run(_estimate_only(grader, condenser, work, k))
        estimate = {"graded": graded, "sampled": len(work), **report.as_json()}
        lines = _estimate_lines(report, graded, len(work))
        if dry_run:
            print(json.dumps(estimate, indent=2)) if as_json else out.print(Text("\n".join(lines)))
            return
        if run_judge.fake and not grader.judge.settings.fake:
            raise UsageError(f"{scored} was judged by the FAKE judge: a real judge's scale cannot be fitted onto it")
        (err if as_json else out).print(Text("\n".join(lines)))
        outcome = _run(_regrade(grader, condenser, work, k))
    to_judge = grader.judge.settings.grade.model
    dims, maps, flat = m.analyse(run_rubric, outcome, from_judge, to_judge)
    result = m.Migration(
        from_judge=from_judge,
        to_judge=to_judge,
        fake=run_judge.fake or grader.judge.settings.fake,
        samples=k,
        graded=graded,
        sampled=len(work),
        regraded=len(outcome.regraded),
        errors=outcome.errors,
        dimensions=dims,
        reward=m.reward_agreement(run_rubric, outcome, maps),
        maps=maps,
        flat=flat,
    )
    overlay = None
    if output is not None:
        from reward.analysis.migrate_overlay import overlay_data, overlay_text, write_overlay

        data = overlay_data(run_rubric, maps, to_judge, run_judge.condense_model or run_judge.grade_model)
        write_overlay(output, overlay_text(data, run_rubric, from_judge, to_judge, len(outcome.regraded)), run_rubric)
        overlay = str(output)
    if as_json:
        print(
            json.dumps(
                {"estimate": estimate, "migration": result.model_dump(mode="json"), "overlay": overlay}, indent=2
            )
        )
    else:
        _print(result, overlay)


def _rubric(name: str | None, groups: list[Any]) -> Any:
    from reward.analysis.migrate import MigrateError
    from reward.analysis.report_data import rubric_named
    from reward.rubric.load import load_rubric

    basis = groups[0].basis
    overrides = list(basis.overrides or [])
    r = load_rubric(name, overrides=overrides) if name else rubric_named(groups[0].rubric, overrides)
    if r is None:
        raise MigrateError(f"the run's rubric {groups[0].rubric!r} is not a configured rubric: give --rubric")
    if r.prompt_version != basis.prompt_version:
        raise MigrateError(
            f"{r.path.name} asks the judge differently from the run (prompt version {r.prompt_version}, the run's "
            f"{basis.prompt_version}): the new judge would answer other prompts; give the run's rubric with --rubric"
        )
    return r


def _run(work: Any) -> Any:
    return asyncio.run(work)


async def _estimate_only(grader: Scorer, condenser: Scorer, work: list[Any], k: int) -> DryRun:
    from reward.analysis.migrate import estimate

    return await estimate(grader, condenser, work, k)


async def _regrade(grader: Scorer, condenser: Scorer, work: list[Any], k: int) -> Any:
    from reward.analysis.migrate import regrade
    from reward.judge.base import Usage

    try:
        return await regrade(grader, condenser, work, k, Usage())
    finally:  # the judges' connections closed on this loop (see Scorer.aclose)
        await grader.aclose()
        await condenser.aclose()


def _estimate_lines(report: DryRun, graded: int, sampled: int) -> list[str]:
    def cost(c: float | None) -> str:
        return "unknown" if c is None else f"${c:,.4f}"

    lines = [f"migrate: {sampled} of {graded} graded rollouts to re-grade ({report.samples} verdict(s) each)"]
    for name, s in report.stages.items():
        if s.model is None:
            continue
        lines.append(
            f"  {name}: {s.model}: {s.calls:,} calls ({s.cached:,} cached, {s.shared:,} shared), "
            f"{s.prompt_tokens:,} prompt tokens, <= {s.completion_tokens:,} completion tokens, {cost(s.cost)}"
        )
    lines.append(f"  total cost (estimate) {cost(report.cost)}; failures and re-asks not included")
    return lines


def _print(result: Migration, overlay: str | None) -> None:
    t = Table(
        title=f"{result.to_judge} (new) against {result.from_judge} (old) on {result.regraded} re-graded rollouts: "
        "Kendall tau, means, shift (new - old), rank flips within groups, mean |new - old| raw and mapped"
    )
    t.add_column("dimension", no_wrap=True)
    for col in ("tau", "old", "new", "shift", "flips", "|Δ|", "|Δ| mapped"):
        t.add_column(col, justify="right", no_wrap=True)
    rows = [*result.dimensions.items(), ("reward", result.reward)]
    for name, a in rows:
        t.add_row(
            Text(name),
            fmt(a.kendall_tau),
            fmt(a.mean_old),
            fmt(a.mean_new),
            fmt(a.mean_shift, "+.2f"),
            f"{a.rank_flips}/{a.pairs}",
            fmt(a.mean_abs_diff),
            fmt(a.mapped_mean_abs_diff),
        )
    out.print(t)
    if result.errors:
        out.print(Text(f"not re-graded (judge errors): {result.errors}"))
    if result.flat:
        out.print(Text(f"mapped to the old mean (the new judge gave one score only): {', '.join(result.flat)}"))
    if result.fake:
        out.print("[bold yellow]Judged by the FAKE judge: this measures nothing about a real judge.[/bold yellow]")
    if overlay:
        out.print(Text(f"overlay -> {overlay}: reward score IN -o OUT --rubric {overlay}"))


def register(app: typer.Typer) -> None:
    app.command()(migrate)
