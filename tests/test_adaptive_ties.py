"""`--samples auto` and exact ties: rollouts whose grading requests are identical are one unit, sampled
together (the same count, so the same mean), so a group of copies stays the no-signal group K = 1 and K = 3
call it; and a tie under a judge of no noise is settled, not sampled until the budget is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.rescore import RescoreError, rescore_group
from reward.cache.disk import Store
from reward.core.results import GroupResult
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.replies import FakeNoise
from reward.rubric.adaptive import next_round, replay, units_of
from reward.rubric.load import load_rubric
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer
from tests.conftest import group, rollout, step

RUBRIC = load_rubric("execution_subagent")


def _copy(rid: str, command: str = "pytest -q t.py") -> dict[str, Any]:
    """A rollout whose content (and so grading request) is `command`'s alone, whatever its id."""
    return rollout(rid, steps=[step(command=command)], final_answer="<final_answer>ran pytest</final_answer>")


def _score(rollouts: list[dict[str, Any]], tmp: Path, samples: Any = "auto") -> tuple[GroupResult, int]:
    judge = InProcessFakeJudge(judge_settings(RUBRIC, samples=samples, max_samples=4), noise=FakeNoise(sd=1.5))
    store = Store(tmp)
    try:
        result = asyncio.run(
            Scorer(RUBRIC, judge, store).score_group(Group.model_validate(group("g", rollouts=rollouts)), Usage())
        )
    finally:
        store.close()
    return result, judge.calls["grade"]


def test_copies_of_one_rollout_stay_a_group_with_no_signal(tmp_path):
    copies = [_copy(f"r{i}") for i in range(8)]
    for k in (1, 3):
        assert _score(copies, tmp_path / f"k{k}", k)[0].filtered
    result, calls = _score(copies, tmp_path / "auto")
    assert result.filtered and len({r.reward for r in result.rollouts}) == 1  # never judge noise as advantages
    assert result.sampling is not None and result.sampling.together == [[f"r{i}" for i in range(8)]]
    assert calls == 1  # one request for all of them, as with K = 1
    assert rescore_group(result, RUBRIC).model_dump_json() == result.model_dump_json()


def test_copies_next_to_other_rollouts_are_sampled_together_and_replayed(tmp_path):
    rollouts = [_copy(f"c{i}", "pytest -q a.py") for i in range(3)]
    rollouts += [_copy(f"r{i}", f"pytest -q u{i}.py") for i in range(5)]
    result, calls = _score(rollouts, tmp_path)
    info = result.sampling
    assert info is not None and info.together == [["c0", "c1", "c2"]]
    assert [info.per_rollout[f"c{i}"] for i in range(3)] == [2, 2, 2]  # the unit got a second sample, all of it
    assert len({r.reward for r in result.rollouts if r.id.startswith("c")}) == 1
    extra = sum(k - 1 for rid, k in info.per_rollout.items() if rid.startswith("r"))
    assert calls == 1 + 5 + 1 + extra  # one request per sample of the unit
    assert info.spent == sum(info.per_rollout.values()) <= 8 + 4  # a copy's sample counts once per rollout
    assert rescore_group(result, RUBRIC).model_dump_json() == result.model_dump_json()
    # a file whose `together` the rule could not have written is refused
    assert info.per_rollout["r0"] == 1
    for together in ([["c0", "r0"]], [["c0", "none"]], [["c0", "c1"], ["c1", "c2"]]):
        with pytest.raises(RescoreError, match="together"):
            rescore_group(
                result.model_copy(update={"sampling": info.model_copy(update={"together": together})}), RUBRIC
            )


def test_the_rule_samples_a_unit_as_one():
    samples = [[5.0], [5.0], [5.0], [5.2], [9.0], [13.0], [17.0], [21.0]]
    units = units_of(["a", "a", "a", "b", "c", "d", "e", "f"])
    assert units == [0, 0, 0, 3, 4, 5, 6, 7]
    # the copies' tie among themselves is no pair: the closest is the unit and rollout 3, and the unit goes
    # whole (3 of the budget's 4 extra samples), with one more rollout
    step_ = next_round(samples, [], 4, units)
    assert {0, 1, 2} <= set(step_.more) and len(step_.more) == 4
    tripled = [5.0, 5.5, 5.0]
    ks, _ = replay([tripled, tripled, tripled, [5.2, 4.0], [9.0], [13.0], [17.0], [21.0]], [], 4, units)
    assert ks[0] == ks[1] == ks[2]
    assert next_round([[5.0], [5.0]], [], 4, [0, 0]).reason == "settled"  # nothing to order


def test_with_no_noise_an_exact_tie_is_settled():
    # noise measured as 0 (rollout 0 twice alike): rollout 0 and 1 tie exactly, and a judge of no noise never
    # parts them: sampling them again is spending for nothing
    assert next_round([[5.0, 5.0], [5.0], [9.0]], [], 4).reason == "settled"
    assert next_round([[5.0, 5.0], [5.0], [5.0], [9.0], [13.0]], [], 4).reason == "settled"
    assert next_round([[5.0, 6.0], [5.0], [9.0]], [], 4).more == [1]  # with noise, the tie is still unsure
