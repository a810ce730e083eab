"""The judge defaults of a rubric file (`judge:`): the calls' models and settings, retries, samples, tier."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from reward.rubric.bounds import SpecModel
from reward.rubric.service_tier import ServiceTier


class JudgeCall(SpecModel):
    model: str = Field(min_length=1)
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=2048, gt=0)
    # grade: ask for the score tokens' logprobs and make each score the expectation over its distribution
    logprobs: bool = False


class JudgeDefaults(SpecModel):
    condense: JudgeCall | None = None  # needed when the rubric has a condensing stage
    grade: JudgeCall
    timeout_s: float = Field(default=120.0, gt=0)
    num_retries: int = Field(default=3, ge=0)
    max_reasks: int = Field(default=2, ge=0)
    # Judge noise: grade each rollout this many times (seeds 0..K-1) and average; see reward.rubric.noise.
    # auto: one each, more only where a group's order or advantage sign is unsure (reward.rubric.adaptive).
    samples: Annotated[int, Field(ge=1, le=32)] | Literal["auto"] = 1
    max_samples: int = Field(default=4, ge=2, le=32)  # with samples auto: the most verdicts one rollout gets
    resample_condense: bool = False  # with samples > 1 (or auto), also condense each sample anew
    # e.g. {name: flex, deadline_s: 300}: every judge call on the provider's flex tier (reward.judge.tiers)
    service_tier: ServiceTier | None = None
