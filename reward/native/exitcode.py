"""Where a terminal tool's harness writes the exit code of a command, and reading it back.

The convention is declared, never guessed from both ends of an output: a command's own `echo "Exit code: 0"`
must not decide its exit code. It is an ordered list of places (REWARD_EXIT_CODE, comma-separated):

- `json`: the whole tool result is a JSON object with `exit_code` (or `exitCode`, `returncode`,
  `return_code`) and `output` (or `stdout` + `stderr`);
- `python_dict`: the same object as a Python dict repr (`str()` of a dict a TRL tool returns);
- `first_line` / `last_line`: a line `Exit code: N`, `exit_code=N`, `[exit code: N]`, `Command exited with
  code N`, `Process exited with code N`, `<exit_code>N</exit_code>` or `(empty output, rc=N)` (TRL's
  HarborBashEnv, whose only exit code is that line for a command with no output) (removed from the output).

Default: `json,python_dict,last_line`. An `exit_code` field on the tool message always wins.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from reward.core.trajectory import parse_json

# The convention is a setting (REWARD_EXIT_CODE): its places and parser live with the settings.
from reward.settings import DEFAULT_EXIT_CODE, setting

_EXIT_KEYS = ("exit_code", "exitCode", "returncode", "return_code")
_MAX_LITERAL = 1_000_000  # ast.literal_eval on a huge hostile string costs time and memory: skip it

_EXIT_LINE = re.compile(
    r"""^\s*(?:
        \[?\s*exit[ _-]?code\s*[:=]?\s*(?P<a>-?\d{1,9})\s*\]?
      | (?:command|process)\s+exited\s+with\s+(?:exit\s+)?code\s+(?P<b>-?\d{1,9})\.?
      | <exit_code>\s*(?P<c>-?\d{1,9})\s*</exit_code>
      | \(empty\ output,\ rc=(?P<d>-?\d{1,9})\)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def convention_from_env() -> tuple[str, ...]:
    """REWARD_EXIT_CODE, or the default; a bad value is a ConfigError naming the variable."""
    convention: tuple[str, ...] = setting("exit_code")
    return convention


def content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _code(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _from_object(obj: Any) -> tuple[str, int] | None:
    if not isinstance(obj, dict):
        return None
    for key in _EXIT_KEYS:
        code = _code(obj.get(key))
        if code is not None:
            output = content_text(obj.get("output", obj.get("stdout", "")))
            if obj.get("stderr"):
                output = f"{output}{content_text(obj['stderr'])}"
            return output, code
    return None


def _json_object(text: str) -> Any:
    try:
        return parse_json(text)
    except ValueError:
        return None


def _python_dict(text: str) -> Any:
    if len(text) > _MAX_LITERAL:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _from_line(text: str, last: bool) -> tuple[str, int] | None:
    lines = text.split("\n")
    index = -1 if last else 0
    # blank edges are skipped so "output\nExit code: 1\n" is recognised
    while lines and not lines[index].strip():
        lines.pop(index)
    if not lines:
        return None
    m = _EXIT_LINE.match(lines[index])
    if not m:
        return None
    lines.pop(index)
    return "\n".join(lines), int(m.group("a") or m.group("b") or m.group("c") or m.group("d"))


def parse_tool_result(
    content: Any, exit_code: Any = None, convention: tuple[str, ...] = DEFAULT_EXIT_CODE
) -> tuple[str, int | None]:
    """Output and exit code of one tool result, read where the convention says."""
    text = content_text(content)
    if _code(exit_code) is not None:
        return text, exit_code
    stripped = text.strip()
    is_object = stripped.startswith("{") and stripped.endswith("}")
    for place in convention:
        found: tuple[str, int] | None = None
        if place == "json" and is_object:
            found = _from_object(_json_object(stripped))
        elif place == "python_dict" and is_object:
            found = _from_object(_python_dict(stripped))
        elif place in ("first_line", "last_line"):
            found = _from_line(text, last=place == "last_line")
        if found is not None:
            return found
    return text, None
