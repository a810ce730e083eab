"""Opt-in: score one example group with a real judge provider.

Skipped unless REWARD_TEST_REAL_JUDGE=1 and REWARD_JUDGE_MODEL (plus the provider's key, or
REWARD_JUDGE_API_BASE / REWARD_JUDGE_API_KEY) are set. Costs a few judge calls.
"""

import asyncio
import os

import pytest

from reward.cache.disk import Store
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.judge.litellm_judge import LiteLLMJudge
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer
from tests.conftest import example_groups

pytestmark = pytest.mark.skipif(
    os.environ.get("REWARD_TEST_REAL_JUDGE") != "1" or not os.environ.get("REWARD_JUDGE_MODEL"),
    reason="real judge tests are opt-in: REWARD_TEST_REAL_JUDGE=1 and REWARD_JUDGE_MODEL",
)


def test_real_judge_scores_an_example_group(rubric, tmp_path):
    scorer = Scorer(rubric, LiteLLMJudge(judge_settings(rubric)), Store(tmp_path / "cache"))
    result = asyncio.run(scorer.score_group(Group.model_validate(example_groups()[0]), Usage()))
    by_id = {r.id: r for r in result.rollouts}
    assert result.judge.fake is False
    assert by_id["good"].status == "ok", by_id["good"].error
    # a competent judge ranks the accurate answer above the one that invents a pass
    assert by_id["good"].reward > by_id["hallucinated"].reward
