"""The conventions of native rollouts: which tool calls are terminal commands, and where a tool result
writes its exit code. reward.native reads them; reward.settings validates the variables that declare them.
Pure Python, no imports beyond typing: the trainer-side client imports it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

# The terminal tools of the harnesses people train in (tool name: harness), recognised when nothing else is
# declared, so "no commands" never comes from a name mismatch. Exact names: `Bash` is Claude Code's.
TERMINAL_TOOL_SURVEY: dict[str, str] = {
    "run_in_terminal": "VS Code Copilot agent (the paper's subagent)",
    "bash": "Anthropic bash tool, SWE-agent, TRL HarborBashEnv, verifiers BashHarness",
    "Bash": "Claude Code",
    "terminal": "OpenHands agent SDK",
    "execute_bash": "OpenHands CodeAct, R2E-Gym / DeepSWE",
    "shell": "Codex CLI (argv list), OpenAI Agents SDK",
    "exec_command": "Codex CLI unified exec (`cmd`)",
    "execute_command": "Cline, Roo Code",
    "run_shell_command": "Gemini CLI, Qwen Code",
    "run_terminal_cmd": "Cursor",
    "run_command": "generic shell MCP servers",
}
DEFAULT_TERMINAL_TOOLS: tuple[str, ...] = tuple(TERMINAL_TOOL_SURVEY)
MAX_TOOL_NAME = 200
Place = Literal["json", "python_dict", "first_line", "last_line"]
PLACES: tuple[str, ...] = get_args(Place)
DEFAULT_EXIT_CODE: tuple[str, ...] = ("json", "python_dict", "last_line")


def parse_convention(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """A declared convention: comma-separated places, in the order they are tried."""
    if value is None:
        return DEFAULT_EXIT_CODE
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else [str(p).strip() for p in value]
    parts = [p for p in parts if p]
    bad = [p for p in parts if p not in PLACES]
    if bad or not parts:
        raise ValueError(f"exit-code convention: unknown place(s) {bad or parts!r}; use some of {', '.join(PLACES)}")
    return tuple(parts)


def parse_tools(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Declared terminal tool names: a name, comma-separated names or a list; None: the surveyed defaults.
    Declared names are matched exactly and replace the defaults (a harness's own name is its only tool)."""
    if value is None:
        return DEFAULT_TERMINAL_TOOLS
    parts = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(p.strip() for p in parts if isinstance(p, str) and p.strip()))
    bad = [p for p in parts if not isinstance(p, str)]
    if bad or not names:
        raise ValueError(f"terminal tool: give one or more tool names, got {value!r}")
    long = [n for n in names if len(n) > MAX_TOOL_NAME]
    if long:
        raise ValueError(f"terminal tool: a name is at most {MAX_TOOL_NAME} characters, got {long[0][:40]!r}...")
    return names
