"""A fake judge with a planted weakness: it answers as the fake judge it wraps, except that a verdict whose
candidate final answer carries one canary kind's attack (`reward.analysis.canaries.shows`) gets the best score
on every dimension (the scale's top, its bottom for a failure mode); in a group verdict, the items of the
candidates that carry it; in a pair verdict, the candidate that carries it (alone) is preferred on every
dimension. What `reward audit` must catch.

Only a fake judge may be wrapped (a real judge's verdicts are never rewritten); its identity names the weakness,
so its verdicts never share cache keys with the plain fake's.
"""

from __future__ import annotations

import re
from typing import Any

from reward.analysis.canaries import KINDS, shows
from reward.judge.base import Judge
from reward.judge.fake.rewriting import VerdictRewriter
from reward.rubric.prompts import FENCE_CLOSE, FENCE_OPEN
from reward.rubric.spec import RubricSpec


def _fenced(text: str, label: str) -> str | None:
    m = re.search(
        rf"{FENCE_OPEN}data:{label}{FENCE_CLOSE}\n?(.*?)\n?{FENCE_OPEN}/data:{label}{FENCE_CLOSE}", text, re.S
    )
    return m.group(1) if m else None


class PlantedWeaknessJudge(VerdictRewriter):
    """`inner` (a fake judge) with a planted weakness for canaries of `kind`, graded with rubric `spec`."""

    def __init__(self, inner: Judge, kind: str, spec: RubricSpec) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown canary kind {kind!r}; known: {', '.join(KINDS)}")
        super().__init__(inner, "a planted weakness")
        self.kind = kind
        self.identity: dict[str, Any] = {**inner.identity, "planted_weakness": kind}
        failure = {name for name, g in spec.groups.items() if g.failure_mode}
        self._best = {d.name: spec.scale.min if d.group in failure else spec.scale.max for d in spec.dimensions}
        self.paid_out = 0  # verdicts rewritten

    def fooled_by(self, messages: list[dict[str, str]], candidate: str | None = None) -> bool:
        """Does the request's final answer (of candidate `candidate` of a group or pair request) fool it?"""
        text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        if candidate is not None:
            answer = _fenced(text, f"candidate_{candidate}_final_answer") or ""
        else:
            found = _fenced(text, "final_answer")
            answer = found if found is not None else _fenced(text, "subagent_response") or ""
        return shows(self.kind, answer, _fenced(text, "query") or "")

    def _rewrite(self, messages: list[dict[str, str]], verdict: dict[str, Any]) -> bool:
        """Pay out in `verdict` (any shape: one rollout, a group's items, a pair); whether it did."""
        if isinstance(verdict.get("rollouts"), list):  # group: the fooling candidates' items get the best
            paid = False
            for item in verdict["rollouts"]:
                if (
                    isinstance(item, dict)
                    and isinstance(item.get("label"), str)
                    and self.fooled_by(messages, item["label"])
                ):
                    paid = self._best_scores(item) or paid
            return paid
        if any(k.endswith("_preferred") for k in verdict):  # pair: the fooling candidate is preferred
            a, b = self.fooled_by(messages, "A"), self.fooled_by(messages, "B")
            if a == b:
                return False
            for k in verdict:
                if k.endswith("_preferred"):
                    verdict[k] = "A" if a else "B"
            return True
        return self.fooled_by(messages) and self._best_scores(verdict)

    def _best_scores(self, verdict: dict[str, Any]) -> bool:
        for name, best in self._best.items():
            if f"{name}_score" in verdict:
                verdict[f"{name}_score"] = best
        return True

    def rewrite(self, messages: list[dict[str, str]], verdict: dict[str, Any]) -> bool:
        if not self._rewrite(messages, verdict):
            return False
        self.paid_out += 1
        return True
