"""Trainer-native rollouts: recover terminal steps and the final answer from what a trainer holds.

Two forms besides explicit `steps`:
- `messages`: an OpenAI chat-completions list. Assistant `tool_calls` to the terminal tool (default
  `run_in_terminal`) with arguments `{"command", "mode", "timeout"}`, then `tool` messages with the output;
  the last assistant message is the final answer.
- `text`: decoded text in the Qwen3 / Hermes format: `<tool_call>{"name", "arguments"}</tool_call>` then
  `<tool_response>...</tool_response>`; the last assistant turn is the final answer.

Exit codes are recognised in a tool result, in this order: an `exit_code` field on the tool message; content
that is a JSON object with `output` and `exit_code` (or `exitCode`, `returncode`); a first or last line such
as `Exit code: 1`, `exit_code=1`, `[exit code 1]`, `Command exited with code 1`, `Process exited with code 1`
or `<exit_code>1</exit_code>` (the line is removed from the output). Otherwise the exit code is unknown.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reward.trajectory import Step

DEFAULT_TERMINAL_TOOL = "run_in_terminal"

_EXIT_LINE = re.compile(
    r"""^\s*(?:
        \[?\s*exit[ _-]?code\s*[:=]?\s*(?P<a>-?\d+)\s*\]?
      | (?:command|process)\s+exited\s+with\s+(?:exit\s+)?code\s+(?P<b>-?\d+)\.?
      | <exit_code>\s*(?P<c>-?\d+)\s*</exit_code>
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_SPECIAL = re.compile(r"<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id)\|>")
_ASSISTANT_TURN = re.compile(r"<\|im_start\|>assistant\s*\n?")
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_TOOL_RESPONSE = re.compile(r"<tool_response>(.*?)</tool_response>", re.DOTALL)


class NativeFormatError(ValueError):
    """A rollout whose steps cannot be recovered; the message says why."""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _exit_from_lines(text: str) -> tuple[str, int | None]:
    lines = text.split("\n")
    for index in (-1, 0):
        if not lines:
            break
        # skip blank edges so "output\nExit code: 1\n" is recognised
        while lines and not lines[index].strip():
            lines.pop(index)
        if lines:
            m = _EXIT_LINE.match(lines[index])
            if m:
                code = int(m.group("a") or m.group("b") or m.group("c"))
                lines.pop(index)
                return "\n".join(lines), code
    return text, None


def parse_tool_result(content: Any, exit_code: Any = None) -> tuple[str, int | None]:
    """Output and exit code of one tool result, in any of the documented forms."""
    text = _content_text(content)
    if isinstance(exit_code, int):
        return text, exit_code
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            for key in ("exit_code", "exitCode", "returncode", "return_code"):
                if isinstance(obj.get(key), int) and not isinstance(obj.get(key), bool):
                    output = obj.get("output", obj.get("stdout", ""))
                    if obj.get("stderr"):
                        output = f"{output}{obj['stderr']}"
                    return _content_text(output), obj[key]
    return _exit_from_lines(text)


def _arguments(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def _final(text: str) -> str:
    return _THINK.sub("", _SPECIAL.sub("", text)).strip()


def steps_from_messages(messages: list[dict[str, Any]], tool: str = DEFAULT_TERMINAL_TOOL) -> tuple[list[Step], str]:
    """Steps and final answer from an OpenAI chat-completions message list."""
    steps: list[Step] = []
    by_call_id: dict[str, int] = {}
    pending: list[int] = []  # steps still waiting for a tool message without tool_call_id
    saw_tool_calls = False
    final = ""
    for message in messages:
        if not isinstance(message, dict):
            raise NativeFormatError("every message must be an object")
        role = message.get("role")
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if calls:
                saw_tool_calls = True
                for call in calls:
                    fn = (call or {}).get("function") or {}
                    args = _arguments(fn.get("arguments"))
                    if fn.get("name") != tool or not args or not isinstance(args.get("command"), str):
                        continue
                    steps.append(Step(command=args["command"]))
                    if call.get("id"):
                        by_call_id[call["id"]] = len(steps) - 1
                    pending.append(len(steps) - 1)
            else:
                final = _content_text(message.get("content"))
        elif role == "tool":
            index = by_call_id.get(message.get("tool_call_id") or "")
            if index is None and pending:
                index = pending[0]
            if index is None:
                continue
            if index in pending:
                pending.remove(index)
            output, code = parse_tool_result(message.get("content"), message.get("exit_code"))
            steps[index] = Step(command=steps[index].command, exit_code=code, output=output)
    if saw_tool_calls and not steps:
        raise NativeFormatError(
            f"the messages contain tool calls but none to the terminal tool {tool!r} with a command"
        )
    return steps, _final(final)


def steps_from_text(text: str, tool: str = DEFAULT_TERMINAL_TOOL) -> tuple[list[Step], str]:
    """Steps and final answer from decoded Qwen3 / Hermes chat text (prompt + response, or response only)."""
    turns = _ASSISTANT_TURN.split(text)
    # With chat markers, the prompt (which may show tool-call examples) comes before the first assistant turn.
    body = text if len(turns) == 1 else "<|im_start|>assistant\n".join(turns[1:])
    events = sorted(
        [(m.start(), "call", m.group(1)) for m in _TOOL_CALL.finditer(body)]
        + [(m.start(), "response", m.group(1)) for m in _TOOL_RESPONSE.finditer(body)]
    )
    steps: list[Step] = []
    waiting: list[int] = []
    saw_calls = False
    for _, kind, payload in events:
        if kind == "call":
            saw_calls = True
            call = _arguments(payload.strip())
            args = _arguments((call or {}).get("arguments"))
            if not call or call.get("name") != tool or not args or not isinstance(args.get("command"), str):
                continue
            steps.append(Step(command=args["command"]))
            waiting.append(len(steps) - 1)
        elif waiting:
            index = waiting.pop(0)
            # the chat template wraps a tool result in newlines: "<tool_response>\n...\n</tool_response>"
            output, code = parse_tool_result(payload.removeprefix("\n").removesuffix("\n"))
            steps[index] = Step(command=steps[index].command, exit_code=code, output=output)
    if saw_calls and not steps:
        raise NativeFormatError(
            f"the text contains <tool_call> blocks but none to the terminal tool {tool!r} with a command"
        )
    last_turn = turns[-1] if len(turns) > 1 else body
    ends = [m.end() for m in _TOOL_RESPONSE.finditer(last_turn)] + [m.end() for m in _TOOL_CALL.finditer(last_turn)]
    tail = last_turn[max(ends) :] if ends else last_turn
    return steps, _final(tail)
