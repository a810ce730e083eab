"""Judge noise: K graded samples of one rollout combined into one score, and a group's signal-to-noise ratio.

Pure functions. A dimension's score is the mean of its samples and the rollout's reward is computed from
those means (the formula is linear, so this is also the mean of the per-sample rewards). Spreads across
samples are sample standard deviations (ddof=1): they estimate the judge's noise from K draws. The spread
between rollouts is the population variance (ddof=0), as GRPO normalises a group.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean, stdev

from reward.core.results import DimensionReliability, DimensionResult, NoiseInfo, RolloutResult
from reward.rubric.formula import graded_reward
from reward.rubric.reliability import TARGET, estimate, from_moments, pooled
from reward.rubric.spec import RubricSpec
from reward.rubric.verdict import DimensionScore

Sample = dict[str, tuple[float, str]]  # one verdict: dimension -> (score, reason)


def combine_samples(
    spec: RubricSpec, samples: Sequence[Sample]
) -> tuple[dict[str, DimensionResult], float, dict[str, float], float | None]:
    """(dimensions, reward, group means by group name, reward_std); one sample keeps the scores as the judge
    gave them and no spread fields, so single-sample output is unchanged."""
    if not samples:
        raise ValueError("at least one verdict sample is needed")
    if len(samples) == 1:
        only = samples[0]
        dims = {name: DimensionResult(score=s, reason=r) for name, (s, r) in only.items()}
        reward, m = graded_reward(spec, {n: DimensionScore(s, r) for n, (s, r) in only.items()})
        return dims, reward, m, None
    dims = {}
    for d in spec.dimensions:
        values = [sample[d.name][0] for sample in samples]
        # The first sample's reason: a reason explains one judgement, it cannot be averaged.
        dims[d.name] = DimensionResult(
            score=fmean(values), reason=samples[0][d.name][1], samples=values, std=stdev(values)
        )
    reward, m = graded_reward(spec, {n: DimensionScore(r.score, r.reason) for n, r in dims.items()})
    per_sample = [graded_reward(spec, {n: DimensionScore(s, r) for n, (s, r) in smp.items()})[0] for smp in samples]
    return dims, reward, m, stdev(per_sample)


def _ks(r: RolloutResult) -> int:
    """The verdict samples a graded rollout got: its dimensions' sample count (1 when single)."""
    d = next(iter((r.dimensions or {}).values()), None)
    return len(d.samples) if d is not None and d.samples is not None else 1


def group_noise(results: Sequence[RolloutResult], samples: int | str) -> NoiseInfo | None:
    """Signal-to-noise ratio of a group's graded rollouts: the variance of their rewards (population) over
    the mean of their judge variances (reward_std squared, pooled when K varies); and the reliability of their
    reward and of each dimension (reward.rubric.reliability). Penalties are exact and errors have no reward, so
    only graded rollouts count (the penalised ones are counted in `n_penalized`). None with a single sample
    (with `samples` auto: when no rollout got a second one)."""
    if samples == 1:
        return None
    n_penalized = sum(r.status == "penalized" for r in results)
    graded = [r for r in results if r.status == "ok" and r.reward is not None]
    if samples == "auto":
        if not any(r.reward_std is not None for r in graded):
            return None
        ks = [_ks(r) for r in graded]
        k_max = max(ks)
    else:
        graded = [r for r in graded if r.reward_std is not None]
        ks, k_max = [int(samples)] * len(graded), int(samples)
    if len(graded) < 2:
        return NoiseInfo(
            samples=k_max, n=len(graded), signal_var=None, noise_var=None, snr=None, n_penalized=n_penalized
        )
    rewards = [float(r.reward) for r in graded if r.reward is not None]
    mean = fmean(rewards)
    signal = fmean((x - mean) ** 2 for x in rewards)
    multi = [(float(r.reward_std) ** 2, k) for r, k in zip(graded, ks, strict=True) if r.reward_std is not None]
    noise = pooled([v for v, _ in multi], [k for _, k in multi])
    # With no measured noise the ratio is unbounded; null, with noise_var 0 saying why.
    snr = signal / noise if noise > 0 else None
    rel = from_moments(rewards, noise, ks)
    return NoiseInfo(
        samples=k_max,
        n=len(graded),
        signal_var=signal,
        noise_var=noise,
        snr=snr,
        n_penalized=n_penalized,
        signal_var_unbiased=rel.signal_var,
        reliability=rel.reliability,
        reliability_k=rel.reliability_k,
        k_needed=rel.k_needed,
        reliability_target=TARGET,
        dimensions=_dimension_reliability(graded, ks) or None,
    )


def _dimension_reliability(graded: Sequence[RolloutResult], ks: Sequence[int]) -> dict[str, DimensionReliability]:
    names = list((graded[0].dimensions or {}).keys())
    out = {}
    for name in names:
        scores = []
        for r, k in zip(graded, ks, strict=True):
            d = (r.dimensions or {}).get(name)
            if d is None:
                continue
            values = [float(d.score)] if d.samples is None else [float(x) for x in d.samples]
            if len(values) == k:
                scores.append(values)
        if len(scores) < 2:
            continue
        rel = estimate(scores)
        if rel.noise_var is None:
            continue
        out[name] = DimensionReliability(
            signal_var=rel.signal_var,
            noise_var=rel.noise_var,
            reliability=rel.reliability,
            reliability_k=rel.reliability_k,
            k_needed=rel.k_needed,
        )
    return out
