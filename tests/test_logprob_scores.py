"""Logprob-weighted scores (judge.grade.logprobs): score positions in the JSON, the token rule for multi-digit
values, the expectation of the fake judges' known distributions to 1e-9, the marked fallback, the cache
(hits give the same scores, entries without distributions are asked again) and ties broken."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from typing import Any

import pytest

from reward.cache.disk import Store
from reward.core.trajectory import Group
from reward.errors import ConfigError
from reward.judge.base import CallSettings, JudgeSettings, Usage
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.logprobs import OFF_SCALE_TOKEN, fake_distribution
from reward.judge.fake.replies import FakeNoise, read_request
from reward.judge.litellm_judge import LiteLLMJudge
from reward.judge.logprob_reply import takes_logprobs
from reward.native.prepare import prepare_group
from reward.rubric.formula import graded_reward
from reward.rubric.load import load_rubric
from reward.rubric.logprob_scores import TokenLogprob, distributions, score_spans
from reward.rubric.verdict import DimensionScore, InvalidVerdict, verdict_from_cache
from reward.scoring.build import TOP_LOGPROBS, judge_settings
from reward.scoring.scorer import Scorer
from tests.conftest import TEST_MODEL, group, rollout, settings_for, step

ON = ["judge.grade.logprobs=true"]


@pytest.fixture(scope="module")
def weighted():
    return load_rubric("execution_subagent", overrides=ON)


def local(rub, store: Store, top: int = TOP_LOGPROBS, noise: FakeNoise | None = None) -> Scorer:
    settings = JudgeSettings(
        condense=CallSettings(TEST_MODEL, 0.0, 512), grade=CallSettings(TEST_MODEL, 0.0, 1024, top)
    )
    return Scorer(rub, InProcessFakeJudge(settings, noise=noise), store)


def score(scorer: Scorer, g: dict) -> Any:
    async def run() -> Any:
        try:
            return await scorer.score_group(prepare_group(Group.model_validate(g)), Usage())
        finally:
            await scorer.aclose()

    return asyncio.run(run())


def distinct(n: int = 4) -> dict:
    return group(rollouts=[rollout(f"r{i}", steps=[step(command=f"pytest -q t{i}.py")]) for i in range(n)])


def expected(prompt: str, dim: str, written: int) -> tuple[float, float]:
    """sum(p * v) and the spread of the fake's distribution, renormalised over the valid values, by hand."""
    dist = {int(t): p for t, p in fake_distribution(prompt, dim, written, 0, 10).items() if t != OFF_SCALE_TOKEN}
    total = sum(dist.values())
    mean = sum(p * v for v, p in dist.items()) / total
    return mean, math.sqrt(sum(p * (v - mean) ** 2 for v, p in dist.items()) / total)


def grade_prompts(judge: InProcessFakeJudge) -> list[str]:
    return [read_request(r["messages"], r["response_format"])[1] for r in judge.requests if r["role"] == "grade"]


# --- reading positions and distributions ---------------------------------------------------------------


def test_score_spans_find_top_level_integer_values_only():
    content = (
        '```json\n{"a_reason": "wrote \\"b_score\\": 3 and {\\"c_score\\": 4}", "a_score": 7,\n'
        '"nested": {"d_score": 5}, "e_score":10, "f_score": 2.5}\n```'
    )
    spans = score_spans(content)
    assert {k: content[a:b] for k, (a, b) in spans.items()} == {"a": "7", "e": "10"}


def tok(text: str, alts: dict[str, float] | None = None) -> TokenLogprob:
    alts = alts or {text: 1.0}
    return TokenLogprob(text, math.log(alts.get(text, 1e-9)), tuple((t, math.log(p)) for t, p in alts.items()))


def test_one_token_per_value_renormalised_over_valid_values():
    content = '{"x_score": 7, "y_score": 10}'
    tokens = [
        tok('{"x_score":'),
        # " x" is no value, "9" lacks the space, " \u0663" (an Arabic-Indic 3) is no JSON digit
        tok(" 7", {" 7": 0.5, " 8": 0.2, " x": 0.2, "9": 0.05, " \u0663": 0.05}),
        tok(', "y_score": '),
        tok("10", {"10": 0.6, "9": 0.3, "11": 0.1}),  # 11 is off the 0-10 scale
        tok("}"),
    ]
    dists = distributions(content, tokens, ["x", "y"], 0, 10)
    assert dists is not None
    assert dists["x"] == pytest.approx({7: 0.5 / 0.7, 8: 0.2 / 0.7}, abs=1e-12)
    assert dists["y"] == pytest.approx({10: 0.6 / 0.9, 9: 0.3 / 0.9}, abs=1e-12)


