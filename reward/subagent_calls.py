"""Cut the inputs of the paper's Figure 7 evaluation judge (rubric `response_quality`) out of a saved
main-agent run: for every call of the subagent tool, the main agent's context before the call, the call's
query, the subagent's response and the turns that followed it.

A run is a list of OpenAI chat-completions messages. A *turn* is one assistant message with the tool
results and user messages that follow it, up to the next assistant message. The run came from a policy,
so nothing in it is trusted to be well formed: a malformed call or message is rendered as it is, never an
error.

    python -m reward.subagent_calls MAIN_AGENT.jsonl --tool execution_subagent --n-after 5 -o GROUPS.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from reward.clean import clean_output, truncate
from reward.native.exitcode import content_text
from reward.trajectory import parse_json

Message = dict[str, Any]
GROUP_FIELDS = ("system_prompt", "problem_statement", "trajectory", "subagent_query", "n_after")
ROLLOUT_FIELDS = ("subagent_response", "trajectory_after")


def cap(text: str, limit: int) -> str:
    """Cut in the middle, keeping head and tail: a command's outcome is usually at the end of its output."""
    return truncate(text, limit - limit // 2, limit // 2)


def _text(message: Message) -> str:
    return clean_output(content_text(message.get("content")))


def _calls(message: Message) -> list[dict[str, Any]]:
    calls = message.get("tool_calls") if message.get("role") == "assistant" else None
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _function(call: dict[str, Any]) -> tuple[str, Any]:
    fn = call.get("function")
    fn = fn if isinstance(fn, dict) else {}
    return str(fn.get("name", "")), fn.get("arguments", "")


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def query_of(arguments: Any, key: str) -> str:
    """The call's `key` argument; the raw arguments when they are not a JSON object holding it."""
    parsed = arguments
    if isinstance(arguments, str):
        try:
            parsed = parse_json(arguments)
        except ValueError:
            return arguments
    if isinstance(parsed, dict) and key in parsed:
        value = parsed[key]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _arguments_text(arguments)


class _Renderer:
    """Renders messages as plain text, naming each tool result after the call it answers."""

    def __init__(self, messages: list[Message], limit: int) -> None:
        self.limit = limit
        self.tool_of = {c.get("id"): _function(c)[0] for m in messages for c in _calls(m) if c.get("id")}

    def message(self, m: Message, skip_call: object = None) -> str:
        role = str(m.get("role", "?"))
        if role == "tool":
            name = self.tool_of.get(m.get("tool_call_id")) or str(m.get("name") or "")
            return f"[tool {name}] {cap(_text(m), self.limit)}" if name else f"[tool] {cap(_text(m), self.limit)}"
        calls = [_function(c) for c in _calls(m) if c is not skip_call]
        text = cap(_text(m), self.limit)
        if not text and not calls:
            return ""
        lines = [f"[{role}] {text}".rstrip()]
        lines += [f"{name}({cap(_arguments_text(arguments), self.limit)})" for name, arguments in calls]
        return "\n".join(lines)

    def all(self, messages: list[Message]) -> str:
        return "\n\n".join(part for part in map(self.message, messages) if part)


def _turn_starts(messages: list[Message]) -> list[int]:
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant"]


def cut_subagent_calls(
    messages: list[Any],
    tool_name: str = "execution_subagent",
    n_after: int = 5,
    query_arg: str = "query",
    max_chars: int = 16_000,
    system_chars: int = 2_000,
    message_chars: int = 2_000,
) -> list[dict[str, Any]]:
    """One record of the Figure 7 fields per call of `tool_name`, in call order.

    `max_chars` caps each field, `system_chars` the system-prompt excerpt and `message_chars` each message
    inside a rendered trajectory; all are cut in the middle with a marker.
    """
    if n_after < 0:
        raise ValueError("n_after must be >= 0")
    msgs: list[Message] = [m for m in messages if isinstance(m, dict)]
    first_system = next((i for i, m in enumerate(msgs) if m.get("role") == "system"), None)
    first_user = next((i for i, m in enumerate(msgs) if m.get("role") == "user"), None)
    system_prompt = cap(_text(msgs[first_system]), system_chars) if first_system is not None else ""
    problem = cap(_text(msgs[first_user]), max_chars) if first_user is not None else ""
    # Both are shown in their own sections; the trajectory does not repeat them.
    shown = [m for i, m in enumerate(msgs) if i not in (first_system, first_user)]
    render = _Renderer(shown, message_chars)
    starts = _turn_starts(shown)
    bounds = [*starts, len(shown)]

    records: list[dict[str, Any]] = []
    for k, start in enumerate(starts):
        turn_end = bounds[k + 1]
        for call in _calls(shown[start]):
            name, arguments = _function(call)
            if name != tool_name:
                continue
            call_id = call.get("id")
            answer = next(
                (
                    j
                    for j in range(start + 1, turn_end)
                    if call_id and shown[j].get("role") == "tool" and shown[j].get("tool_call_id") == call_id
                ),
                None,
            )
            # The calling message is shown without this call (its query has its own section); the rest of
            # its turn (other calls' results) opens the turns after, uncounted.
            before = render.all(shown[:start]) + "\n\n" + render.message(shown[start], skip_call=call)
            rest = [m for j, m in enumerate(shown[start + 1 : turn_end], start + 1) if j != answer]
            last = min(k + 1 + n_after, len(starts))
            after = render.all(rest + shown[turn_end : bounds[last]])
            records.append(
                {
                    "system_prompt": system_prompt,
                    "problem_statement": problem,
                    "trajectory": cap(before.strip(), max_chars),
                    "subagent_query": cap(clean_output(query_of(arguments, query_arg)), max_chars),
                    "subagent_response": cap(_text(shown[answer]), max_chars) if answer is not None else "",
                    "trajectory_after": cap(after.strip(), max_chars),
                    "n_after": last - (k + 1),
                }
            )
    return records


def _groups(run_id: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "group_id": f"{run_id}/{i}",
            "inputs": {f: r[f] for f in GROUP_FIELDS},
            "rollouts": [{"id": f"{run_id}/{i}", "inputs": {f: r[f] for f in ROLLOUT_FIELDS}}],
        }
        for i, r in enumerate(records)
    ]


