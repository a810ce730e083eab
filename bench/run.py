"""Throughput and judge-economy benchmark of `reward serve`, against a judge stand-in that costs next to
nothing, with a hand-written bare-litellm pipeline as the floor, measured in the same run.

    python bench/run.py                # medians of 3 runs (about 10 minutes on 2 cores)
    python bench/run.py --quick        # one run each

Each round sends the same shape of GRPO step (B prompts x G rollouts, one request per group, all at once,
fresh rollouts so nothing is cached) to: the bare litellm process (bare calls, then the bare pipeline),
`reward serve` with 1 worker, and with 2 workers; ratios are taken within a round, then the median over
rounds is reported. These machines are shared and noisy: ratios in the same round matter most.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from economy import economy, sequential_baseline
from harness import ROOT, children, judge_stats, post, server, step_groups, stub_judge, usage_sum

from reward.judge.llm import choose_route

OTHER_SECTIONS = ("hedging",)  # sections of results.json another benchmark writes (bench/hedging.py)
JUDGE_MODEL = "openai/bench-judge"  # what the server is given; the route it picks is what the bare calls use


def bare_run(judge: Any, groups: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(groups, f)
    route = choose_route(JUDGE_MODEL, judge.url + "/v1").model
    try:
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "bare_litellm.py"),
                judge.url + "/v1",
                route,
                f.name,
                str(concurrency),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def step(srv: Any, judge: Any, b: int, g: int, tag: str) -> dict[str, Any]:
    """One GRPO step on a warm server: wall, server CPU (all processes), per-worker CPU split, usage."""
    bodies = [{"groups": [grp]} for grp in step_groups(b, g, tag)]
    j0, k0, cpu0 = judge_stats(judge), children(srv.proc.pid), srv.cpu()
    wall, answers = post(srv.url + "/score", bodies)
    cpu, k1, j1 = srv.cpu() - cpu0, children(srv.proc.pid), judge_stats(judge)
    n = b * g
    rewards = [r["reward"] for a in answers for grp in a["groups"] for r in grp["rollouts"]]
    assert len(rewards) == n and all(x is not None for x in rewards), "every rollout must be scored"
    u = usage_sum(answers)
    jd = {k: j1.get(k, 0) - j0.get(k, 0) for k in j1}
    per_worker = sorted((k1[p] - k0.get(p, 0.0) for p in k1), reverse=True)[:2]
    return {
        "wall_s": wall,
        "server_cpu_per_rollout_ms": 1000 * cpu / n,
        "worker_cpu_split": (per_worker[1] / per_worker[0]) if len(per_worker) == 2 and per_worker[0] else None,
        "judge_calls_per_rollout": u["judge_calls"] / n,
        "prompt_tokens_per_rollout": u["prompt_tokens"] / n,
        "completion_tokens_per_rollout": u["completion_tokens"] / n,
        "cached_tokens_reported": u["cached_tokens"],
        "cached_tokens_judge_said": jd.get("condense_cached_tokens", 0) + jd.get("grade_cached_tokens", 0),
        "grade_cacheable_share": jd.get("grade_shared_prefix_tokens", 0) / max(1, jd.get("grade_prompt_tokens", 0)),
        "grade_cached_share": jd.get("grade_cached_tokens", 0) / max(1, jd.get("grade_prompt_tokens", 0)),
        "bodies": bodies,
    }


def shape_round(judge: Any, srv1: Any, srv2: Any, b: int, g: int, latency: float, tag: str) -> dict[str, Any]:
    n, conc = b * g, max(64, 2 * b * g)
    bare = bare_run(judge, step_groups(b, g, f"{tag}-bare-{time.time_ns()}"), conc)
    w1 = step(srv1, judge, b, g, f"{tag}-w1-{time.time_ns()}")
    w2 = step(srv2, judge, b, g, f"{tag}-w2-{time.time_ns()}")
    two_bare_ms = 2000 * bare["cpu_per_call_s"]
    return {
        "bare_cpu_per_call_ms": 1000 * bare["cpu_per_call_s"],
        "bare_pipeline_wall_s": bare["pipeline_wall_s"],
        "bare_pipeline_cpu_per_rollout_ms": 1000 * bare["pipeline_cpu_per_rollout_s"],
        "w1": {k: v for k, v in w1.items() if k != "bodies"},
        "w2": {k: v for k, v in w2.items() if k != "bodies"},
        "cpu_ratio_w1": w1["server_cpu_per_rollout_ms"] / two_bare_ms,
        "cpu_ratio_w2": w2["server_cpu_per_rollout_ms"] / two_bare_ms,
        "wall_vs_bare_pipeline_w1": w1["wall_s"] / bare["pipeline_wall_s"],
        "wall_vs_bare_pipeline_w2": w2["wall_s"] / bare["pipeline_wall_s"],
        "wall_over_2L_w1": w1["wall_s"] / (2 * latency) if latency else None,
        "wall_over_2L_w2": w2["wall_s"] / (2 * latency) if latency else None,
        "rollouts": n,
        "_last_bodies": w1["bodies"],
    }


def median_tree(runs: list[Any]) -> Any:
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_tree([r[k] for r in runs]) for k in first if not k.startswith("_")}
    if isinstance(first, (int, float)) and not isinstance(first, bool) and all(r is not None for r in runs):
        return statistics.median(runs)
    return first


class Servers:
    """A judge stand-in with latency L, and `reward serve` with 1 and with 2 workers on it, warm."""

    def __init__(self, latency: float, warm_shape: tuple[int, int]) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="reward-bench-"))
        self.judge = stub_judge(latency)
        conc = max(64, 2 * 128 * 8)
        self.w1 = server(self.judge, self.tmp / "c1", 1, concurrency=conc)
        self.w2 = server(self.judge, self.tmp / "c2", 2, concurrency=conc)
        # A training run scores hundreds of same-shaped steps: measure warm servers (imports done,
        # connections open), as the bare calls are measured warm too.
        for srv, workers in ((self.w1, 1), (self.w2, 2)):
            for _ in range(2 * workers):
                post(srv.url + "/score", [{"groups": [g]} for g in step_groups(*warm_shape, f"warm-{time.time_ns()}")])

    def close(self) -> None:
        for p in (self.w1, self.w2, self.judge):
            p.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--baseline-rollouts", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="one run each, 4-rollout baseline")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = ap.parse_args()
    if args.quick:
        args.repeat, args.baseline_rollouts = 1, 4
    L, R = args.latency, args.repeat
    load0 = os.getloadavg()
    res: dict[str, Any] = {"cores": os.cpu_count(), "latency_s": L, "repeat": R, "loadavg_before": load0}
    print(f"machine: {os.cpu_count()} cores, load {load0[0]:.2f}; judge latency L = {L} s; medians of {R} run(s)")

    s = Servers(L, (16, 8))
    try:
        rounds16, rounds128 = [], []
        for r in range(R):
            rounds16.append(shape_round(s.judge, s.w1, s.w2, 16, 8, L, f"s16-{r}"))
            rounds128.append(shape_round(s.judge, s.w1, s.w2, 128, 8, L, f"s128-{r}"))
            print(f"round {r + 1}/{R} done", flush=True)
        time.sleep(1.0)  # let litellm's background logging of the step settle
        bodies = rounds16[-1]["_last_bodies"]
        walls = []
        for _ in range(5):
            wall, answers = post(s.w1.url + "/score", bodies)
            walls.append(wall)
            assert usage_sum(answers)["judge_calls"] == 0
        res["cached_rescore_ms_per_rollout"] = 1000 * statistics.median(walls) / len(bodies) / 8
    finally:
        s.close()
    res["step_16x8"], res["step_128x8"] = median_tree(rounds16), median_tree(rounds128)

    s0 = Servers(0.0, (64, 8))
    try:
        speedups = []
        for r in range(R):
            w1 = step(s0.w1, s0.judge, 64, 8, f"l0w1-{r}-{time.time_ns()}")
            w2 = step(s0.w2, s0.judge, 64, 8, f"l0w2-{r}-{time.time_ns()}")
            speedups.append(
                {
                    "w1_wall_s": w1["wall_s"],
                    "w2_wall_s": w2["wall_s"],
                    "speedup": w1["wall_s"] / w2["wall_s"],
                    "w2_worker_cpu_split": w2["worker_cpu_split"],
                }
            )
        res["workers_L0_64x8"] = median_tree(speedups)
    finally:
        s0.close()

    base = sequential_baseline(L, args.baseline_rollouts)
    res["sequential_baseline"] = base
    res["speedup_vs_sequential_16x8"] = base["per_rollout_s"] * 128 / res["step_16x8"]["w1"]["wall_s"]
    res["economy"] = economy()
    res["loadavg_after"] = os.getloadavg()
    prior = json.loads(args.out.read_text()) if args.out.exists() else {}
    res.update({k: prior[k] for k in OTHER_SECTIONS if k in prior})  # written by their own benchmarks
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print_table(res)
    print(f"\nwritten to {args.out}")


def print_table(res: dict[str, Any]) -> None:
    s16, s128, l0 = res["step_16x8"], res["step_128x8"], res["workers_L0_64x8"]
    big = (res["cores"] or 0) >= 16

    def row(name: str, value: float | None, fmt: str, target: float | None, le: bool = True, note: str = "") -> tuple:
        if value is None:
            return (name, "n/a", "", "")
        met = "" if target is None else ("met" if (value <= target if le else value >= target) else "NOT met")
        tgt = "" if target is None else f"{'<=' if le else '>='} {target:g}"
        return (name, format(value, fmt), tgt + note, met)

    sixteen = "" if big else f" (16-core target; this machine has {res['cores']})"
    rows = [
        row("server CPU/rollout / 2 bare calls, 16x8, 1 worker", s16["cpu_ratio_w1"], ".2f", 1.15),
        row("server CPU/rollout / 2 bare calls, 128x8, 1 worker", s128["cpu_ratio_w1"], ".2f", 1.15),
        row("server CPU/rollout / 2 bare calls, 128x8, 2 workers", s128["cpu_ratio_w2"], ".2f", 1.15),
        row("  server CPU per rollout (ms), 16x8", s16["w1"]["server_cpu_per_rollout_ms"], ".2f", None),
        row("  bare litellm CPU per call (ms), 16x8", s16["bare_cpu_per_call_ms"], ".2f", None),
        row("step wall / bare pipeline, 16x8, 1 worker", s16["wall_vs_bare_pipeline_w1"], ".3f", 0.90),
        row("step wall / bare pipeline, 16x8, 2 workers", s16["wall_vs_bare_pipeline_w2"], ".3f", 0.90),
        row("step wall / bare pipeline, 128x8, 2 workers", s128["wall_vs_bare_pipeline_w2"], ".3f", 0.60),
        row("  bare pipeline wall (s), 16x8 / 128x8", None, "", None),
        row("128x8 wall / 2L, 2 workers", s128["wall_over_2L_w2"], ".2f", 2.5),
        row("2 workers / 1 worker at L=0 (64x8)", l0["speedup"], ".2f", 1.7, le=False),
        row("  CPU split between the 2 workers (L=0, min/max)", l0["w2_worker_cpu_split"], ".2f", None),
        row("  CPU split between the 2 workers (128x8, min/max)", s128["w2"]["worker_cpu_split"], ".2f", None),
        row("grade input tokens cacheable within a group", s16["w1"]["grade_cacheable_share"], ".3f", 0.70, le=False),
        row("grade input tokens the judge served cached", s16["w1"]["grade_cached_share"], ".3f", None),
        row("16x8 wall / 2L, 1 worker", s16["wall_over_2L_w1"], ".3f", 1.10, note=sixteen),
        row("16x8 wall / 2L, 2 workers", s16["wall_over_2L_w2"], ".3f", 1.10, note=sixteen),
        row("128x8 wall / 2L, 1 worker", s128["wall_over_2L_w1"], ".3f", 1.25, note=sixteen),
        row("128x8 wall / 2L, 2 workers", s128["wall_over_2L_w2"], ".3f", 1.25, note=sixteen),
        row("cached re-score, ms per rollout", res["cached_rescore_ms_per_rollout"], ".3f", 1.0),
        row("speed-up vs sequential (128 rollouts)", res["speedup_vs_sequential_16x8"], ".0f", 100, le=False),
        row("judge calls / rollout", s16["w1"]["judge_calls_per_rollout"], ".2f", None),
    ]
    rows[8] = (
        "  bare pipeline wall (s), 16x8 / 128x8",
        f"{s16['bare_pipeline_wall_s']:.2f} / {s128['bare_pipeline_wall_s']:.2f}",
        "",
        "",
    )
    print(f"\n{'figure':<54}{'measured':>14}  {'target':<10}")
    for name, val, target, met in rows:
        print(f"{name:<54}{val:>14}  {target:<10} {met}")
    rep, said = s16["w1"]["cached_tokens_reported"], s16["w1"]["cached_tokens_judge_said"]
    print(f"cached tokens reported by reward / said by the judge (16x8, 1 worker): {rep:.0f} / {said:.0f}")
    print(
        "prompt / completion tokens per rollout: "
        f"{s16['w1']['prompt_tokens_per_rollout']:.0f} / {s16['w1']['completion_tokens_per_rollout']:.0f}"
    )
    print("\neconomy:", json.dumps(res["economy"]))
    la, lb = res["loadavg_before"], res["loadavg_after"]
    print(f"load average before / after: {la[0]:.2f} / {lb[0]:.2f}")


if __name__ == "__main__":
    main()
