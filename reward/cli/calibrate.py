"""`reward calibrate` (registered by reward.cli.main)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from reward.cli.analysis import fmt, load
from reward.cli.console import out
from reward.errors import UsageError

if TYPE_CHECKING:
    from reward.analysis.calibrate import Calibration


def calibrate(
    scored: Annotated[Path, typer.Argument(help="Scored run of labelled rollouts.")],
    order: Annotated[
        str, typer.Option("--order", help="Labels best first: 'reference>good>vague=missed_error>hallucinated'.")
    ],
    label: Annotated[str, typer.Option("--label", help="Dotted path of the label in each rollout.")] = "meta.kind",
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print {pairs, accuracy, ci95, by_pair, by_dimension, misordered} as JSON."),
    ] = False,
    misordered: Annotated[int, typer.Option("--misordered", min=0, help="Misordered pairs to list.")] = 10,
) -> None:
    """Agreement of rewards with labels: within groups, pairs of differently ranked labels ordered alike."""
    from reward.analysis.calibrate import OrderError, label_problems, parse_order
    from reward.analysis.calibrate import calibrate as agreement
    from reward.analysis.report_data import rubric_named

    try:
        ranks = parse_order(order)
    except OrderError as exc:
        raise UsageError(f"--order: {exc}") from exc
    groups, problems = load(scored)
    mistakes = label_problems(groups, label, ranks)
    if mistakes:  # a typo would otherwise drop rollouts silently and measure nothing
        raise UsageError("; ".join(mistakes))
    result, skipped = agreement(groups, label, ranks, rubric_named(groups[0].rubric))
    if result.pairs == 0:
        raise UsageError(
            f"no group has two rollouts with differently ranked {label} values and a reward: nothing to measure"
        )
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        _print(result, label, order, skipped, misordered)
        if any(g.judge.fake for g in groups):
            out.print("[bold yellow]Judged by the FAKE judge: this measures nothing about a real judge.[/bold yellow]")
    if problems:
        raise typer.Exit(1)


def _print(result: Calibration, label: str, order: str, skipped: int, misordered: int) -> None:
    ci = f" (95% interval {fmt(result.ci95[0], '.1%')}–{fmt(result.ci95[1], '.1%')})" if result.ci95 else ""
    t = Table(title=f"agreement of rewards with {label} ({order})")
    t.add_column("label pair (better>worse)")
    t.add_column("pairs", justify="right")
    t.add_column("accuracy", justify="right")
    for key, p in result.by_pair.items():
        t.add_row(Text(key), str(p.pairs), fmt(p.accuracy, ".1%"))
    t.add_row("[bold]all[/bold]", str(result.pairs), fmt(result.accuracy, ".1%") + ci)
    out.print(t)
    if result.by_dimension:
        d = Table(title="the same pairs, ordered by one dimension alone (in its own direction)")
        d.add_column("dimension")
        d.add_column("accuracy", justify="right")
        for name, p in sorted(result.by_dimension.items(), key=lambda kv: kv[1].accuracy or 0.0):
            d.add_row(Text(name), fmt(p.accuracy, ".1%"))
        out.print(d)
    if result.misordered and misordered:
        m = Table(title=f"misordered pairs ({len(result.misordered)}; first {misordered})")
        for col in ("group", "better (label, reward)", "worse (label, reward)", "decided by"):
            m.add_column(col)
        for x in result.misordered[:misordered]:
            m.add_row(
                Text(x.group_id),
                Text(f"{x.better.id} ({x.better.label}, {x.better.reward:.2f})"),
                Text(f"{x.worse.id} ({x.worse.label}, {x.worse.reward:.2f})"),
                Text(x.decided_by),
            )
        out.print(m)
    out.print(f"{skipped} rollouts left out (no reward, or a label not in the order)")


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
