"""`score --include-plans` keeps each rollout as the judge saw it; the report shows and searches it."""

from __future__ import annotations

import json

from reward.analysis.report import render_report
from reward.analysis.scored import read_scored_lenient
from tests.conftest import cli_env, group, read_jsonl, rollout, step
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
