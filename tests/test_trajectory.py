import json

from reward.core.trajectory import Group, LineError, PlanReference, RefLine, TrajectoryReference, parse_line
from tests.conftest import group


def test_valid_group_with_trajectory_reference_and_default_ids():
    data = group()
    for r in data["rollouts"]:
        del r["id"]
    g = parse_line(Group, json.dumps(data), 1)
    assert isinstance(g, Group)
    assert isinstance(g.reference, TrajectoryReference)
    assert [r.id for r in g.rollouts] == ["0", "1", "2", "3"]


def test_plan_reference_accepts_a_plans_output_line():
    g = parse_line(Group, json.dumps(group(reference={"id": "ref-1", "plan": "EXECUTION PLAN ..."})), 1)
    assert isinstance(g, Group) and isinstance(g.reference, PlanReference) and g.reference.id == "ref-1"


def test_errors_name_line_and_field_path():
    data = group()
    data["rollouts"][2]["steps"][0]["exit_code"] = "zero"
    data["reference"]["bogus"] = 1
    err = parse_line(Group, json.dumps(data), 7)
    assert isinstance(err, LineError)
    text = str(err)
    assert text.startswith("line 7: ")
    assert "rollouts[2].steps[0].exit_code" in text
    assert "reference.bogus: Extra inputs are not permitted" in text


def test_unknown_top_level_field_and_missing_rollouts():
    data = group()
    data["rolouts"] = data.pop("rollouts")
    text = str(parse_line(Group, json.dumps(data), 2))
    assert "rolouts: Extra inputs are not permitted" in text and "rollouts: Field required" in text


def test_invalid_json_and_non_object():
    assert "invalid JSON" in str(parse_line(Group, '{"group_id": ', 3))
    assert "expected a JSON object" in str(parse_line(Group, "[1, 2]", 4))


def test_duplicate_rollout_ids_rejected():
    data = group()
    data["rollouts"][1]["id"] = data["rollouts"][0]["id"]
    assert "duplicate rollout id" in str(parse_line(Group, json.dumps(data), 1))


def test_negative_num_tokens_rejected():
    data = group()
    data["rollouts"][0]["num_tokens"] = -1
    assert "rollouts[0].num_tokens" in str(parse_line(Group, json.dumps(data), 1))


def test_ref_line():
    ok = parse_line(RefLine, json.dumps({"id": "a", "query": "q", "steps": [], "final_answer": "x"}), 1)
    assert isinstance(ok, RefLine)
    assert "query: Field required" in str(parse_line(RefLine, json.dumps({"id": "a"}), 1))
