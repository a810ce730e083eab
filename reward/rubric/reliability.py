"""Reliability anchored to noise: how much of a score's spread across a group's rollouts is the rollouts'
and how much the judge's, from K >= 2 verdict samples per rollout. Pure functions.

For n graded rollouts with K samples each, m_i the mean of rollout i's samples and v_i their sample variance
(ddof=1):

- noise variance  N = mean(v_i): the judge's single-sample variance (unbiased for each rollout);
- signal variance S = max(0, var(m_i, ddof=1) - N / K): the variance of the rollouts' true scores, without
  the bias of the means' own noise (E[var(m_i)] = S + N / K). For pure noise (every rollout the same true
  score) the unfloored estimate has expectation exactly 0; the floor at 0 keeps the reported value >= 0,
  so pure noise reads slightly above 0 on average over groups (a few hundredths at n = 8, K = 4);
- reliability r1 = S / (S + N): the share of one sample's variance that is signal (1 with no measured noise
  and some signal; null with neither);
- reliability of the K-sample mean (Spearman-Brown) rK = S / (S + N / K) = K r1 / (1 + (K - 1) r1);
- K needed to reach a target T (0.8): K* = ceil(T (1 - r1) / (r1 (1 - T))); 1 when r1 >= T, null when
  r1 = 0 (no K reaches it).

S is the variance of the population the rollouts are drawn from (ddof=1), not the group's own (ddof=0, as GRPO
normalises): on n rollouts the latter is (n - 1)/n of it.

With `--samples auto` K varies by rollout (k_i): N pools the variances over the rollouts with k_i >= 2
(weights k_i - 1; the mean when K is equal), means count every rollout, E[var(m_i)] = S + mean(N / k_i), so
S = max(0, var(m_i) - mean(N / k_i)) and the reliability of the rewards given is S / (S + mean(N / k_i)):
Spearman-Brown at the harmonic mean of the k_i.

Penalised rollouts have exact rewards and no judge noise: they are left out of every estimate here and counted
(`n_penalized`); rollouts in error have no reward and are left out too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, variance

# Spearman-Brown lives with the summary (reward.core may not import reward.rubric); one copy, used here too.
from reward.core.summary import TARGET, k_needed, spearman_brown

__all__ = ["TARGET", "Reliability", "estimate", "from_moments", "k_needed", "spearman_brown"]


@dataclass(frozen=True)
class Reliability:
    signal_var: float | None  # S, unbiased, floored at 0
    noise_var: float | None  # N, mean single-sample variance
    reliability: float | None  # r1
    reliability_k: float | None  # of the mean of K samples
    k_needed: int | None  # K for r >= target; null when r1 is 0 or unknown


def pooled(variances: Sequence[float], ks: Sequence[int]) -> float:
    """The pooled single-sample variance of rollouts sampled k_i >= 2 times: weights k_i - 1 (the plain mean,
    computed as such, when every k_i is the same)."""
    if len(set(ks)) == 1:
        return fmean(variances)
    return sum((k - 1) * v for v, k in zip(variances, ks, strict=True)) / sum(k - 1 for k in ks)


def estimate(samples: Sequence[Sequence[float]], target: float = TARGET) -> Reliability:
    """Reliability from each rollout's samples: at least 2 rollouts, at least one sampled twice (K may vary)."""
    if len(samples) < 2 or any(len(s) < 1 for s in samples) or all(len(s) < 2 for s in samples):
        return Reliability(None, None, None, None, None)
    means = [fmean(s) for s in samples]
    multi = [s for s in samples if len(s) >= 2]
    noise = pooled([variance(s) for s in multi], [len(s) for s in multi])
    return from_moments(means, noise, [len(s) for s in samples], target)


def from_moments(means: Sequence[float], noise: float, k: int | Sequence[int], target: float = TARGET) -> Reliability:
    """Reliability from the rollouts' means, the pooled single-sample variance `noise` and the samples each
    mean is of (one K for all, or one per rollout)."""
    ks = [k] * len(means) if isinstance(k, int) else list(k)
    if len(means) < 2 or max(ks) < 2:
        return Reliability(None, noise, None, None, None)
    # harmonic mean, so noise / k_eff = mean(noise / k_i); K itself when equal (exactly, as before)
    k_eff = float(ks[0]) if len(set(ks)) == 1 else len(ks) / sum(1 / x for x in ks)
    signal = max(0.0, variance(means) - noise / k_eff)
    if signal + noise <= 0:
        return Reliability(signal, noise, None, None, None)
    r1 = signal / (signal + noise)
    return Reliability(signal, noise, r1, spearman_brown(r1, k_eff), k_needed(r1, target))
