"""The end-of-run summary of a scored file: computed from the output lines, so it covers resumed runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Summary:
    groups: int = 0
    rollouts: int = 0
    rewards: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    penalties: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    filtered_groups: int = 0
    with_final_answer: int = 0
    fake_groups: int = 0

    @property
    def reward_mean(self) -> float | None:
        return float(np.mean(self.rewards)) if self.rewards else None

    @property
    def reward_std(self) -> float | None:
        return float(np.std(self.rewards)) if self.rewards else None

    @property
    def final_answer_rate(self) -> float | None:
        return self.with_final_answer / self.rollouts if self.rollouts else None


def summarize(groups: Iterable[dict[str, Any]]) -> Summary:
    s = Summary()
    for g in groups:
        s.groups += 1
        s.filtered_groups += bool(g.get("filtered"))
        s.fake_groups += bool((g.get("judge") or {}).get("fake"))
        for r in g.get("rollouts", []):
            s.rollouts += 1
            s.statuses[r["status"]] += 1
            s.with_final_answer += bool(r.get("has_final_answer"))
            if r.get("reward") is not None:
                s.rewards.append(float(r["reward"]))
            if r.get("penalty"):
                s.penalties[r["penalty"]] += 1
            if r.get("error"):
                s.errors[r["error"]["category"]] += 1
    return s
