"""OpenRLHF agent mode (`--train.agent_func_path`): the reward of a whole episode, from the service.

In agent mode OpenRLHF never calls the remote reward (`MultiTurnAgentExecutor.execute` sums the `rewards`
that the agent's `step()` returns, reading each with `.item()`; matched at OpenRLHF 3c3be62). So the
agent asks the service itself, once, when the episode ends; earlier steps return 0.0:

```python
from reward.adapters.openrlhf_agent import episode_reward, no_reward

class AgentInstance(AgentInstanceBase):
    async def reset(self, states, **kwargs):
        self.prompt = states["observation"]
        return {"observation": states["observation"]}

    async def step(self, states, **kwargs):
        feedback, done = run_the_command(states["action_text"])   # the environment
        text = states["observation_text"] + states["action_text"]
        r = await episode_reward(self.prompt, text, states["label"]) if done else no_reward()
        return {**r, "environment_feedback": feedback, "done": done}
```

The prompt is cut from the text exactly; the exact token count is not known here (pass `num_tokens` to
use one). A judge failure raises JudgeFailed: the episode fails instead of training on a made-up number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reward.adapters.common import JudgeFailed, build_groups, per_sample
from reward.adapters.openrlhf import score_01


def no_reward() -> dict[str, Any]:
    """What a step before the end of the episode returns."""
    return {"rewards": np.float64(0.0), "scores": np.float64(0.0), "extra_logs": {}}


async def episode_reward(prompt: str, text: str, label: Any, num_tokens: int | None = None) -> dict[str, Any]:
    """`rewards` / `scores` (with `.item()`, as OpenRLHF reads them) and `extra_logs` of one episode."""
    from reward.adapters.client import default_client

    rollout: dict[str, Any] = {"text": text, "prompt": prompt}
    if num_tokens is not None:
        rollout["num_tokens"] = num_tokens
    groups, index = build_groups([{"label": label, "prompt": prompt, "rollout": rollout}])
    r = per_sample(await default_client().ascore(groups), index)[0]
    if r["reward"] is None:
        raise JudgeFailed([r["error"]])
    reward = float(r["reward"])
    return {
        "rewards": np.float64(reward),
        "scores": np.float64(score_01(reward)),
        "extra_logs": {
            "penalized": float(r["status"] == "penalized"),
            "has_final_answer": float(r["has_final_answer"]),
        },
    }
