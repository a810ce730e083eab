"""Terminal output of the CLI: the progress bar, invalid-input reports and the end-of-run summary."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

err = Console(stderr=True)
out = Console()


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, what: str) -> Iterator:
    if not enabled:
        yield None
        return
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rollouts]} rollouts"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(what, total=total, rollouts=0)
        counts = {"rollouts": 0}

        def tick(groups: int, rollouts: int) -> None:
            counts["rollouts"] += rollouts
            bar.update(task, advance=groups, rollouts=counts["rollouts"])

        yield tick


def report_invalid(invalid: list) -> None:
    for problem in invalid[:50]:
        err.print(f"[red]invalid input[/red] {escape(str(problem))}", highlight=False)
    if len(invalid) > 50:
        err.print(f"[red]... and {len(invalid) - 50} more invalid lines[/red]")


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"


def print_summary(summary: Any, report: Any, scorer: Any) -> None:
    usage = report.usage
    store = scorer.store
    table = Table(title=f"reward · rubric {scorer.rubric.name} @ {scorer.rubric.version}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("groups", f"{summary.groups} ({report.scored} scored now, {report.skipped} already done)"),
        ("rollouts", f"{summary.rollouts} ({_counts(summary.statuses)})"),
        ("reward mean / std", f"{_fmt(summary.reward_mean)} / {_fmt(summary.reward_std)}"),
        ("penalties", _counts(summary.penalties)),
        ("filtered groups", f"{summary.filtered_groups} of {summary.groups} (reward std below threshold)"),
        *(
            [("final-answer rate", _fmt(summary.final_answer_rate, ".1%"))]
            if scorer.rubric.spec.condenses  # rollouts that are terminal trajectories
            else []
        ),
        ("errors", _counts(summary.errors)),
        (
            "judge noise",
            f"reward SD across samples {_fmt(summary.judge_reward_std)} (mean), group SNR {_fmt(summary.group_snr)}"
            " (median)"
            if summary.reward_stds
            else "one sample per rollout (--samples K measures it)",
        ),
        *(
            [
                (
                    "reliability",
                    f"{_fmt(summary.reliability)} per sample (mean over groups; 0 is pure judge noise); "
                    f"K for 0.8: {summary.k_needed if summary.k_needed is not None else 'none reaches it'}",
                )
            ]
            if summary.reliability is not None
            else []
        ),
        ("invalid input lines", str(len(report.invalid))),
        (
            "judge calls (this run)",
            f"{sum(usage.calls.values())} (condense {usage.calls['condense']}, grade {usage.calls['grade']})"
            + (f", {usage.hedged} of them hedged duplicates" if usage.hedged else ""),
        ),
        ("cache", f"{store.hits} hits, {store.coalesced} coalesced, {store.misses} computed"),
        *(
            [
                (
                    "cache writes failed",
                    f"{store.write_failures} (values used, not kept): {store.write_error or 'recovered'}",
                )
            ]
            if store.write_failures
            else []
        ),
        (
            "tokens",
            f"{usage.prompt_tokens} prompt ({usage.cached_tokens} cached), {usage.completion_tokens} completion",
        ),
        ("cost", f"${usage.cost:.4f}" + ("" if usage.cost_known else " (some calls of unknown price)")),
        *([("budget", budget)] if (budget := _budget_line(scorer)) else []),
        *(
            [
                (
                    "by tier",
                    ", ".join(f"{t} {n} calls ${usage.tier_cost.get(t, 0.0):.4f}" for t, n in usage.tier_calls.items()),
                )
            ]
            if usage.tier_calls
            else []
        ),
    ]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)
    if summary.unmatched_tool_rollouts:
        err.print(
            f"[bold yellow]warning: {summary.unmatched_tool_rollouts} rollout(s) called tools, none of them a terminal "
            "tool (see their `warnings`): if the harness's terminal tool has another name, pass --terminal-tool."
            "[/bold yellow]"
        )
    if summary.fake_groups:
        out.print(
            f"[bold yellow]{summary.fake_groups} group(s) were judged by the FAKE judge: "
            "not real judgements.[/bold yellow]"
        )


def _budget_line(scorer: Any) -> str | None:
    """`--max-cost` / REWARD_MAX_COST: what was spent of it and what remains (None: no budget set)."""
    from reward.judge.budget import budget_status

    status = budget_status(scorer.judge)
    if status is None or status.limit is None:
        return None
    if not status.enforced:
        return f"${status.limit:.4f} not enforced: {status.note}"
    return f"${status.spent:.4f} spent of ${status.limit:.4f}, ${status.remaining or 0.0:.4f} left"


@contextlib.contextmanager
def interrupt_between_steps() -> Iterator[Callable[[], None]]:
    """Ctrl-C taken at the next `step()`: raised inside a C extension (pydantic's serializer) it would come out
    as another error, with a traceback, instead of the one-line interruption `main` prints."""
    pressed: list[int] = []

    def step() -> None:
        if pressed:
            raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started ignoring Ctrl-C (nohup): not here either
        yield step
        return
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(1))
    try:
        yield step
    finally:
        signal.signal(signal.SIGINT, previous)
    step()  # a press after the last step is still an interruption, not a run that ends as if none came
