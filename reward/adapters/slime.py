"""slime: the per-sample remote RM (`--rm-type remote_rm --rm-url http://HOST:PORT/slime --reward-key reward`)
and a group reward function (`--custom-rm-path reward.adapters.slime.batched_custom_rm --group-rm`).

Matched against slime `slime/rollout/rm_hub/__init__.py` `remote_rm` (POST `{"prompt", "response", "label"}`
to the URL as given, aiohttp, 120 s total timeout, 10 tries with backoff, the JSON answer stored verbatim as
the sample's reward, a dict needing `--reward-key`) and `batched_async_rm` (`await fn(args, samples)`, one
call per prompt group with `--group-rm`), and `slime/utils/types.py` `Sample`.

Failure: the HTTP endpoint answers 503 with Retry-After for a rollout the judge could not score (slime
retries, then raises: the step fails rather than training on a made-up reward), or, with the explicit
REWARD_JUDGE_ERROR_FALLBACK, 200 with `"reward_fallback": true`. `batched_custom_rm` raises JudgeFailed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from reward.adapters.common import JudgeFailed, build_groups, per_sample


class SlimeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | list[dict[str, Any]]
    response: str
    label: Any = None


def sample_to_rollout(response: str, response_length: int | None = None) -> dict[str, Any]:
    rollout: dict[str, Any] = {"text": response}
    if response_length is not None:
        rollout["num_tokens"] = int(response_length)
    return rollout


def to_groups(req: SlimeRequest) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    return build_groups([{"label": req.label, "prompt": req.prompt, "rollout": sample_to_rollout(req.response)}])


def reward_dict(rollout: dict[str, Any], fallback: float | None = None) -> dict[str, Any]:
    reward = rollout["reward"]
    return {
        "reward": fallback if reward is None else reward,
        "reward_fallback": reward is None,
        "status": rollout["status"],
        "penalty": rollout["penalty"],
        "error": rollout["error"],
        "s_pos": rollout["s_pos"],
        "s_pit": rollout["s_pit"],
        "s_fa": rollout["s_fa"],
        "has_final_answer": rollout["has_final_answer"],
    }


async def batched_custom_rm(args: Any, samples: list[Any]) -> list[float]:
    """`--custom-rm-path reward.adapters.slime.batched_custom_rm --group-rm`: one request per prompt group,
    so group statistics see the whole group. Server URL: REWARD_URL."""
    from reward.client import default_client

    groups, index = build_groups(
        [
            {
                "label": s.label,
                "prompt": s.prompt,
                "rollout": sample_to_rollout(s.response, getattr(s, "response_length", None)),
            }
            for s in samples
        ]
    )
    response = await default_client().ascore(groups)
    rollouts = per_sample(response, index)
    failed = [r["error"] for r in rollouts if r["reward"] is None]
    if failed:
        raise JudgeFailed(failed)
    return [float(r["reward"]) for r in rollouts]
