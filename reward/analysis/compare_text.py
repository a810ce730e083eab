"""`reward compare` in the terminal: rich renderables built from a comparison.

Every value from a scored file (ids, reasons, paths, model names) is a `Text`, never markup: it comes from
the policy's rollouts. Tables are sized for the console they print on: identifiers fold instead of being cut
with an ellipsis, numbers never wrap, and a reason is a wrapped line under its row's numbers rather than a
column of its own, so 80 columns read as well as 200. Numbers are rounded here only; --json keeps them whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from reward.analysis.compare import Comparison, mean_tau
from reward.analysis.compare_runs import RubricChange, RunInfo, formula_side
from reward.analysis.compare_sweep import Sweep


def fmt(x: float | None, spec: str = ".2f") -> str:
    """A number rounded for display only (--json keeps it whole); never "-0.00" for a part that rounds to 0."""
    if x is None:
        return "-"
    text = format(x, spec)
    return format(0.0, spec) if text.lstrip("+-").strip("0.") == "" else text


def _table(title: str, *columns: str, numeric: tuple[str, ...] = ()) -> Table:
    # No vertical rules: two spaces between columns leave the cells the room a terminal has.
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, title_style="bold")
    for col in columns:
        if col in numeric:
            t.add_column(col, justify="right", no_wrap=True)
        else:
            t.add_column(col, overflow="fold")
    return t


def _fit_first(t: Table, values: Iterable[str], cap: int = 30) -> None:
    """Names and ids up to `cap` characters are never folded: the text columns beside them wrap instead (a
    minimum width would make rich cut those off rather than wrap them)."""
    t.columns[0].no_wrap = max((len(v) for v in values), default=0) <= cap


def _model(run: RunInfo) -> str:
    if run.condense_model and run.condense_model != run.grade_model:
        return f"{run.grade_model} (condense: {run.condense_model})"
    return run.grade_model or "-"


def runs_table(runs: list[RunInfo]) -> Table:
    """One column per run: what each is (its rubric, version, judge and K), where its formula came from."""
    t = Table(title="runs", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, title_style="bold")
    t.add_column("", style="bold", no_wrap=True)
    for r in runs:
        t.add_column(r.label, overflow="fold")
    rows: list[tuple[str, list[str]]] = [
        ("file", [r.path for r in runs]),
        ("rubric", [r.rubric or "-" for r in runs]),
        ("version", [r.rubric_version or "-" for r in runs]),
        ("judge", [_model(r) + (" FAKE" if r.fake else "") for r in runs]),
        ("K (samples)", [fmt(r.samples, "d") for r in runs]),
        ("groups / rollouts", [f"{r.groups} / {r.rollouts}" for r in runs]),
        ("formula side from", [r.rubric_source or f"not known: {r.rubric_note}" for r in runs]),
    ]
    for name, values in rows:
        t.add_row(name, *(Text(v) for v in values))
    return t


def changes_table(changes: list[RubricChange], a: str, b: str) -> RenderableType:
    if not changes:
        return Text(f"what changed {a} -> {b}: nothing the files record (and the rubrics, where known, are equal)")
    t = _table(f"what changed {a} -> {b}", "field", a, b)
    for ch in changes:
        t.add_row(
            Text(ch.what),
            Text(ch.a if ch.a is not None else "(absent)"),
            Text(ch.b if ch.b is not None else "(absent)"),
        )
    return t


def _noise_flag(within: bool | None) -> str:
    return "in noise" if within else ""


def groups_table(c: Comparison, width: int = 200) -> Table:
    """Narrower than 100 columns, the groups' two means give way to the noise column."""
    a, b = c.runs[0].label, c.runs[1].label
    means = width >= 100
    cols = ("group", "graded", "τ", "flips", *((f"mean {a}", f"mean {b}") if means else ()), "noise")
    t = _table("groups, most disagreement first", *cols, numeric=cols[1:-1])
    _fit_first(t, (g.group_id for g in c.groups))
    for g in c.groups:
        noise = "unknown" if g.noise_se is None else f"±{g.noise_se:.2f}" + (" within" if g.within_noise else "")
        row = [str(g.n), fmt(g.kendall_tau, ".3f"), str(g.advantage_sign_flips)]
        t.add_row(Text(g.group_id), *row, *((fmt(g.mean_a), fmt(g.mean_b)) if means else ()), noise)
    return t


