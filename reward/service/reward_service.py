"""The scoring service behind `reward serve`: rubrics, scorers and reference plans, without HTTP.

Stateless apart from the cache: any number of workers or replicas can run on one cache directory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from reward.cache.redis_store import open_store
from reward.core.results import GroupResult
from reward.core.summary import summarize
from reward.core.trajectory import Group, Strict
from reward.errors import ConfigError, RewardError
from reward.judge.base import JudgeSettings, Usage
from reward.judge.budget import budget_status
from reward.judge.litellm_judge import LiteLLMJudge
from reward.native.prepare import GroupInputError, load_plans, prepare_group
from reward.rubric.load import Rubric, RubricError, load_rubric, rubric_dir
from reward.rubric.score_maps import score_map_problem
from reward.scoring.build import FAKE_MODEL, cache_dir, judge_settings, router_config
from reward.scoring.scorer import Scorer
from reward.service.canary_mix import CAP, CanaryMixer
from reward.service.judge_health import JudgeHealth
from reward.settings import DEFAULT_RUBRIC, DEFAULTS, Place, Settings, parse_tools

# The variables ServiceSettings.from_env reads (the judge's and the cache's are read where they are used).
SERVICE_FIELDS = (
    "judge_error_fallback",
    "plans",
    "tokens",
    "exit_code",
    "request_deadline",
    "max_rollouts",
    "max_pending_rollouts",
    "max_body_bytes",
    "rubric",
    "terminal_tool",
    "canary_rate",
)


class ScoreRequest(Strict):
    groups: list[Group] = Field(min_length=1, description="Prompt groups, as lines of the offline input.")
    rubric: str | None = Field(default=None, description="Rubric name; the server's default when omitted.")
    terminal_tool: str | list[str] | None = Field(
        default=None,
        description="Terminal tool name(s) in messages/text rollouts; only these count. Server default "
        "(REWARD_TERMINAL_TOOL, else the surveyed names) if omitted.",
    )
    exit_code: list[Place] | None = Field(
        default=None,
        description="Where the terminal tool writes exit codes (REWARD_EXIT_CODE); server default if omitted.",
    )

    @field_validator("terminal_tool")
    @classmethod
    def _tools(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None:
            parse_tools(value)  # a ValueError here is a 422 naming terminal_tool
        return value


class UsageOut(Strict):
    judge_calls: int
    condense_calls: int
    grade_calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # of prompt_tokens, served from the provider's prompt cache
    cost: float | None  # null when a model's price is unknown
    cache_hits: int
    coalesced: int


class Metrics(Strict):
    """Ready to log once per training step."""

    groups: int
    rollouts: int
    reward_mean: float | None
    reward_std: float | None
    final_answer_rate: float | None
    penalty_rate: dict[str, float]
    error_rate: dict[str, float]
    filtered_group_fraction: float | None
    fake_judge: bool
    dimension_mean: dict[str, float] = Field(default_factory=dict)  # per dimension, over graded rollouts
    judge_reward_std: float | None = None  # judge noise (--samples / rubric judge.samples > 1)
    group_snr: float | None = None
    # Reliability of the reward (K > 1): mean over groups of one sample's, per dimension, and the K that brings
    # it to 0.8 (reward.rubric.reliability). Penalised rollouts carry no judge noise and are left out.
    reliability: float | None = None
    dimension_reliability: dict[str, float] = Field(default_factory=dict)
    k_needed: int | None = None
    cached_tokens: int = 0  # prompt tokens the judge provider served from its prompt cache
    # Fraction of rollouts whose tool calls named no terminal tool: nonzero means check terminal_tool.
    unmatched_tool_rate: float = 0.0


class ScoreResponse(Strict):
    rubric: str
    rubric_version: str
    groups: list[GroupResult]
    usage: UsageOut
    metrics: Metrics


def usage_out(usage: Usage) -> UsageOut:
    return UsageOut(
        judge_calls=sum(usage.calls.values()),
        condense_calls=usage.calls["condense"],
        grade_calls=usage.calls["grade"],
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens if usage is not None else 0,
        cost=usage.cost if usage.cost_known else None,
        cache_hits=usage.cache.hits,
        coalesced=usage.cache.coalesced,
    )


def metrics_of(groups: list[GroupResult], usage: Usage | None = None) -> Metrics:
    s = summarize(groups)
    n = s.rollouts or 1
    return Metrics(
        groups=s.groups,
        rollouts=s.rollouts,
        reward_mean=s.reward_mean,
        reward_std=s.reward_std,
        final_answer_rate=s.final_answer_rate,
        penalty_rate={k: v / n for k, v in sorted(s.penalties.items())},
        error_rate={k: v / n for k, v in sorted(s.errors.items())},
        filtered_group_fraction=s.filtered_groups / s.groups if s.groups else None,
        fake_judge=s.fake_groups > 0,
        dimension_mean=s.dimension_means,
        judge_reward_std=s.judge_reward_std,
        unmatched_tool_rate=s.unmatched_tool_rollouts / n,
        group_snr=s.group_snr,
        reliability=s.reliability,
        dimension_reliability=s.dimension_reliability,
        k_needed=s.k_needed,
        cached_tokens=usage.cached_tokens if usage is not None else 0,
    )


@dataclass
class ServiceSettings:
    """What a worker needs beyond the judge and the cache; defaults are the REWARD_* variables' (reward.settings)."""

    rubric_dir: Path
    default_rubric: str = DEFAULT_RUBRIC
    cache_dir: Path | None = None
    plans: list[Path] = field(default_factory=list)
    terminal_tool: tuple[str, ...] = DEFAULTS.terminal_tool
    exit_code: tuple[str, ...] = DEFAULTS.exit_code  # REWARD_EXIT_CODE: see reward.native.exitcode
    judge_error_fallback: float | None = None  # opt-in, flagged: OpenRLHF / slime HTTP adapters only
    # Below slime's 120 s client timeout (OpenRLHF's is 180 s): an answer, with errors, before they give up.
    request_deadline_s: float = DEFAULTS.request_deadline
    max_rollouts: int = DEFAULTS.max_rollouts  # per request
    max_pending_rollouts: int = DEFAULTS.max_pending_rollouts  # per worker, all requests together: then 503
    max_body_bytes: int = DEFAULTS.max_body_bytes
    tokens: tuple[str, ...] = ()  # bearer tokens; empty: no auth
    canary_rate: float = 0.0  # REWARD_CANARY_RATE: fraction of requests followed by a canary audit
    canary_max_in_flight: int = CAP  # canary audits in flight per worker; more are skipped (and counted)

    @classmethod
    def from_env(cls) -> ServiceSettings:
        env = Settings.from_env(only=SERVICE_FIELDS)
        return cls(
            request_deadline_s=env.request_deadline,
            max_rollouts=env.max_rollouts,
            max_pending_rollouts=env.max_pending_rollouts,
            max_body_bytes=env.max_body_bytes,
            tokens=env.tokens,
            rubric_dir=rubric_dir(),
            default_rubric=env.rubric,
            cache_dir=cache_dir(None),
            plans=list(env.plans),
            terminal_tool=env.terminal_tool,
            exit_code=env.exit_code,
            judge_error_fallback=env.judge_error_fallback,
            canary_rate=env.canary_rate,
        )


