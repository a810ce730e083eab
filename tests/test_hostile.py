"""Hostile inputs and broken environments against the service in-process: a clear 4xx naming the path, or a
categorised per-rollout error; never a 5xx, a hang or a number that was not computed."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from reward.server import create_app
from reward.service import RewardService, ServiceSettings
from tests.conftest import ROOT, group, rollout

JSON = {"content-type": "application/json"}


@pytest.fixture
def service(fake_judge, tmp_path, monkeypatch):
    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/test-judge")
    monkeypatch.setenv("REWARD_JUDGE_API_BASE", fake_judge.api_base)
    monkeypatch.setenv("REWARD_JUDGE_API_KEY", "sk-test")
    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "cache"))
    yield svc


@pytest.fixture
def client(service):
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c


def body(*groups: dict) -> str:
    return json.dumps({"groups": list(groups)})


# --- 1. a full cache disk ------------------------------------------------------------------------------


def test_full_cache_disk_scores_without_cache_readyz_false_then_recovers(client, service, monkeypatch):
    from tests.test_cache import _full_disk

    disk = _full_disk(service.store, monkeypatch)
    r = client.post("/score", content=body(group("full-1")), headers=JSON, timeout=30)
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["groups"][0]["rollouts"]] == ["ok"] * 4  # not judge_timeout
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "disk is full" in ready.json()["cache"]
    assert ready.json()["cache_write_failures"] >= 1
    disk["full"] = False
    r = client.post("/score", content=body(group("full-2", rollouts=[rollout("new")])), headers=JSON, timeout=30)
    assert r.status_code == 200 and r.json()["groups"][0]["rollouts"][0]["status"] == "ok"
    assert client.get("/readyz").status_code == 200
