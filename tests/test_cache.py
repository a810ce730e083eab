import asyncio
import contextlib

from reward.cache import CacheStats, Store, cache_key


def test_cache_key_is_canonical_and_kind_scoped():
    assert cache_key("plan", {"a": 1, "b": [1, 2]}) == cache_key("plan", {"b": [1, 2], "a": 1})
    assert cache_key("plan", {"a": 1}) != cache_key("verdict", {"a": 1})


def test_write_behind_values_reach_disk_and_survive_a_new_store(tmp_path):
    calls = []

    async def compute():
        calls.append(1)
        return {"plan": "P"}

    async def run(store):
        stats = CacheStats()
        values = await asyncio.gather(*(store.get_or_compute("k", compute, stats) for _ in range(5)))
        return values, stats

    store = Store(tmp_path)
    values, stats = asyncio.run(run(store))
    assert values == [{"plan": "P"}] * 5 and len(calls) == 1  # single-flight
    assert (stats.misses, stats.coalesced) == (1, 4)
    store.close()  # flushes pending writes
    again = Store(tmp_path)
    values, stats = asyncio.run(run(again))
    assert len(calls) == 1 and stats.hits == 1 and stats.coalesced == 4
    again.close()


def test_failures_are_not_cached(tmp_path):
    store = Store(tmp_path)
    attempts = []

    async def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("judge down")
        return "ok"

    async def run():
        with contextlib.suppress(RuntimeError):
            await store.get_or_compute("k", flaky)
        return await store.get_or_compute("k", flaky)

    assert asyncio.run(run()) == "ok" and len(attempts) == 2
    store.close()


def test_flush_makes_pending_writes_visible_to_another_process_view(tmp_path):
    import diskcache

    store = Store(tmp_path)

    async def run():
        async def compute():
            return "v"

        await store.get_or_compute("key", compute)

    asyncio.run(run())
    store.flush()
    with diskcache.Cache(str(tmp_path)) as other:
        assert other.get("key") == "v"
    store.close()
