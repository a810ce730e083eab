"""Does mixing canaries into live traffic (REWARD_CANARY_RATE) slow the trainer's steps?

    python bench/canary_overhead.py [--steps 12] [--groups 8] [--rollouts 8] [--latency 0.3] [--rate 1.0]

Starts the fake judge (each call --latency s) and one `reward serve` worker, once with REWARD_CANARY_RATE=0 and
once with --rate, and sends the same kind of step (B groups x G distinct rollouts, each group with a reference
trajectory, so every step can be audited) one after another, as a trainer does. Prints per run the median and
slowest step time, the judge calls the answers counted (the trainer's) and the canary audits done or skipped
(GET /canaries), and writes them to bench/canary_overhead.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, fake_judge, server, step_groups

EXAMPLE = json.loads((ROOT / "examples" / "rollouts.jsonl").read_text().splitlines()[0])


def audited_step(b: int, g: int, tag: str) -> list[dict[str, Any]]:
    """A step whose groups carry a reference trajectory (canaries are built from one)."""
    groups = step_groups(b, g, tag)
    for group in groups:
        group["reference"] = copy.deepcopy(EXAMPLE["reference"])
    return groups


def run(rate: float, args: argparse.Namespace, judge: Any, tmp: Path) -> dict[str, Any]:
    os.environ["REWARD_CANARY_RATE"] = str(rate)
    srv = server(judge, tmp / f"cache-{rate}", workers=1, concurrency=64)
    try:
        times, calls = [], 0
        for s in range(args.steps):
            body = {"groups": audited_step(args.groups, args.rollouts, f"rate{rate}-step{s}")}
            t0 = time.perf_counter()
            r = httpx.post(f"{srv.url}/score", json=body, timeout=600)
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
            calls += r.json()["usage"]["judge_calls"]
        time.sleep(args.latency * 40)  # the last audits finish
        canaries = httpx.get(f"{srv.url}/canaries", timeout=30).json()
    finally:
        srv.stop()
    return {
        "rate": rate,
        "step_s_median": round(statistics.median(times), 3),
        "step_s_max": round(max(times), 3),
        "trainer_judge_calls": calls,
        "audits": canaries["audits"],
        "canaries_judged": sum(k["n"] for k in canaries["canaries"].values()),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--rollouts", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--rate", type=float, default=1.0)
    args = p.parse_args()
    judge = fake_judge(args.latency)
    try:
        with tempfile.TemporaryDirectory() as d:
            results = [run(rate, args, judge, Path(d)) for rate in (0.0, args.rate)]
    finally:
        judge.stop()
    for r in results:
        print(json.dumps(r))
    out = {"args": vars(args), "runs": results}
    (ROOT / "bench" / "canary_overhead.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
