"""The judge a batch pass scores with: it answers from batch results instead of calling the provider.

A pass runs the scorer's own code (`Scorer.score_group`) with this judge in place of the real one: same
settings, same identity, so every request is rendered, keyed, validated and cached exactly as in the
synchronous run. Each call (`complete`) either finds the batch's reply for that exact conversation and
attempt, and gives it (the scorer validates it and, if valid, the cache keeps it under the synchronous key), or
finds none: the request is noted for the next batch and the call fails with `judge_batch_pending` (nothing is
cached, the pass moves on). An invalid reply is re-asked by `Judge.ask` as ever: its follow-up conversation is a
new request, sent in the next batch. So stage after stage (plans, then verdicts, then re-asks) the passes
collect exactly what a synchronous run would send, and the cache ends up holding what it would hold.

A request is known by its slot: the cache key of its whole conversation and which attempt of that conversation
it is within one `ask` (a refusal or an empty reply is re-asked with the same conversation).
"""

from __future__ import annotations

import contextvars
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from reward.judge.base import FAKE_FINGERPRINT, Judge, JudgeError, Reply, Usage
from reward.judge.batch_api import LineResult
from reward.judge.cached import CachedJudge
from reward.judge.llm import litellm

T = TypeVar("T")
PENDING = "judge_batch_pending"
FAILED = "judge_batch_failed"
MAX_FAILURES = 2  # a request whose batch failed is sent once more, then left to the synchronous run

_attempts: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar("reward_batch_attempts", default=None)


@dataclass(frozen=True)
class Request:
    """One request to send in a batch."""

    role: str
    messages: list[dict[str, str]]
    response_format: dict[str, Any] | None
    seed: int | None


class ReplayJudge(Judge):
    """Answers from `results` (custom_id -> outcome); notes unanswered requests in `pending`."""

    def __init__(self, real: Judge, keys: CachedJudge) -> None:
        self.real = real
        self.settings = real.settings
        self.identity = real.identity
        self.usage = Usage()
        self._keys = keys  # the real judge's key function: a slot's id is its conversation's cache key
        self.results: dict[str, LineResult] = {}
        self.failures: Counter[str] = Counter()  # custom_id -> batches it had no outcome in
        self.pending: dict[str, Request] = {}
        self.left: dict[str, str] = {}  # custom_id -> why it is left to the synchronous run
        self.touched: set[str] = set()  # slots the current pass asked for

    def slot(self, role: str, messages: list[dict[str, str]], rf: dict[str, Any] | None, seed: int | None) -> str:
        attempts = _attempts.get()
        key = self._keys.request_key(role, messages, rf, seed)
        n = 0
        if attempts is not None:
            n = attempts[key]
            attempts[key] += 1
        digest = hashlib.sha256(f"{key}\0{n}".encode()).hexdigest()[:40]
        return f"{role}-{digest}"

    async def ask(
        self,
        role: str,
        messages: list[dict[str, str]],
        validate: Callable[[Reply], T],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> tuple[T, bool]:
        token = _attempts.set(Counter())  # attempts are counted per ask, as the synchronous loop makes them
        try:
            return await super().ask(role, messages, validate, usage, response_format, seed)
        finally:
            _attempts.reset(token)

    async def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Reply:
        cid = self.slot(role, messages, response_format, seed)
        self.touched.add(cid)
        found = self.results.get(cid)
        if found is not None and found.body is not None:
            return self.reply(found.body)
        if self.failures[cid] >= MAX_FAILURES:
            why = found.error if found is not None and found.error else "no outcome"
            self.left[cid] = why
            raise JudgeError(FAILED, f"no batch answered this request ({why}); the synchronous run asks it")
        self.pending[cid] = Request(role, list(messages), response_format, seed)
        raise JudgeError(PENDING, "sent in the next batch")

    def start_pass(self) -> None:
        """Keep only the replies the last pass asked for: the others were cached by the pass that read them
        (a valid reply is never asked again), so memory holds about one batch's replies, not the run's."""
        if self.touched:
            self.results = {cid: r for cid, r in self.results.items() if cid in self.touched}
        self.touched = set()
        self.pending.clear()

    def reply(self, body: dict[str, Any]) -> Reply:
        """A batch line's completion, checked as the synchronous call checks its response (JudgeError or
        InvalidReply for a reply to re-ask; any other exception: a body that is no completion)."""
        from reward.judge.litellm_judge import LiteLLMJudge

        response = litellm.ModelResponse(**body)
        fake = body.get("system_fingerprint") == FAKE_FINGERPRINT
        assert isinstance(self.real, LiteLLMJudge)  # BatchAPI.of refused any other judge
        return self.real._reply(response, fake)

    def malformed(self, body: dict[str, Any]) -> str | None:
        """Why a line's body is no completion (None: it is one, usable or to re-ask). Checked when the batch
        is read, so that a bad line is a failed request (sent once more, then left), never a crash of a pass
        or of every restart that reads the same output file."""
        try:
            self.reply(body)
        except JudgeError:
            return None
        except Exception as exc:  # pydantic's ValidationError, a TypeError from an odd key, ...
            first = str(exc).strip().splitlines()[:2]
            return f"a malformed completion ({type(exc).__name__}: {' '.join(first)[:200]})"
        return None

    def record(self, results: dict[str, LineResult], sent: list[str]) -> list[str]:
        """Take a finished batch's outcomes; a sent request without a usable reply (none, an error line, a
        malformed completion) counts a failure. A request another batch answered already keeps that answer (a
        restart reads an expired batch and the one that re-sent it): it is no failure. Returns the ids that
        failed."""
        failed: list[str] = []
        for cid in sent:
            if self.answered(cid):
                continue
            got = results.get(cid)
            if got is not None and got.body is not None:
                why = self.malformed(got.body)
                if why is None:
                    self.results[cid] = got
                    continue
                got = LineResult(None, why)
            failed += self.fail([cid], got.error if got is not None else None)
        return failed

    def fail(self, sent: list[str], why: str | None) -> list[str]:
        """Requests a batch gave no usable reply (its line, or the whole batch: refused, its output gone): each
        counts a failure, unless another batch answered it. Returns the ids that failed."""
        failed = [cid for cid in sent if not self.answered(cid)]
        for cid in failed:
            self.failures[cid] += 1
            self.results[cid] = LineResult(None, why or "no outcome in the batch")
        return failed

    def leave(self, cid: str, why: str) -> None:
        """A request no batch will carry: the synchronous run asks it (the next pass lists it as left)."""
        self.failures[cid] = MAX_FAILURES
        self.results[cid] = LineResult(None, why)

    def fates(self, failed: list[str], later: set[str]) -> str:
        """What becomes of a batch's failed requests (`later`: those a later batch of a restart's state carries,
        re-sent before the stop), for its warning."""
        resent = sum(c in later for c in failed)
        again = sum(self.failures[c] < MAX_FAILURES and c not in later for c in failed)
        said = f"{resent} re-sent already in a later batch, " if resent else ""
        said += f"{again} request(s) sent once more, " if again or not resent else ""
        return f"{said}{len(failed) - resent - again} left to the synchronous run (list price)"

    def answered(self, cid: str) -> bool:
        found = self.results.get(cid)
        return found is not None and found.body is not None
