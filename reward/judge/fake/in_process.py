"""The fake judge in process: the `Judge` protocol answered by the fake judge's reply functions, with no
socket and no litellm. For logic tests (scorer, rescore, rubrics); transport is tested against the HTTP
fake judge (`reward.judge.fake.http`), which gives the same replies.

Its replies are marked fake, and its identity says so: nothing it judged is ever served as real.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any, TypeVar

from reward.judge.base import Judge, JudgeSettings, Reply, Usage
from reward.judge.fake.logprobs import fake_logprobs
from reward.judge.fake.replies import FakeNoise, fake_content, read_request
from reward.rubric.logprob_scores import TokenLogprob

T = TypeVar("T")


class InProcessFakeJudge(Judge):
    """A deterministic fake judge in this process (no socket): well-formed plans and verdicts derived from
    the prompt, every one marked fake. For tests and dry runs of scoring logic.

    `noise`: a judge of known signal and noise (`FakeNoise`); by default REWARD_FAKE_NOISE_SD's, else off."""

    def __init__(self, settings: JudgeSettings, latency: float = 0.0, noise: FakeNoise | None = None) -> None:
        self.settings = replace(settings, fake=True)
        self.usage = Usage()
        self.identity: dict[str, Any] = {"fake": True, "api_base": None, "router": None}
        self.calls: Counter[str] = Counter()
        # Every request as sent: {"role", "messages", "response_format", "seed"}.
        self.requests: list[dict[str, Any]] = []
        self.latency = latency  # seconds before each reply
        self._script: dict[str, list[str]] = {"condense": [], "grade": []}
        self.noise = noise if noise is not None else FakeNoise.from_env()

    def script(self, role: str, *contents: str) -> None:
        """Replies given instead of the correct ones to the next calls of `role`, first in first out."""
        self._script[role].extend(contents)

    def counts(self) -> dict[str, int]:
        return {"total": sum(self.calls.values()), **{role: self.calls[role] for role in ("condense", "grade")}}

    async def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Reply:
        self.calls[role] += 1
        self.requests.append({"role": role, "messages": messages, "response_format": response_format, "seed": seed})
        kind, prompt, schema = read_request(messages, response_format or {})
        if self.latency:
            await asyncio.sleep(self.latency)
        scripted = self._script[role]
        was_scripted = bool(scripted)
        content = scripted.pop(0) if scripted else fake_content(kind, prompt, schema, seed, self.noise)
        top = self.settings.grade.top_logprobs if role == "grade" and not was_scripted else 0
        # A scripted reply carries no logprobs (as from a provider without them); a generated verdict does.
        tokens = fake_logprobs(content, prompt, schema, top) if top else None
        for u in (usage, self.usage):
            u.calls[role] += 1
            u.prompt_tokens += len(prompt) // 4 + 1
            u.completion_tokens += len(content) // 4 + 1
            u.cost_known = False
        logprobs = None
        if tokens is not None:
            logprobs = tuple(
                TokenLogprob(t["token"], t["logprob"], tuple((a["token"], a["logprob"]) for a in t["top_logprobs"]))
                for t in tokens
            )
        return Reply(content=content, fake=True, finish_reason="stop", logprobs=logprobs)
