"""The pairwise grading stage: both orders of every scheduled pair, win rates onto the reward, invariance to the
input order, position disagreement, schedules, and the dry run's count; through the in-process fake judge."""

from __future__ import annotations

import asyncio
import random

import pytest

from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.judge.fake import replies
from reward.native.prepare import prepare_group
from reward.rubric.load import load_rubric
from reward.rubric.spec import Grading
from reward.scoring.dry_run import dry_run
from reward.scoring.pairwise_stage import schedule
from tests.conftest import EXAMPLES, example_groups, group, rollout, step


@pytest.fixture(scope="module")
def pairwise():
    return load_rubric("pairwise_preference", overrides=[])


def _with(rubric, **grading):
    spec = rubric.spec.model_copy(update={"grading": rubric.spec.grading.model_copy(update=grading)})
    return rubric.model_copy(update={"spec": spec})


def _score(scorer, groups):
    async def run():
        try:
            return [await scorer.score_group(prepare_group(Group.model_validate(g)), Usage()) for g in groups]
        finally:
            await scorer.aclose()

    return asyncio.run(run())


def _varied(gid: str = "g1", n: int = 5) -> dict:
    rollouts = [
        rollout(
            f"r{i}",
            steps=[step(command=f"pytest -q t{i}.py", exit_code=0 if i % 2 else 1)],
            final="<final_answer>" + "detail " * (10 * i + 1) + "</final_answer>",
        )
        for i in range(n)
    ]
    rollouts.append(rollout("none", steps=[]))  # penalised: never compared
    return group(gid, rollouts=rollouts)


def test_every_pair_is_judged_in_both_orders(make_local_scorer, pairwise):
    scorer = make_local_scorer(pairwise)
    [result] = _score(scorer, [_varied(n=5)])
    assert scorer.judge.counts()["grade"] == 2 * 10 == 2 * 5 * 4 // 2  # type: ignore[attr-defined]
    assert result.grading.mode == "pairwise" and result.grading.pairs == 10 and result.grading.calls == 20
    shown = []
    for r in scorer.judge.requests:  # type: ignore[attr-defined]
        if r["role"] == "grade":
            text = r["messages"][1]["content"]
            shown.append((text.split("data:candidate_A_plan")[1][:400], text.split("data:candidate_B_plan")[1][:400]))
    assert all((b, a) in shown for a, b in shown)  # each order's swap was asked too
    penalised = next(r for r in result.rollouts if r.id == "none")
    assert penalised.status == "penalized" and penalised.reward == pytest.approx(-50)


def test_rewards_are_win_rates_through_the_formula(make_local_scorer, pairwise):
    [result] = _score(make_local_scorer(pairwise), [_varied(n=4)])
    for r in result.rollouts:
        if r.status != "ok":
            continue
        rates = {n: d.score for n, d in r.dimensions.items()}
        assert all(0.0 <= v <= 1.0 for v in rates.values())
        execution = (rates["task_success"] + rates["reliability"]) / 2  # the group's mean
        assert r.reward == pytest.approx(100 * (0.5 * execution + 0.5 * rates["answer_quality"]))
    ok = [r for r in result.rollouts if r.status == "ok"]
    # A zero-sum tournament: the win rates of each dimension average 1/2.
    for name in ("task_success", "reliability", "answer_quality"):
        assert sum(r.dimensions[name].score for r in ok) / len(ok) == pytest.approx(0.5)


def test_invariant_to_the_order_of_rollouts_in_the_input(make_local_scorer, pairwise, tmp_path):
    g = _varied(n=6)
    baseline = _score(make_local_scorer(pairwise, cache=tmp_path / "base"), [g])[0]
    for seed in range(3):
        shuffled = {**g, "rollouts": random.Random(seed).sample(g["rollouts"], len(g["rollouts"]))}
        [again] = _score(make_local_scorer(pairwise, cache=tmp_path / f"s{seed}"), [shuffled])
        assert {r.id: r.reward for r in again.rollouts} == {r.id: r.reward for r in baseline.rollouts}
        assert again.grading.position_disagreement == baseline.grading.position_disagreement


def test_position_disagreement_follows_the_judges_position_bias(make_local_scorer, pairwise, tmp_path, monkeypatch):
    g = _varied(n=5)
    monkeypatch.setattr(replies, "POSITION_BIAS", 0.0)
    [fair] = _score(make_local_scorer(pairwise, cache=tmp_path / "fair"), [g])
    monkeypatch.setattr(replies, "POSITION_BIAS", 1.0)  # always the first shown: every pair's orders disagree
    [biased] = _score(make_local_scorer(pairwise, cache=tmp_path / "biased"), [g])
    assert fair.grading.position_disagreement == 0.0
    assert biased.grading.position_disagreement == 1.0
    # Both orders judged: a judge that always picks A gives every rollout a win rate of exactly 1/2.
    assert [r.reward for r in biased.rollouts if r.status == "ok"] == pytest.approx([50.0] * 5)


