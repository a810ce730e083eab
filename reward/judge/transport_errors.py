"""Transport errors of a judge call: their category (what a failed rollout says) and whether they are worth
another try (the transport retry loop of reward/judge/litellm_judge.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from reward.judge.llm import litellm

# Order matters: subclasses before their bases (ContextWindowExceededError is a BadRequestError...).
_CATEGORIES: list[tuple[type[BaseException], str]] = [
    (litellm.Timeout, "judge_timeout"),
    (litellm.RateLimitError, "judge_rate_limited"),
    (litellm.ContextWindowExceededError, "judge_context_window"),
    (litellm.ContentPolicyViolationError, "judge_refusal"),
    (litellm.AuthenticationError, "judge_auth"),
    (litellm.PermissionDeniedError, "judge_auth"),
    (litellm.NotFoundError, "judge_bad_request"),
    (litellm.BadRequestError, "judge_bad_request"),
    (litellm.UnprocessableEntityError, "judge_bad_request"),
    (litellm.ServiceUnavailableError, "judge_unavailable"),
    (litellm.InternalServerError, "judge_unavailable"),
    (litellm.APIConnectionError, "judge_unavailable"),
    (litellm.APIError, "judge_unavailable"),
]


# A missing key is raised by the provider's client before any request, and litellm wraps it as a 500
# (InternalServerError "Missing credentials"): an outage to every retry loop, a configuration error in truth.
_MISSING_KEY = ("missing credentials", "api_key client option must be set", "no api key provided")


def categorize(exc: BaseException) -> str:
    text = str(exc).lower()
    # litellm maps a 403 from an OpenAI-compatible server to a plain APIError: the status decides
    if getattr(exc, "status_code", None) in (401, 403) or any(marker in text for marker in _MISSING_KEY):
        return "judge_auth"
    for cls, category in _CATEGORIES:
        if isinstance(exc, cls):
            return category
    if isinstance(exc, asyncio.TimeoutError):
        return "judge_timeout"
    return "judge_error"


def malformed_body(exc: BaseException) -> bool:
    """litellm could not read the completion body (a choice with no message, content a list, a body that is
    a list): an answer, not a transport failure. Re-asked as an empty reply, never retried as a connection
    error (litellm raises it as an APIConnectionError carrying its own traceback)."""
    return "Invalid response object" in str(exc)


def retryable(exc: BaseException) -> bool:
    """Transport failures worth another try: timeouts, connection errors, 429 and 5xx."""
    if malformed_body(exc):
        return False
    if isinstance(exc, (litellm.Timeout, litellm.APIConnectionError, litellm.RateLimitError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def headers(exc: BaseException) -> Any:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers
