"""Conformance: every trainer-native form of the example rollouts gets exactly the steps-form reward.

The payloads are stored fixtures (tests/fixtures/conformance, built by tests/fixtures/conformance_gen): chat
text rendered with the Qwen3 / Qwen3-Instruct-2507 chat templates, what slime, OpenRLHF and verl's own
request code sent, and what TRL 1.16's own GRPOTrainer passed to a reward function. Each goes through the trainer's path here (`/score`, `/slime`, slime's group function, `/openrlhf`,
verl's `compute_score`, TRL's reward function) against a real server and the fake judge.

The one rollout recorded over the token limit (`too-long`, 41,873 tokens in 4.9 KB of text) needs the
trainer's exact count: where the trainer sends none (slime per sample, OpenRLHF, verl) it is estimated,
and the result says so (`num_tokens_exact: false`).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from reward.adapters import slime as slime_adapter
from reward.adapters import trl as trl_adapter
from reward.adapters import verl as verl_adapter
from reward.adapters.client import RewardClient
from tests.server_proc import ServerProcess, server_env

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conformance"
NEEDS_EXACT_COUNT = "too-long"


def load(name: str) -> dict[str, Any]:
    return json.loads(gzip.decompress((FIXTURES / f"{name}.json.gz").read_bytes()))


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance")
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp / "cache"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def expected(server) -> dict[tuple[str, str], tuple[str, float]]:
    groups = load("steps")["groups"]
    resp = httpx.post(f"{server.url}/score", json={"groups": groups}, timeout=120).json()
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp["groups"] for r in g["rollouts"]}


@pytest.fixture
def client(server, monkeypatch):
    c = RewardClient(server.url, timeout_s=60)
    monkeypatch.setattr("reward.adapters.client._default", c)
    return c


def check(
    matrix: Counter[tuple[str, bool]], form: str, key: tuple[str, str], got: tuple[str, float], want: Any
) -> None:
    matrix[(form, got == want)] += 1


def report(trainer: str, matrix: Counter[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    forms = sorted({f for f, _ in matrix})
    table = {f: (matrix[(f, True)], matrix[(f, True)] + matrix[(f, False)]) for f in forms}
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": trainer, "forms": table}) + "\n")
    return table


def test_score_endpoint_every_form(server, expected):
    steps = {(g["group_id"], r["id"]): r for g in load("steps")["groups"] for r in g["rollouts"]}
    by_form: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for c in load("score")["cases"]:
        rollout = {"id": c["rollout_id"], **c["rollout"]}
        n = steps[(c["group_id"], c["rollout_id"])].get("num_tokens")
        if n is not None:  # the trainer's exact count travels with the rollout
            rollout["num_tokens"] = n
        by_form.setdefault(c["form"], {}).setdefault(c["group_id"], []).append(rollout)
    groups_in = {g["group_id"]: g for g in load("steps")["groups"]}
    matrix: Counter[tuple[str, bool]] = Counter()
    for form, groups in by_form.items():
        body = [{**groups_in[gid], "rollouts": rs} for gid, rs in groups.items()]
        resp = httpx.post(f"{server.url}/score", json={"groups": body}, timeout=120)
        assert resp.status_code == 200, (form, resp.text[:500])
        for g in resp.json()["groups"]:
            for r in g["rollouts"]:
                key = (g["group_id"], r["id"])
                check(matrix, form, key, (r["status"], r["reward"]), expected[key])
                assert r["num_tokens_exact"] == (steps[key].get("num_tokens") is not None)
    table = report("/score", matrix)
    assert len(table) == 18
    assert all(ok == n == 32 for ok, n in table.values()), table


def test_slime_remote_rm_and_group_rm(server, expected, client):
    cases = load("slime")["cases"]
    per_sample: Counter[tuple[str, bool]] = Counter()
    for c in cases:
        resp = httpx.post(f"{server.url}/slime", json=c["remote_rm"], timeout=60)
        assert resp.status_code == 200, resp.text[:300]
        key = (c["group_id"], c["rollout_id"])
        got = (resp.json()["status"], resp.json()["reward"])
        if c["rollout_id"] == NEEDS_EXACT_COUNT:
            assert got != expected[key]  # slime's remote_rm body carries no token count: estimated
            assert expected[key] == ("penalized", -100.0)
        else:
            check(per_sample, c["form"], key, got, expected[key])
    assert all(ok == n == 31 for ok, n in report("slime remote_rm", per_sample).values())

    grouped: Counter[tuple[str, bool]] = Counter()
    batches: dict[tuple[str, str], list[Any]] = {}
    for c in cases:
        sample = SimpleNamespace(**c["remote_rm"], response_length=c["group_rm_response_length"][0])
        batches.setdefault((c["form"], c["group_id"]), []).append((c["rollout_id"], sample))
    for (form, gid), items in batches.items():
        rewards = asyncio.run(slime_adapter.batched_custom_rm(SimpleNamespace(), [s for _, s in items]))
        for (rid, _), reward in zip(items, rewards, strict=True):
            grouped[(form, reward == expected[(gid, rid)][1])] += 1
    assert all(ok == n == 32 for ok, n in report("slime group rm", grouped).values())


def test_openrlhf_remote_reward(server, expected):
    matrix: Counter[tuple[str, bool]] = Counter()
    for c in load("openrlhf")["cases"]:
        resp = httpx.post(f"{server.url}/openrlhf", json=c["body"], timeout=60)
        assert resp.status_code == 200, resp.text[:300]
        key = (c["group_id"], c["rollout_id"])
        reward = resp.json()["rewards"][0]
        if c["rollout_id"] == NEEDS_EXACT_COUNT:
            assert reward != expected[key][1]  # OpenRLHF sends no token count
        else:
            check(matrix, c["form"], key, ("ok", reward), ("ok", expected[key][1]))
    assert all(ok == n == 31 for ok, n in report("OpenRLHF", matrix).values())


def test_verl_compute_score(expected, client):
    matrix: Counter[tuple[str, bool]] = Counter()

    async def run() -> None:
        for c in load("verl")["cases"]:
            out = await verl_adapter.compute_score(**c["kwargs"])
            assert not any(v != v for v in out.values())  # no NaN for verl's np.mean
            key = (c["group_id"], c["rollout_id"])
            if c["rollout_id"] == NEEDS_EXACT_COUNT:
                assert out["score"] != expected[key][1]  # verl passes no token count
            else:
                check(matrix, c["form"], key, ("ok", out["score"]), ("ok", expected[key][1]))

    asyncio.run(run())
    assert all(ok == n == 31 for ok, n in report("verl", matrix).values())


def steps_with_counts(server, counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], tuple[str, float]]:
    """The steps-form reward when each rollout carries the given exact token count."""
    groups = load("steps")["groups"]
    for g in groups:
        for r in g["rollouts"]:
            r["num_tokens"] = counts[(g["group_id"], r["id"])]
    resp = httpx.post(f"{server.url}/score", json={"groups": groups}, timeout=120).json()
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp["groups"] for r in g["rollouts"]}


def test_trl_reward_function(server, expected, client):
    """What TRL 1.16's own GRPOTrainer._generate / _calculate_rewards passed, through the TRL reward function.

    TRL's count is exact but its own (here the stand-in tokenizer's, tool results included): the steps form
    is scored with the same count, so the over-limit rollout is compared like for like.
    """
    fixture = load("trl")
    matrix: Counter[tuple[str, bool]] = Counter()
    batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in fixture["cases"]:
        batches.setdefault((c["form"], c["group_id"]), []).append(c)
    want: dict[str, dict[tuple[str, str], tuple[str, float]]] = {}
    for form in {f for f, _ in batches}:
        counts = {(c["group_id"], c["rollout_id"]): c["kwargs"]["completion_ids_lengths"]
                  for c in fixture["cases"] if c["form"] == form}  # fmt: skip
        want[form] = steps_with_counts(server, counts)
    for (form, gid), cs in batches.items():
        extras: dict[str, list[Any]] = {}
        metrics: dict[str, float] = {}
        kwargs: dict[str, Any] = {
            "prompts": [c["kwargs"]["prompts"] for c in cs],
            "completions": [c["kwargs"]["completions"] for c in cs],
            "completion_ids": [list(range(c["kwargs"]["completion_ids_lengths"])) for c in cs],
            "reference": [c["kwargs"]["reference"] for c in cs],
            "query": [c["kwargs"]["query"] for c in cs],
            "trainer_state": SimpleNamespace(global_step=0),
            "log_extra": extras.__setitem__,
            "log_metric": metrics.__setitem__,
        }
        assert set(cs[0]["other_kwargs"]) == {"trainer_state", "log_extra", "log_metric"}
        rewards = asyncio.run(trl_adapter.execution_subagent_reward(**kwargs))
        assert extras["reward/status"] and len(extras["reward/status"]) == len(cs)
        for c, reward in zip(cs, rewards, strict=True):
            key = (gid, c["rollout_id"])
            check(matrix, form, key, ("ok", reward), ("ok", want[form][key][1]))
            if c["rollout_id"] != NEEDS_EXACT_COUNT:  # under the limit either way: the recorded reward too
                assert reward == expected[key][1], (form, key)
    table = report("TRL", matrix)
    assert len(table) == 4 and all(ok == n == 32 for ok, n in table.values()), table


def test_trl_fixture_was_captured_by_running_trl():
    meta = load("trl")
    assert meta["trainer"] == "TRL" and meta["version"] == "1.16.0"
    assert meta["function"] == "trl.trainer.grpo_trainer.GRPOTrainer._calculate_rewards"
    tool_loop = [c for c in meta["cases"] if c["form"] == "trl_tool_loop_dict_result"]
    tool_msgs = [m for c in tool_loop for m in c["kwargs"]["completions"] if m["role"] == "tool"]
    # TRL's tool loop: {"role": "tool", "name", "content": str(result)}; a dict result is its Python repr
    assert tool_msgs and all(set(m) == {"role", "name", "content"} for m in tool_msgs)
    assert all(m["content"].startswith("{'output': ") for m in tool_msgs)


def test_fixtures_name_the_trainer_and_its_commit():
    for name in ("slime", "openrlhf", "verl"):
        meta = load(name)
        assert meta["trainer"] and len(meta["commit"]) == 40 and meta["captured_by"]
