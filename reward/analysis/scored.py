"""Reading scored output files (`reward score -o ...`) for analysis: compare, report, calibrate.

The models ignore fields they do not know, so files written by another version of `reward` can still be
compared; a malformed line is reported with its number and skipped, never a traceback.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reward.core.trajectory import validation_problems
from reward.errors import OutputError, UsageError


class Lenient(BaseModel):
    # NaN or infinity (which Python's json accepts) would poison every mean and order: the line is refused.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class ScoredDimension(Lenient):
    score: float
    reason: str = ""
    samples: list[float] | None = None
    std: float | None = None


class ScoredError(Lenient):
    category: str
    message: str = ""


class ScoredRollout(Lenient):
    id: str
    status: str
    reward: float | None = None
    penalty: str | None = None
    error: ScoredError | None = None
    dimensions: dict[str, ScoredDimension] | None = None
    advantage: float | None = None
    reward_std: float | None = None
    has_final_answer: bool | None = None
    meta: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        return self.model_dump()


class ScoredJudge(Lenient):
    condense_model: str = ""
    grade_model: str = ""
    fake: bool = False


class ScoredNoise(Lenient):
    samples: int
    snr: float | None = None
    noise_var: float | None = None
    signal_var: float | None = None


class ScoredCommand(Lenient):
    command: str = ""
    exit_code: int | None = None
    output: str = ""


class ScoredTranscript(Lenient):
    steps: list[ScoredCommand] = []
    final_answer: str = ""


class ScoredUsage(Lenient):
    judge_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None


class ScoredGroup(Lenient):
    group_id: str
    rubric: str = ""
    rubric_version: str = ""
    judge: ScoredJudge = Field(default_factory=ScoredJudge)
    mean: float | None = None
    std: float | None = None
    filtered: bool = False
    rollouts: list[ScoredRollout]
    noise: ScoredNoise | None = None
    reference_plan: str | None = None
    plans: dict[str, str] | None = None
    transcripts: dict[str, ScoredTranscript] | None = None
    usage: ScoredUsage | None = None


G = TypeVar("G", bound=ScoredGroup)


@overload
def read_scored_lenient(path: Path) -> tuple[list[ScoredGroup], list[str]]: ...
@overload
def read_scored_lenient(path: Path, model: type[G]) -> tuple[list[G], list[str]]: ...
def read_scored_lenient(path: Path, model: type[Any] = ScoredGroup) -> tuple[list[Any], list[str]]:
    """The groups of a scored file, in file order, and the problems of the lines that were skipped. `model`: a
    ScoredGroup subclass that keeps more of each line (the report's)."""
    if not path.is_file():
        raise UsageError(f"scored file not found: {path}")
    groups: list[Any] = []
    problems: list[str] = []
    seen: set[str] = set()
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    group = model.model_validate(json.loads(line))
                except json.JSONDecodeError as exc:
                    problems.append(f"{path}:{lineno}: invalid JSON: {exc.msg}")
                    continue
                except ValidationError as exc:
                    problems.append(f"{path}:{lineno}: " + "; ".join(validation_problems(exc)))
                    continue
                except (RecursionError, ValueError) as exc:  # nested deeper than any parser follows, say
                    problems.append(f"{path}:{lineno}: invalid JSON: {_why(exc)}")
                    continue
                if group.group_id in seen:
                    problems.append(f"{path}:{lineno}: duplicate group_id {group.group_id!r} (first kept)")
                    continue
                seen.add(group.group_id)
                groups.append(group)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    if not groups and problems:
        raise UsageError(_not_scored(path, problems))
    return groups, problems


def _why(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]


def output_target(path: Path) -> Path:
    """Where an output written whole (a temporary file renamed into place) lands: `path`, or the regular file a
    symbolic link there names (the link is kept, its target rewritten). Anything else already there (a folder,
    a FIFO, a device, a socket, a link to one of them or to nothing) is refused: the rename would put a file in
    its place, and a pipe's reader or a device's users would never see it."""
    if not path.is_symlink() and not path.exists():
        return path
    try:
        mode = path.stat().st_mode  # through links
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: a link to nothing usable ({exc.strerror})") from exc
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path}: cannot write: it exists and is not a regular file; choose another output")
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _not_scored(path: Path, problems: list[str]) -> str:
    """One line instead of one problem per line when the file is not a scored output at all."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            first = json.loads(next(line for line in f if line.strip()))
    except (OSError, ValueError, RecursionError, StopIteration):
        first = None
    rollouts = first.get("rollouts") if isinstance(first, dict) else None
    if isinstance(rollouts, list) and rollouts and all(isinstance(r, dict) and "status" not in r for r in rollouts):
        hint = f"score it first: reward score {path} -o scored.jsonl"
        return f"{path} is not a scored file: it looks like `reward score` input ({hint})"
    return f"{path} is not a scored file: none of its {len(problems)} line(s) is a scored group (line 1: {problems[0]})"
