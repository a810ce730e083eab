"""Errors the CLI (and later the HTTP layer) translate into messages and exit codes / statuses."""


class RewardError(Exception):
    """Every error the project raises on purpose: `except RewardError` catches ours and nothing else."""


class ConfigError(RewardError):
    """A setting that cannot be used; the message names the flag or variable."""


class UsageError(RewardError):
    """Bad command-line input that the option parser cannot catch (a missing file, ...)."""


class RunError(RewardError):
    """A run that cannot start (bad input or output file); the message says which and why."""
