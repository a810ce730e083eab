"""A provider service tier for the judge's calls (rubric `judge.service_tier`): OpenAI's flex tier answers
synchronously at about half the standard price, or with 429 "resource unavailable" when it has no capacity.

    judge:
      service_tier: {name: flex, deadline_s: 300}

A capacity 429 is retried with back-off (backoff_s, doubled, at most 30 s) until deadline_s after the call
started; then the call goes to the standard tier, so a step is never held longer than the deadline by the
tier. Which tier answered each call is counted with its cost (Usage.tiers). Models without the tier (litellm
knows no price for them on it) are refused at start-up (reward.judge.tiers).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ServiceTier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Literal["flex"]
    deadline_s: float = Field(default=300.0, gt=0)  # of capacity 429s, after which the standard tier answers
    backoff_s: float = Field(default=1.0, ge=0.01, le=30)  # the first wait after a capacity 429 (doubling: no flood)
