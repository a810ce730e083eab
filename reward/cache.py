"""Plan and verdict cache: diskcache on disk, a small in-memory layer in front, and single-flight.

The disk layer makes a judgement survive restarts and be shared by processes on one directory; the
memory layer keeps hot keys (a group's reference plan) off the disk; single-flight makes identical
requests that are in flight at the same moment share one judge call instead of racing to the cache.
diskcache is synchronous, so disk access runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import diskcache


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


class Store:
    def __init__(self, directory: str | Path | None, memory_items: int = 4096) -> None:
        self.directory = Path(directory) if directory else None
        self._disk = diskcache.Cache(str(self.directory)) if self.directory else None
        self._mem: OrderedDict[str, Any] = OrderedDict()
        self._mem_items = memory_items
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self.hits = 0  # served from memory or disk
        self.coalesced = 0  # waited on an identical computation already in flight
        self.misses = 0  # computed

    def _remember(self, key: str, value: Any) -> None:
        self._mem[key] = value
        self._mem.move_to_end(key)
        if len(self._mem) > self._mem_items:
            self._mem.popitem(last=False)

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[Any]], stats: CacheStats | None = None
    ) -> Any:
        """Return the cached value for `key`, or compute it once (failures are not cached)."""
        stats = stats or CacheStats()
        if key in self._mem:
            self.hits += 1
            stats.hits += 1
            self._mem.move_to_end(key)
            return self._mem[key]
        pending = self._inflight.get(key)
        if pending is not None:
            self.coalesced += 1
            stats.coalesced += 1
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await asyncio.to_thread(self._disk.get, key) if self._disk is not None else None
            if value is not None:
                self.hits += 1
                stats.hits += 1
            else:
                self.misses += 1
                stats.misses += 1
                value = await compute()
                if self._disk is not None:
                    await asyncio.to_thread(self._disk.set, key, value)
            self._remember(key, value)
            future.set_result(value)
            return value
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark retrieved: with no waiter asyncio would log it as lost
            raise
        finally:
            del self._inflight[key]

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
