"""`reward rescore` (registered by reward.cli.main)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from reward.cli.analysis import refuse_overwrite, write_whole
from reward.cli.console import interrupt_between_steps, out
from reward.cli.overrides import SetOpt
from reward.errors import UsageError


def rescore(
    scored: Annotated[Path, typer.Argument(help="A scored output (JSONL from `reward score`).")],
    rubric: Annotated[str, typer.Option("--rubric", "-r", help="The edited rubric (name or YAML path).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the rescored groups (JSONL).")],
    samples: Annotated[
        str | None,
        typer.Option(
            "--samples", help="Only a check: the K (1-32 or auto) the file was graded with [the file's basis.samples]."
        ),
    ] = None,
    resample_condense: Annotated[
        bool | None,
        typer.Option("--resample-condense/--no-resample-condense", help="Only a check, as --samples [the file's]."),
    ] = None,
    overrides: SetOpt = None,
) -> None:
    """Recompute rewards, group statistics and advantages from saved scores with an edited rubric: no judge
    call. Refuses when the rubric's prompts or dimensions differ (its judgements would not be these)."""
    from pydantic import ValidationError

    from reward.analysis.rescore import rescore_groups
    from reward.cli.options import samples_option
    from reward.core.results import GroupResult, read_result_line
    from reward.rubric.load import load_rubric

    r = load_rubric(rubric, overrides or [])
    if not scored.is_file():
        raise UsageError(f"scored file not found: {scored}")
    refuse_overwrite(output, "--output", scored)

    def groups() -> Iterator[GroupResult]:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield read_result_line(line)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                raise UsageError(f"{scored}:{lineno}: not a scored group: {first['loc']}: {first['msg']}") from None

    lines: list[str] = []
    rollouts = 0
    try:
        with scored.open(encoding="utf-8") as f, interrupt_between_steps() as step:
            # K is each group's own (its basis): rescoring reuses judgements, it cannot change how many there were
            for group in rescore_groups(groups(), r, samples_option(samples), resample_condense):
                lines.append(group.model_dump_json() + "\n")
                rollouts += len(group.rollouts)
                step()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{scored}: cannot read: {exc}") from exc
    if not lines:
        raise UsageError(f"{scored}: no scored group in the file")
    write_whole(output, "".join(lines))
    edits = f" (overrides: {', '.join(r.overrides)})" if r.overrides else ""
    out.print(
        f"{len(lines)} groups, {rollouts} rollouts rescored with {r.name} @ {r.version}{edits}; 0 judge calls "
        f"-> {output}",
        soft_wrap=True,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(rescore)
