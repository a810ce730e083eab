"""The service over real HTTP: uvicorn on 127.0.0.1, the fake judge behind it, each trainer's payload."""

from __future__ import annotations

import asyncio
import copy
import json
import os
from types import SimpleNamespace

import httpx
import pytest

from reward.adapters import slime as slime_adapter
from reward.adapters import trl as trl_adapter
from reward.adapters import verl as verl_adapter
from reward.adapters.client import RewardClient
from reward.adapters.common import JudgeFailed
from tests.conftest import ROOT, example_groups, group, rollout, step
from tests.native_forms import as_messages, as_text
from tests.server_proc import ServerProcess, server_env

PLAN = "EXECUTION PLAN\n\nTask Outcome: failure. The last command exited 1.\n\nCommands Executed:\n- `pytest` (exit code 1)"


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    plans = tmp / "plans.jsonl"
    plans.write_text(json.dumps({"id": "ref-pytest", "plan": PLAN}) + "\n")
    env = server_env(dict(os.environ), fake_judge_server.api_base, tmp / "cache", REWARD_PLANS=str(plans))
    proc = ServerProcess(env)
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def _no_leftover_script(fake_judge_server):
    yield
    assert not fake_judge_server.state.script, "a scripted judge reply was not consumed"
    fake_judge_server.reset()


@pytest.fixture
def client(server, monkeypatch):
    c = RewardClient(server.url, timeout_s=30)
    monkeypatch.setattr("reward.adapters.client._default", c)
    return c


def unique(tag: str) -> str:
    return f"{tag}-{os.urandom(4).hex()}"


def test_probes_rubrics_and_openapi(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["ready"] and ready["cache"] == "writable" and ready["reference_plans"] == 1
    rubrics = httpx.get(f"{server.url}/rubrics").json()
    default = next(r for r in rubrics if r["default"])  # listed by name: the bundled checklist comes first
    assert default["name"] == "execution_subagent" and len(default["dimensions"]) == 14
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/score", "/openrlhf", "/slime", "/healthz", "/readyz", "/rubrics"} <= set(paths)


def test_grpo_step_16x8_returns_128_rewards_stats_and_metrics(server, fake_judge):
    groups = []
    for g in range(16):
        rollouts = [rollout(f"r{i}", steps=[step(f"pytest -k {unique('t')}", i % 3, f"{i} failed")]) for i in range(7)]
        rollouts.append(rollout("r7", steps=[]))  # no commands: penalised, no judge call
        groups.append(group(f"step-{g}", rollouts=rollouts, reference={"id": "ref-pytest"}))
    resp = httpx.post(f"{server.url}/score", json={"groups": groups}, timeout=120)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    rewards = [r["reward"] for g in body["groups"] for r in g["rollouts"]]
    assert len(rewards) == 128 and all(r is not None for r in rewards)
    for g in body["groups"]:
        assert g["mean"] == pytest.approx(sum(r["reward"] for r in g["rollouts"]) / 8)
        assert g["std"] > 0 and not g["filtered"]
        assert all(r["advantage"] is not None for r in g["rollouts"])
    m = body["metrics"]
    assert m["groups"] == 16 and m["rollouts"] == 128
    assert m["penalty_rate"] == {"no_commands": pytest.approx(16 / 128)}
    assert m["error_rate"] == {} and m["filtered_group_fraction"] == 0.0 and m["final_answer_rate"] == 1.0
    assert m["reward_mean"] == pytest.approx(sum(rewards) / 128)
    u = body["usage"]
    # the reference comes from the loaded plans: only the 112 graded rollouts are condensed and graded
    assert (u["condense_calls"], u["grade_calls"]) == (112, 112)
    assert fake_judge.counts() == {"total": 224, "condense": 112, "grade": 112}
    assert u["cost"] is None  # the test judge has no known price


def test_steps_messages_and_text_get_identical_rewards(server):
    g = example_groups()[0]
    forms = {"steps": copy.deepcopy(g)}
    for name, render in (
        ("messages", lambda r: {"messages": as_messages(g["query"], r)}),
        ("text", lambda r: {"text": as_text(g["query"], r)}),
    ):
        variant = copy.deepcopy(g)
        variant["group_id"] = f"{g['group_id']}-{name}"
        variant["rollouts"] = [
            {"id": r["id"], **render(r), **({"num_tokens": r["num_tokens"]} if "num_tokens" in r else {})}
            for r in g["rollouts"]
        ]
        forms[name] = variant
    resp = httpx.post(f"{server.url}/score", json={"groups": list(forms.values())}, timeout=60).json()
    rewards = [[r["reward"] for r in grp["rollouts"]] for grp in resp["groups"]]
    assert rewards[0] == rewards[1] == rewards[2]
    assert [r["status"] for r in resp["groups"][2]["rollouts"]].count("penalized") == 2


def test_only_malformed_tool_calls_are_scored_never_a_4xx(server):
    bad = group(
        "bad",
        rollouts=[
            rollout("fine"),
            {
                "id": "broken",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "1", "function": {"name": "read_file", "arguments": "{}"}}],
                    },
                    {"role": "assistant", "content": "<final_answer>x</final_answer>"},
                ],
            },
        ],
    )
    bad["group_id"] = unique("bad")
    resp = httpx.post(f"{server.url}/score", json={"groups": [bad]})
    assert resp.status_code == 200
    broken = resp.json()["groups"][0]["rollouts"][1]
    assert (broken["status"], broken["penalty"], broken["reward"]) == ("penalized", "no_commands", -50.0)
    assert "1 malformed tool call" in broken["penalty_detail"]


