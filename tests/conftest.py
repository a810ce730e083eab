"""Shared fixtures: the project's fake judge as a real HTTP server on 127.0.0.1, and scorers wired to it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reward.cache.disk import Store
from reward.judge.base import CallSettings, JudgeSettings
from reward.judge.fake.http import FakeJudgeServer
from reward.judge.litellm_judge import LiteLLMJudge
from reward.rubric.load import Rubric, load_rubric
from reward.scoring.scorer import Scorer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "rollouts.jsonl"
TEST_MODEL = os.environ.get("REWARD_TEST_MODEL", "openai/test-judge")


@pytest.fixture(autouse=True, scope="session")
def _cli_width():
    """The CLI's consoles are created at import with the width of whoever imported them first (a test worker
    has no terminal): in-process runs get the width subprocess runs get from COLUMNS=200 (`cli_env`)."""
    from reward.cli import console

    console.out.width = console.err.width = 200
    yield


@pytest.fixture(scope="session")
def fake_judge_server():
    with FakeJudgeServer() as fj:
        yield fj


@pytest.fixture
def fake_judge(fake_judge_server: FakeJudgeServer) -> Iterator[FakeJudgeServer]:
    # Calls an earlier test left in flight (a killed server's, a hanging judge's) would count in this one's
    # peak: let them finish first (they are bounded by that test's latency).
    deadline = time.monotonic() + 10
    while fake_judge_server.state.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    fake_judge_server.reset()
    fake_judge_server.state.latency = 0.0
    yield fake_judge_server
    # and after: a script this test left unconsumed (a run of 401s) must not answer the next module's server
    fake_judge_server.reset()
    fake_judge_server.state.latency = 0.0


@pytest.fixture
def service_env(fake_judge: FakeJudgeServer, monkeypatch: pytest.MonkeyPatch) -> FakeJudgeServer:
    """The environment a service reads its judge from, pointed at the fake judge."""
    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/test-judge")
    monkeypatch.setenv("REWARD_JUDGE_API_BASE", fake_judge.api_base)
    monkeypatch.setenv("REWARD_JUDGE_API_KEY", "sk-test")
    return fake_judge


@pytest.fixture
def service_client(service_env: FakeJudgeServer, tmp_path: Path) -> Iterator[Any]:
    """The HTTP app in process (its lifespan run), on the project's rubrics and a fresh cache."""
    from fastapi.testclient import TestClient

    from reward.service.app import create_app
    from reward.service.reward_service import RewardService, ServiceSettings

    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "cache"))
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def rubric() -> Rubric:
    return load_rubric("execution_subagent")


def settings_for(fj: FakeJudgeServer, **overrides: Any) -> JudgeSettings:
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
def make_scorer(fake_judge: FakeJudgeServer, rubric: Rubric, tmp_path: Path):
    stores: list[Store] = []

    def make(rub: Rubric | None = None, cache: Path | None = None, **overrides: Any) -> Scorer:
        store = Store(cache if cache is not None else tmp_path / "cache")
        stores.append(store)
        return Scorer(rub or rubric, LiteLLMJudge(settings_for(fake_judge, **overrides)), store)

    yield make
    for s in stores:
        s.close()


def cli_env(fj: FakeJudgeServer, cache: Path) -> dict[str, str]:
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


@dataclass
class Ran:
    """What a `reward` command did: as subprocess.CompletedProcess has it."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: Any, env: dict[str, str] | None = None, check: bool = True) -> Ran:
    """`reward ARGS` in this process (Typer's CliRunner isolation: stdin, stdout, stderr and the environment
    replaced for the call, then restored). The process ends as a real one would: an exception main() does not
    translate is a traceback on stderr and exit status 1."""
    from typer.testing import CliRunner

    from reward.cli import main

    delta: dict[str, str | None] = {}
    if env is not None:
        delta = {k: None for k in os.environ if k not in env}
        delta.update(env)
    with CliRunner().isolation(env=delta) as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        ran = Ran(code, out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace"))
    if check and ran.returncode != 0:
        raise AssertionError(f"exit {ran.returncode}\nstdout:\n{ran.stdout}\nstderr:\n{ran.stderr}")
    return ran


def run_cli_process(*args: Any, env: dict[str, str], check: bool = True) -> Ran:
    """`reward ARGS` in a process of its own, as a user runs it (the console entry point, a fresh interpreter)."""
    proc = subprocess.run(
        [sys.executable, "-m", "reward", *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
    from reward.judge.fake.in_process import InProcessFakeJudge

    stores: list[Store] = []

    def make(rub: Rubric | None = None, cache: Path | None = None, **overrides: Any) -> Scorer:
        store = Store(cache if cache is not None else tmp_path / "local-cache")
        stores.append(store)
        settings = JudgeSettings(
            condense=CallSettings(TEST_MODEL, 0.0, 512), grade=CallSettings(TEST_MODEL, 0.0, 1024), **overrides
        )
        return Scorer(rub or rubric, InProcessFakeJudge(settings), store)

    yield make
    for s in stores:
        s.close()


def full_disk(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Make every disk write fail the way SQLite does on a full disk, until the returned switch is flipped."""
    import sqlite3

    state = {"full": True}
    real_set = store._disk.set

    def set_(key, value, *a, **kw):
        if state["full"]:
            raise sqlite3.OperationalError("database or disk is full")
        return real_set(key, value, *a, **kw)

    monkeypatch.setattr(store._disk, "set", set_)
    return state


def distinct_groups(tag: str, n_groups: int = 4, n_rollouts: int = 4) -> list[dict[str, Any]]:
    """Distinct trajectories (each condensed once), one reference per group."""
    out = []
    for g in range(n_groups):
        rollouts = [
            rollout(f"r{i}", steps=[step(command=f"pytest -q -k {tag}_{g}_{i}", output=f"{i} passed")])
            for i in range(n_rollouts)
        ]
        out.append(group(f"{tag}-g{g}", rollouts))
    return out


# --- the `slow` marker: tests that start processes or servers (`-m "not slow"` is the quick inner loop) -------

# Fixtures that start a process: `reward serve`, redis-server, replicas.
SLOW_FIXTURES = {"server", "api", "guarded", "replicas", "replica_env", "redis_server", "redis_server_session"}
# Modules whose tests all start processes of their own (workers, signals); other such tests are marked one by one.
SLOW_MODULES = {"test_serve_cli", "test_workers", "test_ray"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
