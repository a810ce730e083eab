"""Compare scored runs of the same rollouts (a rubric change, a judge change): pure functions.

GRPO sees only the order of rewards within a group, so the headline per group is Kendall's tau-b between
the two runs' rewards of the rollouts graded in both, and how many advantages changed sign; groups come
most disagreeing first. The same tau per dimension (within groups, averaged) shows which dimensions the
judge now orders differently, e.g. the two whose descriptions were reworded. Why the mean reward moved is
split by dimension in reward.analysis.compare_effects; what each run is and what changed between the
rubrics, in reward.analysis.compare_runs. Several runs are compared each against the first.
"""

from __future__ import annotations

import math
from statistics import fmean, pstdev

from pydantic import BaseModel

from reward.analysis.compare_effects import DimensionAgreement, RewardChange, Splitter, move_se, reward_change, within
from reward.analysis.compare_kendall import kendall_tau, sign_flips
from reward.analysis.compare_runs import RubricChange, RunInfo, reworded, rubric_changes, run_info
from reward.analysis.scored import ScoredGroup, ScoredRollout
from reward.rubric.spec import RubricSpec


class GroupComparison(BaseModel):
    group_id: str
    n: int  # rollouts graded (status ok) in both runs: what tau is computed over
    kendall_tau: float | None
    advantage_sign_flips: int
    mean_a: float | None  # the group's recorded mean and std in each run
    mean_b: float | None
    std_a: float | None
    std_b: float | None
    noise_se: float | None  # root mean square of its graded rollouts' move standard errors
    within_noise: bool | None  # every graded move within the judge's noise: a reordering may be noise


class DimensionComparison(BaseModel):
    mean_a: float | None
    mean_b: float | None
    sd_a: float | None  # population SD over the rollouts graded in that run
    sd_b: float | None
    only_in: str | None = None  # the run label when one run has no such dimension (added or removed)
    reworded: bool = False  # its description or anchors (what the judge reads) changed between the rubrics
    tau: float | None = None  # Kendall tau of its scores, within groups, averaged over groups where defined
    tau_groups: int = 0  # groups the mean tau is over
    matched: int = 0  # rollouts graded in both with this dimension in both
    changed: int = 0  # of them, those whose score changed
    mean_change: float | None = None  # mean score change over the matched rollouts (B - A)
    noise_se: float | None = None  # its standard error from the samples' std (K > 1)
    within_noise: bool | None = None
    contribution: float | None = None  # its part of the mean reward change (reward_change.by_dimension)


class Moved(BaseModel):
    group_id: str
    id: str
    reward_a: float
    reward_b: float
    delta: float
    cause: str  # "dimension scores", "formula side (no dimension score moved)", "penalty value", ...
    dimension: str | None  # the dimension that moved the reward most, with both runs' reasons
    contribution: float | None  # its part of this rollout's reward change (None: no rubric to split with)
    score_a: float | None
    score_b: float | None
    reason_a: str | None
    reason_b: str | None
    noise_se: float | None
    within_noise: bool | None


class Change(BaseModel):
    group_id: str
    id: str | None  # None for a group-level change (the filter)
    a: str | None
    b: str | None
    detail: str | None = None  # e.g. the group's reward std in each run for a filter change


class Changes(BaseModel):
    penalty: list[Change]
    error: list[Change]
    filter: list[Change]


class Unmatched(BaseModel):
    only_a: int  # rollouts (by group_id, id) present in one run only
    only_b: int


class Comparison(BaseModel):
    runs: list[RunInfo]  # [A, B]: what each run is
    noise: str  # how the judge's noise is known: "measured in both", "measured in A only", "unknown"
    groups: list[GroupComparison]  # most disagreement (lowest tau) first; undefined tau last
    dimensions: dict[str, DimensionComparison]
    reward_change: RewardChange
    rubric_changes: list[RubricChange]
    moved: list[Moved]
    changes: Changes
    unmatched: Unmatched


def _cause(ra: ScoredRollout, rb: ScoredRollout, labels: tuple[str, str]) -> str | None:
    if ra.status == "ok" and rb.status == "ok":
        return None
    if ra.status == rb.status:
        return "penalty value" if ra.penalty == rb.penalty else "penalty kind"
    return f"{ra.status} in {labels[0]}, {rb.status} in {labels[1]}"


