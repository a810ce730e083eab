"""The Redis cache against a real redis-server: sharing, cross-replica single-flight, dead owners, a Redis
that is down, full or holds garbage (degrade and recover, never a hang, never a wrong value)."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from reward.cache.disk import cache_key
from reward.cache.redis_store import PREFIX, RedisStore, open_store
from reward.errors import ConfigError


def run(fn):
    """Run an async test on a fresh event loop (fixtures still reach it: `wraps` keeps the signature)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def counting(value: dict, delay: float = 0.0):
    calls = {"n": 0}

    async def compute() -> dict:
        calls["n"] += 1
        await asyncio.sleep(delay)
        return value

    return compute, calls


def test_open_store_picks_redis_from_env(monkeypatch, redis_server, tmp_path):
    monkeypatch.setenv("REWARD_CACHE_URL", redis_server.url)
    monkeypatch.setenv("REWARD_CACHE_MARKER_TTL", "3")
    monkeypatch.setenv("REWARD_CACHE_TIMEOUT", "7.5")  # a Redis across a region
    store = open_store(tmp_path / "unused")
    assert isinstance(store, RedisStore) and store.marker_ttl_ms == 3000
    assert store.timeout_s == 7.5 and store._options["socket_timeout"] == 7.5
    monkeypatch.setenv("REWARD_CACHE_URL", "memcached://x")
    with pytest.raises(ConfigError, match="REWARD_CACHE_URL"):
        open_store(tmp_path)
    monkeypatch.delenv("REWARD_CACHE_URL")
    assert not isinstance(open_store(tmp_path / "c"), RedisStore)


@run
async def test_a_value_is_in_redis_before_it_is_returned_and_shared(redis_server):
    # what is stored and shared, not the timeouts: on a starved machine (CI) the default 2 s command timeout
    # was an outage, a value computed without the cache (tested on its own below)
    a, b = RedisStore(redis_server.url, timeout_s=15), RedisStore(redis_server.url, timeout_s=15)
    key = cache_key("plan", {"input": "x"})
    compute, calls = counting({"plan": "p", "fake": False})
    assert await a.get_or_compute(key, compute) == {"plan": "p", "fake": False}
    assert a.write_error is None and a.write_failures == 0
    # stored under the same key as the disk cache, as JSON (never pickle: Redis is reachable over a network)
    assert redis_server.client().get(PREFIX + key) == b'{"plan":"p","fake":false}'
    assert await b.get_or_compute(key, compute) == {"plan": "p", "fake": False}
    assert calls["n"] == 1 and b.hits == 1 and b.misses == 0
    assert redis_server.client().keys(PREFIX + "inflight:*") == []  # the marker is gone


@run
async def test_identical_calls_on_two_replicas_share_one_computation(redis_server):
    # The coalescing under test, not the timeouts: on a starved machine a 1 s command timeout is an outage
    # (a miss computed without the cache, tested on its own below).
    a, b = RedisStore(redis_server.url, timeout_s=15), RedisStore(redis_server.url, timeout_s=15)
    compute, calls = counting({"v": 1}, delay=0.1)
    keys = [cache_key("verdict", {"i": i}) for i in range(150)]  # more commands than pooled connections
    results = await asyncio.gather(*(s.get_or_compute(k, compute) for k in keys for s in (a, b)))
    assert results == [{"v": 1}] * 300
    assert (a.write_error, b.write_error) == (None, None)
    assert a.write_failures == b.write_failures == 0
    assert calls["n"] == 150  # the marker goes only once the value is in: nobody computes it twice
    assert a.misses + b.misses == 150 and a.coalesced + b.coalesced == 150


@run
async def test_a_dead_replicas_marker_lapses_and_the_work_is_taken_over(redis_server):
    key = cache_key("plan", {"input": "orphan"})
    # a replica claimed it and died: its marker expires on its own
    redis_server.client().set(PREFIX + "inflight:" + key, "dead-replica", px=400)
    store = RedisStore(redis_server.url)
    compute, calls = counting({"plan": "mine"})
    assert await asyncio.wait_for(store.get_or_compute(key, compute), timeout=5) == {"plan": "mine"}
    assert calls["n"] == 1


