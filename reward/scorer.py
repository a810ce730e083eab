"""Score one prompt group: penalties, condensing (cached), grading (cached), the formula, group stats.

The judge and the cache are injected; everything else is a call into the pure core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reward.cache import Store, cache_key, text_digest
from reward.groups import group_stats
from reward.judge import InvalidReply, JudgeClient, JudgeError, Reply, Usage
from reward.llm import count_tokens
from reward.noise import combine_samples, group_noise
from reward.penalties import check_penalty, has_final_answer
from reward.plan_check import check_plan, plan_sections
from reward.prompts import condense_messages, grade_messages
from reward.results import ErrorInfo, GroupResult, JudgeInfo, RolloutResult
from reward.rubric import Rubric
from reward.trajectory import CondenseInput, Group, IdReference, PlanReference, Rollout, Trajectory, condense_input
from reward.verdict import InvalidVerdict, parse_verdict, response_format, verdict_model

OFF_LOOP_CHARS = 256 * 1024


def _seeded(seed: int | None) -> dict[str, int]:
    # Sample i of K > 1 is its own request (seed i) and its own cache entry; one sample keeps the old keys.
    return {} if seed is None else {"seed": seed}


def _size(t: Trajectory) -> int:
    return len(t.final_answer) + sum(len(s.command) + len(s.output) for s in t.steps)


class Scorer:
    def __init__(
        self,
        rubric: Rubric,
        judge: JudgeClient,
        store: Store,
        counter: Callable[[str], int] = count_tokens,
    ) -> None:
        self.rubric = rubric
        self.judge = judge
        self.store = store
        self.counter = counter
        self.keep_plans = False  # write the plans the grader saw into the output (`score --keep-plans`)
        spec = rubric.spec
        self._response_format = response_format(spec)
        self._verdict_model = verdict_model(spec)
        self._sections = plan_sections(rubric.condense_template)
        c, g = judge.settings.condense, judge.settings.grade
        # Everything that can change a plan, and nothing else: a rubric edit that touches only the
        # dimensions re-grades but does not re-condense.
        # The judge's identity (endpoint or router, and whether it is the fake) is in every key: a plan or
        # verdict from one judge is never served as another's, a fake one never as a real one.
        self._plan_fingerprint = {
            "judge": judge.identity,
            "template": text_digest(rubric.condense_template),
            "model": c.model,
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "head": spec.truncation.head,
            "tail": spec.truncation.tail,
        }
        self._verdict_fingerprint = {
            "judge": judge.identity,
            "rubric_version": rubric.version,
            "model": g.model,
            "temperature": g.temperature,
            "max_tokens": g.max_tokens,
        }

    # --- condensing -----------------------------------------------------------------------------

    def condense_input(self, query: str, trajectory: Trajectory) -> CondenseInput:
        if trajectory.is_native:
            raise ValueError("native rollouts must be materialized first (reward.prepare.prepare_group)")
        t = self.rubric.spec.truncation
        return condense_input(query, trajectory, t.head, t.tail)

    async def plan(self, ci: CondenseInput, usage: Usage, seed: int | None = None) -> dict[str, Any]:
        """The Execution Plan of a cleaned trajectory: {"plan": str, "fake": bool}."""
        key = cache_key("plan", {"input": ci.canonical(), **self._plan_fingerprint, **_seeded(seed)})

        async def compute() -> dict[str, Any]:
            messages = condense_messages(self.rubric, ci)
            plan, fake = await self.judge.ask(
                "condense", messages, lambda r: check_plan(r, self._sections), usage, seed=seed
            )
            return {"plan": plan, "fake": fake}

        return await self.store.get_or_compute(key, compute, usage.cache)

    async def reference_plan(self, group: Group, usage: Usage) -> dict[str, Any]:
        ref = group.reference
        if isinstance(ref, PlanReference):
            return {"plan": ref.plan, "fake": ref.fake}
        if isinstance(ref, IdReference):
            raise ValueError("reference ids must be resolved first (reward.prepare.prepare_group)")
        if _size(ref) > OFF_LOOP_CHARS:
            return await self.plan(await asyncio.to_thread(self.condense_input, group.query, ref), usage)
        return await self.plan(self.condense_input(group.query, ref), usage)

    # --- grading --------------------------------------------------------------------------------

    async def verdict(
        self,
        query: str,
        reference_plan: str,
        candidate_plan: str,
        final_answer: str,
        usage: Usage,
        seed: int | None = None,
    ) -> dict[str, Any]:
        spec = self.rubric.spec
        key = cache_key(
            "verdict",
            {
                "query": query,
                "reference_plan": reference_plan,
                "candidate_plan": candidate_plan,
                "final_answer": final_answer,
                **self._verdict_fingerprint,
                **_seeded(seed),
            },
        )

        def validate(reply: Reply) -> dict[str, list[Any]]:
            if not reply.content.strip():
                raise InvalidReply("judge_empty_reply", "the reply was empty; a JSON object with every dimension")
            if reply.finish_reason == "length":
                raise InvalidReply("judge_parse_error", "the verdict was cut off at the token limit; reply shorter")
            try:
                scores = parse_verdict(spec, reply.content, self._verdict_model)
            except InvalidVerdict as exc:
                raise InvalidReply("judge_parse_error", str(exc)) from exc
            return {name: [s.score, s.reason] for name, s in scores.items()}

        async def compute() -> dict[str, Any]:
            messages = grade_messages(
                self.rubric,
                query=query,
                reference_plan=reference_plan,
                candidate_plan=candidate_plan,
                final_answer=final_answer,
            )
            scores, fake = await self.judge.ask("grade", messages, validate, usage, self._response_format, seed=seed)
            return {"scores": scores, "fake": fake}

        return await self.store.get_or_compute(key, compute, usage.cache)

    # --- one rollout, one group -----------------------------------------------------------------

    async def _judge(
        self, ci: CondenseInput, reference: asyncio.Task[dict[str, Any]], usage: Usage
    ) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
        """Candidate plan(s), reference plan and verdict(s): K samples grade K times (seeds 0..K-1) and,
        with resample_condense, condense K times too; one sample sends no seed."""
        k = self.judge.settings.samples
        seeds: list[int | None] = [None] if k <= 1 else list(range(k))
        plan_seeds = seeds if self.judge.settings.resample_condense else [None]
        candidates = await asyncio.gather(*(self.plan(ci, usage, s) for s in plan_seeds))
        try:
            ref = await asyncio.shield(reference)
        except JudgeError as exc:
            raise JudgeError(exc.category, f"reference plan: {exc.message}") from exc
        verdicts = await asyncio.gather(
            *(
                self.verdict(ci.query, ref["plan"], candidates[i % len(candidates)]["plan"], ci.final_answer, usage, s)
                for i, s in enumerate(seeds)
            )
        )
        return list(candidates), ref, list(verdicts)

    async def score_rollout(
        self,
        group: Group,
        rollout: Rollout,
        reference: asyncio.Task[dict[str, Any]],
        usage: Usage,
        deadline: float | None = None,
    ) -> tuple[RolloutResult, bool]:
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
            return result, False
        if big:
            ci = await asyncio.to_thread(self.condense_input, group.query, rollout)
        else:
            ci = self.condense_input(group.query, rollout)
        try:
            # The request's deadline (loop time) bounds the judge work; the cache keeps whatever finished.
            async with asyncio.timeout_at(deadline):
                candidates, ref, verdicts = await self._judge(ci, reference, usage)
        except TimeoutError:
            left = "" if deadline is None else " (the request deadline passed)"
            result = RolloutResult(
                id=rollout.id,
                status="error",
                reward=None,
                error=ErrorInfo(category="judge_timeout", message=f"no verdict in time{left}"),
                in_group_stats=False,
                has_final_answer=fa_ok,
            )
            return result, False
        except JudgeError as exc:
            result = RolloutResult(
                id=rollout.id,
                status="error",
                reward=None,
                error=ErrorInfo(category=exc.category, message=exc.message),
                in_group_stats=False,
                has_final_answer=fa_ok,
            )
            return result, False
        samples = [{name: (s, r) for name, (s, r) in v["scores"].items()} for v in verdicts]
        scores, reward, means, reward_std = combine_samples(spec, samples)
        result = RolloutResult(
            id=rollout.id,
            status="ok",
            reward=reward,
            s_pos=means["s_pos"],
            s_pit=means["s_pit"],
            s_fa=means["s_fa"],
            dimensions=scores,
            reward_std=reward_std,
            in_group_stats=True,
            has_final_answer=fa_ok,
        )
        result._plan = candidates[0]["plan"]
        return result, any(x["fake"] for x in [*candidates, ref, *verdicts])

    async def score_group(self, group: Group, usage: Usage, deadline: float | None = None) -> GroupResult:
        """Score one group; `deadline` (event-loop time) turns judge work still pending into errors."""
        spec = self.rubric.spec
        reference = asyncio.ensure_future(self.reference_plan(group, usage))
        try:
            outcomes = await asyncio.gather(
                *(self.score_rollout(group, r, reference, usage, deadline) for r in group.rollouts)
            )
        finally:
            if not reference.done():
                reference.cancel()
            elif not reference.cancelled():
                reference.exception()  # retrieved: an unused failed reference is not an orphan error
        results = [r for r, _ in outcomes]
        for r, rollout in zip(results, group.rollouts, strict=True):
            r.meta = rollout.meta
        stats = group_stats([r.reward for r in results], spec.group_filter.min_std, spec.group_filter.advantage_eps)
        for r, adv, rollout in zip(results, stats.advantages, group.rollouts, strict=True):
            r.advantage = adv
            r.num_tokens, r.num_tokens_exact = rollout.num_tokens, rollout.num_tokens is not None
        return GroupResult(
            group_id=group.group_id,
            rubric=self.rubric.name,
            rubric_version=self.rubric.version,
            judge=JudgeInfo(
                condense_model=self.judge.settings.condense.model,
                grade_model=self.judge.settings.grade.model,
                fake=any(fake for _, fake in outcomes),
            ),
            mean=stats.mean,
            std=stats.std,
            n_scored=stats.n_scored,
            n_errors=sum(r.status == "error" for r in results),
            filtered=stats.filtered,
            filter_reason=stats.filter_reason,
            rollouts=results,
            noise=group_noise(results, self.judge.settings.samples),
            **(self._plans(reference, results) if self.keep_plans else {}),
        )

    @staticmethod
    def _plans(reference: asyncio.Task[dict[str, Any]], results: list[RolloutResult]) -> dict[str, Any]:
        ok = reference.done() and not reference.cancelled() and reference.exception() is None
        return {
            "reference_plan": reference.result()["plan"] if ok else None,
            "plans": {r.id: r._plan for r in results if r._plan is not None},
        }
