"""What `reward report` reads from a scored file, and the rubric it is read against.

The lenient reader of reward.analysis.scored keeps what every analysis command needs; the report also shows
what only it uses (penalty details, the policy's token counts, warnings, why a group was filtered), so it reads
the same lines into the subclasses below, with the same rules: unknown fields ignored, a bad line reported by
number and skipped, a NaN refused.

The rubric gives each dimension its group, each group its direction (`failure_mode`: higher is worse) and the
score scale. It is the one `--rubric` names (a user's choice: a path is fine), else the configured rubric of
the name the file records. A path written in a scored file is never opened: it could be a FIFO (the report
would hang) or a file the user never chose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward.analysis.scored import Lenient, ScoredGroup, ScoredNoise, ScoredRollout, read_scored_lenient
from reward.errors import UsageError
from reward.rubric.load import Rubric, RubricError, load_rubric, rubric_dir


class ReportRollout(ScoredRollout):
    penalty_detail: str | None = None
    num_tokens: int | None = None  # the policy's tokens (the length check's count), not the judge's
    num_tokens_exact: bool = False
    warnings: list[str] | None = None


class ReportReliability(Lenient):
    """One dimension's reliability in a group (reward.rubric.reliability); null in files of older versions."""

    reliability: float | None = None  # of one sample
    reliability_k: float | None = None  # of the mean of the K samples the group was scored with
    k_needed: int | None = None  # samples for the reliability target (Spearman-Brown)


class ReportNoise(ScoredNoise, ReportReliability):
    """A group's judge noise (K > 1) with its reliability, when the file has it."""

    n_penalized: int = 0  # penalised rollouts: exact rewards, left out of the reliability
    reliability_target: float | None = None
    dimensions: dict[str, ReportReliability] | None = None


class ReportGroup(ScoredGroup):
    rollouts: list[ReportRollout]  # type: ignore[assignment]  # the richer rollout of the same lines
    noise: ReportNoise | None = None  # type: ignore[assignment]  # with the reliability fields
    filter_reason: str | None = None
    basis: dict[str, Any] | None = None

    @property
    def overrides(self) -> tuple[str, ...]:
        """The `--set PATH=VALUE` edits the run applied to its rubric (basis.overrides), as recorded."""
        found = (self.basis or {}).get("overrides")
        return tuple(o for o in found if isinstance(o, str)) if isinstance(found, list) else ()


def as_report_groups(groups: list[ScoredGroup]) -> list[ReportGroup]:
    """Groups read by another reader, as the report takes them (what that reader dropped stays unknown)."""
    return [g if isinstance(g, ReportGroup) else ReportGroup.model_validate(g.model_dump()) for g in groups]


def read_report_groups(path: Path) -> tuple[list[ReportGroup], list[str]]:
    """The groups of a scored file in file order (as the report reads them), and the problems of the lines
    that were skipped."""
    groups, problems = read_scored_lenient(path, ReportGroup)
    if not groups:
        raise UsageError(f"{path}: no scored group could be read")
    return groups, problems


_RUBRIC_NAME = re.compile(r"[\w.-]+")


def rubric_named(name: str, overrides: Sequence[str] = ()) -> Rubric | None:
    """The bundled or configured rubric a scored file names, with the `--set` overrides it records, or None.
    The name comes from the file, so it is never a path: a path there could be a FIFO (the report would hang)
    or a file the user never chose. The overrides are values applied to that rubric's data, never opened."""
    if not _RUBRIC_NAME.fullmatch(name) or name.startswith("."):
        return None
    for suffix in (".yaml", ".yml"):
        candidate = rubric_dir() / f"{name}{suffix}"
        if candidate.is_file():
            try:
                return load_rubric(candidate, overrides=list(overrides))  # never the running command's --set
            except RubricError:
                return None
    return None


@dataclass
class RubricView:
    """What the report knows of the run's rubric: each dimension's group, each group's direction, the scale."""

    line: str  # the summary's "dimension groups from" line
    dim_group: dict[str, str] = field(default_factory=dict)
    failure_mode: dict[str, bool] = field(default_factory=dict)  # group -> higher is worse; in declared order
    scale: tuple[float, float] = (0.0, 10.0)
    known: bool = False
    notes: list[str] = field(default_factory=list)

    def higher_is_worse(self, dimension: str) -> bool:
        return self.failure_mode.get(self.dim_group.get(dimension, ""), False)

    def distance_from_best(self, dimension: str, score: float) -> float:
        """How far a score is from its dimension's best value, as a fraction of the scale: 0 is the best score
        the rubric allows, 1 the worst. The best is the scale's minimum on a failure-mode group's dimension
        (higher is worse there) and its maximum on any other; the groups say which, never their names."""
        lo, hi = self.scale
        span = (hi - lo) or 1.0
        return (score - lo) / span if self.higher_is_worse(dimension) else (hi - score) / span


