"""The plan and verdict cache on Redis, for replicas on several machines (`REWARD_CACHE_URL=redis://...`).

Same keys and promises as the disk cache (reward.cache.disk.Store, whose memory layer and in-process
single-flight this store keeps): a computed value is returned only after Redis acknowledged it, so a
judgement that was paid for survives the replica that paid for it.

Identical calls in flight on different replicas share one judge call through a marker: the first replica
claims `<key>` with SET NX and a short expiry that it keeps extending while it computes; the others poll
for the value and take over if the marker disappears without one (the owner died or its call failed), so
a dead replica never blocks anybody for longer than the marker's expiry. A marker that would never lapse (no
expiry, or one nobody extends that outlasts STALE_TTLS marker lifetimes: planted, PERSISTed, another tool's)
is foreign: the waiter computes the value and keeps it, leaving the marker alone. Nothing waits forever.

Redis is an optimisation, never a point of failure, exactly like a broken disk: every command has a short
timeout and no retry loop of its own (a dropped connection, as a restarted server leaves every pooled one, is
reconnected once by redis-py: a healthy Redis is never paused on); a failing Redis is a miss, its writes
are counted and reported in `write_error`, values are still computed and returned, and Redis is left alone
for a moment before it is tried again (so a dead server costs one timeout per moment, not one per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from reward.cache.disk import CacheStats, Store
from reward.errors import ConfigError, RewardError
from reward.redaction import describe_error, redact_url
from reward.settings import DEFAULTS, setting

log = logging.getLogger("reward.cache")

PREFIX = "reward:"
MAX_CONNECTIONS = 64  # per replica; redis-py's pool refuses (not waits) beyond its own maximum

# Extend the marker only while it is still ours; delete it only if it is still ours.
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# The value (nil if absent or not a string) and the marker's PTTL (-2: none, -1: no expiry; any type), at once.
_PEEK = "return {redis.call('mget', KEYS[1])[1], redis.call('pttl', KEYS[2])}"
_GONE, _PERSISTENT = -2, -1  # PTTL of a key that does not exist, of one without an expiry
STALE_TTLS = 3  # a live owner extends its marker every third of its lifetime: this many lifetimes is no owner


class _Watch:
    """A waiter's view of another replica's marker. A live owner pushes its expiry forward every third of its
    lifetime (a starved one's lapses, and is taken over); ours always have one. So a marker with no expiry, or
    whose expiry has not moved for STALE_TTLS lifetimes, has no owner that will ever store the value."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.expiry = -math.inf  # where the expiry was (local clock) when last seen moved forward
        self.moved = time.monotonic()

    def stuck(self, pttl: int) -> bool:
        if pttl == _PERSISTENT:
            return True
        now = time.monotonic()
        # Against where it last moved, not the last poll: a late reply (a starved waiter) overstates the
        # expiry, so only an ever later one counts again, and a heartbeat's small steps add up.
        if now + pttl / 1000 > self.expiry + self.ttl_s / 6:
            self.expiry, self.moved = now + pttl / 1000, now
        return self.idle() > STALE_TTLS * self.ttl_s

    def idle(self) -> float:
        return time.monotonic() - self.moved


class RedisDown(RewardError):
    """Redis failed or is being left alone for a moment: the caller computes without the cache."""


def cache_url() -> str | None:
    """REWARD_CACHE_URL: a Redis URL for a cache shared by replicas; unset: the disk cache."""
    url: str | None = setting("cache_url")
    return url


def open_store(directory: str | Path | None) -> Store:
    """The cache every command uses: Redis when REWARD_CACHE_URL is set, else the disk cache in `directory`."""
    url = cache_url()
    if url is None:
        return Store(directory)
    return RedisStore(url, marker_ttl_s=setting("cache_marker_ttl"), timeout_s=setting("cache_timeout"))


class RedisStore(Store):
    def __init__(
        self,
        url: str,
        memory_items: int = 4096,
        marker_ttl_s: float = DEFAULTS.cache_marker_ttl,
        timeout_s: float = DEFAULTS.cache_timeout,
        pause_s: float = 1.0,
    ) -> None:
        try:  # the `redis` extra; imported here so the embedded default does not need it
            import redis
            import redis.asyncio
            import redis.backoff
            import redis.retry
        except ImportError:
            raise ConfigError("REWARD_CACHE_URL needs the redis client: pip install 'rubric-reward[redis]'") from None

        super().__init__(None, memory_items)
        self.url = url
        self.marker_ttl_ms = max(1, round(marker_ttl_s * 1000))  # 0 ms: every SET PX refused
        self.timeout_s = timeout_s
        self.pause_s = pause_s
        self._redis = redis
        self._options: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "health_check_interval": 0,
        }
        self._client: Any = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._tasks: set[asyncio.Future[Any]] = set()  # marker releases, client closes: kept from the GC

    # --- connection and failure handling ------------------------------------------------------------

    def _conn(self) -> Any:
        """A client for the running loop (an asyncio connection cannot be shared between loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from redis.asyncio.retry import Retry

            # A restarted Redis leaves every pooled connection dead: redis-py reconnects once when a connection
            # drops, so a healthy Redis is read at once instead of being paused on. Nothing else is retried (a
            # timeout is not): a failure degrades, and the next call tries again.
            retry = Retry(self._redis.backoff.NoBackoff(), 1, supported_errors=(self._redis.ConnectionError,))
            self._client = self._redis.asyncio.Redis.from_url(
                self.url, retry=retry, max_connections=MAX_CONNECTIONS, **self._options
            )
            if self._loop is not loop:
                self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
            self._loop = loop
        return self._client

    async def _call(self, op: Callable[[Any], Awaitable[Any]]) -> Any:
        if time.monotonic() < self._down_until:
            raise RedisDown("paused after a failure")
        client = self._conn()
        # Commands beyond the pool's connections queue here (a full pool would be an error, not a wait);
        # the timeout starts once a connection is free.
        async with self._slots:
            return await self._command(op, client)

    async def _command(self, op: Callable[[Any], Awaitable[Any]], client: Any) -> Any:
        try:
            return await asyncio.wait_for(op(client), timeout=self.timeout_s * 2)
        except (self._redis.RedisError, OSError, TimeoutError) as exc:
            if not isinstance(exc, self._redis.ResponseError):  # an answer (OOM...) is no reason to pause reads
                self._down_until = time.monotonic() + self.pause_s
                # The pool's other connections died with this one: a fresh client after the pause.
                self._discard_client(client)
            error = describe_error(exc, self.url)  # redis-py may quote the URL, password and all
            if self.write_error is None:
                log.error(
                    "cache %s: Redis fails, computing without the cache: %s",
                    redact_url(self.url),
                    error,
                    extra={"event": "cache_degraded", "layer": "redis"},
                )
                self.note("degraded", "redis")
            self.write_error = error
            raise RedisDown(error) from exc

    def _discard_client(self, client: Any) -> None:
        # Only the client that failed: a late failure on one already replaced must not close its successor
        # under the commands it is running.
        if client is self._client:
            self._client = None
            closing = asyncio.ensure_future(client.aclose())
            self._tasks.add(closing)
            closing.add_done_callback(self._tasks.discard)
            closing.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _recovered(self) -> None:
        if self.write_error is not None:
            log.warning(
                "cache %s: Redis writes succeed again",
                redact_url(self.url),
                extra={"event": "cache_recovered", "layer": "redis"},
            )
            self.note("recovered", "redis")
        self.write_error = None

    async def _get(self, key: str, accept: Callable[[Any], Any] | None = None) -> tuple[Any, int]:
        """(value, the marker's PTTL); a value that does not decode, or that `accept` refuses, is a miss."""
        raw, pttl = await self._call(lambda r: r.eval(_PEEK, 2, PREFIX + key, PREFIX + "inflight:" + key))
        if raw is None:
            return None, int(pttl)
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            self.read_failures += 1
            log.warning("cache %s: value of %s does not decode; computing it again", redact_url(self.url), key)
            return None, int(pttl)
        return (value, int(pttl)) if self.accepted(key, value, accept) else (None, int(pttl))

    async def _claim(self, key: str, token: str) -> bool:
        marker, ttl = PREFIX + "inflight:" + key, self.marker_ttl_ms
        return bool(await self._call(lambda r: r.set(marker, token, nx=True, px=ttl)))

    # --- the cache ----------------------------------------------------------------------------------

    async def _load(
        self, key: str, compute: Callable[[], Awaitable[Any]], stats: CacheStats, accept: Callable[[Any], Any] | None
    ) -> Any:
        delay = 0.01
        waited = False  # on another replica's computation: its value is a coalesced call, not a hit
        watch = _Watch(self.marker_ttl_ms / 1000)
        while True:
            try:
                value, pttl = await self._get(key, accept)
                if value is None and pttl == _GONE:
                    token = uuid.uuid4().hex
                    if await self._claim(key, token):
                        self._recovered()
                        return await self._compute_owned(key, token, compute, stats)
                elif value is None and watch.stuck(pttl):
                    log.warning(
                        "cache %s: the in-flight marker of %s never lapses (%s); computing it here",
                        redact_url(self.url),
                        key,
                        "no expiry" if pttl == _PERSISTENT else f"not extended for {watch.idle():.0f} s",
                    )
                    return await self._compute_owned(key, None, compute, stats)
            except RedisDown:
                return await self._compute_unkept(key, compute, stats)
            if value is not None:
                if waited:
                    self.coalesced += 1
                    stats.coalesced += 1
                    self.note("coalesced", "redis")
                else:
                    self.hits += 1
                    stats.hits += 1
                    self.note("hit", "redis")
                self._remember(key, value)
                return value
            # Another replica computes it: wait for its value, or for its marker to lapse.
            waited = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _compute_unkept(self, key: str, compute: Callable[[], Awaitable[Any]], stats: CacheStats) -> Any:
        self.misses += 1
        stats.misses += 1
        self.note("miss", "redis")
        value = await compute()
        self.write_failures += 1
        self.note("write_failed", "redis")
        self._remember(key, value)
        return value

    async def _compute_owned(
        self, key: str, token: str | None, compute: Callable[[], Awaitable[Any]], stats: CacheStats
    ) -> Any:
        """Compute and keep the value under our marker (`token`), or, token None, beside a foreign one."""
        marker = PREFIX + "inflight:" + key
        self.misses += 1
        stats.misses += 1
        self.note("miss", "redis")
        heartbeat = asyncio.ensure_future(self._extend(marker, token)) if token is not None else None
        try:
            value = await compute()
            try:
                blob = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                await self._call(lambda r: r.set(PREFIX + key, blob))
            except (RedisDown, TypeError, ValueError) as exc:  # not kept; still used, as with a full disk
                self.write_failures += 1
                self.note("write_failed", "redis")
                if not isinstance(exc, RedisDown):
                    self.write_error = describe_error(exc, self.url)
            else:
                self._recovered()
        finally:
            if token is not None and heartbeat is not None:  # ours: stop extending, then release
                heartbeat.cancel()
                # Only once the value is in: a waiter that finds neither value nor marker computes it again.
                # A task of its own, so that it happens even when this computation was cancelled.
                release = asyncio.ensure_future(self._release(marker, token))
                self._tasks.add(release)
                release.add_done_callback(self._tasks.discard)
        self._remember(key, value)
        return value

    async def _extend(self, marker: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.marker_ttl_ms / 3000)
            # One failed extension (a timeout on a loaded machine) must not end the heartbeat: the marker
            # would lapse under a live owner and another replica judge the same item again.
            with contextlib.suppress(RedisDown):
                await self._call(lambda r: r.eval(_EXTEND, 1, marker, token, self.marker_ttl_ms))

    async def _release(self, marker: str, token: str) -> None:
        with contextlib.suppress(RedisDown):  # it lapses on its own
            await self._call(lambda r: r.eval(_RELEASE, 1, marker, token))

    # --- probes and lifetime ------------------------------------------------------------------------

    def probe(self) -> tuple[bool, str]:
        """Readiness: can this replica write to Redis now? A short write with an expiry, on a client of its
        own (sync, short timeouts), that also clears `write_error` once Redis is back. Within the pause after a
        failure it answers at once, so a hung Redis costs the event loop one short timeout per pause at most."""
        if time.monotonic() < self._down_until:
            return False, f"redis not writable: {self.write_error}"
        try:
            retry = self._redis.retry.Retry(self._redis.backoff.NoBackoff(), 0)
            short = min(self.timeout_s, 0.5)  # /readyz is asked every few seconds (off the loop, one at a time)
            options = {**self._options, "socket_timeout": short, "socket_connect_timeout": short}
            client = self._redis.Redis.from_url(self.url, retry=retry, **options)
            try:
                client.set(f"{PREFIX}ready:{os.getpid()}", "1", px=5000)
            finally:
                client.close()
        except (self._redis.RedisError, OSError) as exc:
            if self.write_error is None:  # the probe saw the outage first: the same one line a command writes
                log.error(
                    "cache %s: Redis fails, computing without the cache: %s",
                    redact_url(self.url),
                    describe_error(exc, self.url),
                    extra={"event": "cache_degraded", "layer": "redis"},
                )
                self.note("degraded", "redis")
            self.write_error = describe_error(exc, self.url)  # shown by /readyz
            if not isinstance(exc, self._redis.ResponseError):
                self._down_until = time.monotonic() + self.pause_s
            return False, f"redis not writable: {self.write_error}"
        self._recovered()
        self._down_until = 0.0
        return True, "redis"

    def flush(self, timeout: float | None = 30.0) -> None:
        """Nothing to do: a value is written before it is returned."""

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                if self._loop.is_running():
                    self._loop.create_task(client.aclose())
                else:
                    self._loop.run_until_complete(client.aclose())