def test_messages_without_any_command_get_the_no_commands_penalty(server):
    g = group(
        unique("nocmd"),
        rollouts=[{"id": "lazy", "messages": [{"role": "assistant", "content": "<final_answer>done</final_answer>"}]}],
    )
    r = httpx.post(f"{server.url}/score", json={"groups": [g]}).json()["groups"][0]["rollouts"][0]
    assert (r["status"], r["penalty"], r["reward"]) == ("penalized", "no_commands", -50.0)


def test_bad_requests_are_422_with_paths(server):
    assert httpx.post(f"{server.url}/score", json={"groups": [group(reference={"id": "nope"})]}).status_code == 422
    resp = httpx.post(f"{server.url}/score", json={"groups": [group()], "rubric": "missing"})
    assert resp.status_code == 422 and "unknown rubric 'missing'" in resp.json()["detail"][0]
    resp = httpx.post(f"{server.url}/score", json={"groups": [{**group(), "extra": 1}]})
    assert resp.status_code == 422


def test_response_quality_over_http_and_its_missing_inputs_are_422(server):
    rq = ROOT / "examples" / "response_quality" / "groups.jsonl"
    line = json.loads(rq.read_text().splitlines()[0])
    line["group_id"] = unique("rq")
    resp = httpx.post(f"{server.url}/score", json={"groups": [line], "rubric": "response_quality"}, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rubric"] == "response_quality"
    (r,) = body["groups"][0]["rollouts"]
    assert r["status"] == "ok" and 0.0 <= r["reward"] <= 1.0 and set(r["groups"]) == {"quality"}
    del line["inputs"]["subagent_query"]
    line["rollouts"][0]["inputs"]["extra"] = "x"
    resp = httpx.post(f"{server.url}/score", json={"groups": [line], "rubric": "response_quality"})
    assert resp.status_code == 422
    detail = " ".join(resp.json()["detail"])
    assert "groups[0].inputs.subagent_query: required by the rubric" in detail
    assert "groups[0].rollouts[0].inputs.extra: not an input of this rubric" in detail
    # The default rubric condenses and needs a reference: such a group is a 422, not a crash.
    resp = httpx.post(f"{server.url}/score", json={"groups": [{**line, "inputs": None}]})
    assert resp.status_code == 422 and "reference: required by the rubric" in " ".join(resp.json()["detail"])


# --- OpenRLHF ------------------------------------------------------------------------------------------


def openrlhf_body(g: dict, rollouts: list[dict], label) -> dict:
    texts = [as_text(g["query"], r) for r in rollouts]
    prompts = [t.split("<|im_start|>assistant")[0] for t in texts]
    return {"query": texts, "prompts": prompts, "labels": [label] * len(texts)}


def test_openrlhf_single_sample_batch_and_empty(server):
    g = example_groups()[3]
    label = json.dumps({"reference": {"plan": PLAN}, "query": g["query"]})
    one = httpx.post(f"{server.url}/openrlhf", json=openrlhf_body(g, g["rollouts"][:1], label)).json()
    assert set(one) == {"rewards", "scores", "extra_logs"} and len(one["rewards"]) == 1
    batch = httpx.post(f"{server.url}/openrlhf", json=openrlhf_body(g, g["rollouts"], label)).json()
    assert len(batch["rewards"]) == len(batch["scores"]) == 8
    assert batch["rewards"][0] == one["rewards"][0]  # same rollout, same reward, batched or not
    assert all(len(v) == 8 for v in batch["extra_logs"].values())
    assert all(0.0 <= s <= 1.0 for s in batch["scores"])
    assert batch["rewards"][5] == -100.0 and batch["extra_logs"]["penalized"][5] == 1.0  # no final answer
    assert httpx.post(f"{server.url}/openrlhf", json={"query": [], "prompts": [], "labels": []}).json() == {
        "rewards": [],
        "scores": [],
        "extra_logs": {
            "penalized": [],
            "has_final_answer": [],
            "reward_fallback": [],
            "fake_judge": [],
        },  # OpenRLHF <= 0.10.1 merges by key
    }
    # a plain string label names a loaded reference plan; the query comes from the prompt's <query> tag
    by_id = httpx.post(f"{server.url}/openrlhf", json=openrlhf_body(g, g["rollouts"][:1], "ref-pytest")).json()
    assert len(by_id["rewards"]) == 1
    mismatch = {"query": ["a", "b"], "prompts": [], "labels": ["ref-pytest"]}
    assert httpx.post(f"{server.url}/openrlhf", json=mismatch).status_code == 422


def test_openrlhf_judge_failure_is_503_with_retry_after_never_a_number(server, fake_judge):
    g = group(unique("fail"), rollouts=[rollout("x", steps=[step(unique("cmd"))])])
    fake_judge.script({"kind": "condense", "status": 400, "message": "bad"})
    resp = httpx.post(
        f"{server.url}/openrlhf",
        json=openrlhf_body(g, g["rollouts"], json.dumps({"reference": {"plan": PLAN}, "query": g["query"]})),
    )
    assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
    assert "rewards" not in resp.json() and resp.json()["errors"][0]["category"] == "judge_bad_request"


# --- slime ---------------------------------------------------------------------------------------------


def test_slime_per_sample_remote_rm(server):
    g = example_groups()[2]
    r = g["rollouts"][0]
    text = as_text(g["query"], r)
    body = {
        "prompt": text.split("<|im_start|>assistant")[0],
        "response": text[len(text.split("<|im_start|>assistant")[0]) :],
        "label": {"reference": {"plan": PLAN}, "query": g["query"]},
    }
    resp = httpx.post(f"{server.url}/slime", json=body)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    out = resp.json()
    assert isinstance(out["reward"], float) and out["status"] == "ok" and out["reward_fallback"] is False


def test_slime_batched_custom_rm_scores_the_group(client):
    g = example_groups()[0]
    prompt = [{"role": "user", "content": f"<query>{g['query']}</query>"}]
    label = {"reference": {"plan": PLAN}}
    samples = [
        SimpleNamespace(
            prompt=prompt, response=as_text(g["query"], r, with_prompt=False), label=label, response_length=900
        )
        for r in g["rollouts"]
    ]
    rewards = asyncio.run(slime_adapter.batched_custom_rm(SimpleNamespace(), samples))
    assert len(rewards) == 8 and all(isinstance(x, float) for x in rewards)
    assert rewards[5] == -100.0 and rewards[6] == -50.0


# --- verl ----------------------------------------------------------------------------------------------


def test_verl_compute_score_keyword_and_positional(client):
    g = example_groups()[3]
    r = g["rollouts"][0]
    solution = as_text(g["query"], r, with_prompt=False)
    kw = asyncio.run(
        verl_adapter.compute_score(
            data_source="terminal",
            solution_str=solution,
            ground_truth={"plan": PLAN},
            extra_info={"query": g["query"], "index": 3},
        )
    )
    pos = asyncio.run(
        verl_adapter.compute_score("terminal", solution, json.dumps({"reference": {"plan": PLAN}, "query": g["query"]}))
    )
    assert kw["score"] == pos["score"]
    assert set(kw) == {"score", "s_pos", "s_pit", "s_fa", "judged", "penalized", "has_final_answer", "fake_judge"}
    pen = asyncio.run(verl_adapter.compute_score("terminal", "no tools, no answer", "ref-pytest", {"query": "q"}))
    assert set(pen) == set(kw) and pen["score"] == -100.0 and pen["penalized"] == 1.0
    assert pen["s_pos"] == 0.0 and pen["judged"] == 0.0  # no NaN: verl averages extras with np.mean


def test_verl_judge_failure_raises(client, fake_judge):
    fake_judge.script({"kind": "condense", "status": 400})
    solution = as_text(
        "q", {"steps": [step(unique("c"))], "final_answer": "<final_answer>x</final_answer>"}, with_prompt=False
    )
    with pytest.raises(JudgeFailed):
        asyncio.run(verl_adapter.compute_score("terminal", solution, "ref-pytest", {"query": "q"}))


# --- TRL -----------------------------------------------------------------------------------------------


def test_trl_reward_function_conversational_groups_logs_and_none_on_failure(client, fake_judge):
    g = example_groups()[1]
    prompt = [{"role": "user", "content": g["query"]}]
    completions = [as_messages(g["query"], r)[2:] for r in g["rollouts"]]
    extra, metrics = {}, {}
    n = len(completions)
    rewards = asyncio.run(
        trl_adapter.execution_subagent_reward(
            prompts=[prompt] * n,
            completions=completions,
            completion_ids=[[1]] * n,
            reference=[{"plan": PLAN}] * n,
            query=[g["query"]] * n,
            trainer_state=None,
            log_extra=lambda k, v: extra.__setitem__(k, v),
            log_metric=lambda k, v: metrics.__setitem__(k, v),
        )
    )
    assert len(rewards) == 8 and all(isinstance(r, float) for r in rewards)
    assert len(extra["reward/s_pos"]) == 8 and extra["reward/status"][5] == "penalized"
    assert metrics["reward/final_answer_rate"] == pytest.approx(7 / 8)  # one unclosed <final_answer>
    fake_judge.script({"kind": "condense", "status": 400})
    odd = [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "1", "function": {"name": "run_in_terminal", "arguments": json.dumps({"command": unique("c")})}}
            ],
        },
        {"role": "tool", "content": "out"},
        {"role": "assistant", "content": "<final_answer>x</final_answer>"},
    ]
    out = asyncio.run(
        trl_adapter.execution_subagent_reward(prompts=[prompt], completions=[odd], reference=["ref-pytest"])
    )
    assert out == [None]


