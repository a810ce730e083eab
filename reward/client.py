"""A small client for `reward serve`, used by every in-process adapter (sync and async).

Connections are reused (one httpx client per event loop, one for sync use). The timeout (110 s by default,
REWARD_TIMEOUT) stays below the trainers' own: slime 120 s, OpenRLHF 180 s.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 110.0


class RewardServiceError(RuntimeError):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"reward service answered {status}: {detail}")
        self.status = status
        self.detail = detail


class RewardClient:
    def __init__(self, url: str | None = None, *, timeout_s: float | None = None, token: str | None = None) -> None:
        self.url = (url or os.environ.get("REWARD_URL") or DEFAULT_URL).rstrip("/")
        self.timeout = httpx.Timeout(timeout_s or float(os.environ.get("REWARD_TIMEOUT") or DEFAULT_TIMEOUT_S))
        token = token or os.environ.get("REWARD_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._sync: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @staticmethod
    def _body(groups: list[dict[str, Any]], rubric: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"groups": groups}
        if rubric:
            body["rubric"] = rubric
        return body

    @staticmethod
    def _result(resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code != 200:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text[:500]
            raise RewardServiceError(resp.status_code, detail)
        return resp.json()

    def score(self, groups: list[dict[str, Any]], rubric: str | None = None) -> dict[str, Any]:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(timeout=self.timeout, headers=self.headers)
        return self._result(self._sync.post(f"{self.url}/score", json=self._body(groups, rubric)))

    def _async_client(self) -> httpx.AsyncClient:
        # An httpx.AsyncClient belongs to the event loop it first ran on; trainers may use several loops.
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            client = httpx.AsyncClient(timeout=self.timeout, headers=self.headers, limits=limits)
            self._async[loop] = client
        return client

    async def ascore(self, groups: list[dict[str, Any]], rubric: str | None = None) -> dict[str, Any]:
        resp = await self._async_client().post(f"{self.url}/score", json=self._body(groups, rubric))
        return self._result(resp)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()


_default: RewardClient | None = None


def default_client() -> RewardClient:
    """The process-wide client configured from REWARD_URL / REWARD_TIMEOUT / REWARD_TOKEN."""
    global _default
    if _default is None:
        _default = RewardClient()
    return _default
