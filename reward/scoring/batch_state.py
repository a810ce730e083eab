"""`<output>.batches.json`: the batches a batch prefill has made, kept beside the output so that a restarted
run waits on them (and reads their results) instead of sending their requests again.

Each entry is written before the batch is created (its input file id and request ids) and again with the
batch id once it exists: a run stopped in between finds the batch by its input file. Written atomically
(a temporary file, then a rename): a killed run leaves the old state or the new one, never half of one.
Entries are in the order the batches were made: a restart reads them in that order. An entry the provider
refused for good (its batch not created, or its output gone) is taken out, its requests counted as failed.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from reward.errors import OutputError, RunError


class BatchEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: str
    batch_id: str | None = None
    custom_ids: list[str]


class BatchFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    endpoint: str
    batches: list[BatchEntry] = []


def later(state: BatchFile, entry: BatchEntry) -> set[str]:
    """The requests of the batches made after `entry` (on a restart: re-sent before the stop)."""
    at = next((i for i, e in enumerate(state.batches) if e is entry), len(state.batches))
    return {cid for e in state.batches[at + 1 :] for cid in e.custom_ids}


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".batches.json")


def load(path: Path, endpoint: str) -> BatchFile:
    """The saved state, or a fresh one; refuses a file that is not one, or another endpoint's batches."""
    if not path.exists():
        return BatchFile(endpoint=endpoint)
    try:
        state = BatchFile.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError) as exc:
        raise RunError(f"{path}: not a batch state file ({type(exc).__name__}); move it away to start over") from exc
    if state.endpoint != endpoint:
        raise RunError(
            f"{path}: its batches were sent to {state.endpoint}, this run's judge is {endpoint}; "
            "finish that run with its judge, or move the file away"
        )
    return state


def save(path: Path, state: BatchFile) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(state.model_dump(), separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"{path}: cannot be written: {exc.strerror}") from exc


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
