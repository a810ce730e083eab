"""The two scorers of a migration, on one cache: the new judge grades (`grader`), the run's condense judge
writes the plans the file did not keep (`condenser`). Built from the same flags and REWARD_* variables as
`reward score`, with the grading model replaced by the new one and the condensing model kept as the run's.

With `fake`, both are the built-in fake judge; `distortion` (a gamma) plants a monotone distortion in the
grading one (`reward.judge.fake.distorted`), to test the migration itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace

from reward.errors import ConfigError, UsageError
from reward.judge.base import Judge, JudgeSettings
from reward.rubric.load import Rubric
from reward.scoring.scorer import Scorer


def known_model(model: str, api_base: str | None) -> None:
    """An unknown model string is a usage error here, not N judge errors after the estimate."""
    from reward.judge.llm import litellm

    try:
        litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception as exc:
        raise UsageError(
            f"--to {model}: not a model litellm can call ({str(exc).splitlines()[0][:200]}); "
            "give a litellm model string such as openai/gpt-4.1-2025-04-14 or anthropic/claude-sonnet-4-5-20250929"
        ) from None


@contextlib.contextmanager
def open_judges(
    rubric: Rubric,
    *,
    to_model: str | None,
    condense_model: str,
    samples: int,
    cache: str | None,
    api_base: str | None,
    api_key: str | None,
    concurrency: int | None,
    fake: bool,
    distortion: float | None,
    notify: Callable[[str, str], None],
) -> Iterator[tuple[Scorer, Scorer]]:
    from reward.errors import UsageError

    mode = rubric.spec.grading.mode
    if mode != "rollout":  # its verdicts are relative to the other rollouts of a call: no per-rollout re-grade
        raise UsageError(
            f"rubric {rubric.name} grades in mode {mode}: migrate re-grades one rollout at a time "
            "(rubrics of grading mode rollout only)"
        )
    from reward.cache import open_store
    from reward.judge.litellm_judge import LiteLLMJudge
    from reward.scoring.build import (
        FAKE_JUDGE,
        JUDGE_PINNING,
        cache_dir,
        check_pinning,
        judge_settings,
        with_fake_judge,
    )

    def settings(model: str | None) -> JudgeSettings:
        return judge_settings(
            rubric, model=model, api_base=api_base, api_key=api_key, concurrency=concurrency, samples=samples
        )

    if not fake:
        if to_model is None:
            raise UsageError("--to MODEL: the new judge's litellm model string is needed (or --fake-judge)")
        known_model(to_model, api_base)
    server = store = None
    try:
        if fake:
            from reward.judge.fake.http import FakeJudgeServer

            notify(FAKE_JUDGE, "Using the built-in FAKE judge: scores are NOT real judgements.")
            server = FakeJudgeServer().start()
            old = new = with_fake_judge(settings(None), server.api_base)
        else:
            new, old = settings(to_model), settings(condense_model)
            problems = [p for s in (new, old) for p in _credentials(s)]
            if problems:
                raise ConfigError("; ".join(dict.fromkeys(problems)))
            for warning in check_pinning(new, None):
                notify(JUDGE_PINNING, f"warning: {warning}")
        store = open_store(cache_dir(cache))
        grading: Judge = LiteLLMJudge(new)
        if distortion is not None:
            from reward.judge.fake.distorted import DistortedJudge, Distortion

            grading = DistortedJudge(grading, Distortion.on(rubric.spec, distortion), rubric.spec)
        yield Scorer(rubric, grading, store), Scorer(rubric, LiteLLMJudge(old), store)
    finally:
        if store is not None:
            store.close()
        if server is not None:
            server.stop()


def _credentials(settings: JudgeSettings) -> list[str]:
    from reward.judge.credentials import missing_credentials

    # One role per scorer matters: the grader never condenses, the condenser never grades.
    return missing_credentials(replace(settings, condense=settings.grade))
