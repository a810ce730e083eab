"""The rubric: dimensions, formula constants, penalties and judge defaults, loaded from YAML.

A rubric is data. Adding, removing or rewording a dimension touches the YAML only: the verdict schema,
the grading prompt and the reward are all built from the list of dimensions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reward.settings import setting
from reward.trajectory import format_loc

GROUPS = ("positive", "pitfall", "final_answer")
GroupName = Literal["positive", "pitfall", "final_answer"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Anchors(Strict):
    """What a low, a middle and a high score mean for one dimension."""

    low: str = Field(min_length=1)
    mid: str = Field(min_length=1)
    high: str = Field(min_length=1)


class Dimension(Strict):
    # The name becomes a JSON key in the verdict schema, hence the identifier pattern.
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)
    group: GroupName
    description: str = Field(min_length=1)
    anchors: Anchors


class Scale(Strict):
    min: int = 0
    max: int = 10

    @model_validator(mode="after")
    def _order(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale.max ({self.max}) must be greater than scale.min ({self.min})")
        return self


class Penalties(Strict):
    """Hard penalties, checked in this order before any judge call; null disables one."""

    max_tokens: int = Field(default=30_000, gt=0)
    too_long: float | None = -100.0
    missing_final_answer: float | None = -100.0
    no_commands: float | None = -50.0


class GroupFilter(Strict):
    # Groups whose reward std (population, on the reported scale) is below this carry no GRPO signal.
    min_std: float = Field(default=0.01, ge=0)
    advantage_eps: float = Field(default=1e-6, gt=0)


class Truncation(Strict):
    head: int = Field(default=500, ge=0)
    tail: int = Field(default=500, ge=0)


class JudgeCall(Strict):
    model: str = Field(min_length=1)
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=2048, gt=0)


class JudgeDefaults(Strict):
    condense: JudgeCall
    grade: JudgeCall
    timeout_s: float = Field(default=120.0, gt=0)
    num_retries: int = Field(default=3, ge=0)
    max_reasks: int = Field(default=2, ge=0)
    # Judge noise: grade each rollout this many times (seeds 0..K-1) and average; see reward.noise.
    samples: int = Field(default=1, ge=1, le=32)
    resample_condense: bool = False  # with samples > 1, also condense each sample anew


class Templates(Strict):
    condense: str = Field(default="condense.j2", pattern=r"^[\w.-]+$")
    grade: str = Field(default="grade.j2", pattern=r"^[\w.-]+$")


class RubricSpec(Strict):
    name: str = Field(pattern=r"^[\w.-]+$")
    description: str = ""
    scale: Scale = Scale()
    alpha: float = Field(default=0.5, ge=0, le=1)
    # Rewards are reported on the paper's scale: graded rewards lie in [-50, 100] for scale 100.
    reward_scale: float = Field(default=100.0, gt=0)
    dimensions: list[Dimension] = Field(min_length=1)
    penalties: Penalties = Penalties()
    group_filter: GroupFilter = GroupFilter()
    truncation: Truncation = Truncation()
    judge: JudgeDefaults
    templates: Templates = Templates()

    @model_validator(mode="after")
    def _dimensions(self) -> RubricSpec:
        names = [d.name for d in self.dimensions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate dimension names: {', '.join(dupes)}")
        for group in GROUPS:
            if not any(d.group == group for d in self.dimensions):
                raise ValueError(f"group {group!r} has no dimension; the reward formula needs all three")
        return self

    def in_group(self, group: str) -> list[Dimension]:
        return [d for d in self.dimensions if d.group == group]


class RubricError(Exception):
    """A rubric that cannot be loaded; the message names the file and the YAML path."""


class Rubric(BaseModel):
    """A loaded rubric: the validated spec, its template sources and its content version."""

    model_config = ConfigDict(frozen=True)

    spec: RubricSpec
    path: Path
    condense_template: str
    grade_template: str
    version: str

    @property
    def name(self) -> str:
        return self.spec.name


def data_root() -> Path:
    """Where the built-in rubrics and templates are: inside an installed wheel, or the source tree."""
    packaged = Path(__file__).parent / "_data"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent


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


def rubric_version(yaml_text: str, condense_template: str, grade_template: str) -> str:
    h = hashlib.sha256()
    for part in (yaml_text, condense_template, grade_template):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:12]


def load_rubric(name_or_path: str | Path = "execution_subagent") -> Rubric:
    path = resolve_rubric_path(str(name_or_path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RubricError(f"{path}: expected a mapping at the top level")
    try:
        spec = RubricSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{format_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise RubricError(f"{path}: {problems}") from exc
    condense = _read_template(spec.templates.condense, path)
    grade = _read_template(spec.templates.grade, path)
    return Rubric(
        spec=spec,
        path=path,
        condense_template=condense,
        grade_template=grade,
        version=rubric_version(text, condense, grade),
    )
