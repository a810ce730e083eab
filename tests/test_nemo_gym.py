"""NeMo Gym resources server (reward.service.nemo_gym): what NeMo Gym 0.7.0's own SimpleAgent sent
(tests/fixtures/conformance/nemo_gym.json.gz, tests/fixtures/conformance_gen/nemo_gym_run.py) replayed to the
app, against the steps form scored by /score; a judge failure is a 503 (never a reward), the fake mark kept.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reward.service.app import create_app
from reward.service.nemo_gym import root_router, router
from reward.service.reward_service import RewardService, ServiceSettings
from tests.conftest import ROOT

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conformance"
NEEDS_EXACT_COUNT = "too-long"  # NeMo Gym sends no token count we read: estimated, as for slime's remote_rm


def load(name: str) -> dict[str, Any]:
    return json.loads(gzip.decompress((FIXTURES / f"{name}.json.gz").read_bytes()))


CAPTURE = load("nemo_gym")


def app_for(service: RewardService) -> FastAPI:
    """The service's app with the NeMo Gym routes (included here until reward.service.app includes them)."""
    app = create_app(service)
    paths = {getattr(r, "path", None) for r in app.routes}
    for r, path in ((router, "/nemo_gym/verify"), (root_router, "/verify")):
        if path not in paths:
            app.include_router(r)
    return app


@pytest.fixture
def make_client(service_env, tmp_path):
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "cache", **settings))
        clients.append(TestClient(app_for(svc), raise_server_exceptions=False).__enter__())
        return clients[-1]

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def test_capture_is_nemo_gyms_own():
    assert (CAPTURE["framework"], CAPTURE["version"], CAPTURE["tool"]) == ("nemo-gym", "0.7.0", "bash")
    assert any("SimpleAgent.run" in p for p in CAPTURE["code_path"])
    body = CAPTURE["cases"][0]["verify"]
    # BaseVerifyRequest as the agent sends it: the row (extras kept) | {"response": the episode's response}
    assert {"responses_create_params", "response", "reference", "group_id", "agent_ref"} <= set(body)
    kinds = {i["type"] for c in CAPTURE["cases"] for i in c["verify"]["response"]["output"]}
    assert kinds == {"reasoning", "function_call", "function_call_output", "message"}


