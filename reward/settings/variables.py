"""Every `REWARD_*` environment variable the package reads: its type, default and meaning, in one model.

The CLI, the server, its workers and the trainer-side client all read the environment through here, so a
variable has one name, one default and one error message. An empty value counts as unset (but REWARD_TOKENS,
which then refuses: auth is never turned off by a Secret gone empty). A reader asks only
for the fields it uses (`setting("judge_model")`), so a bad value in a variable a command never reads does
not stop it; `reward env` shows and checks them all.

Imports nothing heavy (pydantic and reward.conventions): the trainer-side client imports it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from reward.errors import ConfigError
from reward.redaction import redact_url
from reward.settings.conventions import DEFAULT_EXIT_CODE, DEFAULT_TERMINAL_TOOLS, parse_convention, parse_tools

PREFIX = "REWARD_"
DEFAULT_RUBRIC = "execution_subagent"
DEFAULT_CONCURRENCY = 64  # judge calls in flight per process; hosted APIs rate-limit well above this
MAX_SAMPLES = 32
CACHE_URL_SCHEMES = ("redis://", "rediss://", "unix://")
LOG_FORMATS = ("text", "json")
CACHE_SECONDS_RANGE = {"cache_marker_ttl": (0.1, 3600.0), "cache_timeout": (0.001, 60.0)}
SET_EMPTY = ("tokens",)  # read even when empty: an empty value is a mistake there, never "unset"


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def _var(default: Any, description: str, *, secret: bool = False, shown: str | None = None, kind: str = "") -> Any:
    """A field: `shown` is the default as a person reads it where the value itself says little (None)."""
    extra: dict[str, Any] = {"secret": secret, "shown_default": shown, "kind": kind}
    return Field(default, description=description, json_schema_extra=extra)


def _number(value: Any, name: str, kind: type[int] | type[float], positive: bool = True) -> int | float:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
    if not math.isfinite(number):  # a NaN fallback reward or an infinite timeout is nobody's intent
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if positive and number <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return number


def _split(value: Any, sep: str, strip: bool) -> Any:
    if not isinstance(value, str):
        return value
    parts = (p.strip() if strip else p for p in value.split(sep))
    return tuple(p for p in parts if p)


class Settings(BaseModel):
    """The whole configuration from the environment (`Settings.from_env()`); flags override it per command."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- the judge ---------------------------------------------------------------------------------------
    judge_model: str | None = _var(
        None, "litellm model string for both judge roles; overrides the rubric's.", shown="the rubric's judge models"
    )
    judge_api_base: str | None = _var(
        None, "API base URL of the judge (a vLLM server's /v1, ...).", shown="provider default"
    )
    judge_api_key: str | None = _var(
        None, "API key of the judge.", secret=True, shown="provider variable (OPENAI_API_KEY, ...)"
    )
    judge_concurrency: int = _var(DEFAULT_CONCURRENCY, "Judge calls in flight per process (per worker).")
    judge_timeout: float | None = _var(None, "Timeout of one judge call, seconds.", shown="rubric judge.timeout_s")
    judge_samples: int | Literal["auto"] | None = _var(
        None,
        f"Grade each rollout K times, averaged (at most {MAX_SAMPLES}); auto: more only where the order is unsure.",
        shown="rubric judge.samples",
        kind="integer or auto",
    )
    judge_max_samples: int | None = _var(
        None, "With samples auto, the most verdicts one rollout gets.", shown="rubric judge.max_samples"
    )
    hedge_quantile: float | None = _var(
        None,
        "Hedge a judge call that outlives this quantile of recent latencies (0.5-0.99) with one duplicate.",
        shown="none: no hedging",
    )
    hedge_max_fraction: float = _var(0.1, "Hedged duplicates as a fraction of judge calls, at most.")
    max_cost: float | None = _var(
        None,
        "Judge spend allowed (USD) per run (`score`) or per judge client (`serve`); beyond: budget_exhausted.",
        shown="none: no limit",
    )
    judge_router_config: str | None = _var(
        None, "A litellm Router YAML: several judge deployments, their limits.", shown="none", kind="path"
    )
    allow_retired_judge: bool = _var(False, "Start with a judge model past its provider's retirement date.")
    fake_noise_sd: float | None = _var(
        None,
        "The fake judge's noise (score points) around a known true value: a judge of known reliability.",
        shown="none: the plain fake",
    )
    judge_error_fallback: float | None = _var(
        None,
        "Reward the OpenRLHF/slime endpoints return, flagged, when the judge fails.",
        shown="none: answer 503",
    )
    canary_rate: float = _var(
        0.0, "`reward serve`: fraction of requests followed by a canary audit in separate judge calls (0-1)."
    )
    # --- cache -------------------------------------------------------------------------------------------
    cache_dir: str | None = _var(
        None,
        "Plan/verdict disk cache; 'none' disables it.",
        shown="$XDG_CACHE_HOME/reward or ~/.cache/reward",
        kind="path",
    )
    cache_url: str | None = _var(
        None, "Redis URL of a cache shared by replicas (and their judge limits).", shown="none"
    )
    cache_marker_ttl: float = _var(10.0, "Seconds an in-flight marker in Redis outlives a silent replica.")
    cache_timeout: float = _var(1.0, "Seconds one Redis command may take before Redis counts as down for a moment.")
    # --- the service -------------------------------------------------------------------------------------
    rubric_dir: Path | None = _var(
        None, "Rubrics to load (all *.yaml); where rubric names are looked up.", shown="bundled"
    )
    rubric: str = _var(DEFAULT_RUBRIC, "The service's default rubric.")
    plans: tuple[Path, ...] = _var((), "Reference plans files ({id, plan} lines).", shown="none", kind="paths, ':'")
    terminal_tool: tuple[str, ...] = _var(
        DEFAULT_TERMINAL_TOOLS,
        "Tool names of terminal calls in messages/text rollouts; set: only these count.",
        shown="the surveyed names (README: Terminal tools)",
        kind="list, ','",
    )
    exit_code: tuple[str, ...] = _var(
        DEFAULT_EXIT_CODE, "Where the terminal tool writes exit codes, in the order tried.", kind="list, ','"
    )
    tokens: tuple[str, ...] = _var(
        (), "Bearer tokens the service accepts; unset: no auth.", secret=True, shown="none", kind="list, ','"
    )
    request_deadline: float = _var(90.0, "Seconds a request may take; judge calls still out then are errors.")
    max_rollouts: int = _var(4096, "Rollouts in one request; more: 413.")
    max_pending_rollouts: int = _var(16384, "Rollouts pending in one worker; more: 503 with Retry-After.")
    max_body_bytes: int = _var(64 * 1024 * 1024, "Request body size; larger: 413.")
    read_timeout: float = _var(30.0, "Seconds a client has to send a whole request; a slower socket is closed.")
    max_connections: int | None = _var(
        None, "Open connections per worker; over it the oldest idle one is closed.", shown="file limit - 640"
    )
    host: str = _var("127.0.0.1", "Interface `reward serve` listens on.")
    port: int = _var(8000, "Port `reward serve` listens on (0: a free one, named at start-up).")
    workers: int = _var(1, "Worker processes of `reward serve`.")
    log_format: str = _var(
        "text", "Log lines of `reward serve`: text, or json (one JSON object a line).", kind="text or json"
    )
    # --- the trainer-side client (reward.adapters.client) -----------------------------------------------------------
    url: str = _var("http://127.0.0.1:8000", "Where the client finds `reward serve`.")
    timeout: float = _var(110.0, "The client's time budget per call, seconds, retries included.")
    token: str | None = _var(None, "Bearer token the client sends.", secret=True, shown="none")

    @field_validator(
        "judge_concurrency", "judge_samples", "judge_max_samples", "max_rollouts", "max_pending_rollouts",
        "max_body_bytes", "workers", "max_connections", mode="before",
    )  # fmt: skip
    @classmethod
    def _positive_int(cls, value: Any, info: ValidationInfo) -> Any:
        name = env_name(str(info.field_name))
        if info.field_name == "judge_samples" and isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            number = _number(value, name, int)
        except ConfigError:
            if info.field_name != "judge_samples":
                raise
            raise ConfigError(f"{name} must be an integer or auto, got {value!r}") from None
        if info.field_name in ("judge_samples", "judge_max_samples") and number > MAX_SAMPLES:
            raise ConfigError(f"{name} must be at most {MAX_SAMPLES}, got {number}")
        return number

    @field_validator("judge_timeout", "request_deadline", "read_timeout", mode="before")
    @classmethod
    def _positive_float(cls, value: Any, info: ValidationInfo) -> Any:
        return _number(value, env_name(str(info.field_name)), float)

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any, info: ValidationInfo) -> Any:
        port = _number(value, env_name(str(info.field_name)), int, positive=False)
        if not 0 <= port <= 65535:  # uvicorn would end in an OverflowError traceback
            raise ConfigError(f"{env_name(str(info.field_name))} must be a port number, 0 to 65535, got {value!r}")
        return port

    @field_validator("judge_error_fallback", "timeout", mode="before")
    @classmethod
    def _float(cls, value: Any, info: ValidationInfo) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{env_name(str(info.field_name))} must be a number, got {value!r}") from None
        if not math.isfinite(number):  # a NaN fallback would reach the trainer as a reward
            raise ConfigError(f"{env_name(str(info.field_name))} must be a finite number, got {value!r}")
        return number

    @field_validator("fake_noise_sd", mode="before")
    @classmethod
    def _noise(cls, value: Any) -> Any:
        number = _number(value, "REWARD_FAKE_NOISE_SD", float, positive=False)
        if number < 0:
            raise ConfigError(f"REWARD_FAKE_NOISE_SD must be a number >= 0, got {value!r}")
        return number

    @field_validator("hedge_quantile", mode="before")
    @classmethod
    def _quantile(cls, value: Any) -> Any:
        number = _number(value, "REWARD_HEDGE_QUANTILE", float)
        if not 0.5 <= number <= 0.99:  # below the median it doubles most calls; above 0.99 it never fires
            raise ConfigError(f"REWARD_HEDGE_QUANTILE must be between 0.5 and 0.99, got {value!r}")
        return number

    @field_validator("hedge_max_fraction", "canary_rate", mode="before")
    @classmethod
    def _fraction(cls, value: Any, info: ValidationInfo) -> Any:
        name = env_name(str(info.field_name))
        number = _number(value, name, float, positive=False)
        if not 0 <= number <= 1:
            raise ConfigError(f"{name} must be a fraction between 0 and 1, got {value!r}")
        return number

    @field_validator("max_cost", mode="before")
    @classmethod
    def _cost(cls, value: Any) -> Any:
        return _number(value, "REWARD_MAX_COST", float)

    @field_validator("cache_marker_ttl", "cache_timeout", mode="before")
    @classmethod
    def _cache_seconds(cls, value: Any, info: ValidationInfo) -> Any:
        name = env_name(str(info.field_name))
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
        # Under 1 ms is 0 ms to Redis, which SET refuses (the cache silently off); a marker under 0.1 s is
        # extended every few ms (Redis hammered, and a starved owner loses its work to a duplicate); a marker of
        # hours blocks requests behind a dead replica that long, a huge socket timeout overflows (a crash).
        low, top = CACHE_SECONDS_RANGE[str(info.field_name)]
        if not low <= seconds <= top:  # NaN fails too
            raise ConfigError(f"{name} must be between {low:g} and {top:g} seconds, got {value!r}")
        return seconds

    @field_validator("cache_url", mode="before")
    @classmethod
    def _cache_url(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith(CACHE_URL_SCHEMES):
            schemes = ", ".join(CACHE_URL_SCHEMES)
            raise ConfigError(f"REWARD_CACHE_URL must start with {schemes}; got {value.split(':')[0]!r}")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text not in LOG_FORMATS:
            raise ConfigError(f"REWARD_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
        return text

    @field_validator("plans", mode="before")
    @classmethod
    def _plans(cls, value: Any) -> Any:
        return _split(value, os.pathsep, strip=False)  # a path may end in a space

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> Any:
        tokens = _split(value, ",", strip=True)
        if isinstance(value, str) and not tokens:  # a Secret whose value went missing: never serve without auth
            raise ConfigError(f"REWARD_TOKENS is set but holds no token ({value!r}); unset it to serve without auth")
        return tokens

    @field_validator("exit_code", mode="before")
    @classmethod
    def _exit_code(cls, value: Any) -> Any:
        try:
            return parse_convention(value)
        except ValueError as exc:
            raise ConfigError(f"REWARD_EXIT_CODE: {exc}") from None

    @field_validator("terminal_tool", mode="before")
    @classmethod
    def _terminal_tool(cls, value: Any) -> Any:
        try:
            return parse_tools(value)
        except ValueError as exc:
            raise ConfigError(f"REWARD_TERMINAL_TOOL: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, only: Iterable[str] | None = None) -> Settings:
        """The settings from `environ` (default: the process environment); with `only`, just those fields are
        read and checked (the others keep their defaults). A bad value raises ConfigError naming it."""
        env = os.environ if environ is None else environ
        fields = list(cls.model_fields) if only is None else list(only)
        unknown = [f for f in fields if f not in cls.model_fields]
        if unknown:
            raise KeyError(f"not a setting: {', '.join(unknown)}")
        # empty: unset, but for REWARD_TOKENS (set empty, it refuses rather than turn auth off)
        values = {
            f: env[env_name(f)] for f in fields if env.get(env_name(f)) or (f in SET_EMPTY and env_name(f) in env)
        }
        problems = [p for f, v in values.items() if (p := _problem(cls, f, v))]
        if problems:  # every bad variable at once, each named: one fix-and-retry, not one per variable
            raise ConfigError("; ".join(problems))
        return cls.model_validate(values)


def _problem(model: type[Settings], field: str, value: str) -> str | None:
    try:
        model.model_validate({field: value})
    except ConfigError as exc:
        return str(exc)
    except ValidationError as exc:  # a value our own validators let through but the type does not
        return f"{env_name(field)}: {exc.errors()[0]['msg']}, got {value!r}"
    return None


DEFAULTS = Settings()


def setting(field: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment: its value, or its default when unset or empty."""
    return getattr(Settings.from_env(environ, only=(field,)), field)


def reward_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every `REWARD_*` variable as set (to pass on to other processes, known to this version or not)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(PREFIX)}


# --- describing the settings (`reward env`, the README's table) ----------------------------------------------


def _extra(field: str) -> dict[str, Any]:
    extra = Settings.model_fields[field].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def type_name(field: str) -> str:
    kind = _extra(field).get("kind")
    if kind:
        return str(kind)
    annotation = Settings.model_fields[field].annotation
    types = [t for t in get_args(annotation) if t is not type(None)] or [annotation]
    names = {str: "string", int: "integer", float: "number", bool: "boolean (1, true, yes)", Path: "path"}
    return names.get(types[0], str(types[0]))


def default_text(field: str) -> str:
    shown = _extra(field).get("shown_default")
    if shown:
        return str(shown)
    default = Settings.model_fields[field].default
    return ",".join(default) if isinstance(default, tuple) else str(default)


def is_secret(field: str) -> bool:
    return bool(_extra(field).get("secret"))


def shown_value(field: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable as set, for display: secrets hidden, a password in a URL too."""
    env = os.environ if environ is None else environ
    raw = env.get(env_name(field)) or ""
    if not raw:
        return ""
    return "(set, hidden)" if is_secret(field) else redact_url(raw)


def rows() -> list[tuple[str, str, str, str]]:
    """(variable, type, default, description), in the model's order."""
    return [
        (env_name(f), type_name(f), default_text(f), info.description or "")
        for f, info in Settings.model_fields.items()
    ]


def markdown_table() -> str:
    """The README's table of variables (kept equal to this by tests/test_settings.py)."""
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, kind, default, description in rows():
        lines.append(f"| `{name}` | {kind} | {default.replace('|', '/')} | {description.replace('|', '/')} |")
    return "\n".join(lines)
