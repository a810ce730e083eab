"""Credentials checked before a step is lost: `score` and `serve` refuse in one line naming the variable, and
`/readyz` says 503 with the reason while every judgement fails for a reason no retry fixes soon."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from reward.core.results import ErrorInfo, GroupResult, JudgeInfo, RolloutResult
from reward.judge.base import CallSettings, JudgeSettings
from reward.judge.credentials import missing_credentials
from reward.service.app import create_app
from reward.service.judge_health import JudgeHealth
from reward.service.reward_service import RewardService, ServiceSettings
from tests.conftest import ROOT, group, rollout
from tests.conftest import run_cli as reward

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "REWARD_JUDGE_API_KEY", "REWARD_JUDGE_API_BASE", "MY_KEY")


@pytest.fixture
def no_keys(monkeypatch):
    for k in KEYS:
        monkeypatch.delenv(k, raising=False)


def settings(model: str, api_base: str | None = None, api_key: str | None = None) -> JudgeSettings:
    call = CallSettings(model, 0.0, 256)
    return JudgeSettings(condense=call, grade=call, api_base=api_base, api_key=api_key)


def test_missing_key_named_per_provider(no_keys, monkeypatch):
    assert missing_credentials(settings("openai/gpt-4.1")) == [
        "judge openai/gpt-4.1: no credentials: set OPENAI_API_KEY (or REWARD_JUDGE_API_KEY / --judge-api-key)"
    ]
    assert "ANTHROPIC_API_KEY" in missing_credentials(settings("anthropic/claude-sonnet-4-5"))[0]
    assert missing_credentials(settings("openai/gpt-4.1", api_key="sk-x")) == []
    # a self-hosted OpenAI-compatible server needs no key
    assert missing_credentials(settings("openai/my-qwen", api_base="http://127.0.0.1:9/v1")) == []
    # credentials that may come from elsewhere (an instance role) are left to the first call
    assert missing_credentials(settings("bedrock/anthropic.claude-v2")) == []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert missing_credentials(settings("openai/gpt-4.1")) == []


def test_router_deployments_and_env_references(no_keys, monkeypatch):
    router = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/gpt-4.1", "api_key": "os.environ/MY_KEY"}},
            {"model_name": "b", "litellm_params": {"model": "anthropic/claude-sonnet-4-5"}},
            {"model_name": "c", "litellm_params": {"model": "openai/gpt-4.1", "api_key": "sk-literal"}},
        ]
    }
    problems = missing_credentials(settings("ignored"), router)
    assert problems == [
        "judge openai/gpt-4.1: no credentials: set MY_KEY",
        "judge anthropic/claude-sonnet-4-5: no credentials: set ANTHROPIC_API_KEY",
    ]
    monkeypatch.setenv("MY_KEY", "sk-y")
    assert len(missing_credentials(settings("ignored"), router)) == 1


def test_score_and_serve_refuse_before_anything_runs(no_keys, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(group("g")) + "\n")
    env = {"REWARD_JUDGE_MODEL": "openai/gpt-4.1", "REWARD_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", env=env, check=False)
    assert ran.returncode == 2 and "OPENAI_API_KEY" in ran.stderr and len(ran.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.jsonl").exists()
    ran = reward("serve", "--port", "0", env=env, check=False)
    assert ran.returncode == 2 and "OPENAI_API_KEY" in ran.stderr


# --- readiness ------------------------------------------------------------------------------------------


def result(*statuses: tuple[str, str | None]) -> GroupResult:
    rollouts = [
        RolloutResult(
            id=str(i),
            status=status,  # type: ignore[arg-type]
            reward=1.0 if status != "error" else None,
            error=ErrorInfo(category=cat, message=f"{cat} happened") if cat else None,
            in_group_stats=status != "error",
            has_final_answer=True,
        )
        for i, (status, cat) in enumerate(statuses)
    ]
    judge = JudgeInfo(condense_model="m", grade_model="m", fake=False)
    return GroupResult(
        group_id="g", rubric="r", rubric_version="v", judge=judge, mean=None, std=None, n_scored=0,
        n_errors=0, filtered=False, filter_reason=None, rollouts=rollouts,
    )  # fmt: skip


def test_health_follows_the_last_requests_and_half_opens():
    now = [0.0]
    h = JudgeHealth(retry_after_s=60, clock=lambda: now[0])
    h.observe([result(("error", "judge_auth"), ("error", "judge_auth"))])
    assert not h.ready and h.state()["judge_error"] == "judge_auth: judge_auth happened"
    h.observe([result(("penalized", None))])  # no judge was asked: says nothing
    assert not h.ready
    h.observe([result(("error", "judge_auth"), ("error", "judge_parse_error"))])  # a reply came back: callable
    assert not h.ready  # unchanged by a mixed request
    now[0] = 61.0
    assert h.ready and h.state()["judge"] == "retrying"  # out of rotation too long: let one request decide
    h.observe([result(("ok", None), ("error", "judge_auth"))])
    assert h.ready and h.state() == {"judge": "ok", "judge_error": None}
    # a process past REWARD_MAX_COST cannot call its judge either: out of rotation, with the reason
    h.observe([result(("error", "budget_exhausted"), ("penalized", None))])
    assert not h.ready and h.state()["judge_error"].startswith("budget_exhausted: ")


def test_a_reply_the_judge_gave_ends_a_run_of_unavailable_requests():
    """Requests the judge answered (unparseable, a refusal) come between two odd 500s and a third: the judge is
    callable, so the three are not "in a row" and the replica stays in rotation."""
    h = JudgeHealth(retry_after_s=60, clock=lambda: 0.0)
    for _ in range(2):
        h.observe([failed("judge_unavailable", "litellm.InternalServerError: boom")])
    for _ in range(5):
        h.observe([failed("judge_parse_error", "not JSON")])
    h.observe([failed("judge_unavailable", "litellm.InternalServerError: boom")])
    assert h.ready


def failed(category: str, message: str) -> GroupResult:
    g = result(("error", category))
    g.rollouts[0].error = ErrorInfo(category=category, message=message)
    return g


def test_a_rollout_the_provider_rejects_for_its_content_leaves_the_worker_ready():
    """slime, verl, verifiers and NeMo Gym send one rollout per request: a 400 for its content (or a 500 or 413
    it provokes, once) must not take the replica out of rotation; a 404 (no such model) is every rollout's."""
    h = JudgeHealth(retry_after_s=60, clock=lambda: 0.0)
    h.observe([failed("judge_bad_request", "litellm.BadRequestError: Invalid prompt: your prompt was flagged")])
    assert h.ready
    for i in range(2):  # one odd rollout's 500, retried by the trainer: still ready
        h.observe([failed("judge_unavailable", "litellm.InternalServerError: boom")])
        assert h.ready, i
    h.observe([result(("ok", None))])  # a judgement between: the run of failures starts over
    for _ in range(2):
        h.observe([failed("judge_unavailable", "litellm.APIConnectionError: Connection refused")])
    assert h.ready
    h.observe([failed("judge_unavailable", "litellm.APIConnectionError: Connection refused")])  # 3 in a row
    assert not h.ready and h.state()["judge_error"].startswith("judge_unavailable: litellm.APIConnectionError")
    h.observe([result(("ok", None))])
    h.observe([failed("judge_bad_request", "litellm.NotFoundError: NotFoundError: The model `x` does not exist")])
    assert not h.ready and "does not exist" in str(h.state()["judge_error"])


