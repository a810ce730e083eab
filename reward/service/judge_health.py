"""Whether this worker's judge can be called, as the last scored requests showed: `/readyz` says 503 with the
reason while every judgement fails for a reason no retry fixes soon (bad credentials, a model that does not
exist, the provider down), so an orchestrator stops sending steps to a replica that can only answer errors.
A failure that may come from what one rollout holds (a 400 for a flagged prompt, a 413) never does: trainers
send one rollout per request, and one such rollout must not take the replica out of rotation.

Half-open after `retry_after_s`: a replica taken out of rotation gets no requests to prove it recovered, so
it reports ready again after a while and the next request decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reward.core.results import GroupResult

# Categories that say the judge cannot be called at all, whatever the rollout (a parse error or a refusal is
# about one reply). budget_exhausted: a serve process past REWARD_MAX_COST fails every call until it restarts.
BLOCKING = ("judge_auth", "budget_exhausted")
# judge_bad_request is a 400/422 (often the rollout's content: a flagged prompt) or a 404; only the 404 (the
# model or endpoint does not exist) is the same for every rollout. The category is shared, the message tells.
NOT_FOUND = "litellm.NotFoundError"
# judge_unavailable, left after the call's own retries, is a connection refused or a 503 (an outage), but also
# a 500 or a 413 that one rollout's prompt can provoke: failing only once this many requests in a row (none
# judged in between) failed so, as an outage makes every request fail and one odd rollout only its own.
REPEATED = ("judge_unavailable",)
REPEATS = 3


def blocking(category: str, message: str) -> bool:
    return category in BLOCKING or (category == "judge_bad_request" and NOT_FOUND in message)


@dataclass
class JudgeHealth:
    retry_after_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    reason: str | None = None
    since: float = 0.0
    streak: int = 0  # requests in a row whose every judgement failed with a REPEATED category

    def observe(self, groups: Iterable[GroupResult]) -> None:
        """After each request: any judgement made clears the state; a request whose every judgement failed
        with a blocking category sets it, as do REPEATS in a row failed with a REPEATED one (requests of
        penalised rollouts only say nothing)."""
        ok = 0
        blocked: dict[str, str] = {}
        repeated: dict[str, str] = {}
        other = 0
        for g in groups:
            for r in g.rollouts:
                if r.status == "ok":
                    ok += 1
                elif r.error is not None:
                    if blocking(r.error.category, r.error.message):
                        blocked.setdefault(r.error.category, r.error.message)
                    elif r.error.category in REPEATED:
                        repeated.setdefault(r.error.category, r.error.message)
                    else:
                        other += 1
        if ok:
            self.reason, self.streak = None, 0
            return
        if other:  # the judge answered (unparseable, a refusal): an outage's run of failures is over
            self.streak = 0
            return
        if not (blocked or repeated):
            return
        if repeated:
            self.streak += 1
        if blocked or self.streak >= REPEATS:
            category, message = next(iter({**blocked, **repeated}.items()))
            self.reason = f"{category}: {message[:300]}"
            self.since = self.clock()

    def state(self) -> dict[str, object]:
        if self.reason is not None and self.clock() - self.since < self.retry_after_s:
            return {"judge": "failing", "judge_error": self.reason}
        return {"judge": "ok" if self.reason is None else "retrying", "judge_error": self.reason}

    @property
    def ready(self) -> bool:
        return self.state()["judge"] != "failing"
