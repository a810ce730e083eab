"""What `reward score --dry-run` reports: per judge role (`Stage`) the calls, cache hits, shared requests, tokens
and price, and over the run (`DryRun`) the groups, rollouts and the range of calls with `--samples auto`. Prices
are litellm's (`price`); a model it has no price for makes the cost unknown (None), never $0."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reward.core.trajectory import LineError

ESTIMATE = (
    "prompt tokens counted with tiktoken cl100k_base (+4 per message, +3 per request, + the response schema); "
    "completion tokens at each call's max_tokens (an upper bound), and a plan not yet condensed at the "
    "condensing max_tokens; judge failures, re-asks and retries are not included"
)


@dataclass
class Stage:
    """One judge role's requests: `calls` sent to the judge, `cached` answered by the cache, `shared` identical
    to another request of the run (the same call answers both)."""

    model: str | None
    calls: int = 0
    cached: int = 0
    shared: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price: tuple[float, float] | None = None  # USD per prompt token, per completion token

    @property
    def cost(self) -> float | None:
        if self.calls == 0:
            return 0.0
        if self.price is None:
            return None
        return self.prompt_tokens * self.price[0] + self.completion_tokens * self.price[1]

    def as_json(self) -> dict[str, Any]:
        price = None if self.price is None else {"prompt": self.price[0], "completion": self.price[1]}
        return {
            "model": self.model,
            "calls": self.calls,
            "cached": self.cached,
            "shared": self.shared,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost,
            "price_per_token": price,
        }


@dataclass
class DryRun:
    """What `reward score` would do with this input, output, rubric, judge and cache."""

    samples: int | str  # K, or "auto"
    resample_condense: bool
    stages: dict[str, Stage]
    max_samples: int | None = None  # with auto
    extra_max: int = 0  # with auto: the most judge calls it may add to `calls` (cached or not)
    groups: int = 0  # to score
    done: int = 0  # already in the output (skipped)
    rollouts: int = 0  # in the groups to score
    penalized: int = 0
    judged: int = 0  # rollouts that need a judgement
    errors: int = 0  # rollouts whose request cannot be built: an error before any call
    invalid: list[LineError] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.stages.values())

    @property
    def cost(self) -> float | None:
        costs = [s.cost for s in self.stages.values()]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def as_json(self) -> dict[str, Any]:
        total = {
            k: sum(getattr(s, k) for s in self.stages.values())
            for k in ("calls", "cached", "shared", "prompt_tokens", "completion_tokens")
        }
        return {
            "dry_run": True,
            "samples": self.samples,
            "resample_condense": self.resample_condense,
            "groups": {"to_score": self.groups, "already_done": self.done, "invalid_lines": len(self.invalid)},
            "rollouts": {
                "to_score": self.rollouts,
                "penalized": self.penalized,
                "to_judge": self.judged,
                "errors": self.errors,
            },
            "stages": {name: s.as_json() for name, s in self.stages.items()},
            "total": {**total, "cost_usd": self.cost},
            **(
                {
                    "max_samples": self.max_samples,
                    "calls_range": {"min": self.calls, "max": self.calls + self.extra_max},
                }
                if self.samples == "auto"
                else {}
            ),
            "estimate": ESTIMATE,
        }


def price(model: str) -> tuple[float, float] | None:
    """litellm's price of `model` per prompt and completion token; None when it has none (or a zero one)."""
    from reward.judge.llm import token_price  # litellm only once a price is asked for

    return token_price(model)
