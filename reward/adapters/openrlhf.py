"""OpenRLHF remote reward (`--reward.remote_url http://HOST:PORT/openrlhf`; older `--remote_rm_url`).

Matched against OpenRLHF `openrlhf/utils/agent.py` `SingleTurnAgentExecutor._fetch_rewards_via_http` /
`execute` (one sample per request, lists may be empty when several URLs split a batch) and the older
`openrlhf/utils/remote_rm_utils.py` `request_api_wrapper` (a whole batch per request), and the reference
server `openrlhf/cli/serve_rm.py` (`/get_reward`). Body: `{"query": [...], "prompts": [...], "labels": [...]}`
where `query` is the decoded prompt + response text; answer: `{"rewards", "scores", "extra_logs"}`, one
entry per query in every list.

Failure: a rollout the judge could not score makes the whole request answer 503 with Retry-After; OpenRLHF
retries 5 times, 1 s apart (successful judgements are cached, so retries are cheap), then gets no reward and
stops: it never trains on a fabricated number. An explicit fallback (REWARD_JUDGE_ERROR_FALLBACK) answers
200 instead and flags each such sample with `extra_logs.reward_fallback = 1`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reward.adapters.common import build_groups, per_sample

LABEL_AT = "labels[{}]"  # sample i's label, as errors name it


class OpenRLHFRequest(BaseModel):
    """What OpenRLHF's remote reward POSTs: decoded `query` (prompt + response), `prompts`, `labels`."""

    model_config = ConfigDict(extra="forbid")

    query: list[str] = Field(default_factory=list, description="Decoded prompt + response, one per sample.")
    prompts: list[str] = Field(default_factory=list)
    labels: list[Any] = Field(default_factory=list, description="Reference id, or {reference, query, group_id}.")

    @model_validator(mode="after")
    def _lengths(self) -> OpenRLHFRequest:
        n = len(self.query)
        if len(self.labels) != n or (self.prompts and len(self.prompts) != n):
            raise ValueError(f"query, prompts and labels must have the same length (query has {n})")
        return self


def to_groups(req: OpenRLHFRequest) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """The request as prompt groups for /score, and where each sample went."""
    samples = []
    for i, (text, label) in enumerate(zip(req.query, req.labels, strict=True)):
        prompt = req.prompts[i] if req.prompts else None
        # `query` is prompt + response decoded with special tokens kept: the known prompt is cut exactly
        rollout = {"text": text} if prompt is None else {"text": text, "prompt": prompt}
        samples.append({"label": label, "prompt": prompt if prompt is not None else text, "rollout": rollout})
    return build_groups(samples, LABEL_AT)


_LOG_KEYS = ("penalized", "has_final_answer", "reward_fallback", "fake_judge")


def empty_response() -> dict[str, Any]:
    """The answer to empty lists (several URLs splitting a batch). OpenRLHF <= 0.10.1 merges every
    server's `extra_logs` by key, so the keys are there even with no sample."""
    return {"rewards": [], "scores": [], "extra_logs": {k: [] for k in _LOG_KEYS}}


def score_01(reward: float) -> float:
    """OpenRLHF's `scores` drive dynamic filtering on [0, 1]: rewards from −100 to 100, mapped linearly."""
    return min(1.0, max(0.0, (reward + 100.0) / 200.0))


def to_response(response: dict[str, Any], index: list[tuple[int, int]], fallback: float | None) -> dict[str, Any]:
    """The scored groups as OpenRLHF reads them: `rewards`, `scores` (rewards mapped to [0, 1]), `extra_logs`."""
    rollouts = per_sample(response, index)
    rewards = [fallback if r["reward"] is None else r["reward"] for r in rollouts]
    return {
        "rewards": rewards,
        "scores": [None if r is None else score_01(r) for r in rewards],
        "extra_logs": {
            "penalized": [float(r["status"] == "penalized") for r in rollouts],
            "has_final_answer": [float(r["has_final_answer"]) for r in rollouts],
            "reward_fallback": [float(r["reward"] is None) for r in rollouts],
        },
    }
