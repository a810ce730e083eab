"""Batch scoring round trip against the batch API stand-in (no provider is called).

Scores examples/rollouts.jsonl twice with the same fake judge: synchronously (`score_file`), and through the
batch API (`reward.scoring.batch.prefill`, then `score_file` on the filled cache). Reports each wall time, the
batches made, whether the outputs are identical (rewards and everything else but the usage of calls made), and
the cost per 1,000 rollouts at litellm's list and batch prices for gpt-4.1-class models, from the tokens the
batch lines reported (the fake judge counts about 4 characters a token).

    python bench/batch_roundtrip.py [--delay 2.0] [--copies 1]

`--delay`: seconds the stand-in takes per batch (a provider takes minutes to hours); `--copies`: the examples
repeated under new group ids and queries (distinct requests), for a bigger file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reward.cache.disk import Store  # noqa: E402
from reward.judge.base import CallSettings, JudgeSettings  # noqa: E402
from reward.judge.batch_api import batch_price  # noqa: E402
from reward.judge.fake.batch_server import FakeBatchServer  # noqa: E402
from reward.judge.litellm_judge import LiteLLMJudge  # noqa: E402
from reward.rubric.load import load_rubric  # noqa: E402
from reward.scoring.batch import prefill  # noqa: E402
from reward.scoring.dry_run_report import price  # noqa: E402
from reward.scoring.runner import score_file  # noqa: E402
from reward.scoring.scorer import Scorer  # noqa: E402

MODELS = ["openai/gpt-4.1-2025-04-14", "openai/gpt-4.1-mini-2025-04-14", "openai/gpt-4o-2024-08-06"]


def scorer(api_base: str, cache: Path) -> Scorer:
    call = CallSettings("openai/bench-judge", 0.0, 1024)
    settings = JudgeSettings(condense=call, grade=call, api_base=api_base, api_key="sk-bench")
    return Scorer(load_rubric("execution_subagent"), LiteLLMJudge(settings), Store(cache))


def rows(path: Path) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in found:
        r.pop("usage", None)
    return sorted(found, key=lambda r: r["group_id"])


async def timed(coro: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await coro
    return time.perf_counter() - start, result


async def main(delay: float, copies: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="reward-batch-bench-"))
    lines = (ROOT / "examples" / "rollouts.jsonl").read_text().splitlines()
    groups = [json.loads(x) for x in lines if x.strip()]
    inp = tmp / "in.jsonl"
    with inp.open("w") as f:
        for i in range(copies):
            for g in groups:
                # a new query per copy: distinct requests, as new rollouts would be (no cache hit across copies)
                query = g["query"] + ("" if i == 0 else f" (copy {i})")
                f.write(json.dumps({**g, "group_id": f"{g['group_id']}-{i}", "query": query}) + "\n")
    rollouts = copies * sum(len(g["rollouts"]) for g in groups)
    with FakeBatchServer(delay=delay) as fb:
        sync = scorer(fb.api_base, tmp / "cache-sync")
        sync_s, _ = await timed(score_file(sync, inp, tmp / "sync.jsonl"))
        sync_calls = fb.counts()["total"]
        fb.reset()
        batch = scorer(fb.api_base, tmp / "cache-batch")
        batch_s, report = await timed(prefill(batch, inp, tmp / "batch.jsonl", poll_s=0.1))
        run_s, _ = await timed(score_file(batch, inp, tmp / "batch.jsonl"))
        after = sum(1 for c in fb.state.calls if not c.get("batch"))
        await sync.aclose()
    u = report.usage
    per_1000 = {}
    for model in MODELS:
        lp, bp = price(model), batch_price(model)
        if lp is None or bp is None:
            continue
        sync_cost = (u.prompt_tokens * lp[0] + u.completion_tokens * lp[1]) * 1000 / rollouts
        batch_cost = (u.prompt_tokens * bp[0] + u.completion_tokens * bp[1]) * 1000 / rollouts
        per_1000[model] = {"sync_usd": sync_cost, "batch_usd": batch_cost, "ratio": batch_cost / sync_cost}
    return {
        "rollouts": rollouts,
        "stand_in_delay_s": delay,
        "sync": {"wall_s": round(sync_s, 3), "calls": sync_calls},
        "batch": {
            "prefill_wall_s": round(batch_s, 3),
            "run_after_s": round(run_s, 3),
            "batches": len(report.batches),
            "requests": report.requests,
            "passes": report.passes,
            "sync_calls_after": after,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
        },
        "identical_output": rows(tmp / "sync.jsonl") == rows(tmp / "batch.jsonl"),
        "cost_per_1000_rollouts": per_1000,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(main(args.delay, args.copies))
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["identical_output"] and result["batch"]["sync_calls_after"] == 0 else 1)
