"""When grading calls of a group fail: the calls made are still recorded, a windowed group keeps the windows
that were answered (every window shows the anchors, so any answered one gives the scale), and a group the fake
judge touched is marked fake even when every rollout of it ends as an error."""

from __future__ import annotations

import pytest

from reward.core.trajectory import Group
from reward.judge.base import JudgeError, Reply, Usage
from reward.native.prepare import prepare_group
from reward.rubric.load import load_rubric
from reward.scoring.build import run_scoring
from tests.conftest import group, rollout, step

SHAPES = ["execution_subagent", "group_ranking", "pairwise_preference"]


@pytest.fixture(scope="module")
def ranking():
    return load_rubric("group_ranking", overrides=[])


def _score(scorer, g):
    return run_scoring(scorer, scorer.score_group(prepare_group(Group.model_validate(g)), Usage()))


def _windowed(rubric, window: int, anchors: int):
    grading = rubric.spec.grading.model_copy(update={"window": window, "anchors": anchors})
    return rubric.model_copy(update={"spec": rubric.spec.model_copy(update={"grading": grading})})


def _seven() -> dict:  # final answers "ran pytest: r0" ... "ran pytest: r6": each names its rollout
    return group(rollouts=[rollout(f"r{i}", steps=[step(command=f"pytest -q t{i}.py")]) for i in range(7)])


def _failing(scorer, marker: str, error: JudgeError | None = None):
    """Grading requests that show `marker` get an invalid (fake) reply, every attempt; or raise `error`."""
    real = scorer.judge.complete

    async def complete(role, messages, usage, response_format=None, seed=None):
        if role == "grade" and marker in messages[1]["content"]:
            if error is not None:
                raise error
            return Reply("not json", True, "stop")
        return await real(role, messages, usage, response_format, seed)

    scorer.judge.complete = complete
    return scorer


def _status(result) -> dict[str, str | None]:
    return {r.id: r.error.category if r.error else r.status for r in result.rollouts}


def test_a_failed_window_costs_only_the_rollouts_no_answered_window_showed(make_local_scorer, ranking, tmp_path):
    rubric = _windowed(ranking, 3, 1)
    whole = _score(make_local_scorer(rubric, cache=tmp_path / "whole"), _seven())
    windows = whole.grading.windows or []
    assert len(windows) == 3 and all(r.status == "ok" for r in whole.rollouts)
    anchor = windows[0][0]
    reward = {r.id: r.reward for r in whole.rollouts}
    for failed in (1, 0):  # a later window; the first (the next answered one gives the scale)
        lost = set(windows[failed][1:])
        scorer = _failing(make_local_scorer(rubric, cache=tmp_path / f"fail{failed}"), f"ran pytest: {min(lost)}")
        result = _score(scorer, _seven())
        assert result.grading.calls == 3 and result.grading.windows == windows  # made, and billed, failed or not
        assert _status(result) == {r: "judge_parse_error" if r in lost else "ok" for r in reward}
        assert all(f"window {failed + 1} of 3" in r.error.message for r in result.rollouts if r.error)
        kept = [r for r in result.rollouts if r.status == "ok"]
        assert len(kept) == 5 and all(r.reward is not None for r in kept) and result.n_errors == 2
        if failed == 1:  # the first window's scale, as when every window answered
            assert all(r.reward == reward[r.id] for r in kept)
    # The anchor is in every call: no window answered, so every graded rollout of the group is an error.
    scorer = _failing(make_local_scorer(rubric, cache=tmp_path / "all"), f"ran pytest: {anchor}")
    result = _score(scorer, _seven())
    assert set(_status(result).values()) == {"judge_parse_error"}
    assert result.grading.calls == 3 and set(result.grading.labels or {}) == set(reward)


def test_a_failed_group_or_pair_call_still_records_the_calls_made(make_local_scorer, ranking):
    scorer = _failing(make_local_scorer(ranking), "ran pytest: r1")
    result = _score(scorer, group(rollouts=[rollout(f"r{i}", steps=[step(command=f"t{i}")]) for i in range(3)]))
    assert set(_status(result).values()) == {"judge_parse_error"} and result.grading.calls == 1
    pairwise = load_rubric("pairwise_preference", overrides=[])
    scorer = _failing(make_local_scorer(pairwise), "ran pytest: r1")
    result = _score(scorer, group(rollouts=[rollout(f"r{i}", steps=[step(command=f"t{i}")]) for i in range(3)]))
    assert set(_status(result).values()) == {"judge_parse_error"}
    assert (result.grading.pairs, result.grading.calls) == (3, 6)  # 3 pairs, both orders: all sent


@pytest.mark.parametrize("name", SHAPES)
def test_a_group_whose_rollouts_all_fail_after_fake_replies_is_marked_fake(make_local_scorer, name):
    scorer = _failing(make_local_scorer(load_rubric(name, overrides=[])), "ran pytest")  # every grading call
    result = _score(scorer, group())
    assert all(r.status == "error" for r in result.rollouts)
    assert result.judge.fake  # its plans, and the invalid replies re-asked, came from the fake judge


@pytest.mark.parametrize("name", SHAPES)
def test_fake_plans_from_the_cache_mark_a_group_whose_grading_fails_without_a_reply(make_local_scorer, name, tmp_path):
    rubric = load_rubric(name, overrides=[])
    down = JudgeError("judge_unavailable", "503")  # no reply at all: only the plans tell who judged
    for run in ("plans cached", "plans from the cache"):
        scorer = _failing(make_local_scorer(rubric, cache=tmp_path / "c"), "ran pytest", down)
        result = _score(scorer, group())
        assert {r.error.category for r in result.rollouts if r.error} == {"judge_unavailable"}, run
        assert all(r.status == "error" for r in result.rollouts) and result.judge.fake, run
    assert scorer.judge.counts()["condense"] == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("fake", [True, False])
def test_only_the_invalid_grading_replies_tell_who_judged(make_local_scorer, name, fake):
    scorer = make_local_scorer(load_rubric(name, overrides=[]))
    real = scorer.judge.complete

    async def complete(role, messages, usage, response_format=None, seed=None):  # real plans, invalid verdicts
        reply = await real(role, messages, usage, response_format, seed)
        return Reply(reply.content, False, "stop") if role == "condense" else Reply("not json", fake, "stop")

    scorer.judge.complete = complete
    result = _score(scorer, group())
    assert all(r.status == "error" for r in result.rollouts)
    assert result.judge.fake is fake  # a re-asked reply of the fake judge touched the group; a real one's did not


@pytest.mark.parametrize("name", SHAPES)
def test_a_reference_plan_no_rollout_was_graded_against_leaves_the_group_unmarked(make_local_scorer, name):
    scorer = make_local_scorer(load_rubric(name, overrides=[]))
    result = _score(scorer, group(rollouts=[rollout("p0", steps=[]), rollout("p1", steps=[])]))  # both penalised
    assert {r.status for r in result.rollouts} == {"penalized"} and not result.judge.fake
