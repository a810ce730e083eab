"""A judge behind the plan and verdict cache. The wrapper owns the cache key: a judgement is cached under the
request the judge is sent (messages, response format, model, sampling settings, seed) and who answers it
(`Judge.identity`), and under nothing else. Layered around any judge, as pydantic-ai wraps a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from reward.cache.disk import Store, cache_key
from reward.judge.base import Judge, JudgeSettings, Reply, Usage

# The cache's key kinds: one per judge role (the names predate the wrapper; keys stay what they were).
KINDS = {"condense": "plan", "grade": "verdict"}


class Judgement(Protocol):
    """A validated judge answer that can be kept: a plan, a verdict."""

    @property
    def fake(self) -> bool: ...

    def to_cache(self) -> dict[str, Any]: ...


J = TypeVar("J", bound=Judgement)


class CachedJudge:
    """`judgement()` answers from the store, or asks the wrapped judge (with its re-ask loop) once per key,
    across concurrent callers and, with Redis, across replicas."""

    def __init__(self, judge: Judge, store: Store) -> None:
        self.judge = judge
        self.store = store

    @property
    def settings(self) -> JudgeSettings:
        return self.judge.settings

    def request_key(
        self,
        role: str,
        messages: list[dict[str, str]],
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> str:
        """The cache key of one judge request: what is sent, to whom, with which sampling settings."""
        call = self.settings.condense if role == "condense" else self.settings.grade
        payload = {
            "judge": self.judge.identity,
            "model": call.model,
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
            "messages": messages,
            "response_format": response_format,
            # Sample i of K > 1 is its own request (seed i) and its own entry; one sample sends no seed.
            **({} if seed is None else {"seed": seed}),
            # Logprob scores ask for the score tokens' distributions: another request, another entry.
            **({"top_logprobs": call.top_logprobs} if call.top_logprobs else {}),
        }
        return cache_key(KINDS[role], payload)

    async def judgement(
        self,
        role: str,
        messages: list[dict[str, str]],
        validate: Callable[[Reply], J],
        load: Callable[[dict[str, Any]], J],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> J:
        """The validated judgement of one request: `validate` makes it from a reply (raising InvalidReply to
        re-ask), `load` rebuilds it from the cache and raises on a value it cannot trust (a planted or corrupt
        entry: a miss, asked again and overwritten). An invalid or failed judgement is never cached."""
        key = self.request_key(role, messages, response_format, seed)

        async def compute() -> dict[str, Any]:
            value, _ = await self.judge.ask(role, messages, validate, usage, response_format, seed)
            return value.to_cache()

        return load(await self.store.get_or_compute(key, compute, usage.cache, accept=load))
