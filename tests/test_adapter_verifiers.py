"""verifiers v1 / prime-rl adapter: what verifiers 0.4.0's own rollout and `Task.score` handed the reward
(tests/fixtures/conformance/verifiers.json.gz, from tests/fixtures/conformance_gen/verifiers_run.py),
replayed through `reward.adapters.verifiers.execution_subagent` against a real server and the fake judge.

Duck-typed stand-ins for verifiers' TaskData and Trace are built from the fixture (CI has no verifiers).
The steps form is scored with the token count the adapter derived from verifiers' usage (the capture's
stand-in model counts one token per byte), so the over-limit rollout is compared like for like; the
shipped BashHarness reports no exit code, so its form is compared with the steps form without them.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from reward.adapters import verifiers as vf_adapter
from reward.adapters.client import RewardClient
from reward.adapters.common import JudgeFailed
from tests.fixtures.conformance_gen.corpus import corpus
from tests.server_proc import ServerProcess, server_env

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "verifiers.json.gz"
FORMS = ("bash_harness", "bash_harness_exit_line")
NEEDS_EXACT_COUNT = "too-long"

pytestmark = pytest.mark.slow


def load() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


class StandInTrace:
    """What the adapter reads and writes on a verifiers Trace: messages, branches[-1].calls[].usage, info,
    record_metric."""

    def __init__(self, received: dict[str, Any]) -> None:
        self.messages = copy.deepcopy(received["messages"])
        calls = [SimpleNamespace(usage=None if u is None else SimpleNamespace(**u)) for u in received["calls_usage"]]
        self.branches = [SimpleNamespace(calls=calls)]
        self.info: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}

    def record_metric(self, name: str, value: float) -> None:
        self.metrics[name] = float(value)


def stand_in_task(received: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**received["task"])


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("vf") / "c"))
    yield proc
    proc.stop()


@pytest.fixture
def client(server, monkeypatch):
    c = RewardClient(server.url, timeout_s=60)
    monkeypatch.setattr("reward.adapters.client._default", c)
    return c


def score_steps(server, counts: dict[tuple[str, str], int | None], exit_codes: bool) -> dict[tuple[str, str], Any]:
    groups = corpus()
    for g in groups:
        for r in g["rollouts"]:
            n = counts.get((g["group_id"], r["id"]), r.get("num_tokens"))
            r.pop("num_tokens", None)
            if n is not None:
                r["num_tokens"] = n
            if not exit_codes:
                for s in r["steps"]:
                    s["exit_code"] = None
    resp = httpx.post(f"{server.url}/score", json={"groups": groups}, timeout=300)
    assert resp.status_code == 200, resp.text[:300]
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp.json()["groups"] for r in g["rollouts"]}


@pytest.fixture(scope="module")
def expected(server) -> dict[tuple[str, str], Any]:
    """The corpus's steps form as given (its own token counts, exit codes)."""
    return score_steps(server, {}, exit_codes=True)


