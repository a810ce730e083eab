"""The rubric: dimensions, formula constants, penalties and judge defaults, loaded from YAML.

A rubric is data. Adding, removing or rewording a dimension touches the YAML only: the verdict schema,
the grading prompt and the reward are all built from the list of dimensions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from reward.errors import RewardError
from reward.rubric.overrides import Override, OverrideError, active, apply_overrides, parse_override
from reward.rubric.spec import (  # noqa: F401  (re-exported: the spec's models are imported from here)
    BUILTIN_VARIABLES,
    Anchors,
    ChecklistField,
    Dimension,
    DimensionGroup,
    InputField,
    Inputs,
    JudgeCall,
    JudgeDefaults,
    Penalties,
    RubricSpec,
    Scale,
)
from reward.rubric.yaml_source import YamlSourceError, describe_errors, load_yaml
from reward.settings import setting


class RubricError(RewardError):
    """A rubric that cannot be loaded; the message names the file and the YAML path."""


class Rubric(BaseModel):
    """A loaded rubric: the validated spec, its template sources and two versions: `version` changes with
    any byte of the file or templates, `prompt_version` only with what can change a judge request."""

    model_config = ConfigDict(frozen=True)

    spec: RubricSpec
    path: Path
    condense_template: str | None
    grade_template: str
    version: str
    prompt_version: str
    # `--set PATH=VALUE` applied to the file's data, as given (normalised): not the file's rubric, and
    # `version` says so (it includes them); empty for the file as it is.
    overrides: tuple[str, ...] = ()

    _view: dict[str, Any] = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        from reward.rubric.prompts import template_view

        self._view = template_view(self.spec)  # once, not for every rollout's grading prompt

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def view(self) -> dict[str, Any]:
        """The rubric as its grading template sees it: dimensions, groups, scale."""
        return self._view


def data_root() -> Path:
    """Where the built-in rubrics and templates are: inside an installed wheel, or the source tree."""
    package = Path(__file__).resolve().parents[1]  # reward/
    packaged = package / "_data"
    return packaged if packaged.is_dir() else package.parent


def rubric_dir() -> Path:
    return Path(setting("rubric_dir") or data_root() / "rubrics")


def template_dirs(rubric_path: Path) -> list[Path]:
    """A rubric's templates are looked up next to it, in a sibling templates/ and then built in."""
    here = rubric_path.parent
    return [here, here.parent / "templates", data_root() / "templates"]


def resolve_rubric_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    for suffix in (".yaml", ".yml"):
        candidate = rubric_dir() / f"{name_or_path}{suffix}"
        if candidate.exists():
            return candidate
    raise RubricError(f"no rubric named {name_or_path!r} in {rubric_dir()} (and no such file)")


def _read_template(name: str, rubric_path: Path) -> str:
    for d in template_dirs(rubric_path):
        candidate = d / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    searched = ", ".join(str(d) for d in template_dirs(rubric_path))
    raise RubricError(f"{rubric_path}: templates: template {name!r} not found (searched {searched})")


def rubric_version(
    yaml_text: str, condense_template: str | None, grade_template: str, overrides: Sequence[str] = ()
) -> str:
    """A digest of the file, its templates and the overrides applied to it (none: the digest of the file as
    it always was, so outputs written before overrides existed keep their version)."""
    h = hashlib.sha256()
    for part in (yaml_text, condense_template or "", grade_template):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    if overrides:
        h.update(json.dumps(["overrides", *overrides]).encode("utf-8"))
    return h.hexdigest()[:12]


def _call(call: Any) -> dict[str, Any]:
    """A judge call's settings as they reach a request; `logprobs` only when on, so rubrics without it keep the
    prompt versions (and rescorable files) they had before it existed."""
    data: dict[str, Any] = call.model_dump()
    if not data.get("logprobs"):
        data.pop("logprobs", None)
    return data


