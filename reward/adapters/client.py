"""A small client for `reward serve`, used by every in-process adapter (sync and async).

Connections are reused (one httpx client per event loop, one for sync use). Transient failures are
retried with tenacity: 429 / 502 / 503 / 504 (waiting what `Retry-After` says), connection errors, and an answer
in which some rollout met a transient judge error (unavailable, rate-limited, timed out: the same case the
HTTP trainer endpoints answer with 503; judgements already made are cached, so a retry repeats only the
failed calls). All within one time budget (REWARD_TIMEOUT, 110 s by default) that stays below the
trainers' own timeouts (slime 120 s, OpenRLHF 180 s); an attempt never runs past the budget. Another 4xx is
the request's fault and is raised at once. Every raised error carries the service's own detail.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_before_delay

from reward.errors import RewardError
from reward.settings import DEFAULTS, Settings, parse_tools, setting

DEFAULT_URL = DEFAULTS.url
DEFAULT_TIMEOUT_S = DEFAULTS.timeout
_TRANSIENT = {429, 502, 503, 504}  # 429: a gateway or proxy in front of the service rate-limiting
_TRANSIENT_JUDGE = {"judge_unavailable", "judge_rate_limited", "judge_timeout"}
_MAX_BACKOFF_S = 8.0


class RewardServiceError(RewardError, RuntimeError):
    """The service answered an error, or could not be reached: `status` (None: unreachable), its `detail`,
    `retry_after` and how many `attempts` were made. `transient` says whether asking again may help."""

    def __init__(self, status: int | None, detail: Any, retry_after: float | None = None) -> None:
        what = f"answered {status}" if status is not None else "could not be reached"
        super().__init__(f"reward service {what}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.attempts = 1

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in _TRANSIENT or self.status == 200

    def __str__(self) -> str:
        base = super().__str__()
        return base if self.attempts == 1 else f"{base} (after {self.attempts} attempts)"


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers.get("retry-after", "")))
    except ValueError:
        return None


class JudgeBlip(RewardServiceError):
    """A 200 answer in which some rollout met a transient judge error: worth asking again."""

    def __init__(self, answer: dict[str, Any], errors: list[Any]) -> None:
        super().__init__(200, f"{len(errors)} rollout(s) met a transient judge error: {errors[:3]}", None)
        self.answer = answer


def _kept(resp: httpx.Response, blip: list[JudgeBlip]) -> dict[str, Any]:
    """`_result`, remembering an answer with transient judge errors before it is asked again."""
    try:
        return _result(resp)
    except JudgeBlip as exc:
        blip[:] = [exc]
        raise


def _out_of_budget(exc: RewardServiceError, blip: list[JudgeBlip], attempts: int) -> dict[str, Any]:
    """The budget is spent: the last answer with transient judge errors, as it is (the adapter reports its
    errors its own way), even when a later try was cut off by the budget's end; else the error, raised."""
    if blip and (isinstance(exc, JudgeBlip) or exc.status is None):
        return blip[-1].answer
    exc.attempts = attempts
    raise exc


