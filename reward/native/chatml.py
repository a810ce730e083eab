"""Decoded Qwen3 / Hermes ChatML text -> the policy's turns.

Handles text decoded with special tokens kept (`<|im_start|>assistant\\n ... <|im_end|>`) or stripped
(`skip_special_tokens=True` leaves the bare role word on its own line: `\\nassistant\\n`), response only or
with the prompt, with or without `<think>` blocks. `<tool_call>`, `<tool_response>` and `<think>` are
ordinary added tokens in Qwen3, so they survive stripping.

Where the policy's part begins:
- a known prompt (`prompt`) is cut off exactly;
- otherwise, text that starts with a chat header holds the prompt, which ends at the last user turn that
  is not a tool response (system tool instructions and few-shot demonstrations are never the policy's
  steps); text that does not is the response alone, its first turn the assistant's.

Inside the policy's part a turn boundary is an assistant header or a tool turn: a user / tool header
followed by `<tool_response>`. Role words elsewhere are the policy's own words, and never reach the final
answer (`assistant\\n` residue is consumed as a header). With stripped text a policy can type a whole fake
tool turn; the environment's turn comes after it, so only the last results before the next assistant turn
count (see turns.assemble). Keep special tokens, or give the prompt, for an exact cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reward.native.calls import invalid_step, step_from_call_text
from reward.native.turns import Call, Result, Turn, blocks, visible_text

_KEPT_HEADER = re.compile(r"<\|im_start\|>(system|user|assistant|tool)[^\S\n]*\n?")
# a stripped header: the role word on its own line, or glued to the end of a call / result when a harness
# wrote `</tool_call><|im_end|><|im_start|>assistant` without a newline
_LINE_HEADER = re.compile(
    r"(?:^|(?<=\n)|(?<=</tool_call>)|(?<=</tool_response>))(system|user|assistant|tool)[^\S\n]*\n"
)
_GAP = re.compile(r"(?:\s|<\|im_end\|>|<\|endoftext\|>)*")
_RESPONSE_END = re.compile(r"</tool_response>")
_RESPONSE_START = re.compile(r"\s*<tool_response>")
_TOOL_ROLES = ("user", "tool")


def _kept(text: str) -> bool:
    return "<|im_start|>" in text or "<|im_end|>" in text


def _header(text: str, pos: int, kept: bool) -> re.Match[str] | None:
    """A chat header starting exactly at `pos` (after any gap)."""
    pos = _GAP.match(text, pos).end()  # type: ignore[union-attr]
    return (_KEPT_HEADER if kept else _LINE_HEADER).match(text, pos)


def _is_tool_turn(text: str, header: re.Match[str]) -> bool:
    # matched in place: copying the rest of the text per header would be quadratic on hostile input
    return header.group(1) in _TOOL_ROLES and _RESPONSE_START.match(text, header.end()) is not None


def _prompt_end(text: str, kept: bool) -> int:
    """Where the policy's part of a full text starts: after the assistant header following the last user
    turn that is not a tool response (0 when the text holds no prompt)."""
    first = _header(text, 0, kept)
    if first is None:
        return 0
    pattern = _KEPT_HEADER if kept else _LINE_HEADER
    headers = list(pattern.finditer(text))
    queries = [h for h in headers if h.group(1) == "user" and not _is_tool_turn(text, h)]
    start = queries[-1].end() if queries else first.start()
    after = [h for h in headers if h.start() >= start and h.group(1) == "assistant"]
    return after[0].end() if after else len(text)


def _boundary(text: str, pos: int, kept: bool) -> re.Match[str] | None:
    """The next turn boundary in the policy's part: an assistant header or a tool turn."""
    pattern = _KEPT_HEADER if kept else _LINE_HEADER
    for h in pattern.finditer(text, pos):
        if kept or h.group(1) == "assistant" or _is_tool_turn(text, h):
            return h
    return None


def _tool_turn_end(text: str, pos: int, kept: bool) -> int:
    """The end of the environment's turn: the first `</tool_response>` followed by the end of the text or
    by the next header (so an output that itself prints `</tool_response>` does not end it)."""
    for m in _RESPONSE_END.finditer(text, pos):
        gap = _GAP.match(text, m.end()).end()  # type: ignore[union-attr]
        if gap == len(text) or _header(text, m.end(), kept) is not None:
            return m.end()
    return len(text)


def results_of(content: str) -> list[Result]:
    blocks = re.split(r"</tool_response>\s*<tool_response>", content.strip())
    out = []
    for block in blocks:
        body = block.removeprefix("<tool_response>").removesuffix("</tool_response>")
        # the chat template wraps each result in newlines: "<tool_response>\n...\n</tool_response>"
        out.append(Result(content=body.removeprefix("\n").removesuffix("\n")))
    return out


def assistant_turn(content: str, tool: Sequence[str]) -> Turn:
    """One assistant turn: its `<tool_call>` blocks (outside thinking) and its visible words. A
    `<tool_response>` typed by the policy is dropped: it is not the environment's."""
    bodies, outside, unclosed = blocks(visible_text_keep_calls(content), "<tool_call>", "</tool_call>")
    calls = [Call(step_from_call_text(body.strip(), tool)) for body in bodies]
    if unclosed is not None:  # generation cut off inside a call: kept as a malformed call
        calls.append(Call(invalid_step(unclosed, "unclosed <tool_call>")))
    _, words, _ = blocks("".join(outside), "<tool_response>", "</tool_response>")
    return Turn("assistant", calls=calls, text=visible_text("".join(words)))


def visible_text_keep_calls(content: str) -> str:
    # thinking removed first, so calls written while thinking are not calls
    return visible_text(content) if "<think>" in content or "</think>" in content else content


def turns_from_text(text: str, tool: Sequence[str], prompt: str | None = None) -> list[Turn]:
    kept = _kept(text)  # decided by the text itself: a kept-token prompt may come with a stripped response
    # the known prompt is cut exactly; a text that does not start with it is the response alone (slime),
    # unless it visibly starts with a prompt of its own
    pos = len(prompt) if prompt is not None and prompt and text.startswith(prompt) else _prompt_end(text, kept)
    turns: list[Turn] = []
    role = "assistant"
    while True:
        if role == "tool":
            end = _tool_turn_end(text, pos, kept)
            turns.append(Turn("tool", results=results_of(text[pos:end])))
            nxt = _header(text, end, kept)
            if nxt is None:
                nxt = _boundary(text, end, kept)
        else:
            nxt = _boundary(text, pos, kept)
            end = nxt.start() if nxt else len(text)
            chunk = text[pos:end]
            if role == "assistant" and (chunk.strip() or not turns):
                turns.append(assistant_turn(chunk, tool))
        if nxt is None:
            return turns
        pos = nxt.end()
        role = "tool" if _is_tool_turn(text, nxt) else ("assistant" if nxt.group(1) == "assistant" else "other")