def prompt_version(spec: RubricSpec, condense_template: str | None, grade_template: str) -> str:
    """A digest of everything in the rubric that reaches a judge request: templates, what templates are
    given (dimensions without weights, groups, scale, inputs, truncation) and the judge call settings.
    Formula, constants, weights, penalties and the group filter are not in it: `reward rescore` may
    recompute rewards across rubrics with one prompt version."""
    visible = {
        "templates": [condense_template, grade_template],
        "dimensions": [d.model_dump(exclude={"weight"}) for d in spec.dimensions],
        "groups": spec.group_list(),
        "scale": [spec.scale.min, spec.scale.max, spec.scale.kind],
        "inputs": _visible_inputs(spec),
        "reference": spec.reference,
        "truncation": spec.truncation.model_dump(),  # shapes `steps` and is given as head / tail
        "judge": [None if c is None else _call(c) for c in (spec.judge.condense, spec.judge.grade)],
    }
    if spec.grading.mode != "rollout":  # only then: the prompt versions of rollout rubrics stay what they were
        visible["grading"] = spec.grading.model_dump()
    return hashlib.sha256(json.dumps(visible, sort_keys=True).encode()).hexdigest()[:12]


def _visible_inputs(spec: RubricSpec) -> dict[str, Any]:
    """The inputs as a prompt version sees them: a checklist's category sizes never reach the judge (editing
    one costs no call and `reward rescore` applies it), its category names and signs do (a negative weight is a
    pitfall, which the judge is told to score the other way round)."""
    data = spec.inputs.model_dump()
    for name, field in spec.inputs.group.items():
        if isinstance(field, ChecklistField):
            data["group"][name]["categories"] = sorted((c, w < 0) for c, w in field.categories.items())
    return data


def _check_templates(path: Path, spec: RubricSpec, condense: str | None, grade: str) -> None:
    """Every variable a template uses must be one the engine gives it or an input the rubric declares, and
    it must render: found here, before any judge call, not as a crash after paying for some."""
    from reward.rubric.prompts import TemplateProblem, check_template

    stages = [("condense", spec.templates.condense, condense), ("grade", spec.templates.grade, grade)]
    for stage, name, source in stages:
        if source is None:
            continue
        try:
            problems = check_template(spec, stage, source)
        except TemplateProblem as exc:
            raise RubricError(f"{path}: templates.{stage} ({name}): {exc}") from None
        if problems:
            raise RubricError(f"{path}: templates.{stage} ({name}): " + "; ".join(problems))


def load_rubric(
    name_or_path: str | Path = "execution_subagent", overrides: Sequence[str | Override] | None = None
) -> Rubric:
    """A rubric by name (looked up in REWARD_RUBRIC_DIR, then the bundled ones) or by path, validated.

    `overrides` (`PATH=VALUE`, see reward.rubric.overrides) are applied to its data before validation; None
    means those of the running command (`reward.rubric.overrides.applying`), none outside one."""
    if overrides is None:
        changes: tuple[Override, ...] = active()
    else:
        changes = tuple(o if isinstance(o, Override) else parse_override(o) for o in overrides)
    path = resolve_rubric_path(str(name_or_path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data, lines = load_yaml(text, str(path))
    except YamlSourceError as exc:
        raise RubricError(str(exc)) from None
    if not isinstance(data, dict):
        raise RubricError(f"{path}: expected a mapping at the top level")
    overridden: dict[tuple[str | int, ...], str] = {}
    if changes:
        try:
            data, overridden = apply_overrides(data, changes)
        except OverrideError as exc:
            raise RubricError(f"{path}: {exc}") from None
    try:
        spec = RubricSpec.model_validate(data)
    except ValidationError as exc:
        raise RubricError(describe_errors(exc, lines, data, str(path), overridden)) from None
    condense = None if spec.templates.condense is None else _read_template(spec.templates.condense, path)
    grade = _read_template(spec.templates.grade, path)
    _check_templates(path, spec, condense, grade)
    return Rubric(
        spec=spec,
        path=path,
        condense_template=condense,
        grade_template=grade,
        version=rubric_version(text, condense, grade, [o.text for o in changes]),
        prompt_version=prompt_version(spec, condense, grade),
        overrides=tuple(o.text for o in changes),
    )
