"""What a user could hand-write with litellm alone, measured against the same judge (own process).

    python bench/bare_litellm.py API_BASE MODEL GROUPS_JSON CONCURRENCY  ->  prints a JSON object

With the project's real prompts (its templates, rubric and verdict schema) for the rollouts in GROUPS_JSON:
1. bare calls: every condense prompt and a grade prompt per rollout, pre-rendered, sent as plain
   `litellm.acompletion` calls (CPU per call: the CPU the library itself costs);
2. the bare pipeline: `asyncio.gather` over rollouts of condense-then-grade with bare calls (wall time: the
   floor a hand-written pipeline reaches with the same library).
Plain litellm as a user calls it: default executor, default GC, no price registration.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from reward.core.trajectory import Group, condense_input
from reward.judge.llm import litellm  # sets LITELLM_LOCAL_MODEL_COST_MAP before importing litellm
from reward.rubric.load import load_rubric
from reward.rubric.prompts import condense_messages, grade_messages
from reward.rubric.verdict import response_format


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(api_base: str, model: str, groups_file: str, concurrency: int) -> None:
    rubric = load_rubric("execution_subagent")
    spec = rubric.spec
    t = spec.truncation
    rf = response_format(spec)
    sem = asyncio.Semaphore(concurrency)
    groups = [Group.model_validate(g) for g in json.loads(Path(groups_file).read_text())]
    items = [(g, condense_input(g.query, r, t.head, t.tail)) for g in groups for r in g.rollouts]

    async def call(role: str, messages: list[dict[str, str]]) -> str:
        c = spec.judge.condense if role == "condense" else spec.judge.grade
        kw: dict[str, Any] = {"response_format": rf} if role == "grade" else {}
        async with sem:
            resp = await litellm.acompletion(
                model=model,
                api_base=api_base,
                api_key="bench",
                messages=messages,
                temperature=c.temperature,
                max_tokens=c.max_tokens,
                timeout=120,
                **kw,
            )
        return resp.choices[0].message.content or ""

    def grade_msgs(g: Group, ci: Any, plan: str) -> list[dict[str, str]]:
        ref = getattr(g.reference, "plan", "")
        return grade_messages(rubric, ci, reference_plan=ref, candidate_plan=plan)

    async def pipeline(g: Group, ci: Any) -> dict[str, Any]:
        plan = await call("condense", condense_messages(rubric, ci))
        return json.loads(await call("grade", grade_msgs(g, ci, plan)))

    # warm up: imports, connections
    await asyncio.gather(*(pipeline(g, ci) for g, ci in items[: min(32, len(items))]))
    # 1. bare calls, prompts rendered beforehand
    prompts = [("condense", condense_messages(rubric, ci)) for _, ci in items]
    prompts += [("grade", grade_msgs(g, ci, f"EXECUTION PLAN\n\n- candidate {i}")) for i, (g, ci) in enumerate(items)]
    c0 = cpu()
    await asyncio.gather(*(call(role, m) for role, m in prompts))
    cpu_per_call = (cpu() - c0) / len(prompts)
    # 2. the bare pipeline
    c0, w0 = cpu(), time.perf_counter()
    verdicts = await asyncio.gather(*(pipeline(g, ci) for g, ci in items))
    wall = time.perf_counter() - w0
    assert len(verdicts) == len(items)
    out = {
        "calls": len(prompts),
        "cpu_per_call_s": cpu_per_call,
        "pipeline_rollouts": len(items),
        "pipeline_wall_s": wall,
        "pipeline_cpu_per_rollout_s": (cpu() - c0) / len(items),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