async def owner_then_waiter(a: RedisStore, b: RedisStore, name: str, delay: float) -> int:
    """`a` computes a slow item, `b` asks for it meanwhile: both get it; returns how many times it was computed."""
    compute, calls = counting({"slow": True}, delay=delay)
    key = cache_key("plan", {"input": name})
    first = asyncio.ensure_future(a.get_or_compute(key, compute))
    await asyncio.sleep(0.1)
    assert await b.get_or_compute(key, compute) == {"slow": True}
    assert await first == {"slow": True}
    return calls["n"]


@run
async def test_the_owner_extends_its_marker_while_it_computes(redis_server):
    a, b = RedisStore(redis_server.url, marker_ttl_s=0.3), RedisStore(redis_server.url, marker_ttl_s=0.3)
    assert await owner_then_waiter(a, b, "slow", delay=1.2) == 1  # four marker lifetimes


@pytest.mark.parametrize("planted", ["no-expiry", "persisted", "wrong-type", "never-extended"])
@run
async def test_a_marker_that_never_lapses_is_not_waited_on_forever(redis_server, planted):
    """Not a dead replica's marker (it expires): one nobody will ever remove. Computed, kept, marker left."""
    key = cache_key("verdict", {"input": planted})
    marker, client = PREFIX + "inflight:" + key, redis_server.client()
    if planted == "no-expiry":
        client.set(marker, "ghost")
    elif planted == "persisted":  # a live-looking marker someone PERSISTed
        client.set(marker, "ghost", px=5000)
        client.persist(marker)
    elif planted == "wrong-type":
        client.hset(marker, "owner", "ghost")
    else:  # an expiry far off that no heartbeat pushes forward
        client.set(marker, "ghost", ex=86400)
    store = RedisStore(redis_server.url, marker_ttl_s=0.2, timeout_s=15)
    compute, calls = counting({"v": planted})
    assert await asyncio.wait_for(store.get_or_compute(key, compute), timeout=10) == {"v": planted}
    assert calls["n"] == 1 and client.get(PREFIX + key) is not None and client.exists(marker)
    other = RedisStore(redis_server.url, marker_ttl_s=0.2, timeout_s=15)  # the value kept serves everybody
    assert await asyncio.wait_for(other.get_or_compute(key, compute), timeout=5) == {"v": planted}
    assert calls["n"] == 1 and other.hits == 1


@run
async def test_one_failed_extension_does_not_stop_the_heartbeat(redis_server, monkeypatch):
    """A timeout on one extension (a loaded machine) must not let a live owner's marker lapse: another replica
    would judge the same item again."""
    import redis.asyncio

    from reward.cache.redis_store import _EXTEND

    real, failed = redis.asyncio.Redis.eval, []

    async def first_extension_times_out(self, script, *args):
        if script == _EXTEND and not failed:
            failed.append(script)
            raise redis.TimeoutError("one slow extension")
        return await real(self, script, *args)

    monkeypatch.setattr(redis.asyncio.Redis, "eval", first_extension_times_out)
    a = RedisStore(redis_server.url, marker_ttl_s=0.3, timeout_s=15, pause_s=0.05)
    b = RedisStore(redis_server.url, marker_ttl_s=0.3, timeout_s=15)
    assert await owner_then_waiter(a, b, "heartbeat", delay=1.5) == 1  # five marker lifetimes
    assert failed


@run
async def test_a_failed_computation_frees_the_key_for_the_waiters(redis_server):
    a, b = RedisStore(redis_server.url, timeout_s=15), RedisStore(redis_server.url, timeout_s=15)
    key = cache_key("plan", {"input": "fails"})

    async def boom() -> dict:
        await asyncio.sleep(0.2)
        raise RuntimeError("judge failed")

    compute, calls = counting({"plan": "ok"})
    first = asyncio.ensure_future(a.get_or_compute(key, boom))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(b.get_or_compute(key, compute))
    with pytest.raises(RuntimeError):
        await first
    assert await asyncio.wait_for(second, timeout=3) == {"plan": "ok"}  # failures are not cached
    assert calls["n"] == 1


