"""Output models: one scored group per JSONL line, and what each rollout got."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["ok", "penalized", "error"]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorInfo(Out):
    category: str  # judge_timeout, judge_rate_limited, judge_unavailable, judge_parse_error, ...
    message: str


class DimensionResult(Out):
    score: int
    reason: str


class RolloutResult(Out):
    id: str
    status: Status
    reward: float | None  # null when not computed: never an invented number
    penalty: str | None = None
    penalty_detail: str | None = None
    error: ErrorInfo | None = None
    s_pos: float | None = None
    s_pit: float | None = None
    s_fa: float | None = None
    dimensions: dict[str, DimensionResult] | None = None
    advantage: float | None = None
    # False for a rollout in error: it is left out of the group's mean/std and gets no advantage.
    in_group_stats: bool
    has_final_answer: bool
    # The length check used the trainer's exact token count (true, `num_tokens`) or an offline estimate.
    num_tokens: int | None = None
    num_tokens_exact: bool = False


class JudgeInfo(Out):
    condense_model: str
    grade_model: str
    # True when any judgement in this group came from the built-in fake judge: not a real judgement.
    fake: bool


class GroupResult(Out):
    group_id: str
    rubric: str
    rubric_version: str
    judge: JudgeInfo
    mean: float | None
    std: float | None  # population std (ddof=0) of the rewards of the rollouts in the group statistics
    n_scored: int
    n_errors: int
    filtered: bool
    filter_reason: str | None
    rollouts: list[RolloutResult]
