"""`reward rescore` of a `--samples auto` file: a rollout the replay keeps at fewer samples than the file holds
keeps its first ones (sample 0 alone, never their mean), and a basis whose max_samples the rule cannot have run
with is refused."""

from __future__ import annotations

import asyncio
from statistics import fmean, stdev

import pytest

from reward.analysis.rescore import RescoreError, rescore_group
from reward.cache.disk import Store
from reward.core.results import GroupResult, RolloutResult
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.replies import FakeNoise
from reward.rubric.load import load_rubric
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer
from tests.conftest import group, rollout, step

RUBRIC = load_rubric("execution_subagent")


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> GroupResult:
    rollouts = [rollout(f"r{i}", steps=[step(command=f"pytest -q tg1{i}.py")]) for i in range(8)]
    judge = InProcessFakeJudge(judge_settings(RUBRIC, samples="auto", max_samples=4), noise=FakeNoise(sd=1.5))
    store = Store(tmp_path_factory.mktemp("cache"))
    try:
        return asyncio.run(
            Scorer(RUBRIC, judge, store).score_group(Group.model_validate(group("g1", rollouts=rollouts)), Usage())
        )
    finally:
        store.close()


def _with_a_sample_more(r: RolloutResult) -> RolloutResult:
    """`r` (one sample) holding a second one it never drew: its scores the means, as a K = 2 line writes them."""
    assert r.dimensions is not None
    dims = {}
    for n, d in r.dimensions.items():
        both = [d.score, 10 - d.score]
        dims[n] = d.model_copy(update={"score": fmean(both), "samples": both, "std": stdev(both)})
    return r.model_copy(update={"dimensions": dims})


def test_a_rollout_trimmed_to_one_sample_keeps_sample_0_not_the_mean(scored):
    assert scored.sampling is not None
    once = next(rid for rid, k in scored.sampling.per_rollout.items() if k == 1 and rid != "r0")
    padded = [_with_a_sample_more(r) if r.id == once else r for r in scored.rollouts]
    rescored = rescore_group(scored.model_copy(update={"rollouts": padded}), RUBRIC)
    # the rule asks for no second sample of it: the rescored line is the paid run's, sample 0 its score
    assert rescored.model_dump_json() == scored.model_dump_json()


@pytest.mark.parametrize("most", [1, -5, 0, None, 100, 33])
def test_an_auto_basis_with_an_impossible_max_samples_is_refused(scored, most):
    assert scored.basis is not None
    bad = scored.model_copy(update={"basis": scored.basis.model_copy(update={"max_samples": most})})
    with pytest.raises(RescoreError, match=f"max_samples {most!r}, not a number of samples from 2 to 32"):
        rescore_group(bad, RUBRIC)
