"""`reward score` and `reward plans`: offline scoring of saved rollouts, and reference plans precomputed.

The judge (and litellm with it) is built only when a command runs, never to show its help.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from reward.cli.batch_view import BatchOpt, BatchPollOpt
from reward.cli.console import err, out, print_summary, progress_bar, report_invalid
from reward.cli.options import (
    BaseOpt,
    CacheOpt,
    ConcOpt,
    FakeOpt,
    KeyOpt,
    MaxSamplesOpt,
    ModelOpt,
    PlansOpt,
    ProgressOpt,
    RubricOpt,
    SamplesOpt,
    ToolOpt,
    notify,
    positive_cost,
    samples_option,
)
from reward.cli.overrides import SetOpt
from reward.errors import UsageError
from reward.scoring.build import open_scorer, run_scoring
from reward.settings import DEFAULT_RUBRIC, parse_tools, setting

if TYPE_CHECKING:
    from reward.core.summary import Summary
    from reward.core.trajectory import PlanReference
    from reward.scoring.runner import RunReport
    from reward.scoring.scorer import Scorer


def terminal_tools(flag: str | None) -> tuple[str, ...]:
    """--terminal-tool, else REWARD_TERMINAL_TOOL, else the surveyed names."""
    if flag is None:
        return tuple(setting("terminal_tool"))  # a bad variable is a ConfigError naming it
    try:
        return parse_tools(flag)
    except ValueError as exc:
        raise UsageError(f"--terminal-tool: {exc}") from None


def score(
    input: Annotated[Path, typer.Argument(help="Rollout groups, one JSON object per line.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scored groups (JSONL); resumed if it exists.")],
    rubric: RubricOpt = DEFAULT_RUBRIC,
    cache: CacheOpt = None,
    judge_model: ModelOpt = None,
    judge_api_base: BaseOpt = None,
    judge_api_key: KeyOpt = None,
    concurrency: ConcOpt = None,
    fake_judge: FakeOpt = False,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors/--keep-errors", help="Re-score groups saved with judge errors.")
    ] = True,
    plans: PlansOpt = None,
    terminal_tool: ToolOpt = None,
    progress: ProgressOpt = True,
    samples: SamplesOpt = None,
    max_samples: MaxSamplesOpt = None,
    resample_condense: Annotated[
        bool | None,
        typer.Option("--resample-condense/--no-resample-condense", help="With --samples, condense K times too."),
    ] = None,
    max_error_rate: Annotated[
        float,
        typer.Option(
            "--max-error-rate",
            min=0.0,
            max=1.0,
            help="Fraction of rollouts needing a judgement that may end in a judge error before the exit status "
            "is 4 (some could not be judged).",
        ),
    ] = 0.0,
    keep_plans: Annotated[
        bool,
        typer.Option(
            "--include-plans", "--keep-plans", help="Write the plans the grader saw into the output (for reports)."
        ),
    ] = False,
    overrides: SetOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Make no judge call and write nothing: judge calls by stage that the run would make and those "
            "the cache answers, estimated tokens and cost.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --dry-run: print it as JSON.")] = False,
    batch: BatchOpt = False,
    batch_poll: BatchPollOpt = 30.0,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            callback=positive_cost,
            help="Judge spend (USD) this run may make; calls past it are budget_exhausted errors, resumable "
            "[env REWARD_MAX_COST].",
        ),
    ] = None,
) -> None:
    """Score saved rollouts: condense, grade, penalise, reward, group statistics."""
    from reward.core.results import read_result_line
    from reward.core.summary import summarize
    from reward.native.prepare import load_plans
    from reward.rubric.overrides import applying, recorded
    from reward.scoring.output_file import count_lines
    from reward.scoring.runner import score_file

    if not input.is_file():
        raise UsageError(f"input file not found: {input}")
    if as_json and not dry_run:
        raise UsageError("--json goes with --dry-run (a run's output is the scored file)")
    tools = terminal_tools(terminal_tool)
    reference_plans = load_plans(plans or [])
    with (
        applying(overrides),
        open_scorer(
            rubric,
            cache=cache,
            model=judge_model,
            api_base=judge_api_base,
            api_key=judge_api_key,
            concurrency=concurrency,
            fake=fake_judge,
            samples=samples_option(samples),
            resample_condense=resample_condense,
            max_samples=max_samples,
            notify=notify,
        ) as scorer,
    ):
        scorer.keep_plans = keep_plans
        scorer.basis = recorded(scorer.basis, scorer.rubric)  # the output says which overrides it was scored with
        if max_cost is not None:
            from reward.judge.budget import set_max_cost

            set_max_cost(scorer.judge, max_cost)
        if dry_run:
            raise typer.Exit(preview(scorer, input, output, reference_plans, tools, retry_errors, as_json))
        from reward.rubric.formula import rubric_warnings

        for warning in rubric_warnings(scorer.rubric.spec):
            err.print(f"[yellow]warning: {escape(warning)}[/yellow]", highlight=False)
        total = count_lines(input)

        async def work() -> RunReport:
            if batch:  # the batch API answers into the cache; the run below then reads it (one loop: one store)
                from reward.cli.batch_view import batch_summary, say
                from reward.scoring.batch import prefill

                done = await prefill(
                    scorer, input, output, plans=reference_plans, terminal_tool=tools,
                    retry_errors=retry_errors, progress=say, poll_s=batch_poll,
                )  # fmt: skip
                err.print(escape(batch_summary(done)), highlight=False)
            with progress_bar(progress, total, "scoring groups") as tick:
                return await score_file(
                    scorer, input, output, plans=reference_plans, terminal_tool=tools, retry_errors=retry_errors,
                    groups_in_flight=max(4, scorer.judge.settings.concurrency), progress=tick,
                )  # fmt: skip

        report = run_scoring(scorer, work())
        report_invalid(report.invalid)
        with output.open(encoding="utf-8") as f:
            summary = summarize(read_result_line(line) for line in f if line.strip())
        print_summary(summary, report, scorer)
    raise typer.Exit(exit_status(summary, len(report.invalid), max_error_rate))


def preview(
    scorer: Scorer,
    input: Path,
    output: Path,
    reference_plans: dict[str, PlanReference],
    tools: tuple[str, ...],
    retry_errors: bool,
    as_json: bool,
) -> int:
    """`score --dry-run`: print what the run would cost; 1 when input lines are invalid (as the run), else 0."""
    from reward.cli.dry_run_view import dry_run_json, dry_run_lines
    from reward.scoring.dry_run import dry_run

    report = run_scoring(
        scorer, dry_run(scorer, input, output, plans=reference_plans, terminal_tool=tools, retry_errors=retry_errors)
    )
    report_invalid(report.invalid)
    text = dry_run_json(report, scorer.rubric) if as_json else "\n".join(dry_run_lines(report, scorer.rubric))
    sys.stdout.write(text + "\n")
    return 1 if report.invalid else 0


def plans(
    input: Annotated[Path, typer.Argument(help='Reference trajectories: {"id", "query", "steps", "final_answer"}.')],
    output: Annotated[Path, typer.Option("--output", "-o", help='Plans as {"id", "plan"} lines; resumed.')],
    rubric: RubricOpt = DEFAULT_RUBRIC,
    cache: CacheOpt = None,
    judge_model: ModelOpt = None,
    judge_api_base: BaseOpt = None,
    judge_api_key: KeyOpt = None,
    concurrency: ConcOpt = None,
    fake_judge: FakeOpt = False,
    terminal_tool: ToolOpt = None,
    progress: ProgressOpt = True,
    batch: BatchOpt = False,
    batch_poll: BatchPollOpt = 30.0,
) -> None:
    """Precompute reference Execution Plans offline."""
    from reward.scoring.output_file import count_lines
    from reward.scoring.runner import plan_file

    if not input.is_file():
        raise UsageError(f"input file not found: {input}")
    tools = terminal_tools(terminal_tool)
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
        if not scorer.rubric.spec.condenses:
            raise UsageError(f"rubric {scorer.rubric.name} has no condensing stage: there are no plans to precompute")

        async def work() -> tuple[RunReport, list[str]]:
            if batch:
                from reward.cli.batch_view import batch_summary, say
                from reward.scoring.batch import prefill_plans

                done = await prefill_plans(scorer, input, output, terminal_tool=tools, progress=say, poll_s=batch_poll)
                err.print(escape(batch_summary(done)), highlight=False)
            with progress_bar(progress, count_lines(input), "condensing references") as tick:
                return await plan_file(scorer, input, output, terminal_tool=tools, progress=tick)

        report, failures = run_scoring(scorer, work())
        report_invalid(report.invalid)
        for failure in failures:
            err.print(f"[red]judge error[/red] {escape(failure)}", highlight=False)
        calls = sum(report.usage.calls.values())
        out.print(
            f"{report.scored} plans written, {report.skipped} already done, {len(failures)} failed, "
            f"{len(report.invalid)} invalid lines; {calls} judge calls -> {output}"
        )
    if report.invalid or failures:
        raise typer.Exit(1)


NONE_JUDGED, SOME_NOT_JUDGED = 5, 4


def exit_status(summary: Summary, invalid_lines: int, max_error_rate: float) -> int:
    """0 done; 5 no rollout that needed the judge got a judgement (an outage, bad credentials: nothing was
    measured); 1 some input lines were invalid; 4 more judge errors than --max-error-rate allows."""
    errors, needed = summary.statuses["error"], summary.needed_judge
    categories = ", ".join(f"{c} {n}" for c, n in summary.errors.most_common())
    first = next(iter(summary.first_error.values()), "")
    if errors and errors == needed:
        err.print(f"[red]error:[/red] no rollout could be judged ({escape(categories)}): {escape(first)}")
        return NONE_JUDGED
    if invalid_lines:
        return 1
    if errors and errors / needed > max_error_rate:
        err.print(
            f"[red]error:[/red] {errors} of {needed} rollouts could not be judged ({escape(categories)}); "
            "rerun to retry them, or allow some with --max-error-rate"
        )
        return SOME_NOT_JUDGED
    return 0


def register(app: typer.Typer) -> None:
    app.command()(score)
    app.command()(plans)
