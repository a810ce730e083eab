"""A fake judge wrapped so that its grading verdicts are rewritten: the base of the planted weakness
(`reward audit` must catch it) and the planted distortion (`reward migrate` must map it back).

Only a fake judge may be wrapped: a real judge's verdicts are never rewritten. A reply that is not a JSON object
is passed on as it is (an invalid reply stays invalid, re-asked as it would be).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any

from reward.judge.base import Judge, Reply, Usage


class VerdictRewriter(Judge):
    """`inner` (a fake judge) whose grading verdicts go through `rewrite`."""

    def __init__(self, inner: Judge, what: str) -> None:
        if not inner.settings.fake:
            raise ValueError(f"{what} goes only on a fake judge")
        self.inner = inner
        self.settings = inner.settings
        self.usage = inner.usage

    @abstractmethod
    def rewrite(self, messages: list[dict[str, str]], verdict: dict[str, Any]) -> bool:
        """Rewrite `verdict` in place; whether it did."""

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Reply:
        reply = await self.inner.complete(role, messages, usage, response_format, seed)
        if role != "grade":
            return reply
        try:
            verdict = json.loads(reply.content)
        except ValueError:
            return reply
        if not isinstance(verdict, dict) or not self.rewrite(messages, verdict):
            return reply
        return Reply(content=json.dumps(verdict), fake=True, finish_reason=reply.finish_reason)
