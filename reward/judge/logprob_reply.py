"""Logprobs on the wire (rubric judge.grade.logprobs): whether litellm passes them to a model's provider, and a
reply's `choices[0].logprobs.content` read into TokenLogprobs (reward.rubric.logprob_scores reads the scores)."""

from __future__ import annotations

import functools
import math
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
    """A field of a dict or of litellm's reply objects; None where there is none (or reading it fails)."""
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:  # a hostile or broken object: no such field
        return None


def _logprob(value: Any) -> float | None:
    """A logprob as a float: a number <= 0 (-inf is a probability of 0; a hair above 0 is rounding), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        lp = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return None if math.isnan(lp) or lp > 1e-6 else min(lp, 0.0)


def _token(t: Any) -> TokenLogprob | None:
    token, lp, top = _field(t, "token"), _logprob(_field(t, "logprob")), _field(t, "top_logprobs")
    if not isinstance(token, str) or lp is None or not isinstance(top, (list, tuple, type(None))):
        return None
    alts = []
    for a in top or ():
        text, alp = _field(a, "token"), _logprob(_field(a, "logprob"))
        if not isinstance(text, str) or alp is None:
            return None
        alts.append((text, alp))
    return TokenLogprob(token, lp, tuple(alts))


def token_logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    """The choice's `logprobs.content` as TokenLogprobs; None when absent or malformed in any way (a wrong
    type or shape anywhere, a logprob that is no number <= 0): the verdict then keeps its written
    values, marked. Never raises."""
    content = _field(_field(choice, "logprobs"), "content")
    if not isinstance(content, (list, tuple)) or not content:
        return None
    out = []
    for t in content:
        tok = _token(t)
        if tok is None:
            return None
        out.append(tok)
    return tuple(out)
