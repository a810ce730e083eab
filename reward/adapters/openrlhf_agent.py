"""OpenRLHF agent mode (`--train.agent_func_path FILE.py`): the reward of a whole episode, from the service.

Matched at OpenRLHF 0.11.2. The file is loaded by `_load_agent_executor` (openrlhf/trainer/ray/vllm_engine.py
19-30): it must define `AgentExecutor`, a subclass of `AgentExecutorBase`, built with no arguments.
`MultiTurnAgentExecutor.execute` (openrlhf/utils/agent.py 37-185) then runs each episode in its own
`AgentInstance` (built with no arguments; `__init__` and `step` are abstract) and never calls the remote
reward: it sums the `rewards` each `step()` returns (`.item()`, so a NumPy or torch scalar), and takes
`scores` and `extra_logs` (numbers only: each becomes a tensor) from the last step. So the agent asks the
service itself, once, at the last step; earlier steps return 0.0. See examples/openrlhf_agent.py:

```python
class AgentInstance(AgentInstanceBase):
    def __init__(self, *args, **kwargs):
        self.terminal = Terminal()                     # your environment

    async def step(self, states, **kwargs):
        feedback, done = self.terminal.turn(states["action_text"])
        return await step_result(states, feedback, done)


class AgentExecutor(EpisodeTokens, MultiTurnAgentExecutor):
    def __init__(self):
        super().__init__(AgentInstance)
```

Why `EpisodeTokens`: `step()` is told neither the token ids nor the budget, and OpenRLHF also ends an episode
without another `step()` once its tokens reach `max_length` (agent.py 94-97): an episode reward asked only
when the environment says `done` would then never be asked, and the episode would train on 0.0, better
than any penalty. `EpisodeTokens` sees the ids the loop holds (the prompt as tokenized and truncated, each
action's ids, which include the stop token that vLLM leaves out of `action_text`), so `step_result` scores
the step after which the loop stops, the text is the decoded ids (as OpenRLHF's remote reward gets them)
and the token count is exact.

A judge failure raises JudgeFailed from `step()`; nothing in OpenRLHF catches it (generate_responses'
asyncio.gather, then ray.get in samples_generator.py), so the rollout batch and the run stop instead of
training on a made-up number. The client first retries transient failures within REWARD_TIMEOUT.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reward.adapters.common import JudgeFailed, build_groups
from reward.adapters.openrlhf import score_01


@dataclass
class _Episode:
    """What OpenRLHF's loop knows about the running episode and does not tell `step()`."""

    tokenizer: Any
    max_length: int
    prompt_ids: list[int] | None = None  # the first observation, as the loop tokenized (and truncated) it
    ids: list[int] = field(default_factory=list)  # the observation before the latest action, and the action


_EPISODE: ContextVar[_Episode | None] = ContextVar("openrlhf_episode", default=None)


class _CountingEngine:
    """The rollout engine as `execute` gets it, keeping each turn's token ids for the episode."""

    def __init__(self, engine: Any, episode: _Episode) -> None:
        self._engine = engine
        self._episode = episode

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> Any:
        out = await self._engine.generate(prompt_token_ids, sampling_params, multi_modal_data=multi_modal_data)
        ep = self._episode
        if ep.prompt_ids is None:
            ep.prompt_ids = list(prompt_token_ids)
        ep.ids = list(prompt_token_ids) + list(out.outputs[0].token_ids)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class EpisodeTokens:
    """Mixin for an OpenRLHF `AgentExecutor`, before `MultiTurnAgentExecutor`: `step_result` needs it.

    It runs OpenRLHF's own `execute` unchanged, with the engine seen through (each episode is an asyncio
    task of its own in `generate_responses`, so a context variable keeps episodes apart)."""

    async def execute(
        self,
        prompt: Any,
        label: Any,
        sampling_params: Any,
        max_length: int,
        hf_tokenizer: Any,
        llm_engine: Any,
        images: Any = None,
    ) -> Any:
        """OpenRLHF's own `execute`, unchanged, with this episode's token ids recorded for `step_result`."""
        episode = _Episode(hf_tokenizer, max_length)
        token = _EPISODE.set(episode)
        try:
            return await super().execute(  # type: ignore[misc]
                prompt, label, sampling_params, max_length, hf_tokenizer, _CountingEngine(llm_engine, episode), images
            )
        finally:
            _EPISODE.reset(token)


def no_reward() -> dict[str, Any]:
    """What a step before the last returns (OpenRLHF reads `rewards` with `.item()`)."""
    return {"rewards": np.float64(0.0), "scores": np.float64(0.0), "extra_logs": {}}


async def step_result(states: dict[str, Any], feedback: str, done: bool) -> dict[str, Any]:
    """The dict `step()` returns: the environment's `feedback`, and the episode reward when OpenRLHF will
    not call `step()` again (the environment is `done`, or the tokens reach `max_length`); `done` is then
    True, so the loop never goes on past a scored step (rewards are summed)."""
    ep = _EPISODE.get()
    if ep is None or ep.prompt_ids is None:
        raise RuntimeError("step_result needs the episode's tokens: AgentExecutor must inherit EpisodeTokens")
    ids = ep.ids + token_ids(ep.tokenizer, feedback)
    if not done and len(ids) < ep.max_length:
        return {**no_reward(), "environment_feedback": feedback, "done": False}
    prompt = ep.tokenizer.decode(ep.prompt_ids, skip_special_tokens=False)
    text = prompt + ep.tokenizer.decode(ids[len(ep.prompt_ids) :], skip_special_tokens=False)
    r = await episode_reward(prompt, text, states["label"], num_tokens=len(ids) - len(ep.prompt_ids))
    return {**r, "environment_feedback": feedback, "done": True}


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """The ids OpenRLHF appends for `text` (agent.py 148-150, without torch)."""
    return list(tokenizer(text=text, add_special_tokens=False)["input_ids"]) if text else []


async def episode_reward(prompt: str, text: str, label: Any, num_tokens: int | None = None) -> dict[str, Any]:
    """`rewards` / `scores` (NumPy scalars, read with `.item()`) and `extra_logs` of one episode; `text` is
    prompt + response (the prompt is cut exactly). Without `num_tokens` the service estimates the count."""
    from reward.adapters.client import default_client

    rollout: dict[str, Any] = {"text": text, "prompt": prompt}
    if num_tokens is not None:
        rollout["num_tokens"] = num_tokens
    groups, index = build_groups([{"label": label, "prompt": prompt, "rollout": rollout}])
    response = await default_client().ascore(groups)
    g, i = index[0]
    r = response["groups"][g]["rollouts"][i]
    if r["reward"] is None:
        raise JudgeFailed([r["error"]])
    reward = float(r["reward"])
    return {
        "rewards": np.float64(reward),
        "scores": np.float64(score_01(reward)),
        "extra_logs": {  # numbers only: OpenRLHF makes a tensor of each (samples_generator.py)
            "penalized": float(r["status"] == "penalized"),
            "has_final_answer": float(r["has_final_answer"]),
            "fake_judge": float(bool(response["groups"][g]["judge"]["fake"])),
        },
    }
