"""The `reward` command talking to the fake judge over HTTP: once as a user runs it (a process of its own),
then in this process (the same `main`, its streams and environment isolated per call)."""

import json

import pytest

from tests.conftest import EXAMPLES, ROOT, cli_env, example_groups, read_jsonl, rollout, run_cli_process, step
from tests.conftest import run_cli as reward


@pytest.mark.slow
def test_score_examples_prints_summary_and_writes_every_group(fake_judge, tmp_path):
    out = tmp_path / "scored.jsonl"
    proc = run_cli_process("score", EXAMPLES, "-o", out, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"))
    rows = read_jsonl(out)
    assert len(rows) == len(example_groups()) == 4
    assert all(len(g["rollouts"]) == 8 for g in rows)
    for label in (
        "groups",
        "rollouts",
        "reward mean / std",
        "penalties",
        "filtered groups",
        "final-answer rate",
        "errors",
        "judge calls",
        "tokens",
        "cost",
    ):
        assert label in proc.stdout, label
    assert "missing_final_answer 4" in proc.stdout and "no_commands 2" in proc.stdout and "too_long 1" in proc.stdout
    assert "FAKE judge" in proc.stdout  # labelled as not real judgements
    assert "unknown price" in proc.stdout  # the fake model has no price: never a made-up $0
    r = rows[0]["rollouts"][0]
    for field in ("id", "reward", "status", "penalty", "error", "s_pos", "s_pit", "s_fa", "dimensions", "advantage"):
        assert field in r
    assert rows[0]["rubric"] == "execution_subagent" and len(rows[0]["rubric_version"]) == 12


def grpo_file(path, n_groups=20):
    """20 groups x 8: 5 distinct graded rollouts, 1 duplicate of one of them, 2 penalised."""
    groups = []
    for g in range(n_groups):
        rollouts = [
            rollout(f"r{i}", steps=[step(f"pytest -k case{g}_{i}", i % 2, f"{i} failed, {g} passed")]) for i in range(5)
        ]
        rollouts.append({**rollouts[0], "id": "dup"})
        rollouts.append(rollout("nofa", final="no tags"))
        rollouts.append(rollout("nocmd", steps=[]))
        groups.append(
            {
                "group_id": f"group-{g}",
                "query": f"Run the tests of package {g}",
                "reference": {
                    "steps": [step(f"pytest pkg{g}", 1, "1 failed")],
                    "final_answer": "<final_answer>1 failed</final_answer>",
                },
                "rollouts": rollouts,
            }
        )
    path.write_text("".join(json.dumps(x) + "\n" for x in groups))


def test_20x8_one_condense_per_distinct_rollout_and_reference_none_on_rerun(fake_judge, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    grpo_file(inp)
    env = cli_env(fake_judge, tmp_path / "cache")
    reward("score", inp, "-o", out, "--no-progress", "-c", "32", env=env)
    # 20 references + 20 x 5 distinct rollouts condensed; 20 x 5 graded; penalised ones cost nothing
    assert fake_judge.counts() == {"total": 220, "condense": 120, "grade": 100}
    rows = read_jsonl(out)
    assert len(rows) == 20 and sum(len(g["rollouts"]) for g in rows) == 160
    fake_judge.reset()
    proc = reward("score", inp, "-o", out, "--no-progress", env=env)  # resume: everything is done
    assert fake_judge.counts()["total"] == 0
    assert "0 scored now, 20 already done" in proc.stdout
    out.unlink()
    reward("score", inp, "-o", out, "--no-progress", env=env)  # a new run (a new store), output gone: the disk answers
    assert fake_judge.counts()["total"] == 0
    rewards = {g["group_id"]: [r["reward"] for r in g["rollouts"]] for g in rows}
    assert {g["group_id"]: [r["reward"] for r in g["rollouts"]] for g in read_jsonl(out)} == rewards


def test_invalid_line_reported_with_number_and_path_others_scored(fake_judge, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = EXAMPLES.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["rollouts"][3]["steps"][0]["exit_code"] = "boom"
    inp.write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    proc = reward("score", inp, "-o", out, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"), check=False)
    assert proc.returncode == 1
    assert "line 2: rollouts[3].steps[0].exit_code" in proc.stderr
    assert len(read_jsonl(out)) == 2


def test_plans_then_score_with_plan_references(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    plans = tmp_path / "plans.jsonl"
    reward("plans", EXAMPLES.parent / "references.jsonl", "-o", plans, "--no-progress", env=env)
    assert fake_judge.counts() == {"total": 4, "condense": 4, "grade": 0}
    by_id = {p["id"]: p for p in read_jsonl(plans)}
    assert set(by_id) == {g["group_id"] for g in example_groups()}
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({**g, "reference": by_id[g["group_id"]]}) + "\n" for g in example_groups()))
    fake_judge.reset()
    reward("score", inp, "-o", tmp_path / "out.jsonl", "--no-progress", env=env)
    assert fake_judge.counts()["condense"] > 0  # rollouts only
    assert all(r["rollouts"] for r in read_jsonl(tmp_path / "out.jsonl"))


def test_rubric_check_and_errors(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    proc = reward("rubric", "check", "execution_subagent", env=env)
    assert "positive       7" in proc.stdout and "pitfall        4" in proc.stdout and "final_answer   3" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndimensions: []\njudge: {}\n")
    proc = reward("rubric", "check", bad, env=env, check=False)
    assert proc.returncode == 2 and "bad.yaml:3: judge.grade: Field required" in proc.stderr
    bad.write_text("name: x\ndimensions: []\njudge: {grade: {model: m}}\n")  # a checklist rubric may have none
    proc = reward("rubric", "check", bad, env=env, check=False)
    assert proc.returncode == 2 and "bad.yaml:2: dimensions: a rubric needs at least one dimension" in proc.stderr
    proc = reward("score", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl", env=env, check=False)
    assert proc.returncode == 2 and "input file not found" in proc.stderr


def test_fake_judge_fallback_when_no_judge_configured(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    for k in ("REWARD_JUDGE_MODEL", "REWARD_JUDGE_API_BASE", "REWARD_JUDGE_API_KEY", "OPENAI_API_KEY"):
        env.pop(k, None)
    out = tmp_path / "o.jsonl"
    proc = reward("score", EXAMPLES, "-o", out, "--no-progress", env=env)
    assert "No judge is configured" in proc.stderr and "FAKE judge" in proc.stderr
    assert fake_judge.counts()["total"] == 0  # an in-process fake judge of its own, not ours
    assert all(g["judge"]["fake"] for g in read_jsonl(out))
    assert read_jsonl(out)[0]["judge"]["grade_model"] == "openai/reward-fake-judge"


def test_help_and_errors_show_bracketed_text_as_written(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    assert "[env REWARD_CACHE_DIR]" in reward("score", "--help", env=env).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "rubrics" / "execution_subagent.yaml")
        .read_text()
        .replace("name: execution_subagent", "name: 'Bad Name!'", 1)
    )
    proc = reward("rubric", "check", bad, env=env, check=False)
    assert proc.returncode == 2 and "^[\\w.-]+$" in proc.stderr, proc.stderr


def test_unusable_cache_directory_is_one_line_naming_it(fake_judge, tmp_path):
    corrupt = tmp_path / "corrupt-cache"
    corrupt.mkdir()
    (corrupt / "cache.db").write_bytes(b"not a database" * 200)
    env = cli_env(fake_judge, corrupt)
    proc = reward("score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--no-progress", env=env, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: cache directory {corrupt}"), proc.stderr
