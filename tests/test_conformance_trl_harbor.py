"""TRL's own terminal environment: what TRL 1.16's GRPOTrainer passed to the reward function when the 128
corpus rollouts ran in `trl.experimental.harbor.HarborBashEnv` (tool `bash`; fixture
tests/fixtures/conformance/trl_harbor.json.gz from tests/fixtures/conformance_gen/trl_harbor_run.py), replayed
through `reward.adapters.trl.execution_subagent_reward` against a real server and the fake judge.

HarborBashEnv's `bash` returns stdout + stderr and no exit code (`HarborEnv._exec`); only an empty output
becomes `(empty output, rc=N)`. So the steps form it is compared with "like for like" has no exit code where
there is output, and for an empty output whatever the service reads from `(empty output, rc=N)`: the code
with an empty output once reward.native.exitcode reads that line, else that line as the output and no code.
TRL's token count is its own (the capture's stand-in tokenizer, tool results included), so the steps form
carries the same count. Before the service knew `bash`, every rollout here was `no_commands` (-50).
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
import numpy as np
import pytest

from reward.adapters import trl as trl_adapter
from reward.adapters.client import RewardClient
from reward.native.exitcode import parse_tool_result
from tests.fixtures.conformance_gen.corpus import corpus
from tests.server_proc import ServerProcess, server_env

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "trl_harbor.json.gz"
FORM = "harbor_bash_env"
HARBOR_LIMIT = 8000  # HarborEnv._exec truncates longer outputs

pytestmark = pytest.mark.slow


def load() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


def empty_output(code: int) -> str:
    """HarborEnv._exec for a command with no output (trl/experimental/harbor/_env.py:84)."""
    return f"(empty output, rc={code})"


def rc_is_read() -> bool:
    """Whether the service (its default exit-code convention) reads the code from HarborBashEnv's empty-output
    line; today it does not."""
    return parse_tool_result(empty_output(3)) == ("", 3)


def as_harbor_exposes(step: dict[str, Any]) -> dict[str, Any]:
    assert len(step["output"]) <= HARBOR_LIMIT  # the corpus has no output HarborBashEnv would cut
    if step["output"]:
        return {**step, "exit_code": None}
    if rc_is_read():
        return {**step, "output": "", "exit_code": step["exit_code"]}
    return {**step, "output": empty_output(step["exit_code"]), "exit_code": None}


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    cache = tmp_path_factory.mktemp("trl-harbor") / "c"
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, cache))
    yield proc
    proc.stop()


@pytest.fixture
def client(server, monkeypatch):
    c = RewardClient(server.url, timeout_s=60)
    monkeypatch.setattr("reward.adapters.client._default", c)
    return c


def score_steps(server, counts: dict[tuple[str, str], int] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The corpus's steps form: as given (counts None), or like for like (TRL's counts, HarborBashEnv's
    exit codes)."""
    groups = corpus()
    for g in groups:
        for r in g["rollouts"]:
            if counts is not None:
                r["num_tokens"] = counts[(g["group_id"], r["id"])]
                r["steps"] = [as_harbor_exposes(s) for s in r["steps"]]
    resp = httpx.post(f"{server.url}/score", json={"groups": groups}, timeout=300)
    assert resp.status_code == 200, resp.text[:300]
    return {(g["group_id"], r["id"]): r for g in resp.json()["groups"] for r in g["rollouts"]}


def replay(batch: list[dict[str, Any]], reward_func: Any = trl_adapter.execution_subagent_reward) -> Any:
    """The keyword call TRL's _calculate_rewards made for one generation batch (one group x 8)."""
    extras: dict[str, list[Any]] = {}
    metrics: dict[str, float] = {}
    kw = [c["kwargs"] for c in batch]
    kwargs: dict[str, Any] = {
        "prompts": [k["prompts"] for k in kw],
        "completions": [k["completions"] for k in kw],
        "completion_ids": [list(range(k["completion_ids_lengths"])) for k in kw],
        **{col: [k[col] for k in kw] for col in ("reference", "query", "task_dir", "task_index")},
        "environments": [SimpleNamespace(**c["environment"]) for c in batch],  # stand-ins: the adapter ignores them
        "trainer_state": SimpleNamespace(global_step=0),
        "log_extra": extras.__setitem__,
        "log_metric": metrics.__setitem__,
    }
    assert set(kwargs) - {"prompts", "completions", "completion_ids"} == set(batch[0]["kwarg_names"])
    rewards = asyncio.run(reward_func(**kwargs))
    return rewards, extras, metrics


