"""Secrets never reach an error message, a log line or a response: known values (API keys from the
settings, a router config and the environment), credentials in URLs and anything shaped like a credential
are redacted.

Pure functions on the standard library alone, below every package: the cache and the judge limits redact what
they log with them as the judge does."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, unquote, urlsplit

_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|tok)[-_][A-Za-z0-9_\-]{8,}")
# A value right after "Bearer", "api key", "api_key=", "Authorization:" is a credential whatever its shape.
_KEY_AFTER = re.compile(
    r"(?i)(\bapi[-_ ]?key\b(?:\s+provided)?[\"']?\s*[:=]?\s*[\"']?(?:bearer\s+)?"
    r"|\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?"
    r"|\bbearer\s+)"
    r"([^\s\"',;]{3,}[^\s\"',;.])"
)

# `scheme://userinfo@`: up to the last @ before the path, as URL parsers (and redis-py) read it. Bounded, so
# that a long text made of `://` never costs quadratic time.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}://)([^\s/?#]{0,2048})@")
# Query parameters that carry a credential: redis-py passes `?password=` on to AUTH.
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:[a-z_]*(?:password|passwd|secret|token)|[a-z_]*key)=)[^&;#\s]*")


def secrets_from_env() -> list[str]:
    """Values that must never appear in an error, a log or a response."""
    names = ("API_KEY", "_TOKEN", "_TOKENS", "_SECRET")
    values = [v for k, v in os.environ.items() if k.upper().endswith(names) and v]
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _hide_userinfo(m: re.Match[str]) -> str:
    user, colon, _ = m.group(2).partition(":")
    # A lone user-info part is a credential too (a token: https://TOKEN@host).
    return f"{m.group(1)}{user}:***@" if colon else f"{m.group(1)}***@"


def redact_url(text: str) -> str:
    """Credentials in every URL of `text`: `scheme://user:password@host` becomes `scheme://user:***@host`,
    a lone `scheme://token@host` becomes `scheme://***@host`, `?password=x` becomes `?password=[redacted]`
    (as `redact` writes a key after `api_key=`)."""
    return _SECRET_PARAM.sub(r"\1[redacted]", _URL_USERINFO.sub(_hide_userinfo, text))


def url_secrets(url: str | None) -> list[str]:
    """The credentials a URL carries, as written and decoded: redacted wherever they show up, even outside
    the URL (a library that echoes the password alone)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        params = parse_qsl(parts.query)
    except ValueError:  # not a URL we can read: its credentials are still hidden where the URL appears
        return []
    found = [parts.password or ""] + [v for k, v in params if _SECRET_PARAM.match(f"?{k}=")]
    return [s for v in found if v for s in {v, unquote(v)}]


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret and anything shaped like a key. A long secret goes wherever it appears; a
    short one (a test key such as `x`) only where it stands alone, so that words containing it survive."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "[redacted]", text)
    text = _KEY_AFTER.sub(lambda m: m.group(1) + "[redacted]", text)
    return _KEYLIKE.sub("[redacted]", redact_url(text))


def redact_known(text: str, url: str | None = None) -> str:
    """`text` redacted of every secret this process knows: the environment's and those `url` carries."""
    return redact(text, secrets_from_env() + url_secrets(url))


def describe_error(exc: BaseException, url: str | None = None) -> str:
    """`Type: message` for a log line or a reported error, redacted like `redact_known`."""
    return f"{type(exc).__name__}: {redact_known(str(exc), url)}"


def short_error(exc: BaseException, secrets: list[str] | None = None, limit: int = 300) -> str:
    """An exception as one redacted line of at most `limit` characters."""
    raw = str(exc).split("Traceback (most recent call last)", 1)[0].strip() or type(exc).__name__  # no stacks
    text = redact(" ".join(raw.split()), secrets or [])
    return text if len(text) <= limit else text[: limit - 1] + "…"
