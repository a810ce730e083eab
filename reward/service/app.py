"""The HTTP service (`reward serve`): FastAPI over the scoring service and the trainer adapters.

Exceptions are translated to HTTP answers here, in one place: bad input is 422 with the paths of every
problem, a rollout the judge could not score behind a trainer endpoint that needs a number is 503 with
Retry-After (never a made-up reward).

Operations: an access line per request with a request id (reward.service.logs), Prometheus metrics at
`/metrics` (reward.service.metrics; behind the token like every endpoint: Prometheus sends a bearer token),
and the API docs (`/docs`, `/redoc`) from assets bundled in the package, so they open with no network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from reward import __version__
from reward.adapters import openrlhf, slime
from reward.adapters.common import AdapterInputError, JudgeFailed, label_problems, per_sample
from reward.core.trajectory import _drop_union_tag, format_loc, parse_json, validation_problems
from reward.native.prepare import GroupInputError
from reward.service import logs, metrics, nemo_gym
from reward.service.guard import OPEN_PATHS, STATIC, Guard, docs_token
from reward.service.reward_service import (
    Overloaded,
    RewardService,
    ScoreRequest,
    ScoreResponse,
    ServiceSettings,
    TooLarge,
)
from reward.service.workers import settle_heap
from reward.settings import parse_tools

RETRY_AFTER_S = 5
# Trainers post to the URL as configured, so a query parameter is how their config declares the tool name.
ToolQuery = Annotated[str | None, Query(description="Terminal tool name(s), comma-separated; only these count.")]


def _is_json(kind: str) -> bool:
    """The media types FastAPI reads a body of as JSON."""
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _parse_body(body: bytes) -> Any:
    return parse_json(body.decode("utf-8"))


class JSONBodyRoute(APIRoute):
    """Parses a JSON body strictly and off the event loop, before FastAPI's own handler reads it.

    A 60 MB body takes a while to parse; on the loop it would freeze every other request and the probes.
    Strict: NaN/Infinity (not JSON, and unanswerable in a JSON error body), integers of more than 4300
    digits and nesting deeper than Python's recursion limit are a 422 saying so, not a parser crash.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            # FastAPI reads no other body as JSON (none without a content-type either): it would say "Input
            # should be a valid dictionary" of a valid JSON body, a 422 that hides the fix
            if request.method == "POST" and not _is_json(kind):
                sent = f"not {kind}" if kind else "no content-type was sent"
                return JSONResponse(
                    {"detail": [f"body: send JSON (content-type: application/json), {sent}"]}, status_code=415
                )
            if request.method == "POST":
                body = await request.body()
                if body:
                    try:
                        request._json = await asyncio.to_thread(_parse_body, body)
                    except UnicodeDecodeError as exc:  # not parseable at all: 400, as FastAPI answers
                        return JSONResponse({"detail": [f"body: not UTF-8 (byte {exc.start})"]}, status_code=400)
                    except ValueError as exc:
                        return JSONResponse({"detail": [f"body: {exc}"]}, status_code=422)
            return await handler(request)

        return route


def _request_problems(exc: RequestValidationError) -> list[str]:
    """Each problem as `path: message`, like every other 422; the offending input is never echoed (it may
    be huge, or a value JSON cannot carry)."""
    problems = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        loc = loc[1:] if loc[:1] == ("body",) else loc
        problems.append(f"{format_loc(_drop_union_tag(loc)) if loc else 'body'}: {e.get('msg', 'invalid')}")
    return problems


def _fake_marks(response: dict[str, Any], index: list[tuple[int, int]]) -> list[bool]:
    """Per sample: was its group judged (in part) by the fake judge? A fake reward is never served unmarked."""
    return [bool(response["groups"][g]["judge"]["fake"]) for g, _ in index]


