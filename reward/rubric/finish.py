"""Finishing a rollout and a group from their judgements: one function each, used by the scorer (after a paid
run) and by `reward rescore` (from a saved file), so "the same numbers as a paid re-run" rests on one copy.

Also the one precedence of K (verdicts per rollout): flag, then REWARD_JUDGE_SAMPLES, then the rubric.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward.core.group_stats import group_stats
from reward.core.results import Basis, RolloutResult
from reward.rubric.formula import legacy_fields
from reward.rubric.load import Rubric
from reward.rubric.noise import Sample, combine_samples, group_noise
from reward.rubric.score_maps import apply_score_maps
from reward.settings import setting


def sampling(rubric: Rubric, samples: int | None = None, resample_condense: bool | None = None) -> tuple[int, bool]:
    """K and resample_condense as a run uses them: a flag, then the environment, then the rubric."""
    judge = rubric.spec.judge
    k = int(samples or setting("judge_samples") or judge.samples)
    return k, judge.resample_condense if resample_condense is None else resample_condense


def expected_basis(rubric: Rubric, samples: int, resample_condense: bool) -> Basis:
    """The basis of a group scored with `rubric` and K = `samples` verdicts per rollout."""
    spec = rubric.spec
    return Basis(
        prompt_version=rubric.prompt_version,
        penalties=spec.penalties.enabled(),
        max_tokens=spec.penalties.max_tokens,
        samples=samples,
        resample_condense=resample_condense and samples > 1,  # one sample condenses once either way
        overrides=list(rubric.overrides) or None,  # `--set`: recorded wherever a scorer is built (serve too)
    )


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


def group_fields(rubric: Rubric, rollouts: Sequence[RolloutResult], samples: int) -> dict[str, Any]:
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
