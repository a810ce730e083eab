"""OpenAI Responses-API items (NeMo Gym's rollouts) -> the policy's turns.

NeMo Gym hands a resources server the request's `input` items and the `response.output` items of the whole
episode: `message` items (role user / system / developer / assistant; content a string or `input_text` /
`output_text` / `refusal` parts), `function_call` items (`name`, `arguments` as a JSON string, `call_id`),
`function_call_output` items (`call_id`, `output` as a string or content parts) and `reasoning` items.

Trust, as for chat messages (reward.native.messages):
- the policy's part starts after the last user message, so calls in a prompt's demonstration are never its;
- outputs come only from `function_call_output` items, which the harness writes; a `<tool_response>` the
  policy typed in its own message is dropped from its words and never read as an output;
- `reasoning` items are thinking: never the final answer, never evidence;
- a malformed item (not an object, a call without a name, another item type that acts, such as an
  `mcp_call`) is kept as an invalid step, shown to the judge and never counted as a command. Nothing an
  item holds is a reason to reject the request or to raise.

Consecutive assistant items (one model response: its messages and its calls) form one turn; the
`function_call_output` items after them form the environment's turn, paired by `call_id`.
"""

from __future__ import annotations

import json
from typing import Any

from reward.native.calls import call_step, invalid_step
from reward.native.chatml import assistant_turn
from reward.native.turns import Call, Result, Turn, visible_text

_TEXT_PARTS = ("output_text", "input_text", "text", "summary_text")
# Items by which a policy acts through something other than a function tool: behaviour, never a command.
_OTHER_CALLS = frozenset(
    {
        "mcp_call",
        "custom_tool_call",
        "local_shell_call",
        "shell_call",
        "computer_call",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "apply_patch_call",
        "tool_search_call",
    }
)


_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning"}) | _OTHER_CALLS


def is_responses(items: list[Any]) -> bool:
    """A list in the Responses-API item form (chat-completions messages carry no item `type`)."""
    return any(isinstance(m, dict) and m.get("type") in _ITEM_TYPES for m in items)


def _shown(value: Any) -> str:
    """A value as text for the judge; never raises (deep nesting, a huge integer, a broken __str__)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except Exception:  # deep nesting, a huge integer, a __str__ that raises: shown by its type alone
        return f"<{type(value).__name__}>"


def _kind(item: dict[str, Any]) -> str:
    """The item's type; a typeless item with a role is a message (the Responses API's easy input form)."""
    kind = item.get("type")
    if isinstance(kind, str):
        return kind
    return "message" if kind is None and "role" in item else ""


def _is_user_message(item: Any) -> bool:
    return isinstance(item, dict) and _kind(item) == "message" and item.get("role") == "user"


def _content_text(content: Any) -> str:
    """A message's words: a string, or its text and refusal parts (an image or a file part has none)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            if part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
            elif part.get("type", "text") in _TEXT_PARTS and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "".join(texts)


def _output_text(output: Any) -> str:
    """A function_call_output's output: a string, or the text of its content parts."""
    if output is None or isinstance(output, str):
        return output or ""
    return _content_text(output) if isinstance(output, list) else _shown(output)


def _message_turn(content: str, tool: Any) -> Turn:
    """An assistant message: its words, and any `<tool_call>` it wrote as text (a call the server did not
    parse is still the policy's attempt, as in chat messages)."""
    if "<tool_call>" in content or "<tool_response>" in content:
        return assistant_turn(content, tool)
    return Turn("assistant", text=visible_text(content))


def _function_call(item: dict[str, Any], tool: Any) -> Call:
    name, arguments = item.get("name"), item.get("arguments")
    call_id = item.get("call_id") if isinstance(item.get("call_id"), str) else None
    raw = f"{_shown(name)} {_shown(arguments)}"
    if name is not None and not isinstance(name, str):
        name = _shown(name)  # matched as text (a list or a number is no tool's name) and shown safely
    return Call(call_step(name, arguments, tool, raw), call_id)


def _policy_part(items: list[Any]) -> list[Any]:
    start = 0
    for i, item in enumerate(items):
        if _is_user_message(item):
            start = i + 1
    return items[start:]


def turns_from_responses(items: list[Any], tool: Any) -> list[Turn]:
    """The policy's turns in Responses-API items (the request's input, then the response's output).
    `tool` goes to reward.native.calls.call_step as it is."""
    if not isinstance(items, list):
        return []
    turns: list[Turn] = []

    def assistant() -> Turn:
        if not turns or turns[-1].role != "assistant":
            turns.append(Turn("assistant"))
        return turns[-1]

    for item in _policy_part(items):
        if not isinstance(item, dict):
            assistant().calls.append(Call(invalid_step(_shown(item), "item is not an object")))
            continue
        kind = _kind(item)
        if kind == "message" and item.get("role") == "assistant":
            part = _message_turn(_content_text(item.get("content")), tool)
            turn = assistant()
            turn.calls.extend(part.calls)
            turn.text = "\n".join(t for t in (turn.text, part.text) if t)
        elif kind == "function_call":
            assistant().calls.append(_function_call(item, tool))
        elif kind == "function_call_output":
            call_id = item.get("call_id") if isinstance(item.get("call_id"), str) else None
            if not turns or turns[-1].role != "tool":
                turns.append(Turn("tool"))
            turns[-1].results.append(Result(_output_text(item.get("output")), None, call_id))
        elif kind in _OTHER_CALLS:
            why = f"{kind} item: not a call of a terminal function tool"
            assistant().calls.append(Call(invalid_step(_shown(item), why)))
        # reasoning (thinking), system / developer messages and items that do not act: not the policy's
        # words, not evidence
    return turns
