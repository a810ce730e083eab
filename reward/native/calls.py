"""One tool call the policy made, as a step: a terminal command, or a malformed call kept as behaviour.

A malformed call (unparsable JSON or arguments, another tool, arguments that are not an object, no
command, an unclosed `<tool_call>`) is never a reason to reject a request: it is kept as a step with
`invalid` saying why, shown to the judge, and never counted as a command.
"""

from __future__ import annotations

import json
from typing import Any

from reward.core.trajectory import Step, parse_json

MAX_RAW_CALL = 2000  # a malformed call is shown to the judge; its raw text is capped


def _raw(text: str) -> str:
    return text if len(text) <= MAX_RAW_CALL else text[:MAX_RAW_CALL] + "…"


def invalid_step(raw: str, why: str) -> Step:
    return Step(command=_raw(raw.strip()), invalid=why)


def call_step(name: Any, arguments: Any, tool: str, raw: str) -> Step:
    """A call given as a name and arguments (a JSON string or an object)."""
    if name != tool:
        return invalid_step(raw, f"unknown tool {str(name)[:100]!r} (the terminal tool is {tool!r})")
    args = arguments
    if isinstance(args, str):
        try:
            args = parse_json(args)  # strict, and deep nesting or huge numbers are ValueError too
        except ValueError:
            return invalid_step(raw, "unparsable arguments")
    if not isinstance(args, dict):
        return invalid_step(raw, "arguments are not an object")
    command = args.get("command")
    if not isinstance(command, str) or not command.strip():
        return invalid_step(raw, "no command")
    return Step(command=command)


def step_from_openai_call(call: Any, tool: str) -> tuple[Step, str | None]:
    """An OpenAI `tool_calls` entry (`{"id", "function": {"name", "arguments"}}`) and its id."""
    if not isinstance(call, dict):
        return invalid_step(json.dumps(call, default=str), "tool call is not an object"), None
    fn: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else call
    name, arguments = fn.get("name"), fn.get("arguments")
    shown = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False, default=str)
    call_id = call.get("id") if isinstance(call.get("id"), str) else None
    return call_step(name, arguments, tool, f"{name} {shown}"), call_id


def step_from_call_text(payload: str, tool: str) -> Step:
    """The body of a `<tool_call>...</tool_call>` block: `{"name": ..., "arguments": ...}`."""
    try:
        obj = parse_json(payload)
    except ValueError:
        return invalid_step(payload, "unparsable tool call")
    if not isinstance(obj, dict):
        return invalid_step(payload, "tool call is not an object")
    return call_step(obj.get("name"), obj.get("arguments"), tool, payload)
