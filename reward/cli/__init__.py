"""The `reward` command line: `main` runs it (the console script enters through `reward.__main__:run`, which
takes a Ctrl-C during these imports)."""

from reward.cli.main import main

__all__ = ["main"]
