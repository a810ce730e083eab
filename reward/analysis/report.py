"""The self-contained HTML report of one scored run (the comparison of runs: reward.analysis.compare_page).

Everything a page needs is inside it (CSS and script inline, plots as SVG data URIs, the run as one JSON
document): it opens from disk with no network. Every group and every rollout is reachable: the page's script
(report.js) searches, sorts, filters and pages them in the browser. The page's Content-Security-Policy allows
that one script by its SHA-256 and nothing else: no other script runs, nothing loads. Values from a scored file
(reasons, ids, labels) are escaped: jinja2's autoescape in the markup, JSON escapes in the data, and the
script only ever sets them as text. A rollout is the policy's output and may contain markup.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from statistics import fmean, median, pstdev
from typing import Any

from reward.analysis import plots
from reward.analysis.pages import fmt, page_env
from reward.analysis.report_data import (
    ReportGroup,
    RubricView,
    as_report_groups,
    error_groups,
    rubric_named,
    rubric_view,
)
from reward.analysis.report_reliability import RunReliability, run_reliability
from reward.analysis.report_rows import data_json, dimension_order, dimension_table, page_data
from reward.analysis.scored import ScoredGroup
from reward.rubric.load import Rubric

__all__ = ["render_report", "rubric_named", "run_context"]

PLOTTED_GROUPS = 20  # per end of the spread plot (every group is in the table)


@cache
def page_script() -> tuple[str, str]:
    """The page's script and its CSP source (`'sha256-…'`): the hash of exactly the text the page holds."""
    text = (Path(__file__).parent / "html" / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"'sha256-{digest}'"


def _noise_line(stds: list[float], snrs: list[float]) -> str:
    if not stds:
        return "one sample per rollout (score with --samples K to measure it)"
    snr = fmt(median(snrs) if snrs else None)
    return f"reward SD across samples {fmt(fmean(stds))} (mean); group SNR {snr} (median of {len(snrs)} groups)"


def _summary(groups: list[ReportGroup], view: RubricView, rel: RunReliability | None) -> list[tuple[str, str]]:
    rollouts = [r for g in groups for r in g.rollouts]
    n = len(rollouts) or 1
    rewards = [r.reward for r in rollouts if r.reward is not None]
    snrs = [g.noise.snr for g in groups if g.noise is not None and g.noise.snr is not None]
    stds = [r.reward_std for r in rollouts if r.reward_std is not None]
    tokens = [r.num_tokens for r in rollouts if r.num_tokens is not None]
    statuses = {s: sum(r.status == s for r in rollouts) for s in ("ok", "penalized", "error")}
    rows = [
        ("groups", f"{len(groups)} ({sum(g.filtered for g in groups)} filtered: no signal for GRPO)"),
        (
            "rollouts",
            f"{len(rollouts)}: {statuses['ok']} graded, {statuses['penalized']} penalised, "
            f"{statuses['error']} judge errors",
        ),
        (
            "reward mean / SD",
            f"{fmt(fmean(rewards) if rewards else None)} / {fmt(pstdev(rewards) if rewards else None)}",
        ),
        ("final-answer rate", fmt(sum(bool(r.has_final_answer) for r in rollouts) / n, ".1%")),
        ("judge noise", _noise_line(stds, snrs)),
        *([("reward reliability", rel.line)] if rel is not None else []),
        ("dimension groups from", view.line),
    ]
    if tokens:
        rows.append(("policy tokens", f"{sum(tokens)} over {len(tokens)} rollouts (mean {fmean(tokens):.0f})"))
    return rows


def _plots(groups: list[ReportGroup], dims: list[str], view: RubricView) -> list[str]:
    rollouts = [r for g in groups for r in g.rollouts]
    graded = [r.reward for r in rollouts if r.status == "ok" and r.reward is not None]
    penalized = [r.reward for r in rollouts if r.status == "penalized" and r.reward is not None]
    scores = {
        d: [r.dimensions[d].score for r in rollouts if r.status == "ok" and r.dimensions and d in r.dimensions]
        for d in dims
    }
    n = len(rollouts) or 1
    rates: dict[str, float] = {}
    for kind in sorted({r.penalty for r in rollouts if r.penalty}):
        rates[f"penalty: {kind}"] = sum(r.penalty == kind for r in rollouts) / n
    for cat in sorted({r.error.category for r in rollouts if r.error}):
        rates[f"error: {cat}"] = sum(bool(r.error and r.error.category == cat) for r in rollouts) / n
    rates["filtered groups"] = sum(g.filtered for g in groups) / (len(groups) or 1)
    spread = sorted(groups, key=lambda g: -(g.std or 0.0))
    if len(spread) > 2 * PLOTTED_GROUPS:  # a readable plot: the widest and the narrowest spreads
        spread = spread[:PLOTTED_GROUPS] + spread[-PLOTTED_GROUPS:]
    return [
        plots.reward_histogram(graded, penalized),
        plots.dimension_boxes({d: s for d, s in scores.items() if s}, view.dim_group, view.scale, view.failure_mode),
        plots.group_spread(
            [(g.group_id, [(r.id, r.reward) for r in g.rollouts if r.reward is not None], g.filtered) for g in spread]
        ),
        plots.rate_bars(rates),
    ]


def run_context(groups: list[ScoredGroup], title: str, rubric: Rubric | None = None) -> dict[str, Any]:
    report_groups = as_report_groups(groups)
    view = rubric_view(report_groups, rubric)
    dims = dimension_order(report_groups, view)
    reliability = run_reliability(report_groups, view)
    script, script_source = page_script()
    n_rollouts = sum(len(g.rollouts) for g in report_groups)
    return {
        "title": title,
        "fake": any(g.judge.fake for g in report_groups),
        "rubrics": sorted(
            {f"{g.rubric} @ {g.rubric_version}" if g.rubric_version else g.rubric for g in report_groups}
        ),
        "judges": sorted({f"{g.judge.condense_model} / {g.judge.grade_model}" for g in report_groups}),
        "summary": _summary(report_groups, view, reliability),
        "reliability": reliability,
        "notes": view.notes,
        "plots": _plots(report_groups, dims, view),
        "dimensions": dimension_table(report_groups, dims, view),
        "rubric_known": view.known,
        "errors": error_groups(report_groups),
        "n_rollouts": n_rollouts,
        "n_groups": len(report_groups),
        "has_plans": any(g.plans or g.reference_plan for g in report_groups),
        "data": data_json(page_data(report_groups, dims, view)),
        "script": script,
        "csp_script": script_source,
    }


def render_report(groups: list[ScoredGroup], title: str, rubric: Rubric | None = None) -> str:
    return page_env.get_template("report.html.j2").render(**run_context(groups, title, rubric))
