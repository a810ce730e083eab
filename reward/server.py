"""The HTTP service (`reward serve`): FastAPI over the scoring service and the trainer adapters.

Exceptions are translated to HTTP answers here, in one place: bad input is 422 with the paths of every
problem, a rollout the judge could not score behind a trainer endpoint that needs a number is 503 with
Retry-After (never a made-up reward).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from reward import __version__
from reward.adapters import openrlhf, slime
from reward.adapters.common import AdapterInputError, JudgeFailed, per_sample
from reward.prepare import GroupInputError
from reward.service import RewardService, ScoreRequest, ScoreResponse, ServiceSettings
from reward.trajectory import validation_problems

RETRY_AFTER_S = 5


def create_app(service: RewardService | None = None) -> FastAPI:
    """App factory; without a service it builds one from the REWARD_* environment at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service or RewardService(ServiceSettings.from_env())
        app.state.service = svc
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(
        title="reward",
        version=__version__,
        description="Rubric-based LLM-as-judge reward for terminal execution subagents.",
        lifespan=lifespan,
    )

    def svc(request: Request) -> RewardService:
        return request.app.state.service

    @app.exception_handler(GroupInputError)
    async def _bad_group(_: Request, exc: GroupInputError) -> JSONResponse:
        return JSONResponse({"detail": exc.problems}, status_code=422)

    @app.exception_handler(AdapterInputError)
    async def _bad_payload(_: Request, exc: AdapterInputError) -> JSONResponse:
        return JSONResponse({"detail": [str(exc)]}, status_code=422)

    @app.exception_handler(JudgeFailed)
    async def _judge_failed(_: Request, exc: JudgeFailed) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "errors": exc.errors},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz(request: Request) -> JSONResponse:
        state = svc(request).ready()
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
                "alpha": r.spec.alpha,
                "scale": r.spec.scale.model_dump(),
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

    async def score_dicts(request: Request, groups: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            body = ScoreRequest.model_validate({"groups": groups})
        except ValidationError as exc:
            raise GroupInputError(list(validation_problems(exc))) from exc
        return (await svc(request).score(body)).model_dump(mode="json")

    def needs_number(rollouts: list[dict[str, Any]], fallback: float | None) -> None:
        failed = [r["error"] for r in rollouts if r["reward"] is None]
        if failed and fallback is None:
            raise JudgeFailed(failed)

    @app.post("/openrlhf", tags=["trainers"])
    async def openrlhf_reward(request: Request, body: openrlhf.OpenRLHFRequest) -> dict[str, Any]:
        """OpenRLHF `--reward.remote_url http://HOST:PORT/openrlhf`."""
        if not body.query:  # several URLs split a batch: a server may get nothing
            return {"rewards": [], "scores": [], "extra_logs": {}}
        groups, index = openrlhf.to_groups(body)
        response = await score_dicts(request, groups)
        fallback = svc(request).settings.judge_error_fallback
        needs_number(per_sample(response, index), fallback)
        return openrlhf.to_response(response, index, fallback)

    @app.post("/slime", tags=["trainers"])
    async def slime_reward(request: Request, body: slime.SlimeRequest) -> dict[str, Any]:
        """slime `--rm-type remote_rm --rm-url http://HOST:PORT/slime --reward-key reward`."""
        groups, index = slime.to_groups(body)
        response = await score_dicts(request, groups)
        fallback = svc(request).settings.judge_error_fallback
        rollout = per_sample(response, index)[0]
        needs_number([rollout], fallback)
        return slime.reward_dict(rollout, fallback)

    return app
