"""Building a scorer: judge and cache settings from flags, the environment (REWARD_*) and the rubric's
defaults, then the judge (litellm, or the built-in fake one when none is configured) and the cache.

Precedence: flag, then environment, then rubric. REWARD_JUDGE_MODEL overrides the rubric's default
model for both condensing and grading. litellm is imported only when a judge is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from reward.cache import open_store
from reward.errors import ConfigError
from reward.judge.base import CallSettings, JudgeSettings
from reward.rubric.finish import sampling
from reward.rubric.load import Rubric, load_rubric
from reward.rubric.score_maps import score_map_problem
from reward.settings import DEFAULT_CONCURRENCY, setting

if TYPE_CHECKING:
    from reward.scoring.scorer import Scorer

FAKE_MODEL = "openai/reward-fake-judge"


# Alternatives asked per score token with logprob scores: OpenAI's most (20); far more mass than a 0-10 scale
# needs, so the renormalisation over valid values drops only what no valid value could have had.
TOP_LOGPROBS = 20


def logprob_alternatives(rubric: Rubric) -> int:
    """`top_logprobs` for the grading calls: TOP_LOGPROBS with judge.grade.logprobs, else 0. Refused where it
    would be ignored (a grading stage of many rollouts, a continuous scale): never silently."""
    spec = rubric.spec
    if not spec.judge.grade.logprobs:
        return 0
    if spec.grading.mode != "rollout":
        raise ConfigError(
            f"rubric {rubric.name}: judge.grade.logprobs works with grading.mode rollout only, not {spec.grading.mode}"
        )
    if spec.scale.kind != "integer":
        raise ConfigError(f"rubric {rubric.name}: judge.grade.logprobs needs an integer scale (its values are tokens)")
    return TOP_LOGPROBS


def judge_settings(
    rubric: Rubric,
    *,
    model: str | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    concurrency: int | None = None,
    timeout_s: float | None = None,
    samples: int | Literal["auto"] | None = None,
    resample_condense: bool | None = None,
    max_samples: int | None = None,
) -> JudgeSettings:
    """Judge settings for a rubric: flags, then REWARD_* variables, then the rubric's own defaults."""
    judge = rubric.spec.judge
    condense = judge.condense or judge.grade
    model = model or setting("judge_model")
    if concurrency is None:
        concurrency = setting("judge_concurrency")
    if timeout_s is None:
        timeout_s = setting("judge_timeout")
    if concurrency is not None and concurrency <= 0:
        raise ConfigError("--concurrency must be positive")

    try:
        plan = sampling(rubric, samples, resample_condense, max_samples)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    def call(role_default: str, temperature: float, max_tokens: int, top_logprobs: int = 0) -> CallSettings:
        return CallSettings(model or role_default, temperature, max_tokens, top_logprobs)

    top_logprobs = logprob_alternatives(rubric)

    return JudgeSettings(
        # A rubric without a condensing stage never calls the condense role; it gets the grade settings.
        condense=call(condense.model, condense.temperature, condense.max_tokens),
        grade=call(judge.grade.model, judge.grade.temperature, judge.grade.max_tokens, top_logprobs),
        api_base=api_base or setting("judge_api_base"),
        api_key=api_key or setting("judge_api_key"),
        timeout_s=float(timeout_s or judge.timeout_s),
        num_retries=judge.num_retries,
        max_reasks=judge.max_reasks,
        concurrency=int(concurrency or DEFAULT_CONCURRENCY),
        samples=plan.fixed,
        resample_condense=plan.resample_condense,
        max_samples=plan.max_samples if plan.auto else None,
        # rubric judge.service_tier (reward.rubric.service_tier.ServiceTier); checked when the judge is built
        service_tier=judge.service_tier,
    )


def router_config() -> dict | None:
    """REWARD_JUDGE_ROUTER_CONFIG: a litellm Router YAML for several judge deployments (see README)."""
    path = setting("judge_router_config")
    if path is None:
        return None
    from reward.judge.limits import role_limits
    from reward.judge.router_config import load_router_config

    config = load_router_config(path)
    role_limits(config)  # a malformed `limits:` block is a start-up error
    return config


def judge_configured(settings: JudgeSettings, explicit_model: bool) -> bool:
    """Is a real judge reachable in principle? An explicit model or API base says so; otherwise the
    rubric's default models need their provider's key in the environment."""
    if explicit_model or settings.api_base or settings.api_key or setting("judge_router_config"):
        return True
    from reward.judge.llm import litellm

    return all(
        litellm.validate_environment(model=m).get("keys_in_environment", False)
        for m in {settings.condense.model, settings.grade.model}
    )


