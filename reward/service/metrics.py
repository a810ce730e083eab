"""Prometheus metrics of `reward serve`, exposed at `GET /metrics`: what an operator watches in production
(traffic, latency, rewards, judge calls and their failures, spend, the cache, the judge limits).

Recorded at the edges only: the access middleware (requests), every answer of the service whichever
endpoint asked (`observe_answers`, which also writes the one log line that says the judge failed), and
observers hung on the judge client, its limiter and the cache (`instrument`). The scoring core never
imports this module or prometheus-client, and `reward score` records nothing.

Several workers (`reward serve --workers N`): prometheus-client's multiprocess mode. The supervisor creates
a directory for the run and points PROMETHEUS_MULTIPROC_DIR at it before it starts the workers (which read
it when prometheus-client is imported); each worker writes its values there and a scrape of any worker sums
them all. Gauges say how they combine (`livesum`: over the live workers; a dead worker's files are dropped by
the supervisor). Without the variable (one worker) the process's own registry is exposed.
"""

from __future__ import annotations

import logging
import os
from collections import Counter as Tally
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.core import Metric

from reward import __version__
from reward.cache.redis_store import RedisStore
from reward.judge.base import Usage
from reward.judge.litellm_judge import LiteLLMJudge
from reward.service import canary_metrics

if TYPE_CHECKING:
    from reward.service.reward_service import RewardService, ScoreRequest, ScoreResponse

log = logging.getLogger("reward.service")
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STAGES = ("condense", "grade")
TOKEN_KINDS = ("prompt", "completion", "cached")
# Requests take from milliseconds (probes, cache hits) to the request deadline (90 s by default).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120)
JUDGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# The reward scale: penalties at -100 / -50, graded rewards in [-50, 100].
SCALE_BUCKETS = (-100, -50, -25, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)

HTTP_REQUESTS = Counter(
    "reward_http_requests", "HTTP requests answered, by route template and status.", ["endpoint", "method", "status"]
)
HTTP_DURATION = Histogram(
    "reward_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["endpoint", "method"],
    buckets=REQUEST_BUCKETS,
)
ROLLOUTS = Counter(
    "reward_rollouts",
    "Rollouts answered, by status (ok, penalized, error) and penalty.",
    ["rubric", "status", "penalty"],
)
ROLLOUT_ERRORS = Counter(
    "reward_rollout_errors", "Rollouts answered without a reward, by error category.", ["rubric", "category"]
)
REWARDS = Histogram(
    "reward_rollout_reward", "Rewards answered (graded and penalised).", ["rubric"], buckets=SCALE_BUCKETS
)
GROUPS = Counter(
    "reward_groups", "Prompt groups answered, by whether they were filtered (no signal).", ["rubric", "filtered"]
)
JUDGE_CALLS = Counter(
    "reward_judge_calls",
    "Judge calls by stage and outcome: ok (answered) or the error category of a failed call.",
    ["stage", "outcome"],
)
JUDGE_DURATION = Histogram(
    "reward_judge_call_duration_seconds",
    "Time of a judge call, transport retries and limiter waits included.",
    ["stage"],
    buckets=JUDGE_BUCKETS,
)
JUDGE_TOKENS = Counter(
    "reward_judge_tokens", "Judge tokens by stage and kind (prompt, completion, cached).", ["stage", "kind"]
)
JUDGE_COST = Counter("reward_judge_cost_usd", "Judge cost in US dollars, as litellm prices it.", ["stage"])
JUDGE_UNPRICED = Counter("reward_judge_unpriced_calls", "Judge calls of unknown price (not in the cost).", ["stage"])
JUDGE_IN_FLIGHT = Gauge("reward_judge_in_flight", "Judge calls in flight.", ["stage"], multiprocess_mode="livesum")
LIMITER_WAITING = Gauge(
    "reward_judge_limiter_waiting",
    "Judge calls waiting for capacity under the judge limits (rpm, tpm, max_parallel_requests).",
    ["stage"],
    multiprocess_mode="livesum",
)
LIMITER_WAIT = Histogram(
    "reward_judge_limiter_wait_seconds",
    "Time a judge call waited under the judge limits.",
    ["stage"],
    buckets=WAIT_BUCKETS,
)
CACHE_HITS = Counter("reward_cache_hits", "Cache lookups answered by a layer (memory, disk, redis).", ["layer"])
CACHE_MISSES = Counter("reward_cache_misses", "Cache lookups a layer could not answer.", ["layer"])
CACHE_COALESCED = Counter(
    "reward_cache_coalesced", "Lookups that waited on an identical judge call already in flight.", ["layer"]
)
CACHE_WRITE_FAILURES = Counter(
    "reward_cache_write_failures", "Values computed but not kept (the layer failed).", ["layer"]
)
CACHE_DEGRADED = Gauge(
    "reward_cache_degraded",
    "Workers whose cache layer fails (scoring goes on without it).",
    ["layer"],
    multiprocess_mode="livesum",
)
WORKERS = Gauge("reward_workers", "Worker processes serving.", multiprocess_mode="livesum")
BUILD = Gauge("reward_build_info", "The version serving (value 1).", ["version"], multiprocess_mode="livemax")


