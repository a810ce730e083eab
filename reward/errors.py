"""Errors the CLI (and later the HTTP layer) translate into messages and exit codes / statuses."""


class RewardError(Exception):
    """Every error the project raises on purpose: `except RewardError` catches ours and nothing else."""


class ConfigError(RewardError):
    """A setting that cannot be used; the message names the flag or variable."""


class UsageError(RewardError):
    """Bad command-line input that the option parser cannot catch (a missing file, ...)."""


class RunError(RewardError):
    """A run that cannot start (bad input or output file); the message says which and why."""


class OutputError(RunError):
    """An output that cannot be written (disk full, read-only, removed): the command stops with exit status 3,
    leaving no torn line and no temporary file behind; what was written before stays whole."""