@run
async def test_a_cancelled_owner_releases_its_marker(redis_server):
    store = RedisStore(redis_server.url)
    key = cache_key("plan", {"input": "cancelled"})
    compute, _ = counting({"plan": "x"}, delay=5)
    task = asyncio.ensure_future(store.get_or_compute(key, compute))
    await asyncio.sleep(0.1)
    assert redis_server.client().exists(PREFIX + "inflight:" + key)
    task.cancel()
    await asyncio.sleep(0.2)
    assert not redis_server.client().exists(PREFIX + "inflight:" + key)


@run
async def test_garbage_in_redis_is_a_miss_never_a_value(redis_server):
    key = cache_key("verdict", {"i": "garbage"})
    redis_server.client().set(PREFIX + key, b"\x80not json")
    store = RedisStore(redis_server.url)
    compute, calls = counting({"scores": {}})
    assert await store.get_or_compute(key, compute) == {"scores": {}}
    assert calls["n"] == 1 and store.read_failures == 1


@run
async def test_redis_down_degrades_and_recovers(redis_server):
    store = RedisStore(redis_server.url, timeout_s=3, pause_s=0.2)  # a stopped server refuses at once
    compute, calls = counting({"v": "fresh"})
    redis_server.stop()
    # down: computed, returned, counted, reported; bounded by the timeouts, never a hang
    values = await asyncio.wait_for(
        asyncio.gather(*(store.get_or_compute(cache_key("plan", {"i": i}), compute) for i in range(20))), timeout=10
    )
    assert values == [{"v": "fresh"}] * 20 and calls["n"] == 20
    assert store.write_failures == 20 and store.write_error is not None
    assert store.probe()[0] is False
    redis_server.start()
    await asyncio.sleep(0.3)  # past the pause
    assert await store.get_or_compute(cache_key("plan", {"i": "after"}), compute) == {"v": "fresh"}
    assert store.write_error is None
    assert redis_server.client().get(PREFIX + cache_key("plan", {"i": "after"})) is not None
    assert store.probe() == (True, "redis")


@run
async def test_redis_full_keeps_computing_and_recovers(redis_server):
    admin = redis_server.client()
    compute, calls = counting({"v": 1})
    await RedisStore(redis_server.url).get_or_compute(cache_key("plan", {"i": "kept"}), compute)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", "1")  # every write is refused with OOM
    try:
        store = RedisStore(redis_server.url, pause_s=0.1)
        assert await store.get_or_compute(cache_key("plan", {"i": "full"}), compute) == {"v": 1}
        assert calls["n"] == 2 and store.write_failures == 1
        assert "OutOfMemoryError" in (store.write_error or "")
        assert store.probe()[0] is False
        # a full Redis still answers reads: what it holds is used, not asked of the judge again
        assert await store.get_or_compute(cache_key("plan", {"i": "kept"}), compute) == {"v": 1}
        assert calls["n"] == 2 and store.hits == 1
    finally:
        admin.config_set("maxmemory", "0")
    await asyncio.sleep(0.15)
    assert store.probe() == (True, "redis")
    assert await store.get_or_compute(cache_key("plan", {"i": "room"}), compute) == {"v": 1}
    assert store.write_error is None and admin.get(PREFIX + cache_key("plan", {"i": "room"})) is not None


@run
async def test_a_restarted_redis_is_read_at_once_by_a_replica_that_used_it_before(redis_server):
    """A restart leaves every pooled connection dead: the next command on each reconnects instead of failing,
    so no pause follows in which what Redis holds goes unread and is paid for again."""
    store = RedisStore(redis_server.url, pause_s=60)  # a pause would turn every read below into a miss
    compute, calls = counting({"v": 1}, delay=0.05)
    await asyncio.gather(*(store.get_or_compute(cache_key("plan", {"i": i}), compute) for i in range(30)))
    redis_server.stop()  # thirty pooled connections die with it
    redis_server.start()
    keys = [cache_key("plan", {"j": i}) for i in range(30)]
    redis_server.client().mset({PREFIX + k: '{"v":2}' for k in keys})  # stored by another replica
    values = await asyncio.gather(*(store.get_or_compute(k, compute) for k in keys))
    assert values == [{"v": 2}] * 30 and calls["n"] == 30 and store.hits == 30
    assert store.write_failures == 0 and store.write_error is None
    assert store.probe() == (True, "redis")