def _docs_urls(request: Request, tokens: tuple[str, ...]) -> tuple[str, str]:
    """(the schema's URL, the static assets' root) as the browser must ask for them: under the app's root
    path, the schema with the token the page was opened with (it was checked: a configured token)."""
    root = request.scope.get("root_path", "").rstrip("/")
    token = docs_token(request.scope) if tokens else ""
    schema = f"{root}/openapi.json" + (f"?token={quote(token, safe='')}" if token else "")
    return schema, f"{root}/static"


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    # The page may carry a token (in the schema's URL): kept out of caches and of any Referer.
    page.headers["Cache-Control"] = "no-store"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def create_app(service: RewardService | None = None) -> FastAPI:
    """App factory; without a service it builds one from the REWARD_* environment at start-up."""
    settings = service.settings if service is not None else ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service or RewardService(ServiceSettings.from_env())
        app.state.service = svc
        metrics.instrument(svc)
        metrics.observe_answers(svc)
        if service is None:  # a served process (not a test's app): start-up is done
            logs.adopt_library_loggers()  # litellm is loaded now: its own handlers would bypass the log format
            settle_heap()  # keep start-up's objects out of every later garbage collection
        try:
            yield
        finally:
            await svc.canaries.aclose()  # audits in flight are cancelled before the cache they write closes
            svc.close()

    app = FastAPI(
        title="reward",
        version=__version__,
        description="Rubric-based LLM-as-judge reward for terminal execution subagents.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own pages load their assets from a CDN: ours are bundled (below)
        redoc_url=None,
    )
    app.router.route_class = JSONBodyRoute
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The schema, saying (when tokens are set) that every operation but the probes takes a bearer token,
        so Swagger UI's Authorize button sends it with "Try it out"."""
        if app.openapi_schema is None:
            schema = default_openapi()
            if settings.tokens:
                schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                    "type": "http",
                    "scheme": "bearer",
                }
                schema["security"] = [{"bearer": []}]
                for path in OPEN_PATHS:
                    for operation in schema.get("paths", {}).get(path, {}).values():
                        operation["security"] = []
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    def svc(request: Request) -> RewardService:
        return request.app.state.service

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _request_problems(exc)}, status_code=422)

    @app.exception_handler(GroupInputError)
    async def _bad_group(_: Request, exc: GroupInputError) -> JSONResponse:
        return JSONResponse({"detail": exc.problems}, status_code=422)

    @app.exception_handler(AdapterInputError)
    async def _bad_payload(_: Request, exc: AdapterInputError) -> JSONResponse:
        return JSONResponse({"detail": [str(exc)]}, status_code=422)

    @app.exception_handler(TooLarge)
    async def _too_large(_: Request, exc: TooLarge) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.exception_handler(Overloaded)
    async def _overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        detail = f"over capacity: {exc}; retry later"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(JudgeFailed)
    async def _judge_failed(_: Request, exc: JudgeFailed) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "errors": exc.errors},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus text format, every worker's metrics together (reward.service.metrics)."""
        return Response(await asyncio.to_thread(metrics.exposition), media_type=metrics.CONTENT_TYPE)

    @app.get("/canaries", tags=["operations"])
    async def canaries(request: Request) -> dict[str, Any]:
        """Canaries mixed into live traffic (REWARD_CANARY_RATE), every worker's together:
        `{"rate", "canaries": {kind: {"n", "fooled", "rate", "unjudged"}}, "audits": {"done", "skipped", "failed"}}`."""
        view = await asyncio.to_thread(metrics.canary_view)
        return {"rate": svc(request).settings.canary_rate, **view}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        schema, static = _docs_urls(request, settings.tokens)
        return _docs_page(
            get_swagger_ui_html(
                openapi_url=schema,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{static}/swagger-ui/swagger-ui-bundle.js",
                swagger_css_url=f"{static}/swagger-ui/swagger-ui.css",
                swagger_favicon_url=f"{static}/swagger-ui/favicon-32x32.png",
                # no badge from validator.swagger.io: nothing leaves the page; keep the token while browsing
                swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        schema, static = _docs_urls(request, settings.tokens)
        return _docs_page(
            get_redoc_html(
                openapi_url=schema,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{static}/redoc/redoc.standalone.js",
                redoc_favicon_url=f"{static}/swagger-ui/favicon-32x32.png",
                with_google_fonts=False,
            )
        )

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    probing = asyncio.Lock()  # one probe at a time: concurrent ones would share (and race on) the probe file

    @app.get("/readyz", tags=["probes"])
    async def readyz(request: Request) -> JSONResponse:
        # The cache probes write a file or a Redis key: a stalled disk or Redis must stall this probe, never
        # the event loop (and with it every request, /healthz included, and the liveness check)
        async with probing:
            state = await asyncio.to_thread(svc(request).ready)
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/rubrics")
    async def rubrics(request: Request) -> list[dict[str, Any]]:
        s = svc(request)
        return [
            {
                "name": r.name,
                "version": r.version,
                "default": name == s.settings.default_rubric,
                "description": r.spec.description,
                "prompt_version": r.prompt_version,
                "formula": r.spec.formula,
                "constants": r.spec.constants,
                "reward_scale": r.spec.reward_scale,
                "groups": list(r.spec.groups),
                "scale": r.spec.scale.model_dump(),
                "reference": r.spec.reference,
                "inputs": r.spec.inputs.model_dump(),
                "penalties": r.spec.penalties.model_dump(),
                "dimensions": [
                    {"name": d.name, "group": d.group, "description": d.description} for d in r.spec.dimensions
                ],
            }
            for name, r in sorted(s.rubrics.items())
        ]

    @app.post("/score", response_model=ScoreResponse)
    async def score(request: Request, body: ScoreRequest) -> Response:
        # Serialised once, here: FastAPI would otherwise validate the whole answer again on the hot path.
        result = await svc(request).score(body)
        return Response(result.model_dump_json(), media_type="application/json")

    async def score_dicts(
        request: Request,
        groups: list[dict[str, Any]],
        index: list[tuple[int, int]],
        label_at: str,
        terminal_tool: str | None = None,
    ) -> dict[str, Any]:
        """Score the groups an adapter built; a problem is named by the label it came from, as the trainer
        sent it (labels[3].reference.plan), not by a group it never saw."""
        try:
            tools = parse_tools(terminal_tool) if terminal_tool is not None else None
        except ValueError as exc:
            raise GroupInputError([f"terminal_tool (query parameter): {exc}"]) from None
        try:
            body = ScoreRequest.model_validate({"groups": groups, "terminal_tool": tools and list(tools)})
        except ValidationError as exc:
            raise GroupInputError(label_problems(list(validation_problems(exc)), index, label_at)) from exc
        try:
            result = await svc(request).score(body)
        except GroupInputError as exc:  # a reference id that is not loaded, a native form that does not parse
            raise GroupInputError(label_problems(exc.problems, index, label_at)) from exc
        return result.model_dump(mode="json")

    def needs_number(rollouts: list[dict[str, Any]], fallback: float | None) -> None:
        failed = [r["error"] for r in rollouts if r["reward"] is None]
        if failed and fallback is None:
            raise JudgeFailed(failed)

    @app.post("/openrlhf", tags=["trainers"])
    async def openrlhf_reward(
        request: Request, body: openrlhf.OpenRLHFRequest, terminal_tool: ToolQuery = None
    ) -> dict[str, Any]:
        """OpenRLHF `--reward.remote_url http://HOST:PORT/openrlhf` (`?terminal_tool=NAME` for a harness
        whose terminal tool has its own name)."""
        if not body.query:  # several URLs split a batch: a server may get nothing
            return openrlhf.empty_response()
        groups, index = openrlhf.to_groups(body)
        response = await score_dicts(request, groups, index, openrlhf.LABEL_AT, terminal_tool)
        fallback = svc(request).settings.judge_error_fallback
        needs_number(per_sample(response, index), fallback)
        answer = openrlhf.to_response(response, index, fallback)
        answer["extra_logs"]["fake_judge"] = [float(f) for f in _fake_marks(response, index)]
        return answer

    @app.post("/slime", tags=["trainers"])
    async def slime_reward(
        request: Request, body: slime.SlimeRequest, terminal_tool: ToolQuery = None
    ) -> dict[str, Any]:
        """slime `--rm-type remote_rm --rm-url http://HOST:PORT/slime --reward-key reward` (`?terminal_tool=NAME`
        for a harness whose terminal tool has its own name)."""
        groups, index = slime.to_groups(body)
        response = await score_dicts(request, groups, index, slime.LABEL_AT, terminal_tool)
        fallback = svc(request).settings.judge_error_fallback
        rollout = per_sample(response, index)[0]
        needs_number([rollout], fallback)
        return {**slime.reward_dict(rollout, fallback), "fake": _fake_marks(response, index)[0]}

    # NeMo Gym addresses a resources server by host and port only: /seed_session and /verify at the root,
    # and the same under /nemo_gym for a proxy.
    app.include_router(nemo_gym.router)
    app.include_router(nemo_gym.root_router)
    app.add_middleware(Guard, settings=settings)
    app.add_middleware(logs.AccessLog, record=metrics.record_request)  # outermost: sees the Guard's answers too
    return app
