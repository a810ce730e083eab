"""Scoring: the scorer of one prompt group (penalties, condensing, grading, the formula, group statistics),
offline runs over JSONL files (resumable, one whole line per group), and building a scorer from flags, the
environment and the rubric. Importing this package does not import litellm."""

from typing import TYPE_CHECKING

from reward._lazy import lazy_exports
from reward.scoring.build import judge_settings, open_scorer

if TYPE_CHECKING:
    from reward.scoring.runner import plan_file, score_file
    from reward.scoring.scorer import Scorer

__all__ = ["Scorer", "judge_settings", "open_scorer", "plan_file", "score_file"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {"Scorer": "reward.scoring.scorer", "plan_file": "reward.scoring.runner", "score_file": "reward.scoring.runner"},
)
