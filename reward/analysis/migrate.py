"""`reward migrate`: switch judges without a jump in the reward's scale.

A sample of a scored run's graded rollouts (stratified: `migrate_sample`) is graded again by the new judge,
grading only: the candidate and reference plans are the ones the run's judge wrote (from the scored file when
it kept them, `score --include-plans`; else condensed again by the run's condense judge, which the cache
answers when it holds them). Per dimension, the old and new scores are compared and a monotone map from the new
judge's scores onto the old scale is fitted (`migrate_fit`); `migrate_overlay` writes the maps into a rubric.

Re-grades go through the cache like any verdict, so an interrupted migration resumes for free, and scoring the
same rollouts with the overlay and the new judge afterwards reuses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from reward.analysis.migrate_fit import MIN_FIT, Agreement, Pair, agreement, fit_map, flat_map
from reward.analysis.migrate_sample import stratified_sample
from reward.analysis.scored import Lenient, ScoredGroup, ScoredRollout, read_scored_lenient
from reward.core.trajectory import Group, LineError, Rollout, parse_line
from reward.errors import UsageError
from reward.judge.base import JudgeError, Usage
from reward.rubric.finish import graded_fields
from reward.rubric.formula import graded_range
from reward.rubric.load import Rubric
from reward.rubric.noise import Sample
from reward.rubric.score_maps import ScoreMap
from reward.scoring.dry_run import _Planner
from reward.scoring.dry_run_report import DryRun, Stage, price
from reward.scoring.scorer import Plan, Scorer
from reward.settings import MAX_SAMPLES


class MigrateError(UsageError):
    """Input a migration cannot use (exit status 2): not a scored run, nothing graded, too few to fit."""


class ScoredBasis(Lenient):
    prompt_version: str = ""
    samples: int | str = 1
    overrides: list[str] | None = None


class RunGroup(ScoredGroup):
    basis: ScoredBasis | None = None


def read_run(path: Path) -> list[RunGroup]:
    groups, problems = read_scored_lenient(path, RunGroup)
    if not groups:
        raise MigrateError(f"{path}: no scored group in the file")
    if any(g.basis is None for g in groups):
        raise MigrateError(f"{path} is not a scored run of this version (a group has no `basis`): score it first")
    if problems:
        raise MigrateError(f"{path}: {len(problems)} line(s) are not scored groups (first: {problems[0]})")
    judges = {(g.judge.condense_model, g.judge.grade_model) for g in groups}
    if len(judges) > 1:
        raise MigrateError(f"{path} holds groups of several judges ({sorted(judges)}): one run, one judge")
    return groups


def graded(groups: Sequence[RunGroup], dimensions: Sequence[str]) -> list[tuple[str, list[tuple[str, float]]]]:
    """Per group, (rollout id, reward) of its graded rollouts with every dimension of the rubric."""
    wanted = set(dimensions)
    return [
        (g.group_id, [(r.id, r.reward) for r in g.rollouts if _graded(r, wanted) and r.reward is not None])
        for g in groups
    ]


def _graded(r: ScoredRollout, wanted: set[str]) -> bool:
    return r.status == "ok" and r.dimensions is not None and wanted <= set(r.dimensions)


def samples_of(groups: Sequence[RunGroup]) -> int:
    """K of the run (verdicts per rollout), 1..MAX_SAMPLES as `--samples` takes it; `auto` runs are re-graded
    once per rollout. Anything else is not a run `reward score` wrote: refused before any estimate."""
    k = groups[0].basis.samples if groups[0].basis is not None else 1
    if k == "auto":
        return 1
    if not isinstance(k, int) or not 1 <= k <= MAX_SAMPLES:
        raise MigrateError(
            f"the run's basis.samples is {k!r}: a scored run has 1..{MAX_SAMPLES} verdicts per rollout, or auto"
        )
    return k


def read_inputs(path: Path, wanted: set[str], rubric: Rubric, tool: str | None) -> dict[str, Group]:
    """The input groups named in `wanted`, prepared as `reward score` prepares them."""
    from reward.native.prepare import GroupInputError, prepare_group
    from reward.scoring.output_file import read_lines

    if not path.is_file():
        raise MigrateError(f"input file not found: {path}")
    found: dict[str, Group] = {}
    for lineno, line in read_lines(path):
        parsed = parse_line(Group, line, lineno)
        if isinstance(parsed, LineError) or parsed.group_id not in wanted or parsed.group_id in found:
            continue
        try:
            found[parsed.group_id] = prepare_group(parsed, None, tool, spec=rubric.spec)
        except GroupInputError as exc:
            raise MigrateError(f"{path}:{lineno}: {'; '.join(exc.problems)}") from None
    return found


@dataclass
class Target:
    """One rollout to re-grade: its input, its scored line, and the plans the run's judge graded it on."""

    group: Group
    rollout: Rollout
    old: ScoredRollout
    candidate: Plan | None = None  # from the scored file; else condensed (cached)
    reference: Plan | None = None


