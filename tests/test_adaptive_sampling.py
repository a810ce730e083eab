"""`--samples auto`: sample 0 is the K = 1 request; one sample each, more where a group's order is unsure, up
to max_samples and the group's budget; deterministic per group; replayed by `reward rescore`; its dry run
states the range of calls; and, with the fake judge of known noise, cheaper than K = 3 and better than K = 1."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from statistics import median

import pytest

from reward.analysis.rescore import RescoreError, rescore_group
from reward.cache.disk import Store
from reward.core.results import GroupResult, RolloutResult
from reward.errors import ConfigError
from reward.judge.base import Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.replies import FakeNoise
from reward.rubric.adaptive import budget, next_round, replay
from reward.rubric.finish import sampling
from reward.rubric.noise import group_noise
from reward.rubric.reliability import estimate, from_moments
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer
from tests.conftest import EXAMPLES, cli_env, group, rollout, step
from tests.conftest import run_cli as reward

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import adaptive_sampling as bench

# --- the rule, pure ---------------------------------------------------------------------------------------


def test_unknown_noise_measures_on_the_closest_pair_first():
    step_ = next_round([[0.1], [0.5], [0.52], [0.9]], [], 4)
    assert sorted(step_.more) == [1, 2] and step_.reason is None


def test_settled_when_every_neighbour_is_many_standard_errors_apart():
    # noise measured on rollout 0 (variance 0.005); gaps of 0.4 are > Z standard errors
    samples = [[0.1, 0.2], [0.5], [0.9], [1.3]]
    assert next_round(samples, [], 4).reason == "settled"
    # the same gaps with a noisy judge: unsure, and the less-sampled rollout of a pair goes first
    noisy = [[0.1, 0.9], [0.5], [0.9], [1.3]]
    assert 0 not in next_round(noisy, [], 4).more[:1]


def test_budget_and_max_samples_bound_it():
    assert budget(8) == 4 and budget(3) == 2
    spent = [[0.5, 0.6, 0.4], [0.5, 0.4, 0.6], [0.5], [0.5]]  # 4 extra samples: over 4 graded, budget 2
    assert next_round(spent, [], 8) == next_round(spent, [], 8) and next_round(spent, [], 8).reason == "budget"
    at_max = [[0.5, 0.6], [0.5, 0.4], [-5.0], [-10.0], [5.0], [10.0]]  # the close pair unsure, both at max 2
    assert next_round(at_max, [], 2).reason == "max_samples"
    assert next_round([], [0.0], 4).reason == "no_graded"


def test_a_penalised_reward_is_a_fixed_point_never_sampled():
    step_ = next_round([[0.1, 0.3], [5.0], [9.0], [13.0]], [0.2], 4)
    assert step_.more == [0]  # unsure next to the penalised 0.2; the other rollout is far from everything


def test_replay_keeps_a_prefix_or_says_the_file_is_short():
    full = [[0.1, 0.11, 0.12, 0.1], [0.105, 0.1, 0.13, 0.09], [0.9, 0.91, 0.92, 0.9], [0.95]]
    ks, reason = replay(full, [], 4)
    assert all(1 <= k <= len(s) for k, s in zip(ks, full, strict=True)) and sum(ks) - 4 <= budget(4)
    assert replay([[0.5], [0.5]], [], 4) == ([2, 1], "incomplete")  # a tie needs a second sample it lacks
    assert reason in ("settled", "budget", "max_samples")


# --- noise and reliability with unequal K ------------------------------------------------------------------


def test_reliability_with_unequal_k_hand_computed():
    rel = estimate([[1.0, 3.0], [5.0], [7.0, 7.0, 10.0]])
    # pooled noise: (1 * 2 + 2 * 3) / (1 + 2) = 8/3; means 2, 5, 8: variance 9; mean(N / k) = 8/3 * (1/2+1+1/3)/3
    noise = 8 / 3
    shrink = noise * (1 / 2 + 1 + 1 / 3) / 3
    assert rel.noise_var == pytest.approx(noise) and rel.signal_var == pytest.approx(9 - shrink)
    s = 9 - shrink
    assert rel.reliability_k == pytest.approx(s / (s + shrink))  # Spearman-Brown at the harmonic mean of K
    assert from_moments([1.0, 2.0], 1.0, [2, 2]) == from_moments([1.0, 2.0], 1.0, 2)  # equal K: as before
    assert estimate([[1.0], [2.0]]).reliability is None  # no rollout sampled twice: noise unknown


def _r(rid: str, reward: float, samples: list[float] | None) -> RolloutResult:
    from reward.core.results import DimensionResult

    std = None if samples is None else float(__import__("statistics").stdev(samples))
    score = reward if samples is None else sum(samples) / len(samples)
    dims = {"d": DimensionResult(score=score, reason="r", samples=samples, std=std)}
    return RolloutResult(
        id=rid, status="ok", reward=reward, reward_std=std, dimensions=dims, in_group_stats=True, has_final_answer=True
    )


def test_group_noise_auto_pools_over_the_resampled():
    results = [_r("a", 2.0, [1.0, 3.0]), _r("b", 5.0, None), _r("c", 8.0, [7.0, 7.0, 10.0])]
    noise = group_noise(results, "auto")
    assert noise is not None and noise.samples == 3 and noise.n == 3
    assert noise.noise_var == pytest.approx(8 / 3)
    assert noise.dimensions is not None and noise.dimensions["d"].noise_var == pytest.approx(8 / 3)
    assert group_noise([_r("a", 2.0, None), _r("b", 3.0, None)], "auto") is None  # nothing measured


# --- settings ------------------------------------------------------------------------------------------------


def test_auto_from_flag_env_or_rubric(rubric, monkeypatch):
    assert judge_settings(rubric, samples="auto", max_samples=6).max_samples == 6
    monkeypatch.setenv("REWARD_JUDGE_SAMPLES", "auto")
    monkeypatch.setenv("REWARD_JUDGE_MAX_SAMPLES", "5")
    s = judge_settings(rubric)
    assert (s.samples, s.max_samples) == (1, 5)
    assert judge_settings(rubric, samples=3).max_samples is None  # the flag wins over the environment
    monkeypatch.delenv("REWARD_JUDGE_SAMPLES")
    monkeypatch.delenv("REWARD_JUDGE_MAX_SAMPLES")
    auto = rubric.model_copy(update={"spec": rubric.spec.model_copy(update={"judge": rubric.spec.judge.model_copy(
        update={"samples": "auto", "max_samples": 3})})})  # fmt: skip
    assert sampling(auto).auto and sampling(auto).max_samples == 3
    with pytest.raises(ConfigError, match="at least 2"):
        judge_settings(rubric, samples="auto", max_samples=1)


# --- scoring -------------------------------------------------------------------------------------------------


def _scorer(rubric, tmp_path: Path, samples, sd: float = 1.5, max_samples: int = 4) -> tuple[Scorer, Store]:
    settings = judge_settings(rubric, samples=samples, max_samples=max_samples)
    store = Store(tmp_path)
    return Scorer(rubric, InProcessFakeJudge(settings, noise=FakeNoise(sd=sd)), store), store


def _group(gid: str = "g1", n: int = 8) -> dict:
    rollouts = [rollout(f"r{i}", steps=[step(command=f"pytest -q t{gid}{i}.py")]) for i in range(n)]
    rollouts.append(rollout("none", steps=[]))  # penalised: no command
    return group(gid, rollouts=rollouts)


def _score(scorer: Scorer, *gs: dict) -> list[GroupResult]:
    from reward.core.trajectory import Group

    async def run() -> list[GroupResult]:
        return list(await asyncio.gather(*(scorer.score_group(Group.model_validate(g), Usage()) for g in gs)))

    return asyncio.run(run())


def test_k3_after_k1_costs_two_grading_calls_per_rollout(make_scorer, fake_judge, tmp_path):
    one = _score(make_scorer(cache=tmp_path / "c"), group(rollouts=[rollout("a"), rollout("b")]))[0]
    fake_judge.reset()
    three = _score(make_scorer(samples=3, cache=tmp_path / "c"), group(rollouts=[rollout("a"), rollout("b")]))[0]
    grades = [c for c in fake_judge.state.calls if c["kind"] == "grade"]
    assert sorted(c["seed"] for c in grades) == [1, 1, 2, 2]  # sample 0 came from the K = 1 entry
    for r1, r3 in zip(one.rollouts, three.rollouts, strict=True):
        assert r1.dimensions and r3.dimensions
        assert all(r3.dimensions[n].samples[0] == d.score for n, d in r1.dimensions.items())  # type: ignore[index]


def test_auto_spends_where_unsure_within_bounds_and_says_so(rubric, tmp_path):
    scorer, store = _scorer(rubric, tmp_path, "auto")
    try:
        (result,) = _score(scorer, _group())
        grades = scorer.judge.calls["grade"]  # type: ignore[attr-defined]
    finally:
        store.close()
    info = result.sampling
    assert info is not None and info.mode == "auto" and info.max == 4
    assert set(info.per_rollout) == {f"r{i}" for i in range(8)}  # the penalised rollout got no judge call
    assert info.spent == sum(info.per_rollout.values()) == grades  # each sample its own call (empty cache)
    assert 8 < info.spent <= 8 + budget(8) and all(1 <= k <= 4 for k in info.per_rollout.values())
    for r in result.rollouts:
        if r.status == "ok":
            d = next(iter((r.dimensions or {}).values()))
            assert (len(d.samples) if d.samples else 1) == info.per_rollout[r.id]
    assert result.basis is not None and result.basis.samples == "auto" and result.basis.max_samples == 4
    assert result.noise is not None and result.noise.noise_var is not None  # measured on the resampled
    line = json.loads(result.model_dump_json())
    assert (
        line["sampling"]["reason"] == info.reason
        and GroupResult.model_validate(line).model_dump_json() == result.model_dump_json()
    )


def test_auto_is_deterministic_per_group_and_rescore_replays_it(rubric, tmp_path):
    scorer, store = _scorer(rubric, tmp_path / "a", "auto")
    try:
        (alone,) = _score(scorer, _group("g1"))
    finally:
        store.close()
    scorer, store = _scorer(rubric, tmp_path / "b", "auto")
    try:  # scored next to other groups, concurrently: the same decisions
        together = _score(scorer, _group("g0"), _group("g1"), _group("g2"))[1]
    finally:
        store.close()
    assert together.model_dump(exclude={"usage"}) == alone.model_dump(exclude={"usage"})
    rescored = rescore_group(alone, rubric)
    assert rescored.model_dump_json() == alone.model_dump_json()
    with pytest.raises(RescoreError, match="graded with auto"):
        rescore_group(alone, rubric, samples=3)


def test_rescore_refuses_when_the_rule_needs_samples_the_file_lacks(rubric, tmp_path):
    scorer, store = _scorer(rubric, tmp_path, "auto")
    try:
        (result,) = _score(scorer, _group())
    finally:
        store.close()
    # cut every rollout to its first sample: the replay asks for the ones it measured the noise with
    cut = [
        r.model_copy(
            update={
                "dimensions": {
                    n: d.model_copy(
                        update={"score": d.samples[0] if d.samples else d.score, "samples": None, "std": None}
                    )
                    for n, d in (r.dimensions or {}).items()
                }
                if r.dimensions
                else None
            }
        )
        if r.status == "ok"
        else r
        for r in result.rollouts
    ]
    with pytest.raises(RescoreError, match="does not hold"):
        rescore_group(result.model_copy(update={"rollouts": cut}), rubric)


def test_fixed_k_output_has_no_sampling_field_and_old_lines_read(rubric, tmp_path):
    scorer, store = _scorer(rubric, tmp_path, 2)
    try:
        (result,) = _score(scorer, _group(n=2))
    finally:
        store.close()
    line = json.loads(result.model_dump_json())
    assert "sampling" not in line and "max_samples" not in line["basis"]
    assert GroupResult.model_validate(line).sampling is None


def test_cli_samples_auto_and_its_dry_run_range(fake_judge_server, tmp_path):
    env = cli_env(fake_judge_server, tmp_path / "cache")
    dry = reward("score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--samples", "auto", "--dry-run", "--json", env=env)
    auto = json.loads(dry.stdout)
    k1 = json.loads(reward("score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--dry-run", "--json", env=env).stdout)
    assert auto["samples"] == "auto" and auto["max_samples"] == 4
    assert auto["calls_range"]["min"] == k1["total"]["calls"] < auto["calls_range"]["max"]
    text = reward("score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--samples", "auto", "--dry-run", env=env).stdout
    assert f"{auto['calls_range']['min']:,} to {auto['calls_range']['max']:,} calls" in text
    reward("score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--samples", "auto", "--no-progress", env=env)
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    spent = sum(g["sampling"]["spent"] for g in lines if g.get("sampling"))
    calls = sum(g["usage"]["judge_calls"] for g in lines)
    assert auto["calls_range"]["min"] <= calls <= auto["calls_range"]["max"] and spent > 0
    bad = reward("score", EXAMPLES, "-o", tmp_path / "x.jsonl", "--samples", "many", env=env, check=False)
    assert bad.returncode == 2 and "positive integer or auto" in bad.stderr
    # resuming with another bound would mix groups sampled up to 4 with groups sampled up to 6
    mixed = reward(
        "score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--samples", "auto", "--max-samples", "6", env=env, check=False
    )
    assert mixed.returncode != 0 and "adaptively up to 4 per rollout, this run up to 6" in mixed.stderr
    # rescore takes auto as its check, and reproduces the file with the same rubric
    again = tmp_path / "again.jsonl"
    reward("rescore", tmp_path / "o.jsonl", "-r", "execution_subagent", "-o", again, "--samples", "auto", env=env)
    assert again.read_text() == (tmp_path / "o.jsonl").read_text()


# --- the done-when relations, small ---------------------------------------------------------------------------


def test_auto_costs_at_most_1_6_k1_and_orders_better_than_k1():
    per_seed = []
    for seed in range(3):
        batch = bench.groups(seed, 4, 6)
        reference, _ = bench.score(batch, 1.5, 16)
        k1, c1 = bench.score(batch, 1.5, 1)
        auto, ca = bench.score(batch, 1.5, "auto")
        per_seed.append((ca / c1, bench.agreement(k1, reference), bench.agreement(auto, reference)))
    assert median(c for c, _, _ in per_seed) <= 1.6
    assert median(a for _, _, a in per_seed) > median(k for _, k, _ in per_seed)


def test_auto_with_resample_condense_condenses_each_extra_sample_with_its_seed(rubric, tmp_path):
    settings = judge_settings(rubric, samples="auto", max_samples=3, resample_condense=True)
    store = Store(tmp_path)
    judge = InProcessFakeJudge(settings, noise=FakeNoise(sd=1.5))
    try:
        (result,) = _score(Scorer(rubric, judge, store), _group())
    finally:
        store.close()
    assert result.sampling is not None and result.basis is not None and result.basis.resample_condense
    extra = result.sampling.spent - len(result.sampling.per_rollout)
    condense = [r["seed"] for r in judge.requests if r["role"] == "condense"]
    grade = [r["seed"] for r in judge.requests if r["role"] == "grade"]
    assert extra > 0 and sorted(s for s in condense if s is not None) == sorted(s for s in grade if s is not None)
    assert condense.count(None) == 1 + 8  # the reference and sample 0 of each graded rollout
