"""Output models: one scored group per JSONL line, and what each rollout got."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, SerializerFunctionWrapHandler, model_serializer

Status = Literal["ok", "penalized", "error"]
PenaltyKind = Literal["too_long", "missing_final_answer", "no_commands"]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorInfo(Out):
    category: str  # judge_timeout, judge_rate_limited, judge_unavailable, judge_parse_error, budget_exhausted, ...
    message: str


class DimensionResult(Out):
    score: int | float  # as the judge gave it (integer scale: an integer); the mean of several samples
    reason: str
    samples: list[int | float] | None = None  # every sample's score (judge noise: --samples K)
    std: float | None = None  # sample std (ddof=1) of `samples`
    # Logprob-weighted scores (rubric judge.grade.logprobs): `score` is the expectation over the score token's
    # distribution; `written` is the value the judge wrote, `spread` the distribution's standard deviation.
    written: int | float | None = None
    spread: float | None = None

    @model_serializer(mode="wrap")
    def _drop_unsampled(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Single-sample output stays {"score", "reason"}: 14 dimensions x 2 nulls per rollout say nothing.
        data: dict[str, Any] = handler(self)
        if self.samples is None:
            data.pop("samples", None)
            data.pop("std", None)
        for name in ("written", "spread"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class RolloutResult(Out):
    """What one rollout got: status, reward (None when not computed), penalty or error, group means, dimensions."""

    id: str
    status: Status
    reward: float | None  # null when not computed: never an invented number
    penalty: PenaltyKind | None = None
    penalty_detail: str | None = None
    error: ErrorInfo | None = None
    # The paper's group means (rubrics with groups positive / pitfall / final_answer), as before.
    s_pos: float | None = None
    s_pit: float | None = None
    s_fa: float | None = None
    groups: dict[str, float] | None = None  # every group's mean of normalised scores, by group name
    dimensions: dict[str, DimensionResult] | None = None
    advantage: float | None = None
    reward_std: float | None = None  # sample std (ddof=1) of the rewards of the K verdict samples
    # False for a rollout in error: it is left out of the group's mean/std and gets no advantage.
    in_group_stats: bool
    has_final_answer: bool
    # The length check used the trainer's exact token count (true, `num_tokens`) or an offline estimate.
    num_tokens: int | None = None
    num_tokens_exact: bool = False
    meta: dict[str, Any] | None = None  # the rollout's own `meta`, passed through untouched
    # What the reader of a reward must know about how it was computed: today, a rollout whose tool calls
    # named no terminal tool (its "no commands" may come from a tool-name mismatch, not from the policy).
    warnings: list[str] | None = None
    # With judge.grade.logprobs: "logprobs" (scores are expectations) or "written" (the reply carried no
    # usable logprobs: the written values, never silently). Absent otherwise.
    scores_from: Literal["logprobs", "written"] | None = None
    _plan: str | None = PrivateAttr(default=None)  # the candidate plan graded (first sample), for --keep-plans
    _transcript: Transcript | None = PrivateAttr(default=None)  # what the judge was shown, for --keep-plans

    @model_serializer(mode="wrap")
    def _drop_unweighted(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.scores_from is None:  # rubrics without logprobs: lines as before
            data.pop("scores_from", None)
        return data


class ShownCommand(Out):
    command: str
    exit_code: int | None
    output: str  # as the judge saw it: cleaned, whitespace made canonical, cut to its head and tail


class Transcript(Out):
    """What the condensing judge was shown of one rollout (`score --include-plans`)."""

    steps: list[ShownCommand]
    final_answer: str


class JudgeInfo(Out):
    condense_model: str
    grade_model: str
    # True when any judgement in this group came from the built-in fake judge: not a real judgement.
    fake: bool


class DimensionReliability(Out):
    """One dimension's reliability over a group's graded rollouts (reward.rubric.reliability)."""

    signal_var: float | None  # unbiased: variance of the rollouts' mean scores - noise_var / K, floored at 0
    noise_var: float | None  # mean over rollouts of the sample variance (ddof=1) of their K scores
    reliability: float | None  # single sample: signal_var / (signal_var + noise_var); 0 for pure noise
    reliability_k: float | None  # of the mean of the K samples scored with (Spearman-Brown)
    k_needed: int | None  # samples for reliability >= reliability_target; null when reliability is 0 or unknown


class NoiseInfo(Out):
    """Judge noise of a group graded with K > 1 samples (see reward.rubric.noise and reward.rubric.reliability).
    With `--samples auto` K varies by rollout: `samples` is the most one got, noise_var is pooled over the
    rollouts sampled more than once, and reliability_k is that of the K each rollout got."""

    samples: int
    n: int  # graded rollouts the ratio is computed over
    signal_var: float | None  # population variance of their rewards
    noise_var: float | None  # mean of their reward_std squared
    snr: float | None  # signal_var / noise_var; null when noise_var is 0 or fewer than 2 graded rollouts
    # Reliability of the reward, anchored to noise (reward.rubric.reliability): what follows is null in files
    # of older versions. Penalised rollouts (exact rewards, no judge noise) are left out and counted here.
    n_penalized: int = 0
    signal_var_unbiased: float | None = None  # variance of K-mean rewards (ddof=1) - noise_var / K, floored at 0
    reliability: float | None = None  # one sample: signal_var_unbiased / (signal_var_unbiased + noise_var)
    reliability_k: float | None = None  # of the K-sample mean rewards this group was given
    k_needed: int | None = None  # samples for reliability >= reliability_target (Spearman-Brown)
    reliability_target: float | None = None
    dimensions: dict[str, DimensionReliability] | None = None  # the same, per dimension


class Basis(Out):
    """What a group's judgements depend on besides its content, for `reward rescore`: the rubric's prompt
    version and the penalty checks that decided which rollouts were graded at all."""

    prompt_version: str
    penalties: list[str]  # the penalty kinds that were checked (enabled), in order
    max_tokens: int
    samples: int | Literal["auto"]  # verdicts per rollout (judge noise); auto: per rollout (reward.rubric.adaptive)
    resample_condense: bool  # with samples > 1 (or auto): each sample condensed anew
    # `--set PATH=VALUE` overrides of the rubric file (the rubric scored with is not the file's); absent
    # when none, so files without overrides (and older files) keep their shape.
    overrides: list[str] | None = None
    max_samples: int | None = None  # with samples auto: the most verdicts one rollout may get
    # True: the rubric's score_maps mapped the judge's scores onto another judge's scale (`reward migrate`), so
    # the saved scores are not the judge's own (rescore refuses to map them twice). Absent otherwise.
    score_maps: bool | None = None

    @model_serializer(mode="wrap")
    def _drop_no_overrides(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("overrides", "max_samples", "score_maps"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class SamplingInfo(Out):
    """How `--samples auto` sampled a group (reward.rubric.adaptive): samples spent and why it stopped."""

    mode: Literal["auto"]
    max: int  # max_samples: the most one rollout may get
    spent: int  # verdict samples over the group's graded rollouts (one each is K = 1)
    per_rollout: dict[str, int]  # samples by rollout id (graded rollouts only)
    reason: str  # settled | budget | max_samples | no_graded | deadline | judge_error (the rounds stopped there)
    # rollout ids whose grading requests are identical, sampled together as one unit (absent when none are)
    together: list[list[str]] | None = None

    @model_serializer(mode="wrap")
    def _drop_no_copies(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("together") is None:
            data.pop("together", None)
        return data


class GroupUsage(Out):
    """What judging this group cost in the run that wrote it (0 calls when the cache answered everything)."""

    judge_calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cost: float | None  # null when a model's price is unknown: never a made-up 0


class GradingInfo(Out):
    """What a group or pairwise grading stage did for one group (absent for rollout-by-rollout grading)."""

    mode: str  # group | pairwise
    calls: int  # grading requests the stage made for this group (cache hits included), all samples
    seed: int  # of the order the judge was shown (derived from the group id)
    labels: dict[str, str] | None = None  # group: rollout id -> the label the judge saw (in its window)
    windows: list[list[str]] | None = None  # group larger than its window: the rollout ids each call showed
    pairs: int | None = None  # pairwise: pairs judged (each in both orders)
    position_disagreement: float | None = None  # pairwise: share of pair verdicts whose two orders disagree
    refused: str | None = None  # why the stage made no call (the group's graded rollouts are errors)


class CriterionInfo(Out):
    """One criterion of a checklist rubric's group: dimension `id` (c1..cN) of its rollouts, with its weight."""

    id: str
    text: str
    category: str | None
    weight: float
    # item: the group line gave the weight; category: its category's weight in the rubric (a rescore reads anew)
    weight_source: Literal["item", "category"]


