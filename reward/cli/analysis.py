"""What the commands that analyse scored files share (one module per command: compare, report, calibrate,
rescore): reading a scored file leniently, writing an output whole, refusing to overwrite an input.

Values read from a scored file are printed as plain text (never as rich markup) and escaped in HTML: they come
from the policy's rollouts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rich.text import Text

from reward.analysis.scored import ScoredGroup, output_target, read_scored_lenient
from reward.cli.console import err
from reward.errors import OutputError, UsageError


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def load(path: Path) -> tuple[list[ScoredGroup], list[str]]:
    groups, problems = read_scored_lenient(path)
    for p in problems[:20]:
        err.print(Text(f"skipped: {p}", style="red"))
    if len(problems) > 20:
        err.print(f"[red]... and {len(problems) - 20} more skipped lines[/red]")
    if not groups:
        raise UsageError(f"{path}: no scored group could be read")
    return groups, problems


def write_whole(path: Path, text: str) -> None:
    """Write whole or not at all: a temporary file renamed into place (onto a link's regular file; anything
    else that is not a regular file is refused: `output_target`)."""
    path = output_target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder itself may be what cannot be written
            tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from exc


def same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # also through a link, or another spelling of the path
        return a.resolve() == b.resolve()
    except OSError:
        return False


def refuse_overwrite(output: Path, option: str, *inputs: Path) -> None:
    """An output that is one of the inputs would replace the scored data with HTML: refused before reading."""
    for scored in inputs:
        if same_file(output, scored):
            raise UsageError(f"{option} {output} is a scored input: it would be overwritten, choose another file")
