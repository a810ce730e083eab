"""Recompute rewards from a saved output: no judge call, the same numbers as a paid re-run.

A scored group records its basis: the rubric's prompt version (everything a judge request contains) and
the penalty checks that decided which rollouts were graded. When the new rubric has the same basis, its
judgements would be the cached ones, so the saved dimension scores are all a re-run would use: rewards,
group statistics, advantages and noise are recomputed from them with the new formula, constants, weights,
penalty values, reward scale and group filter. K (verdicts per rollout) is the group's own: rescoring reuses
judgements and cannot change how many there were, so it is read from the basis, never asked for again.

A group scored with `--samples auto` is replayed: the rule (reward.rubric.adaptive) runs again on the saved
samples with the new rubric's rewards, as a paid re-run would on its cached ones; it keeps a prefix of each
rollout's samples, and a group for which it would ask for a sample the file does not hold needs `reward score`
(a group whose rounds stopped on a failed extra sample stops again where the file's samples end).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from reward.core.results import Basis, CriterionInfo, GroupResult, RolloutResult, SamplingInfo
from reward.errors import RewardError
from reward.rubric.adaptive import STOPS, replay, units_of
from reward.rubric.finish import K, expected_basis, graded_fields, group_fields, sample_rewards
from reward.rubric.load import Rubric
from reward.rubric.noise import Sample
from reward.rubric.overrides import recorded
from reward.rubric.verdict import logprob_mode
from reward.settings import MAX_SAMPLES


class RescoreError(RewardError):
    """A saved group whose judgements the new rubric would not reuse: it needs `reward score`."""


def file_sampling(group: GroupResult, samples: K | None, resample_condense: bool | None) -> tuple[K, bool]:
    """K and resample_condense of a rescore: what the group was graded with (its basis), since rescoring
    cannot change how often a rollout was judged. An explicit value that differs is refused, naming both."""
    saved = group.basis
    where = f"group {group.group_id!r}"
    if saved is None:
        raise RescoreError(f"{where} was written without its scoring basis (an older version): use `reward score`")
    if samples is not None and samples != saved.samples:
        raise RescoreError(
            f"{where} was graded with {saved.samples} sample(s) per rollout, not the {samples} asked for: "
            f"rescore reuses saved judgements and cannot change K (leave --samples out to use the file's K, "
            f"or run `reward score --samples {samples}`)"
        )
    resample = saved.resample_condense if resample_condense is None else resample_condense
    if (saved.samples == "auto" or saved.samples > 1) and resample != saved.resample_condense:
        raise RescoreError(
            f"{where} was graded with resample_condense {saved.resample_condense}, not {resample}: rescore cannot "
            "condense anew (leave --resample-condense out to use the file's, or use `reward score`)"
        )
    return saved.samples, resample


def check_basis(group: GroupResult, rubric: Rubric, samples: K, resample_condense: bool) -> Basis:
    saved = group.basis
    where = f"group {group.group_id!r}"
    if saved is None:
        raise RescoreError(f"{where} was written without its scoring basis (an older version): use `reward score`")
    most = saved.max_samples
    if samples == "auto" and not (isinstance(most, int) and 2 <= most <= MAX_SAMPLES):
        raise RescoreError(
            f"{where} was scored with --samples auto but its basis gives max_samples {most!r}, not a number of "
            f"samples from 2 to {MAX_SAMPLES}: the file is damaged or edited; use `reward score`"
        )
    basis = recorded(expected_basis(rubric, samples, resample_condense, most), rubric)
    if saved.prompt_version != basis.prompt_version:
        raise RescoreError(
            f"{where} was judged with prompt version {saved.prompt_version}, but {rubric.path.name} asks the judge "
            f"differently (prompt version {basis.prompt_version}: templates, dimensions, groups, scale, inputs or "
            "judge settings changed); the saved scores do not answer its prompts: use `reward score`"
        )
    if saved.score_maps:
        raise RescoreError(
            f"{where} holds scores mapped onto another judge's scale (its rubric's score_maps), not the judge's "
            "own: rescoring would map them again; rescore the run scored without the maps, or use `reward score`"
        )
    if saved.penalties != basis.penalties or saved.max_tokens != basis.max_tokens:
        raise RescoreError(
            f"{where} was scored with penalty checks {saved.penalties} at {saved.max_tokens} tokens, "
            f"{rubric.path.name} checks {basis.penalties} at {basis.max_tokens}: which rollouts are graded at all "
            "may differ: use `reward score`"
        )
    if (saved.samples, saved.resample_condense) != (basis.samples, basis.resample_condense):
        raise RescoreError(
            f"{where} was graded with {saved.samples} sample(s) per rollout (resample_condense "
            f"{saved.resample_condense}), a re-run would use {basis.samples} ({basis.resample_condense}): "
            "use `reward score`"
        )
    return basis


def _check_scores(samples: list[Sample], rubric: Rubric, where: str, expectations: bool = False) -> None:
    """A saved file is input like any other: a score the judge could not have given (NaN, out of range, a
    fraction on an integer scale unless it is a logprob expectation) is refused, never turned into a reward."""
    scale = rubric.spec.scale
    fractions = scale.kind == "number" or expectations
    for sample in samples:
        for name, (score, _) in sample.items():
            ok = isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)
            ok = ok and scale.min <= score <= scale.max and (fractions or float(score).is_integer())
            if not ok:
                raise RescoreError(f"{where}: {name} = {score!r} is not a score on the scale {scale.min}..{scale.max}")


def _samples(r: RolloutResult, where: str, keep: int | None = None) -> list[Sample]:
    assert r.dimensions is not None
    dims = r.dimensions
    lengths = {len(d.samples) if d.samples is not None else 1 for d in dims.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise RescoreError(f"{where}: its dimensions hold different numbers of samples ({sorted(lengths)})")
    (k,) = lengths
    k = k if keep is None else min(k, keep)
    # Sample i is samples[i] (a prefix, when the replay keeps fewer, starts at sample 0, never the mean); only
    # the first sample's reason is kept in an output; reasons never enter a reward.
    return [
        {n: (d.samples[i] if d.samples else d.score, d.reason if i == 0 else "") for n, d in dims.items()}
        for i in range(k)
    ]


def _rescore_rollout(r: RolloutResult, rubric: Rubric, where: str, keep: int | None = None) -> RolloutResult:
    """The rollout re-derived from its status and dimension scores: a saved `reward` is never trusted (a
    hostile or stale file could carry any number on any status)."""
    spec = rubric.spec
    derived = {"s_pos": None, "s_pit": None, "s_fa": None, "groups": None, "reward_std": None, "advantage": None}
    if r.status == "penalized":
        if r.penalty is None or r.penalty not in spec.penalties.enabled():
            raise RescoreError(f"{where}: penalty {r.penalty!r} is not a penalty of {rubric.path.name}")
        reward = getattr(spec.penalties, r.penalty)
        return r.model_copy(update={**derived, "reward": reward, "dimensions": None, "in_group_stats": True})
    if r.status != "ok":  # a judge error has no reward and stays out of its group's statistics
        if r.error is None:
            raise RescoreError(f"{where}: status {r.status!r} without its error")
        return r.model_copy(update={**derived, "reward": None, "dimensions": None, "in_group_stats": False})
    names = [d.name for d in spec.dimensions]
    if r.dimensions is None or sorted(r.dimensions) != sorted(names):
        raise RescoreError(f"{where}: its dimensions are not the rubric's ({', '.join(names)})")
    samples = _samples(r, where, keep)
    # logprob scores are expectations: fractions on an integer scale, as the judge's distributions gave them
    _check_scores(samples, rubric, where, expectations=r.scores_from == "logprobs" and logprob_mode(spec))
    out = r.model_copy(update={**derived, **graded_fields(rubric, samples), "in_group_stats": True})
    if out.dimensions is not None and r.dimensions is not None:  # the written values and spreads stay
        out.dimensions = {
            n: d.model_copy(update={"written": r.dimensions[n].written, "spread": r.dimensions[n].spread})
            for n, d in out.dimensions.items()
        }
    return out


def rescore_group(
    group: GroupResult, rubric: Rubric, samples: K | None = None, resample_condense: bool | None = None
) -> GroupResult:
    """The group as `reward score` with `rubric` and the K it was graded with would write it, from its saved
    judgements. `samples` / `resample_condense`, when given, must be what the group records."""
    k, resample = file_sampling(group, samples, resample_condense)
    basis = check_basis(group, rubric, k, resample)
    where = f"group {group.group_id!r}"
    criteria = None
    if rubric.spec.grading.mode == "checklist":  # the group's own rubric, from the criteria its line records
        rubric, criteria = _checklist_rubric(group, rubric, where)
    rollouts = [_rescore_rollout(r, rubric, f"{where}, rollout {r.id!r}") for r in group.rollouts]
    sampling = None
    if k == "auto":
        assert basis.max_samples is not None  # check_basis refuses an auto basis without it
        rollouts, sampling = _replay(group, rollouts, rubric, basis.max_samples, where)
    update = {**group_fields(rubric, rollouts, k), "rollouts": rollouts, "basis": basis, "sampling": sampling}
    if criteria is not None:
        update["criteria"] = criteria
    return group.model_copy(update=update)


def _checklist_rubric(group: GroupResult, rubric: Rubric, where: str) -> tuple[Rubric, list[CriterionInfo]]:
    """A checklist group's rubric as a re-run would make it: its saved criteria read with `rubric`'s categories
    and limits (a weight the line gave is kept, a category's is the rubric's now)."""
    from reward.rubric.checklist import Criterion, checklist_rubric, parse_criteria
    from reward.scoring.checklist_stage import criteria_info

    if group.criteria is None:
        raise RescoreError(f"{where} was written without its checklist (criteria): use `reward score`")
    saved = [Criterion(c.id, c.text, c.category, c.weight, c.weight_source == "item").as_item() for c in group.criteria]
    try:
        criteria = parse_criteria(rubric.spec, saved)
    except ValueError as exc:
        raise RescoreError(f"{where}: its checklist does not fit {rubric.path.name}: {exc}") from None
    if [c.id for c in criteria] != [c.id for c in group.criteria]:
        raise RescoreError(f"{where}: its criteria are not numbered c1..c{len(criteria)} in order")
    return checklist_rubric(rubric, criteria), criteria_info(criteria)


def _replay(
    group: GroupResult, rollouts: list[RolloutResult], rubric: Rubric, most: int, where: str
) -> tuple[list[RolloutResult], SamplingInfo]:
    """The adaptive rule run again on the saved samples with `rubric`'s rewards: each graded rollout keeps the
    samples a re-run would have drawn."""
    graded = [i for i, r in enumerate(rollouts) if r.status == "ok"]
    fixed = [float(r.reward) for r in rollouts if r.status == "penalized" and r.reward is not None]
    saved = [_samples(group.rollouts[i], f"{where}, rollout {rollouts[i].id!r}") for i in graded]
    info = group.sampling
    together = info.together if info is not None else None
    units = _units(where, [rollouts[i].id for i in graded], together, [len(s) for s in saved])
    stopped = info.reason if info is not None and info.reason in STOPS else None
    ks, reason = replay([sample_rewards(rubric, s) for s in saved], fixed, most, units, stopped)
    if reason == "incomplete" or (reason in STOPS and ks != [len(s) for s in saved]):
        why = (
            "its saved samples do not replay the rule's decisions: it asks for verdict samples the file does not "
            "hold (a file an older version wrote, whose failed extra samples shaped its rounds, or one edited)"
            if (group.rubric, group.rubric_version) == (rubric.name, rubric.version)  # the rubric it was scored with
            else "with this rubric's rewards the rule asks for verdict samples the file does not hold"
        )
        raise RescoreError(
            f"{where} was scored with --samples auto; {why}: use `reward score` (the samples it has are cached)"
        )
    out = list(rollouts)
    for i, k in zip(graded, ks, strict=True):
        if k < len(saved[graded.index(i)]):
            r = group.rollouts[i]
            out[i] = _rescore_rollout(r, rubric, f"{where}, rollout {r.id!r}", keep=k)
    per = {rollouts[i].id: k for i, k in zip(graded, ks, strict=True)}
    spent = sum(per.values())
    return out, SamplingInfo(mode="auto", max=most, spent=spent, per_rollout=per, reason=reason, together=together)


def _units(where: str, ids: list[str], together: list[list[str]] | None, counts: list[int]) -> list[int]:
    """The rule's units of a saved group: its graded rollouts, those the file says were sampled together
    (identical grading requests) joined; each such rollout must be graded, listed once, and hold its unit's
    number of samples."""
    unit_of = {rid: rid for rid in ids}
    listed = [rid for members in together or [] for rid in members]
    if len(set(listed)) != len(listed) or not set(listed) <= set(ids):
        raise RescoreError(f"{where}: its sampling.together lists rollouts that are not its graded ones, once each")
    for members in together or []:
        if len({counts[ids.index(rid)] for rid in members}) != 1:
            raise RescoreError(
                f"{where}: rollouts {members} were sampled together but hold different numbers of samples"
            )
        unit_of.update({rid: members[0] for rid in members})
    return units_of([unit_of[rid] for rid in ids])


def rescore_groups(
    groups: Iterable[GroupResult],
    rubric: Rubric,
    samples: K | None = None,
    resample_condense: bool | None = None,
) -> Iterator[GroupResult]:
    """`rescore_group` over a scored file's groups; a group id seen twice is refused (which one is real?)."""
    seen: set[str] = set()
    for group in groups:
        if group.group_id in seen:
            raise RescoreError(f"group {group.group_id!r} appears twice: a scored file holds each group once")
        seen.add(group.group_id)
        yield rescore_group(group, rubric, samples, resample_condense)