@run
async def test_a_late_failure_on_a_replaced_client_leaves_its_successor_alone(redis_server):
    import redis

    from reward.cache.redis_store import RedisDown

    store = RedisStore(redis_server.url, pause_s=0)
    old = store._conn()
    store._discard_client(old)  # failed once: replaced
    fresh = store._conn()

    async def dropped(_client: object) -> None:
        raise redis.ConnectionError("a command still running on the old client fails late")

    with pytest.raises(RedisDown):
        await store._command(dropped, old)
    assert store._client is fresh  # not closed under the commands it runs
    compute, calls = counting({"v": 1})
    assert await store.get_or_compute(cache_key("plan", {"i": "late"}), compute) == {"v": 1}
    assert calls["n"] == 1 and redis_server.client().get(PREFIX + cache_key("plan", {"i": "late"})) is not None


# --- a password in REWARD_CACHE_URL ----------------------------------------------------------------------

SECRET = "hunter22-cache-password"


def secret_free(store: RedisStore, caplog: pytest.LogCaptureFixture) -> str:
    """What the store logged, after checking that the password is nowhere in it, its write_error or its probe."""
    logged = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    for shown in (logged, store.write_error or "", store.probe()[1]):
        assert SECRET not in shown, shown
    return logged


@run
async def test_a_password_in_the_url_is_in_no_log_line_write_error_or_probe(redis_server, caplog):
    import redis

    def admin(password: str | None = SECRET) -> redis.Redis:
        return redis.Redis(port=redis_server.port, password=password, socket_timeout=2)

    admin(None).config_set("requirepass", SECRET)
    url = redis_server.url.replace("redis://", f"redis://default:{SECRET}@")
    store = RedisStore(url, timeout_s=3, pause_s=0.05)  # a stopped server refuses at once: no timeout waited
    compute, _ = counting({"v": 1})
    try:
        with caplog.at_level(logging.WARNING, logger="reward.cache"):
            admin().set(PREFIX + cache_key("plan", {"i": "bad"}), b"\x80")
            await store.get_or_compute(cache_key("plan", {"i": "bad"}), compute)  # "does not decode"
            redis_server.stop()
            await store.get_or_compute(cache_key("plan", {"i": "down"}), compute)  # "Redis fails"
            assert store.write_error is not None and store.probe()[0] is False
            redis_server.start()
            admin(None).config_set("requirepass", SECRET)
            await asyncio.sleep(0.1)  # past the pause
            assert store.probe() == (True, "redis")  # "succeed again"
            logged = secret_free(store, caplog)
    finally:
        admin().config_set("requirepass", "")
    assert "does not decode" in logged and "Redis fails" in logged and "succeed again" in logged
    assert "default:***@" in logged


@pytest.mark.parametrize("form", ["redis://user:{}@127.0.0.1:{}/0", "redis://127.0.0.1:{1}/0?password={0}"])
@run
async def test_a_redis_error_that_quotes_the_url_is_redacted(form, caplog, monkeypatch):
    """redis-py's messages may carry the URL (or the password alone): redacted before they are logged,
    kept in write_error or answered by the probe."""
    import redis
    import redis.asyncio.connection

    from tests.server_proc import free_port

    url = form.format(SECRET, free_port())  # nobody listens there

    def refuse(*_: object) -> None:
        raise redis.ConnectionError(f"Error connecting to {url} (password {SECRET})")

    async def refuse_async(*_: object) -> None:
        refuse()

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "connect", refuse_async)
    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", refuse)
    store = RedisStore(url, timeout_s=0.5, pause_s=0.05)
    compute, _ = counting({"v": 1})
    with caplog.at_level(logging.WARNING, logger="reward.cache"):
        assert await store.get_or_compute(cache_key("plan", {"i": 1}), compute) == {"v": 1}
        await asyncio.sleep(0.1)  # past the pause: the probe really tries
        assert store.probe()[0] is False
        logged = secret_free(store, caplog)
    assert "Redis fails" in logged and "Error connecting to" in logged
