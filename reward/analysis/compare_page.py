"""The self-contained HTML comparison of scored runs (`reward compare --html`): two runs, or a sweep (each run
against the first), with the same sections as the terminal and its plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward.analysis import compare_plots
from reward.analysis.compare import Comparison, mean_tau
from reward.analysis.compare_runs import formula_side
from reward.analysis.compare_sweep import Sweep
from reward.analysis.compare_text import fmt
from reward.analysis.pages import page_env
from reward.analysis.scored import ScoredGroup


def _rewards(groups: list[ScoredGroup]) -> dict[tuple[str, str], float]:
    return {
        (g.group_id, r.id): r.reward for g in groups for r in g.rollouts if r.status == "ok" and r.reward is not None
    }


def _section(c: Comparison, a: list[ScoredGroup], b: list[ScoredGroup]) -> dict[str, Any]:
    """One comparison with its plots: the rewards of the rollouts graded in both, the dimension means of both
    runs (a dimension only one run has included), and per-dimension agreement and part of the change."""
    ra, rb = _rewards(a), _rewards(b)
    keys = [k for k in ra if k in rb]
    labels = (c.runs[0].label, c.runs[1].label)
    names = list(c.dimensions)
    plots = [compare_plots.reward_scatter([ra[k] for k in keys], [rb[k] for k in keys], labels)]
    if names:
        means = {
            labels[0]: [c.dimensions[n].mean_a for n in names],
            labels[1]: [c.dimensions[n].mean_b for n in names],
        }
        plots.append(compare_plots.dimension_shift(names, means))
        plots.append(
            compare_plots.dimension_agreement(
                names,
                [c.dimensions[n].tau for n in names],
                [c.dimensions[n].contribution for n in names],
                [c.dimensions[n].reworded for n in names],
            )
        )
    parts = sorted(c.reward_change.by_dimension.items(), key=lambda kv: -abs(kv[1]))
    return {
        "c": c,
        "mean_tau": mean_tau(c),
        "plots": plots,
        "formula_side": formula_side(c.rubric_changes),
        "parts": parts,
    }


def render_comparison(result: Comparison | Sweep, runs: Sequence[list[ScoredGroup]], title: str) -> str:
    """`runs` are the groups of every run, in the order compared (the first is the baseline)."""
    comparisons = [result] if isinstance(result, Comparison) else result.comparisons
    sections = [_section(c, runs[0], runs[i + 1]) for i, c in enumerate(comparisons)]
    return page_env.get_template("compare.html.j2").render(
        title=title,
        runs=comparisons[0].runs if isinstance(result, Comparison) else result.runs,
        sweep=result if isinstance(result, Sweep) else None,
        sections=sections,
        fake=any(g.judge.fake for groups in runs for g in groups),
        num=fmt,  # signed parts rounded for display, never "-0.000"
    )
