"""The run summary of `reward score`: hedged duplicates and the calls and cost by service tier are shown when a
run has them, and absent otherwise."""

from __future__ import annotations

from types import SimpleNamespace

from reward.cache.disk import Store
from reward.cli.console import print_summary
from reward.core.summary import summarize
from reward.judge.base import Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.rubric.load import load_rubric
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer


def summary_text(usage: Usage, capsys) -> str:
    rubric = load_rubric("execution_subagent")
    scorer = Scorer(rubric, InProcessFakeJudge(judge_settings(rubric)), Store(None))
    report = SimpleNamespace(usage=usage, scored=0, skipped=0, invalid=[])
    print_summary(summarize([]), report, scorer)
    return capsys.readouterr().out


def test_hedges_and_tiers_are_shown_only_when_a_run_has_them(capsys):
    plain = Usage()
    plain.calls.update({"condense": 3, "grade": 4})
    text = summary_text(plain, capsys)
    assert "7 (condense 3, grade 4)" in text and "hedged" not in text and "by tier" not in text
    busy = Usage(hedged=2)
    busy.calls.update({"condense": 3, "grade": 4})
    busy.count_tier("flex", 0.25, 5)
    busy.count_tier("default", 0.5, 2)
    text = summary_text(busy, capsys)
    assert "2 of them hedged duplicates" in text
    assert "flex 5 calls $0.2500" in text and "default 2 calls $0.5000" in text
