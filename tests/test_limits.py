"""Judge limits shared by replicas: rpm, tpm and calls in flight per role, held in one Redis."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time

import pytest
import yaml

from reward.errors import ConfigError
from reward.judge.limits import JudgeLimiter, RoleLimits, namespace, role_limits, router_params
from reward.scoring.build import router_config


def deployment(name: str, api_base: str = "http://j", **limits: int) -> dict:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/test-judge", "api_base": api_base, "api_key": "sk-test", **limits},
    }


def test_limits_come_from_the_deployments_or_a_limits_block(tmp_path, monkeypatch):
    config = {
        "model_list": [
            deployment("condense", "http://a", rpm=60, max_parallel_requests=4),
            deployment("condense", "http://b", rpm=40, max_parallel_requests=2),
            deployment("grade", tpm=9000),
        ]
    }
    limits = role_limits(config)
    assert limits["condense"] == RoleLimits(rpm=100, tpm=None, max_parallel_requests=6)  # summed per role
    assert limits["grade"] == RoleLimits(tpm=9000)
    # a deployment without a limit leaves its role without that limit
    assert role_limits({"model_list": [*config["model_list"], deployment("grade")]})["grade"] == RoleLimits()
    # the block wins, and is not passed to litellm's Router
    config["limits"] = {"grade": {"rpm": 500, "max_parallel_requests": 8}}
    assert role_limits(config)["grade"] == RoleLimits(rpm=500, tpm=9000, max_parallel_requests=8)
    assert "limits" not in router_params(config) and "limits" in config
    for bad in ({"judge": {"rpm": 1}}, {"grade": {"rpm": 0}}, {"grade": {"rpm": "fast"}}, {"grade": {"qps": 1}}):
        with pytest.raises(ConfigError):
            role_limits({**config, "limits": bad})
    # the same deployments share limits; another judge on the same Redis has its own
    assert namespace(config) == namespace(router_params(config))
    assert namespace(config) != namespace({"model_list": [deployment("grade", "http://c")]})
    # REWARD_JUDGE_ROUTER_CONFIG: a bad block is a start-up error
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({**config, "limits": {"grade": {"rpm": -1}}}))
    monkeypatch.setenv("REWARD_JUDGE_ROUTER_CONFIG", str(path))
    with pytest.raises(ConfigError, match=r"limits\.grade\.rpm"):
        router_config()


def replicas(url: str | None, n: int = 2, **limits: int) -> list[JudgeLimiter]:
    """Limiters as separate replicas would hold them: nothing shared but the Redis."""
    return [
        JudgeLimiter({"grade": RoleLimits(**limits)}, url, "test", window_s=1, lease_ttl_s=0.6, pause_s=0.1)
        for _ in range(n)
    ]


def most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + width) for t in times)


def test_two_replicas_never_exceed_a_shared_rpm_within_a_window(redis_server):
    async def run() -> list[float]:
        admitted: list[float] = []

        async def call(limiter: JudgeLimiter) -> None:
            async with limiter.slot("grade"):
                admitted.append(time.monotonic())

        a, b = replicas(redis_server.url, rpm=4)
        await asyncio.gather(*(call(x) for x in [a, b] * 6))
        return admitted

    admitted = asyncio.run(run())
    assert len(admitted) == 12  # every call waited its turn: none failed
    assert most_in_any_window(admitted, 0.9) <= 4  # together, never more than the one limit
    assert admitted[-1] - admitted[0] >= 2.0  # 12 calls at 4 a second need three windows


def test_a_shared_token_budget_is_charged_before_each_call(redis_server):
    async def run() -> list[float]:
        admitted: list[float] = []

        async def call(limiter: JudgeLimiter) -> None:
            async with limiter.slot("grade", tokens=400):
                admitted.append(time.monotonic())

        a, b = replicas(redis_server.url, tpm=1000)
        await asyncio.gather(*(call(x) for x in [a, b] * 3))
        return admitted

    admitted = asyncio.run(run())
    assert len(admitted) == 6
    assert most_in_any_window(admitted, 0.45) <= 2  # 1000 tokens a second hold two 400-token calls
    assert redis_server.client().keys("reward:limits*tpm*")


def test_two_replicas_together_never_hold_more_than_the_shared_calls_in_flight(redis_server):
    async def run() -> int:
        in_flight = peak = 0

        async def call(limiter: JudgeLimiter) -> None:
            nonlocal in_flight, peak
            async with limiter.slot("grade"):
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.02)
                in_flight -= 1

        a, b = replicas(redis_server.url, max_parallel_requests=3)
        await asyncio.gather(*(call(x) for x in [a, b] * 15))
        return peak

    assert asyncio.run(run()) == 3  # reached, never exceeded
    assert redis_server.client().zcard("reward:limits:test:grade:in_flight") == 0  # every lease given back


HOLDER = """
import asyncio, sys
from reward.judge.limits import JudgeLimiter, RoleLimits
async def main():
    limiter = JudgeLimiter({"grade": RoleLimits(max_parallel_requests=1)}, sys.argv[1], "test", lease_ttl_s=0.6)
    async with limiter.slot("grade"):
        print("in", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_a_dead_replicas_lease_expires(redis_server):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_server.url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "in"
        key = "reward:limits:test:grade:in_flight"
        time.sleep(0.8)
        assert redis_server.client().zcard(key) == 1  # renewed while its call runs
    finally:
        holder.kill()
        holder.wait()

    async def run() -> bool:
        (other,) = replicas(redis_server.url, 1, max_parallel_requests=1)
        async with asyncio.timeout(10), other.slot("grade"):
            return redis_server.client().zcard(key) == 1

    assert asyncio.run(run())  # the dead holder's lease lapsed: the other replica holds the only one


def test_redis_down_degrades_to_process_limits_and_recovers(redis_server, caplog):
    async def run() -> tuple[int, int]:
        (limiter,) = replicas(redis_server.url, 1, max_parallel_requests=2, rpm=100)
        in_flight = peak = 0

        async def call() -> None:
            nonlocal in_flight, peak
            async with limiter.slot("grade"):
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.02)
                in_flight -= 1

        redis_server.stop()
        async with asyncio.timeout(20):
            await asyncio.gather(*(call() for _ in range(8)))  # no hang, no failure: held per process
        down_peak = peak
        await asyncio.to_thread(redis_server.start)
        await asyncio.sleep(0.2)  # past the pause
        async with asyncio.timeout(20):
            await asyncio.gather(*(call() for _ in range(4)))
        return down_peak, len(redis_server.client().keys("reward:limits*rpm*"))

    with caplog.at_level(logging.WARNING, logger="reward.judge.limits"):
        down_peak, shared_keys = asyncio.run(run())
    assert down_peak == 2  # the cap still held, in the process
    assert shared_keys == 1  # counted in Redis again once it answered
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Redis failed" in m for m in messages) == 1  # one line per outage, not per call
    assert any("answers again" in m for m in messages)


