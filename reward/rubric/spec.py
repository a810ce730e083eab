"""The rubric file's schema: dimensions, groups, formula, inputs, penalties and judge defaults.

Everything here is plain validated data; `reward.rubric.load` loads it from YAML with its templates. The JSON
Schema of these models (`reward rubric schema`) is what editors validate rubric files with.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reward.errors import RewardError
from reward.rubric.bounds import (
    MAX_NUMBER,
    MIN_WEIGHT,
    Bounded,
    BoundedInSchema,
    SpecModel,
    constant_problem,
    reward_range,
)
from reward.rubric.checklist_field import CHECKLIST_FORMULA, CHECKLIST_VARIABLES, ChecklistField, most_pitfall_weight
from reward.rubric.expression import Expression, ExpressionError
from reward.rubric.judge_spec import JudgeCall, JudgeDefaults  # noqa: F401  (JudgeCall: re-exported)
from reward.rubric.score_maps import ScoreMap, outside_scale

# The paper's groups: rubrics written before groups were declared use these, with equation 2 as formula.
LEGACY_GROUPS = ("positive", "pitfall", "final_answer")
LEGACY_FORMULA = "(1 - alpha) * (positive - pitfall) + alpha * final_answer"
LEGACY_TITLES = {
    "positive": "EXECUTION QUALITY (higher is better)",
    "pitfall": "FAILURE MODES (higher is worse)",
    "final_answer": "FINAL ANSWER QUALITY (judge the final answer text itself; higher is better)",
}
# Variables the engine gives the templates; declared inputs may not shadow them.
BUILTIN_VARIABLES = frozenset({"query", "steps", "final_answer", "head", "tail", "dimensions", "groups", "scale"})
BUILTIN_VARIABLES |= {"candidate_plan", "reference_plan", "candidates"}
# Names an input may not take: the engine's variables, jinja's constants, the templates' macros and the names jinja
# gives every macro's body (an input named varargs, kwargs or caller would read () or {} inside user()).
_JINJA = {"none", "true", "false", "loop", "range", "namespace", "varargs", "kwargs", "caller"}
RESERVED_NAMES = BUILTIN_VARIABLES | _JINJA | {"system", "user"}
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
PITFALL_WEIGHT = frozenset({"pitfall_weight"})


class SpecProblem(RewardError, ValueError):
    """A rubric problem found across fields, with the path of the field to blame (for its YAML line)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Anchors(SpecModel):
    """What a low, a middle and a high score mean for one dimension."""

    low: str = Field(min_length=1)
    mid: str = Field(min_length=1)
    high: str = Field(min_length=1)


class Dimension(SpecModel):
    # The name becomes a JSON key in the verdict schema, hence the identifier pattern.
    name: Identifier
    group: Identifier
    description: str = Field(min_length=1)
    anchors: Anchors | None = None
    # Weight in its group's mean; not shown to the judge, so changing it costs no judge call.
    weight: float = Field(default=1.0, ge=MIN_WEIGHT, le=1e6)


class DimensionGroup(SpecModel):
    title: str = ""  # how templates introduce the group's dimensions
    description: str = ""
    failure_mode: bool = False  # higher is worse (informs templates; the formula carries the sign)


class Scale(SpecModel):
    """Scores from min to max: integers (an enum in the verdict schema) when both bounds are written as
    integers, numbers otherwise (`{min: 0.0, max: 1.0}` is a continuous scale, not a binary one)."""

    min: StrictInt | StrictFloat = 0
    max: StrictInt | StrictFloat = 10

    @property
    def kind(self) -> Literal["integer", "number"]:
        return "integer" if isinstance(self.min, int) and isinstance(self.max, int) else "number"

    @model_validator(mode="after")
    def _order(self) -> Scale:
        if not (abs(self.min) <= 1e9 and abs(self.max) <= 1e9):
            raise ValueError("scale bounds must lie within ±1e9")
        if self.max <= self.min:
            raise ValueError(f"scale.max ({self.max}) must be greater than scale.min ({self.min})")
        if self.kind == "integer" and self.max - self.min > 1000:
            raise ValueError("an integer scale may have at most 1001 values (write floats for a continuous scale)")
        return self


