"""`reward compare` (registered by reward.cli.main)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from reward.cli.analysis import load, refuse_overwrite, write_whole
from reward.cli.console import err, out


def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Scored runs (JSONL from `reward score`) of the same rollouts: A B [C ...]; each against A."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Rollouts that moved most to list.")] = 10,
    rubric: Annotated[
        list[str] | None,
        typer.Option(
            "--rubric",
            "-r",
            help="A run's rubric (name or YAML path), for its formula side; used for the runs whose recorded "
            "rubric version it has. Repeat for several. [the configured rubric each file names, same version]",
        ),
    ] = None,
) -> None:
    """Compare scored runs: what each is, what changed, per-group and per-dimension Kendall tau, why the
    mean reward moved (by dimension, formula side, penalties), what moved most and whether it is judge noise."""
    from reward.analysis.compare_sweep import compare_all, sweep
    from reward.errors import UsageError
    from reward.rubric.load import load_rubric

    if len(runs) < 2:
        raise UsageError("compare needs at least two scored runs: reward compare A.jsonl B.jsonl [C.jsonl ...]")
    if html is not None:
        refuse_overwrite(html, "--html", *runs)
        # Before any work: without the `report` extra (matplotlib) this stops here with the line that installs it.
        from reward.analysis.compare_page import render_comparison
    given = [load_rubric(r) for r in rubric or []]  # typed by the user: a path is fine here
    loaded = []
    problems = False
    for path in runs:
        groups, skipped = load(path)
        loaded.append((path, groups))
        problems = problems or bool(skipped)
    infos, comparisons, warnings = compare_all(loaded, given, top=top)
    for w in warnings:
        err.print(Text(f"warning: {w}", style="yellow"))
    result = comparisons[0] if len(comparisons) == 1 else sweep(infos, comparisons)
    if html is not None:
        title = "reward compare: " + " vs ".join(f"{p.name} ({i.label})" for p, i in zip(runs, infos, strict=True))
        write_whole(html, render_comparison(result, [g for _, g in loaded], title))
        err.print(f"wrote {html}")
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        from reward.analysis.compare_text import render

        # Never cut: a line too wide for the terminal (it should not happen) wraps there instead of losing text.
        out.print(render(result, out.width), crop=False)
        if any(i.fake for i in infos):
            out.print("[bold yellow]Judged (in part) by the FAKE judge: not real judgements.[/bold yellow]")
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(compare)
