"""Prompt-cache hints per provider: what a judge call needs so a group's shared prompt prefix is served from the
provider's prompt cache (cheaper, faster), without changing what the judge is asked."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from reward.rubric.prompts import group_prefix_chars

if TYPE_CHECKING:
    from reward.judge.llm import Route


def with_cache_hints(
    route: Route, role: str, messages: list[dict[str, str]], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """What each provider needs so a group's shared prompt prefix (system prompt, rubric, query, reference
    plan: everything before the candidate) is served from its prompt cache. OpenAI caches prefixes by
    itself; `prompt_cache_key` (one per group prefix) keeps a group's calls on the same cache. Anthropic
    caches only blocks marked `cache_control`. vLLM's prefix caching needs only the order."""
    if route.kind not in ("openai", "anthropic") or role != "grade" or len(messages) < 2:
        return messages
    system, user = messages[0], messages[1]
    if system.get("role") != "system" or user.get("role") != "user":
        return messages
    split = group_prefix_chars(user["content"])
    if route.kind == "openai":
        shared = system["content"] + "\0" + user["content"][:split]
        params["prompt_cache_key"] = "reward-" + hashlib.sha256(shared.encode()).hexdigest()[:32]
        return messages
    mark = {"type": "ephemeral"}
    head, rest = user["content"][:split], user["content"][split:]
    user_blocks: list[dict[str, Any]] = [{"type": "text", "text": rest}] if rest else []
    if head:
        user_blocks.insert(0, {"type": "text", "text": head, "cache_control": mark})
    return [
        {"role": "system", "content": [{"type": "text", "text": system["content"], "cache_control": mark}]},
        {"role": "user", "content": user_blocks},
        *messages[2:],
    ]
