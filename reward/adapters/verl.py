"""verl: `compute_score` for verl's reward loop (async), `compute_score_sync` for its legacy managers.

Configuration. verl >= 0.9 reads `config.reward.custom_reward_function` (verl/trainer/ppo/reward.py
`get_custom_reward_fn`): `reward.custom_reward_function.path=pkg://reward.adapters.verl
reward.custom_reward_function.name=compute_score reward.reward_manager.name=naive` (or `dapo`). The old
top-level `custom_reward_function.*` / `reward_model.reward_manager` keys are still accepted by 0.9's config
but only the fully-async entry point migrates them (`migrate_legacy_reward_impl`): with `main_ppo` they
are ignored and verl's default scorer raises NotImplementedError for our `data_source` on every sample.
verl < 0.9: `custom_reward_function.path=... custom_reward_function.name=compute_score
reward_model.reward_manager=naive`.

Matched against verl 0.9.1 `verl/experimental/reward_loop/reward_manager/naive.py` and `dapo.py` `run_single`
(`await self.compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)` when it is
a coroutine function, else the same call in a thread; captured in tests/fixtures/conformance_gen/verl09.py)
and at b178a3cd. `solution_str` is the LAST sequence's response alone (`data[-1:]`: an agent loop returning
several outputs per trajectory is scored on its last one), decoded with `skip_special_tokens=True`;
`ground_truth` (the dataset's `reward_model.ground_truth`) carries the reference or a whole label; the task
query comes from the label, else the dataset's `extra_info.query`, else `extra_info.prompt` (a chat list or
text), else the call fails naming `extra_info.query`. verl passes no token count to a reward function, so
the length check estimates it.

The returned dict always has the same keys (verl builds its columns from the first sample) and no NaN
(verl averages them with np.mean): `score`, `s_pos` / `s_pit` / `s_fa` (0.0 where the rollout has no
dimension scores, `judged` = 0), `judged`, `penalized`, `has_final_answer`, `fake_judge` (1.0 when the fake
judge made any judgement behind the sample: verl keeps the whole dict as `reward_extra_info`).

Failure: a judge failure raises JudgeFailed. verl 0.9's agent loop then fails that trajectory (its group is
marked `failure`: trained on without it, or refilled with `trainer.v1.sampler.sync_refill_failed_groups`);
where the trainer computes rewards itself (`RewardLoopManager.compute_rm_score`) the step fails. Do not use
the `rate_limited` or `prime` managers, which turn exceptions into 0.0.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from reward.adapters.common import AdapterInputError, JudgeFailed, build_groups, per_sample, query_from_prompt


def _label(ground_truth: Any, extra_info: dict[str, Any] | None) -> dict[str, Any]:
    """`ground_truth` is a reference (id, plan, trajectory) or a full label {reference, query, group_id}."""
    gt = (
        json.loads(ground_truth)
        if isinstance(ground_truth, str) and ground_truth.strip().startswith("{")
        else ground_truth
    )
    label = dict(gt) if isinstance(gt, dict) and "reference" in gt else {"reference": gt}
    if not label.get("query"):
        info = extra_info or {}
        query = info.get("query") or (query_from_prompt(info["prompt"]) if info.get("prompt") else "")
        if not query:
            raise AdapterInputError(
                "verl: no task query for this sample: put it in the dataset's extra_info.query "
                "(or a 'query' in reward_model.ground_truth); verl passes the response alone"
            )
        label["query"] = query
    return label


def _num(x: float | None) -> float:
    return 0.0 if x is None else float(x)


def _groups(solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None) -> Any:
    sample = {"label": _label(ground_truth, extra_info), "prompt": "", "rollout": {"text": solution_str}}
    return build_groups([sample])


def _answer(response: dict[str, Any], index: list[tuple[int, int]]) -> dict[str, float]:
    rollout = per_sample(response, index)[0]
    if rollout["reward"] is None:
        raise JudgeFailed([rollout["error"]])
    judge = response["groups"][index[0][0]].get("judge") or {}
    return {
        "score": float(rollout["reward"]),
        "s_pos": _num(rollout["s_pos"]),
        "s_pit": _num(rollout["s_pit"]),
        "s_fa": _num(rollout["s_fa"]),
        "judged": float(rollout["status"] == "ok"),
        "penalized": float(rollout["status"] == "penalized"),
        "has_final_answer": float(rollout["has_final_answer"]),
        # verl keeps every key as a reward_extra_info column: the fake judge's mark travels with the sample
        "fake_judge": float(bool(judge.get("fake"))),
    }


async def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    terminal_tool: str | list[str] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """The reward loop's entry point (async: the manager awaits it on its own event loop). `terminal_tool`
    comes from `reward.custom_reward_function.reward_kwargs` when the harness's tool has its own name."""
    from reward.adapters.client import default_client

    groups, index = _groups(solution_str, ground_truth, extra_info)
    return _answer(await default_client().ascore(groups, terminal_tool=terminal_tool), index)


def compute_score_sync(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    terminal_tool: str | list[str] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """For verl's legacy reward managers, which call the function and cannot take a coroutine."""
    from reward.adapters.client import default_client

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "compute_score_sync was called on a running event loop: use compute_score (async) with verl's reward loop"
        )
    groups, index = _groups(solution_str, ground_truth, extra_info)
    return _answer(default_client().score(groups, terminal_tool=terminal_tool), index)
