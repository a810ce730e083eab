"""Agent Lightning (`agentlightning` 0.3.0): the reward of a LitAgent's episode, from the service.

Agent Lightning calls no reward function: the agent's own rollout returns the reward (or emits it as a
span), so the agent asks the service itself, once, at the end of the episode:

```python
import agentlightning as agl
from reward.adapters.agentlightning import reward_for

class TerminalAgent(agl.LitAgent[dict]):
    async def rollout_async(self, task, resources, rollout):
        messages = await run_episode(task, resources["llm"])     # the agent's own chat, OpenAI-style
        return await reward_for(messages, task["label"])        # raises JudgeFailed: no number
```

Matched against agentlightning 0.3.0. `LitAgentRunner._step_impl` (runner/agent.py:621-735) calls
`training_rollout[_async]`, which defaults to `rollout[_async]` (litagent/litagent.py:181-252); a float
becomes a reward span (`emit_reward(x, propagate=False)`, runner/agent.py:293-314), `None` means "the
spans the tracer recorded" (runner/agent.py:289-291), where `emit_reward_for` has put the reward span
with the service's marks as attributes (`reward.fake`, `reward.status`, `reward.penalty`;
emitter/reward.py:144-206 lets plain attributes through). Where the agent gets its messages from the
trace instead, `agentlightning.TraceToMessages` rebuilds OpenAI-style messages from the spans.

Failure: a judge failure raises JudgeFailed and emits nothing. The runner logs it and marks the attempt
`failed` (runner/agent.py:710-729; in the trainer's `iter` loop the exception goes no further); the
rollout is `failed` unless its RolloutConfig retries failed attempts (store/utils.py:74-82). Agent
Lightning's verl daemon does NOT drop a failed rollout: it reads the rollout's spans, finds no reward and
fills it with `reward_fillna_value`, 0.0 by default and never set from the config
(verl/daemon.py:221, 611-614, 633-649, 1146-1154), so its LLM calls would be trained on with 0.0. Give
VERL the daemon from `strict_verl_daemon()` (`agl.VERL(config, daemon_cls=strict_verl_daemon())`,
algorithm/verl/interface.py:125-165): a rollout without a reward then fails the training step instead.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reward.adapters.common import JudgeFailed, build_groups, parse_label

if TYPE_CHECKING:
    from reward.adapters.client import RewardClient


@dataclass(frozen=True)
class EpisodeReward:
    """What the service said about one episode."""

    reward: float
    status: str  # ok | penalized
    penalty: str | None
    fake: bool  # judged by the fake judge: not a real judgement
    has_final_answer: bool

    def attributes(self) -> dict[str, str | bool]:
        """Span attributes for `agentlightning.emit_reward` (OpenTelemetry takes no None)."""
        attrs: dict[str, str | bool] = {"reward.fake": self.fake, "reward.status": self.status}
        if self.penalty is not None:
            attrs["reward.penalty"] = self.penalty
        return attrs


def _groups(messages: list[dict[str, Any]], label: Any, query: str | None, num_tokens: int | None) -> Any:
    rollout: dict[str, Any] = {"messages": messages}
    if num_tokens is not None:
        rollout["num_tokens"] = num_tokens
    if query is not None:  # given apart from the label (which may be a bare reference): it wins
        label = {**parse_label(label), "query": query}
    return build_groups([{"label": label, "prompt": messages, "rollout": rollout}])


def _episode(answer: dict[str, Any], index: list[tuple[int, int]]) -> EpisodeReward:
    g, r = index[0]
    group = answer["groups"][g]
    rollout = group["rollouts"][r]
    if rollout["reward"] is None:
        raise JudgeFailed([rollout["error"]])
    return EpisodeReward(
        reward=float(rollout["reward"]),
        status=rollout["status"],
        penalty=rollout["penalty"],
        fake=bool((group.get("judge") or {}).get("fake")),
        has_final_answer=bool(rollout["has_final_answer"]),
    )


async def score_episode(
    messages: list[dict[str, Any]],
    label: Any,
    *,
    query: str | None = None,
    num_tokens: int | None = None,
    terminal_tool: str | list[str] | None = None,
    client: RewardClient | None = None,
) -> EpisodeReward:
    """Score the episode's chat (system, task, then the policy's turns; the policy's part starts after the
    last user message). `label`: the task's reference (id, plan or trajectory) or {reference, query,
    group_id}; the query is the label's, else `query`, else the last user message (`<query>` unwrapped).
    `terminal_tool`: the agent's terminal tool name(s) when not among the recognised ones. Raises
    JudgeFailed when the judge could not score it (after the client's retries)."""
    from reward.adapters.client import default_client

    groups, index = _groups(messages, label, query, num_tokens)
    return _episode(await (client or default_client()).ascore(groups, terminal_tool=terminal_tool), index)


def score_episode_sync(
    messages: list[dict[str, Any]],
    label: Any,
    *,
    query: str | None = None,
    num_tokens: int | None = None,
    terminal_tool: str | list[str] | None = None,
    client: RewardClient | None = None,
) -> EpisodeReward:
    """`score_episode` for a sync `LitAgent.rollout` (the runner calls it on its event loop's thread)."""
    from reward.adapters.client import default_client

    groups, index = _groups(messages, label, query, num_tokens)
    return _episode((client or default_client()).score(groups, terminal_tool=terminal_tool), index)


async def reward_for(messages: list[dict[str, Any]], label: Any, **kwargs: Any) -> float:
    """The float for `rollout_async` to return: the runner stores it as the rollout's reward span."""
    return (await score_episode(messages, label, **kwargs)).reward


def reward_for_sync(messages: list[dict[str, Any]], label: Any, **kwargs: Any) -> float:
    """The float for a sync `rollout` to return."""
    return score_episode_sync(messages, label, **kwargs).reward


async def emit_reward_for(messages: list[dict[str, Any]], label: Any, **kwargs: Any) -> float:
    """Emit the reward span inside the rollout, with the service's marks (`reward.fake`, `reward.status`,
    `reward.penalty`) as attributes; the rollout then returns None (do not also return the float: that
    would store a second reward span)."""
    episode = await score_episode(messages, label, **kwargs)
    importlib.import_module("agentlightning").emit_reward(episode.reward, attributes=episode.attributes())
    return episode.reward


def strict_verl_daemon() -> type:
    """Agent Lightning's verl AgentModeDaemon with `reward_fillna_value=None`: a rollout that ended
    without a reward (the judge failed, the rollout raised) fails the step instead of training on 0.0."""
    # imported by name: not installed with this package (and the daemon needs verl and torch)
    daemon: Any = importlib.import_module("agentlightning.verl.daemon").AgentModeDaemon

    class StrictAgentModeDaemon(daemon):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["reward_fillna_value"] = None
            super().__init__(*args, **kwargs)

    return StrictAgentModeDaemon
