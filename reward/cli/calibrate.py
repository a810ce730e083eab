"""`reward calibrate` (registered by reward.cli.main)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from reward.cli.analysis import fmt, load
from reward.cli.console import out
from reward.errors import UsageError


def calibrate(
    scored: Annotated[Path, typer.Argument(help="Scored run of labelled rollouts.")],
    order: Annotated[
        str, typer.Option("--order", help="Labels best first: 'reference>good>vague=missed_error>hallucinated'.")
    ],
    label: Annotated[str, typer.Option("--label", help="Dotted path of the label in each rollout.")] = "meta.kind",
    as_json: Annotated[bool, typer.Option("--json", help="Print {pairs, accuracy, by_pair} as JSON.")] = False,
) -> None:
    """Agreement of rewards with labels: within groups, pairs of differently ranked labels ordered alike."""
    from reward.analysis.calibrate import OrderError, parse_order
    from reward.analysis.calibrate import calibrate as agreement

    try:
        ranks = parse_order(order)
    except OrderError as exc:
        raise UsageError(f"--order: {exc}") from exc
    groups, problems = load(scored)
    result, skipped = agreement(groups, label, ranks)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        t = Table(title=f"agreement of rewards with {label} ({order})")
        t.add_column("label pair (better>worse)")
        t.add_column("pairs", justify="right")
        t.add_column("accuracy", justify="right")
        for key, p in result.by_pair.items():
            t.add_row(Text(key), str(p.pairs), fmt(p.accuracy, ".1%"))
        t.add_row("[bold]all[/bold]", str(result.pairs), fmt(result.accuracy, ".1%"))
        out.print(t)
        out.print(f"{skipped} rollouts left out (no reward, or a label not in the order)")
        if any(g.judge.fake for g in groups):
            out.print("[bold yellow]Judged by the FAKE judge: this measures nothing about a real judge.[/bold yellow]")
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
