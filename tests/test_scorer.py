"""The scorer: call economy, re-asks, errors, caching.

Scoring logic runs on the in-process fake judge (`make_local_scorer`, no socket); what depends on the
transport (HTTP statuses, refusals as the API reports them) runs on the HTTP fake judge (`make_scorer`)."""

import asyncio
import json

import pytest

from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.rubric.load import load_rubric
from tests.conftest import group, rollout, step


def score(scorer, data):
    usage = Usage()
    result = asyncio.run(scorer.score_group(Group.model_validate(data), usage))
    return result, usage


def test_group_scored_end_to_end(make_local_scorer, rubric):
    scorer = make_local_scorer()
    result, usage = score(scorer, group())
    assert [r.status for r in result.rollouts] == ["ok"] * 4
    for r in result.rollouts:
        assert set(r.dimensions) == {d.name for d in rubric.spec.dimensions}
        expected = 100 * (0.5 * (r.s_pos - r.s_pit) + 0.5 * r.s_fa)
        assert r.reward == pytest.approx(expected)
        assert -50 <= r.reward <= 100
    assert result.rubric_version == rubric.version and result.judge.fake is True
    # 1 reference + 4 distinct rollouts condensed; 4 graded
    assert scorer.judge.counts() == {"total": 9, "condense": 5, "grade": 4}
    assert usage.calls == {"condense": 5, "grade": 4} and usage.prompt_tokens > 0


def test_penalised_rollouts_cost_no_judge_call(make_local_scorer):
    data = group(
        rollouts=[
            rollout("long", num_tokens=40_000),
            rollout("nofa", final="done"),
            rollout("nocmd", steps=[]),
        ],
        reference={"plan": "EXECUTION PLAN\nTask Outcome: success."},
    )
    scorer = make_local_scorer()
    result, _ = score(scorer, data)
    assert [(r.status, r.penalty, r.reward) for r in result.rollouts] == [
        ("penalized", "too_long", -100.0),
        ("penalized", "missing_final_answer", -100.0),
        ("penalized", "no_commands", -50.0),
    ]
    assert scorer.judge.counts()["total"] == 0
    assert result.rollouts[0].dimensions is None


def test_identical_rollouts_share_one_condense_and_one_grade_call(make_local_scorer):
    same = rollout("a")
    data = group(rollouts=[same, {**same, "id": "b"}, {**same, "id": "c"}, rollout("d")])
    scorer = make_local_scorer()
    result, _ = score(scorer, data)
    assert scorer.judge.counts() == {"total": 5, "condense": 3, "grade": 2}
    assert result.rollouts[0].reward == result.rollouts[1].reward == result.rollouts[2].reward


def test_reask_after_invalid_verdict_includes_validation_error(make_local_scorer):
    scorer = make_local_scorer()
    scorer.judge.script("grade", '{"command_correctness_reason": "x", "command_correctness_score": 42')
    data = group(rollouts=[rollout("only")], reference={"plan": "EXECUTION PLAN"})
    result, _ = score(scorer, data)
    assert result.rollouts[0].status == "ok"
    assert scorer.judge.counts() == {"total": 3, "condense": 1, "grade": 2}
    retry = scorer.judge.requests[-1]["messages"]
    assert retry[-2]["role"] == "assistant" and retry[-2]["content"].startswith('{"command_correctness_reason"')
    assert retry[-1]["role"] == "user" and "not valid JSON" in retry[-1]["content"]


def test_out_of_range_score_reasked_then_error_never_a_number(make_local_scorer, rubric):
    bad = {f"{d.name}_reason": "r" for d in rubric.spec.dimensions}
    bad.update({f"{d.name}_score": 5 for d in rubric.spec.dimensions})
    bad["efficiency_score"] = 12
    scorer = make_local_scorer(max_reasks=2)
    scorer.judge.script("grade", *[json.dumps(bad)] * 3)
    data = group(rollouts=[rollout("x"), rollout("y", steps=[])], reference={"plan": "EXECUTION PLAN"})
    result, _ = score(scorer, data)
    err = result.rollouts[0]
    assert (err.status, err.reward, err.advantage, err.dimensions) == ("error", None, None, None)
    assert err.error.category == "judge_parse_error" and "efficiency_score" in err.error.message
    assert err.in_group_stats is False
    assert result.n_errors == 1 and result.n_scored == 1
    assert scorer.judge.counts()["grade"] == 3  # 1 + 2 re-asks, bounded