def test_replay_matches_steps_form(server, client, expected):
    fixture = load()
    matrix: Counter[tuple[str, bool]] = Counter()
    verbatim: Counter[tuple[str, bool]] = Counter()
    for form in FORMS:
        cases = [c for c in fixture["cases"] if c["form"] == form]
        counts = {(c["group_id"], c["rollout_id"]): c["received"]["num_tokens"] for c in cases}
        want = score_steps(server, counts, exit_codes=form != "bash_harness")

        async def run(cases: list[dict[str, Any]] = cases) -> list[tuple[dict[str, Any], StandInTrace, float]]:
            out = []
            for c in cases:
                trace = StandInTrace(c["received"])
                out.append((c, trace, await vf_adapter.execution_subagent(stand_in_task(c["received"]), trace)))
            return out

        for c, trace, reward in asyncio.run(run()):
            key = (c["group_id"], c["rollout_id"])
            got = (trace.info["reward_service"]["status"], reward)
            matrix[(form, got == want[key])] += 1
            verbatim[(form, got == expected[key])] += 1
            # verifiers itself recorded the same reward when it ran the adapter at capture time
            assert c["verifiers"]["ok"] and c["received"]["returned"] == reward, (form, key)
            assert c["verifiers"]["rewards"]["execution_subagent"]["score"] == reward
            assert c["verifiers"]["reward"] == reward  # trace.reward: the one reward, weight 1
            assert c["verifiers"]["info"]["status"] == got[0]
            # the count derived from verifiers' usage travelled (not estimated by the service)
            assert trace.info["reward_service"]["num_tokens_exact"] is True
            if form == "bash_harness_exit_line" and c["rollout_id"] != NEEDS_EXACT_COUNT:
                assert got == expected[key], key  # under the limit either way: the steps form verbatim
    table = {f: (matrix[(f, True)], matrix[(f, True)] + matrix[(f, False)]) for f in FORMS}
    _report("verifiers", table, verbatim)
    assert table == {f: (128, 128) for f in FORMS}, table
    # exact against the steps form as given but for the count the stand-in model cannot reproduce (one
    # over-limit rollout in each of the 4 variants)
    over = sum(r["id"] == NEEDS_EXACT_COUNT for g in corpus() for r in g["rollouts"])
    assert over == 4 and verbatim[("bash_harness_exit_line", True)] == 128 - over, verbatim


def _report(trainer: str, table: dict[str, tuple[int, int]], verbatim: Counter[tuple[str, bool]]) -> None:
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        raw = {f: (verbatim[(f, True)], verbatim[(f, True)] + verbatim[(f, False)]) for f in FORMS}
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": trainer, "forms": table, "against_steps_as_given": raw}) + "\n")


def test_fixture_was_captured_by_running_verifiers():
    meta = load()
    assert meta["framework"] == "verifiers" and meta["version"] == "0.4.0"
    assert meta["function"] == "verifiers.v1.task.Task.score"
    assert meta["harness"] == {"id": "bash", "tool": "bash"}
    assert len(meta["cases"]) == 256 and {c["form"] for c in meta["cases"]} == set(FORMS)
    assert all(c["received"]["signature"] == "(task: 'Any', trace: 'Any') -> 'float'" for c in meta["cases"])
    steps = {(g["group_id"], r["id"]): r["steps"] for g in corpus() for r in g["rollouts"]}
    for c in meta["cases"]:
        msgs = c["received"]["messages"]
        assert [m["role"] for m in msgs[:2]] == ["system", "user"]
        calls = [call for m in msgs if m["role"] == "assistant" for call in m.get("tool_calls") or []]
        # verifiers' ToolCall is flat: {id, type, name, arguments (a JSON string)}; namespace None is dropped
        assert all(set(call) == {"id", "type", "name", "arguments"} and call["name"] == "bash" for call in calls)
        tools = [m for m in msgs if m["role"] == "tool"]
        assert all(set(m) == {"role", "tool_call_id", "content", "name"} for m in tools)
        outputs = [s["output"] for s in steps[(c["group_id"], c["rollout_id"])]]
        if c["form"] == "bash_harness":  # the shipped run_bash: stdout + stderr, no exit code anywhere
            assert [m["content"] for m in tools] == outputs
        assert len(calls) == len(tools) == len(outputs)


def test_judge_failure_fails_the_trace_never_a_number(server, client, fake_judge):
    recorded = load()["judge_failure"]
    v = recorded["verifiers"]
    # at capture: the reward raised JudgeFailed, verifiers recorded a TaskError and no reward for it
    assert v["ok"] is False and v["rewards"] == {"execution_subagent": None}
    assert v["errors"][-1]["type"] == "TaskError" and "JudgeFailed" in v["errors"][-1]["message"]
    assert v["info"]["status"] == "error" and v["info"]["error"]["category"] == "judge_auth"
    assert recorded["received"]["raised"].startswith("JudgeFailed")

    received = copy.deepcopy(recorded["received"])
    received["messages"][-1]["content"] += "\n(unseen)"  # new content: its plan is not cached
    fake_judge.script(*[{"status": 401, "message": "bad key"}] * 20)
    trace = StandInTrace(received)
    with pytest.raises(JudgeFailed, match="judge_auth"):
        asyncio.run(vf_adapter.execution_subagent(stand_in_task(received), trace))
    info = trace.info["reward_service"]
    assert info["status"] == "error" and info["reward"] is None and "reward_service/s_pos" not in trace.metrics


