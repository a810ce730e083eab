"""Hedged judge calls: the hedger alone (asyncio, no socket), then through the litellm judge over real HTTP
(the fake judge), on the plain path, with the concurrency limit full and on the Router path."""

import asyncio
import contextlib
import time

import pytest

from reward.judge.base import Usage
from reward.judge.hedge import Hedger, HedgeStats, Latencies, hedge_stats, spare_slot
from reward.judge.limits import JudgeLimiter, RoleLimits
from reward.judge.litellm_judge import LiteLLMJudge
from tests.conftest import TEST_MODEL, settings_for

MSG = [{"role": "user", "content": "## Task Query\n\nhello"}]


class Calls:
    """Attempts whose latencies are scripted in order; records how each ended and the slots released."""

    def __init__(self, *delays: float, fail: tuple[int, ...] = ()) -> None:
        self.delays = list(delays)
        self.fail = fail
        self.n = 0
        self.ended: dict[int, str] = {}
        self.released = 0

    async def attempt(self) -> int:
        i = self.n
        self.n += 1
        try:
            await asyncio.sleep(self.delays[i] if i < len(self.delays) else 0.0)
        except asyncio.CancelledError:
            self.ended[i] = "cancelled"
            raise
        if i in self.fail:
            self.ended[i] = "failed"
            raise RuntimeError(f"attempt {i} failed")
        self.ended[i] = "answered"
        return i

    @contextlib.asynccontextmanager
    async def slot(self):
        yield

    async def spare(self):
        async def release() -> None:
            self.released += 1

        return release


def primed(quantile: float = 0.5, fraction: float = 1.0) -> Hedger:
    h = Hedger(quantile, fraction, min_samples=3)
    for s in (0.01, 0.01, 0.01):
        h._latencies["grade"].add(s)
    return h


def run(h: Hedger, calls: Calls, spare=None):
    return asyncio.run(h.run("grade", calls.attempt, calls.slot, spare or calls.spare))


def test_quantile_needs_enough_latencies_and_forgets_old_ones():
    lat = Latencies(window=10, min_samples=5)
    for s in (1, 2, 3, 4):
        lat.add(s)
    assert lat.quantile(0.5) is None
    lat.add(5)
    assert lat.quantile(0.5) == 3 and lat.quantile(0.99) == 5
    for _ in range(10):
        lat.add(0.1)
    assert lat.quantile(0.99) == 0.1  # the window holds only the last 10


def test_no_hedge_before_latencies_are_known():
    h = Hedger(0.5, 1.0, min_samples=3)
    calls = Calls(0.2)
    out = run(h, calls)
    assert out.value == 0 and calls.n == 1 and h.stats.hedges == 0


def test_a_late_call_is_duplicated_and_the_first_answer_wins():
    h = primed()
    calls = Calls(5.0, 0.01)
    t0 = time.monotonic()
    out = run(h, calls)
    assert time.monotonic() - t0 < 2.0
    assert out.value == 1 and out.cancelled == 1 and out.extra == []
    assert calls.ended == {0: "cancelled", 1: "answered"} and calls.released == 1
    assert (h.stats.hedges, h.stats.duplicate_won, h.stats.cancelled) == (1, 1, 1)


def test_a_call_within_the_delay_is_not_duplicated():
    h = primed(quantile=0.99)
    h._latencies["grade"].add(1.0)  # the 0.99 quantile is now 1 s
    calls = Calls(0.1)
    assert run(h, calls).value == 0 and calls.n == 1 and h.stats.hedges == 0


def test_the_primary_can_still_win_and_the_duplicate_is_cancelled():
    h = primed()
    calls = Calls(0.15, 5.0)
    out = run(h, calls)
    assert out.value == 0 and calls.ended == {0: "answered", 1: "cancelled"} and h.stats.duplicate_won == 0


def test_an_error_is_not_an_answer_the_other_call_is_awaited():
    h = primed()
    calls = Calls(0.3, 0.02, fail=(1,))  # the duplicate fails first: the primary's answer is taken
    assert run(h, calls).value == 0
    both = Calls(0.1, 0.02, fail=(0, 1))
    with pytest.raises(RuntimeError, match="attempt 0"):  # both failed: the first call's error
        run(primed(), both)


def test_duplicates_are_capped_at_the_fraction_of_calls():
    h = primed(fraction=0.25)
    for _ in range(20):  # the un-hedged calls' latencies must not move the median
        h._latencies["grade"].add(0.01)
    for _ in range(8):
        run(h, Calls(0.2, 0.0))
    assert h.stats.calls == 8 and h.stats.hedges == 2 and h.stats.skipped_cap == 6


