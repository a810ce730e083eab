"""Score one prompt group: penalties, condensing (cached), grading (cached), the formula, group stats.

The judge and the cache are injected; everything else is a call into the pure core. A judgement is cached
under what the judge is sent — the rendered messages, the response format, the model, who answers and the
sampling settings — and under nothing else: a rubric edit the prompts do not show (formula, constants,
weights, penalties, the group filter, comments) costs no judge call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reward.cache.disk import Store
from reward.core.results import (
    GroupResult,
    GroupUsage,
    JudgeInfo,
    RolloutResult,
)
from reward.core.trajectory import CondenseInput, Group, IdReference, PlanReference, Rollout, Trajectory, condense_input
from reward.judge.base import Judge, JudgeError, Reply, Usage
from reward.judge.cached import CachedJudge
from reward.judge.llm import count_tokens
from reward.native.calls import tool_warnings
from reward.rubric.finish import expected_basis, graded_fields, group_fields, no_auto
from reward.rubric.inputs import group_inputs, rollout_inputs
from reward.rubric.load import Rubric
from reward.rubric.logprob_scores import with_logprob_fields
from reward.rubric.penalties import check_penalty, has_final_answer
from reward.rubric.prompts import Messages, TemplateProblem, condense_messages, grade_messages
from reward.rubric.verdict import (
    DimensionScore,
    Verdict,
    parse_verdict,
    response_format,
    verdict_from_cache,
    verdict_model,
    verdict_of_reply,
)
from reward.scoring.judged import (
    Graded,
    J,
    Plan,
    Touch,
    error_result,
    note_fake,
    noting,
    reference_of,
    touching,
    transcript_of,
)
from reward.scoring.plan_check import check_plan, check_verdict, plan_sections

OFF_LOOP_CHARS = 256 * 1024


def _size(t: Trajectory) -> int:
    return len(t.final_answer) + sum(len(s.command) + len(s.output) for s in t.steps)


class Scorer:
    """Scores prompt groups with one rubric, one judge and one cache: penalties first, then condense and
    grade, then the formula and the group statistics (`score_group`)."""

    def __init__(
        self,
        rubric: Rubric,
        judge: Judge,
        store: Store,
        counter: Callable[[str], int] = count_tokens,
    ) -> None:
        self.rubric = rubric
        self.judge = judge
        self.store = store
        self.counter = counter
        self.cached = CachedJudge(judge, store)  # owns the cache key of every judge request
        self.keep_plans = False  # write the plans the grader saw into the output (`score --include-plans`)
        spec = rubric.spec
        self.response_format = response_format(spec)
        self._verdict_model = verdict_model(spec)
        self._sections = plan_sections(rubric.condense_template or "")
        settings = judge.settings
        auto = settings.max_samples is not None
        if auto and spec.grading.mode in ("group", "pairwise"):
            raise ValueError(no_auto(rubric.name, spec.grading.mode))
        self.fixed_k = 1 if auto else settings.samples  # samples every graded rollout gets at once
        self.basis = expected_basis(
            rubric, "auto" if auto else settings.samples, settings.resample_condense, settings.max_samples
        )

    async def aclose(self) -> None:
        """Close the judge's connections on the running loop: call it before a loop that scored ends
        (`asyncio.run` per group), or each loop leaves its sockets open."""
        await self.judge.aclose()

    # --- condensing -----------------------------------------------------------------------------

    def condense_input(self, query: str, trajectory: Trajectory) -> CondenseInput:
        if trajectory.is_native:
            raise ValueError("native rollouts must be materialized first (reward.native.prepare.prepare_group)")
        t = self.rubric.spec.truncation
        return condense_input(query, trajectory, t.head, t.tail)

    def condense_request(self, group: Group, ci: CondenseInput) -> Messages:
        try:
            return condense_messages(self.rubric, ci, group_inputs(self.rubric.spec, group))
        except TemplateProblem as exc:  # an error of the rollout (or of its group's reference), never a 500
            raise JudgeError("template_error", str(exc)) from exc

    async def judgement(
        self,
        role: str,
        messages: Messages,
        validate: Callable[[Reply], J],
        load: Callable[[Any], J],
        usage: Usage,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> J:
        """`CachedJudge.judgement`, noting what the fake judge gave in the group's Touch (`judged.noting`)."""
        return await self.cached.judgement(role, messages, *noting(validate, load), usage, response_format, seed)

    def load_plan(self, value: Any) -> Plan:
        """A cached plan, held to what a condensing reply must be (a failing entry is a miss, condensed again)."""
        return Plan.from_cache(value, self._sections)

    async def plan(self, messages: Messages, usage: Usage, seed: int | None = None) -> Plan:
        """The Execution Plan the condensing request `messages` gets (cached)."""
        return await self.judgement(
            "condense",
            messages,
            lambda r: Plan(check_plan(r, self._sections), r.fake),
            self.load_plan,
            usage,
            seed=seed,
        )

    async def reference_plan(self, group: Group, usage: Usage) -> Plan:
        ref = group.reference
        if isinstance(ref, PlanReference):
            note_fake(ref.fake)
            return Plan(ref.plan, ref.fake)
        if ref is None or isinstance(ref, IdReference):
            raise ValueError("reference ids must be resolved first (reward.native.prepare.prepare_group)")
        if _size(ref) > OFF_LOOP_CHARS:
            ci = await asyncio.to_thread(self.condense_input, group.query, ref)
        else:
            ci = self.condense_input(group.query, ref)
        return await self.plan(self.condense_request(group, ci), usage)

    async def _reference(self, group: Group, usage: Usage, touch: Touch) -> Plan:
        with touching(reference_of=touch):  # the group's only once a rollout is graded against it
            return await self.reference_plan(group, usage)

    # --- grading --------------------------------------------------------------------------------

    def grade_request(
        self, group: Group, rollout: Rollout, ci: CondenseInput, reference: Plan | None, candidate: Plan | None
    ) -> Messages:
        try:
            return grade_messages(
                self.rubric,
                ci,
                inputs=rollout_inputs(self.rubric.spec, group, rollout),
                reference_plan=None if reference is None else reference.text,
                candidate_plan=None if candidate is None else candidate.text,
            )
        except TemplateProblem as exc:
            raise JudgeError("template_error", str(exc)) from exc

    def _validate(self, reply: Reply) -> dict[str, DimensionScore]:
        wanted = "a JSON object with every dimension"
        return check_verdict(reply, wanted, lambda c: parse_verdict(self.rubric.spec, c, self._verdict_model))

    async def verdict(self, messages: Messages, usage: Usage, seed: int | None = None) -> Verdict:
        """The verdict the grading request `messages` gets (cached)."""
        return await self.judgement(
            "grade",
            messages,
            lambda r: verdict_of_reply(self.rubric.spec, r, self._validate(r)),  # logprob scores too
            lambda value: verdict_from_cache(self.rubric.spec, value, self._verdict_model),
            usage,
            self.response_format,
            seed,
        )

    # --- one rollout, one group -----------------------------------------------------------------

    @staticmethod
    def seed(index: int) -> int | None:
        """Sample `index`'s seed: sample 0 is the K = 1 request (no seed), so it reuses that cache entry."""
        return None if index == 0 else index

    async def _judge(
        self,
        group: Group,
        rollout: Rollout,
        ci: CondenseInput,
        reference: asyncio.Task[Plan] | None,
        usage: Usage,
        indices: list[int],
    ) -> Graded:
        """Candidate plan(s), reference plan and verdict(s) of samples `indices`: sample i grades (and, with
        resample_condense, condenses) with seed i, sample 0 with none."""
        resample = self.judge.settings.resample_condense
        candidates: list[Plan] = []
        if self.rubric.spec.condenses:
            plan_seeds = [self.seed(i) for i in indices] if resample else [None]
            request = self.condense_request(group, ci)
            candidates = list(await asyncio.gather(*(self.plan(request, usage, s) for s in plan_seeds)))
        ref = await reference_of(reference)
        plans = [candidates[j % len(candidates)] if candidates else None for j in range(len(indices))]
        verdicts = await asyncio.gather(
            *(
                self.verdict(self.grade_request(group, rollout, ci, ref, plan), usage, self.seed(i))
                for plan, i in zip(plans, indices, strict=True)
            )
        )
        return Graded(group, rollout, ci, reference, candidates, ref, list(verdicts))

    async def more(self, graded: Graded, usage: Usage) -> None:
        """One more verdict sample of a graded rollout (`--samples auto`), appended to `graded`."""
        g = graded
        extra = await self._judge(g.group, g.rollout, g.ci, g.reference, usage, [len(g.verdicts)])
        g.candidates += extra.candidates if self.judge.settings.resample_condense else []
        g.verdicts += extra.verdicts

    def finish(self, graded: Graded, result: RolloutResult) -> tuple[RolloutResult, bool]:
        """The rollout's graded fields from its samples (again, after `--samples auto` added some)."""
        result = result.model_copy(update=graded_fields(self.rubric, graded.samples))
        result = with_logprob_fields(result, graded.verdicts)  # written values, spread, scores_from
        result._plan = graded.candidates[0].text if graded.candidates else None
        return result, graded.fake

    async def score_rollout(
        self,
        group: Group,
        rollout: Rollout,
        reference: asyncio.Task[Plan] | None,
        usage: Usage,
        deadline: float | None = None,
    ) -> tuple[RolloutResult, bool, Graded | None]:
        result, fake, ci, graded = await self._score_rollout(group, rollout, reference, usage, deadline)
        result.warnings = tool_warnings(rollout)  # whatever the outcome: read from the steps alone
        if self.keep_plans:
            if ci is None:  # penalised before any judge call: what the checks read, as the judge would see it
                ci = await asyncio.to_thread(self.condense_input, group.query, rollout)
            result._transcript = transcript_of(ci)
        return result, fake, graded

    async def _score_rollout(
        self,
        group: Group,
        rollout: Rollout,
        reference: asyncio.Task[Plan] | None,
        usage: Usage,
        deadline: float | None,
    ) -> tuple[RolloutResult, bool, CondenseInput | None, Graded | None]:
        spec = self.rubric.spec
        assert rollout.id is not None
        fa_ok = has_final_answer(rollout.final_answer)
        # Counting tokens and cleaning outputs of a large rollout is CPU work: off the event loop, so that
        # one huge request never stalls the others (or the health probes).
        big = _size(rollout) > OFF_LOOP_CHARS
        if big:
            penalty = await asyncio.to_thread(check_penalty, spec.penalties, rollout, self.counter)
        else:
            penalty = check_penalty(spec.penalties, rollout, self.counter)
        if penalty is not None:
            result = RolloutResult(
                id=rollout.id,
                status="penalized",
                reward=penalty.reward,
                penalty=penalty.kind,
                penalty_detail=penalty.detail,
                in_group_stats=True,
                has_final_answer=fa_ok,
            )
            return result, False, None, None
        if big:
            ci = await asyncio.to_thread(self.condense_input, group.query, rollout)
        else:
            ci = self.condense_input(group.query, rollout)
        try:
            # The request's deadline (loop time) bounds the judge work; the cache keeps whatever finished.
            async with asyncio.timeout_at(deadline):
                graded = await self._judge(group, rollout, ci, reference, usage, list(range(self.fixed_k)))
        except TimeoutError:
            left = "" if deadline is None else " (the request deadline passed)"
            return error_result(rollout, fa_ok, "judge_timeout", f"no verdict in time{left}"), False, ci, None
        except JudgeError as exc:
            return error_result(rollout, fa_ok, exc.category, exc.message), False, ci, None
        shell = RolloutResult(id=rollout.id, status="ok", reward=None, in_group_stats=True, has_final_answer=fa_ok)
        result, fake = self.finish(graded, shell)
        return result, fake, ci, graded

    async def score_group(self, group: Group, usage: Usage, deadline: float | None = None) -> GroupResult:
        """Score one group; `deadline` (event-loop time) turns judge work still pending into errors."""
        spec = self.rubric.spec
        if spec.grading.mode == "checklist":  # the group's criteria are its dimensions: a rubric of its own
            from reward.scoring.checklist_stage import score_checklist

            return await score_checklist(self, group, usage, deadline)
        with touching() as touch:
            return await self._score_group(group, usage, deadline, touch)

    async def _score_group(self, group: Group, usage: Usage, deadline: float | None, touch: Touch) -> GroupResult:
        spec = self.rubric.spec
        own = Usage()  # this group's share, written with it; folded into the request's when done
        reference = asyncio.ensure_future(self._reference(group, own, touch)) if spec.reference else None
        grading = None
        try:
            if spec.grading.mode == "rollout":
                outcomes = await asyncio.gather(
                    *(self.score_rollout(group, r, reference, own, deadline) for r in group.rollouts)
                )
            else:
                if spec.grading.mode == "group":
                    from reward.scoring.group_stage import grade_group as stage
                else:
                    from reward.scoring.pairwise_stage import grade_pairwise as stage
                outcomes, grading = await stage(self, group, reference, own, deadline)
        finally:
            if reference is not None:
                if not reference.done():
                    reference.cancel()
                elif not reference.cancelled():
                    reference.exception()  # retrieved: an unused failed reference is not an orphan error
            usage.add(own)
        results = [r for r, _, _ in outcomes]
        fake = any(f for _, f, _ in outcomes)
        sampling = None
        if self.basis.samples == "auto":
            from reward.scoring.adaptive import adapt  # the loop of `--samples auto`

            extra = Usage()  # the extra rounds' share: the first one is folded into `usage` already
            results, more_fake, sampling = await adapt(self, results, [g for _, _, g in outcomes], extra, deadline)
            fake = fake or more_fake
            own.add(extra)
            usage.add(extra)
        for r, rollout in zip(results, group.rollouts, strict=True):
            r.meta = rollout.meta
        for r, rollout in zip(results, group.rollouts, strict=True):
            r.num_tokens, r.num_tokens_exact = rollout.num_tokens, rollout.num_tokens is not None
        settings = self.judge.settings
        return GroupResult(
            group_id=group.group_id,
            judge=JudgeInfo(
                condense_model=settings.condense.model if spec.condenses else "",
                grade_model=settings.grade.model,
                fake=fake or touch.fake,  # the fake judge touched it, even if only rollouts ending as errors
            ),
            n_errors=sum(r.status == "error" for r in results),
            rollouts=results,
            **group_fields(self.rubric, results, self.basis.samples),
            **(self._plans(reference, results) if self.keep_plans else {}),
            sampling=sampling,
            grading=grading,
            basis=self.basis,
            usage=GroupUsage(
                judge_calls=sum(own.calls.values()),
                prompt_tokens=own.prompt_tokens,
                completion_tokens=own.completion_tokens,
                cached_tokens=own.cached_tokens,
                cost=own.cost if own.cost_known else None,
            ),
        )

    @staticmethod
    def _plans(reference: asyncio.Task[Plan] | None, results: list[RolloutResult]) -> dict[str, Any]:
        ok = reference is not None and reference.done() and not reference.cancelled() and not reference.exception()
        return {
            "reference_plan": reference.result().text if ok and reference is not None else None,
            "plans": {r.id: r._plan for r in results if r._plan is not None},
            "transcripts": {r.id: r._transcript for r in results if r._transcript is not None},
        }
