"""Log lines of `reward serve`: one line per record, as text (the default) or as one JSON object
(`REWARD_LOG_FORMAT=json`, for a log collector that would otherwise have to parse free text), secrets redacted.

Every process of the server logs through one handler on stderr: the supervisor, each worker, uvicorn's own
loggers and the libraries' (litellm installs handlers of its own at import; they are taken over, or their
lines would bypass the format). A JSON line holds `ts`, `level`, `logger`, `msg`, then the record's fields
(`extra=`), the request id of the request it was logged in, and `exc` with a traceback. Text and fields are
redacted with reward.redaction (keys, tokens, URL credentials), as every error message is.

`AccessLog` is the outermost middleware: one `reward.access` line per request (method, path, status,
duration_ms, request_id), whatever answered it (the auth guard's 401, a 413, a route, a crash), and the
request id: the client's `X-Request-ID` when it is a sane token, else a new one, sent back in the response
header and attached to every line logged while the request is served (a contextvar: judge calls made in
tasks the request started carry it too).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from reward.redaction import redact, secrets_from_env, url_secrets

REQUEST_ID: ContextVar[str | None] = ContextVar("reward_request_id", default=None)
ACCESS = logging.getLogger("reward.access")
# An incoming id is echoed in a header and written in logs: a bounded token, never arbitrary text.
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# Attributes every LogRecord has: what is left on a record is a field someone passed with `extra=`.
# litellm_redacted: litellm's secret filter, which it puts on other libraries' loggers (uvicorn.error, httpx),
# stamps every record it has seen with a marker object, which is no field of anyone's.
_RECORD_ATTRS = {
    *vars(logging.LogRecord("", 0, "", 0, "", None, None)),
    *("message", "asctime", "color_message", "litellm_redacted"),
}
_CORE = ("ts", "level", "logger", "msg")
_IN_ACCESS_MSG = ("method", "path", "status", "duration_ms")
# Libraries that attach their own stream handlers at import: their records go through ours instead.
_OWN_HANDLERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")


def _secrets() -> list[str]:
    """What must never be logged: the environment's keys and tokens, and the cache URL's credentials."""
    from reward.errors import ConfigError
    from reward.settings import setting

    try:
        url = setting("cache_url")
    except ConfigError:
        url = None
    return secrets_from_env() + url_secrets(url)


def _clean(value: Any, secrets: list[str]) -> Any:
    """A field's value with every string in it redacted; anything JSON cannot hold becomes its text."""
    if isinstance(value, str):
        return redact(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, secrets) for v in value]
    return redact(str(value), secrets)


class _Formatter(logging.Formatter):
    def __init__(self, **_: Any) -> None:  # uvicorn may pass use_colors: there are no colors here
        super().__init__()
        self.secrets = _secrets()  # once per process: the environment does not change under a server

    def parts(self, record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
        """The redacted message and fields of a record (a traceback, if any, as the field `exc`)."""
        msg = redact(record.getMessage(), self.secrets)
        fields = {k: _clean(v, self.secrets) for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        if "request_id" not in fields and (rid := REQUEST_ID.get()) is not None:
            fields["request_id"] = rid
        if record.exc_info:
            fields["exc"] = redact(self.formatException(record.exc_info), self.secrets)
        elif record.stack_info:
            fields["exc"] = redact(self.formatStack(record.stack_info), self.secrets)
        return msg, fields

    @staticmethod
    def timestamp(record: logging.LogRecord) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(_Formatter):
    """One JSON object per line: ts, level, logger, msg, then the fields (a field named like one of those
    four is written with a `field_` prefix rather than overwrite it)."""

    def format(self, record: logging.LogRecord) -> str:
        msg, fields = self.parts(record)
        line: dict[str, Any] = {
            "ts": self.timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": msg,
        }
        for key, value in fields.items():
            line[f"field_{key}" if key in _CORE else key] = value
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(_Formatter):
    """`ts LEVEL logger: msg key=value ...`, one line (a traceback is a field, its newlines escaped). An
    access line's message already says method, path, status and duration: only its request id follows."""

    def format(self, record: logging.LogRecord) -> str:
        msg, fields = self.parts(record)
        hidden = _IN_ACCESS_MSG if record.name == ACCESS.name else ()
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items() if k not in hidden)
        text = f"{self.timestamp(record)} {record.levelname} {record.name}: {msg}"
        return f"{text} {pairs}" if pairs else text


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def dict_config(log_format: str) -> dict[str, Any]:
    """The logging configuration of every server process (uvicorn's `log_config`, and the supervisor's):
    one stderr handler on the root logger, uvicorn's loggers propagating to it, `reward.*` at INFO (the
    access lines), everything else at WARNING."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # Both names: uvicorn writes use_colors into "default" and "access" when it is given.
        "formatters": {"default": formatter, "access": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "default"}
        },
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            "reward": {"level": "INFO"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure(config: dict[str, Any]) -> None:
    """Set this process's logging from `dict_config` (the supervisor's; uvicorn applies it in each worker)."""
    import logging.config

    logging.config.dictConfig(config)
    logging.captureWarnings(True)  # a library's warnings are log lines too, in the same format


def adopt_library_loggers() -> None:
    """Route the loggers that libraries gave handlers of their own (litellm) through ours: called once the
    libraries are imported (the app's start-up), in a server process only."""
    logging.captureWarnings(True)
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if it is a sane token (so a trainer can follow its own ids), else a new one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            with contextlib.suppress(UnicodeDecodeError):
                text = value.decode("ascii").strip()
                if _SANE_ID.fullmatch(text):
                    return text
            break
    return uuid.uuid4().hex


Record = Callable[[MutableMapping[str, Any], int, float], None]
Scope = MutableMapping[str, Any]


class AccessLog:
    """ASGI middleware, outermost: the request id, one access line per request, and `record(scope, status,
    seconds)` for the metrics. A request that ends without an answer is logged as 500 (an exception, or the app
    returned without one) or 499 (the client went away: the request was cancelled, or the app was told of the
    disconnect, as the Guard is when a body is cut short by the client or the read deadline)."""

    def __init__(self, app: Any, record: Record | None = None) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope: Scope, receive: Any, send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope.get("headers") or [])
        token = REQUEST_ID.set(rid)
        start = time.perf_counter()
        status = 0
        gone = False

        async def receive_watched() -> dict[str, Any]:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive_watched, send_with_id)
        except BaseException as exc:
            status = status or (500 if isinstance(exc, Exception) else 499)
            raise
        finally:
            seconds = time.perf_counter() - start
            # no answer to a client that left is the client's doing, not a server error (no 500 counted)
            status = status or (499 if gone else 500)
            self._log(scope, status, seconds, rid)
            if self.record is not None:
                with contextlib.suppress(Exception):  # metrics never fail a request
                    self.record(scope, status, seconds)
            REQUEST_ID.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float, rid: str) -> None:
        method, path = scope.get("method", ""), str(scope.get("path", ""))[:200]
        ms = round(seconds * 1000, 1)
        ACCESS.info(
            "%s %s %d %.1fms",
            method,
            path,
            status,
            ms,
            extra={"method": method, "path": path, "status": status, "duration_ms": ms, "request_id": rid},
        )