def test_a_value_split_over_tokens_or_tokens_off_the_content_fall_back():
    content = '{"x_score": 10}'
    split = [tok('{"x_score": '), tok("1", {"1": 0.9, "2": 0.1}), tok("0"), tok("}")]
    assert distributions(content, split, ["x"], 0, 10) is None  # "1" could be 1 or the start of 10
    whole = [tok('{"x_score": '), tok("10"), tok("}")]
    assert distributions(content, whole, ["x"], 0, 10) == {"x": {10: 1.0}}
    assert distributions(content + " ", whole, ["x"], 0, 10) is None  # tokens do not spell the content
    assert distributions(content, whole, ["x", "missing"], 0, 10) is None
    no_value = [tok('{"x_score": '), tok("10", {"ten": 0.9}), tok("}")]
    assert distributions(content, no_value, ["x"], 0, 10) == {"x": {10: 1.0}}  # the chosen token itself counts
    hostile = [tok('{"x_score": '), tok("10", {"--5": 0.5, "-" + "9" * 5000: 0.1}), tok("}")]
    assert distributions(content, hostile, ["x"], 0, 10) == {"x": {10: 1.0}}  # not numbers: dropped, no ValueError
    off_scale = [tok('{"x_score": '), TokenLogprob("10", -math.inf, (("x", -0.1),)), tok("}")]
    assert distributions(content, off_scale, ["x"], 0, 10) is None  # no valid value has any mass


def test_alternatives_that_are_no_distribution_fall_back_to_the_written_values():
    """Four alternatives at p = 1 each (or a positive logprob) are impossible: renormalising them would turn a
    written 7 into 1.5 and call it the judge's uncertainty. The verdict keeps its written values instead."""
    content = '{"x_score": 7}'
    hostile = [
        tok('{"x_score": '),
        TokenLogprob("7", -30.0, (("0", 0.0), ("1", 0.0), ("2", 0.0), ("3", 0.0))),
        tok("}"),
    ]
    assert distributions(content, hostile, ["x"], 0, 10) is None
    positive = [tok('{"x_score": '), TokenLogprob("7", -0.1, (("7", -0.1), ("8", 2.0))), tok("}")]
    assert distributions(content, positive, ["x"], 0, 10) is None
    rounded = [
        tok('{"x_score": '),
        TokenLogprob("7", math.log(0.6), (("7", math.log(0.6)), ("8", math.log(0.4004)))),
        tok("}"),
    ]
    assert distributions(content, rounded, ["x"], 0, 10) is not None  # a provider's rounding is no malformation


# --- through the scorer -----------------------------------------------------------------------------


def test_scores_are_the_expectation_of_the_fakes_distribution(weighted, rubric, tmp_path):
    s = local(weighted, Store(tmp_path / "c"))
    out = score(s, distinct())
    prompts = grade_prompts(s.judge)  # type: ignore[arg-type]
    assert len(prompts) == 4 and all(r["seed"] is None for r in s.judge.requests)  # type: ignore[attr-defined]
    plain = score(local(rubric, Store(tmp_path / "p"), top=0), distinct())  # the same judge, integers
    moved = 0
    for r, integer in zip(out.rollouts, plain.rollouts, strict=True):
        assert r.status == "ok" and r.scores_from == "logprobs"
        prompt = next(p for p in prompts if f"ran pytest: {r.id}<" in p)
        for name, d in r.dimensions.items():
            assert d.written == integer.dimensions[name].score  # the value the judge wrote, kept
            mean, spread = expected(prompt, name, int(d.written))
            assert d.score == pytest.approx(mean, abs=1e-9) and d.spread == pytest.approx(spread, abs=1e-9)
            moved += d.score != d.written
        # the reward is the formula over the expectations (continuous), not over the written integers
        exp_reward, _ = graded_reward(
            weighted.spec, {n: DimensionScore(d.score, d.reason) for n, d in r.dimensions.items()}
        )
        assert r.reward == pytest.approx(exp_reward, abs=1e-9) and r.reward != integer.reward
    assert moved > 0
    line = json.loads(out.rollouts[0].model_dump_json())
    assert line["scores_from"] == "logprobs" and "written" in next(iter(line["dimensions"].values()))


