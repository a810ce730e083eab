"""`reward report` (registered by reward.cli.main)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reward.cli.analysis import load, refuse_overwrite, write_whole
from reward.cli.console import out


def report(
    scored: Annotated[Path, typer.Argument(help="Scored run (JSONL from `reward score`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
    extremes: Annotated[int, typer.Option("--extremes", min=0, help="Lowest and highest rollouts to list.")] = 5,
    rubric: Annotated[
        str | None,
        typer.Option(
            "--rubric", "-r", help="The run's rubric (name or YAML path) [the bundled rubric the file names]."
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report with plots (opens with no network)."""
    from reward.analysis.report import render_report
    from reward.rubric.load import load_rubric

    refuse_overwrite(output, "--output", scored)
    given = load_rubric(rubric) if rubric is not None else None  # typed by the user: a path is fine here
    groups, problems = load(scored)
    write_whole(output, render_report(groups, f"reward report: {scored.name}", extremes, given))
    out.print(f"wrote {output} ({len(groups)} groups)")
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(report)
