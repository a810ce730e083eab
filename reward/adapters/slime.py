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

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from reward.adapters.common import JudgeFailed, build_groups, fake_marks, per_sample, sample_answer

logger = logging.getLogger(__name__)

LABEL_AT = "label"  # the HTTP body's one label, as errors name it


class SlimeRequest(BaseModel):
    """What slime's `remote_rm` POSTs: `prompt`, `response` (the response alone), `label`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | list[dict[str, Any]]
    response: str
    label: Any = None


def sample_to_rollout(prompt: Any, response: str, response_length: int | None = None) -> dict[str, Any]:
    """slime keeps the response apart from the prompt: the response alone is the policy's part (the
    prompt, when it is text, is passed so a response that repeats it is cut exactly)."""
    rollout: dict[str, Any] = {"text": response}
    if isinstance(prompt, str) and prompt:
        rollout["prompt"] = prompt
    if response_length is not None:
        rollout["num_tokens"] = int(response_length)
    return rollout


def to_groups(req: SlimeRequest) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """The one sample as a prompt group for /score."""
    rollout = sample_to_rollout(req.prompt, req.response)
    return build_groups([{"label": req.label, "prompt": req.prompt, "rollout": rollout}], LABEL_AT)


def reward_dict(rollout: dict[str, Any], fallback: float | None = None) -> dict[str, Any]:
    """The per-sample answer slime stores as `sample.reward` (read with `--reward-key reward`)."""
    return sample_answer(rollout, fallback)


async def batched_custom_rm(args: Any, samples: list[Any]) -> list[float] | list[dict[str, Any]]:
    """`--custom-rm-path reward.adapters.slime.batched_custom_rm --group-rm`: one request per prompt group,
    so group statistics see the whole group. Server URL: REWARD_URL. The exact token count is the sample's
    `response_length`. With `--reward-key K` slime reads `sample.reward[K]`: each sample then gets the
    per-sample dict of the HTTP endpoint (with `fake`), with the reward under K as well."""
    from reward.adapters.client import default_client

    groups, index = build_groups(
        [
            {
                "label": s.label,
                "prompt": s.prompt,
                "rollout": sample_to_rollout(s.prompt, s.response, getattr(s, "response_length", None)),
            }
            for s in samples
        ],
        "samples[{}].label",
    )
    response = await default_client().ascore(groups)
    rollouts = per_sample(response, index)
    failed = [r["error"] for r in rollouts if r["reward"] is None]
    if failed:
        raise JudgeFailed(failed)
    fakes = fake_marks(response, index)
    key = getattr(args, "reward_key", None)
    if key:
        return [{**reward_dict(r), "fake": f, key: float(r["reward"])} for r, f in zip(rollouts, fakes, strict=True)]
    if any(fakes):  # a float has no room for the mark: say it where the trainer's log shows it
        logger.warning("%d of %d rewards came from the FAKE judge: not real judgements", sum(fakes), len(fakes))
    return [float(r["reward"]) for r in rollouts]
