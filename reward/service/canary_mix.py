"""Canaries mixed into live traffic (`reward serve` with REWARD_CANARY_RATE = p): is the judge being fooled
now, on this run's own tasks, by the known attacks `reward audit` tries offline?

After a fraction p of the scoring requests that carry a group with a reference trajectory, one such group's
canaries (reward.analysis.canaries) are scored with the same rubric and judge, in the background, and each is
compared with the median honest reward of its group *as the trainer was answered* (the honest rollouts are not
judged again). The trainer's answer is built before the audit starts and never sees it: not its rewards, its
usage, its group statistics nor its metrics; the audit only reads the answer's results.

Which requests: decided by a hash of the request's group ids, so a replayed request is chosen again (the same
fraction on every replica, and reproducible). A group audited in the last REAUDIT_S seconds is not audited
again (a trainer that sends one sample per request sends the same group many times within a step; its canaries
would be compared with the same rollouts); after that it is audited again, so a run that sees the same tasks
epoch after epoch keeps being audited against its policy's current rollouts.

Bounded, and second to the trainer: at most `cap` audits in flight per worker (when full, the audit is skipped
and counted); an audit scores its canaries one at a time, and starts each only while the trainer's rollouts
pending in this worker leave one of the judge's slots (its concurrency) free, so canary calls fill idle
capacity and hold at most `cap` slots, for one call each, when a trainer's burst arrives. A failing audit is
logged and counted, never an error to anyone; at shutdown the audits in flight are cancelled.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from reward.analysis.canaries import built_kinds, canary_rollouts, tally
from reward.core.results import GroupResult
from reward.core.trajectory import Group, TrajectoryReference
from reward.judge.base import Usage
from reward.scoring.plan_check import plan_sections
from reward.scoring.scorer import Scorer

log = logging.getLogger("reward.service.canaries")
CAP = 2  # canary audits in flight per worker
REAUDIT_S = 900.0  # a group is audited at most once in this many seconds (longer than a training step)
RECENT = 4096  # group ids remembered at most (the oldest forgotten first: audited again early)
OUTCOMES = ("done", "skipped", "failed")  # skipped: the cap was reached
POLL_S = 0.05  # how often a waiting audit looks for a free judge slot


class CanaryObserver(Protocol):
    """What the metrics hang on the mixer (reward.service.metrics), so this module needs no prometheus-client."""

    def audit(self, outcome: str) -> None: ...

    def tallied(self, rubric: str, kinds: dict[str, dict[str, Any]]) -> None: ...


def draw(key: str) -> float:
    """A number in [0, 1) fixed by `key`: the same on every run, process and replica."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def auditable(group: Group) -> bool:
    """Canaries are built from a reference trajectory (a ready plan or an id gives no commands to build from)."""
    ref = group.reference
    return isinstance(ref, TrajectoryReference) and not ref.is_native


