"""OpenRLHF 0.11.2 agent mode, rewarded by the service at the end of each episode.

    --train.agent_func_path examples/openrlhf_agent.py --data.label_key reference    # REWARD_URL=http://HOST:8000

OpenRLHF's loader (`_load_agent_executor`, openrlhf/trainer/ray/vllm_engine.py) executes this file and builds
`AgentExecutor()` with no arguments; `MultiTurnAgentExecutor` builds one `AgentInstance()` per episode and
calls `step()` after each turn the policy generates. The policy speaks Qwen3's chat format: a turn with
`<tool_call>` blocks runs each call's command in the terminal and answers with Qwen3's tool turn; a turn
without a call (the final answer) ends the episode. `Terminal` is a tiny deterministic stand-in: put your
sandbox in its place (`AgentInstance.terminal`). The reward is asked once, by `step_result`, at the step
after which OpenRLHF stops (see reward.adapters.openrlhf_agent); a judge failure raises and stops the run.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor

from reward.adapters.openrlhf_agent import EpisodeTokens, step_result

TOOL = "run_in_terminal"
CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


class Terminal:
    """A deterministic toy shell: a few answers, anything else is not found. Replace with a real sandbox."""

    ANSWERS: ClassVar[dict[str, tuple[str, int | None]]] = {
        "pwd": ("/testbed", 0),
        "ls": ("README.md\nsrc\ntests", 0),
        "pwd && ls": ("/testbed\nREADME.md\nsrc\ntests\n", 0),
    }

    def run(self, command: str) -> tuple[str, int | None]:
        """(output, exit code; None when unknown)."""
        if command.strip() in self.ANSWERS:
            return self.ANSWERS[command.strip()]
        return f"bash: {command.split()[0] if command.split() else command}: command not found", 127


def commands(action_text: str) -> list[str | None] | None:
    """The command of each tool call in the turn (None for a malformed call); None: no call at all."""
    calls = CALL.findall(action_text)
    if not calls:
        return None
    out: list[str | None] = []
    for call in calls:
        try:
            parsed = json.loads(call)
            args = parsed["arguments"]
            args = json.loads(args) if isinstance(args, str) else args
            ok = parsed["name"] == TOOL and isinstance(args["command"], str)
            out.append(args["command"] if ok else None)
        except (ValueError, KeyError, TypeError):
            out.append(None)
    return out


def tool_turn(results: list[str]) -> str:
    """Qwen3's tool turn (qwen3.jinja), after the `<|im_end|>` the policy stopped on, up to the next
    generation prompt."""
    responses = "".join(f"\n<tool_response>\n{r}\n</tool_response>" for r in results)
    return f"\n<|im_start|>user{responses}<|im_end|>\n<|im_start|>assistant\n"


class AgentInstance(AgentInstanceBase):
    terminal: Any = Terminal

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.shell = self.terminal()

    async def reset(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"observation": states["observation"]}

    async def step(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        cmds = commands(states["action_text"])
        if cmds is None:  # the final answer: the episode is over
            return await step_result(states, "", done=True)
        results = []
        for cmd in cmds:
            if cmd is None:
                results.append(f"error: not a valid {TOOL} call")
                continue
            output, code = self.shell.run(cmd)
            results.append(output if code is None else f"{output}\nExit code: {code}")
        return await step_result(states, tool_turn(results), done=False)


class AgentExecutor(EpisodeTokens, MultiTurnAgentExecutor):
    def __init__(self) -> None:
        super().__init__(AgentInstance)
