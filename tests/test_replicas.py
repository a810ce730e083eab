"""Replicas of `reward serve` on one real Redis: one judge call per distinct item whichever replica asks,
nothing lost when a replica is killed mid-request, a late replica answers from the cache, and Redis going
down mid-run costs judge calls but never an answer or a wrong number."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import distinct_groups
from tests.server_proc import ServerProcess, server_env


def score(server: ServerProcess, body: list[dict[str, Any]]) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/score", json={"groups": body}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def rewards(response: dict[str, Any]) -> dict[tuple[str, str], float | None]:
    return {(g["group_id"], r["id"]): r["reward"] for g in response["groups"] for r in g["rollouts"]}


def ready_within(server: ServerProcess, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while httpx.get(f"{server.url}/readyz").status_code != 200:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stored(redis_server) -> int:
    return len([k for k in redis_server.client().keys("reward:*") if b":inflight:" not in k and b":ready:" not in k])


@pytest.fixture(scope="module")
def replica_env(fake_judge_server, redis_server_session, tmp_path_factory):
    return server_env(
        dict(os.environ),
        fake_judge_server.api_base,
        tmp_path_factory.mktemp("unused") / "cache",
        REWARD_CACHE_URL=redis_server_session.url,
        # Generous for a loaded CI machine: a 1 s command timeout there is an outage (items judged without the
        # cache, so judged twice) and a 2 s marker lapses under a starved owner. A stopped Redis still refuses
        # at once, and a killed replica's markers lapse within 5 s.
        REWARD_CACHE_TIMEOUT="10",
        REWARD_CACHE_MARKER_TTL="5",
    )


@pytest.fixture(scope="module")
def replicas(replica_env):
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda _: ServerProcess(replica_env), range(2)))
    yield started
    for s in started:
        s.stop()


def test_two_replicas_make_one_judge_call_per_distinct_item(replicas, replica_env, fake_judge, redis_server):
    fake_judge.state.latency = 0.2  # calls overlap across replicas
    body = distinct_groups("shared")
    with ThreadPoolExecutor(4) as pool:  # both replicas, twice each, all at once
        answers = list(pool.map(lambda s: score(s, body), [*replicas, *replicas]))
    calls = fake_judge.counts()["total"]
    # every call made is a distinct item stored once: an item judged twice would make calls > keys
    assert calls == stored(redis_server) == 1 + 4 * (4 + 4)  # one shared reference; per group 4 plans, 4 verdicts
    assert sum(a["usage"]["judge_calls"] for a in answers) == calls
    assert all(r["status"] == "ok" for a in answers for g in a["groups"] for r in g["rollouts"])
    assert all(rewards(a) == rewards(answers[0]) for a in answers)

    # a third replica started later answers from the cache with zero calls
    fake_judge.reset()
    late = ServerProcess(replica_env)
    try:
        again = score(late, body)
    finally:
        late.stop()
    assert again["usage"]["judge_calls"] == 0 and fake_judge.counts()["total"] == 0
    assert rewards(again) == rewards(answers[0])


def test_redis_down_mid_run_degrades_and_recovers(replicas, fake_judge, redis_server):
    a, b = replicas
    body = distinct_groups("outage", n_groups=2)
    assert httpx.get(f"{a.url}/readyz").status_code == 200
    redis_server.stop()
    try:
        down = score(a, body)  # answered in full, computed without the cache
        assert all(r["status"] == "ok" for g in down["groups"] for r in g["rollouts"])
        assert down["usage"]["judge_calls"] > 0
        ready = httpx.get(f"{a.url}/readyz")
        assert ready.status_code == 503 and "redis" in ready.json()["cache"]
    finally:
        redis_server.start()
    # recovered, no restart (Redis is left alone for a 1 s pause after a failure, then tried again)
    assert ready_within(b, 5) and ready_within(a, 5)
    # b's pooled connections died with the old server: b reconnects and reads and writes Redis at once, so
    # everything it computes again (nothing had been kept) is now stored, none of it silently unkept
    up = score(b, body)
    assert up["usage"]["judge_calls"] == down["usage"]["judge_calls"] == stored(redis_server)
    assert rewards(up) == rewards(down)  # the same numbers, with or without the cache
    assert score(a, body)["usage"]["judge_calls"] == 0  # from its memory layer
    after = distinct_groups("after-outage", n_groups=1)  # a reads what b stores now: the shared cache is back for both
    assert score(b, after)["usage"]["judge_calls"] > 0 and score(a, after)["usage"]["judge_calls"] == 0


def post_quietly(url: str, body: list[dict[str, Any]]) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server is killed while this request waits
        httpx.post(url, json={"groups": body}, timeout=60)


def test_killing_a_replica_mid_request_loses_nothing(replicas, fake_judge, redis_server):
    """Last in this module: it kills one of the module's replicas."""
    fake_judge.state.latency = 0.3
    body = distinct_groups("killed", n_groups=6)
    victim, survivor = replicas
    try:
        threading.Thread(target=post_quietly, args=(f"{victim.url}/score", body)).start()
        deadline = time.monotonic() + 30
        while stored(redis_server) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        victim.proc.kill()  # SIGKILL: no shutdown, its in-flight markers stay behind
        victim.proc.wait()
        kept = stored(redis_server)
        assert kept >= 8
        answer = score(survivor, body)
    finally:
        victim.stop()
    assert all(r["status"] == "ok" for g in answer["groups"] for r in g["rollouts"])
    # every judgement the dead replica had stored is used; only what was still missing is asked for
    assert answer["usage"]["judge_calls"] == stored(redis_server) - kept
