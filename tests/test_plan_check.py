"""A condensing reply must be a complete Execution Plan before it is graded or cached."""

from __future__ import annotations

import pytest

from reward.core.trajectory import Group
from reward.judge.base import InvalidReply, Reply, Usage
from reward.judge.fake.http import PLAIN_REFUSAL, fake_plan
from reward.scoring.build import run_scoring
from reward.scoring.plan_check import check_plan, plan_sections
from tests.conftest import group, rollout

SECTIONS = ("Task Outcome", "Commands Executed", "Key Findings", "Error Recovery", "Final State")
PLAN = fake_plan("## Task Query\nRun pytest\n### Command 1: `pytest`\n\nExit Code: 0\n")


def test_sections_come_from_the_condensing_template(rubric):
    assert plan_sections(rubric.condense_template) == SECTIONS


@pytest.mark.parametrize(
    ("reply", "category"),
    [
        (Reply(PLAN[: len(PLAN) // 2], False, "length"), "judge_invalid_plan"),
        (Reply(PLAN, False, "length"), "judge_invalid_plan"),  # the judge says it was cut: believe it
        (Reply(PLAIN_REFUSAL, False, "stop"), "judge_refusal"),
        (Reply("Sorry, I cannot summarise this trajectory.", False), "judge_refusal"),
        (Reply("The agent ran pytest and everything passed.", False), "judge_invalid_plan"),
        (Reply("EXECUTION PLAN\n\nTask Outcome: success.", False), "judge_invalid_plan"),
        (Reply("", False), "judge_empty_reply"),
    ],
)
def test_incomplete_refused_or_off_template_plans_are_invalid(reply, category):
    with pytest.raises(InvalidReply) as exc:
        check_plan(reply, SECTIONS)
    assert exc.value.category == category


def test_a_plan_following_the_template_is_accepted_markdown_and_one_renamed_heading_too():
    assert check_plan(Reply(PLAN, False, "stop"), SECTIONS) == PLAN.strip()
    md = "# EXECUTION PLAN\n**Task Outcome:** success\n## Commands Run\n- pytest\n**Key  Findings**: none\n"
    md += "**Error Recovery**: none\n**Final State**: done"
    assert check_plan(Reply(md, False), SECTIONS) == md


def score(scorer, data):
    return run_scoring(scorer, scorer.score_group(Group.model_validate(data), Usage()))


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "condense", "content": "EXECUTION PLAN\n\nTask Outcome: succ", "finish_reason": "length"},
        {"kind": "condense", "content": PLAIN_REFUSAL},
    ],
)
def test_cut_or_refused_plan_is_reasked_then_an_error_never_a_reward_and_never_cached(make_scorer, fake_judge, bad):
    fake_judge.script(*[bad] * 3)  # 1 + 2 re-asks
    data = group(rollouts=[rollout("x")], reference={"plan": PLAN})
    scorer = make_scorer(max_reasks=2)
    result = score(scorer, data)
    r = result.rollouts[0]
    assert (r.status, r.reward, r.dimensions) == ("error", None, None)
    assert r.error.category == ("judge_invalid_plan" if "finish_reason" in bad else "judge_refusal")
    assert fake_judge.counts() == {"total": 3, "condense": 3, "grade": 0}
    again = score(scorer, data)  # nothing was cached: the judge is asked again and now answers properly
    assert again.rollouts[0].status == "ok" and fake_judge.counts()["condense"] == 4


def test_one_bad_plan_then_a_good_one_is_scored(make_scorer, fake_judge):
    fake_judge.script({"kind": "condense", "content": PLAIN_REFUSAL})
    result = score(make_scorer(), group(rollouts=[rollout("x")], reference={"plan": PLAN}))
    assert result.rollouts[0].status == "ok"
    retry = fake_judge.state.calls[1]["messages"]
    assert "refused" in retry[-1]["content"]