class Penalties(SpecModel):
    """Hard penalties, checked in this order before any judge call; null disables one."""

    max_tokens: int = Field(default=30_000, gt=0)
    too_long: Bounded | None = -100.0
    missing_final_answer: Bounded | None = -100.0
    no_commands: Bounded | None = -50.0

    def enabled(self) -> list[str]:
        return [k for k in ("too_long", "missing_final_answer", "no_commands") if getattr(self, k) is not None]


NO_PENALTIES = Penalties(too_long=None, missing_final_answer=None, no_commands=None)


class GroupFilter(SpecModel):
    # Groups whose reward std (population, on the reported scale) is below this carry no GRPO signal.
    min_std: float = Field(default=0.01, ge=0)
    advantage_eps: float = Field(default=1e-6, gt=0)


class Truncation(SpecModel):
    head: int = Field(default=500, ge=0)
    tail: int = Field(default=500, ge=0)


TemplateName = Annotated[str, Field(pattern=r"^[\w.-]+$")]


class Templates(SpecModel):
    condense: TemplateName | None = None  # none: no condensing stage, the grader sees the inputs directly
    grade: TemplateName = "grade.j2"


class Grading(SpecModel):
    """The shape of the grading stage (reward.scoring.group_stage, .pairwise_stage): `rollout` grades each
    rollout alone (one call each); `group` grades every graded rollout of a group in one call (listwise,
    labelled A, B, ... in an order shuffled with a seed derived from the group id); `pairwise` judges pairs
    of rollouts, each pair in both orders, and scores each rollout by its win rate (ties half) per dimension;
    `checklist` grades each rollout alone on its group's own criteria (reward.rubric.checklist)."""

    mode: Literal["rollout", "group", "pairwise", "checklist"] = "rollout"
    # checklist: the group input (of type checklist) whose criteria are the dimensions, c1..cN, of each group
    criteria: Identifier | None = None
    # group: the most rollouts one grading call shows. A larger group is split into windows that all show the
    # same `anchors` rollouts (the first ones of the shuffled order), each window's scores shifted per dimension
    # so its anchors' mean equals the first window's; anchors 0: a larger group is refused (errors, no call).
    window: int = Field(default=8, ge=2, le=26)
    anchors: int = Field(default=2, ge=0, le=24)
    # pairwise: which pairs are judged: all, each with its next in a ring, or each with its k next ones
    schedule: Literal["all", "ring", "k_neighbours"] = "all"
    neighbours: int = Field(default=2, ge=1, le=16)  # k of k_neighbours

    @model_validator(mode="after")
    def _anchors(self) -> Grading:
        if self.anchors >= self.window:
            raise ValueError(f"grading.anchors ({self.anchors}) must be fewer than grading.window ({self.window})")
        if (self.mode == "checklist") != (self.criteria is not None):
            raise ValueError("grading.criteria (the group input holding the checklist) goes with mode checklist")
        return self


class InputField(SpecModel):
    type: Literal["string", "integer", "number", "boolean"] = "string"
    description: str = ""
    required: bool = True


def _input_kind(data: Any) -> str:
    kind = data.get("type") if isinstance(data, dict) else getattr(data, "type", None)
    return "checklist" if kind == "checklist" else "scalar"


# One error message per field: a checklist is told a checklist's problems, a scalar a scalar's.
GroupInput = Annotated[
    Annotated[InputField, Tag("scalar")] | Annotated[ChecklistField, Tag("checklist")], Discriminator(_input_kind)
]


class Inputs(SpecModel):
    """The judge's input fields: `inputs` of each group line and of each rollout, checked before any call."""

    group: dict[Identifier, GroupInput] = Field(default_factory=dict)
    rollout: dict[Identifier, InputField] = Field(default_factory=dict)


def _schema_extras(schema: dict[str, Any]) -> None:
    # `penalties: null` (no hard penalties) is valid: the before-validator reads it as every penalty off.
    props = schema.get("properties", {})
    if "penalties" in props:
        props["penalties"] = {"anyOf": [props["penalties"], {"type": "null"}], "description": "null: no penalties"}
    # Still read (rubrics written before `constants`), so editors accept it; not with constants.alpha.
    props["alpha"] = {
        "type": "number",
        "minimum": -MAX_NUMBER,
        "maximum": MAX_NUMBER,
        "deprecated": True,
        "description": "Legacy: write constants.alpha instead (the same constant; both at once is an error)",
    }