@pytest.mark.parametrize(
    ("name", "extra", "pairs"), [("all", {}, 15), ("ring", {}, 6), ("k_neighbours", {"neighbours": 2}, 12)]
)
def test_schedules(make_local_scorer, pairwise, name, extra, pairs):
    assert len(schedule(6, Grading(schedule=name, **extra))) == pairs
    scorer = make_local_scorer(_with(pairwise, schedule=name, **extra))
    [result] = _score(scorer, [_varied(n=6)])
    assert result.grading.pairs == pairs and scorer.judge.counts()["grade"] == 2 * pairs  # type: ignore[attr-defined]
    assert all(r.status in ("ok", "penalized") for r in result.rollouts)


def test_schedule_pairs_are_distinct_and_cover_every_rollout():
    for n in range(2, 12):
        for grading in (Grading(schedule="ring"), Grading(schedule="k_neighbours", neighbours=3)):
            pairs = schedule(n, grading)
            assert len(pairs) == len(set(pairs)) and all(i < j for i, j in pairs)
            assert {x for p in pairs for x in p} == set(range(n))


def test_a_single_graded_rollout_has_no_pair_and_is_an_error(make_local_scorer, pairwise):
    scorer = make_local_scorer(pairwise)
    [result] = _score(scorer, [group(rollouts=[rollout("ok"), rollout("none", steps=[])])])
    ok = next(r for r in result.rollouts if r.id == "ok")
    assert ok.status == "error" and ok.error.category == "no_pair" and ok.reward is None
    assert scorer.judge.counts()["grade"] == 0  # type: ignore[attr-defined]


def test_a_failed_pair_is_an_error_of_the_group_never_a_number(make_local_scorer, pairwise):
    scorer = make_local_scorer(pairwise)
    scorer.judge.script("grade", *["not json"] * 3 * 6)  # 3 pairs, 2 orders, 3 attempts  # type: ignore[attr-defined]
    [result] = _score(scorer, [_varied(n=3)])
    graded = [r for r in result.rollouts if r.id != "none"]
    assert all(r.status == "error" and r.error.category == "judge_parse_error" and r.reward is None for r in graded)


def test_k_samples_and_the_dry_run_count(make_local_scorer, pairwise, tmp_path):
    scorer = make_local_scorer(pairwise, samples=2)
    report = asyncio.run(dry_run(scorer, EXAMPLES, tmp_path / "out.jsonl"))
    results = _score(scorer, example_groups())
    counts = scorer.judge.counts()  # type: ignore[attr-defined]
    assert (report.stages["condense"].calls, report.stages["grade"].calls) == (counts["condense"], counts["grade"])
    assert all(g.grading.calls == 2 * 2 * g.grading.pairs for g in results)
    seeds = {r["seed"] for r in scorer.judge.requests if r["role"] == "grade"}  # type: ignore[attr-defined]
    assert seeds == {None, 1}


def test_pair_verdicts_in_the_cache_are_checked(make_local_scorer, pairwise):
    from reward.rubric.group_verdict import InvalidVerdict, pair_model, pair_verdict_from_cache

    spec = pairwise.spec
    good = {"preferred": {d.name: ["A", "why"] for d in spec.dimensions}, "fake": True}
    assert pair_verdict_from_cache(spec, good, pair_model(spec)).preferred["reliability"] == ("A", "why")
    for bad in ({**good, "fake": "yes"}, {"preferred": {"task_success": ["C", "x"]}, "fake": False}):
        with pytest.raises(InvalidVerdict):
            pair_verdict_from_cache(spec, bad, pair_model(spec))


def test_a_pairwise_file_rescores_from_its_saved_win_rates(make_local_scorer, pairwise):
    from reward.analysis.rescore import rescore_group

    [result] = _score(make_local_scorer(pairwise), [_varied(n=4)])
    only_answers = pairwise.model_copy(update={"spec": pairwise.spec.model_copy(update={"constants": {"alpha": 1.0}})})
    again = rescore_group(result, only_answers)
    for before, after in zip(result.rollouts, again.rollouts, strict=True):
        if before.status == "ok":
            assert after.reward == pytest.approx(100 * before.dimensions["answer_quality"].score)
    assert again.grading == result.grading


def test_both_stages_through_the_http_fake_judge(make_scorer, pairwise):
    ranking = load_rubric("group_ranking", overrides=[])
    for rub in (ranking, pairwise):
        [result] = _score(make_scorer(rub), [_varied(n=3)])
        assert [r.status for r in result.rollouts] == ["ok", "ok", "ok", "penalized"]
        assert result.judge.fake and result.grading is not None and result.grading.calls > 0
