"""Reliability anchored to noise (issue 22, part 1): the fake judge of known signal and noise, the unbiased
estimate per group and dimension, Spearman-Brown's K, and penalised rollouts left out and counted."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from statistics import fmean

import pytest

from reward.cache.disk import Store
from reward.core.results import GroupResult
from reward.core.summary import summarize
from reward.core.trajectory import Group
from reward.errors import ConfigError
from reward.judge.base import CallSettings, JudgeSettings, Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.replies import FakeNoise, fake_verdict
from reward.rubric.reliability import TARGET, estimate, k_needed, spearman_brown
from reward.scoring.scorer import Scorer
from reward.service.reward_service import metrics_of
from tests.conftest import ROOT, TEST_MODEL, distinct_groups, group, rollout, step

N_GROUPS, N_ROLLOUTS, K = 32, 8, 4


def _score_all(rubric, tmp_path: Path, noise: FakeNoise, groups: list[dict], k: int = K) -> list[GroupResult]:
    settings = JudgeSettings(
        condense=CallSettings(TEST_MODEL, 0.0, 512), grade=CallSettings(TEST_MODEL, 0.0, 1024), samples=k
    )
    store = Store(tmp_path / f"cache-{noise.sd}-{noise.low}-{noise.high}-{k}")
    scorer = Scorer(rubric, InProcessFakeJudge(settings, noise=noise), store)

    async def run() -> list[GroupResult]:
        return [await scorer.score_group(Group.model_validate(g), Usage()) for g in groups]

    try:
        return asyncio.run(run())
    finally:
        store.close()


def test_fake_noise_true_reliability_formula():
    # On 0-10, true scores uniform on [2, 8]: signal variance 6^2 / 12 = 3; rounding adds 1/12 to the noise.
    assert FakeNoise(sd=1.5).signal_var() == pytest.approx(3.0)
    assert FakeNoise(sd=1.5).nominal_reliability() == pytest.approx(3 / (3 + 2.25 + 1 / 12))
    for sd, exact in ((0.5, 0.900), (1.5, 0.566), (3.0, 0.248)):  # exact: clipping and rounding included
        assert FakeNoise(sd=sd).true_reliability() == pytest.approx(exact, abs=1e-3)
    assert FakeNoise(sd=1.5, low=0.5, high=0.5).true_reliability() == 0.0  # no signal at all
    with pytest.raises(ValueError):
        FakeNoise(sd=-1)


def test_fake_noise_from_env(monkeypatch):
    monkeypatch.delenv("REWARD_FAKE_NOISE_SD", raising=False)
    assert FakeNoise.from_env() is None
    monkeypatch.setenv("REWARD_FAKE_NOISE_SD", "0.5")
    assert FakeNoise.from_env() == FakeNoise(sd=0.5)
    monkeypatch.setenv("REWARD_FAKE_NOISE_SD", "loud")
    with pytest.raises(ConfigError, match="REWARD_FAKE_NOISE_SD must be a number, got 'loud'"):
        FakeNoise.from_env()
    monkeypatch.setenv("REWARD_FAKE_NOISE_SD", "-1")
    with pytest.raises(ConfigError, match="REWARD_FAKE_NOISE_SD must be a number >= 0"):
        FakeNoise.from_env()


def test_fake_noise_verdicts_true_value_plus_seeded_noise():
    schema = {"properties": {"a_score": {"type": "integer", "minimum": 0, "maximum": 10}, "x": {"type": "number"}}}
    prompt = "## Candidate Execution Plan\nTask Outcome: success.\n"
    exact = FakeNoise(sd=0.0)
    true_a = exact.true_score(prompt.split("\n", 1)[1].strip(), "a_score", 0, 10)
    assert 2 <= true_a <= 8
    assert fake_verdict(prompt, schema, seed=0, noise=exact)["a_score"] == round(true_a)  # sd 0: the rounded truth
    noisy = FakeNoise(sd=3.0)
    draws = [fake_verdict(prompt, schema, seed=s, noise=noisy) for s in range(40)]
    assert draws == [fake_verdict(prompt, schema, seed=s, noise=noisy) for s in range(40)]  # seeded: reproducible
    assert len({d["a_score"] for d in draws}) > 3 and all(0 <= d["a_score"] <= 10 for d in draws)
    assert all(isinstance(d["a_score"], int) and 0.0 <= d["x"] <= 1.0 for d in draws)
    # the true value belongs to the candidate: another candidate gets another one
    other = FakeNoise(sd=0.0).true_score("Task Outcome: failure.", "a_score", 0, 10)
    assert other != true_a


def test_estimate_hand_computed():
    # means 2 and 6: variance (ddof=1) 8; within variances 2 and 2: noise 2; signal 8 - 2/2 = 7
    rel = estimate([[1, 3], [5, 7]])
    assert (rel.signal_var, rel.noise_var) == (7.0, 2.0)
    assert rel.reliability == pytest.approx(7 / 9)
    assert rel.reliability_k == pytest.approx(7 / 8) == spearman_brown(7 / 9, 2)
    assert rel.k_needed == 2  # 0.8 (2/9) / ((7/9) 0.2) = 1.14 -> 2
    # pure noise: the means agree, the estimate (8 - ...) is negative and floored: reliability 0, no K reaches 0.8
    flat = estimate([[1, 3], [3, 1]])
    assert (flat.signal_var, flat.reliability, flat.k_needed) == (0.0, 0.0, None)
    assert estimate([[1, 1], [5, 5]]).reliability == 1.0  # signal and no measured noise
    assert estimate([[4, 4], [4, 4]]).reliability is None  # neither
    assert estimate([[1, 2]]).reliability is None  # one rollout


@pytest.mark.parametrize(("r1", "k"), [(0.8, 1), (0.95, 1), (0.5, 4), (0.25, 12), (0.3, 10), (0.1, 36), (0.0, None)])
def test_k_needed_is_spearman_brown(r1, k):
    assert k_needed(r1) == k
    if k is not None:  # the fewest samples whose mean reaches the target
        assert spearman_brown(r1, k) >= TARGET - 1e-12
        assert k == 1 or spearman_brown(r1, k - 1) < TARGET


@pytest.mark.parametrize("sd", [0.5, 1.5, 3.0])
def test_reported_reliability_within_0_1_of_the_truth(rubric, tmp_path, sd):
    noise = FakeNoise(sd=sd)
    true = noise.true_reliability()
    results = _score_all(rubric, tmp_path, noise, distinct_groups(f"rel{sd}", N_GROUPS, N_ROLLOUTS))
    summary = summarize(results)
    assert summary.reliability is not None
    assert abs(summary.reliability - true) < 0.1  # the reward (a linear mix of independent dimensions)
    assert len(summary.dimension_reliability) == 14
    assert abs(fmean(summary.dimension_reliability.values()) - true) < 0.1
    # each group: K-sample reliability and K needed by Spearman-Brown from its own single-sample reliability
    for g in results:
        assert g.noise is not None and g.noise.n == N_ROLLOUTS and g.noise.n_penalized == 0
        assert g.noise.reliability_target == TARGET and g.noise.dimensions is not None
        r1 = g.noise.reliability
        assert r1 is not None and 0.0 <= r1 <= 1.0
        assert g.noise.reliability_k == pytest.approx(spearman_brown(r1, K))
        assert g.noise.k_needed == k_needed(r1)
    # the K-sample mean is as reliable as Spearman-Brown says the truth makes it
    assert abs(fmean(g.noise.reliability_k or 0 for g in results if g.noise) - spearman_brown(true, K)) < 0.1
    # the run's K needed: Spearman-Brown on the reported reliability, close to the truth's
    assert summary.k_needed == k_needed(summary.reliability)
    lo, hi = k_needed(min(1.0, true + 0.1)), k_needed(max(1e-9, true - 0.1))  # monotone: within 0.1 of r1
    assert summary.k_needed is not None and lo is not None and hi is not None and lo <= summary.k_needed <= hi
    m = metrics_of(results)
    assert (m.reliability, m.k_needed, m.dimension_reliability) == (
        summary.reliability,
        summary.k_needed,
        summary.dimension_reliability,
    )
    # README's measured figures are this setup's (to the 3 decimals it prints)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    n = r"(\d\.\d{3})"
    said = re.search(rf"true {n} / {n} / {n} at sd 0\.5 / 1\.5 / 3\.0, reported {n} / {n} / {n}", readme)
    assert said is not None, "README no longer states the measured reliability"
    i = (0.5, 1.5, 3.0).index(sd)
    assert float(said[1 + i]) == pytest.approx(true, abs=6e-4)
    assert float(said[4 + i]) == pytest.approx(summary.reliability, abs=6e-4), round(summary.reliability, 3)


def test_pure_noise_reads_about_zero(rubric, tmp_path):
    noise = FakeNoise(sd=1.5, low=0.5, high=0.5)  # every rollout's true score is 5: nothing but judge noise
    results = _score_all(rubric, tmp_path, noise, distinct_groups("pure", N_GROUPS, N_ROLLOUTS))
    summary = summarize(results)
    assert noise.true_reliability() == 0.0
    # the unfloored estimate has expectation 0; floored at 0 per group, the mean stays near it
    assert summary.reliability is not None and summary.reliability < 0.1
    assert fmean(summary.dimension_reliability.values()) < 0.1
    # while today's SNR reads well above 0 for pure noise, as issue 22 says ((n-1)/(nK) on average)
    snr = summary.group_snr
    assert snr is not None and snr > 0.1
    assert summary.k_needed is None or summary.k_needed > 16


def _with_penalised(gid: str) -> dict:
    graded = [rollout(f"r{i}", steps=[step(command=f"pytest -q -k pen_{i}", output=f"{i} passed")]) for i in range(5)]
    penalised = [rollout("no-commands", steps=[]), rollout("no-final", final="")]
    return group(gid, graded + penalised)


def test_penalised_rollouts_left_out_and_counted(rubric, tmp_path):
    noise = FakeNoise(sd=1.5)
    with_pen = _score_all(rubric, tmp_path, noise, [_with_penalised("pen")])[0]
    assert {r.id: r.status for r in with_pen.rollouts}["no-commands"] == "penalized"
    assert with_pen.noise is not None
    assert (with_pen.noise.n, with_pen.noise.n_penalized) == (5, 2)
    # the same group without them: the same graded rollouts, the same reliability (penalties add no judge noise)
    without = group("pen", [r for r in _with_penalised("pen")["rollouts"] if r["id"].startswith("r")])
    alone = _score_all(rubric, tmp_path / "alone", noise, [without])[0]
    assert alone.noise is not None and alone.noise.n_penalized == 0
    assert with_pen.noise.reliability == alone.noise.reliability
    assert with_pen.noise.dimensions == alone.noise.dimensions
    assert summarize([with_pen]).noise_penalized == 2


def test_single_sample_has_no_reliability(rubric, tmp_path):
    [g] = _score_all(rubric, tmp_path, FakeNoise(sd=1.5), distinct_groups("k1", 1, 4), k=1)
    assert g.noise is None
    assert metrics_of([g]).reliability is None and metrics_of([g]).k_needed is None


def test_both_fakes_answer_alike_with_noise(make_scorer, make_local_scorer, fake_judge, monkeypatch, tmp_path):
    monkeypatch.setenv("REWARD_FAKE_NOISE_SD", "1.5")  # the in-process fake reads it when built
    fake_judge.state.noise = FakeNoise(sd=1.5)
    try:
        g = Group.model_validate(distinct_groups("both", 1, 4)[0])
        http = asyncio.run(make_scorer(samples=2, cache=tmp_path / "h").score_group(g, Usage()))
        local = asyncio.run(make_local_scorer(samples=2, cache=tmp_path / "l").score_group(g, Usage()))
    finally:
        fake_judge.state.noise = None
    assert http.noise is not None and http.noise.reliability is not None
    assert [r.dimensions for r in http.rollouts] == [r.dimensions for r in local.rollouts]
    assert http.noise == local.noise


def test_the_run_summary_shows_reliability_and_the_k_needed(tmp_path):
    from tests.conftest import EXAMPLES, run_cli

    env = {"REWARD_FAKE_NOISE_SD": "1.5", "REWARD_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    ran = run_cli("score", EXAMPLES, "-o", tmp_path / "k3.jsonl", "--fake-judge", "--samples", "3", "--no-progress", env=env)  # fmt: skip
    text = " ".join(ran.stdout.split())
    assert "reliability" in text and "per sample (mean over groups; 0 is pure judge noise)" in text
    assert "K for 0.8:" in text
    one = run_cli("score", EXAMPLES, "-o", tmp_path / "k1.jsonl", "--fake-judge", "--no-progress", env=env)
    assert "K for 0.8" not in one.stdout  # one sample measures no noise
