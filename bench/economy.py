"""The judge-call economy (counts) and the sequential baseline, against the project's fake judge."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, fake_judge, post, server, step_groups, usage_sum


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
