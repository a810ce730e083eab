"""Hedged judge calls against a long-tailed judge: step wall with and without hedging, and the calls paid.

    python bench/hedging.py                  # 5 rounds, judge median 1 s (about 4 minutes)
    python bench/hedging.py --rounds 3 --median 0.5 --quantile 0.9 --max-fraction 0.1

One judge stand-in (bench/stub_judge.py) whose every call takes a lognormal time (sigma 1, the median given:
p90 3.6x, p99 10x the median), and two `reward serve` processes (1 worker each) on it: one without hedging,
one with REWARD_HEDGE_QUANTILE / REWARD_HEDGE_MAX_FRACTION. Each is warmed with steps first (a training run
scores hundreds of steps: the latency window is full, the running count of calls is under way). A round
sends one GRPO step (16 groups x 8 rollouts, one request per group, all at once, fresh rollouts so nothing is
cached) to each server in turn (the order alternates) and takes the ratio of walls within the round; extra
calls are the judge's own count of requests received, hedged over plain. Medians over the rounds are
written to bench/results.json under "hedging".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, Proc, judge_stats, post, server, step_groups, stub_judge

B, G = 16, 8


def one_step(srv: Proc, judge: Proc, tag: str) -> dict[str, float]:
    bodies = [{"groups": [g]} for g in step_groups(B, G, f"{tag}-{time.time_ns()}")]
    j0 = judge_stats(judge)
    wall, answers = post(srv.url + "/score", bodies)
    j1 = judge_stats(judge)
    rewards = [r["reward"] for a in answers for grp in a["groups"] for r in grp["rollouts"]]
    assert len(rewards) == B * G and all(x is not None for x in rewards), "every rollout must be scored"
    sent = sum(j1.get(k, 0) - j0.get(k, 0) for k in ("condense_calls", "grade_calls"))
    counted = sum(a["usage"]["judge_calls"] for a in answers)
    return {"wall_s": wall, "judge_requests": sent, "usage_judge_calls": counted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warm", type=int, default=3, help="unmeasured steps per server first")
    ap.add_argument("--median", type=float, default=1.0, help="the judge's median latency, seconds")
    ap.add_argument("--quantile", type=float, default=0.95)
    ap.add_argument("--max-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reward-bench-hedge-"))
    load0 = os.getloadavg()
    judge = stub_judge(args.median, lognormal=True, seed=args.seed)
    hedge_env = {"REWARD_HEDGE_QUANTILE": str(args.quantile), "REWARD_HEDGE_MAX_FRACTION": str(args.max_fraction)}
    procs = [judge]
    try:
        plain = server(judge, tmp / "plain", 1, concurrency=1024, extra_env={"REWARD_HEDGE_QUANTILE": ""})
        procs.append(plain)
        hedged = server(judge, tmp / "hedged", 1, concurrency=1024, extra_env=hedge_env)
        procs.append(hedged)
        for i in range(args.warm):
            one_step(plain, judge, f"warm-plain-{i}")
            one_step(hedged, judge, f"warm-hedged-{i}")
        rounds = []
        for r in range(args.rounds):
            order = [("plain", plain), ("hedged", hedged)]
            out = {name: one_step(srv, judge, f"{name}-{r}") for name, srv in (order if r % 2 == 0 else order[::-1])}
            p, h = out["plain"], out["hedged"]
            rounds.append(
                {
                    "plain_wall_s": p["wall_s"],
                    "hedged_wall_s": h["wall_s"],
                    "wall_ratio": h["wall_s"] / p["wall_s"],
                    "plain_judge_requests": p["judge_requests"],
                    "hedged_judge_requests": h["judge_requests"],
                    "extra_calls_fraction": h["judge_requests"] / p["judge_requests"] - 1,
                    "hedged_usage_judge_calls": h["usage_judge_calls"],
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    section = {
        "shape": f"{B}x{G}",
        "judge_latency": f"lognormal, sigma 1, median {args.median} s",
        "quantile": args.quantile,
        "max_fraction": args.max_fraction,
        "rounds": args.rounds,
        "warm_steps": args.warm,
        "cores": os.cpu_count(),
        "loadavg_before": load0,
        "median": med,
        "per_round": rounds,
        "targets": {"wall_ratio": "<= 0.6", "extra_calls_fraction": "<= 0.10"},
        "met": med["wall_ratio"] <= 0.6 and med["extra_calls_fraction"] <= 0.10,
    }
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["hedging"] = section
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\n16x8 step wall, hedged / plain: {med['wall_ratio']:.2f} (target <= 0.6); "
        f"plain {med['plain_wall_s']:.2f} s, hedged {med['hedged_wall_s']:.2f} s; "
        f"extra judge calls {100 * med['extra_calls_fraction']:.1f}% (target <= 10%); medians of {args.rounds}"
    )
    print(f"written to {args.out} (section 'hedging')")


if __name__ == "__main__":
    main()
