"""The `reward` command line: `main` is the console script's entry point."""

from reward.cli.main import main

__all__ = ["main"]