def _result(resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code != 200:
        try:
            body = resp.json()
            detail = body.get("detail", body) if isinstance(body, dict) else body
        except ValueError:
            detail = resp.text[:500]
        raise RewardServiceError(resp.status_code, detail, _retry_after(resp))
    answer: dict[str, Any] = resp.json()
    errors = [
        r["error"]
        for g in answer.get("groups", [])
        for r in g.get("rollouts", [])
        if (r.get("error") or {}).get("category") in _TRANSIENT_JUDGE
    ]
    if errors:
        raise JudgeBlip(answer, errors)
    return answer


def _wait(state: RetryCallState) -> float:
    """Retry-After when the service gave one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RewardServiceError) and exc.retry_after is not None:
        return exc.retry_after
    return min(_MAX_BACKOFF_S, 0.5 * 2 ** (state.attempt_number - 1)) * (0.5 + random.random() / 2)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, RewardServiceError) and exc.transient


def _declared_tools(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is not None:
        return parse_tools(value)
    env = Settings.from_env(only=("terminal_tool",))
    return env.terminal_tool if "terminal_tool" in env.model_fields_set else None


class RewardClient:
    """The trainer side of `reward serve`: POST /score with retries of transient failures inside one time
    budget. `score` for sync code, `ascore` on any event loop (one connection pool per loop). Configured by
    arguments, else REWARD_URL / REWARD_TIMEOUT / REWARD_TOKEN / REWARD_TERMINAL_TOOL.

        client = RewardClient("http://127.0.0.1:8000")
        answer = client.score([{"group_id": "g", "query": "...", "reference": {"plan": "..."},
                                "rollouts": [{"id": "r0", "messages": [...]}]}])
        rewards = [r["reward"] for r in answer["groups"][0]["rollouts"]]  # None where the judge failed"""

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout_s: float | None = None,
        token: str | None = None,
        terminal_tool: str | Sequence[str] | None = None,
    ) -> None:
        """`terminal_tool`: the harness's terminal tool name(s), sent with every request (else
        REWARD_TERMINAL_TOOL when set in this process; else the server decides)."""
        self.url = (url or setting("url")).rstrip("/")
        self.terminal_tool = _declared_tools(terminal_tool)
        self.budget_s = timeout_s or setting("timeout")
        token = token or setting("token")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._sync: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def _body(
        self, groups: list[dict[str, Any]], rubric: str | None, terminal_tool: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"groups": groups}
        if rubric:
            body["rubric"] = rubric
        tools = parse_tools(terminal_tool) if terminal_tool is not None else self.terminal_tool
        if tools is not None:
            body["terminal_tool"] = list(tools)
        return body

    def _retry_kwargs(self) -> dict[str, Any]:
        # stop_before_delay: no wait (Retry-After included) may take us past the budget
        return {
            "retry": retry_if_exception(_transient),
            "wait": _wait,
            "stop": stop_before_delay(self.budget_s),
            "reraise": True,
        }

    def _timeout(self, deadline: float) -> httpx.Timeout:
        return httpx.Timeout(max(0.1, deadline - time.monotonic()))

    def score(
        self,
        groups: list[dict[str, Any]],
        rubric: str | None = None,
        terminal_tool: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The service's whole answer (`groups`, `usage`, `metrics`) for these groups. Raises
        RewardServiceError for a 4xx at once, for anything else when the budget is spent; an answer that
        still holds transient judge errors after the budget is returned as it is (rewards None there)."""
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(headers=self.headers)
        body, deadline, attempts = self._body(groups, rubric, terminal_tool), time.monotonic() + self.budget_s, 0
        blip: list[JudgeBlip] = []  # the last answer with transient judge errors, kept if a later try is cut off
        try:
            for attempt in Retrying(**self._retry_kwargs()):
                with attempt:
                    attempts += 1
                    try:
                        resp = self._sync.post(f"{self.url}/score", json=body, timeout=self._timeout(deadline))
                    except httpx.TransportError as exc:
                        raise RewardServiceError(None, f"{self.url}: {type(exc).__name__}: {exc}") from exc
                    return _kept(resp, blip)
        except RewardServiceError as exc:
            return _out_of_budget(exc, blip, attempts)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _async_client(self) -> httpx.AsyncClient:
        # An httpx.AsyncClient belongs to the event loop it first ran on; trainers may use several loops.
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            client = httpx.AsyncClient(headers=self.headers, limits=limits)
            self._async[loop] = client
        return client

    async def ascore(
        self,
        groups: list[dict[str, Any]],
        rubric: str | None = None,
        terminal_tool: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """`score` for async code (the trainer's event loop)."""
        body, deadline, attempts = self._body(groups, rubric, terminal_tool), time.monotonic() + self.budget_s, 0
        blip: list[JudgeBlip] = []
        client = self._async_client()
        try:
            async for attempt in AsyncRetrying(**self._retry_kwargs()):
                with attempt:
                    attempts += 1
                    try:
                        resp = await client.post(f"{self.url}/score", json=body, timeout=self._timeout(deadline))
                    except httpx.TransportError as exc:
                        raise RewardServiceError(None, f"{self.url}: {type(exc).__name__}: {exc}") from exc
                    return _kept(resp, blip)
        except RewardServiceError as exc:
            return _out_of_budget(exc, blip, attempts)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def close(self) -> None:
        """Close the sync connection pool (async pools close with their event loop)."""
        if self._sync is not None:
            self._sync.close()


_default: RewardClient | None = None


def default_client() -> RewardClient:
    """The process-wide client configured from REWARD_URL / REWARD_TIMEOUT / REWARD_TOKEN."""
    global _default
    if _default is None:
        _default = RewardClient()
    return _default
