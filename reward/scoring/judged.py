"""What the judge gave one rollout: an Execution Plan (cached as such), and everything grading a rollout took
and gave (`Graded`), which `--samples auto` extends one sample at a time; and whether the fake judge touched
the group being scored (`touching`), which a rollout that ends as an error still tells."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from reward.core.results import ErrorInfo, RolloutResult, ShownCommand, Transcript
from reward.core.trajectory import CondenseInput, Group, Rollout
from reward.judge.base import JudgeError, Reply
from reward.judge.cached import Judgement
from reward.rubric.noise import Sample
from reward.rubric.verdict import Verdict
from reward.scoring.plan_check import check_plan

J = TypeVar("J", bound=Judgement)


@dataclass(frozen=True)
class Plan:
    """An Execution Plan and whether the fake judge wrote it. Cached as {"plan": str, "fake": bool}."""

    text: str
    fake: bool

    def to_cache(self) -> dict[str, Any]:
        return {"plan": self.text, "fake": self.fake}

    @classmethod
    def from_cache(cls, value: Any, sections: tuple[str, ...]) -> Plan:
        """A cached plan, checked as a judge reply is (`check_plan` with the template's `sections`): a planted
        or corrupt value (a refusal, a plan missing most sections) is refused (a miss), never graded."""
        ok = isinstance(value, dict) and set(value) == {"plan", "fake"}
        if not (ok and isinstance(value["plan"], str) and value["plan"].strip() and isinstance(value["fake"], bool)):
            raise ValueError("a cached plan must be {plan: non-empty string, fake: boolean}")
        return cls(check_plan(Reply(value["plan"], value["fake"]), sections), value["fake"])


@dataclass
class Graded:
    """What grading one rollout took and gave: enough to draw one more sample of it (`--samples auto`)."""

    group: Group
    rollout: Rollout
    ci: CondenseInput
    reference: asyncio.Task[Plan] | None
    candidates: list[Plan]
    ref: Plan | None
    verdicts: list[Verdict]

    @property
    def samples(self) -> list[Sample]:
        return [{name: (s.score, s.reason) for name, s in v.scores.items()} for v in self.verdicts]

    @property
    def fake(self) -> bool:
        judged: list[Plan | Verdict] = [*self.candidates, *([self.ref] if self.ref else []), *self.verdicts]
        return any(x.fake for x in judged)


def transcript_of(ci: CondenseInput) -> Transcript:
    steps = [ShownCommand(command=s.command, exit_code=s.exit_code, output=s.output) for s in ci.steps]
    return Transcript(steps=steps, final_answer=ci.final_answer)


def error_result(rollout: Rollout, fa_ok: bool, category: str, message: str) -> RolloutResult:
    """A rollout the judge could not score: a categorised error, no reward, out of its group's statistics."""
    assert rollout.id is not None
    return RolloutResult(
        id=rollout.id,
        status="error",
        reward=None,
        error=ErrorInfo(category=category, message=message),
        in_group_stats=False,
        has_final_answer=fa_ok,
    )


class Touch:
    """Whether the fake judge answered any request made for one group: a plan or a verdict, valid or not (a
    reply re-asked, then failed), fresh or from the cache. The group is marked fake when it did, even if every
    rollout of it ends as an error. Its reference plan, condensed before any rollout needs it, has a Touch of
    its own (`reference`), the group's once a rollout is graded against it (`reference_of`): a group whose
    rollouts are all penalised is not marked by a plan nobody used."""

    def __init__(self) -> None:
        self.fake = False
        self.reference: Touch | None = None


_touch: ContextVar[Touch | None] = ContextVar("reward_fake_touch", default=None)


@contextmanager
def touching(reference_of: Touch | None = None) -> Iterator[Touch]:
    """A Touch for the group scored inside (or for its reference plan, `reference_of` the group's): the tasks
    started inside (judge calls, the cache's shared computations) note into it, since tasks copy their
    creator's context."""
    touch = Touch()
    if reference_of is not None:
        reference_of.reference = touch
    token = _touch.set(touch)
    try:
        yield touch
    finally:
        _touch.reset(token)


def note_fake(fake: bool) -> None:
    """Note in the current group's Touch (if any) that the fake judge gave something."""
    touch = _touch.get()
    if fake and touch is not None:
        touch.fake = True


def noting(validate: Callable[[Reply], J], load: Callable[[Any], J]) -> tuple[Callable[[Reply], J], Callable[[Any], J]]:
    """`validate` and `load` of a judge request, noting in the group's Touch every reply (valid or not) and every
    cached judgement the fake judge gave."""

    def validated(reply: Reply) -> J:
        note_fake(reply.fake)
        return validate(reply)

    def loaded(value: Any) -> J:
        judgement = load(value)
        note_fake(judgement.fake)
        return judgement

    return validated, loaded


async def reference_of(reference: asyncio.Task[Plan] | None) -> Plan | None:
    """The group's reference plan, for a rollout graded against it: what the fake judge gave for it (even a
    failed plan's re-asked replies) now touches the group."""
    if reference is None:
        return None
    try:
        return await asyncio.shield(reference)
    except JudgeError as exc:
        raise JudgeError(exc.category, f"reference plan: {exc.message}") from exc
    finally:
        touch = _touch.get()
        if touch is not None and touch.reference is not None:
            note_fake(touch.reference.fake)
