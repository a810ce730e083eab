"""`reward compare` (registered by reward.cli.main)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from reward.cli.analysis import fmt, load, refuse_overwrite, write_whole
from reward.cli.console import err, out


def compare(
    a: Annotated[Path, typer.Argument(help="Scored run A (JSONL from `reward score`).")],
    b: Annotated[Path, typer.Argument(help="Scored run B of the same rollouts.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Rollouts that moved most to list.")] = 10,
) -> None:
    """Compare two scored runs: per-group Kendall tau and advantage sign flips, dimensions, what moved."""
    from reward.analysis.compare import compare_runs, mean_tau

    if html is not None:
        refuse_overwrite(html, "--html", a, b)
        # Before any work: without the `report` extra (matplotlib) this stops here with the line that installs it.
        from reward.analysis.compare_page import render_comparison
    ga, pa = load(a)
    gb, pb = load(b)
    c = compare_runs(ga, gb, top=top)
    if html is not None:
        write_whole(html, render_comparison(c, ga, gb, f"reward compare: {a.name} (A) vs {b.name} (B)"))
        err.print(f"wrote {html}")
    if as_json:
        print(c.model_dump_json(indent=2))
    else:
        t = Table(title=f"A = {a}   B = {b}")
        for col in ("group", "graded in both", "Kendall τ", "adv. sign flips"):
            t.add_column(col, justify="left" if col == "group" else "right")
        for g in c.groups:
            t.add_row(Text(g.group_id), str(g.n), fmt(g.kendall_tau, ".3f"), str(g.advantage_sign_flips))
        out.print(t)
        flips = sum(g.advantage_sign_flips for g in c.groups)
        out.print(
            f"mean τ {fmt(mean_tau(c), '.3f')}, {flips} advantage sign flips; rollouts only in A "
            f"{c.unmatched.only_a}, only in B {c.unmatched.only_b}"
        )
        d = Table(title="dimensions (graded rollouts)")
        for col in ("dimension", "mean A", "mean B", "SD A", "SD B"):
            d.add_column(col, justify="left" if col == "dimension" else "right")
        for name, s in c.dimensions.items():
            d.add_row(Text(name), fmt(s.mean_a), fmt(s.mean_b), fmt(s.sd_a), fmt(s.sd_b))
        out.print(d)
        m = Table(title="moved most")
        for col in ("group", "rollout", "A", "B", "dimension", "reason A", "reason B"):
            m.add_column(col)
        for x in c.moved:
            m.add_row(
                Text(x.group_id),
                Text(x.id),
                fmt(x.reward_a),
                fmt(x.reward_b),
                Text(x.dimension or ""),
                Text(x.reason_a or ""),
                Text(x.reason_b or ""),
            )
        out.print(m)
        for kind, rows in (("penalty", c.changes.penalty), ("error", c.changes.error), ("filter", c.changes.filter)):
            for ch in rows:
                where = ch.group_id + (f"/{ch.id}" if ch.id else "")
                out.print(Text(f"{kind} changed: {where}: {ch.a or 'none'} -> {ch.b or 'none'}"))
        if any(g.judge.fake for g in [*ga, *gb]):
            out.print("[bold yellow]Judged (in part) by the FAKE judge: not real judgements.[/bold yellow]")
    if pa or pb:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(compare)
