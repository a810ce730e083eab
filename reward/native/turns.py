"""The canonical form every native rollout is reduced to: the policy's turns and the environment's turns.

Both parsers (OpenAI messages, ChatML text) produce a list of `Turn`s covering only the policy's part of
the conversation (the prompt cut off). `assemble` then pairs each call with what the environment answered
in the tool turns that follow it, before the next assistant turn, and takes the final answer from the last
assistant turn. Text the policy wrote in its own turn (a `<tool_response>` it typed) is never an output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from reward.core.trajectory import Step
from reward.native.exitcode import parse_tool_result
from reward.settings import DEFAULT_EXIT_CODE

# Special tokens of ChatML-family templates (<|im_start|>, <|im_end|>, <|endoftext|>, <|fim_pad|>, ...).
SPECIAL = re.compile(r"<\|[a-z][a-z0-9_]{1,40}\|>")


@dataclass
class Call:
    step: Step
    id: str | None = None


@dataclass
class Result:
    content: Any
    exit_code: Any = None
    call_id: str | None = None


@dataclass
class Turn:
    role: Literal["assistant", "tool"]
    calls: list[Call] = field(default_factory=list)
    text: str = ""  # assistant: what it wrote outside thinking and calls
    results: list[Result] = field(default_factory=list)


def blocks(text: str, open_: str, close: str) -> tuple[list[str], list[str], str | None]:
    """Split `text` into the bodies of `open_ ... close` blocks and the text between them, in one pass (a
    lazy regex is quadratic on many unclosed openers). Returns (bodies, outside parts, unclosed tail)."""
    bodies: list[str] = []
    outside: list[str] = []
    pos = 0
    while True:
        start = text.find(open_, pos)
        if start < 0:
            outside.append(text[pos:])
            return bodies, outside, None
        end = text.find(close, start + len(open_))
        outside.append(text[pos:start])
        if end < 0:
            return bodies, outside, text[start + len(open_) :]
        bodies.append(text[start + len(open_) : end])
        pos = end + len(close)


def visible_text(text: str) -> str:
    """An assistant turn's words without thinking or chat-template tokens."""
    head, sep, tail = text.partition("</think>")
    if sep and "<think>" not in head:
        # the generation prompt opened the thinking block: everything up to its end is thinking
        text = tail
    _, outside, _ = blocks(text, "<think>", "</think>")  # an unclosed <think>: the rest is thinking
    return SPECIAL.sub("", "".join(outside)).strip()


def _attach(steps: list[Step], first: int, ids: dict[str, int], results: list[Result], conv: tuple[str, ...]) -> None:
    open_ = list(range(first, len(steps)))
    rest: list[Result] = []
    for r in results:
        index = ids.get(r.call_id or "")
        if index is not None and index in open_:
            open_.remove(index)
            steps[index] = _answered(steps[index], r, conv)
        else:
            rest.append(r)
    # Without ids, results answer the calls in order. Only the last ones count: anything before them
    # in a stripped text may be a tool turn the policy typed itself.
    rest = rest[-len(open_) :] if open_ else []
    for index, r in zip(open_, rest, strict=False):
        steps[index] = _answered(steps[index], r, conv)


def _answered(step: Step, result: Result, conv: tuple[str, ...]) -> Step:
    output, code = parse_tool_result(result.content, result.exit_code, conv)
    return step.model_copy(update={"output": output, "exit_code": code})


def assemble(turns: list[Turn], convention: tuple[str, ...] = DEFAULT_EXIT_CODE) -> tuple[list[Step], str]:
    """Steps and final answer of the policy's turns."""
    steps: list[Step] = []
    final = ""
    i = 0
    while i < len(turns):
        turn = turns[i]
        i += 1
        if turn.role != "assistant":
            continue  # a tool turn no call of the policy asked for: not evidence of anything
        first = len(steps)
        ids: dict[str, int] = {}
        for call in turn.calls:
            if call.id is not None:
                ids[call.id] = len(steps)
            steps.append(call.step)
        final = turn.text
        results: list[Result] = []
        while i < len(turns) and turns[i].role == "tool":
            results.extend(turns[i].results)
            i += 1
        _attach(steps, first, ids, results, convention)
    return steps, final
