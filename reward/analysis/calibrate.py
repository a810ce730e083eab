"""Agreement of rewards with labels: pure functions.

GRPO uses only the order of rewards within a group, so agreement is pairwise and within groups: over the
pairs of rollouts of one group whose labels rank differently, the fraction the reward orders the same way,
a tie counting half.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from reward.analysis.scored import ScoredGroup
from reward.errors import RewardError


class OrderError(RewardError, ValueError):
    """An --order that cannot be parsed; the message says why."""


def parse_order(spec: str) -> dict[str, int]:
    """'reference>good>vague=missed_error>hallucinated' -> {label: rank}, rank 0 the best."""
    ranks: dict[str, int] = {}
    levels = spec.split(">")
    if len(levels) < 2:
        raise OrderError(f"order {spec!r} needs at least two levels separated by '>'")
    for rank, level in enumerate(levels):
        for label in level.split("="):
            label = label.strip()
            if not label:
                raise OrderError(f"order {spec!r} has an empty label")
            if label in ranks:
                raise OrderError(f"order {spec!r} names {label!r} twice")
            ranks[label] = rank
    return ranks


def label_of(record: Mapping[str, Any], path: str) -> str | None:
    """The value at a dotted path ('meta.kind') of a rollout record, as a string; None when absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


class PairAgreement(BaseModel):
    pairs: int
    accuracy: float | None


class Calibration(BaseModel):
    pairs: int
    accuracy: float | None  # null when no pair of differently ranked labels shares a group
    by_pair: dict[str, PairAgreement]  # "better>worse" label pairs


def _accuracy(points: float, pairs: int) -> float | None:
    return points / pairs if pairs else None


def calibrate(groups: list[ScoredGroup], label: str, ranks: Mapping[str, int]) -> tuple[Calibration, int]:
    """The agreement, and how many rollouts were left out (no reward, or no label in the order)."""
    points: dict[str, float] = {}
    counts: dict[str, int] = {}
    skipped = 0
    for g in groups:
        rows: list[tuple[str, int, float]] = []
        for r in g.rollouts:
            name = label_of(r.record(), label)
            if r.reward is None or name is None or name not in ranks:
                skipped += 1
                continue
            rows.append((name, ranks[name], r.reward))
        for i, (la, ka, ra) in enumerate(rows):
            for lb, kb, rb in rows[i + 1 :]:
                if ka == kb:
                    continue
                (better, rw_better), (worse, rw_worse) = ((la, ra), (lb, rb)) if ka < kb else ((lb, rb), (la, ra))
                key = f"{better}>{worse}"
                diff = round(rw_better - rw_worse, 9)
                points[key] = points.get(key, 0.0) + (1.0 if diff > 0 else 0.5 if diff == 0 else 0.0)
                counts[key] = counts.get(key, 0) + 1
    # Pairs listed as the order lists their labels, best first.
    position = {name: i for i, name in enumerate(ranks)}
    keys = sorted(counts, key=lambda k: tuple(position[x] for x in k.split(">", 1)))
    total = sum(counts.values())
    return (
        Calibration(
            pairs=total,
            accuracy=_accuracy(sum(points.values()), total),
            by_pair={k: PairAgreement(pairs=counts[k], accuracy=_accuracy(points[k], counts[k])) for k in keys},
        ),
        skipped,
    )
