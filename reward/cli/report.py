"""`reward report` (registered by reward.cli.main)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from reward.cli.analysis import refuse_overwrite, write_whole
from reward.cli.console import err, out


def report(
    scored: Annotated[Path, typer.Argument(help="Scored run (JSONL from `reward score`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
    extremes: Annotated[
        int | None,
        typer.Option("--extremes", min=0, hidden=True, help="No longer used: the page lists every rollout."),
    ] = None,
    rubric: Annotated[
        str | None,
        typer.Option(
            "--rubric", "-r", help="The run's rubric (name or YAML path) [the configured rubric the file names]."
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report: every group and rollout, searchable offline, with plots."""
    from reward.analysis.report import render_report
    from reward.analysis.report_data import read_report_groups
    from reward.rubric.load import load_rubric

    refuse_overwrite(output, "--output", scored)
    given = load_rubric(rubric) if rubric is not None else None  # typed by the user: a path is fine here
    groups, problems = read_report_groups(scored)
    for p in problems[:20]:
        err.print(Text(f"skipped: {p}", style="red"))
    if len(problems) > 20:
        err.print(Text(f"... and {len(problems) - 20} more skipped lines", style="red"))
    if extremes is not None:
        err.print("--extremes is no longer needed: the report lists, sorts and filters every rollout")
    write_whole(output, render_report(list(groups), f"reward report: {scored.name}", given))
    n = sum(len(g.rollouts) for g in groups)
    out.print(Text(f"wrote {output} ({len(groups)} groups, {n} rollouts)"))
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(report)