def test_no_spare_slot_means_no_hedge_and_the_call_still_ends():
    h = primed()

    async def none():
        return None

    calls = Calls(0.2, 0.0)
    assert run(h, calls, spare=none).value == 0 and calls.n == 1 and h.stats.skipped_no_slot == 1


def test_cancelling_a_hedged_call_cancels_both_and_releases_the_slot():
    h = primed()
    calls = Calls(5.0, 5.0)

    async def main():
        task = asyncio.ensure_future(h.run("grade", calls.attempt, calls.slot, calls.spare))
        await asyncio.sleep(0.3)
        assert calls.n == 2  # hedged by now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert calls.ended == {0: "cancelled", 1: "cancelled"} and calls.released == 1


def test_a_spare_slot_is_taken_at_once_or_not_at_all():
    async def main():
        sem = asyncio.Semaphore(1)

        async def free():
            async def release() -> None:
                return None

            return release

        async def limited():
            return None

        release = await spare_slot(sem, free)
        assert release is not None and sem.locked()
        assert await spare_slot(sem, free) is None  # full: skipped, never waited for
        await release()
        assert not sem.locked()
        assert await spare_slot(sem, limited) is None and not sem.locked()  # the limits said no: slot given back

        limiter = JudgeLimiter({"grade": RoleLimits(max_parallel_requests=1)})
        async with limiter.slot("grade"):
            assert await limiter.try_slot("grade") is None
        held = await limiter.try_slot("grade")
        assert held is not None
        await held()

    asyncio.run(main())


# --- through the litellm judge, over HTTP ----------------------------------------------------------------


def judge_hedging(client: LiteLLMJudge) -> LiteLLMJudge:
    client.hedger = Hedger(0.5, 1.0, min_samples=2)
    return client


async def calls(client: LiteLLMJudge, usage: Usage, n: int) -> None:
    for _ in range(n):
        await client.complete("condense", MSG, usage)


def test_the_judge_hedges_a_stuck_call_and_counts_both(fake_judge):
    client = judge_hedging(LiteLLMJudge(settings_for(fake_judge)))
    usage = Usage()

    async def main() -> float:
        await calls(client, usage, 2)  # latencies seen: the delay is now known
        fake_judge.script({"kind": "condense", "delay": 5})
        t0 = time.monotonic()
        reply = await client.complete("condense", MSG, usage)
        assert reply.content.startswith("EXECUTION PLAN")
        await client.aclose()
        return time.monotonic() - t0

    assert asyncio.run(main()) < 5.0  # the duplicate answered before the stuck call's 5 s
    assert fake_judge.counts()["condense"] == 4  # 2 priming calls, the stuck one and its duplicate
    assert client.hedger.stats.hedges == 1 and client.hedger.stats.cancelled == 1
    assert usage.calls["condense"] == 4 and client.usage.calls["condense"] == 4
    assert usage.cost_known is False  # the cancelled call was sent: its cost is unknown
    # the duplicate is visible per request: the 2 priming calls were not hedged, the stuck one once
    assert usage.hedged == 1 and client.usage.hedged == 1
    total = Usage()
    total.add(usage)
    assert total.hedged == 1  # folded like the other counts


def test_no_hedge_when_every_call_slot_is_taken(fake_judge):
    client = judge_hedging(LiteLLMJudge(settings_for(fake_judge, concurrency=1)))

    async def main() -> float:
        await calls(client, Usage(), 2)
        fake_judge.script({"kind": "condense", "delay": 1.5})
        t0 = time.monotonic()
        await client.complete("condense", MSG, Usage())
        await client.aclose()
        return time.monotonic() - t0

    assert asyncio.run(main()) >= 1.4  # waited for the stuck call: no slot for a duplicate, no deadlock
    assert client.hedger.stats.hedges == 0 and client.hedger.stats.skipped_no_slot == 1
    assert fake_judge.counts()["condense"] == 3


def router(fj, **params) -> dict:
    return {
        "model_list": [
            {
                "model_name": role,
                "litellm_params": {"model": TEST_MODEL, "api_base": fj.api_base, "api_key": "k", **params},
            }
            for role in ("condense", "grade")
        ]
    }


