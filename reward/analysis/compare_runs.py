"""What each compared run is (rubric, version, judge, K) and what changed between two runs' rubrics.

A comparison that does not name its runs cannot be read back: "B" is only meaningful with the rubric,
version, judge models and K it was scored with. These come from what every scored group records; the
formula side (formula, constants, weights, penalty values, group filter) is not in the file, so it is read
from the rubrics themselves when they can be found: one given with `--rubric`, or the configured rubric the
file names, each used only for the runs whose recorded rubric version is exactly its version (a rubric
edited since the run would otherwise explain a change it did not make). Penalty values are also read off
the files (a penalised rollout's reward is its penalty), so a changed penalty is listed without rubrics.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reward.analysis.scored import ScoredGroup
from reward.rubric.load import Rubric, RubricError, load_rubric, rubric_dir
from reward.rubric.spec import RubricSpec


class RunInfo(BaseModel):
    label: str  # A, B, C, ... in the order given
    path: str
    rubric: str | None  # the rubric name the file records ("x | y" if its groups disagree)
    rubric_version: str | None
    condense_model: str | None
    grade_model: str | None
    fake: bool  # any group judged by the built-in fake judge
    samples: int | None  # K, verdicts per rollout (judge noise is measured when K > 1)
    prompt_version: str | None
    penalties_checked: list[str] | None
    overrides: list[str] | None  # `--set PATH=VALUE` the run was scored with (basis.overrides)
    groups: int
    rollouts: int
    filtered_groups: int
    penalty_values: dict[str, list[float]]  # observed: the rewards of the rollouts with each penalty
    rubric_source: str | None = None  # where the formula side was read from; None: not found
    rubric_note: str | None = None  # why it was not (or how it was) found


class RubricChange(BaseModel):
    what: str  # "constants.alpha", "penalties.no_commands", "dimensions.completeness.description", ...
    a: str | None  # None: absent in that run
    b: str | None
    source: str  # "rubric" (both rubrics loaded) or "file" (what the scored files record)


def run_label(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


def _one(values: list[Any]) -> Any:
    distinct = list(dict.fromkeys(v for v in values if v not in (None, "")))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else " | ".join(map(str, distinct))


def read_bases(path: Path) -> list[dict[str, Any]]:
    """What scored groups record beyond the lenient reader's models (`basis`): read again, each line on its
    own, skipping what does not parse (the reader has already reported those lines)."""
    found: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    data = json.loads(line)
                except (ValueError, RecursionError):  # reported by the reader already
                    continue
                basis = data.get("basis") if isinstance(data, dict) else None
                if isinstance(basis, dict):
                    found.append(basis)
    except OSError:
        pass
    return found


def _samples(groups: list[ScoredGroup], bases: list[dict[str, Any]]) -> int | None:
    ks = [b.get("samples") for b in bases if isinstance(b.get("samples"), int)]
    ks += [g.noise.samples for g in groups if g.noise is not None]
    for g in groups:
        for r in g.rollouts:
            for d in (r.dimensions or {}).values():
                ks.append(len(d.samples) if d.samples else 1)
                break
    if not ks:
        return None
    return Counter(ks).most_common(1)[0][0]


def run_info(label: str, path: Path | None, groups: list[ScoredGroup]) -> RunInfo:
    bases = read_bases(path) if path is not None else []
    penalties: dict[str, set[float]] = {}
    for g in groups:
        for r in g.rollouts:
            if r.status == "penalized" and r.penalty and r.reward is not None:
                penalties.setdefault(r.penalty, set()).add(r.reward)
    checked = _one([json.dumps(b.get("penalties")) for b in bases if isinstance(b.get("penalties"), list)])
    overridden = _one([json.dumps(b.get("overrides")) for b in bases if isinstance(b.get("overrides"), list)])
    return RunInfo(
        label=label,
        path="" if path is None else str(path),
        rubric=_one([g.rubric for g in groups]),
        rubric_version=_one([g.rubric_version for g in groups]),
        condense_model=_one([g.judge.condense_model for g in groups]),
        grade_model=_one([g.judge.grade_model for g in groups]),
        fake=any(g.judge.fake for g in groups),
        samples=_samples(groups, bases),
        prompt_version=_one([b.get("prompt_version") for b in bases]),
        penalties_checked=json.loads(checked) if checked and " | " not in checked else None,
        overrides=json.loads(overridden) if overridden and " | " not in overridden else None,
        groups=len(groups),
        rollouts=sum(len(g.rollouts) for g in groups),
        filtered_groups=sum(g.filtered for g in groups),
        penalty_values={k: sorted(v) for k, v in sorted(penalties.items())},
    )


_NAME = re.compile(r"[\w.-]+")


def _load(path: Path, overrides: list[str]) -> Rubric | None:
    try:
        return load_rubric(path, overrides=overrides)  # a list, even empty: never the running command's --set
    except RubricError:
        return None


def _configured(name: str, overrides: list[str]) -> Rubric | None:
    """The configured rubric a file names. The name comes from the file, so it is never opened as a path (a
    path there could be a FIFO, or a file the user never chose)."""
    if not _NAME.fullmatch(name) or name.startswith("."):
        return None
    for suffix in (".yaml", ".yml"):
        candidate = rubric_dir() / f"{name}{suffix}"
        if candidate.is_file():
            return _load(candidate, overrides)
    return None


def attach_rubrics(runs: list[RunInfo], given: list[Rubric]) -> tuple[list[RubricSpec | None], list[str]]:
    """Each run's rubric spec (or None) and warnings for given rubrics that match no run. A rubric is used
    for a run only when its version, with the `--set` overrides the run recorded, is the one the run recorded
    (the overrides are part of the version)."""
    specs: list[RubricSpec | None] = []
    used: set[int] = set()
    for run in runs:
        spec: RubricSpec | None = None
        overrides = run.overrides or []
        for i, rub in enumerate(given):
            candidate = _load(rub.path, overrides) if overrides else rub
            if candidate is not None and candidate.version == run.rubric_version:
                spec, run.rubric_source, run.rubric_note = candidate.spec, str(rub.path), "--rubric"
                used.add(i)
                break
        if spec is None and run.rubric and run.rubric_version and " | " not in run.rubric_version:
            found = _configured(run.rubric, overrides)
            if found is None:
                run.rubric_note = f"rubric {run.rubric!r} is not among the configured ones (give it: --rubric FILE)"
            elif found.version != run.rubric_version:
                run.rubric_note = (
                    f"the configured {run.rubric} is version {found.version}, the run was scored with "
                    f"{run.rubric_version} (give that rubric: --rubric FILE)"
                )
            else:
                spec, run.rubric_source, run.rubric_note = found.spec, str(found.path), "configured"
        elif spec is None:
            run.rubric_note = "the file records no single rubric version (give it: --rubric FILE)"
        if spec is not None and overrides:
            run.rubric_source = f"{run.rubric_source} with --set {' '.join(overrides)}"
        specs.append(spec)
    versions = ", ".join(f"{r.label}: {r.rubric_version}" for r in runs)
    warnings = [
        f"--rubric {rub.path} (version {rub.version}) matches no run's rubric version ({versions}): not used"
        for i, rub in enumerate(given)
        if i not in used
    ]
    return specs, warnings


def _g(x: float | None) -> str | None:
    return None if x is None else format(x, "g")


def _flat(spec: RubricSpec) -> dict[str, str | None]:
    """The fields of a rubric a reader of a comparison cares about, flattened to dotted names."""
    flat: dict[str, str | None] = {
        "formula": spec.formula.strip(),
        "reward_scale": _g(spec.reward_scale),
        "scale": f"{spec.scale.min}..{spec.scale.max}",
        "penalties.max_tokens": str(spec.penalties.max_tokens),
        "group_filter.min_std": _g(spec.group_filter.min_std),
        "group_filter.advantage_eps": _g(spec.group_filter.advantage_eps),
        "judge.grade.temperature": _g(spec.judge.grade.temperature),
        "judge.samples": str(spec.judge.samples),
    }
    for kind in ("too_long", "missing_final_answer", "no_commands"):
        value = getattr(spec.penalties, kind)
        flat[f"penalties.{kind}"] = "off" if value is None else _g(value)
    for name, value in spec.constants.items():
        flat[f"constants.{name}"] = _g(value)
    for name, group in spec.groups.items():
        flat[f"groups.{name}"] = f"{group.title}{' (failure mode)' if group.failure_mode else ''}"
    for d in spec.dimensions:
        flat[f"dimensions.{d.name}"] = "present"
        flat[f"dimensions.{d.name}.group"] = d.group
        flat[f"dimensions.{d.name}.weight"] = _g(d.weight)
        flat[f"dimensions.{d.name}.description"] = d.description
        flat[f"dimensions.{d.name}.anchors"] = None if d.anchors is None else json.dumps(d.anchors.model_dump())
    return flat


def _file_fields(run: RunInfo) -> dict[str, str | None]:
    fields: dict[str, str | None] = {
        "rubric": run.rubric,
        "rubric_version": run.rubric_version,
        "judge.condense_model": run.condense_model,
        "judge.grade_model": run.grade_model,
        "judge.fake": str(run.fake).lower(),
        "samples (K)": None if run.samples is None else str(run.samples),
        "prompt_version": run.prompt_version,
        "penalties checked": None if run.penalties_checked is None else ", ".join(run.penalties_checked),
        "overrides (--set)": None if run.overrides is None else " ".join(run.overrides),
    }
    for kind, values in run.penalty_values.items():
        fields[f"penalties.{kind} (observed)"] = ", ".join(format(v, "g") for v in values)
    return fields


def rubric_changes(a: RunInfo, b: RunInfo, spec_a: RubricSpec | None, spec_b: RubricSpec | None) -> list[RubricChange]:
    """What differs between two runs: what the files record, then (when both rubrics are known) the rubric
    fields. An added or removed dimension is one line, not one per field."""
    changes: list[RubricChange] = []
    fa, fb = _file_fields(a), _file_fields(b)
    for key in dict.fromkeys([*fa, *fb]):
        va, vb = fa.get(key), fb.get(key)
        if va != vb and not (key.endswith("(observed)") and (va is None or vb is None)):
            changes.append(RubricChange(what=key, a=va, b=vb, source="file"))
    if spec_a is None or spec_b is None:
        return changes
    ra, rb = _flat(spec_a), _flat(spec_b)
    whole = {
        key
        for key in {*ra, *rb}
        if key.startswith("dimensions.") and key.count(".") == 1 and (key in ra) != (key in rb)
    }
    for key in dict.fromkeys([*ra, *rb]):
        if any(key.startswith(f"{w}.") for w in whole):
            continue
        va, vb = ra.get(key), rb.get(key)
        if va != vb:
            changes.append(RubricChange(what=key, a=va, b=vb, source="rubric"))
    # A penalty value both rubrics give needs no second line saying what the files showed of it.
    stated = {c.what for c in changes if c.source == "rubric"}
    return [c for c in changes if not (c.what.endswith(" (observed)") and c.what.removesuffix(" (observed)") in stated)]


def reworded(changes: list[RubricChange]) -> set[str]:
    """Dimensions whose description or anchors (what the judge reads) changed."""
    return {
        c.what.split(".")[1]
        for c in changes
        if c.what.startswith("dimensions.") and c.what.endswith((".description", ".anchors"))
    }


def formula_side(changes: list[RubricChange]) -> list[str]:
    """The rubric fields that changed and never reach the judge (or a dimension's weight, which does not either):
    what explains a reward change when no dimension score moved."""
    return [
        c.what
        for c in changes
        if c.source == "rubric" and (not c.what.startswith(("dimensions.", "groups.")) or c.what.endswith(".weight"))
    ]
