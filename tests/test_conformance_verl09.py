"""Conformance with verl >= 0.9: what verl 0.9.1's own reward loop did with `reward.adapters.verl.compute_score`.

The fixture (tests/fixtures/conformance/verl09.json.gz, built by tests/fixtures/conformance_gen/verl09.py in a
venv with verl 0.9.1) holds, for the 128-rollout corpus in the three Qwen3 forms verl decodes
(`skip_special_tokens=True`), the keyword arguments verl's `naive` and `dapo` reward-loop managers and
`AgentLoopWorker._compute_score` passed to our function, what it returned, and what verl made of it
(`rm_scores`, `reward_extra_info`); also what verl's loader resolves the README recipes to.

Here the recorded keyword arguments are replayed through `compute_score` against a real server and the fake
judge: each must get the steps-form (status, reward) of `/score`. The one rollout over the token limit
(`too-long`) is the exception by design: verl passes no token count, so it is judged on an estimate.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from reward.adapters import verl as verl_adapter
from reward.adapters.client import RewardClient
from reward.adapters.common import AdapterInputError
from tests.fixtures.conformance_gen.corpus import corpus
from tests.server_proc import ServerProcess, server_env

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "verl09.json.gz"
NEEDS_EXACT_COUNT = "too-long"
PATHS = {
    "RewardLoopManager.compute_rm_score[naive]": {"index", "query", "num_turns", "rollout_reward_scores"},
    "RewardLoopManager.compute_rm_score[dapo]": {"index", "query"},
    # naive's run_single merges the agent loop's extra_fields (raw_prompt) into extra_info
    "AgentLoopWorker._compute_score[naive]": {"index", "query", "num_turns", "rollout_reward_scores", "raw_prompt"},
}
FORMS = ("qwen3_stripped_response", "qwen3_think_stripped_response", "qwen3_2507_stripped_response")


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("v9")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def expected(server) -> dict[tuple[str, str], tuple[str, float]]:
    resp = httpx.post(f"{server.url}/score", json={"groups": corpus()}, timeout=300)
    assert resp.status_code == 200, resp.text[:300]
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp.json()["groups"] for r in g["rollouts"]}


@pytest.fixture
def client(server, monkeypatch):
    c = RewardClient(server.url, timeout_s=60)
    monkeypatch.setattr("reward.adapters.client._default", c)
    return c


def status_of(out: dict[str, float]) -> str:
    """compute_score's dict carries the status as flags; any other status would have raised."""
    assert out["judged"] + out["penalized"] == 1.0, out
    return "ok" if out["judged"] else "penalized"


def report(matrix: Counter[tuple[str, str, bool]]) -> dict[str, tuple[int, int]]:
    table = {
        f"{p} {f}": (matrix[(p, f, True)], matrix[(p, f, True)] + matrix[(p, f, False)])
        for p, f in sorted({(p, f) for p, f, _ in matrix})
    }
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": "verl 0.9.1", "forms": table}) + "\n")
    return table


def test_fixture_was_captured_by_running_verl_091(fixture):
    assert fixture["trainer"] == "verl" and fixture["version"] == "0.9.1"
    assert fixture["functions"]["naive"].endswith("NaiveRewardManager.run_single")
    assert fixture["functions"]["agent_loop"].endswith("AgentLoopWorker._compute_score")
    keys = {(g["group_id"], r["id"]) for g in corpus() for r in g["rollouts"]}
    by_path: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for c in fixture["cases"]:
        by_path.setdefault((c["path"], c["form"]), set()).add((c["group_id"], c["rollout_id"]))
    assert set(by_path) == {(p, f) for p in PATHS for f in FORMS}
    assert all(v == keys for v in by_path.values())  # every corpus rollout, each path, each form


def test_readme_recipe_resolves_to_our_function_and_the_old_one_to_nothing(fixture):
    new, old, dapo = fixture["config"]["new"], fixture["config"]["old"], fixture["config"]["new_dapo"]
    ours = f"{verl_adapter.compute_score.__module__}.{verl_adapter.compute_score.__qualname__}"
    assert new["get_custom_reward_fn"] == dapo["get_custom_reward_fn"] == ours
    assert new["manager_compute_score"] == f"partial(_call_with_kwargs_async, {ours})"
    assert new["manager"].endswith(".NaiveRewardManager") and dapo["manager"].endswith(".DAPORewardManager")
    # verl awaits the function on its loop only when it is a coroutine function (else runs it in a thread)
    assert inspect.iscoroutinefunction(verl_adapter.compute_score)
    # the old top-level keys are kept by the config but never read: verl's default scorer fails every sample
    assert old["config"]["custom_reward_function (legacy, top level)"]["path"] == "pkg://reward.adapters.verl"
    assert old["config"]["reward.custom_reward_function"]["path"] is None
    assert old["get_custom_reward_fn"] is None
    assert old["manager_compute_score"] == "verl.utils.reward_score.default_compute_score"
    assert old["run_single"].startswith("NotImplementedError") and fixture["data_source"] in old["run_single"]