def batches() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in load()["cases"]:
        out.setdefault(c["group_id"], []).append(c)
    return out


def test_replay_matches_steps_form(server, client):
    fixture = load()
    counts = {(c["group_id"], c["rollout_id"]): c["kwargs"]["completion_ids_lengths"] for c in fixture["cases"]}
    like = score_steps(server, counts)
    given = score_steps(server, None)
    matrix: Counter[bool] = Counter()
    verbatim: Counter[bool] = Counter()
    agree_as_given: set[tuple[str, str]] = set()
    steps = {(g["group_id"], r["id"]): r["steps"] for g in corpus() for r in g["rollouts"]}
    for gid, batch in batches().items():
        rewards, extras, metrics = replay(batch)
        for i, (c, reward) in enumerate(zip(batch, rewards, strict=True)):
            key = (gid, c["rollout_id"])
            got = (extras["reward/status"][i], reward)
            matrix[got == (like[key]["status"], like[key]["reward"])] += 1
            verbatim[got == (given[key]["status"], given[key]["reward"])] += 1
            if got == (given[key]["status"], given[key]["reward"]):
                agree_as_given.add(key)
            # what TRL itself received back and logged at capture time (same fake judge, same rubric)
            assert c["returned"] == reward and c["trl_logged_reward"] == float(np.float32(reward)), key  # TRL: float32
            assert c["trl_logged_extra"]["reward/status"] == got[0], key
            # the user's bug: a rollout that ran commands through `bash` is never no_commands
            assert (like[key].get("penalty") == "no_commands") == (not steps[key]), key
        no_steps = sum(not steps[(gid, c["rollout_id"])] for c in batch)
        assert metrics.get("reward/penalty/no_commands", 0.0) == no_steps / len(batch), gid
        assert metrics["reward/unmatched_tool_rate"] == 0.0, gid
    table = {FORM: (matrix[True], matrix[True] + matrix[False])}
    raw = {FORM: (verbatim[True], verbatim[True] + verbatim[False])}
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            line = {"trainer": "TRL HarborBashEnv", "forms": table, "against_steps_as_given": raw,
                    "empty_output_rc_read": rc_is_read()}  # fmt: skip
            out.write(json.dumps(line) + "\n")
    assert table == {FORM: (128, 128)}, table
    # As given, only what HarborBashEnv can carry agrees: the rollouts penalised before judging (not the 4 over
    # the token limit: TRL's count is its own), and the judged rollouts whose every command either had no exit
    # code or no output (then HarborBashEnv's `(empty output, rc=N)` carries it, and the service reads it).
    penalised = {k for k, r in given.items() if r["status"] == "penalized" and r["penalty"] != "too_long"}
    carried = {k for k, s in steps.items() if s and all(x["exit_code"] is None or not x["output"].strip() for x in s)}
    assert rc_is_read()
    assert len(penalised) == 22 and len(carried - penalised) == 15
    # everything HarborBashEnv can carry agrees; a rollout beyond it may agree by the fake judge's coarseness
    assert agree_as_given >= penalised | carried, sorted(penalised | carried - agree_as_given)
    assert raw == {FORM: (len(agree_as_given), 128)} and len(agree_as_given) >= 37, raw


