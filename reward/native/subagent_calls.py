"""Cut the inputs of the paper's Figure 7 evaluation judge (rubric `response_quality`) out of saved main-agent
runs (OpenAI chat messages): per subagent call, the context before it, its query and response, the turns after.

A *turn* is an assistant message with the tool results and user messages after it, up to the next assistant
message. Runs come from a policy: a malformed call or message is rendered as it is, never an error.

    python -m reward.subagent_calls MAIN_AGENT.jsonl --tool execution_subagent --n-after 5 -o GROUPS.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any, TextIO

from reward.core.clean import clean_output, truncate
from reward.core.trajectory import parse_json
from reward.native.exitcode import content_text

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
    fn = call["function"] if isinstance(call.get("function"), dict) else {}
    return str(fn.get("name", "")), fn.get("arguments", "")


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None  # a policy may write a list as an id


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def query_of(arguments: Any, key: str) -> str:
    """The call's `key` argument; the raw arguments when they are not a JSON object holding it."""
    try:
        parsed = parse_json(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = None
    return _arguments_text(parsed[key] if isinstance(parsed, dict) and key in parsed else arguments)


class _Renderer:  # messages as plain text, each tool result named after the call it answers
    def __init__(self, messages: list[Message], limit: int) -> None:
        self.limit = limit
        self.tool_of = {_id(c.get("id")): _function(c)[0] for m in messages for c in _calls(m)}
        self.tool_of.pop(None, None)

    def message(self, m: Message, skip_call: object = None) -> str:
        role = str(m.get("role", "?"))
        text = cap(_text(m), self.limit)
        if role == "tool":
            name = self.tool_of.get(_id(m.get("tool_call_id"))) or str(m.get("name") or "")
            return f"[tool {name}] {text}".rstrip() if name else f"[tool] {text}".rstrip()
        calls = [_function(c) for c in _calls(m) if c is not skip_call]
        lines = [text] if text else []
        lines += [f"{name}({cap(_arguments_text(arguments), self.limit)})" for name, arguments in calls]
        return f"[{role}] " + "\n".join(lines) if lines else ""

    def all(self, messages: list[Message]) -> str:
        return "\n\n".join(part for part in map(self.message, messages) if part)


def cut_subagent_calls(
    messages: list[Any],
    tool_name: str = "execution_subagent",
    n_after: int = 5,
    query_arg: str = "query",
    max_chars: int = 16_000,
    system_chars: int = 2_000,
    message_chars: int = 2_000,
) -> list[dict[str, Any]]:
    """The Figure 7 fields of each call of `tool_name`, in call order. `max_chars` caps each field,
    `system_chars` the system prompt (an excerpt), `message_chars` each message of a rendered trajectory."""
    if n_after < 0:
        raise ValueError("n_after must be >= 0")
    msgs: list[Message] = [m for m in messages if isinstance(m, dict)]
    first_system = next((i for i, m in enumerate(msgs) if m.get("role") == "system"), None)
    first_user = next((i for i, m in enumerate(msgs) if m.get("role") == "user"), None)
    base = {
        "system_prompt": cap(_text(msgs[first_system]), system_chars) if first_system is not None else "",
        "problem_statement": cap(_text(msgs[first_user]), max_chars) if first_user is not None else "",
    }
    # Both are shown in their own sections; the trajectory does not repeat them.
    shown = [m for i, m in enumerate(msgs) if i not in (first_system, first_user)]
    render = _Renderer(shown, message_chars)
    starts = [i for i, m in enumerate(shown) if m.get("role") == "assistant"]
    bounds = [*starts, len(shown)]

    records: list[dict[str, Any]] = []
    for k, start in enumerate(starts):
        turn_end = bounds[k + 1]
        answers = {
            _id(m.get("tool_call_id")): j
            for j, m in reversed(list(enumerate(shown[start + 1 : turn_end], start + 1)))
            if m.get("role") == "tool"
        }
        answers.pop(None, None)  # the first answer to each id wins; a result without an id answers nothing
        for call in _calls(shown[start]):
            name, arguments = _function(call)
            if name != tool_name:
                continue
            answer = answers.get(_id(call.get("id")))
            # The calling message is shown without this call (its query has its own section); the rest of
            # its turn (other calls' results) opens the turns after, uncounted.
            before = render.all(shown[:start]) + "\n\n" + render.message(shown[start], skip_call=call)
            rest = [m for j, m in enumerate(shown[start + 1 : turn_end], start + 1) if j != answer]
            last = min(k + 1 + n_after, len(starts))
            after = render.all(rest + shown[turn_end : bounds[last]])
            records.append(
                {
                    **base,
                    "trajectory": cap(before.strip(), max_chars),
                    "subagent_query": cap(clean_output(query_of(arguments, query_arg)), max_chars),
                    "subagent_response": cap(_text(shown[answer]), max_chars) if answer is not None else "",
                    "trajectory_after": cap(after.strip(), max_chars),
                    "n_after": last - (k + 1),
                }
            )
    return records


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
        records = cut_subagent_calls(messages, **options)
        for i, r in enumerate(records):
            gid = f"{run_id}/{i}"
            rollout = {"id": gid, "inputs": {f: r[f] for f in ROLLOUT_FIELDS}}
            group = {"group_id": gid, "inputs": {f: r[f] for f in GROUP_FIELDS}, "rollouts": [rollout]}
            out.write(json.dumps(group, ensure_ascii=False) + "\n")
        runs, calls = runs + 1, calls + len(records)
    return runs, calls, bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reward.subagent_calls", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help='JSONL, one main-agent run per line: {"id": ..., "messages": [...]}')
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
    with open(a.output, "w", encoding="utf-8") if a.output else contextlib.nullcontext(sys.stdout) as out:
        runs, calls, bad = convert(lines, out, sys.stderr, **options)
    print(f"{runs} runs, {calls} subagent calls, {bad} bad lines", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
