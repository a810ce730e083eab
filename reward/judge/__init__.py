"""Judges: the interface the scorer asks (`Judge`: one call, and the re-ask loop), the litellm judge (the
project's only network seam) with its routes, limits, router configuration and redaction, the cached-judge
wrapper that owns the cache key, and the fakes (`reward.judge.fake`).

Importing this package does not import litellm: `LiteLLMJudge` loads it on first use.
"""

from typing import TYPE_CHECKING

from reward._lazy import lazy_exports
from reward.judge.base import CallSettings, InvalidReply, Judge, JudgeError, JudgeSettings, Reply, Usage
from reward.judge.cached import CachedJudge

if TYPE_CHECKING:
    from reward.judge.litellm_judge import LiteLLMJudge

__all__ = [
    "CachedJudge",
    "CallSettings",
    "InvalidReply",
    "Judge",
    "JudgeError",
    "JudgeSettings",
    "LiteLLMJudge",
    "Reply",
    "Usage",
]
__getattr__, __dir__ = lazy_exports(__name__, {"LiteLLMJudge": "reward.judge.litellm_judge"})
