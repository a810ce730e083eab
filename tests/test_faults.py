"""Judge faults injected by the fake judge: survived exactly, or reported as categorised errors in time."""

from __future__ import annotations

import asyncio
import time

from reward.core.trajectory import Group
from reward.judge.base import Usage
from tests.conftest import group, rollout, step


def grpo_batch(tag: str) -> list[Group]:
    groups = []
    for g in range(16):
        rollouts = [
            rollout(f"r{i}", steps=[step(f"pytest -k {tag}_{g}_{i}", i % 3, f"{i} failed, {g} passed")])
            for i in range(7)
        ]
        rollouts.append(rollout("lazy", steps=[]))
        ref = {
            "steps": [step(f"pytest {tag}_{g}", 1, "1 failed")],
            "final_answer": "<final_answer>1 failed</final_answer>",
        }
        groups.append(Group.model_validate(group(f"{tag}-{g}", rollouts=rollouts, reference=ref)))
    return groups


def score_all(scorer, groups):
    async def run():
        usage = Usage()
        return await asyncio.gather(*(scorer.score_group(g, usage) for g in groups))

    return asyncio.run(run())


def rewards(results):
    return {(g.group_id, r.id): r.reward for g in results for r in g.rollouts}


def test_20_percent_faults_every_rollout_scored_with_identical_rewards(make_scorer, fake_judge, tmp_path):
    kw = {"timeout_s": 1.0, "num_retries": 2, "max_reasks": 2, "concurrency": 64}
    clean = score_all(make_scorer(cache=tmp_path / "clean", **kw), grpo_batch("f"))
    fake_judge.reset()
    fake_judge.state.fault_rate = 0.2
    fake_judge.state.hang_s = 2.0  # past the 1 s call timeout
    faulty = score_all(make_scorer(cache=tmp_path / "faulty", **kw), grpo_batch("f"))
    injected = dict(fake_judge.state.injected)
    calls = fake_judge.counts()["total"]
    fake_judge.reset()
    assert all(r.status in ("ok", "penalized") for g in faulty for r in g.rollouts)
    assert rewards(faulty) == rewards(clean)
    assert sum(injected.values()) >= 0.1 * calls  # about one call in five was faulty
    # every kind of fault occurred at least once
    assert set(injected) >= {
        "429",
        "500",
        "503",
        "hang",
        "empty",
        "refusal",
        "truncated",
        "malformed",
        "missing_dimension",
        "out_of_range",
        "cut",
        "plain_refusal",
        "no_choices",
        "huge_number",
    }, injected


def test_judge_down_every_rollout_is_a_categorised_error_never_a_number(make_scorer, fake_judge, tmp_path):
    fake_judge.state.down = True
    try:
        t0 = time.monotonic()
        results = score_all(make_scorer(cache=tmp_path / "down", timeout_s=1.0, num_retries=1), grpo_batch("down")[:4])
        elapsed = time.monotonic() - t0
    finally:
        fake_judge.reset()
    for g in results:
        assert g.n_errors == 7 and g.n_scored == 1  # only the penalised rollout has a reward
        for r in g.rollouts[:7]:
            assert r.status == "error" and r.reward is None and r.advantage is None
            assert r.error.category == "judge_unavailable"
    assert elapsed < 10