def check_credentials(settings: JudgeSettings, router: dict | None) -> None:
    """Refuse to start when a judge model's provider key is not set: one line naming the variable."""
    from reward.judge.credentials import missing_credentials

    problems = missing_credentials(settings, router)
    if problems:
        raise ConfigError("; ".join(problems))


JUDGE_PINNING = "judge_pinning"


def judge_models(settings: JudgeSettings, router: dict | None) -> list[str]:
    if router is not None:
        params = [m.get("litellm_params") or {} for m in router.get("model_list") or [] if isinstance(m, dict)]
        return [str(p["model"]) for p in params if p.get("model")]
    return [settings.condense.model, settings.grade.model]


def check_pinning(settings: JudgeSettings, router: dict | None) -> list[str]:
    """Warnings about the judge's identity (floating alias, retirement soon); a retired model is refused
    unless REWARD_ALLOW_RETIRED_JUDGE is set."""
    from reward.judge.pinning import pinning_problems

    warnings, refusals = pinning_problems(judge_models(settings, router))
    if refusals and not setting("allow_retired_judge"):
        raise ConfigError("; ".join(refusals))
    return warnings + refusals


def with_fake_judge(settings: JudgeSettings, api_base: str) -> JudgeSettings:
    # A model name of its own, so fake plans and verdicts never share cache keys with a real judge's.
    return replace(
        settings,
        condense=replace(settings.condense, model=FAKE_MODEL),
        grade=replace(settings.grade, model=FAKE_MODEL),
        api_base=api_base,
        api_key="fake-judge-key",
        fake=True,
    )


def cache_dir(flag: str | None) -> Path | None:
    """The plan/verdict cache directory; 'none' disables the disk cache."""
    value = flag or setting("cache_dir")
    if value is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "reward"
    if value.lower() == "none":
        return None
    return Path(value)


T = TypeVar("T")


def run_scoring(scorer: Scorer, work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(work)`, closing the judge's connections before the loop ends (`Scorer.aclose`)."""

    async def main() -> T:
        try:
            return await work
        finally:
            await scorer.aclose()

    return asyncio.run(main())


NO_JUDGE = "no_judge"
FAKE_JUDGE = "fake_judge"


@contextlib.contextmanager
def open_scorer(
    rubric_name: str,
    *,
    cache: str | None = None,
    model: str | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    concurrency: int | None = None,
    fake: bool = False,
    samples: int | Literal["auto"] | None = None,
    resample_condense: bool | None = None,
    max_samples: int | None = None,
    notify: Callable[[str, str], None] = lambda kind, message: None,
) -> Iterator[Scorer]:
    """A scorer for offline work (`reward score`, `plans`, `prompt`), closed on exit. With no judge
    configured (or `fake`), the built-in fake judge answers and `notify(kind, message)` says so, loudly:
    kind NO_JUDGE, then FAKE_JUDGE."""
    from reward.judge.fake.http import FakeJudgeServer
    from reward.judge.litellm_judge import LiteLLMJudge
    from reward.scoring.scorer import Scorer

    rubric = load_rubric(rubric_name)
    settings = judge_settings(
        rubric,
        model=model,
        api_base=api_base,
        api_key=api_key,
        concurrency=concurrency,
        samples=samples,
        resample_condense=resample_condense,
        max_samples=max_samples,
    )
    fake_judge = None
    explicit = bool(model or setting("judge_model"))
    if fake or not judge_configured(settings, explicit):
        if not fake:
            notify(
                NO_JUDGE,
                f"No judge is configured (set REWARD_JUDGE_MODEL, or the key of {settings.grade.model}'s provider).",
            )
        notify(FAKE_JUDGE, "Using the built-in FAKE judge: scores are NOT real judgements.")
        fake_judge = FakeJudgeServer().start()
        settings = with_fake_judge(settings, fake_judge.api_base)
    router = None if fake_judge is not None else router_config()
    if fake_judge is None:
        check_credentials(settings, router)
        for warning in check_pinning(settings, router):
            notify(JUDGE_PINNING, f"warning: {warning}")
    # Score maps fitted for another grading judge would move this judge's scores by that judge's map: a real
    # judge is refused, the fake one (which measures nothing) only warned about.
    problem = score_map_problem(rubric.spec.score_maps, settings.grade.model)
    if problem and fake_judge is None:
        raise ConfigError(problem)
    if problem:
        notify(JUDGE_PINNING, f"warning: {problem}")
    store = open_store(cache_dir(cache))
    try:
        yield Scorer(rubric, LiteLLMJudge(settings, router), store)
    finally:
        store.close()
        if fake_judge is not None:
            fake_judge.stop()
