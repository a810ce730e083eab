"""Commands that analyse scored files: `reward compare`, `reward report`, `reward calibrate`.

Registered on the main app by reward.cli.main. Values read from a scored file are printed as plain text (never
as rich markup) and escaped in HTML: they come from the policy's rollouts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from reward.analysis.scored import ScoredGroup, read_scored_lenient
from reward.cli.console import err, interrupt_between_steps, out
from reward.errors import OutputError, UsageError


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _load(path: Path) -> tuple[list[ScoredGroup], list[str]]:
    groups, problems = read_scored_lenient(path)
    for p in problems[:20]:
        err.print(Text(f"skipped: {p}", style="red"))
    if len(problems) > 20:
        err.print(f"[red]... and {len(problems) - 20} more skipped lines[/red]")
    if not groups:
        raise UsageError(f"{path}: no scored group could be read")
    return groups, problems


def _write(path: Path, text: str) -> None:
    """Write whole or not at all: a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder itself may be what cannot be written
            tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from exc


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # also through a link, or another spelling of the path
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _refuse_overwrite(output: Path, option: str, *inputs: Path) -> None:
    """An output that is one of the inputs would replace the scored data with HTML: refused before reading."""
    for scored in inputs:
        if _same_file(output, scored):
            raise UsageError(f"{option} {output} is a scored input: it would be overwritten, choose another file")


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
        _refuse_overwrite(html, "--html", a, b)
        # Before any work: without the `report` extra (matplotlib) this stops here with the line that installs it.
        from reward.analysis.report import render_comparison
    ga, pa = _load(a)
    gb, pb = _load(b)
    c = compare_runs(ga, gb, top=top)
    if html is not None:
        _write(html, render_comparison(c, ga, gb, f"reward compare: {a.name} (A) vs {b.name} (B)"))
        err.print(f"wrote {html}")
    if as_json:
        print(c.model_dump_json(indent=2))
    else:
        t = Table(title=f"A = {a}   B = {b}")
        for col in ("group", "graded in both", "Kendall τ", "adv. sign flips"):
            t.add_column(col, justify="left" if col == "group" else "right")
        for g in c.groups:
            t.add_row(Text(g.group_id), str(g.n), _fmt(g.kendall_tau, ".3f"), str(g.advantage_sign_flips))
        out.print(t)
        flips = sum(g.advantage_sign_flips for g in c.groups)
        out.print(
            f"mean τ {_fmt(mean_tau(c), '.3f')}, {flips} advantage sign flips; rollouts only in A "
            f"{c.unmatched.only_a}, only in B {c.unmatched.only_b}"
        )
        d = Table(title="dimensions (graded rollouts)")
        for col in ("dimension", "mean A", "mean B", "SD A", "SD B"):
            d.add_column(col, justify="left" if col == "dimension" else "right")
        for name, s in c.dimensions.items():
            d.add_row(Text(name), _fmt(s.mean_a), _fmt(s.mean_b), _fmt(s.sd_a), _fmt(s.sd_b))
        out.print(d)
        m = Table(title="moved most")
        for col in ("group", "rollout", "A", "B", "dimension", "reason A", "reason B"):
            m.add_column(col)
        for x in c.moved:
            m.add_row(
                Text(x.group_id),
                Text(x.id),
                _fmt(x.reward_a),
                _fmt(x.reward_b),
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

    _refuse_overwrite(output, "--output", scored)
    given = load_rubric(rubric) if rubric is not None else None  # typed by the user: a path is fine here
    groups, problems = _load(scored)
    _write(output, render_report(groups, f"reward report: {scored.name}", extremes, given))
    out.print(f"wrote {output} ({len(groups)} groups)")
    if problems:
        raise typer.Exit(1)


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
    groups, problems = _load(scored)
    result, skipped = agreement(groups, label, ranks)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        t = Table(title=f"agreement of rewards with {label} ({order})")
        t.add_column("label pair (better>worse)")
        t.add_column("pairs", justify="right")
        t.add_column("accuracy", justify="right")
        for key, p in result.by_pair.items():
            t.add_row(Text(key), str(p.pairs), _fmt(p.accuracy, ".1%"))
        t.add_row("[bold]all[/bold]", str(result.pairs), _fmt(result.accuracy, ".1%"))
        out.print(t)
        out.print(f"{skipped} rollouts left out (no reward, or a label not in the order)")
        if any(g.judge.fake for g in groups):
            out.print("[bold yellow]Judged by the FAKE judge: this measures nothing about a real judge.[/bold yellow]")
    if problems:
        raise typer.Exit(1)


def rescore(
    scored: Annotated[Path, typer.Argument(help="A scored output (JSONL from `reward score`).")],
    rubric: Annotated[str, typer.Option("--rubric", "-r", help="The edited rubric (name or YAML path).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the rescored groups (JSONL).")],
    samples: Annotated[
        int | None,
        typer.Option("--samples", min=1, max=32, help="Samples a re-run would grade with [rubric judge.samples]."),
    ] = None,
    resample_condense: Annotated[
        bool | None,
        typer.Option("--resample-condense/--no-resample-condense", help="As a re-run would [rubric]."),
    ] = None,
) -> None:
    """Recompute rewards, group statistics and advantages from saved scores with an edited rubric: no judge
    call. Refuses when the rubric's prompts or dimensions differ (its judgements would not be these)."""
    from pydantic import ValidationError

    from reward.analysis.rescore import rescore_groups
    from reward.core.results import GroupResult, read_result_line
    from reward.rubric.load import load_rubric

    r = load_rubric(rubric)
    if not scored.is_file():
        raise UsageError(f"scored file not found: {scored}")
    _refuse_overwrite(output, "--output", scored)

    def groups() -> Iterator[GroupResult]:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield read_result_line(line)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                raise UsageError(f"{scored}:{lineno}: not a scored group: {first['loc']}: {first['msg']}") from None

    lines: list[str] = []
    rollouts = 0
    try:
        with scored.open(encoding="utf-8") as f, interrupt_between_steps() as step:
            # K as `reward score` would choose it (flag, REWARD_JUDGE_SAMPLES, rubric): one precedence, in rescore
            for group in rescore_groups(groups(), r, samples, resample_condense):
                lines.append(group.model_dump_json() + "\n")
                rollouts += len(group.rollouts)
                step()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{scored}: cannot read: {exc}") from exc
    if not lines:
        raise UsageError(f"{scored}: no scored group in the file")
    _write(output, "".join(lines))
    out.print(
        f"{len(lines)} groups, {rollouts} rollouts rescored with {r.name} @ {r.version}; 0 judge calls -> {output}",
        soft_wrap=True,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(rescore)
    app.command()(compare)
    app.command()(report)
    app.command()(calibrate)