def test_a_reply_without_logprobs_falls_back_to_the_written_values_marked(weighted, rubric, tmp_path):
    s = local(weighted, Store(tmp_path / "c"))
    plain = score(local(rubric, Store(tmp_path / "p"), top=0), distinct(2))
    written = {n: int(d.score) for n, d in plain.rollouts[0].dimensions.items()}
    verdict = {f"{n}_{k}": (v if k == "score" else "scripted") for n, v in written.items() for k in ("reason", "score")}
    s.judge.script("grade", json.dumps(verdict))  # type: ignore[attr-defined]  # a reply with no logprobs
    out = score(s, distinct(2))
    froms = sorted(str(r.scores_from) for r in out.rollouts)
    assert froms == ["logprobs", "written"]  # never silently: each rollout says where its scores come from
    fallback = next(r for r in out.rollouts if r.scores_from == "written")
    assert {n: d.score for n, d in fallback.dimensions.items()} == written
    assert all(d.written is None and d.spread is None for d in fallback.dimensions.values())


def test_a_provider_without_logprobs_is_not_sent_them(weighted, fake_judge, tmp_path, monkeypatch):
    assert not takes_logprobs("anthropic/claude-3-5-sonnet-20241022") and takes_logprobs("openai/gpt-4.1")
    monkeypatch.setattr("reward.judge.litellm_judge.takes_logprobs", lambda model: False)
    settings = settings_for(fake_judge, grade=CallSettings(TEST_MODEL, 0.0, 1024, TOP_LOGPROBS))
    out = score(Scorer(weighted, LiteLLMJudge(settings), Store(tmp_path / "c")), distinct(2))
    calls = [c for c in fake_judge.state.calls if c["kind"] == "grade"]
    assert len(calls) == 2 and all(c["top_logprobs"] is None for c in calls)
    assert [r.scores_from for r in out.rollouts] == ["written", "written"]


def test_through_litellm_and_http_the_same_scores_as_in_process(weighted, fake_judge, tmp_path):
    settings = settings_for(fake_judge, grade=CallSettings(TEST_MODEL, 0.0, 1024, TOP_LOGPROBS))
    http = score(Scorer(weighted, LiteLLMJudge(settings), Store(tmp_path / "h")), distinct())
    calls = [c for c in fake_judge.state.calls if c["kind"] == "grade"]
    assert len(calls) == 4 and all(c["top_logprobs"] == TOP_LOGPROBS for c in calls)
    here = score(local(weighted, Store(tmp_path / "l")), distinct())
    for a, b in zip(http.rollouts, here.rollouts, strict=True):
        assert a.scores_from == b.scores_from == "logprobs"
        assert a.reward == pytest.approx(b.reward, abs=1e-9)
        for name, d in a.dimensions.items():
            assert (
                d.score == pytest.approx(b.dimensions[name].score, abs=1e-9) and d.written == b.dimensions[name].written
            )


def test_a_cache_hit_gives_the_same_scores_and_an_entry_without_distributions_is_asked_again(weighted, tmp_path):
    store = Store(tmp_path / "c")
    first = local(weighted, store)
    a = score(first, distinct(2))
    again = local(weighted, store)
    b = score(again, distinct(2))
    assert again.judge.counts()["grade"] == 0  # type: ignore[attr-defined]
    assert [r.model_dump() for r in a.rollouts] == [r.model_dump() for r in b.rollouts]
    store.close()
    # an entry from before logprob scores (no distributions) under the same key: a miss, asked again
    keys = [
        first.cached.request_key("grade", r["messages"], r["response_format"], r["seed"])
        for r in first.judge.requests  # type: ignore[attr-defined]
        if r["role"] == "grade"
    ]
    store = Store(tmp_path / "c")
    assert store._disk is not None
    for key in keys:
        value = store._read(key)
        assert value is not None and value["dists"] is not None
        store._disk.set(key, json.dumps({"scores": value["scores"], "fake": value["fake"]}))
    third = local(weighted, store)
    c = score(third, distinct(2))
    store.close()
    assert third.judge.counts()["grade"] == 2  # type: ignore[attr-defined]
    assert [r.scores_from for r in c.rollouts] == ["logprobs", "logprobs"]
    assert [r.reward for r in c.rollouts] == [r.reward for r in a.rollouts]


