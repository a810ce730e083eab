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


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (["reward_scale=1e308", "formula=2 * quality"], "reward_scale: Input should be less than or equal to 1000000"),
        (["penalties={too_long: -1e300}"], "penalties.too_long: Input should be greater than or equal to -1000000"),
        (["constants={big: 1e300}", "formula=big * quality"], r"constants.big = 1e\+300 is beyond ±1e\+06"),
        (["formula=1e300 * quality"], r"graded rewards would span \[0, 1e\+300\]"),
        (["reward_scale=1e6", "formula=1e7 * quality"], r"\[0, 1e\+13\] .* beyond ±1e\+12"),
    ],
)
def test_numbers_that_would_make_a_reward_inf_are_refused_when_the_rubric_loads(changes, problem):
    # reward_scale 1e308 with formula 2 * quality loaded, and its rewards were inf: null in JSON, with status ok
    with pytest.raises(RubricError, match=problem):
        load_rubric("response_quality", overrides=changes)


def test_a_top_level_alpha_beside_constants_alpha_is_an_error_not_ignored():
    with pytest.raises(RubricError, match=r"alpha: alpha is set twice, at the top level and in constants"):
        load_rubric("execution_subagent", overrides=["alpha=0.9"])  # its constants: {alpha: 0.5}
    legacy = load_rubric("execution_subagent", overrides=["alpha=0.9", "constants={}"])
    assert legacy.spec.constants == {"alpha": 0.9}  # alone, it is still read


@pytest.mark.parametrize("name", ["varargs", "kwargs", "caller"])
def test_jinjas_macro_names_are_reserved_input_names(name):
    # inside user(), jinja gives these names () / {} / the caller: an input so named would never reach the template
    with pytest.raises(RubricError, match=rf"inputs: {name}: reserved names"):
        load_rubric("response_quality", overrides=[f"inputs.group={{{name}: {{}}}}"])


def test_a_weight_too_small_for_a_weighted_mean_is_refused():
    # two dimensions of weight 5e-324 scored 5 / 10 gave a group mean of 0.0: the products underflowed
    from reward.rubric.formula import group_means
    from reward.rubric.verdict import DimensionScore

    with pytest.raises(RubricError, match=r"weight .*: Input should be greater than or equal to 0.000001"):
        load_rubric("response_quality", overrides=["dimensions.task_completion.weight=5e-324"])
    names = ["task_completion", "factual_accuracy", "informativeness", "relevance", "actionability"]
    least = load_rubric("response_quality", overrides=[f"dimensions.{n}.weight=0.000001" for n in names]).spec
    scores = {n: DimensionScore(0.5, "r") for n in names}
    assert group_means(least, scores) == {"quality": pytest.approx(0.5)}
