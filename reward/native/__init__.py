"""Trainer-native rollouts: recover the terminal steps and the final answer from what a trainer holds.

Every form is reduced to one canonical list of turns (reward.native.turns) and assembled the same way:
- `messages`: OpenAI chat-completions / TRL tool-loop messages (reward.native.messages);
- `messages` as Responses-API items (NeMo Gym; reward.native.responses);
- `text`: decoded Qwen3 / Hermes ChatML text, special tokens kept or stripped (reward.native.chatml).
Exit codes are read where the declared convention says (reward.native.exitcode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward.core.trajectory import Step
from reward.native.calls import unmatched_tools
from reward.native.chatml import turns_from_text
from reward.native.exitcode import convention_from_env, parse_tool_result
from reward.native.messages import turns_from_messages
from reward.native.responses import is_responses, turns_from_responses
from reward.native.turns import assemble
from reward.settings import (
    DEFAULT_EXIT_CODE,
    DEFAULT_TERMINAL_TOOLS,
    TERMINAL_TOOL_SURVEY,
    parse_convention,
    parse_tools,
)

__all__ = [
    "DEFAULT_EXIT_CODE",
    "DEFAULT_TERMINAL_TOOLS",
    "TERMINAL_TOOL_SURVEY",
    "convention_from_env",
    "parse_convention",
    "parse_tool_result",
    "parse_tools",
    "steps_from_messages",
    "steps_from_text",
    "unmatched_tools",
]


def steps_from_messages(
    messages: list[Any],
    tool: str | Sequence[str] | None = None,
    exit_code: tuple[str, ...] = DEFAULT_EXIT_CODE,
) -> tuple[list[Step], str]:
    """Steps and final answer from an OpenAI chat-completions message list, or a list of Responses-API items
    (`function_call` / `function_call_output`: NeMo Gym's form). `tool`: the terminal tool name(s) (see
    reward.settings.parse_tools); None: the surveyed defaults."""
    tools = parse_tools(tool)
    if is_responses(messages):
        return assemble(turns_from_responses(messages, tools), exit_code)
    return assemble(turns_from_messages(messages, tools), exit_code)


def steps_from_text(
    text: str,
    tool: str | Sequence[str] | None = None,
    exit_code: tuple[str, ...] = DEFAULT_EXIT_CODE,
    prompt: str | None = None,
) -> tuple[list[Step], str]:
    """Steps and final answer from decoded ChatML text (prompt + response, or response only)."""
    return assemble(turns_from_text(text, parse_tools(tool), prompt), exit_code)