def reward_lines(c: Comparison) -> Iterator[RenderableType]:
    """The mean reward change and its parts; for a formula-only edit, what moved instead of the dimensions."""
    rc, (a, b) = c.reward_change, (c.runs[0].label, c.runs[1].label)
    noise = "(noise unknown)" if rc.noise_se is None else f"± {rc.noise_se:.2f} (1 SE)"
    if rc.within_noise:
        noise += ", within the judge's noise"
    yield Text(
        f"mean reward {fmt(rc.mean_a)} ({a}) -> {fmt(rc.mean_b)} ({b}): {fmt(rc.delta, '+.2f')} {noise}, "
        f"over {rc.n} rollouts with a reward in both ({rc.graded} graded in both)"
    )
    if rc.graded and rc.scores_moved == 0:
        formula = formula_side(c.rubric_changes)
        what = ", ".join(formula) if formula else "the formula side (give both rubrics with --rubric to name it)"
        yield Text(f"no dimension score moved in the {rc.graded} rollouts graded in both: what changed is {what}")
    t = _table(
        f"the reward change, by part (sums to {fmt(rc.delta, '+.2f')})",
        "part",
        "Δ mean reward",
        numeric=("Δ mean reward",),
    )
    for name, part in sorted(rc.by_dimension.items(), key=lambda kv: -abs(kv[1])):
        t.add_row(Text(f"dimension {name}"), fmt(part, "+.3f"))
    if rc.formula is not None:
        source = f" (scores through {rc.formula_from}'s formula)" if rc.formula_from else ""
        t.add_row(
            Text(f"formula side: formula, constants, weights, scale, added/removed dimensions{source}"),
            fmt(rc.formula, "+.3f"),
        )
    else:
        t.add_row(
            Text("graded rollouts (no rubric known to split it by dimension: --rubric)"), fmt(rc.graded_total, "+.3f")
        )
    t.add_row(Text("penalty values (penalised in both)"), fmt(rc.penalty_values, "+.3f"))
    t.add_row(Text("graded in one run, penalised in the other"), fmt(rc.status, "+.3f"))
    yield t


def dimensions_table(c: Comparison, width: int = 200) -> Table:
    """Narrower than 100 columns, the two runs' means give way (their change and its part of the reward stay)."""
    a, b = c.runs[0].label, c.runs[1].label
    means = width >= 100
    cols = ("dimension", "τ", "moved", *((f"mean {a}", f"mean {b}") if means else ()), "Δ mean", "Δ reward", "note")
    title = "dimensions: within-group τ (mean over groups), scores that moved, part of the reward change"
    t = _table(title, *cols, numeric=cols[1:-1])
    _fit_first(t, c.dimensions)
    for name, d in c.dimensions.items():
        notes = [
            "reworded" if d.reworded else "",
            f"only in {d.only_in}" if d.only_in else "",
            _noise_flag(d.within_noise) if d.changed else "",
        ]
        changed = f"{d.changed}/{d.matched}" if d.matched else "-"
        row = [fmt(d.tau, ".2f"), changed, *((fmt(d.mean_a), fmt(d.mean_b)) if means else ())]
        row += [fmt(d.mean_change, "+.2f"), fmt(d.contribution, "+.2f"), ", ".join(n for n in notes if n)]
        t.add_row(Text(name), *row)
    return t


def moved_table(c: Comparison) -> Table:
    a, b = c.runs[0].label, c.runs[1].label
    t = _table("rollouts that moved most", "group / rollout", a, b, "Δ", "why", numeric=(a, b, "Δ"))
    for m in c.moved:
        why = Text(m.cause)
        if m.dimension:
            part = "" if m.contribution is None else f", {m.contribution:+.2f} of Δ"
            why = Text(f"{m.dimension} {fmt(m.score_a, '.3g')} -> {fmt(m.score_b, '.3g')}{part}")
            why.append(f"\n{a}: {m.reason_a or ''}\n{b}: {m.reason_b or ''}", style="dim")
        if m.within_noise:
            why.append(f"\nwithin noise (±{m.noise_se:.2f})")
        t.add_row(Text(f"{m.group_id} / {m.id}"), fmt(m.reward_a), fmt(m.reward_b), fmt(m.delta, "+.2f"), why)
    return t


