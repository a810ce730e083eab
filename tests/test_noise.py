"""Judge noise: K samples per rollout (seed = sample index, each cached), their mean, spread and group SNR."""

import asyncio
import math

import pytest

from reward.core.results import RolloutResult
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.rubric.noise import combine_samples, group_noise
from reward.rubric.spec import RubricSpec
from reward.service.reward_service import metrics_of
from tests.conftest import group, rollout, step

TINY = RubricSpec.model_validate(
    {
        "name": "tiny",
        "dimensions": [
            {"name": "p", "group": "positive", "description": "d", "anchors": {"low": "l", "mid": "m", "high": "h"}},
            {"name": "q", "group": "pitfall", "description": "d", "anchors": {"low": "l", "mid": "m", "high": "h"}},
            {
                "name": "f",
                "group": "final_answer",
                "description": "d",
                "anchors": {"low": "l", "mid": "m", "high": "h"},
            },
        ],
        "judge": {"condense": {"model": "m"}, "grade": {"model": "m"}},
    }
)


def test_combine_samples_hand_computed():
    # sample 1: 100 * (0.5 * (1.0 - 0.0) + 0.5 * 1.0) = 100; sample 2: 100 * (0.5 * (0.6 - 0.2) + 0.5 * 0.8) = 60
    samples = [{"p": (10, "a"), "q": (0, "b"), "f": (10, "c")}, {"p": (6, "x"), "q": (2, "y"), "f": (8, "z")}]
    dims, reward, means, reward_std = combine_samples(TINY, samples)
    assert reward == pytest.approx(80.0)  # the reward of the mean scores = the mean of the two rewards
    assert reward_std == pytest.approx(math.sqrt(800))  # sample SD of [100, 60]
    assert means == pytest.approx({"positive": 0.8, "pitfall": 0.1, "final_answer": 0.9})
    assert dims["p"].model_dump() == {"score": 8.0, "reason": "a", "samples": [10, 6], "std": pytest.approx(2.8284271)}


def test_single_sample_keeps_integer_scores_and_old_shape():
    dims, reward, _, reward_std = combine_samples(TINY, [{"p": (7, "a"), "q": (1, "b"), "f": (9, "c")}])
    assert reward_std is None and reward == pytest.approx(100 * (0.5 * 0.6 + 0.5 * 0.9))
    assert dims["p"].model_dump() == {"score": 7, "reason": "a"}
    assert isinstance(dims["p"].score, int)


def _r(rid: str, status: str, reward: float | None, std: float | None) -> RolloutResult:
    return RolloutResult(
        id=rid, status=status, reward=reward, reward_std=std, in_group_stats=reward is not None, has_final_answer=True
    )


def test_group_snr_hand_computed():
    results = [
        _r("a", "ok", 10.0, 2.0),
        _r("b", "ok", 30.0, 4.0),
        _r("pen", "penalized", -100.0, None),  # exact: not part of the judge's signal or noise
        _r("err", "error", None, None),
    ]
    noise = group_noise(results, samples=3)
    # signal: population variance of [10, 30] = 100; noise: mean of [2^2, 4^2] = 10
    assert noise is not None
    assert (noise.n, noise.signal_var, noise.noise_var, noise.snr) == (2, 100.0, 10.0, 10.0)
    # reliability (reward.rubric.reliability): signal (ddof=1) 200 - 10/3, penalised rollout counted, not used
    signal = 200 - 10 / 3
    assert noise.n_penalized == 1 and noise.signal_var_unbiased == pytest.approx(signal)
    assert noise.reliability == pytest.approx(signal / (signal + 10))
    assert noise.reliability_k == pytest.approx(signal / (signal + 10 / 3))
    assert noise.k_needed == 1 and noise.reliability_target == 0.8
    assert noise.dimensions is None  # these rollouts carry no per-dimension samples
    assert group_noise(results, samples=1) is None
    quiet = group_noise([_r("a", "ok", 10.0, 0.0), _r("b", "ok", 20.0, 0.0)], samples=2)
    assert quiet is not None and quiet.noise_var == 0 and quiet.snr is None  # no measured noise: unbounded