def test_the_router_path_is_hedged_too_within_its_limits(fake_judge):
    client = judge_hedging(LiteLLMJudge(settings_for(fake_judge), router(fake_judge)))
    capped = judge_hedging(LiteLLMJudge(settings_for(fake_judge), router(fake_judge, max_parallel_requests=1)))

    async def main() -> None:
        for c in (client, capped):
            await calls(c, Usage(), 2)
            fake_judge.script({"kind": "condense", "delay": 1.5})
            await c.complete("condense", MSG, Usage())
        await client.aclose()

    asyncio.run(main())
    assert client.hedger.stats.hedges == 1 and client.hedger.stats.duplicate_won == 1
    # one call in flight allowed for the role: the duplicate would pass the limit, so it is skipped
    assert capped.hedger.stats.hedges == 0 and capped.hedger.stats.skipped_no_slot == 1


def test_hedging_is_off_by_default_and_set_by_the_environment(fake_judge, monkeypatch):
    assert not LiteLLMJudge(settings_for(fake_judge)).hedger.enabled
    assert hedge_stats(LiteLLMJudge(settings_for(fake_judge))) is None
    monkeypatch.setenv("REWARD_HEDGE_QUANTILE", "0.9")
    monkeypatch.setenv("REWARD_HEDGE_MAX_FRACTION", "0.05")
    h = LiteLLMJudge(settings_for(fake_judge)).hedger
    assert h.enabled and h.quantile == 0.9 and h.max_fraction == 0.05
    assert hedge_stats(LiteLLMJudge(settings_for(fake_judge))) == HedgeStats()


def test_a_retried_attempt_is_hedged_inside_the_retry_loop(fake_judge):
    client = judge_hedging(LiteLLMJudge(settings_for(fake_judge, num_retries=2)))
    usage = Usage()

    async def main() -> float:
        # latencies of 1 s seen: the hedge delay is ~1 s, so the first attempt's immediate 503 always comes back
        # before a duplicate of it could go (on a loaded machine a ~10 ms delay let attempt 1 be hedged instead)
        fake_judge.script({"kind": "condense", "delay": 1.0}, {"kind": "condense", "delay": 1.0})
        await calls(client, usage, 2)
        fake_judge.script(
            {"kind": "condense", "status": 503, "headers": {"Retry-After": "0"}}, {"kind": "condense", "delay": 12}
        )
        t0 = time.monotonic()
        await client.complete("condense", MSG, usage)
        await client.aclose()
        return time.monotonic() - t0

    # the 503, then its retry stuck for 12 s: the answer is that retry's duplicate's, before the 12 s are out (when
    # the duplicate goes depends on the latencies seen, which a loaded machine stretches: no tighter bound)
    assert asyncio.run(main()) < 12.0
    assert fake_judge.counts()["condense"] == 5 and client.hedger.stats.hedges == 1
    assert client.hedger.stats.duplicate_won == 1
    assert usage.calls["condense"] == 4  # the failed attempt is not a call answered, the cancelled one is counted


def test_a_deadline_during_a_hedged_pair_charges_both_calls_sent(fake_judge, monkeypatch):
    """The request's deadline cuts off a call and its duplicate, both sent: each is counted at an unknown cost
    and the budget keeps both worst cases (either may be billed)."""
    from reward.judge.base import CallSettings

    priced = "openai/gpt-4o-mini"
    monkeypatch.setenv("REWARD_MAX_COST", "1")
    settings = settings_for(fake_judge, condense=CallSettings(priced, 0.0, 512), grade=CallSettings(priced, 0.0, 512))
    client = judge_hedging(LiteLLMJudge(settings))
    primed, usage = Usage(), Usage()

    async def main() -> None:
        await calls(client, primed, 2)
        fake_judge.script({"kind": "condense", "delay": 2}, {"kind": "condense", "delay": 2})
        task = asyncio.ensure_future(client.complete("condense", MSG, usage))
        while fake_judge.counts()["condense"] < 4 and not task.done():  # the call and its duplicate are out
            await asyncio.sleep(0.005)
        task.cancel()  # as the request's deadline does
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()

    asyncio.run(main())
    assert client.hedger.stats.hedges == 1 and fake_judge.counts()["condense"] == 4
    assert usage.calls["condense"] == 2 and usage.cost_known is False and primed.cost_known
    call = client.call_settings("condense")
    worst = client.budget.worst_case("condense", client._estimate_tokens("condense", call, MSG) - 512, 512)
    assert worst > 0 and client.budget.spent == pytest.approx(primed.cost + 2 * worst)
    assert client.budget.reserved == pytest.approx(0)