def change_lines(c: Comparison) -> Iterator[Text]:
    kinds = (("penalty", c.changes.penalty), ("error", c.changes.error), ("filter", c.changes.filter))
    for kind, rows in kinds:
        for ch in rows:
            where = ch.group_id + (f" / {ch.id}" if ch.id else "")
            detail = f" ({ch.detail})" if ch.detail else ""
            yield Text(f"{kind} changed: {where}: {ch.a or 'none'} -> {ch.b or 'none'}{detail}")


def comparison(c: Comparison, width: int = 200, with_runs: bool = True) -> Iterator[RenderableType]:
    a, b = c.runs[0].label, c.runs[1].label
    if with_runs:
        yield runs_table(c.runs)
    yield changes_table(c.rubric_changes, a, b)
    yield groups_table(c, width)
    flips = sum(g.advantage_sign_flips for g in c.groups)
    yield Text(
        f"mean τ {fmt(mean_tau(c), '.3f')}, {flips} advantage sign flips; rollouts only in {a} "
        f"{c.unmatched.only_a}, only in {b} {c.unmatched.only_b}; judge noise: {c.noise}"
    )
    yield from reward_lines(c)
    yield dimensions_table(c, width)
    yield moved_table(c)
    yield from change_lines(c)


def sweep(s: Sweep) -> Iterator[RenderableType]:
    """A sweep: the runs, one summary row per run against the first, then per dimension and per part one
    column per run (the full detail of a pair: `reward compare A X`, --json or --html)."""
    yield runs_table(s.runs)
    base = s.baseline
    cols = ("run", "mean τ", "flips", f"mean {base}", "mean", "Δ", "noise", "scores moved")
    t = _table(f"each run against {base} (mean rewards over the rollouts with a reward in both)", *cols)
    for col in t.columns[1:]:
        col.justify, col.no_wrap = "right", True
    for row in s.summary:
        noise = "unknown" if row.noise_se is None else f"±{row.noise_se:.2f}" + (" within" if row.within_noise else "")
        t.add_row(
            row.run, fmt(row.mean_tau, ".3f"), str(row.advantage_sign_flips), fmt(row.mean_a), fmt(row.mean_b),
            fmt(row.reward_delta, "+.2f"), noise, str(row.scores_moved),
        )  # fmt: skip
    yield t
    for row in s.summary:
        changed = [w for w in row.changed if w != "rubric_version"]
        yield Text(f"{row.run} differs from {base} in: {', '.join(changed) or 'nothing recorded'}")
    labels = [c.runs[1].label for c in s.comparisons]
    d = _table(
        "dimensions: within-group τ against the first run (Δ mean reward from it)",
        "dimension",
        *labels,
        numeric=tuple(labels),
    )
    names = list(dict.fromkeys(n for c in s.comparisons for n in c.dimensions))
    for name in names:
        cells = []
        for c in s.comparisons:
            dim = c.dimensions.get(name)
            cells.append(
                "-"
                if dim is None
                else f"{fmt(dim.tau, '.2f')} ({fmt(dim.contribution, '+.2f')})" + ("*" if dim.reworded else "")
            )
        d.add_row(Text(name), *cells)
    yield d
    yield Text("* reworded (description or anchors) against the first run")
    for c in s.comparisons:
        yield changes_table(c.rubric_changes, c.runs[0].label, c.runs[1].label)
        yield from reward_lines(c)


def render(c: Comparison | Sweep, width: int = 200) -> Group:
    """Everything `reward compare` prints for two runs or a sweep, for a console `width` columns wide."""
    return Group(*(comparison(c, width) if isinstance(c, Comparison) else sweep(c)))