def test_judge_calls_of_two_replicas_wait_for_the_shared_cap_and_tokens(fake_judge, redis_server, monkeypatch):
    """Through LiteLLMJudge: the judge itself never sees more calls at once than the shared cap, and every
    call is charged its prompt's tokens + max_tokens before it goes out."""
    from reward.judge.base import Usage
    from reward.judge.litellm_judge import LiteLLMJudge
    from tests.conftest import settings_for

    monkeypatch.setenv("REWARD_CACHE_URL", redis_server.url)
    config = {
        "model_list": [
            deployment("condense", fake_judge.api_base),
            deployment("grade", fake_judge.api_base, max_parallel_requests=2, tpm=10**6),
        ],
        "num_retries": 0,
    }
    clients = [LiteLLMJudge(settings_for(fake_judge), {**config, "model_list": list(config["model_list"])})]
    clients.append(LiteLLMJudge(settings_for(fake_judge), {**config, "model_list": list(config["model_list"])}))
    assert clients[0].limiter.limits == {"grade": RoleLimits(tpm=10**6, max_parallel_requests=2)}
    fake_judge.state.latency = 0.05
    messages = [{"role": "user", "content": "grade this " * 50}]

    async def run() -> None:
        calls = [c.complete("grade", messages, Usage()) for c in clients for _ in range(8)]
        await asyncio.gather(*calls)

    asyncio.run(run())
    assert fake_judge.counts()["total"] == 16
    assert fake_judge.state.peak_in_flight == 2  # reached, never exceeded, by both replicas together
    estimate = clients[0]._estimate_tokens("grade", clients[0].call_settings("grade"), messages)
    assert estimate > clients[0].call_settings("grade").max_tokens + 50  # the prompt's tokens are counted too
    counted = redis_server.client().keys("reward:limits*tpm*")
    assert counted and sum(int(redis_server.client().get(k) or 0) for k in counted) == 16 * estimate


def test_a_call_waiting_past_its_deadline_takes_nothing_and_leaks_nothing(redis_server):
    """The request's deadline cancels the wait; the limiter itself never fails a call."""
    key = "reward:limits:test:grade:in_flight"

    async def run() -> tuple[int, int]:
        a, b = replicas(redis_server.url, max_parallel_requests=1, rpm=1)
        async with a.slot("grade"):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3), b.slot("grade"):  # waits on the cap, then the deadline
                    pass
            held = redis_server.client().zcard(key)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3), b.slot("grade"):  # a lease now, but the one rpm is spent
                pass
        return held, redis_server.client().zcard(key)

    assert asyncio.run(run()) == (1, 0)


def test_the_shared_limits_wait_on_redis_as_long_as_the_cache_does(fake_judge, monkeypatch):
    """REWARD_CACHE_TIMEOUT is one patience for the Redis both share: a loaded Redis that the cache still uses
    must not count as down for the judge limits after a hard-coded second."""
    from reward.judge.litellm_judge import LiteLLMJudge
    from tests.conftest import settings_for

    monkeypatch.setenv("REWARD_CACHE_TIMEOUT", "7")
    assert LiteLLMJudge(settings_for(fake_judge)).limiter.timeout_s == 7.0