def convert(lines: list[str], out: TextIO, err: TextIO, **options: Any) -> tuple[int, int, int]:
    """Writes one group per subagent call; returns (runs, calls, bad lines). Bad lines are skipped."""
    runs = calls = bad = 0
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            run_id, messages = data.get("id"), data.get("messages")
            if isinstance(run_id, bool) or not isinstance(run_id, str | int):
                raise ValueError("id: expected a string or an integer")
            if not isinstance(messages, list):
                raise ValueError("messages: expected a list of chat messages")
            if str(run_id) in seen:
                raise ValueError(f"id: duplicate run id {run_id!r}")
        except ValueError as exc:
            print(f"line {lineno}: {exc}", file=err)
            bad += 1
            continue
        seen.add(str(run_id))
        groups = _groups(str(run_id), cut_subagent_calls(messages, **options))
        for group in groups:
            out.write(json.dumps(group, ensure_ascii=False) + "\n")
        runs, calls = runs + 1, calls + len(groups)
    return runs, calls, bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reward.subagent_calls", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="JSONL, one main-agent run per line: {\"id\": ..., \"messages\": [...]}")
    p.add_argument("--tool", default="execution_subagent", help="name of the subagent tool")
    p.add_argument("--n-after", type=int, default=5, help="assistant turns after the response to show")
    p.add_argument("--query-arg", default="query", help="the call argument that holds the query")
    p.add_argument("--max-chars", type=int, default=16_000, help="cap of each field (cut in the middle)")
    p.add_argument("-o", "--output", help="output JSONL of groups for `reward score` (default: stdout)")
    a = p.parse_args(argv)
    if a.n_after < 0 or a.max_chars < 1:
        p.error("--n-after must be >= 0 and --max-chars >= 1")
    # "\n" only: str.splitlines() would also split inside a message at U+2028, U+0085, ...
    with open(a.input, encoding="utf-8") as f:
        lines = f.read().split("\n")
    options = {"tool_name": a.tool, "n_after": a.n_after, "query_arg": a.query_arg, "max_chars": a.max_chars}
    out = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout  # noqa: SIM115
    try:
        runs, calls, bad = convert(lines, out, sys.stderr, **options)
    finally:
        if a.output:
            out.close()
    print(f"{runs} runs, {calls} subagent calls, {bad} bad lines", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