def _score(scorer, g: dict):
    usage = Usage()
    return asyncio.run(scorer.score_group(Group.model_validate(g), usage)), usage


def _three_rollouts() -> dict:
    rollouts = [
        rollout("good", final="<final_answer>3 passed in 0.2s; nothing failed.</final_answer>"),
        rollout("bad", steps=[step(exit_code=1, output="1 failed")], final="<final_answer>all good</final_answer>"),
        rollout("none", steps=[]),
    ]
    return group(rollouts=rollouts)


def test_samples_each_a_seeded_request_cached_separately(make_scorer, fake_judge, tmp_path):
    scorer = make_scorer(samples=3, cache=tmp_path / "c")
    result, usage = _score(scorer, _three_rollouts())
    grades = [c for c in fake_judge.state.calls if c["kind"] == "grade"]
    # 2 graded rollouts x samples 0..2: sample 0 is the K = 1 request (no seed), then seeds 1, 2
    assert sorted(c["seed"] for c in grades if c["seed"] is not None) == [1, 1, 2, 2]
    assert sum(c["seed"] is None for c in grades) == 2
    assert usage.calls["condense"] == 3  # reference + 2 candidates: condensed once (no re-sampling)
    good = next(r for r in result.rollouts if r.id == "good")
    assert good.dimensions is not None and good.reward_std is not None
    for d in good.dimensions.values():
        assert d.samples is not None and len(d.samples) == 3
        assert d.score == pytest.approx(sum(d.samples) / 3)
    assert any(d.std and d.std > 0 for d in good.dimensions.values())  # the fake judge's seeds do differ
    assert result.noise is not None and result.noise.samples == 3 and result.noise.n == 2
    pen = next(r for r in result.rollouts if r.id == "none")
    assert pen.status == "penalized" and pen.reward_std is None
    # every sample is its own cache entry: a rerun makes no call and gets the same numbers
    fake_judge.reset()
    again, usage2 = _score(make_scorer(samples=3, cache=tmp_path / "c"), _three_rollouts())
    assert sum(usage2.calls.values()) == 0 and again.usage is not None and again.usage.judge_calls == 0
    assert again.model_dump(exclude={"usage"}) == result.model_dump(exclude={"usage"})  # usage: what this run spent
    # one sample is sample 0: the cache answers it, and its scores are sample 0's
    fake_judge.reset()
    single, _ = _score(make_scorer(cache=tmp_path / "c"), _three_rollouts())
    assert fake_judge.state.calls == []
    assert single.noise is None and all(r.reward_std is None for r in single.rollouts)
    one = next(r for r in single.rollouts if r.id == "good")
    assert one.dimensions is not None
    assert {n: d.score for n, d in one.dimensions.items()} == {n: d.samples[0] for n, d in good.dimensions.items()}


def test_resample_condense(make_scorer, fake_judge):
    scorer = make_scorer(samples=2, resample_condense=True)
    _score(scorer, _three_rollouts())
    condense = [c["seed"] for c in fake_judge.state.calls if c["kind"] == "condense"]
    # reference once, candidates x2: sample 0 without a seed (the K = 1 request), sample 1 with seed 1
    assert sorted(condense, key=str) == sorted([None, None, 1, 1, None], key=str)


def test_step_metrics_dimension_means_noise_and_cached_tokens(make_scorer, fake_judge):
    result, usage = _score(make_scorer(samples=2), _three_rollouts())
    m = metrics_of([result], usage)
    graded = [r for r in result.rollouts if r.status == "ok"]
    assert set(m.dimension_mean) == set(graded[0].dimensions or {})
    name = "command_correctness"
    assert m.dimension_mean[name] == pytest.approx(sum((r.dimensions or {})[name].score for r in graded) / 2)
    assert m.judge_reward_std == pytest.approx(sum(r.reward_std or 0 for r in graded) / 2)
    assert result.noise is not None and m.group_snr == result.noise.snr
    # the fake judge reports a repeated prompt prefix (the grades share the rubric and reference) as cached
    assert m.cached_tokens == usage.cached_tokens > 0
    assert metrics_of([result], Usage(cached_tokens=1234)).cached_tokens == 1234
    assert metrics_of([result], None).cached_tokens == 0