class Overloaded(RewardError):
    """More rollouts pending in this worker than it accepts: answered 503 with Retry-After."""


class TooLarge(RewardError):
    """A request over a size limit: answered 413."""


class RewardService:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.pending_rollouts = 0
        self.judge_health = JudgeHealth()
        self.canaries = CanaryMixer(
            settings.canary_rate,
            settings.canary_max_in_flight,
            settings.request_deadline_s,
            pending=lambda: self.pending_rollouts,  # canary calls take only the judge slots these leave free
        )
        paths = sorted([*settings.rubric_dir.glob("*.yaml"), *settings.rubric_dir.glob("*.yml")])
        if not paths:
            raise RubricError(f"no rubric (*.yaml) in {settings.rubric_dir}")
        self.rubrics: dict[str, Rubric] = {}
        for path in paths:
            r = load_rubric(path)
            if r.name in self.rubrics:
                raise RubricError(f"{path}: rubric name {r.name!r} is also used by {self.rubrics[r.name].path}")
            self.rubrics[r.name] = r
        if settings.default_rubric not in self.rubrics:
            raise RubricError(f"default rubric {settings.default_rubric!r} not found in {settings.rubric_dir}")
        self.plans = load_plans(settings.plans)
        self.store = open_store(settings.cache_dir)
        # One judge client per distinct judge setting, shared by every rubric that uses it, so the limit on
        # calls in flight holds for the whole worker.
        clients: dict[JudgeSettings, LiteLLMJudge] = {}
        self.scorers: dict[str, Scorer] = {}
        router = router_config()
        for name, r in self.rubrics.items():
            js = judge_settings(r)
            # Another grading judge's score maps would move every reward of this rubric (every way of serving
            # builds this service: `reward serve`, its workers, Ray Serve); the fake judge measures nothing.
            mapped = score_map_problem(r.spec.score_maps, js.grade.model)
            if mapped and js.grade.model != FAKE_MODEL:
                raise ConfigError(f"rubric {name}: {mapped}")
            if js not in clients:
                clients[js] = LiteLLMJudge(js, router)
            client = clients[js]
            self.scorers[name] = Scorer(r, client, self.store)

    @property
    def default(self) -> Scorer:
        return self.scorers[self.settings.default_rubric]

    def scorer(self, rubric: str | None) -> Scorer:
        name = rubric or self.settings.default_rubric
        if name not in self.scorers:
            raise GroupInputError([f"rubric: unknown rubric {name!r} (loaded: {', '.join(sorted(self.scorers))})"])
        return self.scorers[name]

    def prepare(
        self,
        groups: list[Group],
        terminal_tool: str | list[str] | None = None,
        exit_code: list[Place] | None = None,
        scorer: Scorer | None = None,
    ) -> list[Group]:
        """Materialize native rollouts and resolve reference ids; all problems at once, with paths."""
        tool = parse_tools(terminal_tool) if terminal_tool is not None else self.settings.terminal_tool
        conv = tuple(exit_code) if exit_code else self.settings.exit_code
        spec = (scorer or self.default).rubric.spec
        problems: list[str] = []
        prepared: list[Group] = []
        seen: set[str] = set()
        for i, g in enumerate(groups):
            if g.group_id in seen:
                problems.append(f"groups[{i}].group_id: duplicate {g.group_id!r}")
            seen.add(g.group_id)
            try:
                prepared.append(prepare_group(g, self.plans, tool, conv, spec))
            except GroupInputError as exc:
                problems.extend(f"groups[{i}].{p}" for p in exc.problems)
            except Exception as exc:  # input no reader foresaw: still this group's problem, a 422
                problems.append(f"groups[{i}]: cannot be read: {type(exc).__name__}: {exc}")
        if problems:
            raise GroupInputError(problems)
        return prepared

    async def score(self, request: ScoreRequest) -> ScoreResponse:
        n = sum(len(g.rollouts) for g in request.groups)
        if n > self.settings.max_rollouts:
            raise TooLarge(
                f"{n} rollouts in one request; the limit is {self.settings.max_rollouts} (REWARD_MAX_ROLLOUTS)"
            )
        scorer = self.scorer(request.rubric)
        # Parsing native rollouts is CPU work proportional to the body: off the event loop.
        groups = await asyncio.to_thread(self.prepare, request.groups, request.terminal_tool, request.exit_code, scorer)
        if self.pending_rollouts + n > self.settings.max_pending_rollouts:
            raise Overloaded(f"{self.pending_rollouts} rollouts already pending in this worker")
        self.pending_rollouts += n
        try:
            usage = Usage()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.settings.request_deadline_s
            results = await asyncio.gather(*(scorer.score_group(g, usage, deadline) for g in groups))
        finally:
            self.pending_rollouts -= n
        self.judge_health.observe(results)
        self.canaries.after(scorer, groups, results)  # in the background, after this answer: never in it
        return ScoreResponse(
            rubric=scorer.rubric.name,
            rubric_version=scorer.rubric.version,
            groups=list(results),
            usage=usage_out(usage),
            metrics=metrics_of(list(results), usage),
        )

    def ready(self) -> dict[str, Any]:
        """Rubrics loaded, the cache writable (while writes fail, scoring goes on without the cache but the
        worker reports not ready) and the judge callable as far as the last requests showed (judge_health)."""
        ok, detail = self.store.probe()  # the disk or the Redis store, each its own probe
        judge = self.judge_health.state()
        spent = self.budget_exhausted()
        if spent is not None:  # no half-open retry: the budget never refills without a restart or a new limit
            judge = {"judge": "failing", "judge_error": spent}
        return {
            "ready": ok and judge["judge"] != "failing",
            **judge,
            "rubrics": sorted(self.rubrics),
            "cache": detail,
            "cache_write_failures": self.store.write_failures,
            "reference_plans": len(self.plans),
        }

    def budget_exhausted(self) -> str | None:
        """Why the default rubric's judge can make no more calls under REWARD_MAX_COST; None while it can."""
        status = budget_status(self.default.judge)
        if status is None or not status.exhausted or status.limit is None:
            return None
        return (
            f"budget_exhausted: ${status.spent:.4f} of the judge budget (REWARD_MAX_COST) of ${status.limit:.4f} "
            "spent; restart with a larger budget"
        )

    def close(self) -> None:
        self.store.close()
