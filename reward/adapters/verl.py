"""verl: `custom_reward_function.path=pkg://reward.adapters.verl custom_reward_function.name=compute_score`.

Matched against verl `verl/trainer/ppo/reward.py` `get_custom_reward_fn` and the reward loop managers
(`verl/experimental/reward_loop/reward_manager/naive.py` `run_single`: `await self.compute_score(
data_source=..., solution_str=..., ground_truth=..., extra_info=...)` when it is a coroutine function; the
legacy `prime` manager passes the same four positionally). `solution_str` is the decoded response;
`ground_truth` (the dataset's `reward_model.ground_truth`) carries the reference; `extra_info` may carry
`query`. The returned dict always has the same keys (verl builds its columns from the first sample):
`score` plus the group means and flags, NaN where a value does not exist (a penalised rollout has no
dimension scores).

Failure: a judge failure raises JudgeFailed; verl's naive/dapo reward loop then fails the step. Do not use
the `rate_limited` or `prime` managers, which turn exceptions into 0.0.
"""

from __future__ import annotations

import json
import math
from typing import Any

from reward.adapters.common import JudgeFailed, build_groups, per_sample


def _label(ground_truth: Any, extra_info: dict[str, Any] | None) -> dict[str, Any]:
    """`ground_truth` is a reference (id, plan, trajectory) or a full label {reference, query, group_id}."""
    gt = (
        json.loads(ground_truth)
        if isinstance(ground_truth, str) and ground_truth.strip().startswith("{")
        else ground_truth
    )
    label = dict(gt) if isinstance(gt, dict) and "reference" in gt else {"reference": gt}
    query = (extra_info or {}).get("query")
    if query and not label.get("query"):
        label["query"] = query
    return label


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


async def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, float]:
    from reward.client import default_client

    prompt = (extra_info or {}).get("prompt", "")
    groups, index = build_groups(
        [{"label": _label(ground_truth, extra_info), "prompt": prompt, "rollout": {"text": solution_str}}]
    )
    rollout = per_sample(await default_client().ascore(groups), index)[0]
    if rollout["reward"] is None:
        raise JudgeFailed([rollout["error"]])
    return {
        "score": float(rollout["reward"]),
        "s_pos": _num(rollout["s_pos"]),
        "s_pit": _num(rollout["s_pit"]),
        "s_fa": _num(rollout["s_fa"]),
        "penalized": float(rollout["status"] == "penalized"),
        "has_final_answer": float(rollout["has_final_answer"]),
    }
