"""Errors the CLI (and later the HTTP layer) translate into messages and exit codes / statuses."""


class ConfigError(Exception):
    """A setting that cannot be used; the message names the flag or variable."""


class UsageError(Exception):
    """Bad command-line input that the option parser cannot catch (a missing file, ...)."""


class RunError(Exception):
    """A run that cannot start (bad input or output file); the message says which and why."""
