"""Turn a validated input group into the canonical form the scorer needs.

Trainer-native rollouts (`messages`, `text`) become explicit steps, and references given by id are
replaced by the plans loaded at start-up. Problems are reported with their path inside the group, so the
CLI can name the line and the service can answer 422.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from reward.core.trajectory import Group, IdReference, LineError, PlanReference, Trajectory, parse_line
from reward.errors import ConfigError, RewardError
from reward.native import convention_from_env, parse_tools, steps_from_messages, steps_from_text
from reward.rubric.inputs import input_problems
from reward.rubric.spec import RubricSpec


class GroupInputError(RewardError, ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


T = TypeVar("T", bound=Trajectory)


def materialize(trajectory: T, tool: str | Sequence[str] | None = None, exit_code: tuple[str, ...] | None = None) -> T:
    """Explicit steps from a native form. Never fails on what the policy generated: malformed calls are
    kept as invalid steps (see reward.native). `tool`: terminal tool name(s); None: the surveyed defaults."""
    if not trajectory.is_native:
        return trajectory
    tool = parse_tools(tool)
    conv = exit_code or convention_from_env()
    if trajectory.messages is not None:
        steps, final = steps_from_messages(trajectory.messages, tool, conv)
    else:
        steps, final = steps_from_text(trajectory.text or "", tool, conv, trajectory.prompt)
    update = {"steps": steps, "final_answer": final, "messages": None, "text": None, "prompt": None}
    return trajectory.model_copy(update=update)


def prepare_group(
    group: Group,
    plans: Mapping[str, str | PlanReference] | None = None,
    tool: str | Sequence[str] | None = None,
    exit_code: tuple[str, ...] | None = None,
    spec: RubricSpec | None = None,
) -> Group:
    """`spec`: the rubric the group will be scored with; its required inputs are checked here."""
    problems: list[str] = [] if spec is None else input_problems(spec, group)
    tool = parse_tools(tool)  # once per group, not per rollout
    reference = group.reference
    if isinstance(reference, IdReference):
        plan = (plans or {}).get(reference.id)
        if plan is None:
            problems.append(f"reference.id: no reference plan with id {reference.id!r} is loaded")
        else:
            reference = plan if isinstance(plan, PlanReference) else PlanReference(plan=plan, id=reference.id)
    elif reference is not None and not isinstance(reference, PlanReference):
        reference = materialize(reference, tool, exit_code)
    rollouts = [materialize(rollout, tool, exit_code) for rollout in group.rollouts]
    if problems:
        raise GroupInputError(problems)
    return group.model_copy(update={"reference": reference, "rollouts": rollouts})


def load_plans(paths: list[Path]) -> dict[str, PlanReference]:
    """Reference plans written by `reward plans` ({"id", "plan", "fake"} lines), by id."""
    plans: dict[str, PlanReference] = {}
    for path in paths:
        try:
            # "\n" only: str.splitlines() would also split inside a plan at U+2028, U+0085, \x1c...
            lines = path.read_text(encoding="utf-8").split("\n")
        except OSError as exc:
            raise ConfigError(f"reference plans {path}: cannot read: {exc.strerror}") from exc
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parsed = parse_line(PlanReference, line, lineno)
            if isinstance(parsed, LineError):
                raise ConfigError(f"reference plans {path}: {parsed}")
            if parsed.id is None:
                raise ConfigError(f"reference plans {path}: line {lineno}: id: Field required")
            plans[parsed.id] = parsed
    return plans
