"""`--samples auto` against fixed K, with the fake judge of known signal and noise (FakeNoise).

For each noise level (REWARD_FAKE_NOISE_SD-style sd, in scale points on 0-10) and seed, a batch of groups
(rollouts with distinct commands, so distinct true scores) is scored with K = 1, K = 3, auto and K = 16 (the
reference), each with an empty cache, by the in-process fake judge. Per configuration: grading calls, and the
share of within-group rollout pairs whose order agrees with the K = 16 run's (pairs K = 16 ties left out; a
tie counts one half). Medians over seeds.

    python bench/adaptive_sampling.py [--seeds 5] [--groups 20] [--size 8] [--sd 0.5 1 1.5 2.5] [--extra 1 2]

--extra: also run auto with other budgets (extra samples per group as a share of its rollouts; the shipped
rule's is reward.rubric.adaptive.EXTRA), to show what auto needs to match K = 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from itertools import combinations
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reward.cache.disk import Store  # noqa: E402
from reward.core.results import GroupResult  # noqa: E402
from reward.core.trajectory import Group  # noqa: E402
from reward.judge.base import Usage  # noqa: E402
from reward.judge.fake.in_process import InProcessFakeJudge  # noqa: E402
from reward.judge.fake.replies import FakeNoise  # noqa: E402
from reward.rubric import adaptive  # noqa: E402
from reward.rubric.load import load_rubric  # noqa: E402
from reward.scoring.build import judge_settings  # noqa: E402
from reward.scoring.scorer import Scorer  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {"k1": {"samples": 1}, "k3": {"samples": 3}, "auto": {"samples": "auto"}}


def groups(seed: int, n_groups: int, size: int) -> list[Group]:
    """Groups whose rollouts ran distinct commands (the fake judge's true scores hash the plan)."""
    out = []
    for g in range(n_groups):
        rollouts = [
            {
                "id": f"r{i}",
                "steps": [{"command": f"pytest -q tests/t{seed}_{g}_{i}.py", "exit_code": 0, "output": "3 passed"}],
                "final_answer": f"<final_answer>ran the tests of case {seed}-{g}-{i}: 3 passed</final_answer>",
            }
            for i in range(size)
        ]
        reference = {"steps": [{"command": "pytest -q", "exit_code": 0, "output": "3 passed"}], "final_answer": "ok"}
        out.append(
            Group.model_validate(
                {"group_id": f"s{seed}-g{g}", "query": "Run the tests.", "reference": reference, "rollouts": rollouts}
            )
        )
    return out


def score(batch: list[Group], sd: float, samples: int | str, max_samples: int = 4) -> tuple[list[GroupResult], int]:
    """The batch scored with an empty cache; and the grading calls it took."""
    rubric = load_rubric("execution_subagent")
    settings = judge_settings(rubric, samples=samples, max_samples=max_samples)  # type: ignore[arg-type]
    judge = InProcessFakeJudge(settings, noise=FakeNoise(sd=sd))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        try:
            scorer = Scorer(rubric, judge, store)

            async def run() -> list[GroupResult]:
                return list(await asyncio.gather(*(scorer.score_group(g, Usage()) for g in batch)))

            results = asyncio.run(run())
        finally:
            store.close()
    return results, judge.calls["grade"]


def agreement(candidate: list[GroupResult], reference: list[GroupResult]) -> float:
    """Share of within-group pairs ordered as the reference orders them (its ties left out; a tie: one half)."""
    hits, total = 0.0, 0
    for c, r in zip(candidate, reference, strict=True):
        mine = {x.id: x.reward for x in c.rollouts}
        theirs = {x.id: x.reward for x in r.rollouts}
        for a, b in combinations(sorted(theirs), 2):
            ra, rb, ca, cb = theirs[a], theirs[b], mine[a], mine[b]
            if None in (ra, rb, ca, cb) or ra == rb:
                continue
            assert ra is not None and rb is not None and ca is not None and cb is not None
            total += 1
            hits += 0.5 if ca == cb else float((ca > cb) == (ra > rb))
    return hits / total if total else 1.0


def sign_agreement(candidate: list[GroupResult], reference: list[GroupResult]) -> float:
    """Share of rollouts whose advantage sign (reward above or below its group's mean: what GRPO trains on)
    is the reference's (rollouts the reference puts exactly at the mean left out)."""
    hits, total = 0, 0
    for c, r in zip(candidate, reference, strict=True):
        mine = {x.id: x.reward for x in c.rollouts if x.reward is not None}
        theirs = {x.id: x.reward for x in r.rollouts if x.reward is not None}
        if len(mine) != len(theirs) or not theirs:
            continue
        m_mean, t_mean = sum(mine.values()) / len(mine), sum(theirs.values()) / len(theirs)
        for rid, rv in theirs.items():
            if rv == t_mean:
                continue
            total += 1
            hits += (mine[rid] > m_mean) == (rv > t_mean)
    return hits / total if total else 1.0


def measure(
    sd: float, seeds: int, n_groups: int, size: int, extras: tuple[float, ...] = ()
) -> dict[str, dict[str, float]]:
    """Medians over seeds of each configuration's grading calls (relative to K = 1) and agreement with K = 16."""
    configs = {**CONFIGS, **{f"auto@{x:g}": {"samples": "auto", "extra": x} for x in extras}}
    rows: dict[str, dict[str, list[float]]] = {
        name: {"calls_x_k1": [], "agreement": [], "signs": []} for name in configs
    }
    shipped = adaptive.EXTRA
    for seed in range(seeds):
        batch = groups(seed, n_groups, size)
        reference, _ = score(batch, sd, 16)
        base = None
        for name, cfg in configs.items():
            adaptive.EXTRA = cfg.get("extra", shipped)
            try:
                results, calls = score(batch, sd, cfg["samples"])
            finally:
                adaptive.EXTRA = shipped
            base = calls if name == "k1" else base
            assert base
            rows[name]["calls_x_k1"].append(calls / base)
            rows[name]["agreement"].append(agreement(results, reference))
            rows[name]["signs"].append(sign_agreement(results, reference))
    return {name: {k: median(v) for k, v in row.items()} for name, row in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--sd", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.5])
    ap.add_argument("--extra", type=float, nargs="*", default=[])
    args = ap.parse_args()
    out = {}
    for sd in args.sd:
        out[str(sd)] = m = measure(sd, args.seeds, args.groups, args.size, tuple(args.extra))
        print(
            f"sd {sd:>4}: agreement with K=16 (grading calls x K=1): "
            + ", ".join(f"{name} {row['agreement']:.3f} ({row['calls_x_k1']:.2f}x)" for name, row in m.items())
            + "; advantage signs: "
            + ", ".join(f"{name} {row['signs']:.3f}" for name, row in m.items()),
            flush=True,
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
