"""Agreement of rewards with labels: pure functions.

GRPO uses only the order of rewards within a group, so agreement is pairwise and within groups: over the
pairs of rollouts of one group whose labels rank differently, the fraction the reward orders the same way,
a tie counting half. Also per dimension (the same pairs, ordered by that dimension's score in its own
direction), the misordered pairs with what decided each, and a 95% interval from a bootstrap over groups
(pairs of one group are not independent, groups are).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from reward.analysis.scored import ScoredGroup, ScoredRollout
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


class Side(BaseModel):
    id: str
    label: str
    reward: float


class Misordered(BaseModel):
    group_id: str
    better: Side  # by label
    worse: Side
    decided_by: str  # the dimension that pushed the pair the wrong way most, or the penalty


class Calibration(BaseModel):
    pairs: int
    accuracy: float | None  # null when no pair of differently ranked labels shares a group
    ci95: tuple[float, float] | None = None  # bootstrap over groups; null with fewer than 2 groups of pairs
    by_pair: dict[str, PairAgreement]  # "better>worse" label pairs
    by_dimension: dict[str, PairAgreement] = {}  # the same pairs, ordered by each dimension alone
    misordered: list[Misordered] = []


@dataclass(frozen=True)
class Directions:
    """Per dimension: +1 when higher is better, -1 for a failure mode; and the scale span to compare them."""

    sign: dict[str, float]
    span: float = 1.0


def directions(rubric: Any | None) -> Directions | None:
    """From the run's rubric (None when it cannot be loaded: no per-dimension view then)."""
    if rubric is None:
        return None
    spec = rubric.spec
    signs = {d.name: -1.0 if spec.groups[d.group].failure_mode else 1.0 for d in spec.dimensions}
    return Directions(signs, float(spec.scale.max - spec.scale.min) or 1.0)


def _accuracy(points: float, pairs: int) -> float | None:
    return points / pairs if pairs else None


def _point(diff: float) -> float:
    diff = round(diff, 9)
    return 1.0 if diff > 0 else 0.5 if diff == 0 else 0.0


def _decided_by(better: Any, worse: Any, dirs: Directions | None) -> str:
    if worse.penalty is None and better.penalty is not None:
        return f"penalty {better.penalty}"
    if dirs is None or not better.dimensions or not worse.dimensions:
        return "unknown (no dimension scores or rubric)"
    pushes = {
        name: dirs.sign.get(name, 1.0) * (better.dimensions[name].score - worse.dimensions[name].score) / dirs.span
        for name in better.dimensions
        if name in worse.dimensions
    }
    if not pushes:
        return "unknown (no shared dimensions)"
    name = min(pushes, key=lambda n: pushes[n])
    return name if pushes[name] < 0 else "no single dimension (a tie, or the formula)"


@dataclass
class _Pair:
    group: int
    key: str
    point: float
    dims: dict[str, float]


def _pairs(
    groups: list[ScoredGroup], label: str, ranks: Mapping[str, int], dirs: Directions | None
) -> tuple[list[_Pair], list[Misordered], int]:
    """The labelled pairs, the misordered ones, and the rollouts left out (no reward, or a label not in the
    order)."""
    pairs: list[_Pair] = []
    misordered: list[Misordered] = []
    skipped = 0
    for gi, g in enumerate(groups):
        rows: list[tuple[str, int, ScoredRollout, float]] = []
        for r in g.rollouts:
            name = label_of(r.record(), label)
            if r.reward is None or name is None or name not in ranks:
                skipped += 1
                continue
            rows.append((name, ranks[name], r, r.reward))
        for i, (la, ka, ra, wa) in enumerate(rows):
            for lb, kb, rb, wb in rows[i + 1 :]:
                if ka == kb:
                    continue
                first = ka < kb
                lbest, best, wbest = (la, ra, wa) if first else (lb, rb, wb)
                lworst, worst, wworst = (lb, rb, wb) if first else (la, ra, wa)
                point = _point(wbest - wworst)
                dims: dict[str, float] = {}
                if dirs is not None and best.dimensions and worst.dimensions:
                    for n in best.dimensions.keys() & worst.dimensions.keys():
                        diff = best.dimensions[n].score - worst.dimensions[n].score
                        dims[n] = _point(dirs.sign.get(n, 1.0) * diff)
                pairs.append(_Pair(gi, f"{lbest}>{lworst}", point, dims))
                if point == 0.0:
                    misordered.append(
                        Misordered(
                            group_id=g.group_id,
                            better=Side(id=best.id, label=lbest, reward=wbest),
                            worse=Side(id=worst.id, label=lworst, reward=wworst),
                            decided_by=_decided_by(best, worst, dirs),
                        )
                    )
    return pairs, misordered, skipped


