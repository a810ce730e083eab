"""The `reward` command line: the app, one module per command group registered on it, and `main`, where
errors are translated to messages and exit codes (and only there).

Registering a command imports only what shows its help; a command imports the judge, litellm, the server or
the plotting library when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from reward import __version__
from reward.cli import audit, calibrate, compare, env, migrate, report, rescore, rubric, score, serve
from reward.cli.console import err
from reward.errors import OutputError, RewardError

PROG = "reward"  # the console script's name: what a completion script completes and calls back

app = typer.Typer(
    help="Rubric-based LLM-as-judge reward for terminal execution subagents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion (the shell detected), and typer's completion classes registered
    # on every run, which is what answers the shell when a completion script calls back (_REWARD_COMPLETE).
    add_completion=True,
    rich_markup_mode=None,  # help texts are plain: "[env REWARD_...]" hints must show as written
)
rubric_app = typer.Typer(help="Inspect and validate rubrics.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rubric_app, name="rubric")


def _print_version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """The options before any command (`reward --version`); the app's help text is the Typer's."""


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


def completion(shell: Annotated[Shell, typer.Argument(help="The shell to complete in.")]) -> None:
    """Print the shell completion script, for a shell named rather than detected: e.g.
    `reward completion bash > ~/.local/share/bash-completion/completions/reward`, or
    `eval "$(reward completion bash)"` in ~/.bashrc."""
    # --show-completion detects the shell from the parent process, which a Dockerfile, an install script or a
    # package build does not run in. Same script, from typer (the completion protocol it answers is typer's).
    from typer.completion import get_completion_script

    complete_var = f"_{PROG.upper()}_COMPLETE"
    print(get_completion_script(prog_name=PROG, complete_var=complete_var, shell=shell.value))


# The order commands are listed in `reward --help`.
score.register(app)  # score, plans
serve.register(app)  # serve
env.register(app)  # env
serve.register_fake_judge(app)  # fake-judge
rescore.register(app)
compare.register(app)
report.register(app)
calibrate.register(app)
audit.register(app)  # audit
migrate.register(app)
rubric.register(app, rubric_app)  # rubric check|schema, prompt
app.command()(completion)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        app(args=None if argv is None else list(argv))
    except OutputError as exc:  # its own status: rerunning on a disk with room resumes where it stopped
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)  # a path stays whole
        sys.exit(3)
    except RewardError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)  # a path stays whole
        sys.exit(2)
    except KeyboardInterrupt:
        say_interrupted()


def say_interrupted() -> NoReturn:
    """Ctrl-C: one line, status 130 (no traceback, at any point of a command)."""
    err.print("[yellow]interrupted: what was finished is saved whole (nothing half-written); rerun to resume[/yellow]")
    sys.exit(130)