class RubricSpec(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, json_schema_extra=_schema_extras)

    name: str = Field(pattern=r"^[\w.-]+$")
    description: str = ""
    scale: Scale = Scale()
    groups: dict[Identifier, DimensionGroup] = Field(default_factory=dict, max_length=12)
    # Over group means (each normalised to [0, 1]) and constants; reward = reward_scale * formula.
    formula: str = LEGACY_FORMULA
    # each within ±MAX_NUMBER (checked by _bounded, which lets a checklist group's own spec past it)
    constants: dict[Identifier, BoundedInSchema] = Field(default_factory=dict, description="Named numbers, within ±1e6")
    # Rewards are reported on the paper's scale: graded rewards lie in [-50, 100] for scale 100.
    reward_scale: float = Field(
        default=100.0,
        gt=0,
        le=MAX_NUMBER,
        description="reward = reward_scale × formula; at most 1e6, and every graded reward within ±1e12",
    )
    reference: bool = True  # every group needs a reference (condensed like the rollouts)
    inputs: Inputs = Inputs()
    dimensions: list[Dimension] = Field(default_factory=list)  # none with grading.mode checklist
    penalties: Penalties = Penalties()
    group_filter: GroupFilter = GroupFilter()
    truncation: Truncation = Truncation()
    judge: JudgeDefaults
    templates: Templates = Templates(condense="condense.j2", grade="grade.j2")
    grading: Grading = Grading()  # the grading stage's shape; rollout (one call per rollout) by default
    # dimension -> map of the judge's scores onto an earlier judge's scale (`reward migrate` writes them)
    score_maps: dict[str, ScoreMap] = Field(default_factory=dict)
    _formula: Expression = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        # Rubrics written before formulas were declared: `alpha` at the top level is eq. 2's constant,
        # `penalties: null` means none.
        if isinstance(data, dict):
            data = dict(data)
            checklist = isinstance(g := data.get("grading"), dict) and g.get("mode") == "checklist"
            if checklist and "formula" not in data:
                data["formula"] = CHECKLIST_FORMULA
            if "alpha" in data and "alpha" in (data.get("constants") or {}):
                raise SpecProblem(("alpha",), "alpha is set twice, at the top level and in constants: keep one")
            if "alpha" in data:
                data["constants"] = {"alpha": data.pop("alpha"), **(data.get("constants") or {})}
            elif "formula" not in data and isinstance(data.get("constants", {}), dict):
                data["constants"] = {"alpha": 0.5, **(data.get("constants") or {})}  # eq. 2's default
            if "penalties" in data and data["penalties"] is None:
                data["penalties"] = NO_PENALTIES
            dims = data.get("dimensions")
            if "groups" not in data and isinstance(dims, list):
                # Undeclared groups: those the dimensions name, in order of appearance.
                groups: dict[str, Any] = {}
                for d in dims:
                    g = d.get("group") if isinstance(d, dict) else None
                    if isinstance(g, str) and g not in groups:
                        groups[g] = {"title": LEGACY_TITLES.get(g, g), "failure_mode": g == "pitfall"}
                data["groups"] = groups
        return data

    @field_validator("constants")
    @classmethod
    def _bounded(cls, constants: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        # a checklist group's own spec (reward.rubric.checklist) sets pitfall_weight, bounded by its checklist
        problem = constant_problem(constants, (info.context or {}).get("engine_constants", ()))
        if problem:
            raise ValueError(problem)
        return constants

    @model_validator(mode="after")
    def _consistent(self) -> RubricSpec:
        if self.grading.mode == "checklist":
            return self._checklist()
        if not self.dimensions:
            raise SpecProblem(("dimensions",), "a rubric needs at least one dimension")
        seen: dict[str, int] = {}
        for i, d in enumerate(self.dimensions):
            if d.name in seen:
                raise SpecProblem(
                    ("dimensions", i, "name"), f"duplicate dimension name {d.name} (also dimensions[{seen[d.name]}])"
                )
            seen[d.name] = i
            if d.group not in self.groups:
                raise SpecProblem(("dimensions", i, "group"), f"group {d.group!r} is not declared in groups")
        for g in self.groups:
            if not any(d.group == g for d in self.dimensions):
                raise SpecProblem(("groups", g), f"group {g!r} has no dimension")
        unknown = sorted(set(self.score_maps) - set(seen))
        if unknown:
            raise SpecProblem(
                ("score_maps",), f"score maps for dimensions the rubric does not have: {', '.join(unknown)}"
            )
        outside = outside_scale(self.score_maps, self.scale.min, self.scale.max)
        if outside:
            raise SpecProblem(("score_maps", *outside[0]), outside[1])
        clash = set(self.groups) & set(self.constants)
        if clash:
            raise SpecProblem(("constants",), f"names used both as group and constant: {', '.join(sorted(clash))}")
        try:
            expr = Expression(self.formula, set(self.groups), set(self.constants))
            reward_range(expr, list(self.groups), self.constants, self.reward_scale)
        except ExpressionError as exc:
            raise SpecProblem(("formula",), str(exc)) from None
        self._formula = expr
        return self._common()

    def _checklist(self) -> RubricSpec:
        """A checklist rubric declares no dimensions: each group's criteria are its dimensions, c1..cN, and its
        formula reads CHECKLIST_VARIABLES, which reward.rubric.checklist sets per group."""
        for key, why in (("dimensions", "dimensions"), ("groups", "groups"), ("score_maps", "score maps")):
            if getattr(self, key):
                raise SpecProblem((key,), f"a checklist rubric has no {why}: each group's criteria are its own")
        name = self.grading.criteria
        field = self.inputs.group.get(name or "")
        if not isinstance(field, ChecklistField):
            raise SpecProblem(
                ("grading", "criteria"), f"{name!r} is not a group input of type checklist (inputs.group.{name})"
            )
        clash = sorted(set(self.constants) & set(CHECKLIST_VARIABLES))
        if clash:
            raise SpecProblem(("constants",), f"{', '.join(clash)}: set per group by the checklist, not constants")
        # pitfall_weight is set per group, from 0 (no pitfalls) to most_pitfall_weight: no dividing by it, and
        # the range is checked at both ends
        try:
            expr = Expression(self.formula, {"met", "pitfalls"}, {*self.constants, "pitfall_weight"}, PITFALL_WEIGHT)
            sweep = {"pitfall_weight": most_pitfall_weight(field)}
            reward_range(expr, ["met", "pitfalls"], self.constants, self.reward_scale, sweep)
        except ExpressionError as exc:
            raise SpecProblem(("formula",), str(exc)) from None
        self._formula = expr
        return self._common()

    def _common(self) -> RubricSpec:
        if self.templates.condense is not None and self.judge.condense is None:
            raise SpecProblem(("judge",), "judge.condense is required with a condensing template (templates.condense)")
        if self.reference and self.templates.condense is None:
            raise SpecProblem(("reference",), "a reference is condensed like the rollouts: it needs templates.condense")
        declared = [*self.inputs.group, *self.inputs.rollout]
        both = sorted({n for n in declared if declared.count(n) > 1})
        if both:
            raise SpecProblem(("inputs",), f"declared for both the group and the rollout: {', '.join(both)}")
        shadow = sorted(set(declared) & RESERVED_NAMES)
        if shadow:
            raise SpecProblem(
                ("inputs",), f"{', '.join(shadow)}: reserved names (template variables of the engine or of jinja)"
            )
        checklists = [n for n, f in self.inputs.group.items() if isinstance(f, ChecklistField)]
        if self.grading.mode in ("group", "pairwise") and checklists:
            raise SpecProblem(("inputs", "group"), "checklist inputs are for grading.mode checklist or rollout")
        if self.grading.mode in ("group", "pairwise") and not self.condenses:
            raise SpecProblem(
                ("grading", "mode"), "group and pairwise grading compare plans: they need templates.condense"
            )
        if self.grading.mode == "pairwise" and self.scale.kind == "integer":
            raise SpecProblem(
                ("scale",), "pairwise scores are win rates: write a continuous scale ({min: 0.0, max: 1.0})"
            )
        if self.grading.mode in ("group", "pairwise") and self.inputs.rollout:
            raise SpecProblem(
                ("inputs", "rollout"), "group and pairwise grading show several rollouts: no rollout inputs"
            )
        return self

    @property
    def expression(self) -> Expression:
        return self._formula

    @property
    def condenses(self) -> bool:
        return self.templates.condense is not None

    def in_group(self, group: str) -> list[Dimension]:
        return [d for d in self.dimensions if d.group == group]

    def group_list(self) -> list[dict[str, Any]]:
        """The groups as templates see them: name, title, description, failure_mode, in declaration order."""
        return [{"name": n, **g.model_dump()} for n, g in self.groups.items()]