@pytest.mark.slow
def test_every_captured_rollout_scores_as_its_steps_form(client):
    from tests.fixtures.conformance_gen.corpus import corpus  # the 128 rollouts the capture played

    resp = client.post("/score", json={"groups": corpus()})
    assert resp.status_code == 200
    expected = {
        (g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp.json()["groups"] for r in g["rollouts"]
    }
    matrix: Counter[tuple[str, bool]] = Counter()
    for c in CAPTURE["cases"]:
        key = (c["group_id"], c["rollout_id"])
        seed = client.post("/nemo_gym/seed_session", json=c["seed_session"])
        assert (seed.status_code, seed.json()) == (200, {})
        resp = client.post("/nemo_gym/verify", json=c["verify"])
        assert resp.status_code == 200, resp.text[:300]
        got = resp.json()
        # BaseVerifyResponse: the request echoed, reward, mask_sample / failure fields; our extras ride along
        assert got["responses_create_params"] == c["verify"]["responses_create_params"]
        assert got["response"] == c["verify"]["response"]
        assert (got["mask_sample"], got["failure_kind"], got["reward_fallback"]) == (False, None, False)
        assert got["fake"] is (got["status"] == "ok")  # the fake judge's mark on every judged reward
        # what NeMo Gym's SimpleAgent returned from /run at capture time, through the same route
        recorded = c["agent_result"]
        assert (recorded["status"], recorded["reward"], recorded["fake"]) == (got["status"], got["reward"], got["fake"])
        if c["rollout_id"] == NEEDS_EXACT_COUNT:
            assert expected[key] == ("penalized", -100.0) and (got["status"], got["reward"]) != expected[key]
            continue
        matrix[("simple_agent_bash", (got["status"], got["reward"]) == expected[key])] += 1
    table = {f: (matrix[(f, True)], matrix[(f, True)] + matrix[(f, False)]) for f in {f for f, _ in matrix}}
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": "nemo_gym /verify", "forms": table}) + "\n")
    assert table == {"simple_agent_bash": (124, 124)}, table


def test_root_paths_are_the_ones_nemo_gym_calls(client):
    """NeMo Gym's ServerClient posts to http://host:port/seed_session and /verify (no path prefix)."""
    c = CAPTURE["cases"][1]
    assert client.post("/seed_session", json=c["seed_session"]).json() == {}
    a = client.post("/verify", json=c["verify"]).json()
    b = client.post("/nemo_gym/verify", json=c["verify"]).json()
    assert (a["status"], a["reward"]) == (b["status"], b["reward"])


def _judge_refuses(fake_judge) -> None:
    fake_judge.script(*[{"status": 400, "message": "refused"}] * 8)


def test_judge_failure_is_a_503_and_never_a_reward(client, fake_judge):
    body = CAPTURE["judge_failure"]["verify"]
    _judge_refuses(fake_judge)
    resp = client.post("/nemo_gym/verify", json=body)
    assert resp.status_code == 503 and resp.headers["retry-after"]
    assert "reward" not in resp.json() and resp.json()["errors"][0]["category"] == "judge_bad_request"
    fake_judge.state.script.clear()


def test_what_nemo_gym_did_with_the_503():
    """Recorded at capture: the agent's raise_for_status failed its /run (500), and the collector's failure
    row (`agent_run_error`) has no reward: the sample is dropped, not scored 0."""
    failure = CAPTURE["judge_failure"]
    assert failure["run_status"] == 500
    assert "could not be judged" in failure["run_body"]
    row = failure["sidecar_row"]
    assert row["_ng_failure_class"] == "agent_run_error" and "reward" not in row


def test_opt_in_fallback_is_nemo_gyms_masked_row(make_client, fake_judge):
    client = make_client(judge_error_fallback=-100.0)
    body = {**CAPTURE["judge_failure"]["verify"], "instance_config": {"kept": 1}}
    _judge_refuses(fake_judge)
    got = client.post("/nemo_gym/verify", json=body).json()
    fake_judge.state.script.clear()
    assert (got["reward"], got["reward_fallback"], got["status"]) == (-100.0, True, "error")
    # what nemo_gym.judge.judge_failsafe writes; NeMo RL reads instance_config.mask_sample
    assert (got["mask_sample"], got["failure_kind"], got["_ng_failure_class"]) == (True, "judge_failed", "judge_failed")
    assert got["instance_config"] == {"kept": 1, "mask_sample": True}
    assert got["failure_reason"]


def test_seed_session_checks_the_label_before_a_rollout_is_spent(client):
    row = CAPTURE["cases"][0]["seed_session"]
    assert client.post("/nemo_gym/seed_session", json={**row, "reference": 3}).status_code == 422
    no_task = {k: v for k, v in row.items() if k not in ("reference", "group_id")}
    resp = client.post("/nemo_gym/seed_session", json=no_task)
    assert resp.status_code == 422 and resp.json()["detail"][0].startswith("row.reference: required")
    both = {**row, "label": row["reference"]}
    assert client.post("/nemo_gym/seed_session", json=both).status_code == 422
    # an Environment Server's seed: the row under task_data, the caller's id back
    seed = {"resources_session_id": "s1", "episode_id": "e", "task_id": "t", "task_data": row}
    assert client.post("/nemo_gym/seed_session", json=seed).json() == {"resources_session_id": "s1"}


@pytest.mark.slow
def test_label_field_and_reference_id_forms(client):
    c = CAPTURE["cases"][1]
    row = {k: v for k, v in c["verify"].items() if k not in ("reference", "group_id")}
    a = client.post("/nemo_gym/verify", json={**row, "label": {"reference": c["verify"]["reference"]}}).json()
    b = client.post("/nemo_gym/verify", json=c["verify"]).json()
    assert (a["status"], a["reward"]) == (b["status"], b["reward"])
    resp = client.post("/nemo_gym/verify", json={**row, "label": "no-such-plan"})
    assert resp.status_code == 422 and "label.reference.id" in resp.json()["detail"][0]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("response"),
        lambda b: b.__setitem__("response", {"output": "text"}),
        lambda b: b["responses_create_params"].__setitem__("input", 5),
        lambda b: b.__setitem__("reference", []),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, mutate):
    body = json.loads(json.dumps(CAPTURE["cases"][0]["verify"]))
    mutate(body)
    resp = client.post("/nemo_gym/verify", json=body)
    assert resp.status_code == 422, resp.text[:300]
    assert resp.json()["detail"]


def test_strict_json_and_hostile_items_are_answers_not_crashes(client):
    resp = client.post("/nemo_gym/verify", content=b'{"reward": NaN}', headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "NaN" in resp.json()["detail"][0]
    assert (
        client.post("/nemo_gym/verify", content=b"[1]", headers={"content-type": "application/json"}).status_code == 422
    )
    body = json.loads(json.dumps(CAPTURE["cases"][2]["verify"]))
    body["response"]["output"] = [None, 7, {"type": ["x"]}, {"type": "function_call", "name": {}, "arguments": []},
                                  {"type": "function_call_output", "output": [{"text": 5}]}, {"type": "message", "role": "assistant", "content": 3}]  # fmt: skip
    resp = client.post("/nemo_gym/verify", json=body)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.json()["status"] == "penalized"  # no valid command and no final answer: penalised, not a crash


@pytest.mark.parametrize("path", ["/verify", "/seed_session", "/nemo_gym/verify"])
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"x": ' + b"9" * 5000 + b"}", "more than 4300 digits"),
        (b'{"x": "\xff"}', "not UTF-8"),
        (b'{"responses_create_params": {"input": "a', "cut off?"),
        (b"", "cut off?"),
    ],
)
def test_hostile_bodies_are_clear_4xx(client, path, body, says):
    resp = client.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500 and says in resp.text, (resp.status_code, resp.text[:200])


def test_terminal_tool_query_and_the_no_terminal_tool_warning(client):
    body = CAPTURE["cases"][1]["verify"]
    assert client.post("/nemo_gym/verify", json=body).json()["warnings"] is None
    got = client.post("/nemo_gym/verify?terminal_tool=run_in_terminal", json=body).json()
    assert (got["status"], got["penalty"]) == ("penalized", "no_commands") and got["warnings"]
    assert client.post("/nemo_gym/verify?terminal_tool=,", json=body).status_code == 422
