"""Judge pinning: floating aliases and retirements soon are warnings, a retired judge is refused unless allowed."""

from __future__ import annotations

import datetime as dt
import json

from reward.judge.pinning import is_floating, pinning_problems, retirement
from reward.rubric.load import load_rubric
from tests.conftest import group
from tests.conftest import run_cli as reward

TODAY = dt.date(2026, 12, 4)


def test_floating_aliases_and_dated_snapshots():
    assert is_floating("openai/gpt-4.1") and is_floating("gpt-4.1-mini") and is_floating("claude-3-5-sonnet-latest")
    assert not is_floating("openai/gpt-4.1-2025-04-14") and not is_floating("anthropic/claude-sonnet-4-5-20250929")
    assert not is_floating("hosted_vllm/my-qwen")  # nothing dated of that name: nothing to drift to


def test_retirement_dates_from_litellms_map():
    assert retirement("openai/gpt-4.1-2025-04-14") == dt.date(2027, 1, 14)
    assert retirement("hosted_vllm/my-qwen") is None
    warnings, refusals = pinning_problems(["openai/gpt-4.1-2025-04-14"], TODAY)
    assert refusals == [] and warnings == [
        "judge openai/gpt-4.1-2025-04-14 retires on 2027-01-14: plan the move to another judge before then "
        "(rewards from two judges are not on one scale)"
    ]
    assert pinning_problems(["openai/gpt-4.1-2025-04-14"], dt.date(2026, 6, 1)) == ([], [])
    warnings, refusals = pinning_problems(["openai/gpt-5-2025-08-07", "gpt-4.1"], TODAY)
    assert refusals == []  # a week to go: still a warning
    assert [w.split(":")[0] for w in warnings] == [
        "judge openai/gpt-5-2025-08-07 retires on 2026-12-11",
        "judge gpt-4.1 retires on 2027-01-14",
        "judge gpt-4.1 is a floating alias",
    ]
    warnings, refusals = pinning_problems(["openai/gpt-4.1-nano-2025-04-14"], TODAY)
    assert refusals and "retired on 2026-10-23" in refusals[0] and "REWARD_ALLOW_RETIRED_JUDGE" in refusals[0]


def test_bundled_rubrics_name_dated_snapshots():
    for name in ("execution_subagent", "response_quality"):
        spec = load_rubric(name).spec
        for call in (spec.judge.condense, spec.judge.grade):
            if call is not None:
                assert not is_floating(call.model), (name, call.model)


def test_score_refuses_a_retired_judge_unless_allowed(tmp_path, fake_judge):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(group("g")) + "\n")
    env = {
        "REWARD_JUDGE_MODEL": "openai/gpt-4.1-nano-2025-04-14",
        "REWARD_JUDGE_API_BASE": fake_judge.api_base,
        "REWARD_JUDGE_API_KEY": "sk-test",
        "REWARD_CACHE_DIR": str(tmp_path / "c"),
        "PATH": "/usr/bin:/bin",
    }
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", "--no-progress", env=env, check=False)
    assert ran.returncode == 2 and "was retired on 2026-10-23" in ran.stderr
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", "--no-progress", env={**env, "REWARD_ALLOW_RETIRED_JUDGE": "1"}, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "warning: judge openai/gpt-4.1-nano-2025-04-14 was retired" in ran.stderr  # allowed, still said
