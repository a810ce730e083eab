"""Calls on a provider service tier (reward.rubric.service_tier): the start-up check that the judge's models
have the tier, and the loop that retries the tier's capacity 429s with back-off until its deadline, then
sends the call on the standard tier."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from reward.errors import ConfigError
from reward.judge.llm import litellm
from reward.judge.transport_errors import categorize
from reward.rubric.service_tier import ServiceTier

STANDARD = "default"  # what OpenAI calls the standard tier in a reply's `service_tier`
MAX_BACKOFF_S = 30.0


def tier_problem(model: str, tier: str) -> str | None:
    """Why `model` cannot be called on `tier`, or None. litellm prices each tier a model has
    (`input_cost_per_token_flex`): no price there, no such tier for this model (or provider)."""
    try:
        price = litellm.get_model_info(model).get(f"input_cost_per_token_{tier}")
    except Exception:  # a model litellm does not know: no tier it knows of either
        price = None
    if price is None:
        return (
            f"judge.service_tier {tier}: litellm knows no {tier} tier for {model} (OpenAI has one for some "
            "models, e.g. openai/o3, openai/gpt-5); remove judge.service_tier or choose such a model"
        )
    return None


def check_tier(tier: ServiceTier | None, models: list[str]) -> None:
    """Refuse to start when a judge model has no such tier: one line per model."""
    if tier is None:
        return
    problems = sorted({p for m in models if (p := tier_problem(m, tier.name)) is not None})
    if problems:
        raise ConfigError("; ".join(problems))


def served_tier(resp: Any, asked: str) -> str:
    """The tier that answered: what the provider says (OpenAI echoes `service_tier`), else the one asked."""
    tier = getattr(resp, "service_tier", None)
    return tier if isinstance(tier, str) and tier else asked


async def on_tier(
    tier: ServiceTier | None,
    call: Callable[[dict[str, Any]], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[Any, str | None]:
    """`call(extra_kwargs)` on `tier`: its 429s retried with back-off until the deadline, then once on the
    standard tier. Returns the answer and the tier that served it (None: no tier configured)."""
    if tier is None:
        return await call({}), None
    deadline = time.monotonic() + tier.deadline_s
    wait = tier.backoff_s
    while True:
        try:
            resp = await call({"service_tier": tier.name})
            return resp, served_tier(resp, tier.name)
        except Exception as exc:
            if categorize(exc) != "judge_rate_limited":
                raise
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await sleep(min(wait, left))
        wait = min(wait * 2, MAX_BACKOFF_S)
        if time.monotonic() >= deadline:
            break
    resp = await call({})  # the standard tier: the provider's default, so nothing to send
    return resp, served_tier(resp, STANDARD)
