"""A loop per group (`asyncio.run(scorer.score_group(...))`, as a script or a synchronous trainer hook does)
must not leave a judge connection open per loop: litellm keeps its clients for the process and cannot close
their sockets once their loop is gone, so `Scorer.aclose()` closes them while the loop still runs."""

from __future__ import annotations

import asyncio
import contextlib
import os

from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.judge.fake.http import fake_plan
from reward.judge.litellm_judge import LiteLLMJudge
from reward.judge.router_config import load_router_config
from reward.scoring.scorer import Scorer
from tests.conftest import group, rollout, settings_for, step

PLAN = fake_plan("### Command 1: `ls`\n\nExit Code: 0\n")


def open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return n


def loops(scorer: Scorer, name: str, n: int = 12) -> list[int]:
    counts = []
    for i in range(n):

        async def one(i: int = i) -> None:
            data = group(f"{name}{i}", rollouts=[rollout("x", steps=[step(f"ls {i}")])], reference={"plan": PLAN})
            try:
                result = await scorer.score_group(Group.model_validate(data), Usage())
                assert result.rollouts[0].status == "ok", result.rollouts[0].error
            finally:
                await scorer.aclose()

        asyncio.run(one())
        counts.append(open_sockets())
    return counts


def test_a_loop_per_group_leaves_no_connection_open(make_scorer):
    counts = loops(make_scorer(), "loop")
    # The first loop may open what the process keeps; without aclose each loop leaves 2 more (both ends, the
    # fake judge being in this process). Other tests' sockets may close meanwhile, none may be added.
    assert counts[-1] <= counts[1] + 1, counts


def test_a_router_judge_closes_its_connections_too(make_scorer, fake_judge, rubric, tmp_path):
    cfg = tmp_path / "router.yaml"
    cfg.write_text(
        "model_list:\n"
        + "\n".join(
            f"  - model_name: {role}\n    litellm_params: {{model: openai/test-judge, api_base: {fake_judge.api_base},"
            " api_key: sk-x}"
            for role in ("condense", "grade")
        )
        + "\n"
    )
    base = make_scorer()
    judge = LiteLLMJudge(settings_for(fake_judge), load_router_config(str(cfg)))
    counts = loops(Scorer(rubric, judge, base.store), "router")
    assert counts[-1] <= counts[1] + 1, counts


def test_one_judge_serves_consecutive_event_loops_under_its_concurrency_limit(fake_judge, rubric):
    """Loop-bound state (the call semaphore, the limiter's) is made per loop: a judge used by one `asyncio.run`
    keeps working in the next, its calls still held to `concurrency` at a time."""
    from reward.judge.limits import JudgeLimiter, RoleLimits

    fake_judge.state.latency = 0.05
    judge = LiteLLMJudge(settings_for(fake_judge, concurrency=2))
    judge.limiter = JudgeLimiter({"condense": RoleLimits(max_parallel_requests=2)}, None, "loops")
    msg = [{"role": "user", "content": "## Task Query\n\nhello"}]

    async def burst() -> None:
        try:
            await asyncio.gather(*(judge.complete("condense", msg, Usage()) for _ in range(6)))
        finally:
            await judge.aclose()

    for _ in range(3):
        asyncio.run(burst())
    assert fake_judge.counts()["condense"] == judge.usage.calls["condense"] == 18
    assert fake_judge.state.peak_in_flight <= 2