def targets(
    run: Sequence[RunGroup], inputs: dict[str, Group], picks: Sequence[tuple[str, str]], input_path: Path
) -> list[Target]:
    scored = {g.group_id: g for g in run}
    out: list[Target] = []
    for gid, rid in picks:
        g = scored[gid]
        group = inputs.get(gid)
        if group is None:
            raise MigrateError(f"{input_path}: no group {gid!r} (is it the input the run scored?)")
        rollout = next((r for r in group.rollouts if r.id == rid), None)
        if rollout is None:
            raise MigrateError(f"{input_path}: group {gid!r} has no rollout {rid!r} (is it the input the run scored?)")
        old = next(r for r in g.rollouts if r.id == rid)
        fake = g.judge.fake
        plan = (g.plans or {}).get(rid)
        out.append(
            Target(
                group,
                rollout,
                old,
                None if plan is None else Plan(plan, fake),
                None if g.reference_plan is None else Plan(g.reference_plan, fake),
            )
        )
    return out


def _seeds(grader: Scorer, k: int) -> list[int | None]:
    """The seeds `reward score` sends for K samples (the scorer's own rule where it has one), so re-grades are
    the cache entries a later run with the overlay reads."""
    seed = getattr(grader, "seed", None)
    if callable(seed):
        return [seed(i) for i in range(k)]
    return [None] if k <= 1 else list(range(k))


async def estimate(grader: Scorer, condenser: Scorer, work: Sequence[Target], k: int) -> DryRun:
    """What the re-grade would send, with the dry run's own counting (the cache asked, nothing called)."""
    spec = grader.rubric.spec
    report = DryRun(
        samples=k,
        resample_condense=False,
        stages={"condense": Stage(None), "grade": Stage(grader.judge.settings.grade.model)},
    )
    plans, grades = _Planner(condenser, report), _Planner(grader, report)
    grades._placeholders = plans._placeholders  # a plan not condensed yet: counted at its estimate in grading
    for t in work:
        ci = grader.condense_input(t.group.query, t.rollout)
        try:
            cand = t.candidate
            if spec.condenses and cand is None:
                report.stages["condense"].model = condenser.judge.settings.condense.model
                cand = await plans.plan(condenser.condense_request(t.group, ci), None)
            ref = t.reference
            if spec.reference and ref is None:
                report.stages["condense"].model = condenser.judge.settings.condense.model
                ref = await _reference_estimate(plans, condenser, t.group)
            for seed in _seeds(grader, k):
                messages = grader.grade_request(t.group, t.rollout, ci, ref, cand)
                load = None if grades.unknown(messages) else grades.load_verdict
                await grades.request("grade", messages, seed, load, grader.response_format)
        except JudgeError:
            report.errors += 1
    for stage in report.stages.values():
        stage.price = None if stage.model is None else price(stage.model)
    report.judged = len(work)
    return report


