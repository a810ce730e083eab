"""Finishing a rollout and a group from their judgements: one function each, used by the scorer (after a paid
run) and by `reward rescore` (from a saved file), so "the same numbers as a paid re-run" rests on one copy.

Also the one precedence of K (verdicts per rollout): flag, then REWARD_JUDGE_SAMPLES, then the rubric; the
same for max_samples (the most one rollout gets with K auto).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reward.core.group_stats import group_stats
from reward.core.results import Basis, RolloutResult
from reward.rubric.formula import graded_reward, legacy_fields
from reward.rubric.load import Rubric
from reward.rubric.noise import Sample, combine_samples, group_noise
from reward.rubric.score_maps import apply_score_maps
from reward.rubric.verdict import DimensionScore
from reward.settings import setting

K = int | Literal["auto"]


@dataclass(frozen=True)
class Sampling:
    """How many verdicts a rollout gets: a fixed K, or auto (one, more where unsure, up to max_samples)."""

    samples: K
    max_samples: int
    resample_condense: bool

    @property
    def auto(self) -> bool:
        return self.samples == "auto"

    @property
    def fixed(self) -> int:
        """Samples every graded rollout surely gets: K, or 1 with auto."""
        return 1 if self.samples == "auto" else self.samples

    @property
    def most(self) -> int:
        """Samples one rollout may get: K, or max_samples with auto."""
        return self.max_samples if self.samples == "auto" else self.samples


def parse_samples(value: Any) -> K | None:
    """--samples as typed: a positive integer or auto (None: not given)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"samples must be a positive integer or auto, got {value!r}") from None
    if not 1 <= k <= 32:
        raise ValueError(f"samples must be between 1 and 32 (or auto), got {k}")
    return k


def no_auto(rubric: str, mode: str) -> str:
    """Why `--samples auto` is refused with a group or pairwise grading stage: its rule draws one more verdict of
    single rollouts, which these stages never ask for (a K is one request per group or pair and sample)."""
    return (
        f"rubric {rubric} grades with grading.mode {mode}: --samples auto draws more samples of single rollouts "
        "and is not supported there (use a fixed --samples K)"
    )


def sampling(
    rubric: Rubric,
    samples: K | None = None,
    resample_condense: bool | None = None,
    max_samples: int | None = None,
) -> Sampling:
    """K, max_samples and resample_condense as a run uses them: a flag, then the environment, then the rubric."""
    judge = rubric.spec.judge
    env: K | None = setting("judge_samples")
    k: K = samples or env or judge.samples
    if k == "auto" and samples is None and env == "auto" and rubric.spec.grading.mode in ("group", "pairwise"):
        # REWARD_JUDGE_SAMPLES is process-wide (every rubric a server loads): a rubric that cannot sample
        # adaptively keeps its own K (recorded in each group's basis); a flag or the rubric asking for auto is refused
        k = judge.samples
    most = int(max_samples or setting("judge_max_samples") or judge.max_samples)
    resample = judge.resample_condense if resample_condense is None else resample_condense
    if k == "auto" and rubric.spec.grading.mode in ("group", "pairwise"):
        raise ValueError(no_auto(rubric.name, rubric.spec.grading.mode))
    if k == "auto" and most < 2:  # max_samples means nothing to a fixed K
        raise ValueError(f"max_samples must be at least 2, got {most}")
    return Sampling(k if k == "auto" else int(k), most, resample)


def expected_basis(rubric: Rubric, samples: K, resample_condense: bool, max_samples: int | None = None) -> Basis:
    """The basis of a group scored with `rubric` and K = `samples` verdicts per rollout (auto: up to
    `max_samples`)."""
    spec = rubric.spec
    auto = samples == "auto"
    return Basis(
        prompt_version=rubric.prompt_version,
        penalties=spec.penalties.enabled(),
        max_tokens=spec.penalties.max_tokens,
        samples=samples,
        resample_condense=resample_condense and (auto or int(samples) > 1),  # one sample condenses once
        overrides=list(rubric.overrides) or None,  # `--set`: recorded wherever a scorer is built (serve too)
        max_samples=max_samples if auto else None,
        score_maps=True if spec.score_maps else None,
    )


def sample_rewards(rubric: Rubric, samples: Sequence[Sample]) -> list[float]:
    """The reward of each verdict sample on its own (what adaptive sampling compares)."""
    mapped = apply_score_maps(rubric.spec.score_maps, list(samples))
    return [graded_reward(rubric.spec, {n: DimensionScore(s, r) for n, (s, r) in x.items()})[0] for x in mapped]


def graded_fields(rubric: Rubric, samples: Sequence[Sample]) -> dict[str, Any]:
    """What a graded rollout's K verdict samples make of it: reward, dimensions, group means, spread."""
    samples = apply_score_maps(rubric.spec.score_maps, list(samples))
    dims, reward, means, reward_std = combine_samples(rubric.spec, samples)
    return {
        "reward": reward,
        "dimensions": dims,
        "groups": means,
        "reward_std": reward_std,
        "s_pos": None,
        "s_pit": None,
        "s_fa": None,
        **legacy_fields(means),
    }


def group_fields(rubric: Rubric, rollouts: Sequence[RolloutResult], samples: K) -> dict[str, Any]:
    """A group's statistics over its finished rollouts; sets each rollout's advantage."""
    spec = rubric.spec
    stats = group_stats([r.reward for r in rollouts], spec.group_filter.min_std, spec.group_filter.advantage_eps)
    for r, advantage in zip(rollouts, stats.advantages, strict=True):
        r.advantage = advantage
    return {
        "rubric": rubric.name,
        "rubric_version": rubric.version,
        "mean": stats.mean,
        "std": stats.std,
        "n_scored": stats.n_scored,
        "filtered": stats.filtered,
        "filter_reason": stats.filter_reason,
        "noise": group_noise(rollouts, samples),
    }
