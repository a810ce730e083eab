"""What a judge is to the scorer: the `Judge` base class, its settings and reply types, and the re-ask loop.

Two judges implement it: `reward.judge.litellm_judge.LiteLLMJudge` (litellm, the network seam) and
`reward.judge.fake.in_process.InProcessFakeJudge` (the fake judge without sockets, for logic tests). Invalid content
(a verdict that fails validation, an empty reply, a refusal) is re-asked with the validation error here,
by tenacity, whichever judge answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from reward.cache.disk import CacheStats
from reward.errors import RewardError
from reward.rubric.logprob_scores import TokenLogprob
from reward.rubric.service_tier import ServiceTier

T = TypeVar("T")

# The fake judges answer with this system_fingerprint: their replies are marked fake whatever the model name.
FAKE_FINGERPRINT = "reward-fake-judge"


@dataclass(frozen=True)
class CallSettings:
    model: str
    temperature: float
    max_tokens: int
    # grade: alternatives per token asked for (`logprobs` + `top_logprobs`, rubric judge.grade.logprobs); 0: none.
    # Sent only where litellm says the provider takes them; part of the cache key when set.
    top_logprobs: int = 0


@dataclass(frozen=True)
class JudgeSettings:
    condense: CallSettings
    grade: CallSettings
    api_base: str | None = None
    api_key: str | None = None
    timeout_s: float = 120.0
    num_retries: int = 3
    max_reasks: int = 2
    concurrency: int = 64
    samples: int = 1  # verdicts per rollout (judge noise); sample 0 sends no seed (the K = 1 request), i seed i
    resample_condense: bool = False  # with samples > 1 (or auto), condense each sample anew too
    # `--samples auto`: `samples` is 1 and a group's unsure rollouts get more, up to max_samples each
    # (reward.rubric.adaptive); None: a fixed K.
    max_samples: int | None = None
    fake: bool = False  # the built-in fake judge (its replies are marked fake whatever model name is used)
    service_tier: ServiceTier | None = None  # rubric judge.service_tier: e.g. OpenAI flex (reward.judge.tiers)


@dataclass
class Usage:
    calls: Counter[str] = field(default_factory=Counter)  # per role: condense / grade
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache (included in prompt_tokens)
    cost: float = 0.0
    cost_known: bool = True
    hedged: int = 0  # duplicate calls sent by hedging (answered or cancelled), included in calls
    # With judge.service_tier: calls and cost by the tier that answered them ("flex", "default")
    tier_calls: dict[str, int] = field(default_factory=dict)
    tier_cost: dict[str, float] = field(default_factory=dict)
    cache: CacheStats = field(default_factory=CacheStats)

    def add(self, other: Usage) -> None:
        """Fold another's counts into these (a group's own usage into its request's)."""
        self.calls.update(other.calls)
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.cost += other.cost
        self.cost_known = self.cost_known and other.cost_known
        self.hedged += other.hedged
        for tier, n in other.tier_calls.items():
            self.count_tier(tier, other.tier_cost.get(tier, 0.0), n)
        self.cache.hits += other.cache.hits
        self.cache.coalesced += other.cache.coalesced
        self.cache.misses += other.cache.misses

    def count_tier(self, tier: str, cost: float, calls: int = 1) -> None:
        self.tier_calls[tier] = self.tier_calls.get(tier, 0) + calls
        self.tier_cost[tier] = self.tier_cost.get(tier, 0.0) + cost


class JudgeError(RewardError):
    """A judge call that produced no judgement: `category` (judge_timeout, judge_auth, ...) and `message`."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(f"{category}: {message}")
        self.category = category
        self.message = message


class InvalidReply(JudgeError):
    """Content that can be re-asked: the caller's validator raises it with the reason."""


@dataclass(frozen=True)
class Reply:
    content: str
    fake: bool
    finish_reason: str | None = None  # "length": cut at the token limit
    # The content's tokens with their alternatives, when logprobs were asked for and the provider gave them.
    logprobs: tuple[TokenLogprob, ...] | None = None


# The `validate` of the ask in progress: the calls inside it run in its context (reward.judge.seen_replies)
_asking: ContextVar[Callable[[Reply], Any] | None] = ContextVar("reward_asking", default=None)


def asking() -> Callable[[Reply], Any] | None:
    """The validator of the `Judge.ask` in progress, if any."""
    return _asking.get()


class Judge(ABC):
    """A judge the scorer can ask: implementations give `complete` (one call), the re-ask loop is `ask`.
    `identity` says who answers (part of every cache key: one judge's plans and verdicts are never served
    as another's, a fake one's never as a real one's)."""

    settings: JudgeSettings
    usage: Usage
    identity: dict[str, Any]

    @abstractmethod
    async def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Reply:
        """One judge call; raises JudgeError, or InvalidReply for content that can be re-asked."""

    async def aclose(self) -> None:
        """Release what this judge holds on the running event loop (connections). A loop that ends with
        connections open leaves their sockets open for good: call it before the loop ends."""
        return None  # a judge that holds nothing (the fakes)

    async def ask(
        self,
        role: str,
        messages: list[dict[str, str]],
        validate: Callable[[Reply], T],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> tuple[T, bool]:
        """Call the judge and validate its reply; an invalid reply is re-asked with the reason, up to
        `max_reasks` times. Returns the validated value and whether the judge was the fake one."""
        token = _asking.set(validate)  # a reply a client refuses before validation still reaches it (seen_replies)
        try:
            conversation = list(messages)
            retrying = AsyncRetrying(
                stop=stop_after_attempt(1 + self.settings.max_reasks),
                retry=retry_if_exception_type(InvalidReply),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    reply = await self.complete(role, conversation, usage, response_format, seed)
                    try:
                        return validate(reply), reply.fake
                    except InvalidReply as exc:
                        conversation = [
                            *messages,
                            {"role": "assistant", "content": reply.content[:20000]},
                            {
                                "role": "user",
                                "content": f"Your reply was invalid: {exc.message}. "
                                "Reply again, correcting this, with nothing else.",
                            },
                        ]
                        raise
            raise AssertionError("unreachable: tenacity reraises the last error")
        finally:
            _asking.reset(token)
