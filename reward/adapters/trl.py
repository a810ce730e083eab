"""TRL GRPOTrainer: `GRPOTrainer(reward_funcs=[reward.adapters.trl.execution_subagent_reward], ...)`.

Checked against what TRL 1.16's own `GRPOTrainer._generate` / `_calculate_rewards` pass (keyword call
`reward_func(prompts=..., completions=..., completion_ids=..., **dataset_columns, trainer_state=...,
log_extra=..., log_metric=...)`; `async def` functions run on the trainer's event loop with the whole local
batch; `None` becomes NaN and is masked). Conversational completions are message lists (assistant
`tool_calls`, `tool` messages) and become `messages` rollouts; plain completions become `text` rollouts.
The dataset needs a `reference` column (a reference id, `{"plan": ...}` or a trajectory) and may have a
`query` column; completions of one prompt form one group, so group statistics see the group.

Terminal tool: the service recognises the common names (`bash` of TRL's `HarborBashEnv` included); a
harness whose tool has another name declares it with `reward_function(terminal_tool="my_shell")`, a
function TRL calls exactly like this one, sent with each request.

Failure: a rollout the judge could not score gets `None` (TRL masks it); nothing is ever 0.0 by default.
Per-sample `s_pos`, `s_pit`, `s_fa`, `status` and `fake_judge` go to `log_extra`, the step metrics to `log_metric`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from reward.adapters.common import build_groups, fake_marks, per_sample

RewardFunc = Callable[..., Coroutine[Any, Any, list[float | None]]]


def _rollout(completion: Any, ids: Any) -> dict[str, Any]:
    # TRL's completion_ids are the exact completion tokens; in its tool loop they include the tool results'
    # tokens (its tool_mask, which marks them, is not passed to reward functions)
    rollout: dict[str, Any] = {"messages": completion} if isinstance(completion, list) else {"text": str(completion)}
    if ids is not None:
        rollout["num_tokens"] = len(ids)
    return rollout


def _label(i: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    references = kwargs.get("reference")
    if references is None:
        raise ValueError("the dataset needs a 'reference' column (reference id, {'plan': ...} or a trajectory)")
    ref = references[i]
    if isinstance(ref, str) and ref.strip().startswith("{"):
        ref = json.loads(ref)
    label: dict[str, Any] = {"reference": ref}
    if kwargs.get("query") is not None:
        label["query"] = kwargs["query"][i]
    return label


def reward_function(
    terminal_tool: str | Sequence[str] | None = None, name: str = "execution_subagent_reward"
) -> RewardFunc:
    """`execution_subagent_reward` for a harness whose terminal tool has its own name(s); `name` is the
    column TRL logs the reward under (it reads the function's `__name__`)."""
    if terminal_tool is not None:
        from reward.settings import parse_tools

        terminal_tool = parse_tools(terminal_tool)  # a bad name fails here, not at the first step

    async def reward(
        prompts: list[Any],
        completions: list[Any],
        completion_ids: list[Any] | None = None,
        log_extra: Any = None,
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """TRL's reward function: one reward per completion, None where the judge could not score it (TRL
        masks it); completions of one prompt are scored as one group."""
        return await _score(prompts, completions, completion_ids, log_extra, log_metric, terminal_tool, kwargs)

    reward.__name__ = reward.__qualname__ = name
    reward.__module__ = __name__
    return reward


# The function to pass as `reward_funcs=[...]` when the harness's terminal tool is among the recognised ones.
execution_subagent_reward = reward_function()


async def _score(
    prompts: list[Any],
    completions: list[Any],
    completion_ids: list[Any] | None,
    log_extra: Any,
    log_metric: Any,
    terminal_tool: str | Sequence[str] | None,
    kwargs: dict[str, Any],
) -> list[float | None]:
    from reward.adapters.client import default_client

    ids = completion_ids if completion_ids is not None else [None] * len(completions)
    groups, index = build_groups(
        [
            {"label": _label(i, kwargs), "prompt": prompt, "rollout": _rollout(completion, ids[i])}
            for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True))
        ]
    )
    response = await default_client().ascore(groups, terminal_tool=terminal_tool)
    rollouts = per_sample(response, index)
    if log_extra is not None:
        for key in ("s_pos", "s_pit", "s_fa", "status"):
            log_extra(f"reward/{key}", [r[key] for r in rollouts])
        log_extra("reward/fake_judge", fake_marks(response, index))
    if log_metric is not None:
        m = response["metrics"]
        for key in (
            "final_answer_rate",
            "filtered_group_fraction",
            "judge_reward_std",
            "group_snr",
            "cached_tokens",
            "unmatched_tool_rate",
        ):
            if m.get(key) is not None:
                log_metric(f"reward/{key}", m[key])
        for name, mean in (m.get("dimension_mean") or {}).items():
            log_metric(f"reward/dimension/{name}", mean)
        for kind, rate in m["penalty_rate"].items():
            log_metric(f"reward/penalty/{kind}", rate)
        for category, rate in m["error_rate"].items():
            log_metric(f"reward/error/{category}", rate)
    return [None if r["reward"] is None else float(r["reward"]) for r in rollouts]
