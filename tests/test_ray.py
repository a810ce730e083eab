"""The Ray Serve application (reward.service.ray). Its options are checked whenever Ray is installed; a local Ray
instance with two replicas on one Redis is opt-in (REWARD_TEST_RAY=1: it takes about 40 s on two cores):

    REWARD_TEST_RAY=1 python -m pytest -q tests/test_ray.py
"""

from __future__ import annotations

import os

import httpx
import pytest
from pydantic import ValidationError

pytest.importorskip("ray.serve", reason="the `ray` extra is not installed")

from reward.service.ray import RayArgs, build, deployment_options
from tests.conftest import distinct_groups
from tests.server_proc import free_port


def test_autoscaling_by_default_fixed_replicas_on_request(monkeypatch):
    monkeypatch.setenv("REWARD_CACHE_URL", "redis://redis:6379/0")
    auto = deployment_options(RayArgs())
    assert auto["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 32}
    assert "num_replicas" not in auto
    # the replicas get this shell's REWARD_* settings, so they share its Redis
    assert auto["ray_actor_options"]["runtime_env"]["env_vars"]["REWARD_CACHE_URL"] == "redis://redis:6379/0"
    fixed = deployment_options(RayArgs(num_replicas=4, num_cpus=2, env={"OPENAI_API_KEY": "k"}))
    assert fixed["num_replicas"] == 4 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"]["num_cpus"] == 2
    assert fixed["ray_actor_options"]["runtime_env"]["env_vars"]["OPENAI_API_KEY"] == "k"
    with pytest.raises(ValidationError):
        build({"num_replica": 2})  # a misspelt argument is an error, not a silent default


@pytest.mark.ray
@pytest.mark.skipif(os.environ.get("REWARD_TEST_RAY") != "1", reason="opt-in: REWARD_TEST_RAY=1 (local Ray, ~40 s)")
def test_two_ray_replicas_serve_from_one_redis(fake_judge, redis_server):
    import ray
    from ray import serve

    env = {
        "REWARD_JUDGE_MODEL": "openai/test-judge",
        "REWARD_JUDGE_API_BASE": fake_judge.api_base,
        "REWARD_JUDGE_API_KEY": "sk-test",
        "REWARD_CACHE_URL": redis_server.url,
    }
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build({"num_replicas": 2, "num_cpus": 0.5, "env": env}), name="reward", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/readyz").json()["cache"] == "redis"
        body = {"groups": distinct_groups("ray")}
        first = httpx.post(f"{url}/score", json=body, timeout=120).json()
        assert all(r["status"] == "ok" for g in first["groups"] for r in g["rollouts"])
        assert first["usage"]["judge_calls"] == fake_judge.counts()["total"] == 1 + 4 * (4 + 4)
        again = [httpx.post(f"{url}/score", json=body, timeout=120).json() for _ in range(4)]
        assert [a["usage"]["judge_calls"] for a in again] == [0] * 4  # whichever replica answers
    finally:
        serve.shutdown()
        ray.shutdown()