def _bootstrap(pairs: list[_Pair], resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    by_group: dict[int, list[float]] = {}
    for p in pairs:
        by_group.setdefault(p.group, []).append(p.point)
    if len(by_group) < 2:
        return None
    sums = np.array([sum(v) for v in by_group.values()])
    counts = np.array([len(v) for v in by_group.values()])
    rng = np.random.default_rng(seed)  # seeded: the same file gives the same interval
    picks = rng.integers(0, len(sums), size=(resamples, len(sums)))
    acc = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    lo, hi = np.percentile(acc, [2.5, 97.5])
    return float(lo), float(hi)


def calibrate(
    groups: list[ScoredGroup], label: str, ranks: Mapping[str, int], rubric: Any | None = None
) -> tuple[Calibration, int]:
    """The agreement, and how many rollouts were left out (no reward, or no label in the order)."""
    dirs = directions(rubric)
    pairs, misordered, skipped = _pairs(groups, label, ranks, dirs)
    position = {name: i for i, name in enumerate(ranks)}  # pairs listed as the order lists labels, best first
    keys = sorted({p.key for p in pairs}, key=lambda k: tuple(position[x] for x in k.split(">", 1)))
    by_pair = {}
    for k in keys:
        mine = [p.point for p in pairs if p.key == k]
        by_pair[k] = PairAgreement(pairs=len(mine), accuracy=_accuracy(sum(mine), len(mine)))
    by_dimension = {}
    for name in sorted({n for p in pairs for n in p.dims}):
        mine = [p.dims[name] for p in pairs if name in p.dims]
        by_dimension[name] = PairAgreement(pairs=len(mine), accuracy=_accuracy(sum(mine), len(mine)))
    total = len(pairs)
    return (
        Calibration(
            pairs=total,
            accuracy=_accuracy(sum(p.point for p in pairs), total),
            ci95=_bootstrap(pairs),
            by_pair=by_pair,
            by_dimension=by_dimension,
            misordered=misordered,
        ),
        skipped,
    )


def label_problems(groups: list[ScoredGroup], label: str, ranks: Mapping[str, int]) -> list[str]:
    """What makes a calibration measure nothing by mistake: a label path no rollout has, or order labels no
    rollout carries (a typo such as `vauge`). Each names what was asked and what the file has."""
    seen: dict[str, int] = {}
    for g in groups:
        for r in g.rollouts:
            value = label_of(r.record(), label)
            if value is not None:
                seen[value] = seen.get(value, 0) + 1
    if not seen:
        keys = sorted({k for g in groups for r in g.rollouts for k in (r.meta or {})})
        hint = f"meta keys seen: {', '.join(keys[:20])}" if keys else "no rollout has a meta"
        return [f"--label {label}: no rollout has a value at this path ({hint})"]
    values = ", ".join(f"{v} ({n})" for v, n in sorted(seen.items()))
    return [
        f"--order names {name!r}, which no rollout's {label} has (values seen: {values})"
        for name in ranks
        if name not in seen
    ]
