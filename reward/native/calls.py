"""One tool call the policy made, as a step: a terminal command, or a malformed call kept as behaviour.

A malformed call (unparsable JSON or arguments, another tool, arguments that are not an object, no
command, an unclosed `<tool_call>`) is never a reason to reject a request: it is kept as a step with
`invalid` saying why, shown to the judge, and never counted as a command.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from reward.core.trajectory import Step, Trajectory, parse_json

MAX_RAW_CALL = 2000  # a malformed call is shown to the judge; its raw text is capped
UNKNOWN_TOOL = "unknown tool"  # the reason of a call to no terminal tool (see unmatched_tools)
_UNKNOWN = re.compile(re.escape(UNKNOWN_TOOL) + r" ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
# argv of a shell running one script (Codex `shell`: ["bash", "-lc", "cd src && make"]): the script is the command
_SHELLS = {"bash", "sh", "zsh", "dash", "/bin/bash", "/bin/sh", "/usr/bin/bash", "/bin/zsh"}
_SCRIPT_FLAGS = {"-c", "-lc", "-cl", "-ic"}


def _raw(text: str) -> str:
    return text if len(text) <= MAX_RAW_CALL else text[:MAX_RAW_CALL] + "…"


def invalid_step(raw: str, why: str) -> Step:
    return Step(command=_raw(raw.strip()), invalid=why)


def _tools_text(tools: Sequence[str]) -> str:
    shown = ", ".join(repr(t) for t in tools[:4])
    return shown + (f" and {len(tools) - 4} more" if len(tools) > 4 else "")


def _command_of(args: dict[str, Any]) -> str | None:
    """The command in a terminal tool's arguments: `command` (most harnesses) or `cmd` (Codex unified exec,
    R2E-Gym), a string or an argv list (Codex `shell`)."""
    value = args.get("command", args.get("cmd"))
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        if len(value) == 3 and value[0] in _SHELLS and value[1] in _SCRIPT_FLAGS:
            return value[2]
        return shlex.join(value)
    return value if isinstance(value, str) else None


def call_step(name: Any, arguments: Any, tools: Sequence[str], raw: str) -> Step:
    """A call given as a name and arguments (a JSON string or an object). `tools`: the terminal tool names."""
    if not isinstance(name, str) or name not in tools:
        return invalid_step(raw, f"{UNKNOWN_TOOL} {str(name)[:100]!r} (terminal tools: {_tools_text(tools)})")
    args = arguments
    if isinstance(args, str):
        try:
            args = parse_json(args)  # strict, and deep nesting or huge numbers are ValueError too
        except ValueError:
            return invalid_step(raw, "unparsable arguments")
    if not isinstance(args, dict):
        return invalid_step(raw, "arguments are not an object")
    command = _command_of(args)
    if command is None or not command.strip():
        return invalid_step(raw, "no command")
    return Step(command=command)


def step_from_openai_call(call: Any, tool: Sequence[str]) -> tuple[Step, str | None]:
    """An OpenAI `tool_calls` entry (`{"id", "function": {"name", "arguments"}}`) and its id."""
    if not isinstance(call, dict):
        return invalid_step(json.dumps(call, default=str), "tool call is not an object"), None
    fn: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else call
    name, arguments = fn.get("name"), fn.get("arguments")
    shown = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False, default=str)
    call_id = call.get("id") if isinstance(call.get("id"), str) else None
    return call_step(name, arguments, tool, f"{name} {shown}"), call_id


def step_from_call_text(payload: str, tool: Sequence[str]) -> Step:
    """The body of a `<tool_call>...</tool_call>` block: `{"name": ..., "arguments": ...}`."""
    try:
        obj = parse_json(payload)
    except ValueError:
        return invalid_step(payload, "unparsable tool call")
    if not isinstance(obj, dict):
        return invalid_step(payload, "tool call is not an object")
    return call_step(obj.get("name"), obj.get("arguments"), tool, payload)


def unmatched_tools(steps: Sequence[Step]) -> list[str] | None:
    """The tool names a rollout called when none of its calls was a terminal tool (None otherwise): a rollout
    penalised for "no commands" that did call tools was probably read with the wrong terminal tool name."""
    if not steps or any(s.invalid is None for s in steps):
        return None
    names = [m.group(1) for s in steps if s.invalid and (m := _UNKNOWN.match(s.invalid))]
    return list(dict.fromkeys(names)) or None


def tool_warnings(rollout: Trajectory) -> list[str] | None:
    """Loud, per rollout: tool calls were made and none named a terminal tool, so "no commands" (and a judge
    that sees no commands) may come from a tool-name mismatch rather than from the policy."""
    names = unmatched_tools(rollout.steps)
    if names is None:
        return None
    return [
        f"tool calls named no terminal tool (called {', '.join(names[:5])}); if one of these is the harness's "
        "terminal tool, declare it: terminal_tool / --terminal-tool / REWARD_TERMINAL_TOOL"
    ]
