"""Plan and verdict cache: diskcache on disk, a small in-memory layer in front, and single-flight.

The disk layer makes a judgement survive restarts and be shared by processes on one directory; the
memory layer keeps hot keys (a group's reference plan) off the disk; single-flight makes identical
requests that are in flight at the same moment share one judge call instead of racing to the cache.

diskcache is synchronous, so it never runs on the event loop: reads go to a small pool of their own
(litellm uses the default executor for every call; it must not queue behind the cache), and writes go to
one writer thread that commits them in batches, one transaction each (many threads writing at once would
fight over SQLite's write lock). A computed value is returned once its write is committed, so a judgement
that was paid for survives even a SIGKILL right after it.

A cache is an optimisation, never a point of failure: a write that fails (disk full, read-only or corrupt
directory) is logged and counted, its value is still returned (computed, just not kept), `write_error`
says why until a later write succeeds, and the writer thread lives on. A read that fails is a miss.

Values are JSON, never pickles: a value read back is parsed as JSON (a pickled entry, planted or written by
an older version, is refused unread and counted in `invalid_values`) and then checked by the caller's
`accept` before it is used; a value that fails is a miss, computed again and overwritten.

Every lookup can be told to an `observer(event, layer, n)` (the service's metrics: hits and misses by layer,
coalesced calls, failed writes, degradation and recovery); the cache itself imports no metrics library.

Shared work is owned by no caller: the computation runs in a task of its own that every caller awaits
through a shield, so one caller's cancellation (a request's deadline) never reaches the others; it is
cancelled only when nobody waits for it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import diskcache

from reward.errors import RewardError

log = logging.getLogger("reward.cache")
_PROBE_KEY = "reward:ready-probe"  # written for /readyz while writes fail; no entry key looks like it
_PROBE = "probe"  # queued to the writer thread by /readyz while writes fail


class CacheStats:
    """Per-request cache counters (the Store keeps process-wide ones too)."""

    __slots__ = ("coalesced", "hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.coalesced = 0
        self.misses = 0


def cache_key(kind: str, payload: dict[str, Any]) -> str:
    blob = json.dumps({"kind": kind, **payload}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"{kind}:{hashlib.sha256(blob.encode('utf-8')).hexdigest()}"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CacheObserver(Protocol):
    """Told of what the cache does: `event` is hit / miss (a lookup that reached `layer`: memory, disk, redis),
    coalesced (waited on an identical computation), write_failed (`n` values not kept), degraded / recovered
    (writes started failing / succeed again). May be called from the writer thread."""

    def __call__(self, event: str, layer: str, n: int = 1) -> None: ...


class _Write:
    """One pending write; `done` resolves on the caller's event loop once it is committed."""

    __slots__ = ("done", "key", "loop", "value")

    def __init__(self, key: str, value: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.key, self.value, self.loop = key, value, loop
        self.done: asyncio.Future[None] = loop.create_future()

    def committed(self) -> None:
        def resolve() -> None:
            if not self.done.done():
                self.done.set_result(None)

        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self.loop.call_soon_threadsafe(resolve)


class CacheDirError(RewardError):
    """The cache directory cannot be opened (not creatable, not writable, not a diskcache)."""


class _Flight:
    """One computation in flight and how many callers wait for it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.waiters = 0


class _NoPickleDisk(diskcache.Disk):
    """diskcache's Disk, except that it never unpickles: a cache directory is storage someone else may write
    to, and unpickling runs code. This store writes JSON text only, so a pickled value is not ours."""

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise _Untrusted("a pickled value (refused unread: this cache stores JSON text)")
        return super().fetch(mode, filename, value, read)


class _Untrusted(RewardError, ValueError):
    """A stored value this cache will not read (it never leaves the store: a miss)."""


def open_disk(directory: Path) -> diskcache.Cache:
    try:
        return diskcache.Cache(str(directory), disk=_NoPickleDisk)
    except Exception as exc:  # sqlite3.DatabaseError, OSError, ...: one line naming the directory
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise CacheDirError(f"cache directory {directory}: cannot be used ({reason})") from exc


class Store:
    """The plan/verdict cache: an in-memory LRU in front of a diskcache directory (None: memory only);
    JSON values only, concurrent identical requests coalesced."""

    def __init__(self, directory: str | Path | None, memory_items: int = 4096) -> None:
        self.directory = Path(directory) if directory else None
        self._disk = open_disk(self.directory) if self.directory else None
        self._mem: OrderedDict[str, Any] = OrderedDict()
        self._mem_items = memory_items
        self._inflight: dict[str, _Flight] = {}
        self._pending: dict[str, Any] = {}  # written to memory, not yet committed to disk
        self._lock = threading.Lock()
        self.hits = 0  # served from memory or disk
        self.coalesced = 0  # waited on an identical computation already in flight
        self.misses = 0  # computed
        self.write_failures = 0  # writes that could not be committed (their values were still used)
        self.read_failures = 0
        self.invalid_values = 0  # read back but refused: a pickle, not JSON, or not what the caller accepts
        self.write_error: str | None = None  # why the last write failed; None once one succeeds again
        self.observer: CacheObserver | None = None  # set by the service (its metrics)
        self._probing = False  # a readiness write is queued to the writer thread (one at a time)
        if self._disk is not None:
            self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="reward-cache-read")
            self._writes: queue.SimpleQueue[_Write | threading.Event | str | None] = queue.SimpleQueue()
            self._writer = threading.Thread(target=self._write_loop, name="reward-cache-write", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        assert self._disk is not None
        stop = False
        while not stop:
            batch = [self._writes.get()]
            while len(batch) < 256:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            items = [b for b in batch if isinstance(b, _Write)]
            if _PROBE in batch and not items and self.write_error is not None:
                self._write_probe()
            self._probing = self._probing and _PROBE not in batch
            if items:
                try:
                    with self._disk.transact():
                        for w in items:
                            self._disk.set(w.key, json.dumps(w.value, ensure_ascii=False, separators=(",", ":")))
                except Exception as exc:  # disk full, read-only, corrupt: degrade, never die
                    self.write_failures += len(items)
                    self.note("write_failed", "disk", len(items))
                    if self.write_error is None:
                        log.error(
                            "cache %s: writes fail, computing without the cache: %s",
                            self.directory,
                            exc,
                            extra={"event": "cache_degraded", "layer": "disk"},
                        )
                        self.note("degraded", "disk")
                    self.write_error = f"{type(exc).__name__}: {exc}"
                else:
                    if self.write_error is not None:
                        log.warning(
                            "cache %s: writes succeed again",
                            self.directory,
                            extra={"event": "cache_recovered", "layer": "disk"},
                        )
                        self.note("recovered", "disk")
                    self.write_error = None
                with self._lock:
                    for w in items:
                        self._pending.pop(w.key, None)
                for w in items:
                    w.committed()
            for b in batch:
                if isinstance(b, threading.Event):
                    b.set()
                elif b is None:
                    stop = True

    def note(self, event: str, layer: str, n: int = 1) -> None:
        """Tell the observer, if any; an observer that fails never fails the cache."""
        if self.observer is not None:
            with contextlib.suppress(Exception):
                self.observer(event, layer, n)

    def _read(self, key: str) -> Any:
        with self._lock:
            if key in self._pending:
                return self._pending[key]
        assert self._disk is not None
        try:
            raw = self._disk.get(key)
        except _Untrusted as exc:
            self.refused(key, str(exc))
            return None
        except Exception as exc:  # an unreadable cache is a miss, not a failure
            self.read_failures += 1
            log.warning("cache %s: read failed: %s", self.directory, exc)
            return None
        if raw is None:
            return None
        try:
            if not isinstance(raw, str):
                raise ValueError(f"a {type(raw).__name__}, not JSON text")
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:  # corrupt or foreign: a miss
            self.read_failures += 1
            log.warning("cache %s: value of %s does not decode, computing it again: %s", self.directory, key, exc)
            return None

    def refused(self, key: str, why: str) -> None:
        """A value read back and not used: counted and logged; the caller computes it again."""
        self.invalid_values += 1
        log.warning("cache %s: value of %s refused, computing it again: %s", self.directory or "", key, why)

    def accepted(self, key: str, value: Any, accept: Callable[[Any], Any] | None) -> bool:
        if accept is None:
            return True
        try:
            accept(value)
        except Exception as exc:  # whatever a hostile value makes the check raise: a miss, never a 500
            self.refused(key, f"{type(exc).__name__}: {exc}")
            return False
        return True

    def _remember(self, key: str, value: Any) -> None:
        self._mem[key] = value
        self._mem.move_to_end(key)
        if len(self._mem) > self._mem_items:
            self._mem.popitem(last=False)

    async def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Awaitable[Any]],
        stats: CacheStats | None = None,
        accept: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Return the cached value for `key`, or compute it once (failures are not cached). A stored value
        is used only if `accept(value)` does not raise; one that does is refused and computed again."""
        stats = stats or CacheStats()
        if key in self._mem:
            self.hits += 1
            stats.hits += 1
            self.note("hit", "memory")
            self._mem.move_to_end(key)
            return self._mem[key]
        self.note("miss", "memory")
        flight = self._inflight.get(key)
        if flight is not None:
            self.coalesced += 1
            stats.coalesced += 1
            self.note("coalesced", "memory")
        else:
            flight = _Flight(asyncio.ensure_future(self._load(key, compute, stats, accept)))
            self._inflight[key] = flight
            flight.task.add_done_callback(functools.partial(self._forget, key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()  # nobody waits any more
                self._landed(key, flight)

    def _forget(self, key: str, flight: _Flight, _: object) -> None:
        self._landed(key, flight)

    def _landed(self, key: str, flight: _Flight) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        if flight.task.done() and not flight.task.cancelled():
            flight.task.exception()  # retrieved: a failure nobody awaited is not an orphan error

    async def _load(
        self, key: str, compute: Callable[[], Awaitable[Any]], stats: CacheStats, accept: Callable[[Any], Any] | None
    ) -> Any:
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(self._readers, self._read, key) if self._disk is not None else None
        if value is not None and not self.accepted(key, value, accept):
            value = None
        if value is not None:
            self.hits += 1
            stats.hits += 1
            self.note("hit", "disk")
        else:
            self.misses += 1
            stats.misses += 1
            if self._disk is not None:
                self.note("miss", "disk")
            value = await compute()
            if self._disk is not None:
                with self._lock:
                    self._pending[key] = value
                write = _Write(key, value, loop)
                self._writes.put(write)
                await write.done
        self._remember(key, value)
        return value

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until every write queued so far is committed."""
        if self._disk is not None:
            done = threading.Event()
            self._writes.put(done)
            done.wait(timeout)

    def probe(self) -> tuple[bool, str]:
        """Readiness (`/readyz`): (ready, detail). Not ready while writes fail (scoring goes on without the
        cache meanwhile) or when a probe file cannot be written to the directory. While writes fail, each call
        queues a small write through the cache itself (one at a time, on the writer thread) whose success clears
        the state for the next call: the disk may have recovered while the traffic only hits the memory layer
        (nothing new to write), and an unready replica gets no new traffic to prove it."""
        if self.write_error is not None:
            if self._disk is not None and not self._probing:  # on the writer thread: never on the event loop
                self._probing = True
                self._writes.put(_PROBE)
            return False, f"writes failing: {self.write_error}"
        if self.directory is None:
            return True, "disabled"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".ready-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return False, f"not writable: {exc.strerror}"
        return True, "writable"

    def _write_probe(self) -> bool:
        """One write through the disk cache (a key no entry can have, expiring), on the writer thread (SQLite
        may wait up to its busy timeout: never on the event loop); success clears `write_error`."""
        assert self._disk is not None
        try:
            self._disk.set(_PROBE_KEY, "1", expire=60)
        except Exception:  # still full, read-only, corrupt: still not ready
            return False
        log.warning(
            "cache %s: writes succeed again", self.directory, extra={"event": "cache_recovered", "layer": "disk"}
        )
        self.note("recovered", "disk")
        self.write_error = None
        return True

    def close(self) -> None:
        if self._disk is not None:
            self._writes.put(None)
            self._writer.join(timeout=30)
            self._readers.shutdown(wait=True)
            self._disk.close()
