"""Whether this worker's judge can be called, as the last scored requests showed: `/readyz` says 503 with the
reason while every judgement fails for a reason no retry fixes soon (bad credentials, a model that does not
exist, the provider down), so an orchestrator stops sending steps to a replica that can only answer errors.

Half-open after `retry_after_s`: a replica taken out of rotation gets no requests to prove it recovered, so
it reports ready again after a while and the next request decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reward.core.results import GroupResult

# Categories that say the judge cannot be called at all (a parse error or a refusal is about one reply).
# budget_exhausted: a serve process past REWARD_MAX_COST fails every call until it restarts with more.
BLOCKING = ("judge_auth", "judge_unavailable", "judge_bad_request", "budget_exhausted")


@dataclass
class JudgeHealth:
    retry_after_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    reason: str | None = None
    since: float = 0.0

    def observe(self, groups: Iterable[GroupResult]) -> None:
        """After each request: any judgement made clears the state; a request whose every judgement failed
        with a blocking category sets it (requests of penalised rollouts only say nothing)."""
        ok = 0
        blocking: dict[str, str] = {}
        other = 0
        for g in groups:
            for r in g.rollouts:
                if r.status == "ok":
                    ok += 1
                elif r.error is not None:
                    if r.error.category in BLOCKING:
                        blocking.setdefault(r.error.category, r.error.message)
                    else:
                        other += 1
        if ok:
            self.reason = None
        elif blocking and not other:
            category, message = next(iter(blocking.items()))
            self.reason = f"{category}: {message[:300]}"
            self.since = self.clock()

    def state(self) -> dict[str, object]:
        if self.reason is not None and self.clock() - self.since < self.retry_after_s:
            return {"judge": "failing", "judge_error": self.reason}
        return {"judge": "ok" if self.reason is None else "retrying", "judge_error": self.reason}

    @property
    def ready(self) -> bool:
        return self.state()["judge"] != "failing"
