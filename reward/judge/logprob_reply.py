"""Logprobs on the wire (rubric judge.grade.logprobs): whether litellm passes them to a model's provider, and a
reply's `choices[0].logprobs.content` read into TokenLogprobs (reward.rubric.logprob_scores reads the scores)."""

from __future__ import annotations

import functools
from typing import Any

from reward.judge.llm import litellm
from reward.rubric.logprob_scores import TokenLogprob


@functools.cache
def takes_logprobs(model: str) -> bool:
    """Does litellm pass `logprobs` and `top_logprobs` to this model's provider? Where not, they are not sent
    and the verdict falls back to its written values (marked `scores_from: written`)."""
    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
        params = litellm.get_supported_openai_params(model=name, custom_llm_provider=provider) or []
        return "logprobs" in params and "top_logprobs" in params
    except Exception:
        return False


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def token_logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    """The choice's `logprobs.content` as TokenLogprobs; None when absent or malformed (the fallback)."""
    content = _field(_field(choice, "logprobs"), "content")
    if not isinstance(content, list) or not content:
        return None
    out = []
    for t in content:
        token, lp = _field(t, "token"), _field(t, "logprob")
        if not isinstance(token, str) or not isinstance(lp, (int, float)):
            return None
        top = [(_field(a, "token"), _field(a, "logprob")) for a in _field(t, "top_logprobs") or []]
        alts = tuple((a, float(b)) for a, b in top if isinstance(a, str) and isinstance(b, (int, float)))
        out.append(TokenLogprob(token, float(lp), alts))
    return tuple(out)
