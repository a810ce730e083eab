"""The paper's Figure 7 evaluation judge, bundled as the `response_quality` rubric, end to end."""

from __future__ import annotations

import asyncio
import json

import pytest

from reward.core.clean import sanitize
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.native.prepare import GroupInputError, prepare_group
from reward.rubric.load import load_rubric
from reward.rubric.prompts import fence
from tests.conftest import ROOT

GROUPS = ROOT / "examples" / "response_quality" / "groups.jsonl"


def test_response_quality_scores_its_examples_with_every_field_in_the_prompt(make_local_scorer):
    rubric = load_rubric("response_quality")
    lines = [json.loads(line) for line in GROUPS.read_text().splitlines() if line.strip()]
    groups = [prepare_group(Group.model_validate(g), spec=rubric.spec) for g in lines]
    scorer = make_local_scorer(rubric)

    async def go():
        usage = Usage()
        return await asyncio.gather(*(scorer.score_group(g, usage) for g in groups))

    results = asyncio.run(go())
    n = sum(len(g.rollouts) for g in groups)
    assert scorer.judge.calls == {"grade": n}  # no condensing stage, no reference
    names = ["task_completion", "factual_accuracy", "informativeness", "relevance", "actionability"]
    for line, result in zip(lines, results, strict=True):
        for raw, r in zip(line["rollouts"], result.rollouts, strict=True):
            assert r.status == "ok" and result.judge.fake
            scores = [r.dimensions[d].score for d in names]
            assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
            assert r.reward == pytest.approx(sum(scores) / 5)  # score = mean of the five dimensions
            # The request this rollout got shows every input field, each inside its own fence.
            (prompt,) = [
                q["messages"][1]["content"]
                for q in scorer.judge.requests
                if fence(sanitize(raw["inputs"]["subagent_response"]), "subagent_response")
                in q["messages"][1]["content"]
            ]
            fields = {**line["inputs"], **raw["inputs"]}
            for name, value in fields.items():
                if name == "n_after":
                    assert f"Subsequent Trajectory ({value} turns after)" in prompt
                elif value:
                    assert fence(sanitize(value), name) in prompt, name
    system = scorer.judge.requests[0]["messages"][0]["content"]
    for name in names:
        assert f'"{name}_score": a number from 0.0 to 1.0' in system


def test_a_group_without_the_declared_fields_is_refused_before_any_call():
    rubric = load_rubric("response_quality")
    g = Group.model_validate({"group_id": "g", "rollouts": [{"id": "r", "inputs": {"subagent_response": "ok"}}]})
    with pytest.raises(GroupInputError) as exc:
        prepare_group(g, spec=rubric.spec)
    assert "inputs.problem_statement: required by the rubric" in "; ".join(exc.value.problems)
    assert any(p.startswith("rollouts[0].inputs.trajectory_after: required") for p in exc.value.problems)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"task_completion_reason": "ok", "task_completion_score": 0.9', "not valid JSON"),  # cut off
        ("I'm sorry, but I can't help with that.", "refus"),  # a plain-text refusal: judge_refusal
        ("HUGE", "less than or equal to 1"),  # a giant number
        ("NAN", "finite number"),  # NaN, which Python's json accepts
        ("STRING", "valid number"),  # "0.9" as a string: never coerced
        ("BOOL", "valid number"),  # true is not 1.0
    ],
)
def test_hostile_replies_on_a_continuous_scale_are_errors_never_numbers(make_local_scorer, reply, why):
    rubric = load_rubric("response_quality")
    names = [d.name for d in rubric.spec.dimensions]
    good = {k: v for n in names for k, v in ((f"{n}_reason", "r"), (f"{n}_score", 0.5))}
    special = {"HUGE": 1e308, "NAN": float("nan"), "STRING": "0.9", "BOOL": True}
    if reply in special:
        reply = json.dumps({**good, "relevance_score": special[reply]})
    line = json.loads(GROUPS.read_text().splitlines()[0])
    scorer = make_local_scorer(rubric, max_reasks=2)
    scorer.judge.script("grade", *[reply] * 3)  # the first ask and both re-asks get it

    async def go():
        return await scorer.score_group(prepare_group(Group.model_validate(line), spec=rubric.spec), Usage())

    result = asyncio.run(go())
    (r,) = result.rollouts
    assert (r.status, r.reward, r.dimensions, r.advantage) == ("error", None, None, None)
    category = "judge_refusal" if why == "refus" else "judge_parse_error"
    assert r.error.category == category and why in r.error.message
    assert scorer.judge.counts()["grade"] == 3 and result.n_scored == 0 and result.mean is None
