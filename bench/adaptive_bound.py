"""How well can any rule that spends extra samples do? Bounds for `--samples auto`'s pairwise-agreement target.

bench/adaptive_sampling.py measures the shipped rule through the real scorer. This one asks what is possible at
all, in the model the fake judge of known noise (FakeNoise) implements, with no scorer in the way: a group of
`size` rollouts whose true rewards are Gaussian (signal variance 1), each sample adding Gaussian noise of the
variance that gives the fake's single-sample reliability at that sd (FakeNoise.nominal_reliability), and the
score of a rollout being the mean of its samples (what K samples give). The measure is bench/adaptive_sampling's:
the share of within-group pairs ordered as a K = 16 run orders them. Per noise level:

- k1, k3: every rollout gets 1 or 3 samples (exact expectations);
- static: the best allocation of `extra` samples per group for that group's true rewards, found by trying every
  allocation (exact expectations). It knows the true values, which no rule does: an upper bound for every rule
  that decides how many samples a rollout gets before seeing them;
- bayes_kg: the knowledge-gradient rule (a Gaussian prior on the true rewards, the noise known exactly, each extra
  sample where it raises the expected number of correctly ordered pairs the most; the standard near-optimal rule
  for ranking under a sampling budget), ordering by posterior means (Monte Carlo). It sees only the samples, as
  a real rule does, and is given the noise a real rule must estimate.

    python bench/adaptive_bound.py [--sd 0.5 1 1.5 2.5] [--size 8] [--extra 5] [--reps 300] [--seed 0]

With --size 8 and --extra 5, every group spends 13 samples: 1.625x the calls of K = 1, above the target's 1.6x.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reward.judge.fake.replies import FakeNoise  # noqa: E402

REFERENCE_K = 16
# Gauss-Hermite nodes (probabilists'), for the expectation over the next sample's value
NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
WEIGHTS = WEIGHTS / WEIGHTS.sum()


def phi(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF (numpy has no erf; math.erf elementwise)."""
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x, dtype=float) / math.sqrt(2.0)))


def expected_agreement(t: np.ndarray, k: np.ndarray, noise_var: float) -> np.ndarray:
    """Expected share of pairs a sample-mean ranking with k[..., i] samples orders as the reference run does.
    k may carry leading axes (one allocation per row)."""
    i, j = np.triu_indices(t.shape[-1], 1)
    gap = np.abs(t[i] - t[j])
    mine = phi(gap / np.sqrt(noise_var * (1.0 / k[..., i] + 1.0 / k[..., j])))
    ref = phi(gap / np.sqrt(noise_var * 2.0 / REFERENCE_K))
    return (mine * ref + (1 - mine) * (1 - ref)).mean(axis=-1)


def allocations(size: int, extra: int) -> np.ndarray:
    """Every way to give `extra` more samples to `size` rollouts (each keeps its first): rows of per-rollout K."""
    rows = []
    for bars in itertools.combinations(range(extra + size - 1), size - 1):
        edges = (-1, *bars, extra + size - 1)
        rows.append([edges[b + 1] - edges[b] - 1 for b in range(size)])
    return 1 + np.array(rows)


def bayes_kg(t: np.ndarray, noise_var: float, extra: int, rng: np.random.Generator) -> np.ndarray:
    """Posterior means after the knowledge-gradient rule spent `extra` samples (prior N(0, 1), noise known)."""
    n = t.size
    i_idx, j_idx = np.triu_indices(n, 1)
    sums = t + rng.normal(size=n) * math.sqrt(noise_var)
    ks = np.ones(n)

    def posterior() -> tuple[np.ndarray, np.ndarray]:
        var = 1.0 / (1.0 + ks / noise_var)
        return var * sums / noise_var, var

    def correct(mu: np.ndarray, var: np.ndarray) -> np.ndarray:  # expected correctly ordered pairs, per row
        gap = np.abs(mu[..., i_idx] - mu[..., j_idx])
        return phi(gap / np.sqrt(var[..., i_idx] + var[..., j_idx])).sum(axis=-1)

    for _ in range(extra):
        mu, var = posterior()
        gains = []
        for i in range(n):
            after = 1.0 / (1.0 / var[i] + 1.0 / noise_var)
            mus = np.repeat(mu[None, :], NODES.size, axis=0)
            mus[:, i] = mu[i] + math.sqrt(max(var[i] - after, 0.0)) * NODES  # the new posterior mean's law
            var2 = var.copy()
            var2[i] = after
            gains.append(float(WEIGHTS @ correct(mus, np.repeat(var2[None, :], NODES.size, axis=0))))
        pick = int(np.argmax(gains))
        sums[pick] += t[pick] + rng.normal() * math.sqrt(noise_var)
        ks[pick] += 1
    return posterior()[0]


def agreement(scores: np.ndarray, reference: np.ndarray) -> float:
    i, j = np.triu_indices(scores.size, 1)
    return float(np.mean((scores[i] > scores[j]) == (reference[i] > reference[j])))


def measure(sd: float, size: int, extra: int, reps: int, seed: int) -> dict[str, float]:
    rho = FakeNoise(sd=sd).nominal_reliability()
    noise_var = (1 - rho) / rho  # signal variance 1
    rng = np.random.default_rng(seed)
    table = allocations(size, extra)
    rows: dict[str, list[float]] = {"k1": [], "k3": [], "static": [], "bayes_kg": []}
    for _ in range(reps):
        t = rng.normal(size=size)
        rows["k1"].append(float(expected_agreement(t, np.ones(size), noise_var)))
        rows["k3"].append(float(expected_agreement(t, np.full(size, 3.0), noise_var)))
        rows["static"].append(float(expected_agreement(t, table.astype(float), noise_var).max()))
        reference = t + rng.normal(size=size) * math.sqrt(noise_var / REFERENCE_K)
        rows["bayes_kg"].append(agreement(bayes_kg(t, noise_var, extra, rng), reference))
    return {"reliability": round(rho, 3), **{k: round(float(np.mean(v)), 3) for k, v in rows.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sd", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.5])
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--extra", type=int, default=5, help="extra samples per group (5 of 8: 1.625x K = 1)")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = {}
    calls = (args.size + args.extra) / args.size
    for sd in args.sd:
        out[str(sd)] = m = measure(sd, args.size, args.extra, args.reps, args.seed)
        print(
            f"sd {sd:>4} (reliability {m['reliability']:.3f}): agreement with K=16: k1 {m['k1']:.3f}, "
            f"k3 {m['k3']:.3f} (3x), best static allocation knowing the truth {m['static']:.3f} ({calls:.3f}x), "
            f"bayes knowledge-gradient {m['bayes_kg']:.3f} ({calls:.3f}x)",
            flush=True,
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
