"""Several runs at once (a sweep over a constant, a set of rewordings): each compared against the first.

Against one baseline every point of a sweep is read on the same footing (the change from A), which is what a
sweep asks; all pairs would grow as N² and say the same thing less directly. Two runs are the plain
comparison (`Comparison`); more are a `Sweep` of them with a one-row-per-run summary.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from reward.analysis.compare import Comparison, compare_runs, mean_tau
from reward.analysis.compare_runs import RunInfo, attach_rubrics, run_info, run_label
from reward.analysis.scored import ScoredGroup
from reward.rubric.load import Rubric


class SweepRow(BaseModel):
    run: str  # the label of the run compared with the baseline
    mean_tau: float | None
    advantage_sign_flips: int
    mean_a: float | None  # mean reward over rollouts with a reward in both
    mean_b: float | None
    reward_delta: float | None
    noise_se: float | None
    within_noise: bool | None
    scores_moved: int  # graded-in-both rollouts with a dimension score that changed
    changed: list[str]  # what differs from the baseline (rubric fields and recorded fields)


class Sweep(BaseModel):
    runs: list[RunInfo]
    baseline: str
    summary: list[SweepRow]
    comparisons: list[Comparison]  # the baseline against each other run, in the order given


def summary_row(c: Comparison) -> SweepRow:
    rc = c.reward_change
    return SweepRow(
        run=c.runs[1].label,
        mean_tau=mean_tau(c),
        advantage_sign_flips=sum(g.advantage_sign_flips for g in c.groups),
        mean_a=rc.mean_a,
        mean_b=rc.mean_b,
        reward_delta=rc.delta,
        noise_se=rc.noise_se,
        within_noise=rc.within_noise,
        scores_moved=rc.scores_moved,
        changed=list(dict.fromkeys(ch.what for ch in c.rubric_changes)),
    )


def compare_all(
    loaded: list[tuple[Path, list[ScoredGroup]]], given: list[Rubric], top: int = 10
) -> tuple[list[RunInfo], list[Comparison], list[str]]:
    """The runs named, the baseline (the first) compared with each other run, and warnings about rubrics
    given that match no run."""
    runs = [run_info(run_label(i), path, groups) for i, (path, groups) in enumerate(loaded)]
    specs, warnings = attach_rubrics(runs, given)
    base_groups = loaded[0][1]
    comparisons = [
        compare_runs(base_groups, groups, top=top, runs=(runs[0], runs[i]), specs=(specs[0], specs[i]))
        for i, (_, groups) in enumerate(loaded)
        if i > 0
    ]
    return runs, comparisons, warnings


def sweep(runs: list[RunInfo], comparisons: list[Comparison]) -> Sweep:
    return Sweep(
        runs=runs, baseline=runs[0].label, summary=[summary_row(c) for c in comparisons], comparisons=comparisons
    )
