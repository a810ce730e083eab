"""What `--batch` (reward score / plans) says: the provider batch round trips on stderr, then one summary line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from reward.cli.console import err

if TYPE_CHECKING:
    from reward.scoring.batch import BatchReport

BatchOpt = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="Send the judge requests through the provider's batch API (its batch price, up to its 24 h "
        "window per batch; resumable), then write the output from the cache.",
    ),
]
BatchPollOpt = Annotated[
    float, typer.Option("--batch-poll", min=0.05, max=3600.0, help="With --batch: seconds between status checks.")
]


def say(line: str) -> None:
    """A progress line of the batch round trips (warnings loud: their requests go to the synchronous run)."""
    style = "bold yellow" if line.startswith("WARNING") else "dim"
    err.print(f"[{style}]batch: {escape(line)}[/{style}]", highlight=False)


def batch_summary(report: BatchReport) -> str:
    usage = report.usage
    cost = f"${usage.cost:.4f} at the batch price" if usage.cost_known else "cost unknown (no batch price)"
    listed = f" (list ${report.list_cost:.4f})" if report.list_cost is not None and usage.cost_known else ""
    left = f"; {len(report.left)} left to the synchronous run" if report.left else ""
    return (
        f"batch: {report.requests} requests in {len(report.batches)} batch(es), {report.answered} answered, "
        f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens, {cost}{listed}{left}"
    )