def test_fixture_was_captured_by_running_trl_with_harbor_bash_env():
    meta = load()
    assert meta["framework"] == "TRL" and meta["version"] == "1.16.0" and meta["transformers"] == "5.24.0"
    assert meta["function"] == "trl.trainer.grpo_trainer.GRPOTrainer._generate_and_score_completions"
    assert meta["environment"] == "trl.experimental.harbor._env.HarborBashEnv" and meta["tools"] == ["bash"]
    assert 'return out or f"(empty output, rc={result.return_code})"' in meta["exec_source"]
    assert len(meta["cases"]) == 128 and {c["form"] for c in meta["cases"]} == {FORM}
    steps = {(g["group_id"], r["id"]): r["steps"] for g in corpus() for r in g["rollouts"]}
    assert meta["executed"] == sum(len(s) for s in steps.values())  # every recorded command ran in the env
    for gid, batch in batches().items():
        # TRL passed the live env instances (environments=), pool slot k to rollout k, and the task's row
        assert [c["environment"] for c in batch] == [
            {"type": meta["environment"], "slot": i, "sandbox_steps_left": 0} for i in range(len(batch))
        ]
        assert "environments" in batch[0]["kwarg_names"] and {c["kwargs"]["task_dir"] for c in batch} == {
            f"/tasks/{gid}"
        }
    for c in meta["cases"]:
        prompt = c["kwargs"]["prompts"]
        # HarborSpec's empty user message + the instruction HarborBashEnv.reset returns (+ its PROMPT_SUFFIX)
        assert len(prompt) == 1 and prompt[0]["content"] == c["kwargs"]["query"] + meta["prompt_suffix"]
        msgs = c["kwargs"]["completions"]
        calls = [call for m in msgs if m["role"] == "assistant" for call in m.get("tool_calls") or []]
        assert all(
            call["function"]["name"] == "bash" and set(call["function"]["arguments"]) == {"command"} for call in calls
        )
        tools = [m for m in msgs if m["role"] == "tool"]
        assert all(set(m) == {"role", "name", "content"} and m["name"] == "bash" for m in tools)
        recorded = steps[(c["group_id"], c["rollout_id"])]
        assert [call["function"]["arguments"]["command"] for call in calls] == [s["command"] for s in recorded]
        # stdout + stderr as they are, no exit code; an empty output is the rc line
        assert [m["content"] for m in tools] == [s["output"] or empty_output(s["exit_code"]) for s in recorded]
        assert msgs[-1]["role"] == "assistant" and not msgs[-1].get("tool_calls")


def test_empty_output_format_and_how_it_is_read():
    """HarborBashEnv's only exit code is in `(empty output, rc=N)`; 30 of the captured tool results are that."""
    contents = [m["content"] for c in load()["cases"] for m in c["kwargs"]["completions"] if m["role"] == "tool"]
    empties = [t for t in contents if t.startswith("(empty output")]
    assert len(empties) == 30 and set(empties) == {"(empty output, rc=127)"}
    if rc_is_read():
        assert parse_tool_result("(empty output, rc=127)") == ("", 127)
    else:  # read as an output line, with no exit code
        assert parse_tool_result("(empty output, rc=127)") == ("(empty output, rc=127)", None)


def test_a_declared_other_tool_name_makes_bash_calls_not_count(server, client):
    """What the user saw when only `run_in_terminal` counted: every judged rollout `no_commands`, -50."""
    _, batch = next(iter(batches().items()))
    only = trl_adapter.reward_function(terminal_tool="run_in_terminal")
    rewards, extras, metrics = replay(batch, only)
    judged = [c["trl_logged_extra"]["reward/status"] == "ok" for c in batch]
    assert sum(judged) == 6  # the other two: no commands, no final answer (-100, which wins over no_commands)
    for c, reward, status, ok in zip(batch, rewards, extras["reward/status"], judged, strict=True):
        if ok:
            assert (status, reward) == ("penalized", -50.0), c["rollout_id"]
    ran = [len(c["kwargs"]["completions"]) > 1 for c in batch]  # tool turns before the final message
    assert metrics["reward/unmatched_tool_rate"] == sum(ran) / len(ran) == 7 / 8
