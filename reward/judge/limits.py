"""Judge limits shared by every replica: requests and tokens per minute and calls in flight, per role.

Each judge role (`condense`, `grade`) has the limits its deployments state in the Router config
(`rpm`, `tpm`, `max_parallel_requests` in their litellm_params, summed over a role's deployments) or a
`limits:` block naming them per role. Every call attempt waits here for capacity; our limiter never fails a
call (the request's deadline bounds the wait, by cancellation).

- requests per minute: a moving window (the `limits` package, exact: one entry per call);
- tokens per minute: a sliding window counter (`limits`; one counter per window, since a moving window
  would keep one entry per token), charged the prompt's estimated tokens + max_tokens before the call;
- calls in flight: leases in a sorted set scored by their expiry, taken and renewed by short Lua scripts
  on the server's clock, so a replica that dies holding leases frees them when they lapse.

With REWARD_CACHE_URL a Redis URL, all of this lives in that Redis and is shared by every replica; otherwise
(and while Redis fails: one log line, tried again after a pause) it is held in the process.

litellm's Router is kept for routing and fallbacks but does not enforce these limits: its counts live in
each process's memory and, measured with bench/replicas.py, two replicas sent twice the limit.

An optional `observer` is told when a call starts and stops waiting here (the service's metrics: how many
wait, for how long), so a limit that throttles the judge shows up before the deadline errors do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter

from reward.errors import ConfigError, RewardError
from reward.redaction import describe_error

log = logging.getLogger("reward.judge.limits")
ROLES = ("condense", "grade")
KEYS = ("rpm", "tpm", "max_parallel_requests")
T = TypeVar("T")

# KEYS[1]: the leases (member: lease id, score: expiry in ms on the server's clock).
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""
_RENEW = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], 'XX', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class RoleLimits:
    rpm: int | None = None
    tpm: int | None = None
    max_parallel_requests: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.rpm, self.tpm, self.max_parallel_requests))


def _positive(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1 or int(value) != value:
        raise ConfigError(f"router config: {where} must be a positive whole number, got {value!r}")
    return int(value)


def role_limits(config: dict[str, Any]) -> dict[str, RoleLimits]:
    """Each role's limits: the `limits:` block where it names one, else the sum over the role's
    deployments (a role with one deployment that states none has no such limit)."""
    block = config.get("limits") or {}
    if not isinstance(block, dict) or not set(block) <= set(ROLES):
        raise ConfigError(f"router config: limits must map {' / '.join(ROLES)} to rpm, tpm, max_parallel_requests")
    out: dict[str, RoleLimits] = {}
    for role in ROLES:
        params = [
            d.get("litellm_params") or {}
            for d in config.get("model_list") or []
            if isinstance(d, dict) and d.get("model_name") == role
        ]
        explicit = block.get(role) or {}
        if not isinstance(explicit, dict) or not set(explicit) <= set(KEYS):
            raise ConfigError(f"router config: limits.{role} takes only {', '.join(KEYS)}")
        values: dict[str, int | None] = {}
        for key in KEYS:
            if key in explicit:
                values[key] = _positive(explicit[key], f"limits.{role}.{key}")
                continue
            each = [_positive(p.get(key), f"{role}.litellm_params.{key}") for p in params if isinstance(p, dict)]
            values[key] = sum(v for v in each if v is not None) if each and None not in each else None
        out[role] = RoleLimits(**values)
    return out


def router_params(config: dict[str, Any]) -> dict[str, Any]:
    """The Router config without our `limits:` block (litellm's Router does not know it)."""
    return {k: v for k, v in config.items() if k != "limits"}


def namespace(config: dict[str, Any]) -> str:
    """Replicas with the same deployments share limits; another judge on the same Redis has its own."""
    deployments = sorted(
        json.dumps([d.get("model_name"), (d.get("litellm_params") or {}).get("model"),
                    (d.get("litellm_params") or {}).get("api_base")], default=str)
        for d in config.get("model_list") or []
        if isinstance(d, dict)
    )  # fmt: skip
    return hashlib.sha256("\n".join(deployments).encode()).hexdigest()[:16]


async def _nothing() -> None:  # the release of a slot that holds nothing
    return None


class WaitObserver(Protocol):
    """Told of each wait for capacity under a role's limits (only roles that have limits wait)."""

    def wait_started(self, role: str) -> None: ...

    def wait_ended(self, role: str, seconds: float) -> None: ...


class _Down(RewardError):
    """Redis failed or is being left alone for a moment: use the process's own limits."""


class JudgeLimiter:
    """Waits for capacity before each judge call attempt: `async with limiter.slot(role, tokens): ...`."""

    def __init__(
        self,
        limits: dict[str, RoleLimits],
        url: str | None = None,
        space: str = "judge",
        window_s: int = 60,
        lease_ttl_s: float = 30.0,
        timeout_s: float = 1.0,
        pause_s: float = 1.0,
    ) -> None:
        self.limits = {role: lim for role, lim in limits.items() if lim.any}
        self.url = url
        self.space = space
        self.window_s = window_s
        self.lease_ttl_ms = max(1, int(lease_ttl_s * 1000))
        self.timeout_s = timeout_s
        self.pause_s = pause_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._down = False
        self.observer: WaitObserver | None = None  # set by the service (its metrics)
        if url is not None and self.limits:
            try:  # the `redis` extra: missing, it is a start-up error, not a failure of every call
                import redis.asyncio  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "shared judge limits need the redis client: pip install 'rubric-reward[redis]'"
                ) from None

    def _bind(self) -> None:
        """Clients and process-local state bind to the running event loop: made on first use in each."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._local_storage = MemoryStorage()
        local = self._local_storage
        self._local = (MovingWindowRateLimiter(local), SlidingWindowCounterRateLimiter(local))
        self._local_flight = {
            r: asyncio.Semaphore(n) for r, lim in self.limits.items() if (n := lim.max_parallel_requests)
        }
        self._gates = {(r, step): asyncio.Lock() for r in self.limits for step in ("flight", "rate")}
        self._redis: Any = None
        self._shared = self._local  # replaced by Redis's below; never used while `_redis` is None
        if self.url is not None:
            import redis.asyncio
            from limits.aio.storage import RedisStorage

            opts: dict[str, Any] = {"socket_timeout": self.timeout_s, "socket_connect_timeout": self.timeout_s}
            self._redis = redis.asyncio.Redis.from_url(self.url, **opts)
            storage: Storage = RedisStorage(
                "async+" + self.url,
                implementation="redispy",
                key_prefix="reward:limits",
                connection_pool=self._redis.connection_pool,
            )
            self._shared = (MovingWindowRateLimiter(storage), SlidingWindowCounterRateLimiter(storage))
            self._acquire = self._redis.register_script(_ACQUIRE)
            self._renew = self._redis.register_script(_RENEW)

    async def _on_redis(self, op: Callable[[], Awaitable[T]]) -> T:
        """One Redis operation, bounded in time; any failure is `_Down` and pauses Redis for a moment."""
        if self._redis is None or time.monotonic() < self._down_until:
            raise _Down
        try:
            result = await asyncio.wait_for(op(), self.timeout_s)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if not self._down:
                error = describe_error(exc, self.url)  # redis-py may quote the URL, password and all
                log.warning(
                    "judge limits: Redis failed (%s); holding them per process until it answers",
                    error,
                    extra={"event": "limits_degraded"},
                )
            self._down = True
            self._down_until = time.monotonic() + self.pause_s
            raise _Down from exc
        if self._down:
            log.warning(
                "judge limits: Redis answers again; limits shared by every replica again",
                extra={"event": "limits_recovered"},
            )
            self._down = False
        return result

    def _item(self, amount: int) -> RateLimitItem:
        return RateLimitItemPerSecond(amount, self.window_s)

    @asynccontextmanager
    async def slot(self, role: str, tokens: int = 0) -> AsyncIterator[None]:
        """Hold a call-in-flight lease and charge one request and `tokens` for the duration of a call."""
        lim = self.limits.get(role)
        if lim is None:
            yield
            return
        self._bind()
        with self._waiting(role):
            release = await self._take_flight(role, lim.max_parallel_requests)
            try:
                async with self._gates[(role, "rate")]:  # one waiter per role and process asks Redis
                    if lim.rpm is not None:
                        await self._take_rate(0, self._item(lim.rpm), role, "rpm", 1)
                    if lim.tpm is not None:
                        await self._take_rate(1, self._item(lim.tpm), role, "tpm", max(1, min(tokens, lim.tpm)))
            except BaseException:
                await asyncio.shield(release())
                raise
        try:
            yield
        finally:
            await asyncio.shield(release())

    @contextlib.contextmanager
    def _waiting(self, role: str) -> Iterator[None]:
        observer = self.observer
        if observer is None:
            yield
            return
        observer.wait_started(role)
        start = time.monotonic()
        try:
            yield
        finally:
            observer.wait_ended(role, time.monotonic() - start)

    async def _take_rate(self, which: int, item: RateLimitItem, role: str, kind: str, cost: int) -> None:
        while (wait := await self._hit(which, item, role, kind, cost)) is not None:
            # until the window has room (capped: other replicas' calls move it too), with some jitter
            await asyncio.sleep(min(max(wait, 0.01), 1.0) * random.uniform(0.5, 1.0))

    async def _hit(self, which: int, item: RateLimitItem, role: str, kind: str, cost: int) -> float | None:
        """Charge `cost` to a window if it has room (None), else the seconds until it may."""
        ids = (self.space, role, kind)
        shared = self._shared[which]
        try:
            if await self._on_redis(lambda: shared.hit(item, *ids, cost=cost)):
                return None
            stats = await self._on_redis(lambda: shared.get_window_stats(item, *ids))
        except _Down:
            limiter: RateLimiter = self._local[which]
            if await limiter.hit(item, *ids, cost=cost):
                return None
            stats = await limiter.get_window_stats(item, *ids)
        return float(stats.reset_time - time.time())

    async def _take_flight(self, role: str, cap: int | None) -> Callable[[], Awaitable[None]]:
        if cap is None:
            return _nothing
        delay = 0.01
        async with self._gates[(role, "flight")]:  # one waiter per role and process asks Redis
            while (release := await self._lease(role, cap)) is None:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 0.2)
            return release

    async def _lease(self, role: str, cap: int) -> Callable[[], Awaitable[None]] | None:
        """A call-in-flight lease if one is free now (its release), else None."""
        key = f"reward:limits:{self.space}:{role}:in_flight"
        lease = uuid.uuid4().hex
        try:
            if await self._on_redis(lambda: self._acquire([key], [lease, cap, self.lease_ttl_ms])):
                return self._shared_lease(key, lease)
        except _Down:
            sem = self._local_flight[role]
            if not sem.locked():
                await sem.acquire()
                return self._local_lease(sem)
        return None

    async def try_slot(self, role: str, tokens: int = 0) -> Callable[[], Awaitable[None]] | None:
        """A slot taken at once, or None when the role's limits have no room now (or others wait for
        room): for a hedged duplicate, which must never wait. Returns the slot's release. A refused
        try may leave one request charged to the per-minute window (limits has no refund)."""
        lim = self.limits.get(role)
        if lim is None:
            return _nothing
        self._bind()
        if any(self._gates[(role, step)].locked() for step in ("flight", "rate")):
            return None
        cap = lim.max_parallel_requests
        release = _nothing if cap is None else await self._lease(role, cap)
        if release is None:
            return None
        try:
            room = lim.rpm is None or await self._hit(0, self._item(lim.rpm), role, "rpm", 1) is None
            if room and lim.tpm is not None:
                room = await self._hit(1, self._item(lim.tpm), role, "tpm", max(1, min(tokens, lim.tpm))) is None
        except BaseException:
            await asyncio.shield(release())
            raise
        if not room:
            await asyncio.shield(release())
            return None
        return release

    @staticmethod
    def _local_lease(sem: asyncio.Semaphore) -> Callable[[], Awaitable[None]]:
        async def release() -> None:
            sem.release()

        return release

    def _shared_lease(self, key: str, lease: str) -> Callable[[], Awaitable[None]]:
        """A lease renewed while the call runs (a call may outlast the lease's time to live)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_ttl_ms / 3000)
                with contextlib.suppress(_Down):  # a lapsed lease lets one more call in until this one ends
                    await self._on_redis(lambda: self._renew([key], [lease, self.lease_ttl_ms]))

        renewing = asyncio.ensure_future(renew())

        async def release() -> None:
            renewing.cancel()
            with contextlib.suppress(_Down):  # else it expires by itself
                await self._on_redis(lambda: self._redis.zrem(key, lease))

        return release