def test_verl_scores_the_last_sequence_only(fixture):
    last = fixture["last_sequence"]
    assert last["calls"] == 1 and last["solution_str"] == [last["whole_response_stripped"]]
    first, final = last["reward_score"]
    assert first is None and isinstance(final, float)


def test_an_exception_from_compute_score_fails_verls_call(fixture):
    """No number stands in for a failed sample: the reward loop call raises, the agent loop's output has none."""
    failing = fixture["exceptions"]
    assert failing["adapter_raised"] == ["reward.adapters.common.AdapterInputError"]
    for path in ("RewardLoopManager.compute_rm_score", "AgentLoopWorker._compute_score"):
        assert failing[path]["cause"] == "AdapterInputError", failing[path]
    assert failing["reward_score_after"] is None
    kwargs = next(c["kwargs"] for c in fixture["cases"])
    with pytest.raises(AdapterInputError, match=r"extra_info\.query"):
        asyncio.run(verl_adapter.compute_score(**{**kwargs, "extra_info": {"index": 0}}))


def test_what_verl_recorded(fixture):
    """verl kept our dict whole as reward_extra_info and put the score on the last valid response token."""
    for c in fixture["cases"]:
        kw, returned = c["kwargs"], c["returned"]
        assert set(kw) == {"data_source", "solution_str", "ground_truth", "extra_info"}  # no token count
        assert set(kw["extra_info"]) == PATHS[c["path"]], (c["path"], sorted(kw["extra_info"]))
        assert not any(t in kw["solution_str"] for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"))
        assert c["reward_extra_info"] == returned
        # one sample per request: the fake judge is behind it exactly when it was judged (penalties skip it)
        assert returned["fake_judge"] == returned["judged"]
        if c["path"].startswith("AgentLoopWorker"):
            assert c["reward_score"] == returned["score"]
        else:
            assert c["rm_score"] == pytest.approx(returned["score"], rel=1e-6)  # float32
            assert c["rm_score_positions"] == ([c["valid_response_length"] - 1] if returned["score"] else [])


def test_replayed_kwargs_get_the_steps_form_reward(fixture, expected, client):
    matrix: Counter[tuple[str, str, bool]] = Counter()
    estimated: list[tuple[str, float]] = []

    async def run() -> None:
        for c in fixture["cases"]:
            out = await verl_adapter.compute_score(**c["kwargs"])
            assert out == c["returned"], (c["path"], c["group_id"], c["rollout_id"])  # what verl got back then
            key = (c["group_id"], c["rollout_id"])
            got = (status_of(out), out["score"])
            if c["rollout_id"] == NEEDS_EXACT_COUNT:  # verl passes no token count: judged on an estimate
                assert expected[key] == ("penalized", -100.0) and got[0] == "ok"
                estimated.append(got)
            else:
                matrix[(c["path"], c["form"], got == expected[key])] += 1

    asyncio.run(run())
    table = report(matrix)
    assert len(table) == 9 and all(ok == n for ok, n in table.values()), table
    assert sum(n for _, n in table.values()) + len(estimated) == 9 * 128


@pytest.mark.parametrize(("judge", "mark"), [({"fake": True}, 1.0), ({"fake": False}, 0.0), (None, 0.0)])
def test_fake_judge_mark_is_a_float_column(monkeypatch, judge, mark):
    """verl stacks each key of the dict into a column (np.array) and averages it: always present, a number."""
    rollout = {"id": "0", "status": "ok", "reward": 12.5, "error": None, "s_pos": 0.5, "s_pit": None, "s_fa": 0.5}
    group: dict[str, Any] = {"group_id": "g", "rollouts": [{**rollout, "has_final_answer": True}]}
    if judge is not None:
        group["judge"] = judge
    monkeypatch.setattr(
        "reward.adapters.client._default", SimpleNamespace(score=lambda groups, **_: {"groups": [group]})
    )
    out = verl_adapter.compute_score_sync("terminal_subagent", "text", {"plan": "p"}, {"query": "q"})
    assert out["fake_judge"] == mark and out["score"] == 12.5 and out["s_pit"] == 0.0
    assert all(isinstance(v, float) for v in out.values())
