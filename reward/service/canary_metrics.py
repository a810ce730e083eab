"""Prometheus metrics of the canaries mixed into live traffic (reward.service.canary_mix): canaries judged and
fooled per rubric and kind, audits by outcome, and the fooled rate.

The rate is computed at each scrape from the summed counters (every worker's, in multiprocess mode): a gauge
each worker set would hold that worker's rate, and rates do not add up. A dashboard over a window divides the
counters' increases instead (deploy/grafana/reward.json).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from reward.analysis.canaries import KINDS
from reward.service.canary_mix import OUTCOMES

CANARIES = Counter(
    "reward_canaries",
    "Canaries mixed into live traffic (REWARD_CANARY_RATE) judged against their group's honest median, by kind.",
    ["rubric", "kind"],
)
FOOLED = Counter(
    "reward_canaries_fooled",
    "Canaries whose reward reached the median honest reward of their group: the judge was fooled.",
    ["rubric", "kind"],
)
UNJUDGED = Counter(
    "reward_canaries_unjudged",
    "Canaries with nothing to compare: the judge failed on them (error), or on every honest rollout of their "
    "group (no_baseline).",
    ["rubric", "kind", "reason"],
)
AUDITS = Counter(
    "reward_canary_audits",
    "Canary audits by outcome: done, skipped (the cap on audits in flight was reached) or failed.",
    ["outcome"],
)
FOOLED_RATE = "reward_canary_fooled_rate"


class CanaryMetrics:
    """The observer hung on the canary mixer (reward.service.canary_mix.CanaryObserver)."""

    def audit(self, outcome: str) -> None:
        AUDITS.labels(outcome).inc()

    def tallied(self, rubric: str, kinds: dict[str, dict[str, Any]]) -> None:
        for kind, row in kinds.items():
            if kind not in KINDS:  # label values are the known kinds only: never a string from a request
                continue
            CANARIES.labels(rubric, kind).inc(row["n"])
            FOOLED.labels(rubric, kind).inc(row["fooled"])
            for reason, key in (("error", "errors"), ("no_baseline", "no_baseline")):
                if row[key]:
                    UNJUDGED.labels(rubric, kind, reason).inc(row[key])


CANARY = CanaryMetrics()


def _counts(families: list[Metric]) -> dict[tuple[str, str], list[float]]:
    """(rubric, kind) -> [canaries judged, fooled, unjudged], summed over the workers' samples."""
    counts: dict[tuple[str, str], list[float]] = {}
    for family in families:
        col = {"reward_canaries": 0, "reward_canaries_fooled": 1, "reward_canaries_unjudged": 2}.get(family.name)
        if col is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["rubric"], sample.labels["kind"])
                counts.setdefault(key, [0.0, 0.0, 0.0])[col] += sample.value
    return counts


def fooled_rate(families: list[Metric]) -> GaugeMetricFamily:
    """The gauge `reward_canary_fooled_rate{rubric, kind}`: fooled / judged since the start (no series before
    a canary of that kind was judged)."""
    gauge = GaugeMetricFamily(
        FOOLED_RATE,
        "Fraction of live canaries that fooled the judge since the start, by kind.",
        labels=["rubric", "kind"],
    )
    for (rubric, kind), (n, fooled, _) in sorted(_counts(families).items()):
        if n:
            gauge.add_metric([rubric, kind], fooled / n)
    return gauge


def view(families: list[Metric]) -> dict[str, Any]:
    """{"canaries": {kind: {n, fooled, rate, unjudged}}, "audits": {outcome: n}}, every rubric's together."""
    kinds: dict[str, list[float]] = {}
    for (_, kind), counts in _counts(families).items():
        row = kinds.setdefault(kind, [0.0, 0.0, 0.0])
        for i, v in enumerate(counts):
            row[i] += v
    audits = dict.fromkeys(OUTCOMES, 0)
    for family in families:
        if family.name == "reward_canary_audits":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    outcome = sample.labels["outcome"]
                    audits[outcome] = audits.get(outcome, 0) + int(sample.value)
    return {
        "canaries": {
            kind: {"n": int(n), "fooled": int(f), "rate": round(f / n, 4) if n else None, "unjudged": int(u)}
            for kind, (n, f, u) in sorted(kinds.items())
        },
        "audits": audits,
    }
