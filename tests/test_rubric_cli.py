"""The rubric author's commands as a user runs them: `reward prompt`, `reward rubric schema|check`,
`reward rescore` and the penalty warning of `reward score` (a separate process, the HTTP fake judge)."""

from __future__ import annotations

import json

import pytest

from reward.rubric.prompts import fence
from tests.conftest import EXAMPLES, ROOT, cli_env, read_jsonl
from tests.conftest import run_cli as reward

RQ = ROOT / "examples" / "response_quality" / "groups.jsonl"


def test_prompt_prints_the_exact_condense_and_grade_requests(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    first = json.loads(EXAMPLES.read_text().splitlines()[0])
    gid = first["group_id"]
    rollout = next(r for r in first["rollouts"] if r["steps"] and r["steps"] != first["reference"]["steps"])
    proc = reward("prompt", EXAMPLES, "--group", gid, "--rollout", rollout["id"], "--stage", "condense", env=env)
    assert "===== system =====" in proc.stdout and "===== user =====" in proc.stdout
    assert fence(rollout["steps"][0]["command"], "command", inline=True) in proc.stdout
    assert "response_format" not in proc.stdout
    assert fake_judge.counts()["total"] == 0  # the condensing request needs no judge call to print
    proc = reward("prompt", EXAMPLES, "-g", gid, "--rollout", rollout["id"], "--json", env=env)
    request = json.loads(proc.stdout)
    schema = request["response_format"]["json_schema"]["schema"]
    assert len(schema["properties"]) == 28 and request["model"]
    user = request["messages"][1]["content"]
    assert "⟪data:reference_plan⟫" in user and "⟪data:candidate_plan⟫" in user
    assert fake_judge.counts() == {"total": 2, "condense": 2, "grade": 0}  # the two plans, now cached
    # `reward score` then reuses them: no condensing call for this rollout or its reference.
    reward("prompt", EXAMPLES, "-g", gid, "--rollout", rollout["id"], "--json", env=env)
    assert fake_judge.counts()["condense"] == 2


def test_prompt_shows_every_response_quality_field(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    line = json.loads(RQ.read_text().splitlines()[0])
    rid = line["rollouts"][0]["id"]
    proc = reward("prompt", RQ, "-g", line["group_id"], "--rollout", rid, "-r", "response_quality", env=env)
    for name in ("system_prompt", "problem_statement", "trajectory", "subagent_query"):
        assert f"⟪data:{name}⟫" in proc.stdout
    for name in ("subagent_response", "trajectory_after"):
        assert f"⟪data:{name}⟫" in proc.stdout
    assert f"({line['inputs']['n_after']} turns after)" in proc.stdout
    assert fake_judge.counts()["total"] == 0
    proc = reward(
        "prompt",
        RQ,
        "-g",
        line["group_id"],
        "--rollout",
        rid,
        "-r",
        "response_quality",
        "--stage",
        "condense",
        env=env,
        check=False,
    )
    assert proc.returncode == 2 and "no condensing stage" in proc.stderr
    proc = reward("prompt", RQ, "-g", "nope", "--rollout", "0", "-r", "response_quality", env=env, check=False)
    assert proc.returncode == 2 and "no group with group_id 'nope'" in proc.stderr


def test_schema_and_check(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    proc = reward("rubric", "schema", env=env)
    assert proc.stdout == (ROOT / "rubrics" / "rubric.schema.json").read_text()
    properties = json.loads(proc.stdout)["properties"]
    assert properties["alpha"]["deprecated"] is True  # still read (legacy): editors must accept it too
    assert properties["reward_scale"]["maximum"] == 1e6
    proc = reward("rubric", "check", "response_quality", env=env)
    assert "reward = 1 * (quality)" in proc.stdout and "scale 0.0..1.0 (number)" in proc.stdout
    assert "rollout inputs: subagent_response: string, trajectory_after: string" in proc.stdout


def test_score_warns_of_a_penalty_above_the_graded_range_and_rescore_recomputes(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    out = tmp_path / "scored.jsonl"
    reward("score", EXAMPLES, "-o", out, "--no-progress", env=env)
    calls = fake_judge.counts()["total"]
    text = (ROOT / "rubrics" / "execution_subagent.yaml").read_text().replace("no_commands: -50", "no_commands: -10")
    (tmp_path / "high.yaml").write_text(text)
    proc = reward(
        "score", EXAMPLES, "-o", tmp_path / "high.jsonl", "-r", tmp_path / "high.yaml", "--no-progress", env=env
    )
    assert "warning: penalty no_commands = -10 is above the lowest graded reward (-50)" in proc.stderr
    assert fake_judge.counts()["total"] == calls  # a penalty value is not in any prompt: no judge call
    proc = reward("rescore", out, "-r", tmp_path / "high.yaml", "-o", tmp_path / "re.jsonl", env=env)
    paid = {g["group_id"]: g for g in read_jsonl(tmp_path / "high.jsonl")}
    for g in read_jsonl(tmp_path / "re.jsonl"):
        # the same but for `usage`, what each run spent: the rescore carries the original judgements' cost
        assert {**g, "usage": None} == {**paid[g["group_id"]], "usage": None}
    assert any(r["reward"] == -10 for g in paid.values() for r in g["rollouts"])


def test_rescore_refuses_a_hostile_or_foreign_file(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    out = tmp_path / "scored.jsonl"
    reward("score", EXAMPLES, "-o", out, "--no-progress", env=env)
    groups = read_jsonl(out)
    ok = next(r for r in groups[0]["rollouts"] if r["status"] == "ok")
    ok["dimensions"]["efficiency"]["score"] = 1e9
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(g) + "\n" for g in groups))
    proc = reward("rescore", bad, "-r", "execution_subagent", "-o", tmp_path / "o.jsonl", env=env, check=False)
    assert proc.returncode == 2 and "efficiency = 1000000000.0 is not a score on the scale 0..10" in proc.stderr
    assert not (tmp_path / "o.jsonl").exists()  # nothing half-written
    proc = reward("rescore", out, "-r", "response_quality", "-o", tmp_path / "o.jsonl", env=env, check=False)
    assert proc.returncode == 2 and "asks the judge differently" in proc.stderr
    (tmp_path / "junk.jsonl").write_text("{not json\n")
    proc = reward(
        "rescore", tmp_path / "junk.jsonl", "-r", "execution_subagent", "-o", tmp_path / "o.jsonl", env=env, check=False
    )
    assert proc.returncode == 2 and "junk.jsonl:1: not a scored group" in proc.stderr


@pytest.mark.slow
def test_ctrl_c_in_rescore_is_one_line_and_leaves_no_file(fake_judge, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    env = cli_env(fake_judge, tmp_path / "c")
    scored = tmp_path / "scored.jsonl"
    reward("score", EXAMPLES, "-o", scored, "--no-progress", env=env)
    lines = scored.read_text().splitlines()
    big = tmp_path / "big.jsonl"
    with big.open("w") as f:  # long enough to be interrupted inside the loop
        for i in range(3000):
            for line in lines:
                g = json.loads(line)
                f.write(json.dumps({**g, "group_id": f"{g['group_id']}-{i}"}) + "\n")
    out = tmp_path / "out.jsonl"
    # as a terminal starts it: pytest run as a background job would hand the child an ignored SIGINT, which the
    # command rightly keeps ignoring
    terminal = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('reward', run_name='__main__', alter_sys=True)"
    )
    cmd = [sys.executable, "-c", terminal, "rescore", str(big), "-r", "execution_subagent", "-o", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    assert proc.poll() is None, "rescore finished before it could be interrupted: make the file larger"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (1, 130) and "Traceback" not in err, err[-2000:]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if "out" in p.name) == []
