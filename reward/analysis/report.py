"""The self-contained HTML report of one scored run (the comparison of runs: reward.analysis.compare_page).

Everything a page needs is inside it (CSS inline, plots as SVG data URIs): it opens from disk with no
network. Every value from a scored file (reasons, ids, labels) is HTML-escaped by jinja2's autoescape: a
rollout is the policy's output and may contain markup.
"""

from __future__ import annotations

import re
from statistics import fmean, median, pstdev
from typing import Any

from reward.analysis import plots
from reward.analysis.pages import fmt, page_env
from reward.analysis.scored import ScoredGroup, ScoredRollout
from reward.rubric.load import Rubric, RubricError, load_rubric, rubric_dir

PLOTTED_GROUPS = 30  # per end of the spread plot
MAX_DIMENSIONS = 64


_RUBRIC_NAME = re.compile(r"[\w.-]+")


def rubric_named(name: str) -> Rubric | None:
    """The bundled or configured rubric a scored file names, or None. The name comes from the file, so it is
    never a path: a path there could be a FIFO (the report would hang) or a file the user never chose."""
    if not _RUBRIC_NAME.fullmatch(name) or name.startswith("."):
        return None
    for suffix in (".yaml", ".yml"):
        candidate = rubric_dir() / f"{name}{suffix}"
        if candidate.is_file():
            try:
                return load_rubric(candidate)
            except RubricError:
                return None
    return None


def _rubric_info(rubric: Rubric | None) -> tuple[dict[str, str], tuple[float, float]]:
    """Dimension -> rubric group, and the score scale."""
    if rubric is None:
        return {}, (0, 10)
    spec = rubric.spec
    return {d.name: d.group for d in spec.dimensions}, (spec.scale.min, spec.scale.max)


def _rubric_line(rubric: Rubric | None) -> str:
    if rubric is None:
        return "not known: the run's rubric is not among the bundled or configured ones (give it: --rubric)"
    return f"{rubric.name} @ {rubric.version}"


def _row(g: ScoredGroup, r: ScoredRollout, dim_group: dict[str, str]) -> dict[str, Any]:
    # Weakest first: a low score, or a high one on a pitfall dimension (higher is worse there).
    def badness(name: str, score: float) -> float:
        return score if dim_group.get(name) == "pitfall" else -score

    dims = sorted((r.dimensions or {}).items(), key=lambda kv: -badness(kv[0], kv[1].score))
    return {
        "group_id": g.group_id,
        "id": r.id,
        "reward": r.reward,
        "reward_std": r.reward_std,
        "status": r.status,
        "why": r.penalty or (r.error.category if r.error else ""),
        "message": r.error.message if r.error else "",
        "dimensions": [(n, d.score, d.std, d.reason) for n, d in dims],
        "meta": r.meta,
        "plan": (g.plans or {}).get(r.id),
        "reference_plan": g.reference_plan,
    }


def _noise_line(stds: list[float], snrs: list[float]) -> str:
    if not stds:
        return "one sample per rollout (score with --samples K to measure it)"
    snr = fmt(median(snrs) if snrs else None)
    return f"reward SD across samples {fmt(fmean(stds))} (mean); group SNR {snr} (median of {len(snrs)} groups)"


def run_context(
    groups: list[ScoredGroup], title: str, extremes: int = 5, rubric: Rubric | None = None
) -> dict[str, Any]:
    rollouts = [(g, r) for g in groups for r in g.rollouts]
    n = len(rollouts) or 1
    graded = [r.reward for _, r in rollouts if r.status == "ok" and r.reward is not None]
    penalized = [r.reward for _, r in rollouts if r.status == "penalized" and r.reward is not None]
    rewarded = sorted(((g, r) for g, r in rollouts if r.reward is not None), key=lambda gr: gr[1].reward or 0.0)
    if rubric is None:
        rubric = rubric_named(next((g.rubric for g in groups if g.rubric), ""))
    dim_group, scale = _rubric_info(rubric)
    scores: dict[str, list[float]] = {}
    for _, r in rollouts:
        if r.status == "ok":
            for name, d in (r.dimensions or {}).items():
                if name in scores or len(scores) < MAX_DIMENSIONS:
                    scores.setdefault(name, []).append(d.score)
    rates: dict[str, float] = {}
    for kind in sorted({r.penalty for _, r in rollouts if r.penalty}):
        rates[f"penalty: {kind}"] = sum(r.penalty == kind for _, r in rollouts) / n
    for cat in sorted({r.error.category for _, r in rollouts if r.error}):
        rates[f"error: {cat}"] = sum(bool(r.error and r.error.category == cat) for _, r in rollouts) / n
    rates["filtered groups"] = sum(g.filtered for g in groups) / (len(groups) or 1)
    spread = sorted(groups, key=lambda g: -(g.std or 0.0))
    if len(spread) > 2 * PLOTTED_GROUPS:  # a readable plot: the widest and the narrowest spreads
        spread = spread[:PLOTTED_GROUPS] + spread[-PLOTTED_GROUPS:]
    snrs = [g.noise.snr for g in groups if g.noise is not None and g.noise.snr is not None]
    stds = [r.reward_std for _, r in rollouts if r.reward_std is not None]
    rewards = [r.reward for _, r in rollouts if r.reward is not None]
    return {
        "title": title,
        "fake": any(g.judge.fake for g in groups),
        "rubrics": sorted({f"{g.rubric} @ {g.rubric_version}" for g in groups}),
        "judges": sorted({f"{g.judge.condense_model} / {g.judge.grade_model}" for g in groups}),
        "summary": [
            ("groups", f"{len(groups)} ({sum(g.filtered for g in groups)} filtered: no signal for GRPO)"),
            (
                "rollouts",
                f"{len(rollouts)}: {len(graded)} graded, {len(penalized)} penalised, "
                f"{sum(r.status == 'error' for _, r in rollouts)} judge errors",
            ),
            (
                "reward mean / SD",
                f"{fmt(fmean(rewards) if rewards else None)} / {fmt(pstdev(rewards) if rewards else None)}",
            ),
            ("final-answer rate", fmt(sum(bool(r.has_final_answer) for _, r in rollouts) / n, ".1%")),
            ("judge noise", _noise_line(stds, snrs)),
            ("dimension groups from", _rubric_line(rubric)),
        ],
        "plots": [
            plots.reward_histogram(graded, penalized),
            plots.dimension_boxes(scores, dim_group, scale),
            plots.group_spread(
                [(g.group_id, [r.reward for r in g.rollouts if r.reward is not None], g.filtered) for g in spread]
            ),
            plots.rate_bars(rates),
        ],
        "lowest": [_row(g, r, dim_group) for g, r in rewarded[:extremes]],
        "errors": [_row(g, r, dim_group) for g, r in rollouts if r.status == "error"][:50],
        "n_errors": sum(r.status == "error" for _, r in rollouts),
        "highest": [_row(g, r, dim_group) for g, r in reversed(rewarded[-extremes:])] if extremes else [],
    }


def render_report(groups: list[ScoredGroup], title: str, extremes: int = 5, rubric: Rubric | None = None) -> str:
    return page_env.get_template("report.html.j2").render(**run_context(groups, title, extremes, rubric))
