"""The ASGI middleware in front of every route: bearer-token auth (constant-time comparison; every path but the
probes, the docs' static bundles, and the docs pages with `?token=`) and the request-body size limit (413,
whether or not Content-Length is sent)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse

from reward.service.reward_service import ServiceSettings

OPEN_PATHS = ("/healthz", "/readyz")  # probes answer without a token
# The docs' JavaScript and CSS: the public swagger-ui and redoc bundles, no data; a browser loads them without
# a token. The pages themselves and the schema need one, which a browser passes as `?token=` (GET only).
STATIC = Path(__file__).parent / "static"
OPEN_PREFIXES = ("/static/",)
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


class Guard:
    """ASGI middleware in front of everything: bearer-token auth (constant-time comparison; every path but
    the probes and the docs' static assets) and the request-body size limit (413, whether or not
    Content-Length is sent). A browser cannot send a bearer token, so the docs pages and the schema also
    take it as `?token=` on a GET (never the scoring endpoints: a token in a URL ends up in logs)."""

    def __init__(self, app: Any, settings: ServiceSettings) -> None:
        self.app = app
        self.tokens = [t.encode() for t in settings.tokens]
        self.max_body = settings.max_body_bytes

    def _authorized(self, headers: dict[bytes, bytes], scope: dict[str, Any]) -> bool:
        value = headers.get(b"authorization", b"")
        scheme, _, token = value.partition(b" ")
        if not value and scope.get("method") == "GET" and scope["path"] in DOCS_PATHS:
            scheme, token = b"bearer", docs_token(scope).encode()
        ok = False
        for t in self.tokens:  # no early exit: the time taken does not depend on which token matched
            ok |= hmac.compare_digest(token.strip(), t)
        return ok and scheme.lower() == b"bearer"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.tokens and not is_open(scope["path"]) and not self._authorized(headers, scope):
            response = JSONResponse(
                {"detail": "missing or invalid bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            return await response(scope, receive, send)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await self._too_large(scope, receive, send)
        # Read the body here, counting, so a chunked body over the limit is refused as well (an exception
        # raised inside the app's body reading would come out as a 400).
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went (or the read deadline cut it off)
                # a body cut short is never scored: nobody is left to answer, the judge unpaid (the access log,
                # which saw the disconnect go by, counts it as 499, not a server error)
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return await self._too_large(scope, receive, send)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        detail = f"request body over {self.max_body} bytes (REWARD_MAX_BODY_BYTES)"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def docs_token(scope: Mapping[str, Any]) -> str:
    """The `?token=` of a docs request ('' when absent)."""
    query = scope.get("query_string", b"").decode("latin-1")
    return next((v for k, v in parse_qsl(query) if k == "token"), "")