def _moved(
    group_id: str,
    ra: ScoredRollout,
    rb: ScoredRollout,
    splitter: Splitter | None,
    ks: tuple[int | None, int | None],
    labels: tuple[str, str],
) -> Moved | None:
    if ra.reward is None or rb.reward is None:
        return None
    da, db = ra.dimensions or {}, rb.dimensions or {}
    common = [d for d in da if d in db and db[d].score != da[d].score]
    cause = _cause(ra, rb, labels)
    parts = splitter.parts(ra, rb) if splitter is not None and cause is None else None
    delta = rb.reward - ra.reward
    if parts:
        # The part that moved the reward the way it went, largest first (not one the others outweighed).
        dim: str | None = max(parts, key=lambda d: (parts[d] * delta > 0, abs(parts[d])))
    else:
        dim = max(common, key=lambda d: abs(db[d].score - da[d].score), default=None) if cause is None else None
    if cause is None:
        cause = "dimension scores" if common else "formula side (no dimension score moved)"
    se = move_se(ra, rb, *ks)
    return Moved(
        group_id=group_id,
        id=ra.id,
        reward_a=ra.reward,
        reward_b=rb.reward,
        delta=delta,
        cause=cause,
        dimension=dim,
        contribution=parts.get(dim) if parts and dim else None,
        score_a=da[dim].score if dim else None,
        score_b=db[dim].score if dim else None,
        reason_a=da[dim].reason if dim else None,
        reason_b=db[dim].reason if dim else None,
        noise_se=se,
        within_noise=within(delta, se),
    )


def _dimension_stats(rollouts: list[ScoredRollout]) -> dict[str, tuple[float, float]]:
    scores: dict[str, list[float]] = {}
    for r in rollouts:
        if r.status == "ok":
            for name, d in (r.dimensions or {}).items():
                scores.setdefault(name, []).append(d.score)
    return {name: (fmean(v), pstdev(v)) for name, v in scores.items()}


def _penalty_change(group_id: str, ra: ScoredRollout, rb: ScoredRollout) -> Change | None:
    def show(r: ScoredRollout) -> str | None:
        return None if r.penalty is None else f"{r.penalty} ({r.reward:g})" if r.reward is not None else r.penalty

    value_moved = ra.penalty is not None and ra.reward != rb.reward
    if ra.penalty != rb.penalty or value_moved:
        return Change(group_id=group_id, id=ra.id, a=show(ra), b=show(rb))
    return None


def _std(x: float | None) -> str:
    return "-" if x is None else format(x, ".4g")


def _noise_note(ra: RunInfo, rb: RunInfo, measured: tuple[bool, bool]) -> str:
    if all(measured):
        return "measured in both runs"
    if any(measured):
        which, other = (ra, rb) if measured[0] else (rb, ra)
        return f"measured in {which.label} only (K = {which.samples}); {other.label} assumed as noisy"
    return "unknown: one sample per rollout in both runs (score with --samples K to measure it)"


