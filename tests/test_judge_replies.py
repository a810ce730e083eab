"""Hostile judge replies: every one is re-asked and then a categorised per-rollout error, never an exception
and never a number. Explicit cases first, then a property-based fuzz of the whole reply path (the fake judge
over HTTP, litellm parsing its answers, the judge client, the validators, the scorer)."""

from __future__ import annotations

import itertools
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.judge.fake.http import PLAIN_REFUSAL, fake_plan, fake_verdict
from reward.rubric.verdict import verdict_schema
from reward.scoring.build import run_scoring
from tests.conftest import group, rollout, step

CATEGORIES = {
    "judge_timeout",
    "judge_rate_limited",
    "judge_unavailable",
    "judge_auth",
    "judge_bad_request",
    "judge_context_window",
    "judge_parse_error",
    "judge_empty_reply",
    "judge_refusal",
    "judge_invalid_plan",
    "judge_error",
}
PLAN = fake_plan("### Command 1: `pytest`\n\nExit Code: 0\n")
FUZZ_EXAMPLES = int(os.environ.get("REWARD_FUZZ_REPLIES", "150"))
_unique = itertools.count()


def score(scorer, data):
    return run_scoring(scorer, scorer.score_group(Group.model_validate(data), Usage()))


def valid_verdict(rubric) -> dict:
    return fake_verdict("", verdict_schema(rubric.spec))


def body(content, finish="stop", **message) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content, **message}, "finish_reason": finish}
        ],
    }


def hostile_verdicts(rubric):
    good = valid_verdict(rubric)
    key = next(k for k in good if k.endswith("_score"))
    text = json.dumps(good)
    return {
        "5000-digit score": text.replace(f'"{key}": {good[key]}', f'"{key}": {"9" * 5000}', 1),
        "200000 nested brackets": "[" * 200_000 + "]" * 200_000,
        "nested object": "{" + '"a":{' * 100_000 + "}" * 100_001,
        "score as float": text.replace(f'"{key}": {good[key]}', f'"{key}": 5.0', 1),
        "score as bool": text.replace(f'"{key}": {good[key]}', f'"{key}": true', 1),
        "score 1e400": text.replace(f'"{key}": {good[key]}', f'"{key}": 1e400', 1),
        "NaN score": text.replace(f'"{key}": {good[key]}', f'"{key}": NaN', 1),
        "a list": json.dumps([good]),
        "a string": json.dumps(text),
    }


@pytest.mark.parametrize(
    "name",
    [
        "5000-digit score",
        "200000 nested brackets",
        "nested object",
        "score as float",
        "score as bool",
        "score 1e400",
        "NaN score",
        "a list",
        "a string",
    ],
)
def test_hostile_verdict_is_reasked_then_a_parse_error(make_scorer, fake_judge, rubric, name):
    bad = hostile_verdicts(rubric)[name]
    fake_judge.script(*[{"kind": "grade", "content": bad}] * 3)
    result = score(make_scorer(), group(rollouts=[rollout("x"), rollout("p", steps=[])], reference={"plan": PLAN}))
    r = result.rollouts[0]
    assert (r.status, r.reward, r.error.category) == ("error", None, "judge_parse_error")
    assert result.rollouts[1].reward == -50.0 and result.n_scored == 1
    assert fake_judge.counts()["grade"] == 3


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        ({"id": "x", "object": "chat.completion", "model": "m", "choices": []}, "judge_empty_reply"),
        (body(None), "judge_empty_reply"),
        (body("{}", "content_filter"), "judge_refusal"),
        # bodies litellm cannot read: an empty reply (re-asked), not an outage retried as a connection error
        (
            {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0}]},
            "judge_empty_reply",
        ),
        ([1, 2, 3], "judge_empty_reply"),
    ],
)
def test_odd_completion_bodies_are_categorised(make_scorer, fake_judge, raw, category):
    fake_judge.script(*[{"kind": "grade", "body": raw}] * 3)
    result = score(make_scorer(), group(rollouts=[rollout("x")], reference={"plan": PLAN}))
    r = result.rollouts[0]
    assert (r.status, r.reward, r.error.category) == ("error", None, category)
    assert "Traceback" not in r.error.message
    assert fake_judge.counts()["grade"] == 3  # asked, re-asked twice; no transport retries on top


