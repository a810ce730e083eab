"""NeMo Gym (and NeMo RL through it): the service as a NeMo Gym resources server, `/seed_session` + `/verify`.

Matched against nemo-gym 0.7.0: an agent (`responses_api_agents/simple_agent/app.py` `SimpleAgent.run`) POSTs
the dataset row to the resources server's `/seed_session`, runs the episode, then POSTs `/verify` with
`row | {"response": <the episode's Responses-API response>}` (`BaseVerifyRequest` in
`nemo_gym/base_resources_server.py`: `responses_create_params` + `response`, the row's other fields kept) and
validates the answer as a `BaseVerifyResponse`: the request echoed, `reward: float`, `mask_sample`,
`failure_kind`, `failure_reason`; other fields pass through (the agent's model allows extras).

The row carries the task like every adapter's label (reward.adapters.common.parse_label): a `label` field,
or top-level `reference` (+ optional `query`, `group_id`); without a query, the last user message of
`responses_create_params.input` is the query. The rollout is the request's input items followed by
`response.output`, read by reward.native.responses.

A judge failure is never a reward: NeMo Gym does not retry an HTTP error from `/verify` (its client
retries only a lost connection), so the 503 fails the rollout (`raise_for_status` in the agent, a 500 from
its `/run`, an exception in `RolloutCollectionHelper.run_examples` that fails NeMo RL's step, or a
`agent_run_error` row without a reward in `ng_collect_rollouts`' failures sidecar, retried on resume).
NeMo Gym's own masked row (`reward: 0.0, mask_sample: true`) is not used by default: NeMo RL still puts a
masked sample's reward in its group's GRPO baseline. With REWARD_JUDGE_ERROR_FALLBACK set, the answer is
that masked row, with the fallback as the reward and `reward_fallback: true`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from reward.adapters.common import (
    AdapterInputError,
    JudgeFailed,
    build_groups,
    label_problems,
    parse_label,
    sample_answer,
)
from reward.core.trajectory import parse_json, validation_problems
from reward.native.prepare import GroupInputError
from reward.native.responses import turns_from_responses
from reward.native.turns import assemble
from reward.service.reward_service import RewardService, ScoreRequest
from reward.settings import parse_tools

PREFIX = "/nemo_gym"
LABEL_FIELDS = ("reference", "query", "group_id")
FAILURE_KIND = "judge_failed"  # nemo_gym.failure_kinds: the judge, not the policy, failed


class ResponseIn(BaseModel):
    """What we read of the Responses-API `response`; the rest is echoed as sent."""

    model_config = ConfigDict(extra="allow")
    output: list[Any]


class ParamsIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[Any] = ""


class VerifyIn(BaseModel):
    """`BaseVerifyRequest`: the dataset row (extra fields kept) and the response."""

    model_config = ConfigDict(extra="allow")
    responses_create_params: ParamsIn
    response: ResponseIn


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object body, parsed strictly (NaN, huge integers, deep nesting: 422) off the event loop."""
    raw = await request.body()
    try:
        data = await asyncio.to_thread(parse_json, raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise GroupInputError([f"body: not UTF-8 (byte {exc.start})"]) from None
    except ValueError as exc:
        raise GroupInputError([f"body: {exc}"]) from None
    if not isinstance(data, dict):
        raise GroupInputError(["body: expected a JSON object (a NeMo Gym row)"])
    return data


def _label(row: dict[str, Any]) -> tuple[Any, str]:
    """The row's label and how errors name it: `label`, or the row's own reference / query / group_id."""
    if "label" in row:
        if any(k in row for k in LABEL_FIELDS):
            raise AdapterInputError(f"row: give the task as `label` or as {', '.join(LABEL_FIELDS)}, not both")
        return row["label"], "label"
    return {k: row[k] for k in LABEL_FIELDS if k in row}, "row"


def rollout_of(verify: VerifyIn, tool: Any, convention: tuple[str, ...]) -> dict[str, Any]:
    """The steps form of a NeMo Gym rollout: the request's input items, then the response's output items."""
    given = verify.responses_create_params.input
    items = [{"type": "message", "role": "user", "content": given}] if isinstance(given, str) else list(given)
    steps, final = assemble(turns_from_responses(items + verify.response.output, tool), convention)
    return {"steps": [s.model_dump() for s in steps], "final_answer": final}


async def _score(svc: RewardService, groups: list[dict[str, Any]], index: list[tuple[int, int]], at: str) -> Any:
    """Score the one sample; a problem is named by the row field it came from (as /slime does)."""
    try:
        body = ScoreRequest.model_validate({"groups": groups})
    except ValidationError as exc:
        raise GroupInputError(label_problems(list(validation_problems(exc)), index, at)) from exc
    try:
        result = await svc.score(body)
    except GroupInputError as exc:
        raise GroupInputError(label_problems(exc.problems, index, at)) from exc
    return result.model_dump(mode="json")


def _verify_answer(row: dict[str, Any], rollout: dict[str, Any], fake: bool, fallback: float | None) -> dict[str, Any]:
    """`BaseVerifyResponse`: the request echoed, the reward, NeMo Gym's failure fields, then ours."""
    failed = rollout["reward"] is None
    ours = {
        **sample_answer(rollout, fallback),
        "mask_sample": failed,
        "failure_kind": FAILURE_KIND if failed else None,
        "failure_reason": rollout["error"]["message"][:2000] if failed else None,
        "warnings": rollout.get("warnings"),
        "fake": fake,
    }
    if failed:  # the fields NeMo Gym's judge_failsafe sets: NeMo RL reads instance_config.mask_sample
        config = row.get("instance_config")
        ours["instance_config"] = {**(config if isinstance(config, dict) else {}), "mask_sample": True}
        ours["_ng_failure_class"] = FAILURE_KIND
    return {**row, **ours}


def _routes(router: APIRouter) -> APIRouter:
    @router.post("/seed_session")
    async def seed_session(request: Request) -> JSONResponse:
        """Nothing to seed (no per-rollout state); the row's label is checked now, before a rollout is spent.
        An Environment Server's seed (`resources_session_id`, the row in `task_data`) gets its id back."""
        body = await _body(request)
        session = body.get("resources_session_id")
        row = body.get("task_data") if isinstance(session, str) else body
        if isinstance(row, dict):
            label, at = _label(row)
            parse_label(label, at)
        return JSONResponse({"resources_session_id": session} if isinstance(session, str) else {})

    @router.post("/verify")
    async def verify(request: Request, terminal_tool: str | None = Query(default=None)) -> JSONResponse:
        """`?terminal_tool=NAME[,NAME]`: the harness's terminal tool(s), as on the other trainer URLs (NeMo
        Gym itself cannot add a query: behind a proxy, or REWARD_TERMINAL_TOOL for the server)."""
        try:
            tools = parse_tools(terminal_tool) if terminal_tool is not None else None
        except ValueError as exc:
            raise GroupInputError([f"terminal_tool (query parameter): {exc}"]) from None
        row = await _body(request)
        try:
            parsed = VerifyIn.model_validate(row)
        except ValidationError as exc:
            raise GroupInputError(list(validation_problems(exc))) from exc
        svc: RewardService = request.app.state.service
        label, at = _label(row)
        rollout = rollout_of(parsed, tools or svc.settings.terminal_tool, tuple(svc.settings.exit_code))
        prompt = parsed.responses_create_params.input
        groups, index = build_groups([{"label": label, "prompt": prompt, "rollout": rollout}], at)
        response = await _score(svc, groups, index, at)
        g, r = index[0]
        scored = response["groups"][g]["rollouts"][r]
        fallback = svc.settings.judge_error_fallback
        if scored["reward"] is None and fallback is None:
            raise JudgeFailed([scored["error"]])
        return JSONResponse(_verify_answer(row, scored, bool(response["groups"][g]["judge"]["fake"]), fallback))

    return router


# NeMo Gym calls `http://{host}:{port}/seed_session` and `/verify` (ServerClient builds the URL from host and
# port only): `root_router` serves them there; `router` under /nemo_gym, for a proxy or a forwarding server.
router = _routes(APIRouter(prefix=PREFIX, tags=["trainers"]))
root_router = _routes(APIRouter(tags=["trainers"]))
