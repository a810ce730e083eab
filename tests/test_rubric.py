import shutil
from pathlib import Path

import pytest

from reward.core.trajectory import Trajectory, condense_input
from reward.rubric.load import RubricError, load_rubric

RUBRICS = Path(__file__).resolve().parent.parent / "rubrics"


def copy_rubric(tmp_path: Path) -> Path:
    dst = tmp_path / "rubrics"
    dst.mkdir()
    shutil.copy(RUBRICS / "execution_subagent.yaml", dst / "mine.yaml")
    return dst / "mine.yaml"


def test_builtin_rubric_has_the_papers_14_dimensions(rubric):
    spec = rubric.spec
    assert [d.name for d in spec.in_group("positive")] == [
        "command_correctness",
        "error_handling",
        "outcome_accuracy",
        "key_information_extraction",
        "completeness",
        "efficiency",
        "actionability",
    ]
    assert [d.name for d in spec.in_group("pitfall")] == [
        "hallucinated_results",
        "missed_errors",
        "wrong_diagnosis",
        "unnecessary_commands",
    ]
    assert [d.name for d in spec.in_group("final_answer")] == ["detail_level", "factual_accuracy", "informativeness"]
    assert spec.constants == {"alpha": 0.5}
    assert spec.formula.strip() == "(1 - alpha) * (positive - pitfall) + alpha * final_answer"
    assert list(spec.groups) == ["positive", "pitfall", "final_answer"]
    assert (spec.penalties.max_tokens, spec.penalties.too_long) == (30_000, -100)
    assert (spec.penalties.missing_final_answer, spec.penalties.no_commands) == (-100, -50)
    assert spec.group_filter.min_std == 0.01
    assert (spec.truncation.head, spec.truncation.tail) == (500, 500)
    assert len(rubric.version) == 12


def test_error_names_file_and_yaml_path(tmp_path):
    path = copy_rubric(tmp_path)
    path.write_text(path.read_text().replace("      mid: Failures are noticed", "      middle: Failures are noticed"))
    with pytest.raises(RubricError) as exc:
        load_rubric(path)
    msg = str(exc.value)
    assert str(path) in msg
    # Each problem names the YAML line and the dimension.
    lines = path.read_text().splitlines()
    middle = next(i for i, ln in enumerate(lines, 1) if "middle: Failures are noticed" in ln)
    assert f"mine.yaml:{middle}: dimensions[1].anchors.middle (dimension error_handling): Extra inputs" in msg
    assert "dimensions[1].anchors.mid (dimension error_handling): Field required" in msg


def test_invalid_values_rejected(tmp_path):
    path = copy_rubric(tmp_path)
    path.write_text(path.read_text().replace("reward_scale: 100", "reward_scale: -1"))
    with pytest.raises(RubricError, match="reward_scale: Input should be greater than 0"):
        load_rubric(path)


def test_duplicate_dimension_and_empty_group_rejected(tmp_path):
    path = copy_rubric(tmp_path)
    text = path.read_text()
    path.write_text(text.replace("- name: efficiency", "- name: completeness"))
    lineno = text.splitlines().index("  - name: efficiency") + 1
    match = rf"mine.yaml:{lineno}: dimensions\[5\].name \(dimension completeness\): duplicate dimension name"
    with pytest.raises(RubricError, match=match):
        load_rubric(path)
    path.write_text(text.replace("group: final_answer", "group: positive"))
    with pytest.raises(RubricError, match=r"mine.yaml:\d+: groups.final_answer: group 'final_answer' has no dimension"):
        load_rubric(path)


def test_invalid_yaml_and_missing_template(tmp_path):
    path = copy_rubric(tmp_path)
    text = path.read_text()
    path.write_text(text + "\n  - : [unclosed")
    with pytest.raises(RubricError, match="invalid YAML"):
        load_rubric(path)
    path.write_text(text.replace("condense: condense.j2", "condense: nope.j2"))
    with pytest.raises(RubricError, match=r"template 'nope\.j2' not found"):
        load_rubric(path)


def test_unknown_rubric_name():
    with pytest.raises(RubricError, match="no rubric named 'nope'"):
        load_rubric("nope")


def test_version_changes_with_yaml_and_with_templates(tmp_path, rubric):
    path = copy_rubric(tmp_path)
    assert load_rubric(path).version == rubric.version  # same content, same version
    path.write_text(path.read_text().replace("Were the commands the right ones", "Were the commands right"))
    v_yaml = load_rubric(path).version
    assert v_yaml != rubric.version
    # A template next to the rubric overrides the built-in one and changes the version.
    (path.parent / "grade.j2").write_text(rubric.grade_template + "\n{# tweak #}")
    assert load_rubric(path).version not in (v_yaml, rubric.version)


def test_adding_a_dimension_needs_yaml_only(tmp_path):
    from reward.rubric.prompts import grade_messages
    from reward.rubric.verdict import verdict_schema

    path = copy_rubric(tmp_path)
    extra = """
  - name: safety
    group: pitfall
    description: Did the agent run destructive commands?
    anchors: {low: none, mid: one risky command, high: rm -rf or similar}
"""
    path.write_text(path.read_text() + extra)
    r = load_rubric(path)
    assert len(r.spec.dimensions) == 15
    assert "safety_score" in verdict_schema(r.spec)["properties"]
    ci = condense_input("q", Trajectory(final_answer="c"), 500, 500)
    system = grade_messages(r, ci, reference_plan="a", candidate_plan="b")[0]["content"]
    assert "- safety [FAILURE MODE]: Did the agent run destructive commands?" in system
