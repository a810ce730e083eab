"""How `reward score --dry-run` prints its estimate: plain text lines (never rich markup: a rubric's name and
its overrides are the user's text), or one JSON object with `--json`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reward.rubric.load import Rubric
    from reward.scoring.dry_run_report import DryRun


def _cost(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:,.4f}"


def dry_run_json(report: DryRun, rubric: Rubric) -> str:
    data = {
        "rubric": rubric.name,
        "rubric_version": rubric.version,
        "overrides": list(rubric.overrides),
        **report.as_json(),
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def dry_run_lines(report: DryRun, rubric: Rubric) -> list[str]:
    edits = f" (overrides: {', '.join(rubric.overrides)})" if rubric.overrides else ""
    k = report.samples
    if k == "auto":
        sampling = f"samples auto: one per graded rollout, more where unsure (up to {report.max_samples} each)"
    else:
        sampling = f"{k} sample{'s' if k != 1 else ''} per graded rollout"
    sampling += ", condensed anew each" if report.resample_condense else ""
    stage = rubric.spec.grading
    if stage.mode == "group":
        sampling += f"; graded together: one call per group and sample (at most {stage.window} rollouts)"
    elif stage.mode == "pairwise":
        sampling += f"; graded in pairs ({stage.schedule} schedule), two calls per pair and sample"
    lines = [
        f"dry run: no judge call was made, nothing was written · rubric {rubric.name} @ {rubric.version}{edits}",
        f"groups    {report.groups} to score, {report.done} already done, {len(report.invalid)} invalid lines",
        f"rollouts  {report.rollouts}: {report.penalized} penalised (no call), {report.judged} to judge "
        f"({report.errors} of them end in an error before any call); {sampling}",
        "",
        f"{'stage':<10}{'model':<34}{'calls':>8}{'cached':>8}{'shared':>8}{'prompt tok':>12}{'compl. tok ≤':>14}"
        f"{'cost':>14}",
    ]
    totals = {"calls": 0, "cached": 0, "shared": 0, "prompt": 0, "completion": 0}
    for name, s in report.stages.items():
        if s.model is None:
            continue  # a rubric without a condensing stage
        lines.append(
            f"{name:<10}{s.model:<34}{s.calls:>8,}{s.cached:>8,}{s.shared:>8,}{s.prompt_tokens:>12,}"
            f"{s.completion_tokens:>14,}{_cost(s.cost):>14}"
        )
        for key, value in (
            ("calls", s.calls),
            ("cached", s.cached),
            ("shared", s.shared),
            ("prompt", s.prompt_tokens),
            ("completion", s.completion_tokens),
        ):
            totals[key] += value
    lines.append(
        f"{'total':<44}{totals['calls']:>8,}{totals['cached']:>8,}{totals['shared']:>8,}{totals['prompt']:>12,}"
        f"{totals['completion']:>14,}{_cost(report.cost):>14}"
    )
    if k == "auto":
        lines.append(
            f"samples auto: {report.calls:,} to {report.calls + report.extra_max:,} calls (the table: one sample each, "
            "as K = 1; the rest as the groups' noise decides); cost above: the least"
        )
    unpriced = sorted({s.model for s in report.stages.values() if s.model and s.price is None and s.calls})
    if unpriced:
        lines.append(f"cost unknown: litellm has no price for {', '.join(unpriced)}")
    lines.append(
        "calls: requests the judge would be sent; cached: answered by the cache; shared: identical to another "
        "request of this run (one call answers both)"
    )
    lines.append("estimate: prompt tokens by tiktoken cl100k_base; completion tokens at max_tokens (an upper bound);")
    lines.append(
        "          a plan not yet condensed at the condensing max_tokens; failures, re-asks, retries not included"
    )
    return lines
