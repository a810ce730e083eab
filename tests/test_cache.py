import asyncio
import contextlib
import json
import os
import pickle

from reward.cache.disk import CacheStats, Store, cache_key
from tests.conftest import full_disk


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
        assert json.loads(other.get("key")) == "v"  # JSON text, never a pickle
    store.close()


def test_full_disk_degrades_to_computing_without_the_cache_and_recovers(tmp_path, monkeypatch):
    store = Store(tmp_path)
    disk = full_disk(store, monkeypatch)
    computed = []

    async def compute(value):
        computed.append(value)
        return value

    async def run(keys):
        # wait_for only turns the old hang into a failure; nothing here is slow
        return await asyncio.wait_for(
            asyncio.gather(*(store.get_or_compute(k, lambda k=k: compute(k)) for k in keys)), 20
        )

    assert asyncio.run(run(["a", "b", "c"])) == ["a", "b", "c"]
    assert store.write_error and "disk is full" in store.write_error and store.write_failures == 3
    assert asyncio.run(run(["d"])) == ["d"]  # the writer thread survived: later writes do not hang
    assert store.write_failures == 4 and store._writer.is_alive()
    disk["full"] = False  # space freed: the next write succeeds and the error clears by itself
    assert asyncio.run(run(["e"])) == ["e"] and store.write_error is None
    store.close()
    again = Store(tmp_path)
    assert json.loads(again._disk.get("e")) == "e" and again._disk.get("a") is None  # values are JSON text
    again.close()


def test_unreadable_cache_is_a_miss_not_a_failure(tmp_path, monkeypatch):
    import sqlite3

    store = Store(tmp_path)

    def broken(*a, **kw):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store._disk, "get", broken)

    async def compute():
        return "v"

    assert asyncio.run(store.get_or_compute("k", compute)) == "v" and store.read_failures == 1
    store.close()


def test_corrupt_or_unwritable_cache_directory_is_one_clear_error(tmp_path):
    import os

    import pytest

    from reward.cache.disk import CacheDirError

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "cache.db").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(CacheDirError, match=f"cache directory {corrupt}: cannot be used"):
        Store(corrupt)
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(CacheDirError, match=r"cache directory .*file"):
        Store(blocked / "sub")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(CacheDirError, match="cache directory"):
            Store(ro / "c")
        ro.chmod(0o700)


def test_one_callers_cancellation_never_reaches_another_sharing_the_work(tmp_path):
    store = Store(tmp_path)
    started = []

    async def slow():
        started.append(1)
        await asyncio.sleep(0.2)
        return "plan"

    async def run():
        first = asyncio.create_task(store.get_or_compute("ref", slow))
        await asyncio.sleep(0)
        second = asyncio.create_task(store.get_or_compute("ref", slow))
        await asyncio.sleep(0.05)
        first.cancel()  # the first request's deadline
        with contextlib.suppress(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(run()) == "plan" and len(started) == 1
    store.close()


def test_work_nobody_waits_for_is_cancelled(tmp_path):
    store = Store(tmp_path)
    finished = []

    async def slow():
        await asyncio.sleep(5)
        finished.append(1)

    async def run():
        task = asyncio.create_task(store.get_or_compute("k", slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return dict(store._inflight)

    assert asyncio.run(run()) == {} and not finished
    store.close()


def test_read_only_cache_directory_is_one_clear_error_even_as_root(tmp_path, monkeypatch):
    """Root ignores file modes, so the read-only database is simulated where SQLite would report it."""
    import sqlite3

    import diskcache
    import pytest

    from reward.cache.disk import CacheDirError

    def readonly(*a, **kw):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(diskcache, "Cache", readonly)
    with pytest.raises(CacheDirError, match=r"cache directory .*ro: cannot be used \(attempt to write a readonly"):
        Store(tmp_path / "ro")


class _Planted:
    """A value whose unpickling would run a command: what an attacker with write access to cache.db plants."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_is_never_unpickled_and_is_computed_again(tmp_path):
    marker = tmp_path / "ran"
    store = Store(tmp_path / "c")
    store._disk.set("k", _Planted(marker))  # diskcache pickles a non-text value: the planted row
    assert pickle.loads(pickle.dumps(_Planted(tmp_path / "check"))) == 0 and (tmp_path / "check").exists()
    computed = []

    async def compute():
        computed.append(1)
        return {"plan": "fresh"}

    assert asyncio.run(store.get_or_compute("k", compute)) == {"plan": "fresh"}
    assert not marker.exists() and computed == [1] and store.invalid_values == 1
    store.close()
    again = Store(tmp_path / "c")  # the recomputed value replaced the planted one
    assert json.loads(again._disk.get("k")) == {"plan": "fresh"}
    again.close()


def test_a_value_the_caller_does_not_accept_is_a_miss_and_is_overwritten(tmp_path):
    store = Store(tmp_path)
    store._disk.set("k", json.dumps({"score": 1000}))

    def accept(value):
        if value["score"] > 10:
            raise ValueError("off the scale")

    async def compute():
        return {"score": 7}

    assert asyncio.run(store.get_or_compute("k", compute, accept=accept)) == {"score": 7}
    assert store.invalid_values == 1
    store.close()
    again = Store(tmp_path)
    assert asyncio.run(again.get_or_compute("k", compute, accept=accept)) == {"score": 7}
    assert again.invalid_values == 0 and again.hits == 1
    again.close()
