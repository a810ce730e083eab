"""OpenAI chat-completions messages (and TRL's tool loop) -> the policy's turns.

Accepted: assistant `tool_calls` with string or object `arguments`, with or without ids; `tool` messages
with `tool_call_id` and/or `name` (TRL), content as a string or content blocks, an optional `exit_code`
field; an assistant message whose content holds `<tool_call>` text (a TRL completion without the tool loop,
or a whole decoded multi-turn response); a user message that holds only `<tool_response>` blocks (a harness
that returns results as user turns). The policy's part starts after the last user message that is not a
tool response, so calls in a few-shot demonstration of the prompt are never the policy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward.native.calls import step_from_openai_call
from reward.native.chatml import assistant_turn, results_of, turns_from_text
from reward.native.exitcode import content_text
from reward.native.turns import Call, Result, Turn, visible_text


def _is_tool_response(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("<tool_response>") and stripped.endswith("</tool_response>")


def _policy_part(messages: list[Any]) -> list[dict[str, Any]]:
    start = 0
    for i, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") == "user" and not _is_tool_response(content_text(m.get("content"))):
            start = i + 1
    return [m for m in messages[start:] if isinstance(m, dict)]


def turns_from_messages(messages: list[Any], tool: Sequence[str]) -> list[Turn]:
    turns: list[Turn] = []
    for m in _policy_part(messages):
        role = m.get("role")
        content = content_text(m.get("content"))
        if role == "assistant":
            calls = m.get("tool_calls")
            if isinstance(calls, list) and calls:
                turn = Turn("assistant", text=visible_text(content))
                for call in calls:
                    step, call_id = step_from_openai_call(call, tool)
                    turn.calls.append(Call(step, call_id))
                turns.append(turn)
            elif "<tool_call>" in content or "<tool_response>" in content:
                # the calls are in the text: one turn, or a whole decoded multi-turn response
                many = "<tool_response>" in content
                turns.extend(turns_from_text(content, tool) if many else [assistant_turn(content, tool)])
            else:
                turns.append(Turn("assistant", text=visible_text(content)))
        elif role == "tool":
            call_id = m.get("tool_call_id") if isinstance(m.get("tool_call_id"), str) else None
            turns.append(Turn("tool", results=[Result(m.get("content"), m.get("exit_code"), call_id)]))
        elif role == "user" and _is_tool_response(content):
            turns.append(Turn("tool", results=results_of(content)))
    return turns
