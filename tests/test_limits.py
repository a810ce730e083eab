"""Judge limits shared by replicas: litellm's Router counts each deployment's usage in the shared Redis."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import yaml

from reward.config import router_config
from reward.limits import ENFORCING_STRATEGY, shared_limits
from tests.server_proc import ServerProcess, server_env
from tests.test_replicas import groups, score

RPM = 10


def deployment(name: str, api_base: str, **limits: int) -> dict:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/test-judge", "api_base": api_base, "api_key": "sk-test", **limits},
    }


def test_the_routers_usage_goes_to_the_shared_redis_and_limits_are_enforced(tmp_path, monkeypatch):
    config = {"model_list": [deployment("condense", "http://j", rpm=60), deployment("grade", "http://j", tpm=9000)]}
    shared = shared_limits(config, "redis://cache:6379/0")
    assert shared["redis_url"] == "redis://cache:6379/0" and shared["routing_strategy"] == ENFORCING_STRATEGY
    assert "redis_url" not in config  # not modified in place
    # what the config says itself wins: its own Redis, its own strategy
    own = shared_limits({**config, "redis_host": "limits", "routing_strategy": "least-busy"}, "redis://cache:6379/0")
    assert "redis_url" not in own and own["routing_strategy"] == "least-busy"
    # no limits, no Redis: nothing to add
    plain = {"model_list": [deployment("condense", "http://j"), deployment("grade", "http://j")]}
    assert shared_limits(plain, None) == plain
    # wired into REWARD_JUDGE_ROUTER_CONFIG
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("REWARD_JUDGE_ROUTER_CONFIG", str(path))
    monkeypatch.setenv("REWARD_CACHE_URL", "redis://cache:6379/0")
    assert router_config()["redis_url"] == "redis://cache:6379/0"


def statuses(answer: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in answer["groups"]:
        for r in g["rollouts"]:
            key = r["status"] if r["status"] == "ok" else r["error"]["category"]
            out[key] = out.get(key, 0) + 1
            assert (r["reward"] is None) == (r["status"] != "ok")  # over the limit is an error, never a number
    return out


def test_two_replicas_count_their_calls_in_one_redis_window(fake_judge, redis_server, tmp_path):
    """What litellm shares: once a replica has synced a window that other replicas filled, it refuses calls.
    (It does not hold the limit across replicas in a steady stream: bench/replicas.py, README.)"""
    config = tmp_path / "router.yaml"
    deployments = [deployment(name, fake_judge.api_base, rpm=RPM) for name in ("condense", "grade")]
    config.write_text(yaml.safe_dump({"model_list": deployments, "num_retries": 0}))
    env = server_env(
        dict(os.environ),
        fake_judge.api_base,
        tmp_path / "unused",
        REWARD_CACHE_URL=redis_server.url,
        REWARD_JUDGE_ROUTER_CONFIG=str(config),
    )
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: ServerProcess(env), range(2))
    try:
        while datetime.now(UTC).second > 35:  # litellm's windows are calendar minutes: stay inside one
            time.sleep(1)
        minute = datetime.now(UTC).minute
        first = score(a, groups("a"))
        time.sleep(0.5)  # litellm syncs its counters with Redis every 0.1 s
        score(b, groups("b"))
        time.sleep(0.5)
        calls = fake_judge.counts()
        third = score(a, groups("c"))  # A now counts B's calls too: nothing more this minute
        assert datetime.now(UTC).minute == minute
    finally:
        a.stop()
        b.stop()
    assert statuses(first).get("judge_rate_limited", 0) > 0
    assert statuses(third) == {"judge_rate_limited": 16}
    assert fake_judge.counts() == calls  # the third request never reached the judge
    # each replica's first burst is admitted before it syncs (litellm's lag): at most RPM per replica
    assert calls["condense"] <= 2 * RPM and calls["grade"] <= 2 * RPM
    # the windows are in the shared Redis (litellm's keys: deployment id, model, minute)
    assert redis_server.client().keys("global_router:*:rpm:*")
