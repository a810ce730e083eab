"""`--set PATH=VALUE`: equal to editing the rubric file, recorded in the output, errors naming the override."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from reward.rubric.load import RubricError, load_rubric
from reward.rubric.overrides import OverrideError, applying, parse_override
from tests.conftest import EXAMPLES, ROOT, cli_env, read_jsonl
from tests.conftest import run_cli as reward

RUBRIC = ROOT / "rubrics" / "execution_subagent.yaml"
SETS = [
    "--set",
    "constants.alpha=0.7",
    "--set",
    "penalties.no_commands=-30",
    "--set",
    "dimensions.completeness.weight=2",
]
EDITS = (
    ("constants: {alpha: 0.5}", "constants: {alpha: 0.7}"),
    ("no_commands: -50", "no_commands: -30"),
    ("  - name: completeness\n    group: positive\n", "  - name: completeness\n    group: positive\n    weight: 2\n"),
)


def edited_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = RUBRIC.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "edited" / "execution_subagent.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def same(a: Any, b: Any) -> bool:
    """Specs compare by their data (a compiled formula is an object of its own in each)."""
    return bool(a.model_dump() == b.model_dump())


def by_group(path: Path) -> dict[str, dict[str, Any]]:
    return {g["group_id"]: g for g in read_jsonl(path)}


def without_version(g: dict[str, Any]) -> dict[str, Any]:
    """A scored group less what names the rubric's file and overrides (the edited copy's version is its own)."""
    g = json.loads(json.dumps(g))
    g.pop("rubric_version")
    g["basis"].pop("overrides", None)
    return g


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("constants.alpha=0.7", ("constants", "alpha"), 0.7),
        ("penalties.no_commands=-30", ("penalties", "no_commands"), -30),
        ("penalties.too_long=null", ("penalties", "too_long"), None),
        ("name='0.7'", ("name",), "0.7"),
        ("description=a sentence, with = and commas", ("description",), "a sentence, with = and commas"),
        ("dimensions.efficiency.anchors={low: a, mid: b, high: c}", ("dimensions", "efficiency", "anchors"), None),
    ],
)
def test_values_are_yaml_and_paths_are_dotted(text, path, value):
    o = parse_override(text)
    assert o.path == path
    if path[-1] == "anchors":
        assert o.value == {"low": "a", "mid": "b", "high": "c"}
    else:
        assert o.value == value and type(o.value) is type(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("constants.alpha", "expected PATH=VALUE"),
        ("constants..alpha=1", "empty part"),
        ("constants.alpha=", "no value"),
        ("formula=a: b", "block YAML"),
        ("formula=[unclosed", "invalid YAML"),
    ],
)
def test_malformed_overrides_are_refused_naming_them(text, message):
    with pytest.raises(OverrideError, match=message) as err:
        parse_override(text)
    assert str(err.value).startswith(f"--set {text}")


def test_an_override_equals_the_same_edit_of_the_file(tmp_path):
    base = load_rubric("execution_subagent")
    overridden = load_rubric("execution_subagent", [SETS[i] for i in range(1, len(SETS), 2)])
    copy = load_rubric(edited_copy(tmp_path, *EDITS))
    assert same(overridden.spec, copy.spec) and not same(overridden.spec, base.spec)
    assert overridden.prompt_version == copy.prompt_version == base.prompt_version  # the judge sees no difference
    assert overridden.overrides == (
        "constants.alpha=0.7",
        "penalties.no_commands=-30",
        "dimensions.completeness.weight=2",
    )
    assert overridden.version not in (base.version, copy.version)  # not the file's rubric: its version says so


def test_the_version_of_a_rubric_without_overrides_is_what_it_always_was():
    r = load_rubric("execution_subagent")
    h = hashlib.sha256()
    for part in (RUBRIC.read_text(), r.condense_template or "", r.grade_template):
        h.update(part.encode() + b"\0")
    assert r.version == h.hexdigest()[:12] and r.overrides == ()
    # the order of overrides is part of them (a later one wins)
    a = load_rubric("execution_subagent", ["constants.alpha=0.6", "constants.alpha=0.7"])
    b = load_rubric("execution_subagent", ["constants.alpha=0.7"])
    assert same(a.spec, b.spec) and a.version != b.version and a.spec.constants["alpha"] == 0.7


def test_list_elements_by_name_or_index_and_a_prompt_override_changes_the_prompt_version():
    by_name = load_rubric("execution_subagent", ["dimensions.efficiency.description=Fast?"])
    index = next(i for i, d in enumerate(by_name.spec.dimensions) if d.name == "efficiency")
    by_index = load_rubric("execution_subagent", [f"dimensions.{index}.description=Fast?"])
    assert same(by_name.spec, by_index.spec) and by_name.spec.dimensions[index].description == "Fast?"
    assert by_name.prompt_version != load_rubric("execution_subagent").prompt_version


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("penalties.no_comands=-30", "--set penalties.no_comands=-30: penalties.no_comands: Extra inputs"),
        ("constants.alpha=abc", "--set constants.alpha=abc: constants.alpha: Input should be a valid number"),
        (
            "dimensions.efficiency.weight=heavy",
            "--set dimensions.efficiency.weight=heavy: dimensions[5].weight (dimension efficiency): Input should be",
        ),
        ("dimensions.speed.weight=1", "dimensions has no element named 'speed' (names: command_correctness,"),
        ("dimensions.99.weight=1", "dimensions has 14 elements, no index 99"),
        ("penalties.too_long.x=1", "penalties.too_long is -100, not a mapping or a list"),
    ],
)
def test_errors_name_the_override_and_the_path(override, message):
    with pytest.raises(RubricError) as err:
        load_rubric("execution_subagent", [override])
    assert message in str(err.value)
    assert str(err.value).startswith(f"{RUBRIC}: --set {override}")  # no line of the file: the flag


def test_an_error_of_the_file_still_names_its_line_beside_an_override(tmp_path):
    path = edited_copy(tmp_path, ("reward_scale: 100", "reward_scale: 100\nreward_scal: 1"))
    with pytest.raises(RubricError) as err:
        load_rubric(path, ["constants.alpha=0.7"])
    assert f"{path}:19: reward_scal: Extra inputs are not permitted" in str(err.value)


def test_the_active_overrides_apply_to_rubrics_loaded_without_explicit_ones():
    with applying(["constants.alpha=0.9"]):
        assert load_rubric("execution_subagent").spec.constants["alpha"] == 0.9
        assert load_rubric("execution_subagent", []).spec.constants["alpha"] == 0.5  # explicit: none
    assert load_rubric("execution_subagent").spec.constants["alpha"] == 0.5  # only within the block


def test_rubric_check_shows_the_overrides_and_refuses_a_bad_one():
    ran = reward("rubric", "check", RUBRIC, "--set", "constants.alpha=0.7")
    assert "overrides: constants.alpha=0.7" in ran.stdout and "alpha = 0.7" in ran.stdout
    assert load_rubric("execution_subagent", ["constants.alpha=0.7"]).version in ran.stdout
    bad = reward("rubric", "check", RUBRIC, "--set", "constants.alpha=x", check=False)
    assert bad.returncode == 2 and "--set constants.alpha=x: constants.alpha" in bad.stderr


def test_score_with_set_equals_score_with_an_edited_copy_and_costs_no_call(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "cache")
    reward("score", EXAMPLES, "-o", tmp_path / "base.jsonl", "--no-progress", env=env)
    paid = fake_judge.counts()["total"]
    preview = reward("score", EXAMPLES, "-o", tmp_path / "set.jsonl", "--dry-run", "--json", *SETS, env=env).stdout
    assert json.loads(preview)["total"]["calls"] == 0  # the dry run says so before the run
    assert json.loads(preview)["overrides"] == [
        "constants.alpha=0.7",
        "penalties.no_commands=-30",
        "dimensions.completeness.weight=2",
    ]
    reward("score", EXAMPLES, "-o", tmp_path / "set.jsonl", "--no-progress", *SETS, env=env)
    copy = edited_copy(tmp_path, *EDITS)
    reward("score", EXAMPLES, "-o", tmp_path / "copy.jsonl", "--no-progress", "-r", copy, env=env)
    assert fake_judge.counts()["total"] == paid  # formula-only: every judgement came from the cache
    with_set, with_copy = by_group(tmp_path / "set.jsonl"), by_group(tmp_path / "copy.jsonl")
    assert {k: without_version(g) for k, g in with_set.items()} == {k: without_version(g) for k, g in with_copy.items()}
    base = by_group(tmp_path / "base.jsonl")
    assert {k: without_version(g) for k, g in with_set.items()} != {k: without_version(g) for k, g in base.items()}
    overridden = load_rubric("execution_subagent", [SETS[i] for i in range(1, len(SETS), 2)])
    for g in with_set.values():  # the output says it is not the file's rubric, and what was changed
        assert g["rubric_version"] == overridden.version != base[g["group_id"]]["rubric_version"]
        assert g["basis"]["overrides"] == list(overridden.overrides)
    assert all("overrides" not in g["basis"] for g in base.values())  # without overrides: the shape as before
    # resuming the overridden output with other overrides is refused: one file, one rubric
    ran = reward("score", EXAMPLES, "-o", tmp_path / "set.jsonl", "--set", "constants.alpha=0.6", env=env, check=False)
    assert ran.returncode == 2 and "rubric version" in ran.stderr


def test_rescore_with_set_makes_no_call_and_equals_the_edited_copy_and_a_scored_run(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "cache")
    reward("score", EXAMPLES, "-o", tmp_path / "base.jsonl", "--no-progress", env=env)
    reward("score", EXAMPLES, "-o", tmp_path / "scored-set.jsonl", "--no-progress", *SETS, env=env)
    fake_judge.reset()
    ran = reward("rescore", tmp_path / "base.jsonl", "-r", "execution_subagent", "-o", tmp_path / "re.jsonl", *SETS)
    assert "overrides: constants.alpha=0.7" in ran.stdout and "0 judge calls" in ran.stdout
    copy = edited_copy(tmp_path, *EDITS)
    reward("rescore", tmp_path / "base.jsonl", "-r", copy, "-o", tmp_path / "re-copy.jsonl")
    assert fake_judge.counts()["total"] == 0
    rescored = by_group(tmp_path / "re.jsonl")
    assert {k: without_version(g) for k, g in rescored.items()} == {
        k: without_version(g) for k, g in by_group(tmp_path / "re-copy.jsonl").items()
    }
    # exactly what `score --set` wrote, but for `usage`: what each run spent (that run answered from the cache)
    assert {k: {**g, "usage": None} for k, g in rescored.items()} == {
        k: {**g, "usage": None} for k, g in by_group(tmp_path / "scored-set.jsonl").items()
    }
    # an override the judge would see is refused by rescore, as the same edit of the file is
    bad = reward(
        "rescore", tmp_path / "base.jsonl", "-r", "execution_subagent", "-o", tmp_path / "x.jsonl",
        "--set", "dimensions.efficiency.description=Fast?", check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "prompt version" in bad.stderr and not (tmp_path / "x.jsonl").exists()


def test_prompt_with_set_equals_the_edited_copys_prompt(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "cache")
    first = json.loads(EXAMPLES.read_text().splitlines()[0])
    args = ("prompt", EXAMPLES, "-g", first["group_id"], "--rollout", "0", "--json")
    words = "Were the commands quick enough?"
    over = reward(*args, "--set", f"dimensions.efficiency.description={words}", env=env).stdout
    described = "description: Did the agent reach the result in a reasonable number of commands, without wasted"
    copy = edited_copy(tmp_path, (described + " or redundant runs?", f"description: {words}"))
    assert json.loads(over) == json.loads(reward(*args, "-r", copy, env=env).stdout)
    assert words in over and words not in reward(*args, env=env).stdout
