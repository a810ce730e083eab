"""`--samples auto` when an extra sample cannot be had: every graded rollout has its reward from sample 0, so a
failed or late extra sample stops the rounds and each rollout keeps the samples it has (never an error), no
round starts after the deadline, and `reward rescore` replays such a group; a file it cannot replay is refused
naming the right cause."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.rescore import RescoreError, rescore_group
from reward.cache.disk import Store
from reward.core.results import GroupResult
from reward.core.trajectory import Group
from reward.judge.base import JudgeError, Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.replies import FakeNoise
from reward.rubric.load import load_rubric
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer
from tests.conftest import group, rollout, step

RUBRIC = load_rubric("execution_subagent")


class Flaky(InProcessFakeJudge):
    """Fails the grading requests whose text holds one of `bad` (extra samples only, unless `first`)."""

    bad: tuple[str, ...] = ()
    first: tuple[str, ...] = ()  # fails sample 0 (no seed) of these

    async def complete(
        self, role: str, messages: Any, usage: Usage, response_format: Any = None, seed: Any = None
    ) -> Any:
        text = json.dumps(messages)
        if role == "grade" and any(b in text for b in (self.bad if seed else self.first)):
            raise JudgeError("judge_unavailable", "extra sample failed")
        return await super().complete(role, messages, usage, response_format, seed)


class Slow(InProcessFakeJudge):
    """Answers sample 0 at once and every extra sample after a minute; notes when each extra one started."""

    started: list[float]

    async def complete(
        self, role: str, messages: Any, usage: Usage, response_format: Any = None, seed: Any = None
    ) -> Any:
        if seed:
            self.started.append(asyncio.get_running_loop().time())
            await asyncio.sleep(60)
        return await super().complete(role, messages, usage, response_format, seed)


def _group(gid: str = "g0", n: int = 8) -> Group:
    rollouts = [rollout(f"r{i}", steps=[step(command=f"pytest -q t{gid}{i}.py")]) for i in range(n)]
    rollouts.append(rollout("none", steps=[]))  # penalised: no command
    return Group.model_validate(group(gid, rollouts=rollouts))


def _score(judge: InProcessFakeJudge, tmp: Path, deadline_in: float | None = None) -> GroupResult:
    store = Store(tmp)

    async def run() -> GroupResult:
        deadline = None if deadline_in is None else asyncio.get_running_loop().time() + deadline_in
        return await Scorer(RUBRIC, judge, store).score_group(_group(), Usage(), deadline)

    try:
        return asyncio.run(run())
    finally:
        store.close()


def _judge(cls: type[InProcessFakeJudge], samples: Any = "auto") -> Any:
    return cls(judge_settings(RUBRIC, samples=samples, max_samples=4), noise=FakeNoise(sd=1.5))


def _k1(tmp: Path) -> dict[str, float | None]:
    return {r.id: r.reward for r in _score(_judge(InProcessFakeJudge, 1), tmp).rollouts}


def test_extra_samples_that_all_fail_leave_the_k1_rewards_and_stop(tmp_path):
    judge = _judge(Flaky)
    judge.bad = ("pytest",)  # every extra sample fails
    result = _score(judge, tmp_path / "auto")
    assert result.n_errors == 0 and all(r.status != "error" for r in result.rollouts)
    assert {r.id: r.reward for r in result.rollouts} == _k1(tmp_path / "k1")
    info = result.sampling
    assert info is not None and info.reason == "judge_error"
    assert info.per_rollout == {f"r{i}": 1 for i in range(8)} and info.spent == 8
    assert rescore_group(result, RUBRIC).model_dump_json() == result.model_dump_json()


def test_one_failed_extra_sample_keeps_its_rollout_and_rescore_replays_the_stop(tmp_path):
    judge = _judge(Flaky)
    judge.bad = ("tg04.py",)  # r4's extra samples fail (the rule asks for one in this group's rounds)
    judge.first = ("tg06.py",)  # and r6's first sample: an error, outside the rule, as with K = 1
    result = _score(judge, tmp_path)
    status = {r.id: r.status for r in result.rollouts}
    assert status["r4"] == "ok" and status["r6"] == "error" and result.n_errors == 1
    info = result.sampling
    assert info is not None and info.reason == "judge_error"
    assert info.per_rollout["r4"] == 1 and "r6" not in info.per_rollout
    assert info.spent == sum(info.per_rollout.values()) > 7  # every graded rollout's samples, more than one each
    for r in result.rollouts:  # each keeps the samples it drew
        if r.status == "ok":
            d = next(iter((r.dimensions or {}).values()))
            assert (len(d.samples) if d.samples else 1) == info.per_rollout[r.id]
    rescored = rescore_group(result, RUBRIC)  # the same rubric: the saved decisions, stop included
    assert rescored.model_dump_json() == result.model_dump_json()


def test_the_deadline_stops_the_rounds_and_no_round_starts_after_it(tmp_path):
    judge = _judge(Slow)
    judge.started = []
    result = _score(judge, tmp_path / "auto", deadline_in=4.0)  # time enough for sample 0 on a loaded machine
    assert result.n_errors == 0 and {r.id: r.reward for r in result.rollouts} == _k1(tmp_path / "k1")
    assert result.sampling is not None and result.sampling.reason == "deadline"
    assert result.sampling.per_rollout == {f"r{i}": 1 for i in range(8)}
    assert 0 < len(judge.started) <= 2  # the first round only (the closest pair), started before the deadline
    assert rescore_group(result, RUBRIC).model_dump_json() == result.model_dump_json()


def _as_older_versions_wrote_it(result: GroupResult, rid: str) -> GroupResult:
    """An extra-sample failure as older versions wrote it: the rollout an error, its samples gone."""
    from reward.core.trajectory import Rollout
    from reward.scoring.judged import error_result

    rollouts = []
    for r in result.rollouts:
        if r.id == rid:
            r = error_result(
                Rollout.model_validate(rollout(rid)), r.has_final_answer, "judge_unavailable", "extra sample failed"
            )
        rollouts.append(r)
    assert result.sampling is not None
    per = {k: v for k, v in result.sampling.per_rollout.items() if k != rid}
    sampling = result.sampling.model_copy(update={"per_rollout": per, "spent": sum(per.values())})
    return result.model_copy(update={"rollouts": rollouts, "sampling": sampling, "n_errors": 1})


def test_a_group_the_rule_cannot_replay_is_refused_naming_the_cause(tmp_path):
    result = _score(_judge(InProcessFakeJudge), tmp_path)
    assert result.sampling is not None
    sampled = [rid for rid, k in result.sampling.per_rollout.items() if k > 1]
    old = _as_older_versions_wrote_it(result, sampled[0])  # its samples shaped the rounds; the file lacks them
    with pytest.raises(RescoreError, match="do not replay the rule's decisions") as same:
        rescore_group(old, RUBRIC)
    assert "this rubric's rewards" not in str(same.value)  # the rubric is the one the file was scored with
    cut = result.model_copy(update={"rollouts": [_first_sample_only(r) for r in result.rollouts]})
    changed = load_rubric("execution_subagent", ["penalties.no_commands=30"])
    with pytest.raises(RescoreError, match="this rubric's rewards"):
        rescore_group(cut, changed)  # new rewards (the penalised one's), and a file short of samples


def _first_sample_only(r: Any) -> Any:
    if r.dimensions is None:
        return r
    dims = {
        n: d.model_copy(update={"score": d.samples[0] if d.samples else d.score, "samples": None, "std": None})
        for n, d in r.dimensions.items()
    }
    return r.model_copy(update={"dimensions": dims})