async def _reference_estimate(plans: _Planner, condenser: Scorer, group: Group) -> Plan:
    from reward.core.trajectory import PlanReference, Trajectory

    ref = group.reference
    if isinstance(ref, PlanReference):
        return Plan(ref.plan, ref.fake)
    assert isinstance(ref, Trajectory)  # ids are resolved by prepare_group
    ci = condenser.condense_input(group.query, ref)
    return await plans.plan(condenser.condense_request(group, ci), None)


@dataclass
class Regraded:
    target: Target
    samples: list[Sample]


@dataclass
class Outcome:
    regraded: list[Regraded] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # judge error category -> rollouts


async def regrade(grader: Scorer, condenser: Scorer, work: Sequence[Target], k: int, usage: Usage) -> Outcome:
    """Every target graded K times by the new judge on the run judge's plans; a failure is counted, not fitted."""
    spec = grader.rubric.spec
    references: dict[str, asyncio.Task[Plan]] = {}

    async def one(t: Target) -> Regraded | JudgeError:
        ci = grader.condense_input(t.group.query, t.rollout)
        try:
            cand = t.candidate
            if spec.condenses and cand is None:
                cand = await condenser.plan(condenser.condense_request(t.group, ci), usage)
            ref = t.reference
            if spec.reference and ref is None:
                task = references.get(t.group.group_id)
                if task is None:
                    task = references[t.group.group_id] = asyncio.ensure_future(
                        condenser.reference_plan(t.group, usage)
                    )
                ref = await asyncio.shield(task)
            request = grader.grade_request(t.group, t.rollout, ci, ref, cand)
            verdicts = await asyncio.gather(*(grader.verdict(request, usage, s) for s in _seeds(grader, k)))
        except JudgeError as exc:
            return exc
        return Regraded(t, [{n: (s.score, s.reason) for n, s in v.scores.items()} for v in verdicts])

    outcome = Outcome()
    for result in await asyncio.gather(*(one(t) for t in work)):
        if isinstance(result, JudgeError):
            outcome.errors[result.category] = outcome.errors.get(result.category, 0) + 1
        else:
            outcome.regraded.append(result)
    return outcome


class Migration(BaseModel):
    """What a migration measured and fitted; `--json` prints it."""

    from_judge: str  # the scale the maps give: the run's grading judge (or the one its own maps mapped onto)
    to_judge: str  # the new grading judge, whose scores the maps take
    fake: bool
    samples: int
    graded: int  # graded rollouts in the run
    sampled: int
    regraded: int
    errors: dict[str, int]
    dimensions: dict[str, Agreement]
    reward: Agreement
    maps: dict[str, ScoreMap]
    flat: list[str]  # dimensions the new judge scored with one value only: mapped to the old mean (a flat map)


def with_maps(rubric: Rubric, maps: dict[str, ScoreMap]) -> Rubric:
    return rubric.model_copy(update={"spec": rubric.spec.model_copy(update={"score_maps": maps})})


def analyse(
    rubric: Rubric, outcome: Outcome, from_judge: str, to_judge: str
) -> tuple[dict[str, Agreement], dict[str, ScoreMap], list[str]]:
    """(agreement per dimension, fitted maps, dimensions the new judge gave one value: their maps are flat)."""
    if len(outcome.regraded) < MIN_FIT:
        raise MigrateError(
            f"only {len(outcome.regraded)} rollout(s) were re-graded: at least {MIN_FIT} are needed to fit a map "
            f"(give a larger --sample, or a run with more graded rollouts)"
        )
    dims: dict[str, Agreement] = {}
    maps: dict[str, ScoreMap] = {}
    flat: list[str] = []
    scale = (rubric.spec.scale.min, rubric.spec.scale.max)
    for d in rubric.spec.dimensions:
        pairs = [
            Pair(x.target.group.group_id, _old_score(x.target.old, d.name), _mean(x.samples, d.name))
            for x in outcome.regraded
        ]
        try:
            m = fit_map(pairs, to_judge, from_judge, scale)
            if m is None:
                flat.append(d.name)
                m = flat_map(pairs, to_judge, from_judge, scale)
        except ValidationError as exc:  # nothing the checks above let through; a clear error if it comes
            raise MigrateError(f"the map of {d.name} is not a valid score map: {exc.errors()[0]['msg']}") from None
        maps[d.name] = m
        dims[d.name] = agreement(pairs, [m(p.new) for p in pairs])
    return dims, maps, flat