def compare_runs(
    a: list[ScoredGroup],
    b: list[ScoredGroup],
    top: int = 10,
    runs: tuple[RunInfo, RunInfo] | None = None,
    specs: tuple[RubricSpec | None, RubricSpec | None] = (None, None),
) -> Comparison:
    """Join by (group_id, rollout id). `runs` name the two runs (built from the groups when not given);
    `specs` are their rubrics when known (the formula side, for the split of the reward change)."""
    ra_info, rb_info = runs or (run_info("A", None, a), run_info("B", None, b))
    ks = (ra_info.samples, rb_info.samples)
    splitter: Splitter | None = None
    if specs[0] is not None:
        splitter = Splitter(specs[0], True, ra_info.label)
    elif specs[1] is not None:
        splitter = Splitter(specs[1], False, rb_info.label)
    b_by_id = {g.group_id: g for g in b}
    a_ids = {g.group_id for g in a}
    groups: list[GroupComparison] = []
    moved: list[Moved] = []
    changes = Changes(penalty=[], error=[], filter=[])
    matched_a: list[ScoredRollout] = []
    matched_b: list[ScoredRollout] = []
    all_pairs: list[tuple[ScoredRollout, ScoredRollout]] = []
    dims = DimensionAgreement()
    only_a = sum(len(g.rollouts) for g in a if g.group_id not in b_by_id)
    only_b = sum(len(g.rollouts) for g in b if g.group_id not in a_ids)
    for ga in a:
        gb = b_by_id.get(ga.group_id)
        if gb is None:
            continue
        rb_by_id = {r.id: r for r in gb.rollouts}
        pairs = [(ra, rb_by_id[ra.id]) for ra in ga.rollouts if ra.id in rb_by_id]
        only_a += len(ga.rollouts) - len(pairs)
        only_b += len(gb.rollouts) - len(pairs)
        graded = [(ra, rb) for ra, rb in pairs if ra.status == "ok" and rb.status == "ok"]
        dims.add_group(graded)
        tau = kendall_tau([ra.reward or 0.0 for ra, _ in graded], [rb.reward or 0.0 for _, rb in graded])
        flips = sign_flips([ra.advantage for ra, _ in pairs], [rb.advantage for _, rb in pairs])
        ses = [move_se(ra, rb, *ks) for ra, rb in graded]
        known = [s for s in ses if s is not None]
        group_se = math.sqrt(fmean(s * s for s in known)) if known and len(known) == len(ses) else None
        noisy = [within((rb.reward or 0.0) - (ra.reward or 0.0), s) for (ra, rb), s in zip(graded, ses, strict=True)]
        groups.append(
            GroupComparison(
                group_id=ga.group_id,
                n=len(graded),
                kendall_tau=tau,
                advantage_sign_flips=flips,
                mean_a=ga.mean,
                mean_b=gb.mean,
                std_a=ga.std,
                std_b=gb.std,
                noise_se=group_se,
                within_noise=all(noisy) if group_se is not None and noisy else None,
            )
        )
        if ga.filtered != gb.filtered:
            detail = f"reward std {_std(ga.std)} -> {_std(gb.std)}"
            show = {True: "filtered", False: "kept"}
            changes.filter.append(
                Change(group_id=ga.group_id, id=None, a=show[ga.filtered], b=show[gb.filtered], detail=detail)
            )
        for ra, rb in pairs:
            matched_a.append(ra)
            matched_b.append(rb)
            all_pairs.append((ra, rb))
            penalty = _penalty_change(ga.group_id, ra, rb)
            if penalty is not None:
                changes.penalty.append(penalty)
            ea = ra.error.category if ra.error else None
            eb = rb.error.category if rb.error else None
            if ea != eb:
                changes.error.append(Change(group_id=ga.group_id, id=ra.id, a=ea, b=eb))
            m = _moved(ga.group_id, ra, rb, splitter, ks, (ra_info.label, rb_info.label))
            if m is not None and m.delta != 0:
                moved.append(m)
    # Largest first; a tie (e.g. many rollouts moved by one constant) keeps file order.
    moved.sort(key=lambda m: -abs(m.delta))
    # Most disagreement first: the lowest tau, then the most sign flips; undefined tau last.
    order = sorted(groups, key=lambda g: (g.kendall_tau is None, g.kendall_tau or 0.0, -g.advantage_sign_flips))
    change = reward_change(all_pairs, splitter, ks)
    rubric_diff = rubric_changes(ra_info, rb_info, *specs)
    changed_text = reworded(rubric_diff)
    stats_a, stats_b = _dimension_stats(matched_a), _dimension_stats(matched_b)
    names = list(stats_a) + [n for n in stats_b if n not in stats_a]
    dimensions: dict[str, DimensionComparison] = {}
    for n in names:
        d = DimensionComparison(
            mean_a=stats_a[n][0] if n in stats_a else None,
            mean_b=stats_b[n][0] if n in stats_b else None,
            sd_a=stats_a[n][1] if n in stats_a else None,
            sd_b=stats_b[n][1] if n in stats_b else None,
            only_in=None if n in stats_a and n in stats_b else (ra_info.label if n in stats_a else rb_info.label),
            reworded=n in changed_text,
            contribution=change.by_dimension.get(n, 0.0 if change.by_dimension or change.formula is not None else None),
        )
        dimensions[n] = d.model_copy(update=dims.fields(n, ks))
    measured = (
        any(r.reward_std is not None for r in matched_a),
        any(r.reward_std is not None for r in matched_b),
    )
    return Comparison(
        runs=[ra_info, rb_info],
        noise=_noise_note(ra_info, rb_info, measured),
        groups=order,
        dimensions=dimensions,
        reward_change=change,
        rubric_changes=rubric_diff,
        moved=moved[:top],
        changes=changes,
        unmatched=Unmatched(only_a=only_a, only_b=only_b),
    )


def mean_tau(c: Comparison) -> float | None:
    taus = [g.kendall_tau for g in c.groups if g.kendall_tau is not None]
    return fmean(taus) if taus else None