def test_readyz_stays_200_after_one_rollout_the_provider_flags(fake_judge, service_client):
    c = service_client
    fake_judge.script(*[{"status": 400, "message": "Invalid prompt: your prompt was flagged"}] * 10)
    body = {"groups": [group("one", rollouts=[rollout("flagged")], reference={"plan": "1. Run pytest -q"})]}
    scored = c.post("/score", json=body).json()["groups"][0]["rollouts"][0]
    assert scored["error"]["category"] == "judge_bad_request"
    assert c.get("/readyz").status_code == 200
    fake_judge.reset()
    fake_judge.script(*[{"status": 404, "message": "The model `test-judge` does not exist"}] * 10)
    body = {"groups": [group("two", rollouts=[rollout("any")], reference={"plan": "1. Run pytest -q"})]}
    scored = c.post("/score", json=body).json()["groups"][0]["rollouts"][0]
    assert scored["error"]["category"] == "judge_bad_request"
    ready = c.get("/readyz")
    assert ready.status_code == 503 and "does not exist" in ready.json()["judge_error"]


def test_readyz_is_503_with_the_reason_while_the_judge_fails(fake_judge, service_client):
    c = service_client
    assert c.get("/readyz").status_code == 200
    fake_judge.script(*[{"status": 401, "message": "Incorrect API key"}] * 50)
    assert c.post("/score", json={"groups": [group("g1")]}).status_code == 200
    ready = c.get("/readyz")
    assert ready.status_code == 503 and ready.json()["judge"] == "failing"
    assert ready.json()["judge_error"].startswith("judge_auth: ") and "Incorrect API key" in ready.text
    fake_judge.reset()
    c.app.state.service.judge_health.since -= 3600  # half-open: one request decides
    body = {"groups": [group("g2", rollouts=[rollout("fresh")])]}
    assert c.post("/score", json=body).json()["groups"][0]["rollouts"][0]["status"] == "ok"
    assert c.get("/readyz").status_code == 200


def test_readyz_stays_503_once_the_budget_is_spent_with_no_half_open_retry(fake_judge, tmp_path, monkeypatch):
    """A budget never refills without a restart: after the retry delay the worker still says not ready (a
    half-open 'retrying' would draw steps that can only fail), while a budget with room says ready."""
    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/gpt-4o-mini")  # priced by litellm: the budget is enforced
    monkeypatch.setenv("REWARD_JUDGE_API_BASE", fake_judge.api_base)
    monkeypatch.setenv("REWARD_JUDGE_API_KEY", "sk-test")
    monkeypatch.setenv("REWARD_MAX_COST", "0.004")  # about one group's calls
    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "cache"))
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        assert c.get("/readyz").status_code == 200
        categories = []
        for i in range(4):
            body = {"groups": [group(f"g{i}", rollouts=[rollout(f"r{i}-{j}") for j in range(4)])]}
            for r in c.post("/score", json=body).json()["groups"][0]["rollouts"]:
                categories.append(r["error"]["category"] if r.get("error") else r["status"])
        assert "budget_exhausted" in categories
        svc.judge_health.since -= 3600  # long past the half-open delay
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["judge"] == "failing"
        assert ready.json()["judge_error"].startswith("budget_exhausted: ") and "REWARD_MAX_COST" in ready.text
