"""GET /metrics: a real `reward serve` (one worker, and two) after scored steps, parsed with prometheus-client's
own parser, each value checked against what the answers said; the Grafana dashboard queries only metrics
that exist; the observers the judge client, its limiter and the cache call."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reward.cache.disk import Store
from reward.judge.limits import JudgeLimiter, RoleLimits
from tests.conftest import ROOT, distinct_groups, example_groups, full_disk
from tests.server_proc import ServerProcess, server_env

TOKEN = "metrics-scrape-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DASHBOARD = ROOT / "deploy" / "grafana" / "reward.json"


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of /metrics: sample name -> {sorted labels: value}; family names map to {} (a family
    with no sample yet is still declared)."""
    r = httpx.get(f"{url}/metrics", headers=AUTH, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        found.setdefault(family.name, {})
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def total(metrics: dict, name: str, **labels: str) -> float:
    """The sum of a sample's values over the series whose labels include `labels`."""
    return sum(v for key, v in metrics.get(name, {}).items() if set(labels.items()) <= set(key))


def answered(body: dict) -> Counter:
    """(status, penalty) -> rollouts, from the answers themselves."""
    return Counter((r["status"], r["penalty"] or "none") for g in body["groups"] for r in g["rollouts"])


@pytest.fixture(scope="module")
def served(fake_judge_server, tmp_path_factory):
    env = server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("metrics") / "cache")
    env.update(REWARD_TOKENS=TOKEN)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = ServerProcess(env)
    yield proc
    proc.stop()


@pytest.mark.slow
def test_metrics_after_one_scored_step_match_the_answer(served, fake_judge):
    groups = example_groups()[:2]
    first = httpx.post(f"{served.url}/score", json={"groups": groups}, headers=AUTH, timeout=60).json()
    m = scrape(served.url)
    usage, sent = first["usage"], sum(len(g["rollouts"]) for g in groups)

    # rollouts: every one sent is counted once, by the status and penalty the answer gave it
    assert total(m, "reward_rollouts_total") == sent
    for (status, penalty), n in answered(first).items():
        assert total(m, "reward_rollouts_total", status=status, penalty=penalty) == n
    assert total(m, "reward_groups_total") == len(groups)
    assert total(m, "reward_rollout_reward_count") == sum(
        1 for g in first["groups"] for r in g["rollouts"] if r["reward"] is not None
    )
    # judge calls answered = the answer's usage, per stage; tokens likewise
    assert total(m, "reward_judge_calls_total", outcome="ok") == usage["judge_calls"] > 0
    assert total(m, "reward_judge_calls_total", stage="condense", outcome="ok") == usage["condense_calls"]
    assert total(m, "reward_judge_calls_total", stage="grade", outcome="ok") == usage["grade_calls"]
    assert total(m, "reward_judge_call_duration_seconds_count") == usage["judge_calls"]
    assert total(m, "reward_judge_tokens_total", kind="prompt") == usage["prompt_tokens"]
    assert total(m, "reward_judge_tokens_total", kind="completion") == usage["completion_tokens"]
    assert total(m, "reward_judge_tokens_total", kind="cached") == usage["cached_tokens"]
    # the test judge has no price: every call is counted as unpriced, none as $0
    assert usage["cost"] is None and total(m, "reward_judge_unpriced_calls_total") == usage["judge_calls"]
    assert total(m, "reward_judge_in_flight") == 0
    # cache: nothing cached yet, so every judgement computed is a disk miss; coalesced as the answer says
    assert total(m, "reward_cache_misses_total", layer="disk") == usage["judge_calls"]
    assert total(m, "reward_cache_coalesced_total", layer="memory") == usage["coalesced"]
    assert total(m, "reward_cache_hits_total") == usage["cache_hits"] == 0
    assert total(m, "reward_http_requests_total", endpoint="/score", method="POST", status="200") == 1
    assert total(m, "reward_http_request_duration_seconds_count", endpoint="/score") == 1
    assert total(m, "reward_workers") == 1
    assert "python_gc_objects_collected" in m  # one process, no metrics directory: its own registry

    # the same step again: answered from the memory layer, no judge call
    again = httpx.post(f"{served.url}/score", json={"groups": groups}, headers=AUTH, timeout=60).json()
    m2 = scrape(served.url)
    assert again["usage"]["judge_calls"] == 0 and again["usage"]["cache_hits"] > 0
    assert total(m2, "reward_cache_hits_total", layer="memory") == again["usage"]["cache_hits"]
    assert total(m2, "reward_judge_calls_total") == usage["judge_calls"]
    assert total(m2, "reward_rollouts_total") == 2 * sent
    # the first scrape was counted once it was answered
    assert total(m2, "reward_http_requests_total", endpoint="/metrics", status="200") >= 1


