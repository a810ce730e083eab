"""The `--set PATH=VALUE` option of `score`, `rescore`, `prompt` and `rubric check` (see reward.rubric.overrides)."""

from __future__ import annotations

from typing import Annotated

import typer

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override a rubric value as an edit of its YAML would (repeatable; VALUE is YAML): "
        "--set constants.alpha=0.7 --set penalties.no_commands=-30 --set dimensions.efficiency.weight=2. "
        "Recorded in the output; the rubric version includes it.",
    ),
]
