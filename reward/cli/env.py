"""`reward env`: every REWARD_* variable, its type, default, meaning and the value set here."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from reward.cli.console import out


def env_cmd(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's table of variables.")] = False,
) -> None:
    """The REWARD_* environment variables: type, default, meaning and the value set here (secrets hidden);
    a value that cannot be used is an error (exit status 2)."""
    from rich.table import Table

    from reward import settings as s

    if markdown:
        typer.echo(s.markdown_table())
        return
    table = Table("variable", "type", "default", "set here", "meaning", box=None, pad_edge=False)
    for field in s.Settings.model_fields:
        description = s.Settings.model_fields[field].description or ""
        table.add_row(
            s.env_name(field),
            s.type_name(field),
            escape(s.default_text(field)),
            escape(s.shown_value(field)),
            escape(description),
        )
    table.columns[0].no_wrap = True
    out.print(table)
    s.Settings.from_env()  # every value checked, as the service checks it at start-up


def register(app: typer.Typer) -> None:
    app.command("env")(env_cmd)
