"""Hedged judge calls: a call that outlives the usual latency gets one duplicate; the first answer wins.

A judge's latency has a long tail: a GRPO step waits for its slowest call, so one call stuck behind a busy
replica holds the whole step. With REWARD_HEDGE_QUANTILE = q, a call attempt still running after the q-th
quantile of its role's recent latencies (a bounded window; no hedging before enough were seen) is sent once
more; the first valid answer (one that did not raise) is taken and the other call cancelled. Duplicates are
capped at REWARD_HEDGE_MAX_FRACTION of the calls (a running count). Off by default.

The hedger knows nothing of litellm: the judge hands it the attempt, a slot to take for it (a wait) and a
way to take a spare slot for the duplicate at once or not at all (a duplicate never waits: with every slot
taken the hedge is skipped, so it can never starve or deadlock the calls it duplicates).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Release = Callable[[], Awaitable[None]]

WINDOW = 512  # latencies kept per role: recent enough to follow the judge, enough for a 0.99 quantile
MIN_SAMPLES = 20  # no hedging before this many latencies of the role were seen


@dataclass
class HedgeStats:
    """Running counts, per judge: `calls` attempts that could have been hedged, `hedges` duplicates sent,
    `duplicate_won` of them answered first, `cancelled` losers cut off (their cost is unknown), `skipped_cap`
    / `skipped_no_slot` hedges not sent (over the fraction / no spare slot or budget)."""

    calls: int = 0
    hedges: int = 0
    duplicate_won: int = 0
    cancelled: int = 0
    skipped_cap: int = 0
    skipped_no_slot: int = 0


@dataclass
class Hedged(Generic[T]):
    """One hedged attempt's outcome: the answer taken, the loser's answer when it came in too (paid for),
    and how many losers were cancelled (sent, so maybe paid for, at an unknown cost)."""

    value: T
    extra: list[T] = field(default_factory=list)
    cancelled: int = 0


class Latencies:
    """The recent latencies of one role, for its hedge delay."""

    def __init__(self, window: int = WINDOW, min_samples: int = MIN_SAMPLES) -> None:
        self._seen: deque[float] = deque(maxlen=window)
        self.min_samples = min_samples

    def add(self, seconds: float) -> None:
        self._seen.append(seconds)

    def quantile(self, q: float) -> float | None:
        """The q-th quantile (nearest rank), or None while fewer than `min_samples` were seen."""
        if len(self._seen) < self.min_samples:
            return None
        ordered = sorted(self._seen)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def spare_slot(sem: asyncio.Semaphore, take: Callable[[], Awaitable[Release | None]]) -> Release | None:
    """A duplicate's call-in-flight slot under `sem` and whatever `take` holds (the judge limits), both
    taken at once or not at all: the release of both, or None."""
    if sem.locked():
        return None
    await sem.acquire()  # free: returns at once
    try:
        held = await take()
    except BaseException:
        sem.release()
        raise
    if held is None:
        sem.release()
        return None

    async def release() -> None:
        try:
            await held()
        finally:
            sem.release()

    return release


def _retrieve(task: asyncio.Task[Any]) -> None:
    """A loser's exception is not an error of the call: retrieved so asyncio does not log it."""
    if not task.cancelled():
        task.exception()


class Hedger:
    """`await hedger.run(role, attempt, slot, spare)`: one call attempt, hedged when it runs late."""

    def __init__(self, quantile: float | None, max_fraction: float, min_samples: int = MIN_SAMPLES) -> None:
        self.quantile = quantile
        self.max_fraction = max_fraction
        self.stats = HedgeStats()
        self._latencies = {role: Latencies(min_samples=min_samples) for role in ("condense", "grade")}

    @property
    def enabled(self) -> bool:
        return self.quantile is not None and self.max_fraction > 0

    def delay(self, role: str) -> float | None:
        """How long a call of this role may run before it is hedged; None: not yet known (or off)."""
        if self.quantile is None:
            return None
        return self._latencies[role].quantile(self.quantile)

    def _may_hedge(self) -> bool:
        """Under the cap: duplicates at most `max_fraction` of the calls so far (this one included)."""
        if self.stats.hedges + 1 <= self.max_fraction * self.stats.calls:
            return True
        self.stats.skipped_cap += 1
        return False

    async def run(
        self,
        role: str,
        attempt: Callable[[], Awaitable[T]],
        slot: Callable[[], AbstractAsyncContextManager[Any]],
        spare: Callable[[], Awaitable[Release | None]],
    ) -> Hedged[T]:
        """Run `attempt` inside `slot()` (waited for); once it has run past the role's hedge delay, and
        `spare()` gives a slot at once, run it a second time there. Raises the first call's error when
        both fail. Cancelling this cancels both calls."""
        self.stats.calls += 1
        latencies = self._latencies[role]
        started = asyncio.Event()
        t0 = 0.0

        async def primary() -> T:
            nonlocal t0
            async with slot():
                t0 = time.monotonic()
                started.set()
                return await attempt()

        first = asyncio.ensure_future(primary())
        first.add_done_callback(_retrieve)
        tasks = [first]
        try:
            began = asyncio.ensure_future(started.wait())
            try:
                await asyncio.wait([first, began], return_when=asyncio.FIRST_COMPLETED)
            finally:
                began.cancel()
            delay = self.delay(role)
            if not first.done() and delay is not None:
                await asyncio.wait([first], timeout=max(0.0, t0 + delay - time.monotonic()))
            release = None
            if delay is not None and not first.done() and self._may_hedge():
                release = await spare()
                if release is None:
                    self.stats.skipped_no_slot += 1
            if release is None:
                value = await first  # raises the attempt's error, for the retry loop to judge
                latencies.add(time.monotonic() - t0)
                return Hedged(value)
            self.stats.hedges += 1
            second = asyncio.ensure_future(self._duplicate(attempt, release, latencies))
            second.add_done_callback(_retrieve)
            tasks.append(second)
            return await self._first_answer(first, second, t0, latencies)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)  # each has released its slot when this returns

    @staticmethod
    async def _duplicate(attempt: Callable[[], Awaitable[T]], release: Release, latencies: Latencies) -> T:
        start = time.monotonic()
        try:
            value = await attempt()
        finally:
            await asyncio.shield(release())
        latencies.add(time.monotonic() - start)
        return value

    async def _first_answer(
        self, first: asyncio.Task[T], second: asyncio.Task[T], t0: float, latencies: Latencies
    ) -> Hedged[T]:
        pending = {first, second}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            answered = [t for t in (first, second) if t in done and t.exception() is None]
            if not answered:
                continue
            winner = answered[0]
            if winner is first:
                latencies.add(time.monotonic() - t0)
            else:
                self.stats.duplicate_won += 1
                if first in pending:  # cut off past the delay: a lower bound, kept so the tail stays seen
                    latencies.add(time.monotonic() - t0)
            extra = [t.result() for t in answered[1:]]  # both answered at once: both paid for
            self.stats.cancelled += len(pending)
            return Hedged(winner.result(), extra, len(pending))
        return Hedged(first.result())  # both failed: the first call's error


def hedge_stats(judge: Any) -> HedgeStats | None:
    """The hedging counts of a judge (or of the judge a CachedJudge wraps): None where it does not hedge."""
    judge = getattr(judge, "judge", judge)
    hedger = getattr(judge, "hedger", None)
    return hedger.stats if isinstance(hedger, Hedger) and hedger.enabled else None
