"""What every grading shape (one rollout, the group, pairs) sends and how it reads a bad reply alike: the query
cleaned as condensing shows it, an empty reply `judge_empty_reply`, a plain-text refusal `judge_refusal`."""

from __future__ import annotations

import re

import pytest

from reward.core.trajectory import Group
from reward.judge.base import Reply, Usage
from reward.native.prepare import prepare_group
from reward.rubric.load import load_rubric
from reward.scoring.build import run_scoring
from reward.scoring.plan_check import refused
from tests.conftest import group, rollout, step

SHAPES = ["execution_subagent", "group_ranking", "pairwise_preference"]
DIRTY = "Run pytest\x1b[31m NOW\x1b[0m \u202eevil\u202c\x00   \n\n\n\nplease\u200b"
QUERY = re.compile(r"⟪data:query⟫\n(.*?)\n⟪/data:query⟫", re.DOTALL)


def _score(scorer, g):
    return run_scoring(scorer, scorer.score_group(prepare_group(Group.model_validate(g)), Usage()))


def _three() -> dict:
    return group(rollouts=[rollout(f"r{i}", steps=[step(command=f"pytest -q t{i}.py")]) for i in range(3)])


@pytest.mark.parametrize("name", SHAPES)
def test_every_shape_grades_with_the_query_condensing_shows(make_local_scorer, name):
    scorer = make_local_scorer(load_rubric(name, overrides=[]))
    g = {**_three(), "query": DIRTY}
    result = _score(scorer, g)
    assert all(r.status == "ok" for r in result.rollouts)
    sent = scorer.judge.requests  # type: ignore[attr-defined]
    condensed = {QUERY.search(r["messages"][1]["content"]).group(1) for r in sent if r["role"] == "condense"}
    graded = {QUERY.search(r["messages"][1]["content"]).group(1) for r in sent if r["role"] == "grade"}
    assert len(condensed) == 1 and graded == condensed
    [shown] = graded
    assert not any(c in shown for c in ("\x1b", "\u202e", "\u202c", "\x00", "\u200b")) and "NOW" in shown


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize(
    ("content", "category"),
    [
        ("", "judge_empty_reply"),
        ("   \n", "judge_empty_reply"),
        ("I'm sorry, but I can't help with that.", "judge_refusal"),
    ],
)
def test_an_empty_or_refusing_grading_reply_has_one_category_in_every_shape(make_local_scorer, name, content, category):
    scorer = make_local_scorer(load_rubric(name, overrides=[]))
    scorer.judge.script("grade", *[content] * 100)  # type: ignore[attr-defined]
    result = _score(scorer, _three())
    assert {(r.status, r.error.category if r.error else None) for r in result.rollouts} == {("error", category)}
    asked = [r for r in scorer.judge.requests if r["role"] == "grade"]  # type: ignore[attr-defined]
    assert len(asked) > 1  # re-asked first, as any invalid reply


def test_a_refusal_is_plain_text_not_json_that_happens_to_start_like_one():
    assert refused("I'm sorry, but I can't help with that.") and refused("Sorry — I cannot grade this.")
    assert not refused('{"sorry": 1}') and not refused('[{"label": "A"}]') and not refused("The plan: ...")


def test_the_shared_check_still_reads_a_cut_off_verdict_as_a_parse_error(make_local_scorer):
    from reward.scoring.plan_check import check_verdict

    with pytest.raises(Exception, match="cut off") as info:
        check_verdict(Reply('{"a": 1}', True, "length"), "a JSON object", lambda c: c)
    assert info.value.category == "judge_parse_error"  # type: ignore[attr-defined]