def test_binary_nul_surrogate_and_very_long_outputs_are_handled(server):
    nasty = "\x00\x01bin\x00ary\udcff\ud800 " + "é" * 10 + "\x1b[31mred\x1b[0m"
    g = group(
        unique("nasty"),
        rollouts=[
            rollout("nul", steps=[step("cat /dev/urandom | head -c 64", 0, nasty)]),
            rollout("long", steps=[step("cat minified.js", 0, "x=1;" * 5_000)]),  # one 20,000-character line
            rollout("huge", steps=[step("yes | head -c 1M", 0, "word " * 200_000)]),  # 1 MB: over 30K tokens
        ],
        reference={"plan": PLAN},
    )
    body = json.dumps({"groups": [g]})  # lone surrogates are valid JSON escapes
    resp = httpx.post(f"{server.url}/score", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    rollouts = resp.json()["groups"][0]["rollouts"]
    assert [r["status"] for r in rollouts] == ["ok", "ok", "penalized"] and rollouts[2]["penalty"] == "too_long"
    raw = b'{"groups": [{"group_id": "\xff\xfe", "query": "q"}]}'  # not UTF-8 at all
    bad = httpx.post(f"{server.url}/score", content=raw, headers={"Content-Type": "application/json"})
    assert bad.status_code == 400  # a clear client error (FastAPI: the body is not parseable), never a 5xx