def test_cached_distributions_are_checked(weighted):
    names = [d.name for d in weighted.spec.dimensions]
    scores = {n: [5, "r"] for n in names}
    good = {n: {"5": 0.75, "6": 0.25} for n in names}
    v = verdict_from_cache(weighted.spec, {"scores": scores, "fake": True, "dists": good})
    assert v.scores_from == "logprobs" and v.scores[names[0]].score == pytest.approx(5.25)
    assert verdict_from_cache(weighted.spec, {"scores": scores, "fake": True, "dists": None}).scores_from == "written"
    bad = [
        {n: {"5": 0.5} for n in names},  # does not sum to 1
        {n: {"11": 1.0} for n in names},  # off the scale
        {n: {"5": float("nan")} for n in names},
        {names[0]: {"5": 1.0}},  # dimensions missing
        [],
    ]
    for dists in bad:
        with pytest.raises(InvalidVerdict):
            verdict_from_cache(weighted.spec, {"scores": scores, "fake": True, "dists": dists})
    with pytest.raises(InvalidVerdict):  # an entry from before: no distributions
        verdict_from_cache(weighted.spec, {"scores": scores, "fake": True})


def test_settings_ask_for_top_logprobs_and_refuse_where_they_would_be_ignored(weighted, rubric):
    assert judge_settings(weighted).grade.top_logprobs == TOP_LOGPROBS
    assert judge_settings(rubric).grade.top_logprobs == 0
    ranking = load_rubric("group_ranking", overrides=ON)
    with pytest.raises(ConfigError, match=r"grading\.mode rollout only"):
        judge_settings(ranking)
    continuous = load_rubric("execution_subagent", overrides=[*ON, "scale.min=0.0", "scale.max=1.0"])
    with pytest.raises(ConfigError, match="integer scale"):
        judge_settings(continuous)


def test_ties_in_integer_rewards_are_broken_by_the_distributions(weighted, rubric, tmp_path):
    """A judge that writes 5 on every dimension of every rollout: the integer rewards of the group all tie
    (no GRPO signal); the expectations of the same replies' distributions do not."""
    undecided = FakeNoise(sd=0.0, low=0.5, high=0.5)
    integer = score(local(rubric, Store(tmp_path / "i"), top=0, noise=undecided), distinct(8))
    logprob = score(local(weighted, Store(tmp_path / "w"), noise=undecided), distinct(8))
    assert len({r.reward for r in integer.rollouts}) == 1 and integer.std == 0
    rewards = [r.reward for r in logprob.rollouts]
    assert len(set(rewards)) == 8 and logprob.std is not None and logprob.std > 0
    assert all(d.written == 5 for r in logprob.rollouts for d in r.dimensions.values())


def test_samples_keep_the_first_samples_written_values(weighted, tmp_path):
    s = local(weighted, Store(tmp_path / "c"))
    s.judge.settings = replace(s.judge.settings, samples=2)
    s.fixed_k = 2
    out = score(s, distinct(2))
    for r in out.rollouts:
        assert r.scores_from == "logprobs"
        for d in r.dimensions.values():
            assert d.samples is not None and len(d.samples) == 2 and d.written is not None
            assert d.score == pytest.approx(sum(d.samples) / 2)


def test_rescore_of_a_logprob_file_reproduces_it(tmp_path):
    """Expectations are fractions on an integer scale: rescore takes them (for a rollout whose scores came from
    logprobs), keeps the written values and spreads, and with the same rubric writes the same file."""
    from tests.conftest import EXAMPLES, run_cli

    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    out, again = tmp_path / "o.jsonl", tmp_path / "again.jsonl"
    lp = ("--set", "judge.grade.logprobs=true")
    run_cli("score", EXAMPLES, "-o", out, "--fake-judge", *lp, "--no-progress", env=env)
    assert '"scores_from":"logprobs"' in out.read_text().replace(" ", "")
    run_cli("rescore", out, "-r", "execution_subagent", *lp, "-o", again, env=env)
    assert again.read_text() == out.read_text()
