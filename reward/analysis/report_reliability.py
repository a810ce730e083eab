"""The reliability of the run's reward, as the report shows it: how much of the reward's spread across a group's
rollouts is theirs and how much the judge's (groups scored with K >= 2 samples; reward.rubric.reliability).

Per group the scored file has the single-sample reliability, that of the K-sample mean it was given and the K
that reaches the target (0.8), overall and per dimension. The run's figure is the median over groups (a few
groups of near-identical rollouts have no signal to measure and read 0: the median is not dragged by them), and
the K that brings that median to the target (Spearman-Brown). A file without them shows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from reward.analysis.pages import fmt
from reward.analysis.report_data import ReportGroup, RubricView
from reward.core.summary import TARGET, k_needed


@dataclass
class DimensionReliability:
    name: str
    group: str
    median: float  # one sample's reliability, median over the groups that measured it
    median_k: float | None  # that of the K-sample mean given
    k_needed: int | None  # the K that brings the median to the target; None: no K does (0)
    groups: int


@dataclass
class RunReliability:
    groups: int  # groups with a measured reliability
    of: int  # groups in the run
    median: float
    lowest: float
    highest: float
    median_k: float | None
    samples: tuple[int, int]  # the fewest and the most samples a group was scored with
    target: float
    k_needed: int | None  # the K that brings the median to the target
    groups_k_needed: int | None  # median of the groups' own K needed (those that can reach it)
    unreachable: int  # groups whose reliability is 0: no K reaches the target
    n_penalized: int
    dimensions: list[DimensionReliability]  # least reliable first

    @property
    def line(self) -> str:
        """The summary's one line."""
        k = self.samples[1] if self.samples[0] == self.samples[1] else f"{self.samples[0]}–{self.samples[1]}"
        given = f"; {fmt(self.median_k)} for the mean of the K = {k} samples given" if self.median_k is not None else ""
        target = fmt(self.target)
        reach = f"K = {self.k_needed} reaches {target}" if self.k_needed else f"no K reaches {target}"
        return f"{fmt(self.median)} for one sample (median of {self.groups} groups{given}); {reach}"


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def run_reliability(groups: list[ReportGroup], view: RubricView) -> RunReliability | None:
    """The run's reliability, or None when no group has one (K = 1, or a file of an older version)."""
    measured = [g for g in groups if g.noise is not None and g.noise.reliability is not None]
    if not measured:
        return None
    noises = [g.noise for g in measured if g.noise is not None]
    rel = [n.reliability for n in noises if n.reliability is not None]
    # a file's own target only when it is one K can reach (a hostile 1.0 or NaN would mean no K, or a crash)
    targets = {t for n in noises if (t := n.reliability_target) is not None and 0 < t < 1}
    target = targets.pop() if len(targets) == 1 else TARGET
    own = [n.k_needed for n in noises if n.k_needed is not None]
    mid = median(rel)
    dims: dict[str, list[tuple[float, float | None]]] = {}
    for n in noises:
        for name, d in (n.dimensions or {}).items():
            if d.reliability is not None:
                dims.setdefault(name, []).append((d.reliability, d.reliability_k))
    rows = []
    for name, pairs in dims.items():
        r1 = median(r for r, _ in pairs)
        rk = _median([k for _, k in pairs if k is not None])
        rows.append(DimensionReliability(name, view.dim_group.get(name, ""), r1, rk, k_needed(r1, target), len(pairs)))
    order = {d: i for i, d in enumerate(view.dim_group)}
    rows.sort(key=lambda d: (d.median, order.get(d.name, len(order)), d.name))
    return RunReliability(
        groups=len(measured),
        of=len(groups),
        median=mid,
        lowest=min(rel),
        highest=max(rel),
        median_k=_median([n.reliability_k for n in noises if n.reliability_k is not None]),
        samples=(min(n.samples for n in noises), max(n.samples for n in noises)),
        target=target,
        k_needed=k_needed(mid, target),
        groups_k_needed=round(median(own)) if own else None,
        unreachable=sum(r <= 0 for r in rel),
        n_penalized=sum(n.n_penalized for n in noises),
        dimensions=rows,
    )
