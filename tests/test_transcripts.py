"""`score --include-plans` keeps each rollout as the judge saw it; the report shows and searches it."""

from __future__ import annotations

import json

from reward.analysis.report import render_report
from reward.analysis.scored import read_scored_lenient
from tests.conftest import cli_env, distinct_groups, group, read_jsonl, rollout, step
from tests.conftest import run_cli as reward


def test_transcripts_are_kept_as_the_judge_saw_them_and_reach_the_report(fake_judge, tmp_path):
    messy = "\x1b[32m3 passed\x1b[0m   \n\n\n\nok\n"
    rollouts = [
        rollout("graded", steps=[step("pytest -q", 0, messy)]),
        rollout("penalised", steps=[step("pytest -q", 0, "3 passed")], final="no answer tags"),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(group("g", rollouts=rollouts)) + "\n")
    out = tmp_path / "out.jsonl"
    reward("score", src, "-o", out, "--no-progress", "--include-plans", env=cli_env(fake_judge, tmp_path / "c"))
    (line,) = read_jsonl(out)
    tx = line["transcripts"]
    assert tx["graded"] == {
        "steps": [{"command": "pytest -q", "exit_code": 0, "output": "3 passed\n\nok"}],  # cleaned, canonical
        "final_answer": "<final_answer>ran pytest: graded</final_answer>",
    }
    assert tx["penalised"]["final_answer"] == "no answer tags"  # what the penalty check read
    groups, _ = read_scored_lenient(out)
    page = render_report(groups, "t")
    assert '"tx":{"steps":[["pytest -q",0,"3 passed\\n\\nok"]]' in page


def test_without_the_flag_no_transcript_is_written(fake_judge, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(group("g")) + "\n")
    out = tmp_path / "out.jsonl"
    reward("score", src, "-o", out, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"))
    assert read_jsonl(out)[0]["transcripts"] is None


def test_each_group_records_its_own_judge_usage(fake_judge, tmp_path):
    """Per group: the calls, tokens and cost its judging took in this run (the run's usage is their sum)."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(g) + "\n" for g in distinct_groups("usage", 2, 3)))
    out = tmp_path / "out.jsonl"
    ran = reward("score", src, "-o", out, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"))
    lines = read_jsonl(out)
    usages = [line["usage"] for line in lines]
    assert all(u["judge_calls"] > 0 and u["prompt_tokens"] > 0 for u in usages)
    assert all(u["cost"] is None for u in usages)  # the fake model has no price: never $0
    assert f"{sum(u['judge_calls'] for u in usages)} (condense" in ran.stdout  # the run summary's total
    rerun = tmp_path / "again.jsonl"
    reward("score", src, "-o", rerun, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"))
    assert all(line["usage"]["judge_calls"] == 0 for line in read_jsonl(rerun))  # all from the cache
    groups, _ = read_scored_lenient(out)
    assert '"jc":' in render_report(groups, "t")