def test_none_and_nan_as_verifiers_takes_them():
    """Why the adapter raises: verifiers fails a None (float(None) inside Task.score) but records a NaN,
    which would make trace.reward NaN and every advantage of its prime-rl group NaN."""
    probes = load()["none_nan"]
    assert probes["none_reward"]["raised"].startswith("TaskError:") and "NoneType" in probes["none_reward"]["raised"]
    assert probes["nan_reward"]["raised"] is None and probes["nan_reward"]["trace_reward"] == "nan"
    assert all(math.isfinite(c["received"]["returned"]) for c in load()["cases"])


def test_fake_mark_reaches_info_and_metrics(server, client):
    case = next(c for c in load()["cases"] if c["verifiers"]["info"]["status"] == "ok")
    trace = StandInTrace(case["received"])
    asyncio.run(vf_adapter.execution_subagent(stand_in_task(case["received"]), trace))
    assert trace.info["reward_service"]["fake"] is True and trace.metrics["reward_service/fake_judge"] == 1.0
    assert {"reward_service/s_pos", "reward_service/s_pit", "reward_service/s_fa"} <= set(trace.metrics)
    # at capture, every judged rollout carried the mark through verifiers' own trace; penalised ones met no judge
    for c in load()["cases"]:
        assert c["verifiers"]["info"]["fake"] is (c["verifiers"]["info"]["status"] == "ok")
        assert c["verifiers"]["metrics"]["reward_service/fake_judge"] == float(c["verifiers"]["info"]["fake"])


def test_label_and_prompt_from_task_data():
    task = SimpleNamespace(prompt="<query>\nrun it\n</query>", reference='{"plan": "EXECUTION PLAN"}', query=None)
    assert vf_adapter.label_of(task) == {"reference": {"plan": "EXECUTION PLAN"}}
    extra = SimpleNamespace(model_extra={"reference": "ref-1", "group_id": "g"}, prompt=None)
    assert vf_adapter.label_of(extra) == {"reference": "ref-1", "group_id": "g"}
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    assert vf_adapter.prompt_of(SimpleNamespace(prompt=None), msgs) == msgs[:2]
    trace = SimpleNamespace(branches=[SimpleNamespace(calls=[SimpleNamespace(usage=None)])])
    assert vf_adapter.num_tokens_of(trace) is None  # a call without usage: the service estimates


def test_imports_without_verifiers():
    code = "import sys, reward.adapters.verifiers; assert 'verifiers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scoring_timeout_is_a_stop_not_an_error():
    """Why the README says to leave the agent's `timeout.scoring` unset or above REWARD_TIMEOUT: a reward
    cut off by it is recorded as a stop with the reward unset, and `trace.reward` (the sum of the rewards
    set) reads 0.0 on a trace that is `ok`, which prime-rl does not drop."""
    t = load()["scoring_timeout"]
    assert t["is_timeout"] and t["stop_condition"] == "scoring_timeout"
    assert t["ok"] is True and t["errors"] == [] and t["rewards"] == {"slow": None} and t["reward"] == 0


def test_declared_terminal_tool_travels(server, client):
    """Declaring another tool name makes the BashHarness's `bash` calls not count: the declaration reaches
    the service (default: its surveyed names, `bash` among them)."""
    case = next(c for c in load()["cases"] if c["verifiers"]["info"]["status"] == "ok")
    received = case["received"]
    trace = StandInTrace(received)
    reward = asyncio.run(vf_adapter.execution_subagent(stand_in_task(received), trace, terminal_tool="run_in_terminal"))
    assert reward == -50.0 and trace.info["reward_service"]["penalty"] == "no_commands"