def test_verdict_cut_at_the_token_limit_is_not_used(make_scorer, fake_judge, rubric):
    good = json.dumps(valid_verdict(rubric))
    fake_judge.script(*[{"kind": "grade", "content": good, "finish_reason": "length"}] * 3)
    result = score(make_scorer(), group(rollouts=[rollout("x")], reference={"plan": PLAN}))
    assert result.rollouts[0].error.category == "judge_parse_error"


# --- property-based fuzz ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
HOSTILE_SCORES = [-1, 11, 5.5, True, None, "7", [7], {"score": 7}, 10**30]


@st.composite
def grade_reply(draw, good: dict):
    """(completion body, expected verdict or None when the reply is not a valid verdict)."""
    kind = draw(st.sampled_from(["valid", "mutated", "json", "text", "deep", "huge"]))
    expected = None
    if kind == "valid":
        content, expected = json.dumps(good), good
        if draw(st.booleans()):
            content = "```json\n" + content + "\n```"
    elif kind == "mutated":
        bad = dict(good)
        key = draw(st.sampled_from(sorted(good)))
        if key.endswith("_score"):
            bad[key] = draw(st.sampled_from(HOSTILE_SCORES))
        else:
            bad[key] = draw(st.sampled_from([None, 3, ["r"], {"r": 1}]))
        if draw(st.booleans()):
            bad.pop(key)
        if draw(st.booleans()):
            bad["extra"] = draw(json_values)
        content = json.dumps(bad)
    elif kind == "json":
        content = json.dumps(draw(json_values))
    elif kind == "text":
        content = draw(st.text(max_size=200))
    elif kind == "deep":
        n = draw(st.integers(1000, 150_000))
        content = draw(st.sampled_from(["[", '{"a":'])) * n
    else:
        content = "9" * draw(st.integers(4301, 20_000))
    finish = draw(st.sampled_from(["stop", "stop", "length", "content_filter", None, "tool_calls", "eos"]))
    if finish in ("length", "content_filter"):
        expected = None
    shape = draw(
        st.sampled_from(
            ["normal"] * 6
            + ["no_choices", "missing_choices", "empty_choice", "null_message", "refusal", "content_list"]
        )
    )
    raw = body(content, finish)
    if shape != "normal":
        expected = None
    if shape == "no_choices":
        raw["choices"] = []
    elif shape == "missing_choices":
        raw.pop("choices")
    elif shape == "empty_choice":
        raw["choices"] = [{}]
    elif shape == "null_message":
        raw["choices"][0]["message"] = None
    elif shape == "refusal":
        raw["choices"][0]["message"]["refusal"] = PLAIN_REFUSAL
    elif shape == "content_list":
        raw["choices"][0]["message"]["content"] = [{"type": "text", "text": content}]
    return raw, expected


def test_fuzz_judge_replies_give_a_valid_verdict_or_a_categorised_error(make_scorer, fake_judge, rubric):
    scorer = make_scorer(num_retries=0, max_reasks=0, timeout_s=10.0)
    good = valid_verdict(rubric)
    seen = {"ok": 0, "error": 0}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(reply=grade_reply(good), plan_fault=st.sampled_from([None] * 4 + ["cut", "refusal", "text", "no_choices"]))
    def check(reply, plan_fault):
        raw, expected = reply
        fake_judge.state.script.clear()
        if plan_fault == "cut":
            fake_judge.script({"kind": "condense", "content": PLAN[:40], "finish_reason": "length"})
        elif plan_fault == "refusal":
            fake_judge.script({"kind": "condense", "content": PLAIN_REFUSAL})
        elif plan_fault == "text":
            fake_judge.script({"kind": "condense", "content": "All good."})
        elif plan_fault == "no_choices":
            fake_judge.script({"kind": "condense", "body": {"id": "x", "model": "m", "choices": []}})
        fake_judge.script({"kind": "grade", "body": raw})
        n = next(_unique)
        data = group(f"fz{n}", rollouts=[rollout("x", steps=[step(f"pytest -k case{n}")])], reference={"plan": PLAN})
        r = score(scorer, data).rollouts[0]
        if expected is not None and plan_fault is None:
            assert r.status == "ok", (r.error, raw)
            assert {k: v.score for k, v in r.dimensions.items()} == {
                k[: -len("_score")]: v for k, v in expected.items() if k.endswith("_score")
            }
        else:
            assert (r.status, r.reward, r.dimensions) == ("error", None, None), raw
            assert r.error.category in CATEGORIES, r.error
        seen[r.status] += 1

    check()
    assert seen["ok"] > 0 and seen["error"] > 0
    print(f"fuzzed {sum(seen.values())} judge exchanges: {seen}")