@pytest.mark.slow
def test_judge_failures_are_counted_by_category_and_refusals_by_route(served, fake_judge):
    fake_judge.script(*[{"kind": "condense", "status": 401, "message": "bad key"}] * 3)
    body = {"groups": distinct_groups("fail", n_groups=1, n_rollouts=2)}
    try:
        r = httpx.post(f"{served.url}/score", json=body, headers=AUTH, timeout=60)
    finally:
        fake_judge.reset()
    errors = [x["error"]["category"] for x in r.json()["groups"][0]["rollouts"] if x["error"]]
    assert errors and set(errors) == {"judge_auth"}
    assert httpx.post(f"{served.url}/score", json={}).status_code == 401  # no token
    assert httpx.get(f"{served.url}/no/such/path", headers=AUTH).status_code == 404
    m = scrape(served.url)
    assert total(m, "reward_judge_calls_total", outcome="judge_auth") >= len(errors)
    assert total(m, "reward_rollout_errors_total", category="judge_auth") == len(errors)
    assert total(m, "reward_http_requests_total", endpoint="/score", status="401") == 1
    # a path no route has is one series, whatever the path
    assert total(m, "reward_http_requests_total", endpoint="other", status="404") == 1
    assert not any("/no/such/path" in str(key) for key in m["reward_http_requests_total"])


@pytest.mark.slow
def test_metrics_need_the_token_like_every_endpoint(served):
    assert httpx.get(f"{served.url}/metrics").status_code == 401
    assert httpx.get(f"{served.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{served.url}/metrics", headers=AUTH).status_code == 200


