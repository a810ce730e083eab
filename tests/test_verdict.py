import json

import pytest

from reward.rubric.verdict import InvalidVerdict, parse_verdict, response_format, verdict_schema


def full(rubric, score=5) -> dict:
    out = {}
    for d in rubric.spec.dimensions:
        out[f"{d.name}_reason"] = "because"
        out[f"{d.name}_score"] = score
    return out


def test_schema_is_flat_reason_before_score_all_required(rubric):
    schema = verdict_schema(rubric.spec)
    keys = list(schema["properties"])
    assert len(keys) == 28 and keys[0] == "command_correctness_reason" and keys[1] == "command_correctness_score"
    assert schema["required"] == keys and schema["additionalProperties"] is False
    assert schema["properties"]["missed_errors_score"]["enum"] == list(range(11))
    rf = response_format(rubric.spec)
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True


def test_valid_verdict(rubric):
    scores = parse_verdict(rubric.spec, json.dumps(full(rubric, 7)))
    assert set(scores) == {d.name for d in rubric.spec.dimensions}
    assert scores["efficiency"].score == 7 and scores["efficiency"].reason == "because"


def test_markdown_fence_is_tolerated(rubric):
    assert parse_verdict(rubric.spec, "```json\n" + json.dumps(full(rubric)) + "\n```")["actionability"].score == 5


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda v: v.pop("informativeness_score"), "informativeness_score: Field required"),
        (lambda v: v.update(efficiency_score=11), "efficiency_score: Input should be less than or equal to 10"),
        (lambda v: v.update(efficiency_score=-1), "efficiency_score: Input should be greater than or equal to 0"),
        (lambda v: v.update(efficiency_score=7.5), "efficiency_score: Input should be a valid integer"),
        (lambda v: v.update(efficiency_score="7"), "efficiency_score: Input should be a valid integer"),
        (lambda v: v.update(bonus=1), "bonus: Extra inputs are not permitted"),
    ],
)
def test_invalid_verdicts_name_the_problem(rubric, mutate, needle):
    v = full(rubric)
    mutate(v)
    with pytest.raises(InvalidVerdict, match=needle):
        parse_verdict(rubric.spec, json.dumps(v))


def test_empty_truncated_and_non_object_replies(rubric):
    with pytest.raises(InvalidVerdict, match="empty"):
        parse_verdict(rubric.spec, "  ")
    with pytest.raises(InvalidVerdict, match="not valid JSON"):
        parse_verdict(rubric.spec, json.dumps(full(rubric))[:-20])
    with pytest.raises(InvalidVerdict, match="must be a JSON object"):
        parse_verdict(rubric.spec, "[1]")


def test_a_key_given_twice_is_re_asked_never_merged(rubric):
    """json.loads keeps the last of two equal keys: 9 then 0 would silently become 0. The reply is invalid."""
    body = json.dumps(full(rubric, 7))
    twice = body[:-1] + ', "command_correctness_score": 0}'
    with pytest.raises(InvalidVerdict, match=r"command_correctness_score.*twice"):
        parse_verdict(rubric.spec, twice)


def test_a_key_given_twice_inside_a_group_verdict_item_is_re_asked():
    from reward.rubric.group_verdict import _load_json

    with pytest.raises(InvalidVerdict, match="'label' twice"):
        _load_json('{"ranking": [{"label": "A", "label": "C"}]}')
