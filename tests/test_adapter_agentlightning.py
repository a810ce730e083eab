"""Agent Lightning: the LitAgent helper (reward.adapters.agentlightning) against a real server and the fake judge.

The fixture (tests/fixtures/conformance/agentlightning.json.gz, built by conformance_gen/agentlightning_run.py)
records what agentlightning 0.3.0's own trainer path did with the helper: the messages a LitAgent's rollout
passed to it (OpenAI SDK messages, the `Bash` tool), the reward the runner stored, and what it stored when
the helper raised. Here the recorded messages go through the helper again and must get the steps form's
(status, reward) for every one of the 128 corpus rollouts. agentlightning itself is not installed here.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward.adapters import agentlightning as agl_adapter
from reward.adapters.client import RewardClient
from reward.adapters.common import JudgeFailed
from tests.fixtures.conformance_gen.corpus import corpus
from tests.server_proc import ServerProcess, free_port, server_env

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "agentlightning.json.gz"
PASSES = ("return_float", "emit_reward_for")

pytestmark = pytest.mark.slow


def load() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


def cases(phase: str) -> list[dict[str, Any]]:
    return [c for c in load()["cases"] if c["task"]["phase"] == phase]


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("agl")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def expected(server) -> dict[tuple[str, str], tuple[str, float]]:
    resp = httpx.post(f"{server.url}/score", json={"groups": corpus()}, timeout=300)
    assert resp.status_code == 200, resp.text[:500]
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp.json()["groups"] for r in g["rollouts"]}


def report(matrix: Counter[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    table = {f: (matrix[(f, True)], matrix[(f, True)] + matrix[(f, False)]) for f in sorted({f for f, _ in matrix})}
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": "Agent Lightning LitAgent helper", "forms": table}) + "\n")
    return table


def test_fixture_was_captured_by_running_agentlightning():
    meta = load()
    assert (meta["package"], meta["version"]) == ("agentlightning", "0.3.0") and meta["tool"] == "Bash"
    assert meta["function"] == "agentlightning.runner.agent.LitAgentRunner._step_impl"
    assert Counter(c["task"]["phase"] for c in meta["cases"]) == {"return_float": 128, "emit_reward_for": 128,
                                                                   "judge_down": 8}  # fmt: skip
    for c in meta["cases"]:
        calls = [t for m in c["helper"]["messages"] for t in m.get("tool_calls") or []]
        assert all(t["function"]["name"] == "Bash" for t in calls)
        # the OpenAI SDK's assistant message, dumped whole: its None fields travel to the service
        first = next(m for m in c["helper"]["messages"] if m["role"] == "assistant")
        assert {"refusal", "annotations", "audio", "function_call"} <= set(first)


def test_runner_stores_the_helpers_reward_and_the_fake_mark():
    for phase in PASSES:
        for c in cases(phase):
            assert c["rollout_status"] == "succeeded" and c["attempt_status"] == ["succeeded"], c["task"]["episode"]
            assert c["stored_final_reward"] == c["helper"]["returned"]
            [span] = c["reward_spans"]  # one reward span either way: never two for one episode
            attrs = span["attributes"]
            assert attrs["agentlightning.reward.0.value"] == c["helper"]["returned"]
            if phase == "emit_reward_for":  # emitted by the helper: the service's marks kept
                # judged by the fake judge (a penalty is decided before any judge call: no mark to keep)
                assert attrs["reward.fake"] is (attrs["reward.status"] == "ok")
                assert ("reward.penalty" in attrs) == (attrs["reward.status"] == "penalized")
            else:  # the runner's own span from the returned float carries none
                assert not any(k.startswith("reward.") for k in attrs)


def test_a_judge_failure_raised_and_agentlightning_stored_no_reward():
    down = cases("judge_down")
    assert {c["task"]["pass"] for c in down} == set(PASSES)
    for c in down:
        assert c["helper"]["raised"]["type"] == "JudgeFailed"
        assert {e["category"] for e in c["helper"]["raised"]["errors"]} <= {"judge_unavailable", "judge_timeout"}
        assert "returned" not in c["helper"]
        assert c["rollout_status"] == "failed" and c["attempt_status"] == ["failed"]
        assert c["stored_final_reward"] is None and c["reward_spans"] == []
        daemon = c["verl_daemon"]
        assert daemon["final_reward"] is None
        assert daemon["default_trained_reward"] == 0.0  # agentlightning's verl daemon fills it: why strict exists
        assert daemon["strict_trained_reward"]["raised"] == "ValueError"


def test_replayed_messages_get_the_steps_form_reward(server, expected):
    client = RewardClient(server.url, timeout_s=100)
    matrix: Counter[tuple[str, bool]] = Counter()

    async def run() -> None:
        sem = asyncio.Semaphore(16)

        async def one(c: dict[str, Any]) -> tuple[dict[str, Any], agl_adapter.EpisodeReward]:
            async with sem:
                h, t = c["helper"], c["task"]
                return c, await agl_adapter.score_episode(
                    h["messages"], h["label"], num_tokens=t["num_tokens"], client=client
                )

        for c, got in await asyncio.gather(*(one(c) for p in PASSES for c in cases(p))):
            key = (c["task"]["group_id"], c["task"]["rollout_id"])
            ok = (got.status, got.reward) == expected[key]
            matrix[(c["task"]["phase"], ok)] += 1
            assert got.reward == c["helper"]["returned"], key  # what agentlightning stored at capture time
            assert got.fake is (got.status == "ok")  # the fake judge graded it; a penalty needs no judge

    asyncio.run(run())
    table = report(matrix)
    assert table == {"emit_reward_for": (128, 128), "return_float": (128, 128)}, table


@pytest.fixture
def judge_down_server(tmp_path):
    env = server_env(dict(os.environ), f"http://127.0.0.1:{free_port()}/v1", tmp_path / "cache")
    proc = ServerProcess({**env, "REWARD_REQUEST_DEADLINE": "2"})
    yield proc
    proc.stop()


def test_judge_failure_raises_never_a_number(judge_down_server, monkeypatch):
    c = cases("return_float")[0]
    client = RewardClient(judge_down_server.url, timeout_s=8)
    emitted: list[Any] = []
    monkeypatch.setitem(sys.modules, "agentlightning", types.SimpleNamespace(emit_reward=emitted.append))
    with pytest.raises(JudgeFailed) as info:
        asyncio.run(agl_adapter.reward_for(c["helper"]["messages"], c["helper"]["label"], client=client))
    assert {e["category"] for e in info.value.errors} <= {"judge_unavailable", "judge_timeout"}
    with pytest.raises(JudgeFailed):
        asyncio.run(agl_adapter.emit_reward_for(c["helper"]["messages"], c["helper"]["label"], client=client))
    assert emitted == []  # nothing reached the trace


def test_emit_keeps_the_fake_mark_and_a_query_apart_from_the_label(server, monkeypatch):
    emitted: list[tuple[float, dict[str, Any]]] = []
    stub = types.SimpleNamespace(emit_reward=lambda r, attributes: emitted.append((r, attributes)))
    monkeypatch.setitem(sys.modules, "agentlightning", stub)
    c = next(c for c in cases("emit_reward_for") if c["helper"]["returned"] == -50.0)  # a penalised one
    client = RewardClient(server.url, timeout_s=60)
    reward = asyncio.run(agl_adapter.emit_reward_for(c["helper"]["messages"], c["helper"]["label"], client=client))
    assert emitted == [(reward, {"reward.fake": False, "reward.status": "penalized", "reward.penalty": "no_commands"})]
    graded = next(c for c in cases("emit_reward_for") if c["helper"]["returned"] > 0)
    asyncio.run(agl_adapter.emit_reward_for(graded["helper"]["messages"], graded["helper"]["label"], client=client))
    assert emitted[-1][1] == {"reward.fake": True, "reward.status": "ok"}
    # a bare reference with the query given apart scores the same as the full label
    label = c["helper"]["label"]
    alone = asyncio.run(
        agl_adapter.reward_for(c["helper"]["messages"], label["reference"], query=label["query"], client=client)
    )
    assert alone == reward


def test_strict_verl_daemon_never_fills_a_missing_reward(monkeypatch):
    seen: dict[str, Any] = {}

    class AgentModeDaemon:  # the signature of agentlightning 0.3.0's (verl/daemon.py:213-230), in part
        def __init__(self, port: Any, train_rollout_n: int, *, reward_fillna_value: float | None = 0.0, **kw: Any):
            seen.update(port=port, n=train_rollout_n, fill=reward_fillna_value, **kw)

    module = types.ModuleType("agentlightning.verl.daemon")
    module.AgentModeDaemon = AgentModeDaemon  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agentlightning.verl.daemon", module)
    cls = agl_adapter.strict_verl_daemon()
    assert issubclass(cls, AgentModeDaemon)
    cls(9999, 8, mode="v1")  # as AgentLightningTrainer builds it (verl/trainer.py:463)
    assert seen == {"port": 9999, "n": 8, "fill": None, "mode": "v1"}


def test_imports_without_agentlightning():
    code = "import sys, reward.adapters.agentlightning; assert 'agentlightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