def dashboard_metrics() -> set[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    assert len(exprs) >= 20
    return {name for e in exprs for name in re.findall(r"\breward_[a-z_]+\b", e)}


@pytest.mark.slow
def test_every_metric_the_dashboard_queries_exists(served, fake_judge):
    httpx.post(f"{served.url}/score", json={"groups": example_groups()[:1]}, headers=AUTH, timeout=60)
    m = scrape(served.url)
    suffixes = ("_total", "_bucket", "_sum", "_count")
    missing = {
        name
        for name in dashboard_metrics()
        if name not in m and not any(name.endswith(s) and name.removesuffix(s) in m for s in suffixes)
    }
    assert missing == set()
    assert {"reward_judge_calls_total", "reward_cache_hits_total", "reward_http_request_duration_seconds_bucket"} <= (
        dashboard_metrics()
    )


@pytest.mark.slow
def test_two_workers_add_up_and_the_metrics_directory_is_removed(fake_judge_server, fake_judge, tmp_path):
    parent = tmp_path / "prom"
    env = server_env(dict(os.environ), fake_judge_server.api_base, tmp_path / "cache")
    env.update(REWARD_TOKENS=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(parent))
    proc = ServerProcess(env, "--workers", "2")
    try:
        runs = list(parent.iterdir())
        assert len(runs) == 1 and runs[0].name.startswith("reward-metrics-")  # this run's own directory
        answers = []
        for i in range(6):  # a new connection each: the kernel spreads them over both workers' sockets
            body = {"groups": distinct_groups(f"w{i}", n_groups=1, n_rollouts=3)}
            with httpx.Client(headers=AUTH, timeout=60) as c:
                answers.append(c.post(f"{proc.url}/score", json=body).json())
        m = scrape(proc.url)
        assert total(m, "reward_workers") == 2
        assert total(m, "reward_rollouts_total") == sum(len(a["groups"][0]["rollouts"]) for a in answers) == 18
        assert total(m, "reward_judge_calls_total", outcome="ok") == sum(a["usage"]["judge_calls"] for a in answers)
        assert total(m, "reward_judge_tokens_total", kind="prompt") == sum(a["usage"]["prompt_tokens"] for a in answers)
        assert total(m, "reward_http_requests_total", endpoint="/score", status="200") == 6
        assert total(m, "reward_judge_in_flight") == 0
    finally:
        proc.stop()
    assert list(parent.iterdir()) == []  # the run's directory went with it


# --- the observers, in process -----------------------------------------------------------------------------


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def __call__(self, event: str, layer: str, n: int = 1) -> None:
        self.events.append((event, layer, n))

    def wait_started(self, role: str) -> None:
        self.events.append(("wait", role))

    def wait_ended(self, role: str, seconds: float) -> None:
        self.events.append(("waited", role, seconds))


def test_the_limiter_tells_its_observer_how_long_calls_waited():
    limiter = JudgeLimiter({"grade": RoleLimits(max_parallel_requests=1)})
    limiter.observer = seen = Seen()

    async def call() -> None:
        async with limiter.slot("grade"):
            await asyncio.sleep(0.2)

    async def both() -> None:
        await asyncio.gather(call(), call())
        async with limiter.slot("condense"):  # no limit for this role: nothing to wait for, nothing told
            pass

    asyncio.run(both())
    waits = sorted(e[2] for e in seen.events if e[0] == "waited")
    assert [e[0] for e in seen.events].count("wait") == 2 and len(waits) == 2
    assert waits[0] < 0.1 and waits[1] >= 0.15  # the second call waited for the first one's slot


def test_the_cache_tells_its_observer_hits_misses_and_degradation(tmp_path, monkeypatch):
    store = Store(tmp_path / "c")
    store.observer = seen = Seen()

    async def value() -> dict:
        return {"v": 1}

    async def run() -> None:
        await store.get_or_compute("k1", value)
        await store.get_or_compute("k1", value)
        disk = full_disk(store, monkeypatch)
        await store.get_or_compute("k2", value)
        disk["full"] = False
        await store.get_or_compute("k3", value)

    try:
        asyncio.run(run())
    finally:
        store.close()
    events = [e[:2] for e in seen.events]
    assert events[:3] == [("miss", "memory"), ("miss", "disk"), ("hit", "memory")]
    assert ("write_failed", "disk") in events and ("degraded", "disk") in events
    assert events.index(("degraded", "disk")) < events.index(("recovered", "disk"))


def test_an_observer_that_fails_never_fails_the_cache(tmp_path):
    store = Store(None)

    def broken(event: str, layer: str, n: int = 1) -> None:
        raise RuntimeError("metrics down")

    store.observer = broken

    async def value() -> int:
        return 7

    assert asyncio.run(store.get_or_compute("k", value)) == 7


def test_the_dashboard_is_a_grafana_dashboard():
    dash = json.loads(Path(DASHBOARD).read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert all(t["datasource"]["uid"] == "${datasource}" for p in dash["panels"] for t in p.get("targets", []))


@pytest.mark.slow
def test_one_worker_under_an_operators_metrics_directory_gets_a_run_of_its_own(fake_judge_server, fake_judge, tmp_path):
    parent = tmp_path / "prom"
    parent.mkdir()
    (parent / "stale.db").write_bytes(b"")  # another run's leftovers are never read
    env = server_env(dict(os.environ), fake_judge_server.api_base, tmp_path / "cache")
    env.update(REWARD_TOKENS=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(parent))
    proc = ServerProcess(env)
    try:
        assert sorted(p.name.split("-")[0] for p in parent.iterdir()) == ["reward", "stale.db"]
        body = {"groups": distinct_groups("one", n_groups=1, n_rollouts=2)}
        answer = httpx.post(f"{proc.url}/score", json=body, headers=AUTH, timeout=60).json()
        m = scrape(proc.url)
        assert total(m, "reward_workers") == 1 and total(m, "reward_rollouts_total") == 2
        assert total(m, "reward_judge_calls_total", outcome="ok") == answer["usage"]["judge_calls"]
        assert "python_gc_objects_collected" not in m  # the multiprocess collector, not the process registry
    finally:
        proc.stop()
    assert [p.name for p in parent.iterdir()] == ["stale.db"]


def test_the_redis_layer_tells_its_observer_hits_and_misses(redis_server):
    from reward.cache.redis_store import RedisStore

    async def value() -> dict:
        return {"v": 2}

    async def run() -> tuple[list, list]:
        first, second = RedisStore(redis_server.url), RedisStore(redis_server.url)  # two replicas
        first.observer, second.observer = Seen(), Seen()
        await first.get_or_compute("shared", value)
        await second.get_or_compute("shared", value)  # computed by the first: in Redis, not in its memory
        for store in (first, second):
            store.close()
        await asyncio.sleep(0.05)  # their clients close
        return first.observer.events, second.observer.events

    first, second = asyncio.run(run())
    assert [e[:2] for e in first] == [("miss", "memory"), ("miss", "redis")]
    assert [e[:2] for e in second] == [("miss", "memory"), ("hit", "redis")]