class CanaryMixer:
    def __init__(
        self, rate: float, cap: int = CAP, deadline_s: float = 300.0, pending: Callable[[], int] = lambda: 0
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"canary rate must be within 0..1, not {rate}")
        self.rate = rate
        self.cap = cap
        self.deadline_s = deadline_s  # per canary: judge work still pending then is an error, not a hang
        self.pending = pending  # the trainer's rollouts pending in this worker
        self.scoring = 0  # canaries being scored now (one per audit at most)
        self.observer: CanaryObserver | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.peak = 0  # most audits ever in flight at once
        self.outcomes: Counter[str] = Counter()
        # This worker's tally per kind: {n, fooled, penalized, errors, no_baseline} (the metrics sum all workers).
        self.kinds: dict[str, Counter[str]] = {}
        self.reaudit_s = REAUDIT_S
        self.clock: Callable[[], float] = time.monotonic
        self._recent: OrderedDict[str, float] = OrderedDict()  # group id -> when it was last audited, oldest first
        self._warned: set[str] = set()  # rubrics already said to get no audit

    @property
    def in_flight(self) -> int:
        return len(self.tasks)

    def pick(self, groups: Sequence[Group]) -> Group | None:
        """The group this request's audit uses, or None: not chosen, nothing auditable, all audited lately."""
        if self.rate <= 0:
            return None
        eligible = [g for g in groups if auditable(g)]
        if not eligible or draw("\n".join(sorted(g.group_id for g in eligible))) >= self.rate:
            return None
        self._forget()
        fresh = [g for g in eligible if g.group_id not in self._recent]
        return min(fresh, key=lambda g: draw("group\n" + g.group_id)) if fresh else None

    def after(self, scorer: Scorer, groups: Sequence[Group], results: Sequence[GroupResult]) -> None:
        """Called once a request is scored, before it is answered: maybe start an audit in the background.
        Returns at once and never raises."""
        try:
            if self.rate <= 0 or not scorer.rubric.spec.reference:  # canaries are built from a reference
                return
            why = self.unsupported(scorer)
            if why is not None:
                if scorer.rubric.name not in self._warned:
                    self._warned.add(scorer.rubric.name)
                    log.warning("no canary audits for rubric %s: %s", scorer.rubric.name, why)
                return
            group = self.pick(groups)
            if group is None:
                return
            if len(self.tasks) >= self.cap:
                self._outcome("skipped")
                return
            honest = next(r for r in results if r.group_id == group.group_id)
            self._recent[group.group_id] = self.clock()
            self._recent.move_to_end(group.group_id)
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
            task = asyncio.get_running_loop().create_task(self._audit(scorer, group, honest))
            self.tasks.add(task)
            self.peak = max(self.peak, len(self.tasks))
            task.add_done_callback(self.tasks.discard)
        except Exception:
            log.exception("canary audit not started")
            self._outcome("failed")

    def _forget(self) -> None:
        """Forget the groups audited REAUDIT_S seconds ago or more: they may be audited again."""
        since = self.clock() - self.reaudit_s
        while self._recent and next(iter(self._recent.values())) <= since:
            self._recent.popitem(last=False)

    async def _audit(self, scorer: Scorer, group: Group, honest: GroupResult) -> None:
        try:
            spec = scorer.rubric.spec
            headings = plan_sections(scorer.rubric.condense_template or "") or None
            names = [d.name for d in spec.dimensions]
            scale = (spec.scale.min, spec.scale.max)
            canaries = canary_rollouts(group, names, scale, *([headings] if headings else []))
            usage = Usage()  # the audit's own: never the trainer's
            judged = []
            loop = asyncio.get_running_loop()
            for canary in canaries:  # one at a time: one judge slot per audit
                await self._free_slot(scorer.judge.settings.concurrency)
                one = group.model_copy(update={"rollouts": [canary]})
                self.scoring += 1
                try:
                    judged.extend((await scorer.score_group(one, usage, loop.time() + self.deadline_s)).rollouts)
                finally:
                    self.scoring -= 1
            merged = honest.model_copy(update={"rollouts": [*honest.rollouts, *judged]})
            failure = {n for n, g in spec.groups.items() if g.failure_mode}
            fm = {d.name for d in spec.dimensions if d.group in failure}
            kinds = tally([merged], {group.group_id: built_kinds(canaries)}, fm)["canaries"]
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("canary audit of group %r failed", group.group_id, extra={"event": "canary_failed"})
            self._outcome("failed")
            return
        for kind, row in kinds.items():
            mine = self.kinds.setdefault(kind, Counter())
            mine.update({k: v for k, v in row.items() if isinstance(v, int)})
        fooled = sorted(k for k, row in kinds.items() if row["fooled"])
        if fooled:
            log.info(
                "canaries of group %r fooled the judge: %s",
                group.group_id,
                ", ".join(fooled),
                extra={"event": "canary_fooled", "kinds": fooled, "calls": sum(usage.calls.values())},
            )
        if self.observer is not None:
            try:
                self.observer.tallied(scorer.rubric.name, kinds)
            except Exception:
                log.exception("canary metrics not recorded")
        self._outcome("done")

    async def _free_slot(self, concurrency: int) -> None:
        """Until the trainer's pending rollouts (a judge call each at most) and the canaries being scored leave
        one of the judge's `concurrency` slots free: under a saturating step the audit waits for its end."""
        while self.pending() + self.scoring >= concurrency:
            await asyncio.sleep(POLL_S)

    @staticmethod
    def unsupported(scorer: Scorer) -> str | None:
        """Why this scorer's requests get no canary audit, or None."""
        from reward.judge.budget import budget_status

        mode = scorer.rubric.spec.grading.mode
        if mode == "checklist":  # canaries score on the rubric's dimensions; a checklist's are each group's own
            return "grading mode checklist: its dimensions are each group's own criteria, not the canaries'"
        if mode != "rollout":  # a canary judged alone is not comparable with rollouts judged against each other
            return f"grading mode {mode} judges rollouts together; a canary judged alone would not be comparable"
        status = budget_status(scorer.judge)
        if status is not None and status.limit is not None:  # the audit's calls would spend the trainer's budget
            return "REWARD_MAX_COST is set: canary calls would spend the trainer's budget"
        return None

    def _outcome(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        if self.observer is not None:
            try:
                self.observer.audit(outcome)
            except Exception:  # a metrics failure is no reason to lose the audit's count
                log.exception("canary metrics not recorded")

    def view(self) -> dict[str, dict[str, Any]]:
        """This worker's tally: {kind: {n, fooled, rate}}."""
        return {
            kind: {"n": c["n"], "fooled": c["fooled"], "rate": round(c["fooled"] / c["n"], 4) if c["n"] else None}
            for kind, c in self.kinds.items()
        }

    async def wait(self) -> None:
        """Until the audits in flight now (and any they wait on) are done."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the audits in flight and wait for them to end (at shutdown, before the cache closes)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
