"""Render one rollout (steps + final answer) in the trainer-native forms, as trainers would hold it."""

from __future__ import annotations

import json
from typing import Any


def as_messages(query: str, rollout: dict[str, Any], exit_style: str = "line") -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "You are an AI coding research assistant that runs terminal commands."},
        {"role": "user", "content": f"Call Execution Subagent with this query.\n<query>\n{query}\n</query>"},
    ]
    for i, s in enumerate(rollout["steps"]):
        args = {"command": s["command"], "mode": "sync", "timeout": 30000}
        msgs.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": "run_in_terminal", "arguments": json.dumps(args)},
                    }
                ],
            }
        )
        if exit_style == "json":
            content = json.dumps({"output": s["output"], "exit_code": s["exit_code"]})
        else:
            content = f"{s['output']}\nExit code: {s['exit_code']}"
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "content": content})
    msgs.append({"role": "assistant", "content": rollout["final_answer"]})
    return msgs


def as_text(query: str, rollout: dict[str, Any], with_prompt: bool = True) -> str:
    """Qwen3 / Hermes chat text, as a decoded prompt + response."""
    parts = []
    if with_prompt:
        parts.append(
            "<|im_start|>system\nYou are an AI coding research assistant.\n\n# Tools\n<tools>\n"
            '{"type": "function", "function": {"name": "run_in_terminal"}}\n</tools>\n\n'
            "For each function call, return a json object with function name and arguments within "
            '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
            "</tool_call><|im_end|>\n"
            f"<|im_start|>user\nCall Execution Subagent with this query.\n<query>\n{query}\n</query><|im_end|>\n"
        )
    for s in rollout["steps"]:
        call = {"name": "run_in_terminal", "arguments": {"command": s["command"], "mode": "sync", "timeout": 30000}}
        parts.append(
            f"<|im_start|>assistant\n<think>\nI should run it.\n</think>\n\n<tool_call>\n{json.dumps(call)}\n</tool_call><|im_end|>\n"
        )
        parts.append(
            f"<|im_start|>user\n<tool_response>\n{s['output']}\n[exit code: {s['exit_code']}]\n</tool_response><|im_end|>\n"
        )
    parts.append(f"<|im_start|>assistant\n{rollout['final_answer']}<|im_end|>")
    return "".join(parts)
