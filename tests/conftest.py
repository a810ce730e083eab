"""Shared fixtures: the project's fake judge as a real HTTP server on 127.0.0.1, and scorers wired to it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from reward.cache.disk import Store
from reward.judge.fake.http import FakeJudge
from reward.judge.litellm_judge import CallSettings, JudgeClient, JudgeSettings
from reward.rubric.load import Rubric, load_rubric
from reward.scoring.scorer import Scorer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rollouts.jsonl"
TEST_MODEL = os.environ.get("REWARD_TEST_MODEL", "openai/test-judge")


@pytest.fixture(scope="session")
def fake_judge_server():
    with FakeJudge() as fj:
        yield fj


@pytest.fixture
def fake_judge(fake_judge_server: FakeJudge) -> FakeJudge:
    fake_judge_server.reset()
    fake_judge_server.state.latency = 0.0
    return fake_judge_server


@pytest.fixture(scope="session")
def rubric() -> Rubric:
    return load_rubric("execution_subagent")


def settings_for(fj: FakeJudge, **overrides: Any) -> JudgeSettings:
    base = {
        "condense": CallSettings(TEST_MODEL, 0.0, 512),
        "grade": CallSettings(TEST_MODEL, 0.0, 1024),
        "api_base": fj.api_base,
        "api_key": "sk-test",
        "timeout_s": 10.0,
        "num_retries": 2,
        "max_reasks": 2,
        "concurrency": 16,
    }
    base.update(overrides)
    return JudgeSettings(**base)


@pytest.fixture
def make_scorer(fake_judge: FakeJudge, rubric: Rubric, tmp_path: Path):
    stores: list[Store] = []

    def make(rub: Rubric | None = None, cache: Path | None = None, **overrides: Any) -> Scorer:
        store = Store(cache if cache is not None else tmp_path / "cache")
        stores.append(store)
        return Scorer(rub or rubric, JudgeClient(settings_for(fake_judge, **overrides)), store)

    yield make
    for s in stores:
        s.close()


def cli_env(fj: FakeJudge, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "REWARD_JUDGE_MODEL": TEST_MODEL,
            "REWARD_JUDGE_API_BASE": fj.api_base,
            "REWARD_JUDGE_API_KEY": "sk-test",
            "REWARD_CACHE_DIR": str(cache),
            "COLUMNS": "200",
        }
    )
    return env


def example_groups() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def step(command: str = "pytest -q", exit_code: int | None = 0, output: str = "3 passed") -> dict[str, Any]:
    return {"command": command, "exit_code": exit_code, "output": output}


def rollout(rid: str, *, steps: list[dict] | None = None, final: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "steps": [step()] if steps is None else steps,
        "final_answer": f"<final_answer>ran pytest: {rid}</final_answer>" if final is None else final,
        **extra,
    }


def group(gid: str = "g1", rollouts: list[dict] | None = None, reference: dict | None = None) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "group_id": gid,
            "query": "Run pytest -q and report failures.",
            "reference": reference or {"steps": [step()], "final_answer": "<final_answer>3 passed</final_answer>"},
            "rollouts": rollouts or [rollout(f"r{i}") for i in range(4)],
        }
    )


@pytest.fixture(scope="session")
def redis_server_session(tmp_path_factory: pytest.TempPathFactory):
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_server_session):
    """A running Redis, emptied for each test (restarted if a test stopped it)."""
    if redis_server_session.proc is None:
        redis_server_session.start()
    redis_server_session.client().flushall()
    return redis_server_session


@pytest.fixture
def make_local_scorer(rubric: Rubric, tmp_path: Path):
    """A scorer on the in-process fake judge (no socket): for scoring logic. Its judge counts calls."""
    from reward.judge.fake.in_process import InProcessJudge

    stores: list[Store] = []

    def make(rub: Rubric | None = None, cache: Path | None = None, **overrides: Any) -> Scorer:
        store = Store(cache if cache is not None else tmp_path / "local-cache")
        stores.append(store)
        settings = JudgeSettings(
            condense=CallSettings(TEST_MODEL, 0.0, 512), grade=CallSettings(TEST_MODEL, 0.0, 1024), **overrides
        )
        return Scorer(rub or rubric, InProcessJudge(settings), store)

    yield make
    for s in stores:
        s.close()
