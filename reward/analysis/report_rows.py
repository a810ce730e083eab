"""The report's data: every group and every rollout as the page's script takes them (one JSON document in the
page), and the per-dimension table of how far each dimension is from its best value.

Compact on purpose: a 10,000-rollout run is one page. Keys are short, empty values are left out, numbers are
rounded for display (the page sorts and filters on these); everything else is as the scored file has it.
"""

from __future__ import annotations

import json
import math
from statistics import fmean
from typing import Any

from reward.analysis.report_data import ReportGroup, ReportRollout, RubricView, clean_message, display

MAX_DIMENSIONS = 64


def dimension_order(groups: list[ReportGroup], view: RubricView) -> list[str]:
    """The dimensions in the run: the rubric's order first, then any other in order of appearance."""
    seen: dict[str, None] = {}
    for g in groups:
        for r in g.rollouts:
            for name in r.dimensions or {}:
                if name not in seen and len(seen) < MAX_DIMENSIONS:
                    seen[name] = None
    ordered = [d for d in view.dim_group if d in seen]
    return ordered + [d for d in seen if d not in view.dim_group]


def weakest_first(r: ReportRollout, dims: list[str], view: RubricView) -> list[int]:
    """The rollout's dimensions (as indices into dims), furthest from their best value first."""
    got = r.dimensions or {}
    present = [i for i, d in enumerate(dims) if d in got]
    return sorted(present, key=lambda i: (-view.distance_from_best(dims[i], got[dims[i]].score), i))


def _finite(value: Any) -> Any:
    """`meta` as JSON can have it: a NaN or an infinity (which Python's json reads) as its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _transcript(g: ReportGroup, rid: str) -> dict[str, Any] | None:
    """The rollout as the judge saw it (kept with `score --include-plans`): commands, exit codes, outputs, answer."""
    t = (g.transcripts or {}).get(rid)
    if t is None:
        return None
    return {"steps": [[s.command, s.exit_code, s.output] for s in t.steps], "fa": t.final_answer}


def _rollout(gi: int, g: ReportGroup, r: ReportRollout, dims: list[str], view: RubricView) -> dict[str, Any]:
    row: dict[str, Any] = {"g": gi, "id": r.id, "r": display(r.reward), "st": r.status}
    why = r.penalty or (r.error.category if r.error else "")
    detail = r.penalty_detail or (clean_message(r.error.message, 2000) if r.error else "")
    got = r.dimensions or {}
    optional: dict[str, Any] = {
        "sd": display(r.reward_std),
        "adv": display(r.advantage),
        "why": why,
        "det": detail,
        "tok": r.num_tokens,
        "fa": r.has_final_answer,
        "meta": _finite(r.meta) if r.meta else None,
        "warn": r.warnings,
        "plan": (g.plans or {}).get(r.id),
        "tx": _transcript(g, r.id),
    }
    if got:
        optional["s"] = [display(got[d].score, 3) if d in got else None for d in dims]
        optional["rs"] = [got[d].reason if d in got else None for d in dims]
        optional["w"] = weakest_first(r, dims, view)
        if any(got[d].std is not None for d in dims if d in got):
            optional["ssd"] = [display(got[d].std, 3) if d in got else None for d in dims]
    row.update({k: v for k, v in optional.items() if v is not None and v != ""})
    return row


def _group(g: ReportGroup) -> dict[str, Any]:
    rewards = [r.reward for r in g.rollouts if r.reward is not None]
    advantages = [r.advantage for r in g.rollouts if r.advantage is not None]
    tokens = [r.num_tokens for r in g.rollouts if r.num_tokens is not None]
    row: dict[str, Any] = {
        "id": g.group_id,
        "n": len(g.rollouts),
        "ok": sum(r.status == "ok" for r in g.rollouts),
        "pen": sum(r.status == "penalized" for r in g.rollouts),
        "err": sum(r.status == "error" for r in g.rollouts),
        "mean": display(g.mean),
        "std": display(g.std),
        "filt": g.filtered,
    }
    optional: dict[str, Any] = {
        "fr": g.filter_reason,
        "snr": display(g.noise.snr, 3) if g.noise else None,
        "rel": display(g.noise.reliability, 3) if g.noise else None,  # one sample's (reward.rubric.reliability)
        "relk": display(g.noise.reliability_k, 3) if g.noise else None,  # the K-sample mean's
        "kn": g.noise.k_needed if g.noise else None,  # samples for the target
        "rmin": display(min(rewards)) if rewards else None,
        "rmax": display(max(rewards)) if rewards else None,
        "amin": display(min(advantages)) if advantages else None,
        "amax": display(max(advantages)) if advantages else None,
        "tok": sum(tokens) if tokens else None,
        "jc": g.usage.judge_calls if g.usage else None,
        "jt": g.usage.prompt_tokens + g.usage.completion_tokens if g.usage else None,
        "cost": display(g.usage.cost, 8) if g.usage and g.usage.cost is not None else None,
        "ref": g.reference_plan,
        "fake": g.judge.fake or None,
    }
    row.update({k: v for k, v in optional.items() if v is not None and v != ""})
    return row


def page_data(groups: list[ReportGroup], dims: list[str], view: RubricView) -> dict[str, Any]:
    return {
        "dims": [
            {"n": d, "g": view.dim_group.get(d, ""), "worse": view.higher_is_worse(d)}  # worse: higher is worse
            for d in dims
        ],
        "scale": list(view.scale),
        "groups": [_group(g) for g in groups],
        # whether the group table has the reliability columns (groups scored with K >= 2, files that have it)
        "rel": any(g.noise is not None and g.noise.reliability is not None for g in groups),
        "rollouts": [_rollout(gi, g, r, dims, view) for gi, g in enumerate(groups) for r in g.rollouts],
    }


def data_json(data: dict[str, Any]) -> str:
    """The data as the text of a <script type="application/json">: `<`, `>` and `&` as JSON escapes, so no
    value (a rollout may hold `</script>`) can end the element or start markup; JSON.parse reads them back."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def dimension_table(groups: list[ReportGroup], dims: list[str], view: RubricView) -> list[dict[str, Any]]:
    """Per dimension over graded rollouts: mean score, mean distance from its best value (as a fraction of the
    scale, so dimensions of either direction rank together) and how often it is a rollout's weakest; the
    weakest dimensions first."""
    rows = []
    weakest: dict[str, int] = {}
    graded = [r for g in groups for r in g.rollouts if r.status == "ok" and r.dimensions]
    for r in graded:
        order = weakest_first(r, dims, view)
        if order:
            weakest[dims[order[0]]] = weakest.get(dims[order[0]], 0) + 1
    for d in dims:
        scores = [r.dimensions[d].score for r in graded if r.dimensions and d in r.dimensions]
        if not scores:
            continue
        rows.append(
            {
                "name": d,
                "group": view.dim_group.get(d, ""),
                "direction": "higher is worse" if view.higher_is_worse(d) else "higher is better",
                "mean": fmean(scores),
                "distance": fmean(view.distance_from_best(d, s) for s in scores),
                "weakest": weakest.get(d, 0),
                "n": len(scores),
            }
        )
    return sorted(rows, key=lambda x: -x["distance"])
