"""The `reward` command line. Errors are translated to messages and exit codes here, and only here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from reward.cli.console import err, out, print_summary, progress_bar, report_invalid
from reward.errors import ConfigError, RewardError, UsageError
from reward.native import DEFAULT_TERMINAL_TOOL
from reward.rubric.load import load_rubric
from reward.scoring.build import cache_dir, judge_configured, judge_settings, router_config, with_fake_judge
from reward.settings import DEFAULT_CONCURRENCY, DEFAULT_RUBRIC, DEFAULTS, setting

app = typer.Typer(
    help="Rubric-based LLM-as-judge reward for terminal execution subagents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: "[env REWARD_...]" hints must show as written
)
rubric_app = typer.Typer(help="Inspect and validate rubrics.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rubric_app, name="rubric")


RubricOpt = Annotated[str, typer.Option("--rubric", "-r", help="Rubric name or YAML path.")]
CacheOpt = Annotated[
    str | None,
    typer.Option("--cache-dir", help="Plan/verdict cache [env REWARD_CACHE_DIR]; 'none' disables."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--judge-model", help="litellm model string for both judge roles [env REWARD_JUDGE_MODEL]."),
]
BaseOpt = Annotated[str | None, typer.Option("--judge-api-base", help="[env REWARD_JUDGE_API_BASE]")]
KeyOpt = Annotated[str | None, typer.Option("--judge-api-key", help="[env REWARD_JUDGE_API_KEY]")]
ConcOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        "-c",
        min=1,
        help=f"Judge calls in flight [env REWARD_JUDGE_CONCURRENCY; {DEFAULT_CONCURRENCY}].",
    ),
]
FakeOpt = Annotated[bool, typer.Option("--fake-judge", help="Use the built-in fake judge (not real scores).")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
ToolOpt = Annotated[str, typer.Option("--terminal-tool", help="Tool name of terminal calls in messages/text rollouts.")]
PlansOpt = Annotated[
    list[Path] | None,
    typer.Option("--plans", help='Reference plans ({"id", "plan"} lines) for {"reference": {"id": ...}}.'),
]


@contextlib.contextmanager
def _scorer(
    rubric_name: str,
    cache: str | None,
    model: str | None,
    api_base: str | None,
    api_key: str | None,
    concurrency: int | None,
    fake: bool,
    samples: int | None = None,
    resample_condense: bool | None = None,
) -> Iterator:
    from reward.cache.redis_store import open_store
    from reward.judge.fake.http import FakeJudge
    from reward.judge.litellm_judge import JudgeClient
    from reward.scoring.scorer import Scorer

    rubric = load_rubric(rubric_name)
    settings = judge_settings(
        rubric,
        model=model,
        api_base=api_base,
        api_key=api_key,
        concurrency=concurrency,
        samples=samples,
        resample_condense=resample_condense,
    )
    fake_judge = None
    explicit = bool(model or setting("judge_model"))
    if fake or not judge_configured(settings, explicit):
        if not fake:
            err.print(
                "[yellow]No judge is configured (set REWARD_JUDGE_MODEL, or the key of "
                f"{settings.grade.model}'s provider).[/yellow]"
            )
        err.print("[bold yellow]Using the built-in FAKE judge: scores are NOT real judgements.[/bold yellow]")
        fake_judge = FakeJudge().start()
        settings = with_fake_judge(settings, fake_judge.api_base)
    store = open_store(cache_dir(cache))
    try:
        router = None if fake_judge is not None else router_config()
        yield Scorer(rubric, JudgeClient(settings, router), store)
    finally:
        store.close()
        if fake_judge is not None:
            fake_judge.stop()


@app.command()
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
    terminal_tool: ToolOpt = DEFAULT_TERMINAL_TOOL,
    progress: ProgressOpt = True,
    samples: Annotated[
        int | None,
        typer.Option("--samples", min=1, max=32, help="Grade each rollout K times, averaged [rubric judge.samples]."),
    ] = None,
    resample_condense: Annotated[
        bool | None,
        typer.Option("--resample-condense/--no-resample-condense", help="With --samples, condense K times too."),
    ] = None,
    keep_plans: Annotated[
        bool,
        typer.Option(
            "--include-plans", "--keep-plans", help="Write the plans the grader saw into the output (for reports)."
        ),
    ] = False,
) -> None:
    """Score saved rollouts: condense, grade, penalise, reward, group statistics."""
    from reward.core.results import GroupResult
    from reward.core.summary import summarize
    from reward.native.prepare import load_plans
    from reward.scoring.runner import count_lines, score_file

    if not input.is_file():
        raise UsageError(f"input file not found: {input}")
    reference_plans = load_plans(plans or [])
    with _scorer(
        rubric, cache, judge_model, judge_api_base, judge_api_key, concurrency, fake_judge, samples, resample_condense
    ) as scorer:
        scorer.keep_plans = keep_plans
        from reward.rubric.formula import penalty_warnings

        for warning in penalty_warnings(scorer.rubric.spec):
            err.print(f"[yellow]warning: {escape(warning)}[/yellow]", highlight=False)
        total = count_lines(input)
        with progress_bar(progress, total, "scoring groups") as tick:
            report = asyncio.run(
                score_file(
                    scorer,
                    input,
                    output,
                    plans=reference_plans,
                    terminal_tool=terminal_tool,
                    retry_errors=retry_errors,
                    groups_in_flight=max(4, scorer.judge.settings.concurrency),
                    progress=tick,
                )
            )
        report_invalid(report.invalid)
        with output.open(encoding="utf-8") as f:
            summary = summarize(GroupResult.model_validate_json(line) for line in f if line.strip())
        print_summary(summary, report, scorer)
    if report.invalid:
        raise typer.Exit(1)


@app.command()
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
    terminal_tool: ToolOpt = DEFAULT_TERMINAL_TOOL,
    progress: ProgressOpt = True,
) -> None:
    """Precompute reference Execution Plans offline."""
    from reward.scoring.runner import count_lines, plan_file

    if not input.is_file():
        raise UsageError(f"input file not found: {input}")
    with _scorer(rubric, cache, judge_model, judge_api_base, judge_api_key, concurrency, fake_judge) as scorer:
        if not scorer.rubric.spec.condenses:
            raise UsageError(f"rubric {scorer.rubric.name} has no condensing stage: there are no plans to precompute")
        with progress_bar(progress, count_lines(input), "condensing references") as tick:
            report, failures = asyncio.run(plan_file(scorer, input, output, terminal_tool=terminal_tool, progress=tick))
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="REWARD_HOST", help="Interface to listen on.")] = DEFAULTS.host,
    port: Annotated[int, typer.Option(envvar="REWARD_PORT", help="Port.")] = DEFAULTS.port,
    workers: Annotated[int, typer.Option(envvar="REWARD_WORKERS", min=1, help="Worker processes.")] = DEFAULTS.workers,
    rubric_dir: Annotated[
        Path | None, typer.Option("--rubric-dir", help="Rubrics to load (all *.yaml) [env REWARD_RUBRIC_DIR].")
    ] = None,
    rubric: Annotated[str | None, typer.Option("--rubric", help="Default rubric [env REWARD_RUBRIC].")] = None,
    cache: CacheOpt = None,
    judge_model: ModelOpt = None,
    judge_api_base: BaseOpt = None,
    judge_api_key: KeyOpt = None,
    concurrency: ConcOpt = None,
    plans: PlansOpt = None,
    terminal_tool: Annotated[
        str | None, typer.Option("--terminal-tool", help="[env REWARD_TERMINAL_TOOL; run_in_terminal]")
    ] = None,
    judge_error_fallback: Annotated[
        float | None,
        typer.Option(
            "--judge-error-fallback",
            help="Reward the OpenRLHF/slime endpoints return, flagged, when the judge fails "
            "[env REWARD_JUDGE_ERROR_FALLBACK]; default: answer 503.",
        ),
    ] = None,
    fake_judge: FakeOpt = False,
) -> None:
    """Run the HTTP service (POST /score, trainer endpoints, /healthz, /readyz, /rubrics, /docs)."""
    from reward.service.reward_service import RewardService, ServiceSettings
    from reward.service.workers import serve as run_workers

    # Flags become the REWARD_* environment, which every worker process reads at start-up.
    overrides = {
        "REWARD_RUBRIC_DIR": rubric_dir,
        "REWARD_RUBRIC": rubric,
        "REWARD_CACHE_DIR": cache,
        "REWARD_JUDGE_MODEL": judge_model,
        "REWARD_JUDGE_API_BASE": judge_api_base,
        "REWARD_JUDGE_API_KEY": judge_api_key,
        "REWARD_JUDGE_CONCURRENCY": concurrency,
        "REWARD_PLANS": os.pathsep.join(str(p) for p in plans) if plans else None,
        "REWARD_TERMINAL_TOOL": terminal_tool,
        "REWARD_JUDGE_ERROR_FALLBACK": judge_error_fallback,
    }
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    fake = None
    if fake_judge:
        from reward.judge.fake.http import FakeJudge

        fake = FakeJudge().start()
        os.environ.update(
            REWARD_JUDGE_MODEL="openai/reward-fake-judge",
            REWARD_JUDGE_API_BASE=fake.api_base,
            REWARD_JUDGE_API_KEY="fake-judge-key",
        )
        err.print("[bold yellow]Serving with the FAKE judge: scores are NOT real judgements.[/bold yellow]")
    # Fail here, with a clear message, rather than in every worker.
    settings = ServiceSettings.from_env()
    service = RewardService(settings)
    default_judge = service.default.judge.settings
    service.close()
    if not fake_judge and not judge_configured(default_judge, bool(setting("judge_model"))):
        raise ConfigError(
            f"no judge is configured for {default_judge.grade.model}: set REWARD_JUDGE_MODEL (and its key or "
            "REWARD_JUDGE_API_BASE), or pass --fake-judge for a dry run"
        )
    err.print(
        f"reward {settings.default_rubric} on http://{host}:{port} ({workers} worker(s)), "
        f"judge {default_judge.grade.model}, cache {settings.cache_dir or 'disabled'}"
    )
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the process with the
    # signal; a handler of our own turns that into a normal exit 0 once in-flight requests are done.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        run_workers(
            "reward.service.app:create_app",
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=30,
        )
    finally:
        if fake is not None:
            fake.stop()


@app.command("env")
def env_cmd(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's table of variables.")] = False,
) -> None:
    """The REWARD_* environment variables: type, default, meaning and the value set here (secrets hidden);
    a value that cannot be used is an error (exit status 2)."""
    from rich.table import Table

    from reward import settings as s

    if markdown:
        typer.echo(s.markdown_table())
        return
    table = Table("variable", "type", "default", "set here", "meaning", box=None, pad_edge=False)
    for field in s.Settings.model_fields:
        description = s.Settings.model_fields[field].description or ""
        table.add_row(
            s.env_name(field),
            s.type_name(field),
            escape(s.default_text(field)),
            escape(s.shown_value(field)),
            escape(description),
        )
    table.columns[0].no_wrap = True
    out.print(table)
    s.Settings.from_env()  # every value checked, as the service checks it at start-up


@app.command("fake-judge")
def fake_judge_cmd(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8011,
    host: Annotated[str, typer.Option(help="Interface (keep it on loopback).")] = "127.0.0.1",
    latency: Annotated[float, typer.Option(min=0, help="Seconds to wait before each reply.")] = 0.0,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction of prompts whose first attempt gets an injected fault.")
    ] = 0.0,
) -> None:
    """Run the fake OpenAI-compatible judge (dry runs, tests): its scores are not real judgements."""
    from reward.judge.fake.http import serve

    err.print(f"fake judge on http://{host}:{port}/v1 (model openai/anything); stats at /_stats")
    serve(host, port, latency, fault_rate)


from reward.cli.analysis import register  # noqa: E402  (compare, report, calibrate, rescore)
from reward.cli.rubric import register as register_rubric  # noqa: E402  (rubric check/schema, prompt)

register(app)
register_rubric(app, rubric_app)


def main() -> None:
    try:
        app()
    except RewardError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: finished groups are saved; rerun to resume[/yellow]")
        sys.exit(130)
