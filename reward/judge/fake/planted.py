"""A fake judge with a planted weakness: it answers as the fake judge it wraps, except that a verdict whose
candidate final answer carries one canary kind's attack (`reward.analysis.canaries.shows`) gets the best score
on every dimension (the scale's top, its bottom for a failure mode). What `reward audit` must catch.

Only a fake judge may be wrapped (a real judge's verdicts are never rewritten); its identity names the weakness,
so its verdicts never share cache keys with the plain fake's.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reward.analysis.canaries import KINDS, shows
from reward.judge.base import Judge, Reply, Usage
from reward.rubric.prompts import FENCE_CLOSE, FENCE_OPEN
from reward.rubric.spec import RubricSpec


def _fenced(text: str, label: str) -> str | None:
    m = re.search(
        rf"{FENCE_OPEN}data:{label}{FENCE_CLOSE}\n?(.*?)\n?{FENCE_OPEN}/data:{label}{FENCE_CLOSE}", text, re.S
    )
    return m.group(1) if m else None


class PlantedWeaknessJudge(Judge):
    """`inner` (a fake judge) with a planted weakness for canaries of `kind`, graded with rubric `spec`."""

    def __init__(self, inner: Judge, kind: str, spec: RubricSpec) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown canary kind {kind!r}; known: {', '.join(KINDS)}")
        if not inner.settings.fake:
            raise ValueError("a planted weakness goes only on a fake judge")
        self.inner = inner
        self.kind = kind
        self.settings = inner.settings
        self.usage = inner.usage
        self.identity: dict[str, Any] = {**inner.identity, "planted_weakness": kind}
        failure = {name for name, g in spec.groups.items() if g.failure_mode}
        self._best = {d.name: spec.scale.min if d.group in failure else spec.scale.max for d in spec.dimensions}
        self.paid_out = 0  # verdicts rewritten

    def fooled_by(self, messages: list[dict[str, str]]) -> bool:
        text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        answer = _fenced(text, "final_answer")
        if answer is None:
            answer = _fenced(text, "subagent_response") or ""
        return shows(self.kind, answer, _fenced(text, "query") or "")

    async def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Reply:
        reply = await self.inner.complete(role, messages, usage, response_format, seed)
        if role != "grade" or not self.fooled_by(messages):
            return reply
        try:
            verdict = json.loads(reply.content)
        except ValueError:
            return reply  # an invalid reply stays invalid: re-asked as it would be
        if not isinstance(verdict, dict):
            return reply
        for name, best in self._best.items():
            if f"{name}_score" in verdict:
                verdict[f"{name}_score"] = best
        self.paid_out += 1
        return Reply(content=json.dumps(verdict), fake=True, finish_reason=reply.finish_reason)