class JudgeMetrics:
    """The observer hung on each judge client and its limiter (reward.judge: CallObserver, WaitObserver)."""

    def started(self, role: str) -> None:
        JUDGE_IN_FLIGHT.labels(role).inc()

    def finished(self, role: str, outcome: str, seconds: float, usage: Usage | None) -> None:
        JUDGE_IN_FLIGHT.labels(role).dec()
        JUDGE_CALLS.labels(role, outcome).inc()
        JUDGE_DURATION.labels(role).observe(seconds)
        if usage is None:
            return
        for kind, n in zip(
            TOKEN_KINDS, (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens), strict=True
        ):
            if n:
                JUDGE_TOKENS.labels(role, kind).inc(n)
        if usage.cost_known:
            JUDGE_COST.labels(role).inc(usage.cost)
        else:
            JUDGE_UNPRICED.labels(role).inc()

    def wait_started(self, role: str) -> None:
        LIMITER_WAITING.labels(role).inc()

    def wait_ended(self, role: str, seconds: float) -> None:
        LIMITER_WAITING.labels(role).dec()
        LIMITER_WAIT.labels(role).observe(seconds)


JUDGE = JudgeMetrics()


def cache_event(event: str, layer: str, n: int = 1) -> None:
    """The observer hung on the cache (reward.cache.disk.CacheObserver)."""
    if event == "hit":
        CACHE_HITS.labels(layer).inc(n)
    elif event == "miss":
        CACHE_MISSES.labels(layer).inc(n)
    elif event == "coalesced":
        CACHE_COALESCED.labels(layer).inc(n)
    elif event == "write_failed":
        CACHE_WRITE_FAILURES.labels(layer).inc(n)
    elif event == "degraded":
        CACHE_DEGRADED.labels(layer).set(1)
    elif event == "recovered":
        CACHE_DEGRADED.labels(layer).set(0)


def instrument(service: RewardService) -> None:
    """Hang the observers on a worker's judge clients, limiters and cache, and create the series a dashboard
    plots at zero (a multiprocess scrape omits a series nobody has touched)."""
    for scorer in service.scorers.values():
        judge = scorer.judge
        if isinstance(judge, LiteLLMJudge):
            judge.observer = JUDGE
            judge.limiter.observer = JUDGE
    service.store.observer = cache_event
    service.canaries.observer = canary_metrics.CANARY
    if service.canaries.rate > 0:
        for outcome in canary_metrics.OUTCOMES:
            canary_metrics.AUDITS.labels(outcome)
    for stage in STAGES:
        JUDGE_CALLS.labels(stage, "ok")
        JUDGE_DURATION.labels(stage)
        JUDGE_COST.labels(stage)
        JUDGE_UNPRICED.labels(stage)
        JUDGE_IN_FLIGHT.labels(stage)
        LIMITER_WAITING.labels(stage)
        LIMITER_WAIT.labels(stage)
        for kind in TOKEN_KINDS:
            JUDGE_TOKENS.labels(stage, kind)
    kept = "redis" if isinstance(service.store, RedisStore) else "disk" if service.store.directory else None
    for layer in ("memory", kept):
        if layer is not None:
            CACHE_HITS.labels(layer)
            CACHE_MISSES.labels(layer)
    CACHE_COALESCED.labels("memory")  # in this process; with Redis, on another replica's call as well
    if kept == "redis":
        CACHE_COALESCED.labels("redis")
    if kept is not None:
        CACHE_WRITE_FAILURES.labels(kept)
        CACHE_DEGRADED.labels(kept).set(0)
    for rubric in service.rubrics:
        ROLLOUTS.labels(rubric, "ok", "none")
        GROUPS.labels(rubric, "false")
        REWARDS.labels(rubric)
    WORKERS.set(1)
    BUILD.labels(__version__).set(1)