def test_judge_http_error_becomes_categorised_error(make_scorer, fake_judge):
    fake_judge.script(*[{"kind": "condense", "status": 401, "message": "bad key"}] * 5)
    data = group(rollouts=[rollout("x")], reference={"plan": "EXECUTION PLAN"})
    result, _ = score(make_scorer(num_retries=0), data)
    r = result.rollouts[0]
    assert r.status == "error" and r.reward is None and r.error.category == "judge_auth"


def test_refusal_is_categorised(make_scorer, fake_judge):
    fake_judge.script(*[{"kind": "grade", "content": None, "refusal": "I can't help with that."}] * 3)
    data = group(rollouts=[rollout("x")], reference={"plan": "EXECUTION PLAN"})
    result, _ = score(make_scorer(), data)
    assert result.rollouts[0].error.category == "judge_refusal"


def test_reference_failure_marks_graded_rollouts_but_not_penalised_ones(make_scorer, fake_judge):
    ref = {"steps": [step("make")], "final_answer": "<final_answer>built</final_answer>"}
    data = group(rollouts=[rollout("x", steps=[step("cmake .")]), rollout("p", steps=[])], reference=ref)
    # The reference and the rollout are condensed concurrently: fail both calls, whichever comes first.
    fake_judge.script(*[{"kind": "condense", "status": 400, "message": "context too long"}] * 2)
    result, _ = score(make_scorer(num_retries=0), data)
    assert result.rollouts[0].status == "error" and result.rollouts[0].error.category == "judge_bad_request"
    assert result.rollouts[1].status == "penalized" and result.rollouts[1].reward == -50.0


def test_cache_survives_a_new_store_on_the_same_directory(make_local_scorer, tmp_path):
    cache = tmp_path / "shared-cache"
    first, _ = score(make_local_scorer(cache=cache), group())
    again = make_local_scorer(cache=cache)  # a fresh Store and judge: only the disk can answer
    second, _ = score(again, group())
    assert again.judge.counts()["total"] == 0
    assert [r.reward for r in first.rollouts] == [r.reward for r in second.rollouts]


def test_changed_rubric_regrades_without_recondensing(make_local_scorer, tmp_path):
    import shutil

    from tests.conftest import ROOT

    RUBRICS = ROOT / "rubrics"

    cache = tmp_path / "c"
    first = make_local_scorer(cache=cache)
    score(first, group())
    assert first.judge.counts() == {"total": 9, "condense": 5, "grade": 4}
    (tmp_path / "r").mkdir()
    path = tmp_path / "r" / "edited.yaml"
    shutil.copy(RUBRICS / "execution_subagent.yaml", path)
    path.write_text(path.read_text().replace("Were the commands the right ones", "Were the commands correct"))
    edited = load_rubric(path)
    second = make_local_scorer(rub=edited, cache=cache)
    result, _ = score(second, group())
    assert result.rubric_version == edited.version
    assert second.judge.counts() == {"total": 4, "condense": 0, "grade": 4}


def test_scoring_is_deterministic_for_the_fake_judge(make_local_scorer, tmp_path):
    a, _ = score(make_local_scorer(cache=tmp_path / "a"), group())
    b, _ = score(make_local_scorer(cache=tmp_path / "b"), group())
    assert [r.reward for r in a.rollouts] == [r.reward for r in b.rollouts]
    assert a.std > 0 and not a.filtered


def test_one_requests_deadline_never_fails_another_sharing_its_reference(make_local_scorer):
    """Two requests share the in-flight condensing of one reference; the first one's deadline passes. The
    shared call belongs to neither: the second request still gets every reward (it used to get a
    CancelledError, a 500 over HTTP)."""
    scorer = make_local_scorer()
    ref = {"steps": [step("make test")], "final_answer": "<final_answer>ok</final_answer>"}
    first = Group.model_validate(group("first", rollouts=[rollout("a")], reference=ref))
    second = Group.model_validate(group("second", rollouts=[rollout("b"), rollout("c")], reference=ref))
    scorer.judge.latency = 0.4

    async def run():
        loop = asyncio.get_running_loop()
        a = asyncio.create_task(scorer.score_group(first, Usage(), loop.time() + 0.2))
        await asyncio.sleep(0.05)  # the second request arrives while the reference is being condensed
        b = asyncio.create_task(scorer.score_group(second, Usage()))
        return await asyncio.gather(a, b)

    a, b = asyncio.run(run())
    assert a.rollouts[0].error.category == "judge_timeout"
    assert [r.status for r in b.rollouts] == ["ok", "ok"]
    calls = [c for c in scorer.judge.requests if c["role"] == "condense"]
    reference_calls = [c for c in calls if "make test" in c["messages"][-1]["content"]]
    assert len(reference_calls) == 1  # condensed once, for both requests
