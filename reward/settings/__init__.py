"""Configuration: every `REWARD_*` environment variable the package reads (`variables`: one pydantic model,
one name, one default and one error message per variable) and the conventions of native rollouts it
validates (`conventions`: the terminal tool names, where exit codes are written).

Imports nothing heavy (pydantic): the trainer-side client imports it.
"""

from reward.settings.conventions import (
    DEFAULT_EXIT_CODE,
    DEFAULT_TERMINAL_TOOLS,
    PLACES,
    TERMINAL_TOOL_SURVEY,
    Place,
    parse_convention,
    parse_tools,
)
from reward.settings.variables import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RUBRIC,
    DEFAULTS,
    MAX_SAMPLES,
    Settings,
    default_text,
    env_name,
    is_secret,
    markdown_table,
    reward_environ,
    setting,
    shown_value,
    type_name,
)

__all__ = [
    "DEFAULTS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_EXIT_CODE",
    "DEFAULT_RUBRIC",
    "DEFAULT_TERMINAL_TOOLS",
    "MAX_SAMPLES",
    "PLACES",
    "TERMINAL_TOOL_SURVEY",
    "Place",
    "Settings",
    "default_text",
    "env_name",
    "is_secret",
    "markdown_table",
    "parse_convention",
    "parse_tools",
    "reward_environ",
    "setting",
    "shown_value",
    "type_name",
]