def reward_agreement(rubric: Rubric, outcome: Outcome, maps: dict[str, ScoreMap]) -> Agreement:
    """The reward of each re-graded rollout from the new judge's verdicts, raw and through the maps."""
    raw, mapped = with_maps(rubric, {}), with_maps(rubric, maps)
    pairs, through = [], []
    for x in outcome.regraded:
        old = x.target.old.reward
        assert old is not None
        pairs.append(Pair(x.target.group.group_id, old, graded_fields(raw, x.samples)["reward"]))
        through.append(graded_fields(mapped, x.samples)["reward"])
    return agreement(pairs, through)


def _old_score(r: ScoredRollout, name: str) -> float:
    assert r.dimensions is not None
    return r.dimensions[name].score


def _mean(samples: Sequence[Sample], name: str) -> float:
    return sum(s[name][0] for s in samples) / len(samples)


def sample_targets(groups: Sequence[RunGroup], rubric: Rubric, n: int) -> tuple[int, list[tuple[str, str]]]:
    """(graded rollouts in the run, the stratified sample of them)."""
    check_scale(groups, rubric)
    per_group = graded(groups, [d.name for d in rubric.spec.dimensions])
    total = sum(len(rs) for _, rs in per_group)
    if total == 0:
        raise MigrateError("the run has no graded rollout (every one was penalised or an error): nothing to compare")
    if total < MIN_FIT:
        raise MigrateError(f"the run has {total} graded rollout(s): at least {MIN_FIT} are needed to fit a map")
    return total, stratified_sample(per_group, n)


def check_scale(groups: Sequence[RunGroup], rubric: Rubric) -> None:
    """Every dimension score of the run lies on the rubric's scale, and every graded reward within what the rubric
    can give: one beyond is not a verdict of this rubric (another scale, an edited file), and a map fitted onto it
    would send rewards out of their range (or overflow the fit and the means)."""
    lo, hi = rubric.spec.scale.min, rubric.spec.scale.max
    names = {d.name for d in rubric.spec.dimensions}
    outside = [
        (g.group_id, r.id, name, d.score)
        for g in groups
        for r in g.rollouts
        for name, d in (r.dimensions or {}).items()
        if name in names and not lo <= d.score <= hi
    ]
    if outside:
        gid, rid, name, score = outside[0]
        raise MigrateError(
            f"{len(outside)} dimension score(s) of the run lie outside the rubric's scale [{lo:g}, {hi:g}] (first: "
            f"group {gid!r}, rollout {rid!r}, {name} = {score:g}): not the scores of {rubric.name}'s scale"
        )
    low, high = graded_range(rubric.spec)
    slack = 1e-6 * max(1.0, high - low)
    off = [
        (g.group_id, r.id, r.reward)
        for g in groups
        for r in g.rollouts
        if r.status == "ok" and r.reward is not None and not low - slack <= r.reward <= high + slack
    ]
    if off:
        gid, rid, reward = off[0]
        raise MigrateError(
            f"{len(off)} graded reward(s) of the run lie outside what {rubric.name} can give [{low:g}, {high:g}] "
            f"(first: group {gid!r}, rollout {rid!r}, reward {reward:g}): not this rubric's rewards"
        )
