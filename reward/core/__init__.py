"""The pure core's data: input trajectories and groups (strict JSONL), cleaning and truncating outputs, the
output models of a scored group, GRPO group statistics and run summaries. No judge, no I/O."""

from reward.core.clean import clean_output, prepare_output, truncate
from reward.core.group_stats import GroupStats, group_stats
from reward.core.results import (
    Basis,
    DimensionResult,
    ErrorInfo,
    GroupResult,
    JudgeInfo,
    NoiseInfo,
    RolloutResult,
    read_result_line,
)
from reward.core.summary import Summary, summarize
from reward.core.trajectory import (
    CondenseInput,
    Group,
    IdReference,
    LineError,
    PlanReference,
    Rollout,
    Step,
    Strict,
    Trajectory,
    TrajectoryReference,
    condense_input,
    parse_json,
    parse_line,
)

__all__ = [
    "Basis",
    "CondenseInput",
    "DimensionResult",
    "ErrorInfo",
    "Group",
    "GroupResult",
    "GroupStats",
    "IdReference",
    "JudgeInfo",
    "LineError",
    "NoiseInfo",
    "PlanReference",
    "Rollout",
    "RolloutResult",
    "Step",
    "Strict",
    "Summary",
    "Trajectory",
    "TrajectoryReference",
    "clean_output",
    "condense_input",
    "group_stats",
    "parse_json",
    "parse_line",
    "prepare_output",
    "read_result_line",
    "summarize",
    "truncate",
]