def record_answer(response: ScoreResponse) -> None:
    """Count what one answer holds: groups, rollouts by status and penalty, errors by category, rewards."""
    for group in response.groups:
        GROUPS.labels(group.rubric, str(group.filtered).lower()).inc()
        for r in group.rollouts:
            ROLLOUTS.labels(group.rubric, r.status, r.penalty or "none").inc()
            if r.error is not None:
                ROLLOUT_ERRORS.labels(group.rubric, r.error.category).inc()
            if r.reward is not None:
                REWARDS.labels(group.rubric).observe(r.reward)


def observe_answers(service: RewardService) -> None:
    """Every answer the service gives, whichever endpoint asked (the trainers', NeMo Gym's, /score), goes
    through `answered`: the service's `score` is wrapped once here, at the edge, rather than each caller."""
    if getattr(service, "_answers_observed", False):  # a test's service, served by several apps in turn
        return
    score = service.score

    async def observed(request: ScoreRequest) -> ScoreResponse:
        return answered(await score(request))

    service.score = observed  # type: ignore[method-assign]
    service._answers_observed = True  # type: ignore[attr-defined]


def answered(result: ScoreResponse) -> ScoreResponse:
    """Count an answer in the metrics, and say in one log line when the judge failed some of its rollouts
    (whether the endpoint then answers them as errors or, for a trainer that needs numbers, 503)."""
    record_answer(result)
    errors = [r.error for g in result.groups for r in g.rollouts if r.error is not None]
    if errors:
        by_category = dict(Tally(e.category for e in errors))
        n = sum(len(g.rollouts) for g in result.groups)
        log.warning(
            "judge failed for %d of %d rollouts (%s)",
            len(errors),
            n,
            ", ".join(f"{k} {v}" for k, v in sorted(by_category.items())),
            extra={"event": "judge_failed", "categories": by_category, "error": errors[0].message[:300]},
        )
    return result


def endpoint_of(scope: MutableMapping[str, Any]) -> str:
    """The route template a request matched (never the raw path: one series per route, not per URL an
    attacker makes up); a request refused before routing (401, 413) by the path if it is a route's;
    anything else `other`."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    raw = str(scope.get("path", ""))
    for route in getattr(scope.get("app"), "routes", ()):
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            continue
        mount = not hasattr(route, "methods")  # a Mount (the static files): a prefix
        if raw == template or (mount and raw.startswith(template.rstrip("/") + "/")):
            return template
    return "other"


def record_request(scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
    """The access middleware's hook (reward.service.logs.AccessLog)."""
    endpoint, method = endpoint_of(scope), str(scope.get("method", ""))
    HTTP_REQUESTS.labels(endpoint, method, str(status)).inc()
    HTTP_DURATION.labels(endpoint, method).observe(seconds)


class _Families(CollectorRegistry):
    """Families already collected, exposed as a registry (one collection serves the text and the rate)."""

    def __init__(self, families: list[Metric]) -> None:
        super().__init__(auto_describe=False)
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


def _collect() -> list[Metric]:
    """Every worker's metric families (multiprocess mode), or this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return list(registry.collect())
    return list(REGISTRY.collect())


def exposition() -> bytes:
    """The text format of every worker's metrics (multiprocess mode) or of this process's registry, with the
    canaries' fooled rate computed from the summed counters (a per-worker gauge could not be summed)."""
    families = _collect()
    return _generate(_Families([*families, canary_metrics.fooled_rate(families)]))


def canary_view() -> dict[str, Any]:
    """`GET /canaries`: every worker's canaries (reward.service.canary_metrics.view)."""
    return canary_metrics.view(_collect())
