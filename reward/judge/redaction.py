"""Secrets never reach an error message, a log line or a response: known values (API keys from the
settings, a router config and the environment) and anything shaped like a credential are redacted."""

from __future__ import annotations

import os
import re

_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|tok)[-_][A-Za-z0-9_\-]{8,}")
# A value right after "Bearer", "api key", "api_key=", "Authorization:" is a credential whatever its shape.
_KEY_AFTER = re.compile(
    r"(?i)(\bapi[-_ ]?key\b(?:\s+provided)?[\"']?\s*[:=]?\s*[\"']?(?:bearer\s+)?"
    r"|\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?"
    r"|\bbearer\s+)"
    r"([^\s\"',;]{3,}[^\s\"',;.])"
)


def secrets_from_env() -> list[str]:
    """Values that must never appear in an error, a log or a response."""
    names = ("API_KEY", "_TOKEN", "_TOKENS", "_SECRET")
    values = [v for k, v in os.environ.items() if k.upper().endswith(names) and v]
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret and anything shaped like a key. A long secret goes wherever it appears; a
    short one (a test key such as `x`) only where it stands alone, so that words containing it survive."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "[redacted]", text)
    text = _KEY_AFTER.sub(lambda m: m.group(1) + "[redacted]", text)
    return _KEYLIKE.sub("[redacted]", text)


def short_error(exc: BaseException, secrets: list[str] | None = None, limit: int = 300) -> str:
    """An exception as one redacted line of at most `limit` characters."""
    text = redact(" ".join(str(exc).split()), secrets or [])
    return text if len(text) <= limit else text[: limit - 1] + "…"
