"""The judge client: every judge call goes through litellm, the project's only network seam.

Two failure loops, each in one place:
- transport errors (429 honouring Retry-After, 5xx, timeouts, connection errors) are retried in
  `LiteLLMJudge._acompletion` (or by litellm's Router when one is configured, never both); the provider
  SDK's own retries are switched off so they do not stack;
- invalid content (a verdict that fails validation, an empty reply, a refusal) is re-asked with the
  validation error by tenacity in `ask`.
Whatever is left becomes a JudgeError with a category; callers turn it into a per-rollout error.
Each call attempt first waits for its turn under the judge limits (reward/limits.py): a wait, not a retry.
An attempt that runs late may be hedged with one duplicate (reward/judge/hedge.py, REWARD_HEDGE_QUANTILE);
each call first reserves its worst-case cost under REWARD_MAX_COST or is refused (reward/judge/budget.py).

An optional `observer` sees every call start and end (role, outcome, seconds, its usage): the service's
metrics hang there, so this module never imports a metrics library and `reward score` pays nothing for them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from reward.cache.redis_store import cache_url
from reward.judge.base import (
    FAKE_FINGERPRINT,
    CallSettings,
    InvalidReply,
    Judge,
    JudgeError,
    JudgeSettings,
    Reply,
    Usage,
)
from reward.judge.budget import Budget, CallLedger
from reward.judge.cache_hints import with_cache_hints
from reward.judge.hedge import Hedger, Release, spare_slot
from reward.judge.limits import JudgeLimiter, namespace, role_limits, router_params
from reward.judge.llm import Route, choose_route, endpoint, has_price, inline_setup, install_inline_setup, litellm
from reward.judge.logprob_reply import takes_logprobs, token_logprobs
from reward.judge.seen_replies import rejected
from reward.judge.tiers import check_tier, on_tier
from reward.judge.transport_errors import categorize, headers, malformed_body, retryable
from reward.redaction import secrets_from_env, short_error
from reward.settings import setting

__all__ = ["FAKE_FINGERPRINT", "CallObserver", "JudgeError", "LiteLLMJudge", "Usage", "categorize", "has_price"]

T = TypeVar("T")


class CallObserver(Protocol):
    """Told of each judge call (transport retries and limiter waits included), e.g. to count it."""

    def started(self, role: str) -> None: ...

    def finished(self, role: str, outcome: str, seconds: float, usage: Usage | None) -> None:
        """`outcome`: "ok" (the provider answered; counted in Usage.calls), the error category of a call that
        failed, or "cancelled" (the request's deadline); `usage`: this call's tokens and cost, when it answered."""


def _digest(config: dict[str, Any]) -> str:
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def _router_endpoints(router_config: dict[str, Any]) -> list[list[str | None]]:
    """[model_name, model, endpoint] of each router deployment, `os.environ/NAME` references resolved."""
    found: list[list[str | None]] = []
    for d in router_config.get("model_list", []):
        if not isinstance(d, dict):
            continue
        params = d.get("litellm_params") or {}
        base = params.get("api_base")
        if isinstance(base, str) and base.startswith("os.environ/"):
            base = os.environ.get(base.removeprefix("os.environ/"))
        model = str(params.get("model", ""))
        found.append([str(d.get("model_name", "")), model, endpoint(model, base)])
    return found


def _raise_connection_limits(concurrency: int) -> None:
    """litellm's aiohttp transport allows 1000 connections, 500 per host (AIOHTTP_CONNECTOR_LIMIT*, read at
    import); calls allowed in flight beyond that would queue in the connector, unseen. Raise the limits to
    the configured concurrency before the transport is created (the environment still wins if larger)."""
    from litellm.llms.custom_httpx import http_handler

    for name in ("AIOHTTP_CONNECTOR_LIMIT", "AIOHTTP_CONNECTOR_LIMIT_PER_HOST"):
        current = getattr(http_handler, name, None)
        if isinstance(current, int) and 0 < current < concurrency:
            setattr(http_handler, name, concurrency)


@functools.cache
def _takes_seed(model: str) -> bool:
    """Does litellm pass `seed` to this model's provider? Where it would reject it (Anthropic, ...) the
    samples are still separate requests and separate cache entries, only not reproducible."""
    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
        return "seed" in (litellm.get_supported_openai_params(model=name, custom_llm_provider=provider) or [])
    except Exception:
        return False


class LiteLLMJudge(Judge):
    """Judge calls through litellm, with one transport-retry loop:

    - by default, `litellm.acompletion` per call, retried here with tenacity on transport errors, waiting
      what litellm's own `calculate_retry_after` says (Retry-After honoured, else exponential backoff);
    - with a Router config (several deployments), litellm's Router, which is then the only retry loop.
    The provider SDK's own retries are off either way (`max_retries=0`).
    """

    def __init__(self, settings: JudgeSettings, router_config: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.usage = Usage()
        # Asked before any Router exists: registering a deployment gives an unknown model a price of 0.
        self.routes: dict[str, Route] = {
            role: choose_route(self.call_settings(role).model, settings.api_base) for role in ("condense", "grade")
        }
        self._priced = {role: r.priced for role, r in self.routes.items()}
        router_keys = [
            str(d.get("litellm_params", {}).get("api_key") or "")
            for d in (router_config or {}).get("model_list", [])
            if isinstance(d, dict)
        ]
        self._secrets = [s for s in [settings.api_key, *router_keys, *secrets_from_env()] if s]
        self.router = None
        # Who answers: part of every cache key (with the model and sampling settings, added by CachedJudge):
        # the endpoint litellm really calls per role, resolved as litellm does (an explicit base, the
        # provider's *_BASE_URL variables, its default), and each router deployment's.
        self.identity: dict[str, Any] = {
            "fake": settings.fake,
            "api_base": None if settings.fake else (settings.api_base or "").rstrip("/") or None,
            "router": _digest(router_config) if router_config is not None else None,
        }
        if not settings.fake:
            self.identity["endpoints"] = (
                _router_endpoints(router_config)
                if router_config is not None
                else {role: endpoint(r.model, settings.api_base) for role, r in self.routes.items()}
            )
        # Priced before the Router exists too; a role's price: the dearest of its deployments.
        deployments = _router_endpoints(router_config) if router_config is not None else []
        self.budget = Budget.priced(
            setting("max_cost"),
            {role: [str(d[1]) for d in deployments if d[0] == role] or [r.model] for role, r in self.routes.items()},
        )
        self.hedger = Hedger(setting("hedge_quantile"), setting("hedge_max_fraction"))
        if not settings.fake:  # a tier the models do not have is refused here, before any call
            check_tier(
                settings.service_tier, [str(d[1]) for d in deployments] or [r.model for r in self.routes.values()]
            )
        if router_config is not None:
            config = router_params(router_config)
            model_list = config.pop("model_list")
            for d in model_list:
                d.setdefault("litellm_params", {}).setdefault("max_retries", 0)
            config.setdefault("num_retries", settings.num_retries)
            config.setdefault("timeout", settings.timeout_s)
            self.router = litellm.Router(model_list=model_list, **config)
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop `_semaphore` is bound to
        self.observer: CallObserver | None = None  # set by the service (its metrics); None: nothing is told
        # Limits shared by every replica (in Redis with REWARD_CACHE_URL): each call attempt waits its turn.
        self.limiter = JudgeLimiter(
            role_limits(router_config) if router_config is not None else {},
            cache_url(),
            namespace(router_config or {}),
            timeout_s=setting("cache_timeout"),  # the cache's Redis, the same patience
        )
        _raise_connection_limits(settings.concurrency)

    async def _acompletion(
        self, role: str, messages: list[dict[str, str]], kwargs: dict[str, Any], tokens: int, ledger: CallLedger
    ) -> Any:
        if self.router is not None:  # the Router's own retries happen inside this one attempt
            router = self.router
            return await self._attempt(
                role, tokens, ledger, lambda: router.acompletion(model=role, messages=messages, **kwargs)
            )
        route = self.routes[role]
        s = self.settings
        params: dict[str, Any] = {"model": route.model, "max_retries": 0, **kwargs}
        messages = with_cache_hints(route, role, messages, params)
        if s.api_base:
            params["api_base"] = s.api_base
        if s.api_key:
            params["api_key"] = s.api_key
        retries = s.num_retries

        def wait(state: Any) -> float:
            remaining = retries - state.attempt_number + 1
            exc = state.outcome.exception()
            return litellm.utils.calculate_retry_after(remaining, retries, response_headers=headers(exc))

        # On a service tier its 429s are the tier's to retry until its deadline (reward/judge/tiers.py).
        tiered = "service_tier" in kwargs

        def again(exc: BaseException) -> bool:
            return retryable(exc) and not (tiered and categorize(exc) == "judge_rate_limited")

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + retries), retry=retry_if_exception(again), wait=wait, reraise=True
        )
        token = inline_setup.set(route.inline_setup)
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(
                        role, tokens, ledger, lambda: litellm.acompletion(messages=messages, **params)
                    )
        finally:
            inline_setup.reset(token)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(self, role: str, tokens: int, ledger: CallLedger, call: Callable[[], Awaitable[Any]]) -> Any:
        """One call attempt in its turn under the limits; hedged (reward/judge/hedge.py) when configured.
        An attempt that timed out may be billed and keeps its worst case, so the next attempt (a retry, a flex
        call's fallback) reserves one of its own; after a refusal (429, 5xx: not billed) it reuses the last
        one. budget_exhausted here stops the retries rather than pass the budget."""
        # held: the first reservation, each hedged duplicate's and each taken here; owed: every attempt that
        # timed out (it keeps its own) plus this one
        while 1 + ledger.duplicates + ledger.retried < ledger.timed_out + 1:
            self.budget.reserve(ledger.worst)
            ledger.retried += 1

        async def sent() -> Any:
            try:
                return await call()
            except asyncio.CancelledError:  # sent, then cut off: it may be billed (charged in Budget.close)
                ledger.cut += 1
                raise
            except (TimeoutError, litellm.Timeout):  # sent, no answer in time: it may be billed all the same
                ledger.timed_out += 1
                raise

        if not self.hedger.enabled:
            async with self.limiter.slot(role, tokens):
                return await sent()
        out = await self.hedger.run(
            role, sent, lambda: self.limiter.slot(role, tokens), lambda: self._spare(role, tokens, ledger)
        )
        ledger.extra += out.extra
        ledger.cancelled += out.cancelled
        return out.value

    async def _spare(self, role: str, tokens: int, ledger: CallLedger) -> Release | None:
        """A hedged duplicate's room in the budget, then its slots, each taken at once or not at all."""
        if not self.budget.try_reserve(ledger.worst):
            return None
        ledger.duplicates += 1  # its reservation is settled with the call's, whether it went out or not
        return await spare_slot(self.semaphore, lambda: self.limiter.try_slot(role, tokens))

    @property
    def semaphore(self) -> asyncio.Semaphore:
        # One per event loop (a semaphore binds to the loop it first waits in), shared by every request in
        # it: a script or trainer hook may `asyncio.run` each group with the same judge.
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.settings.concurrency), loop
            install_inline_setup(loop)
        return self._semaphore

    def call_settings(self, role: str) -> CallSettings:
        return self.settings.condense if role == "condense" else self.settings.grade

    async def aclose(self) -> None:
        # litellm keeps its HTTP clients for the process and, once their loop is gone, cannot close their
        # sockets any more: one leaked connection per `asyncio.run` that called a judge.
        from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

        await close_litellm_async_clients()

    async def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Reply:
        """One judge call (transport retries included); raises JudgeError or InvalidReply."""
        call = self.call_settings(role)
        kwargs: dict[str, Any] = {
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
            "timeout": self.settings.timeout_s,
        }
        if response_format is not None:
            kwargs["response_format"] = response_format
        if seed is not None and _takes_seed(call.model):
            kwargs["seed"] = seed
        if role == "grade" and call.top_logprobs and takes_logprobs(call.model):
            kwargs["logprobs"], kwargs["top_logprobs"] = True, call.top_logprobs
        tokens = self._estimate_tokens(role, call, messages)
        ledger = CallLedger(self.budget.worst_case(role, max(0, tokens - call.max_tokens), call.max_tokens))
        async with self.semaphore:
            self.budget.reserve(ledger.worst)  # refused: budget_exhausted, before anything is sent
            observer = self.observer
            if observer is not None:
                observer.started(role)
            start, outcome, resp, tier = time.monotonic(), "cancelled", None, None
            try:
                resp, tier = await on_tier(
                    self.settings.service_tier,
                    lambda extra: self._acompletion(role, messages, {**kwargs, **extra}, tokens, ledger),
                )
                outcome = "ok"
            except JudgeError as exc:  # the budget refused a retry: no transport error to categorise
                outcome = exc.category
                raise
            except Exception as exc:
                if malformed_body(exc):  # a body litellm cannot read: an empty reply, re-asked like one
                    outcome = "judge_empty_reply"
                    raise InvalidReply(
                        outcome, f"the reply was no valid completion: {short_error(exc, self._secrets)}"
                    ) from exc
                outcome = categorize(exc)
                raise JudgeError(outcome, short_error(exc, self._secrets)) from exc
            finally:
                # the answer and its hedge's loser counted (the caller's, the judge's and this call's usage)
                answered = resp if outcome == "ok" else None
                this_call = self.budget.close(ledger, role, answered, [usage, self.usage], self._priced[role])
                if answered is not None and tier is not None:
                    for u in (usage, self.usage):
                        u.count_tier(tier, this_call.cost)
                if observer is not None:
                    observer.finished(role, outcome, time.monotonic() - start, this_call if answered else None)
        fake = getattr(resp, "system_fingerprint", None) == FAKE_FINGERPRINT
        return self._reply(resp, fake, "logprobs" in kwargs)

    def _estimate_tokens(self, role: str, call: CallSettings, messages: list[dict[str, str]]) -> int:
        """The prompt's tokens + max_tokens, where a tokens-per-minute limit (charged before the call) or the
        budget (its worst case) needs them; else 0."""
        lim = self.limiter.limits.get(role)
        if not self.budget.enforced and (lim is None or lim.tpm is None):
            return 0
        try:
            prompt = int(litellm.token_counter(model=call.model, messages=messages))
        except Exception:  # an unknown model's tokenizer: about 4 characters a token
            prompt = sum(len(str(m.get("content") or "")) for m in messages) // 4
        return prompt + call.max_tokens

    def _reply(self, resp: Any, fake: bool, logprobs: bool = True) -> Reply:
        """The first choice of a completion, checked: no choice, no text or a refusal is re-askable. Its
        logprobs are read only when they were asked for (`logprobs`): whatever else came there is ignored."""
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise rejected(fake, "judge_empty_reply", "the reply had no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        # litellm moves OpenAI's `refusal` into provider_specific_fields
        refusal = getattr(message, "refusal", None) or (getattr(message, "provider_specific_fields", None) or {}).get(
            "refusal"
        )
        finish = getattr(choice, "finish_reason", None)
        if refusal or finish == "content_filter":
            raise rejected(fake, "judge_refusal", short_error(Exception(refusal or "content filtered"), self._secrets))
        content = getattr(message, "content", None)
        if content is not None and not isinstance(content, str):
            raise rejected(fake, "judge_empty_reply", f"the reply's content was {type(content).__name__}, not text")
        return Reply(
            content=content or "",
            fake=fake,
            finish_reason=finish if isinstance(finish, str) else None,
            logprobs=token_logprobs(choice) if logprobs else None,
        )