class GroupResult(Out):
    """One scored group (an output line): its rollouts, mean/std, the zero-variance filter, the judge and basis."""

    group_id: str
    rubric: str
    rubric_version: str
    judge: JudgeInfo
    mean: float | None
    std: float | None  # population std (ddof=0) of the rewards of the rollouts in the group statistics
    n_scored: int
    n_errors: int
    filtered: bool
    filter_reason: str | None
    rollouts: list[RolloutResult]
    noise: NoiseInfo | None = None  # only when graded with several samples
    # With `score --include-plans`: the Execution Plans the grader saw (candidate plans by rollout id).
    reference_plan: str | None = None
    plans: dict[str, str] | None = None
    # With `score --include-plans`: each rollout as the judge saw it (penalised ones too: what the check read).
    transcripts: dict[str, Transcript] | None = None
    basis: Basis | None = None
    usage: GroupUsage | None = None  # judge calls, tokens and cost of this group (null in files of older versions)
    sampling: SamplingInfo | None = None  # with `--samples auto` only (absent otherwise, and in older files)
    grading: GradingInfo | None = None  # with a group or pairwise grading stage only (absent otherwise)
    # With a checklist rubric only (absent otherwise): the group's criteria, its rollouts' dimensions c1..cN.
    criteria: list[CriterionInfo] | None = None

    @model_serializer(mode="wrap")
    def _drop_fixed_sampling(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.sampling is None:
            data.pop("sampling", None)
        if self.grading is None:
            data.pop("grading", None)
        if self.criteria is None:
            data.pop("criteria", None)
        return data


def read_result_line(line: str | bytes) -> GroupResult:
    """The strict reader of a scored line: one this version wrote (the run summary, `reward rescore`); any
    field it does not know is an error. Analysis of files from any version uses the lenient reader,
    `reward.analysis.scored.read_scored_lenient`."""
    return GroupResult.model_validate_json(line)
