"""Throughput and judge-economy benchmark of `reward serve` against the fake judge.

    python bench/run.py                # the full set (about 3 minutes on 2 cores)
    python bench/run.py --quick        # one run each, small baseline

Every figure is a ratio or a count measured in the same run (these machines are shared and noisy); with
--repeat N each scenario runs N times and the median is reported. Results are printed and written as JSON.
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
from harness import ROOT, fake_judge, post, server, step_groups, usage_sum


def bare_cpu_per_call(judge_url: str, n: int = 1024, concurrency: int = 256) -> float:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "bare_litellm.py"), judge_url + "/v1", str(n), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["cpu_per_call_s"]


def step_run(latency: float, b: int, g: int, workers: int, tag: str, cached_rescore: bool = False) -> dict[str, Any]:
    """One GRPO step (b prompts x g rollouts, one request per prompt group, all at once) on a fresh cache."""
    tmp = Path(tempfile.mkdtemp(prefix="reward-bench-"))
    judge = fake_judge(latency)
    srv = server(judge, tmp / "cache", workers, concurrency=max(64, 2 * b * g))
    try:
        # A training run scores hundreds of same-shaped steps: measure a warm server (imports done,
        # connections open), as the bare litellm calls are measured warm too.
        for _ in range(workers):  # each worker process warms up on its own share of connections
            post(srv.url + "/score", [{"groups": [grp]} for grp in step_groups(b, g, f"warm-{tag}-{time.time_ns()}")])
        groups = step_groups(b, g, f"{tag}-{time.time_ns()}")
        bodies = [{"groups": [grp]} for grp in groups]
        bare = bare_cpu_per_call(judge.url)
        cpu0 = srv.cpu()
        wall, answers = post(srv.url + "/score", bodies)
        cpu = srv.cpu() - cpu0
        n = b * g
        u = usage_sum(answers)
        rewards = [r["reward"] for a in answers for grp in a["groups"] for r in grp["rollouts"]]
        assert len(rewards) == n and all(x is not None for x in rewards), "every rollout must be scored"
        out = {
            "rollouts": n,
            "workers": workers,
            "latency_s": latency,
            "wall_s": wall,
            "wall_over_2L": wall / (2 * latency) if latency else None,
            "server_cpu_per_rollout_ms": 1000 * cpu / n,
            "bare_litellm_cpu_per_call_ms": 1000 * bare,
            "cpu_ratio_vs_2_bare_calls": cpu / n / (2 * bare),
            "judge_calls_per_rollout": u["judge_calls"] / n,
            "cache_hits": u["cache_hits"],
            "prompt_tokens_per_rollout": u["prompt_tokens"] / n,
            "completion_tokens_per_rollout": u["completion_tokens"] / n,
        }
        if cached_rescore:
            time.sleep(1.0)  # let litellm's background logging of the step settle
            walls = []
            for _ in range(5):
                wall2, answers2 = post(srv.url + "/score", bodies)
                walls.append(wall2)
                assert usage_sum(answers2)["judge_calls"] == 0
            out["cached_rescore_ms_per_rollout"] = 1000 * statistics.median(walls) / n
            out["cached_rescore_judge_calls"] = 0
        return out
    finally:
        srv.stop()
        judge.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def sequential_baseline(latency: float, k: int) -> dict[str, Any]:
    """What a trainer's default reward function does: one rollout after another, each awaited."""
    tmp = Path(tempfile.mkdtemp(prefix="reward-bench-"))
    judge = fake_judge(latency)
    srv = server(judge, tmp / "cache", 1, concurrency=64)
    try:
        groups = step_groups(1, k, f"seq-{time.time_ns()}")
        bodies = [
            {"groups": [{**groups[0], "group_id": f"seq-{i}", "rollouts": [r]}]}
            for i, r in enumerate(groups[0]["rollouts"])
        ]
        wall, _ = post(srv.url + "/score", bodies, concurrent=False)
        return {"rollouts": k, "wall_s": wall, "per_rollout_s": wall / k}
    finally:
        srv.stop()
        judge.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def economy(latency: float = 0.05) -> dict[str, Any]:
    """Judge calls the design makes unnecessary, as counts."""
    tmp = Path(tempfile.mkdtemp(prefix="reward-bench-"))
    rubrics = tmp / "rubrics"
    rubrics.mkdir()
    src = (ROOT / "rubrics" / "execution_subagent.yaml").read_text()
    (rubrics / "execution_subagent.yaml").write_text(src)
    (rubrics / "reworded.yaml").write_text(
        src.replace("name: execution_subagent", "name: reworded").replace(
            "Were the commands the right ones", "Were the commands right"
        )
    )
    judge = fake_judge(latency)
    srv = server(judge, tmp / "cache", 1, concurrency=256, rubric_dir=rubrics)
    tag = f"eco-{time.time_ns()}"
    try:
        out: dict[str, Any] = {}
        # 1. identical rollouts in flight at the same moment share one call (8 copies x 4 concurrent requests)
        same = step_groups(1, 1, tag + "-same")[0]
        copies = [
            {
                "groups": [
                    {
                        **same,
                        "group_id": f"same-{i}",
                        "rollouts": [{**same["rollouts"][0], "id": f"r{j}"} for j in range(8)],
                    }
                ]
            }
            for i in range(4)
        ]
        _, a = post(srv.url + "/score", copies)
        u = usage_sum(a)
        out["coalescing"] = {
            "rollouts": 32,
            "condense_calls": u["condense_calls"],
            "grade_calls": u["grade_calls"],
            "coalesced": u["coalesced"],
        }
        # 2. penalised rollouts cost nothing
        pen = step_groups(2, 8, tag + "-pen")
        for grp in pen:
            for j, r in enumerate(grp["rollouts"]):
                if j % 2:
                    r["final_answer"] = "no tags"
                else:
                    r["steps"] = []
        _, a = post(srv.url + "/score", [{"groups": pen}])
        out["penalised"] = {"rollouts": 16, "judge_calls": usage_sum(a)["judge_calls"]}
        # 3. a changed rubric re-grades but does not re-condense
        step = step_groups(4, 8, tag + "-rub")
        _, a1 = post(srv.url + "/score", [{"groups": step}])
        _, a2 = post(srv.url + "/score", [{"groups": step, "rubric": "reworded"}])
        u1, u2 = usage_sum(a1), usage_sum(a2)
        out["rubric_change"] = {
            "rollouts": 32,
            "first": {"condense_calls": u1["condense_calls"], "grade_calls": u1["grade_calls"]},
            "reworded_rubric": {"condense_calls": u2["condense_calls"], "grade_calls": u2["grade_calls"]},
        }
        # 4. a reference trajectory is condensed once ever (two steps, same reference, new rollouts)
        ref = {
            "steps": [{"command": f"pytest  # {tag}", "exit_code": 1, "output": "1 failed"}],
            "final_answer": "<final_answer>1 failed</final_answer>",
        }
        s1 = [{**grp, "reference": ref} for grp in step_groups(2, 8, tag + "-ref1")]
        s2 = [{**grp, "reference": ref} for grp in step_groups(2, 8, tag + "-ref2")]
        _, b1 = post(srv.url + "/score", [{"groups": s1}])
        _, b2 = post(srv.url + "/score", [{"groups": s2}])
        out["reference_once"] = {
            "step1_condense_calls": usage_sum(b1)["condense_calls"],
            "step2_condense_calls": usage_sum(b2)["condense_calls"],
            "distinct_rollouts_per_step": 16,
        }
        return out
    finally:
        srv.stop()
        judge.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for k, v in runs[0].items():
        vals = [r[k] for r in runs]
        out[k] = (
            statistics.median(vals) if isinstance(v, (int, float)) and v is not None and not isinstance(v, bool) else v
        )
    out["runs"] = len(runs)
    return out


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
    L = args.latency
    res: dict[str, Any] = {"cores": os.cpu_count(), "latency_s": L, "repeat": args.repeat}

    def rep(fn, *a, **kw):
        return median_of([fn(*a, **kw) for _ in range(args.repeat)])

    print(f"machine: {os.cpu_count()} cores; judge latency L = {L} s; medians of {args.repeat} run(s)", flush=True)
    res["step_16x8"] = rep(step_run, L, 16, 8, 1, "s16", cached_rescore=True)
    res["step_16x8_w2"] = rep(step_run, L, 16, 8, 2, "s16w2")
    print("16x8 done", flush=True)
    res["step_128x8_w1"] = rep(step_run, L, 128, 8, 1, "s128w1")
    res["step_128x8_w2"] = rep(step_run, L, 128, 8, 2, "s128w2")
    print("128x8 done", flush=True)
    res["workers_L0_w1"] = rep(step_run, 0.0, 64, 8, 1, "cpu1")
    res["workers_L0_w2"] = rep(step_run, 0.0, 64, 8, 2, "cpu2")
    res["workers_speedup_L0"] = res["workers_L0_w1"]["wall_s"] / res["workers_L0_w2"]["wall_s"]
    base = sequential_baseline(L, args.baseline_rollouts)
    res["sequential_baseline"] = base
    res["speedup_vs_sequential_16x8"] = base["per_rollout_s"] * 128 / res["step_16x8"]["wall_s"]
    res["economy"] = economy()
    args.out.write_text(json.dumps(res, indent=2) + "\n")

    s16, w1, w2 = res["step_16x8"], res["step_128x8_w1"], res["step_128x8_w2"]
    rows = [
        ("16x8 wall / 2L (1 worker)", f"{s16['wall_over_2L']:.3f}", "<= 1.10"),
        ("16x8 wall / 2L (2 workers)", f"{res['step_16x8_w2']['wall_over_2L']:.3f}", "<= 1.10"),
        ("128x8 wall / 2L (1 worker)", f"{w1['wall_over_2L']:.3f}", "<= 1.25"),
        ("128x8 wall / 2L (2 workers)", f"{w2['wall_over_2L']:.3f}", "<= 1.25"),
        ("CPU/rollout vs 2 bare litellm calls (16x8)", f"{s16['cpu_ratio_vs_2_bare_calls']:.2f}", "<= 1.3"),
        (
            "  server CPU/rollout, bare call (ms)",
            f"{s16['server_cpu_per_rollout_ms']:.2f}, {s16['bare_litellm_cpu_per_call_ms']:.2f}",
            "",
        ),
        ("CPU/rollout vs 2 bare calls (128x8, 1 worker)", f"{w1['cpu_ratio_vs_2_bare_calls']:.2f}", "<= 1.3"),
        ("cached re-score, ms per rollout", f"{s16['cached_rescore_ms_per_rollout']:.3f}", "<= 1"),
        ("speed-up vs sequential (128 rollouts)", f"{res['speedup_vs_sequential_16x8']:.0f}x", ">= 100x"),
        ("2 workers / 1 worker at L=0 (64x8)", f"{res['workers_speedup_L0']:.2f}x", ">= 1.7x"),
        ("judge calls / rollout", f"{s16['judge_calls_per_rollout']:.2f}", "2"),
        (
            "prompt / completion tokens per rollout",
            f"{s16['prompt_tokens_per_rollout']:.0f} / {s16['completion_tokens_per_rollout']:.0f}",
            "",
        ),
    ]
    print(f"\n{'figure':<48}{'measured':>14}  target")
    for name, val, target in rows:
        print(f"{name:<48}{val:>14}  {target}")
    print("\neconomy:", json.dumps(res["economy"]))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
