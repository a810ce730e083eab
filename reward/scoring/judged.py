"""What the judge gave one rollout: an Execution Plan (cached as such), and everything grading a rollout took
and gave (`Graded`), which `--samples auto` extends one sample at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from reward.core.results import ErrorInfo, RolloutResult
from reward.core.trajectory import CondenseInput, Group, Rollout
from reward.rubric.noise import Sample
from reward.rubric.verdict import Verdict


@dataclass(frozen=True)
class Plan:
    """An Execution Plan and whether the fake judge wrote it. Cached as {"plan": str, "fake": bool}."""

    text: str
    fake: bool

    def to_cache(self) -> dict[str, Any]:
        return {"plan": self.text, "fake": self.fake}

    @classmethod
    def from_cache(cls, value: Any) -> Plan:
        """A cached plan, checked: a planted or corrupt value is refused (a miss), never graded."""
        ok = isinstance(value, dict) and set(value) == {"plan", "fake"}
        if not (ok and isinstance(value["plan"], str) and value["plan"].strip() and isinstance(value["fake"], bool)):
            raise ValueError("a cached plan must be {plan: non-empty string, fake: boolean}")
        return cls(value["plan"], value["fake"])


@dataclass
class Graded:
    """What grading one rollout took and gave: enough to draw one more sample of it (`--samples auto`)."""

    group: Group
    rollout: Rollout
    ci: CondenseInput
    reference: asyncio.Task[Plan] | None
    candidates: list[Plan]
    ref: Plan | None
    verdicts: list[Verdict]

    @property
    def samples(self) -> list[Sample]:
        return [{name: (s.score, s.reason) for name, s in v.scores.items()} for v in self.verdicts]

    @property
    def fake(self) -> bool:
        judged: list[Plan | Verdict] = [*self.candidates, *([self.ref] if self.ref else []), *self.verdicts]
        return any(x.fake for x in judged)


def error_result(rollout: Rollout, fa_ok: bool, category: str, message: str) -> RolloutResult:
    """A rollout the judge could not score: a categorised error, no reward, out of its group's statistics."""
    assert rollout.id is not None
    return RolloutResult(
        id=rollout.id,
        status="error",
        reward=None,
        error=ErrorInfo(category=category, message=message),
        in_group_stats=False,
        has_final_answer=fa_ok,
    )
