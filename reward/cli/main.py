"""The `reward` command line: the app, one module per command group registered on it, and `main`, where
errors are translated to messages and exit codes (and only there).

Registering a command imports only what shows its help; a command imports the judge, litellm, the server or
the plotting library when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.markup import escape

from reward.cli import analysis, env, rubric, score, serve
from reward.cli.console import err
from reward.errors import OutputError, RewardError

app = typer.Typer(
    help="Rubric-based LLM-as-judge reward for terminal execution subagents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: "[env REWARD_...]" hints must show as written
)
rubric_app = typer.Typer(help="Inspect and validate rubrics.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rubric_app, name="rubric")

# The order commands are listed in `reward --help`.
score.register(app)  # score, plans
serve.register(app)  # serve
env.register(app)  # env
serve.register_fake_judge(app)  # fake-judge
analysis.register(app)  # rescore, compare, report, calibrate
rubric.register(app, rubric_app)  # rubric check|schema, prompt


def main(argv: Sequence[str] | None = None) -> None:
    try:
        app(args=None if argv is None else list(argv))
    except OutputError as exc:  # its own status: rerunning on a disk with room resumes where it stopped
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(3)
    except RewardError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print(
            "[yellow]interrupted: what was finished is saved whole (nothing half-written); rerun to resume[/yellow]"
        )
        sys.exit(130)