def _observed_scale(groups: list[ReportGroup]) -> tuple[float, float]:
    """Without a rubric: the usual scale the scores fit in (0-1, 0-10, else their own range)."""
    scores = [d.score for g in groups for r in g.rollouts for d in (r.dimensions or {}).values()]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 10.0)
    lo = min(lo, 0.0)
    return lo, 1.0 if hi <= 1 else 10.0 if hi <= 10 else hi


def rubric_view(groups: list[ReportGroup], given: Rubric | None = None) -> RubricView:
    """The rubric the report reads the run against: `given` (--rubric), else the configured one of the name
    the file records. Disagreements with what the file records are notes on the page, not errors: the
    report still shows every score."""
    recorded = sorted({g.rubric for g in groups if g.rubric})
    versions = sorted({g.rubric_version for g in groups if g.rubric_version})
    edits = sorted({g.overrides for g in groups})
    overrides = edits[0] if len(edits) == 1 else ()
    notes: list[str] = []
    if len(edits) > 1:
        notes.append("the groups record different --set overrides: the rubric is read without them")
    rubric = given
    if rubric is None:
        rubric = rubric_named(recorded[0], overrides) if recorded else None
        if len(recorded) > 1:
            notes.append(f"the file records several rubrics ({', '.join(recorded)}): read against {recorded[0]}")
    else:
        if recorded and rubric.name not in recorded:
            notes.append(f"--rubric {rubric.name}, but the file records {', '.join(recorded)}")
        if overrides:
            try:  # the run's edits, applied to the rubric the user gave (the version says whether it is the run's)
                rubric = load_rubric(rubric.path, overrides=list(overrides))
            except RubricError as exc:
                notes.append(f"the run's --set overrides do not apply to --rubric {rubric.name}: {exc}")
    if rubric is None:
        hint = "its name is not among the bundled or configured rubrics" if recorded else "the file names none"
        return RubricView(
            line=f"not known: {hint} (give it: --rubric NAME|FILE); every dimension read as higher is better",
            scale=_observed_scale(groups),
            notes=notes,
        )
    spec = rubric.spec
    if versions and rubric.version not in versions:
        notes.append(
            f"{rubric.name} @ {rubric.version} is not the version the file records ({', '.join(versions)}): "
            "its groups and scale may differ from the run's"
        )
    known = {d.name for d in spec.dimensions}
    unknown = sorted({n for g in groups for r in g.rollouts for n in (r.dimensions or {})} - known)
    if unknown:
        notes.append(f"dimensions not in {rubric.name}: {', '.join(unknown[:10])} (read as higher is better)")
    edited = f" with --set {' '.join(overrides)}" if overrides and rubric.overrides else ""
    return RubricView(
        line=f"{rubric.name} @ {rubric.version}{edited}",
        dim_group={d.name: d.group for d in spec.dimensions},
        failure_mode={name: g.failure_mode for name, g in spec.groups.items()},
        scale=(float(spec.scale.min), float(spec.scale.max)),
        known=True,
        notes=notes,
    )


_OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_SPACE = re.compile(r"\s+")


def clean_message(message: str, limit: int = 400) -> str:
    """An error message as one readable line: `<ssl.SSLContext object at 0x7f…>` is `ssl.SSLContext` (the
    address differs per process, so identical failures would not group), whitespace collapsed, cut at limit."""
    text = _ADDRESS.sub("0x…", _OBJECT_REPR.sub(r"\1", message))
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class ErrorGroup:
    category: str
    count: int
    message: str  # the most common clean message
    others: list[tuple[str, int]]  # the other distinct clean messages, most common first (at most 5)
    n_messages: int  # distinct clean messages
    examples: list[tuple[str, str]]  # (group, rollout) of the first few


def error_groups(groups: list[ReportGroup]) -> list[ErrorGroup]:
    """Judge errors by category, most frequent first, each with one clean message (an all-error run is one
    row per category, not one per rollout)."""
    by_cat: dict[str, list[tuple[str, str, str]]] = {}
    for g in groups:
        for r in g.rollouts:
            if r.error is not None:
                by_cat.setdefault(r.error.category, []).append((g.group_id, r.id, clean_message(r.error.message)))
    out = []
    for cat, rows in by_cat.items():
        counts: dict[str, int] = {}
        for _, _, msg in rows:
            counts[msg] = counts.get(msg, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        out.append(
            ErrorGroup(
                category=cat,
                count=len(rows),
                message=ranked[0][0],
                others=ranked[1:6],
                n_messages=len(ranked),
                examples=[(gid, rid) for gid, rid, _ in rows[:5]],
            )
        )
    return sorted(out, key=lambda e: (-e.count, e.category))


def display(x: float | None, digits: int = 4) -> float | None:
    """A value rounded for display only (-9.999999999999998 is -10.0; -0.0 is 0.0); the file keeps its value."""
    return None if x is None else round(x, digits) + 0.0
