"""reward: a rubric-based LLM-as-judge reward for RL of terminal execution subagents.

The public API, loaded on first use (`import reward` imports none of it, litellm least of all):

    import asyncio, reward
    rubric = reward.load_rubric("execution_subagent")
    judge = reward.InProcessFakeJudge(reward.judge_settings(rubric))  # or reward.LiteLLMJudge(...)
    scorer = reward.Scorer(rubric, judge, reward.Store(None))
    result = reward.run_scoring(scorer, scorer.score_group(reward.Group.model_validate(line), reward.Usage()))

`run_scoring` is `asyncio.run` that closes the judge's connections before the loop ends (`Scorer.aclose`).
"""

from typing import TYPE_CHECKING

from reward._lazy import lazy_exports

# The one place the version is written: pyproject.toml reads it from here ([tool.hatch.version]), so a source
# checkout and an installed wheel agree, and no lookup by distribution name can find another package.
__version__ = "0.1.0"

if TYPE_CHECKING:
    from reward.analysis.rescore import RescoreError, rescore_group
    from reward.analysis.scored import read_scored_lenient
    from reward.cache.disk import Store
    from reward.cache.redis_store import open_store
    from reward.core.results import GroupResult, RolloutResult, read_result_line
    from reward.core.trajectory import Group, Rollout, Step, Trajectory
    from reward.errors import ConfigError, RewardError, RunError, UsageError
    from reward.judge.base import CallSettings, Judge, JudgeError, JudgeSettings, Usage
    from reward.judge.fake.in_process import InProcessFakeJudge
    from reward.judge.litellm_judge import LiteLLMJudge
    from reward.rubric.load import Rubric, RubricError, load_rubric
    from reward.scoring.build import judge_settings, open_scorer, run_scoring
    from reward.scoring.runner import score_file
    from reward.scoring.scorer import Scorer

_EXPORTS = {
    # input and output models
    "Step": "reward.core.trajectory",
    "Trajectory": "reward.core.trajectory",
    "Rollout": "reward.core.trajectory",
    "Group": "reward.core.trajectory",
    "GroupResult": "reward.core.results",
    "RolloutResult": "reward.core.results",
    "read_result_line": "reward.core.results",
    "read_scored_lenient": "reward.analysis.scored",
    # rubrics
    "Rubric": "reward.rubric.load",
    "RubricError": "reward.rubric.load",
    "load_rubric": "reward.rubric.load",
    # judges
    "Judge": "reward.judge.base",
    "JudgeSettings": "reward.judge.base",
    "CallSettings": "reward.judge.base",
    "JudgeError": "reward.judge.base",
    "Usage": "reward.judge.base",
    "LiteLLMJudge": "reward.judge.litellm_judge",
    "InProcessFakeJudge": "reward.judge.fake.in_process",
    # scoring
    "Store": "reward.cache.disk",
    "open_store": "reward.cache.redis_store",
    "Scorer": "reward.scoring.scorer",
    "judge_settings": "reward.scoring.build",
    "open_scorer": "reward.scoring.build",
    "run_scoring": "reward.scoring.build",
    "score_file": "reward.scoring.runner",
    "rescore_group": "reward.analysis.rescore",
    "RescoreError": "reward.analysis.rescore",
    # errors
    "RewardError": "reward.errors",
    "ConfigError": "reward.errors",
    "UsageError": "reward.errors",
    "RunError": "reward.errors",
}

__all__ = [
    "CallSettings",
    "ConfigError",
    "Group",
    "GroupResult",
    "InProcessFakeJudge",
    "Judge",
    "JudgeError",
    "JudgeSettings",
    "LiteLLMJudge",
    "RescoreError",
    "RewardError",
    "Rollout",
    "RolloutResult",
    "Rubric",
    "RubricError",
    "RunError",
    "Scorer",
    "Step",
    "Store",
    "Trajectory",
    "Usage",
    "UsageError",
    "__version__",
    "judge_settings",
    "load_rubric",
    "open_scorer",
    "open_store",
    "read_result_line",
    "read_scored_lenient",
    "rescore_group",
    "run_scoring",
    "score_file",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
