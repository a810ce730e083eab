"""The output file of a run, kept whole: one writer at a time (`exclusive`), whole lines only (`LineWriter`:
one write per record, undone on a failed write), and on resume the groups already there (`load_done`, which
drops a torn last line). Also the tolerant reader of input lines (`read_lines`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reward.errors import OutputError, RunError


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    yield lineno, line
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {exc.strerror}") from exc


def count_lines(path: Path) -> int:
    return sum(1 for _ in read_lines(path))


def load_done(
    output: Path,
    key: str,
    rubric_version: str | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    foreign: Callable[[dict[str, Any]], str | None] | None = None,
    rewrite: bool = True,
) -> set[str]:
    """Ids already in `output`; rewrites the file without a torn last line or records `keep` rejects (unless
    not `rewrite`: a dry run reads and leaves the file as it is). `foreign(record)` says why a record was not
    written by this run's judge and K (the run refuses: one output file holds one judge's numbers)."""
    if not output.exists():
        return set()
    try:
        raw = output.read_bytes()
    except OSError as exc:
        raise RunError(f"{output}: cannot read: {exc.strerror}") from exc
    kept: list[bytes] = []
    done: set[str] = set()
    dropped = False
    for chunk in raw.split(b"\n"):
        if not chunk.strip():
            continue
        try:
            record = json.loads(chunk)
            ident = record[key]
        except (ValueError, KeyError, TypeError, RecursionError):
            dropped = True  # a torn line from an interrupted run
            continue
        if rubric_version is not None and record.get("rubric_version") != rubric_version:
            raise RunError(
                f"{output}: group {ident!r} was scored with rubric version {record.get('rubric_version')}, "
                f"not the current {rubric_version}; write to a new output file (or `reward rescore` this one)"
            )
        why = foreign(record) if foreign is not None else None
        if why is not None:
            raise RunError(f"{output}: group {ident!r} {why}; write to a new output file")
        if keep is not None and not keep(record):
            dropped = True
            continue
        kept.append(chunk)
        done.add(ident)
    if rewrite and (dropped or (raw and not raw.endswith(b"\n"))):
        tmp = output.with_name(output.name + ".tmp")
        try:
            tmp.write_bytes(b"".join(c + b"\n" for c in kept))
            os.replace(tmp, output)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise OutputError(f"{output}: cannot rewrite it without its torn last line: {exc.strerror}") from exc
    return done


_LOCK_TRIES = 100  # each retry needs another run to take and finish a whole run in between: never reached


@contextlib.contextmanager
def exclusive(output: Path) -> Iterator[None]:
    """One writer per output file: two runs appending to one file would interleave and duplicate groups.

    An advisory lock on `<output>.lock` (flock: released by the kernel when the process dies, so a killed
    run never leaves a stale lock); a second run refuses at once with a clear message.

    The holder removes the lock file when it ends, so finished runs leave nothing beside their output (a
    killed run leaves the file, unlocked: the next run takes it and removes it). Removing a flock'ed file
    is safe only with a check on the other side: a run that opened the file before it was removed can get
    the lock on it after, on a file no path names any more, while a third run creates and locks a new one.
    So a run counts the lock as its own only once the path still names the very file it locked, and
    otherwise starts over; and only the holder removes the file, while holding it, after the same check.
    """
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, a read-only parent: one line, exit 3
        raise OutputError(f"{output}: cannot create its folder {output.parent}: {exc.strerror}") from exc
    path = output.with_name(output.name + ".lock")
    for _ in range(_LOCK_TRIES):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(f"{output}: cannot create the lock file {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunError(
                f"{output}: another run is writing to this file; wait for it to finish or use another output"
            ) from None
        if _names(path, fd):
            break
        os.close(fd)  # removed (and maybe created anew) by the run that held it since it was opened: again
    else:
        raise RunError(f"{output}: the lock file {path} keeps being replaced; is something deleting it?")
    try:
        yield
    finally:
        try:
            if _names(path, fd):  # never a file someone put there since (by hand: ours is still ours otherwise)
                path.unlink()
        except OSError:
            pass  # left behind (a read-only folder, ...): harmless, the next run takes it
        finally:
            os.close(fd)  # after the unlink: the lock is held until the path no longer names the file


def _names(path: Path, fd: int) -> bool:
    """Whether `path` names the file open on `fd` now (not removed, not replaced by another file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class LineWriter:
    """Appends whole lines: one os.write per record, so a crash never interleaves or splits two. A write that
    fails (disk full) is undone to the last whole line and raised as OutputError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"{path}: cannot be written: {exc.strerror}") from exc

    def write(self, record: str) -> None:
        data = (record + "\n").encode("utf-8")
        end = os.fstat(self.fd).st_size  # the one writer (`exclusive`): the record lands here
        try:
            written = os.write(self.fd, data)
            while written < len(data):  # a short write on a regular file is rare; finish it
                written += os.write(self.fd, data[written:])
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, end)  # no torn line: the file ends with its last whole one
            raise OutputError(f"{self.path}: cannot be written: {exc.strerror or exc}") from exc

    def close(self) -> None:
        os.close(self.fd)
