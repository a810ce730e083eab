"""Options shared by several commands, and how the CLI shows what `open_scorer` tells it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import typer

from reward.cli.console import err
from reward.scoring.build import NO_JUDGE
from reward.settings import DEFAULT_CONCURRENCY

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
ToolOpt = Annotated[
    str | None,
    typer.Option(
        "--terminal-tool",
        help="Terminal tool name(s) in messages/text rollouts, comma-separated; only these count "
        "[env REWARD_TERMINAL_TOOL; default: the surveyed names, see README].",
    ),
]
PlansOpt = Annotated[
    list[Path] | None,
    typer.Option("--plans", help='Reference plans ({"id", "plan"} lines) for {"reference": {"id": ...}}.'),
]


SamplesOpt = Annotated[
    str | None,
    typer.Option(
        "--samples",
        help="Grade each rollout K times (1-32), averaged; auto: once, more only where a group's order or "
        "advantage sign is unsure (up to --max-samples) [env REWARD_JUDGE_SAMPLES; rubric judge.samples].",
    ),
]
MaxSamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-samples",
        min=2,
        max=32,
        help="With --samples auto: the most verdicts one rollout gets [env REWARD_JUDGE_MAX_SAMPLES; "
        "rubric judge.max_samples].",
    ),
]


def samples_option(value: str | None) -> int | Literal["auto"] | None:
    """--samples as given: an integer 1-32 or auto; anything else is a usage error."""
    from reward.rubric.finish import parse_samples

    try:
        return parse_samples(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--samples") from None


def positive_cost(value: float | None) -> float | None:
    """--max-cost as REWARD_MAX_COST takes it: a positive, finite amount in USD (0 or inf is nobody's budget)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive, finite cost in USD, got {value!r}", param_hint="--max-cost")
    return value


def notify(kind: str, message: str) -> None:
    """What `open_scorer` says about the judge, on stderr: the fake judge's notice loudest."""
    style = "yellow" if kind == NO_JUDGE else "bold yellow"
    err.print(f"[{style}]{message}[/{style}]")
