"""Rubrics are data: judgements keyed by the request, formula-only edits free, rescore exact, old rewards kept."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reward.analysis.rescore import RescoreError, rescore_group
from reward.core.results import GroupResult
from reward.core.trajectory import Group
from reward.errors import OutputError
from reward.judge.base import Usage
from reward.native.prepare import GroupInputError, prepare_group
from reward.rubric.load import RubricError, load_rubric
from tests.conftest import EXAMPLES, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "rubric_v1"


def groups() -> list[Group]:
    return [prepare_group(Group.model_validate_json(line)) for line in EXAMPLES.read_text().splitlines() if line]


def run(scorer, gs: list[Group] | None = None) -> list[GroupResult]:
    async def go():
        usage = Usage()
        return await asyncio.gather(*(scorer.score_group(g, usage) for g in gs or groups()))

    return asyncio.run(go())


def edited(tmp_path: Path, name: str, *replacements: tuple[str, str]) -> Path:
    text = (ROOT / "rubrics" / "execution_subagent.yaml").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "rubrics" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


FORMULA_ONLY = (
    ("constants: {alpha: 0.5}", "constants: {alpha: 0.7}"),
    ("no_commands: -50", "no_commands: -60"),
    ("reward_scale: 100", "reward_scale: 10"),
    ("min_std: 0.01", "min_std: 0.5"),
    ("# --- Failure modes", "# a comment added\n  # --- Failure modes"),
    ("  - name: completeness\n    group: positive\n", "  - name: completeness\n    group: positive\n    weight: 2\n"),
)


def test_a_formula_only_edit_rescores_the_examples_with_no_judge_call(make_local_scorer, tmp_path):
    first = make_local_scorer()
    run(first)
    assert first.judge.calls == {"condense": 22, "grade": 22}
    edit = load_rubric(edited(tmp_path, "alpha", *FORMULA_ONLY))
    second = make_local_scorer(edit)
    results = run(second)
    assert sum(second.judge.calls.values()) == 0  # alpha, a penalty, the scale, the filter, a comment, a weight
    assert any(r.reward != 0 for g in results for r in g.rollouts if r.status == "ok")


def test_an_edit_the_judge_sees_regrades_but_does_not_recondense(make_local_scorer, tmp_path):
    run(make_local_scorer())
    reworded = load_rubric(
        edited(tmp_path, "reworded", ("Were the commands the right ones", "Were the commands exactly the right ones"))
    )
    again = make_local_scorer(reworded)
    run(again)
    assert again.judge.calls == {"grade": 22}


@pytest.mark.parametrize("samples", [1, 3])
def test_rescore_reproduces_a_paid_rerun_exactly(make_local_scorer, tmp_path, samples):
    before = run(make_local_scorer(samples=samples))
    edit = load_rubric(edited(tmp_path, "alpha", *FORMULA_ONLY))
    paid = make_local_scorer(edit, cache=tmp_path / "fresh", samples=samples)
    rerun = {g.group_id: g for g in run(paid)}
    assert sum(paid.judge.calls.values()) > 0  # a fresh cache: every judgement was paid for again
    for g in before:
        rescored = rescore_group(GroupResult.model_validate_json(g.model_dump_json()), edit, samples=samples)
        assert rescored.model_dump_json() == rerun[g.group_id].model_dump_json()
    # A re-run with another K would grade anew: refused, not approximated.
    with pytest.raises(RescoreError, match=f"graded with {samples} sample"):
        rescore_group(before[0], edit, samples=2)


def test_rescore_refuses_other_prompts_other_penalty_checks_and_old_files(make_local_scorer, tmp_path):
    saved = run(make_local_scorer())[0]
    reworded = load_rubric(edited(tmp_path, "r", ("Were the commands the right ones", "Were these the right ones")))
    with pytest.raises(RescoreError, match="asks the judge differently"):
        rescore_group(saved, reworded)
    off = load_rubric(edited(tmp_path, "off", ("no_commands: -50", "no_commands: null")))
    with pytest.raises(RescoreError, match="penalty checks"):
        rescore_group(saved, off)
    longer = load_rubric(edited(tmp_path, "long", ("max_tokens: 30000", "max_tokens: 40000")))
    with pytest.raises(RescoreError, match="at 30000 tokens"):
        rescore_group(saved, longer)
    with pytest.raises(RescoreError, match="older version"):
        rescore_group(saved.model_copy(update={"basis": None}), load_rubric("execution_subagent"))
    # A saved file is input: a penalty name that is not one, or ragged samples, are refused.
    rubric = load_rubric("execution_subagent")
    penalized = next(i for i, r in enumerate(saved.rollouts) if r.status == "penalized")
    forged = saved.model_copy(deep=True)
    forged.rollouts[penalized].penalty = None
    with pytest.raises(RescoreError, match="is not a penalty of"):
        rescore_group(forged, rubric)
    graded = next(i for i, r in enumerate(saved.rollouts) if r.status == "ok")
    forged = saved.model_copy(deep=True)
    dims = forged.rollouts[graded].dimensions
    next(iter(dims.values())).samples = [1, 2]
    with pytest.raises(RescoreError, match="different numbers of samples"):
        rescore_group(forged, rubric)


def _saved(name: str) -> dict[str, dict]:
    return {g["group_id"]: g for g in map(json.loads, (FIXTURES / name).read_text().splitlines())}


def test_the_paper_rubric_gives_the_rewards_it_gave_before_rubrics_were_general(make_local_scorer):
    # Saved by the scorer as it was before this rewrite (same examples, the fake judge, one sample).
    saved = _saved("examples_k1.jsonl")
    now = run(make_local_scorer())
    assert {g.group_id for g in now} == set(saved)
    compared = 0
    for g in now:
        old = {r["id"]: r for r in saved[g.group_id]["rollouts"]}
        assert g.mean == pytest.approx(saved[g.group_id]["mean"], abs=1e-9)
        for r in g.rollouts:
            o = old[r.id]
            assert (r.status, r.penalty) == (o["status"], o["penalty"])
            assert r.reward == pytest.approx(o["reward"], abs=1e-9)
            assert r.advantage == pytest.approx(o["advantage"], abs=1e-9)
            for field in ("s_pos", "s_pit", "s_fa", "reward_std"):
                assert getattr(r, field) == pytest.approx(o[field], abs=1e-9)
            compared += 1
    assert compared == 32


def test_k3_samples_are_the_k1_verdict_then_the_seeded_ones_saved_before(make_local_scorer):
    # K = 3 was saved with seeds 0, 1, 2; sample 0 is now the K = 1 request (no seed): samples 1 and 2 are the
    # saved ones, sample 0 is the K = 1 file's score, and the reward is theirs (the formula of the means).
    k1, k3 = _saved("examples_k1.jsonl"), _saved("examples_k3.jsonl")
    now = run(make_local_scorer(samples=3))
    compared = 0
    for g in now:
        one = {r["id"]: r for r in k1[g.group_id]["rollouts"]}
        three = {r["id"]: r for r in k3[g.group_id]["rollouts"]}
        for r in g.rollouts:
            if r.status != "ok":
                assert (r.status, r.penalty) == (three[r.id]["status"], three[r.id]["penalty"])
                continue
            assert r.dimensions is not None
            for name, d in r.dimensions.items():
                before = three[r.id]["dimensions"][name]["samples"]
                assert d.samples == [one[r.id]["dimensions"][name]["score"], *before[1:]]
            compared += 1
    assert compared > 0
    # the reward of those samples is what rescoring them gives (rescore is exact: tests above and test_rescore_k)
    for g in now:
        assert rescore_group(g, load_rubric("execution_subagent")).model_dump_json() == g.model_dump_json()


def test_declared_inputs_are_checked_before_any_call(tmp_path):
    path = edited(
        tmp_path,
        "inputs",
        (
            "reference: true",
            "reference: true\ninputs:\n  group: {repo: {description: the repository}}\n"
            "  rollout: {seed: {type: integer, required: false}}",
        ),
    )
    r = load_rubric(path)
    g = groups()[0]
    with pytest.raises(GroupInputError) as exc:
        prepare_group(g, spec=r.spec)
    assert exc.value.problems == ["inputs.repo: required by the rubric (the repository)"]
    bad = g.model_copy(update={"inputs": {"repo": 3, "other": "x"}})
    bad.rollouts[0].inputs = {"seed": "7"}
    with pytest.raises(GroupInputError) as exc:
        prepare_group(bad, spec=r.spec)
    assert sorted(exc.value.problems) == [
        "inputs.other: not an input of this rubric (it declares: repo)",
        "inputs.repo: must be a string, not int",
        "rollouts[0].inputs.seed: must be an integer, not str",
    ]


def test_a_template_variable_nobody_gives_is_a_rubric_error_before_any_call(tmp_path):
    path = edited(
        tmp_path,
        "t",
        ("templates: {condense: condense.j2, grade: grade.j2}", "templates: {condense: condense.j2, grade: mine.j2}"),
    )
    source = (ROOT / "templates" / "grade.j2").read_text().replace("{{ query | data", "{{ repo_url | data")
    (path.parent / "mine.j2").write_text(source)
    with pytest.raises(RubricError, match=r"templates.grade \(mine.j2\): uses repo_url: neither given"):
        load_rubric(path)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("{{ d.descripton }}", "has no attribute 'descripton'"),  # a typo, found before any call
        ("{{ cycler.__init__.__globals__ }}", r"reaches into Python internals \(__globals__, __init__\)"),
        ("{{ cycler['__init__'] }}", r"reaches into Python internals \(__init__\)"),
        ("{{ cycler.mro }}", "SecurityError: access to attribute 'mro'"),
        ('{% include "grade.j2" %}', "rendering .* fails"),
    ],
)
def test_a_template_that_cannot_render_safely_is_a_rubric_error(tmp_path, expression, message):
    path = edited(
        tmp_path,
        "t",
        ("templates: {condense: condense.j2, grade: grade.j2}", "templates: {condense: condense.j2, grade: mine.j2}"),
    )
    source = (ROOT / "templates" / "grade.j2").read_text()
    source = source.replace("- {{ d.name }}", "- {{ d.name }} " + expression)
    (path.parent / "mine.j2").write_text(source)
    with pytest.raises(RubricError, match=message):
        load_rubric(path)


def test_duplicate_keys_and_bad_formulas_are_errors_with_lines(tmp_path):
    dup = edited(tmp_path, "dup", ("reward_scale: 100", "reward_scale: 100\nreward_scale: 10"))
    with pytest.raises(RubricError, match=r"dup.yaml:\d+: duplicate key 'reward_scale' \(first at line \d+\)"):
        load_rubric(dup)
    bad = edited(tmp_path, "bad", ("(1 - alpha) * (positive - pitfall)", "(1 - beta) * (positive - pitfall)"))
    with pytest.raises(RubricError, match=r"bad.yaml:\d+: .*unknown name 'beta'"):
        load_rubric(bad)


def test_the_committed_schema_is_the_generated_one_and_bundled_rubrics_point_to_it():
    from reward.cli.rubric import schema_text

    assert (ROOT / "rubrics" / "rubric.schema.json").read_text() == schema_text()
    for path in (ROOT / "rubrics").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=rubric.schema.json\n"), path


def test_a_new_judge_shape_needs_yaml_and_a_template_only(make_local_scorer, tmp_path):
    d = tmp_path / "shape"
    d.mkdir()
    (d / "review.j2").write_text(
        "{% macro system() -%}\nRate the patch on: {% for x in dimensions %}{{ x.name }} ({{ x.description }}) "
        "{% endfor %}from {{ scale.min }} to {{ scale.max }}. Reply with JSON: <name>_reason, <name>_score.\n"
        '{%- endmacro %}\n{% macro user() -%}\nIssue:\n{{ issue | data("issue") }}\n\nPatch:\n'
        '{{ patch | data("patch") }}\n{%- endmacro %}\n'
    )
    (d / "review.yaml").write_text(
        "name: review\nscale: {min: 0.0, max: 1.0}\n"
        "groups: {good: {title: Good}, bad: {title: Bad, failure_mode: true}}\n"
        "formula: good - 0.5 * bad\nreward_scale: 1\nreference: false\npenalties: null\n"
        "inputs: {group: {issue: {}}, rollout: {patch: {}}}\n"
        "judge: {grade: {model: openai/gpt-4.1}}\ntemplates: {grade: review.j2}\n"
        "dimensions:\n"
        "  - name: correct\n    group: good\n    description: Does the patch fix the issue?\n"
        "  - name: risky\n    group: bad\n    description: Does it change unrelated code?\n"
    )
    r = load_rubric(d / "review.yaml")
    g = Group.model_validate(
        {
            "group_id": "p1",
            "inputs": {"issue": "crash on empty input"},
            "rollouts": [
                {"id": "a", "inputs": {"patch": "if not x: return []"}},
                {"id": "b", "inputs": {"patch": "rm -rf"}},
            ],
        }
    )
    scorer = make_local_scorer(r)
    (result,) = run(scorer, [prepare_group(g, spec=r.spec)])
    assert scorer.judge.calls == {"grade": 2}
    sent = [req["messages"][1]["content"] for req in scorer.judge.requests]
    (for_a,) = [u for u in sent if "if not x: return []" in u]  # requests run concurrently: in any order
    assert "crash on empty input" in for_a and "rm -rf" not in for_a
    assert scorer.judge.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["correct_score"] == {
        "type": "number",
        "minimum": 0.0,
        "maximum": 1.0,
    }
    for ro in result.rollouts:
        assert ro.status == "ok" and ro.s_pos is None
        assert ro.reward == pytest.approx(ro.groups["good"] - 0.5 * ro.groups["bad"])
        assert isinstance(ro.dimensions["correct"].score, float)
    assert result.judge.fake is True


def test_rescore_cli_writes_the_rescored_file(tmp_path, make_local_scorer):
    from typer.testing import CliRunner

    from reward.cli.main import app

    saved = run(make_local_scorer())
    src = tmp_path / "scored.jsonl"
    src.write_text("".join(g.model_dump_json() + "\n" for g in saved))
    rub = edited(tmp_path, "alpha", *FORMULA_ONLY)
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["rescore", str(src), "--rubric", str(rub), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "0 judge calls" in res.output
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["rubric_version"] == load_rubric(rub).version


def test_rescore_never_leaves_a_half_written_or_clobbered_output(tmp_path, make_local_scorer):
    from typer.testing import CliRunner

    from reward.cli.main import app

    saved = run(make_local_scorer())
    src = tmp_path / "scored.jsonl"
    src.write_text("".join(g.model_dump_json() + "\n" for g in saved))
    runner = CliRunner()
    # An output that cannot be written (its folder is a file: as a full or read-only disk fails) is one
    # clear error, and no temporary file is left behind.
    blocked = tmp_path / "file"
    blocked.write_text("x")
    res = runner.invoke(app, ["rescore", str(src), "-r", "execution_subagent", "-o", str(blocked / "out.jsonl")])
    assert res.exit_code == 1 and isinstance(res.exception, OutputError) and "cannot write" in str(res.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "local-cache", "scored.jsonl"]
    # A refused rescore leaves an existing output as it was: it is replaced whole or not at all.
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    other = edited(tmp_path, "reworded", ("Were the commands the right ones", "Were these the right ones"))
    res = runner.invoke(app, ["rescore", str(src), "-r", str(other), "-o", str(out)])
    assert isinstance(res.exception, RescoreError) and out.read_text() == "previous\n"


# The attack of a shared rubric repository: code behind a branch no trial render takes.
GLOBALS = '"_" * 2 ~ "globals" ~ "_" * 2'
TRIGGER = '{% if "trigger" in final_answer %}'


def hostile_rubric(tmp_path: Path, payload: str) -> Path:
    source = (ROOT / "templates" / "grade.j2").read_text()
    marker = "{% macro user() -%}"
    assert marker in source
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "mine.j2").write_text(source.replace(marker, marker + TRIGGER + payload + "{% endif %}"))
    return edited(
        tmp_path,
        "hostile",
        ("templates: {condense: condense.j2, grade: grade.j2}", "templates: {condense: condense.j2, grade: mine.j2}"),
    )


def test_the_attr_filter_is_refused_when_the_rubric_loads(tmp_path):
    payload = f'{{{{ (lipsum | attr({GLOBALS}))["os"].popen("touch {tmp_path}/ran").read() }}}}'
    with pytest.raises(RubricError, match="attr"):
        load_rubric(hostile_rubric(tmp_path, payload))


def test_a_computed_attribute_runs_nothing_and_is_an_error_of_the_rollout(make_local_scorer, tmp_path):
    """A name built at render time passes every static check; the sandbox refuses it when the branch runs."""
    marker = tmp_path / "ran"
    payload = f'{{{{ lipsum[{GLOBALS}]["os"].popen("touch {marker}").read() }}}}'
    rubric = load_rubric(hostile_rubric(tmp_path, payload))  # loads: the trial renders never take the branch
    g = Group.model_validate(
        {
            "group_id": "g",
            "query": "q",
            "reference": {"plan": "EXECUTION PLAN"},
            "rollouts": [
                {"id": "hit", "steps": [{"command": "ls"}], "final_answer": "<final_answer>trigger</final_answer>"},
                {"id": "miss", "steps": [{"command": "ls"}], "final_answer": "<final_answer>fine</final_answer>"},
            ],
        }
    )
    (result,) = run(make_local_scorer(rubric), [g])
    hit, miss = result.rollouts
    assert not marker.exists()
    assert hit.status == "error" and hit.reward is None and hit.error is not None
    assert hit.error.category == "template_error" and "SecurityError" in hit.error.message
    assert miss.status == "ok" and miss.reward is not None


def test_rescore_derives_every_reward_from_status_and_scores_never_from_the_file(make_local_scorer):
    from reward.core.results import ErrorInfo

    rubric = load_rubric("execution_subagent")
    saved = run(make_local_scorer())[0]
    honest = rescore_group(saved, rubric)
    forged = saved.model_copy(deep=True)
    graded = [i for i, r in enumerate(forged.rollouts) if r.status == "ok"]
    penalized = next(i for i, r in enumerate(forged.rollouts) if r.status == "penalized")
    e = forged.rollouts[graded[0]]  # a judge error carrying a reward, as a hostile file may
    e.status, e.error, e.reward, e.advantage, e.in_group_stats = (
        "error",
        ErrorInfo(category="x", message="y"),
        50,
        2.1,
        True,
    )
    forged.rollouts[graded[1]].reward = 99.0  # a graded reward its scores do not give
    forged.rollouts[penalized].reward = 80.0  # a penalty worth more than any grade
    forged.n_scored, forged.mean = 99, 1e9
    again = rescore_group(forged, rubric)
    err = again.rollouts[graded[0]]
    assert err.reward is None and err.advantage is None and not err.in_group_stats and err.dimensions is None
    assert again.rollouts[graded[1]].reward == honest.rollouts[graded[1]].reward
    assert again.rollouts[penalized].reward == -100.0 or again.rollouts[penalized].reward == -50.0
    assert again.n_scored == honest.n_scored - 1
    assert again.mean == pytest.approx(sum(r.reward for r in again.rollouts if r.reward is not None) / again.n_scored)


def test_rescore_refuses_a_group_id_seen_twice(make_local_scorer):
    from reward.analysis.rescore import rescore_groups

    saved = run(make_local_scorer())
    rubric = load_rubric("execution_subagent")
    assert [g.group_id for g in rescore_groups(saved, rubric)] == [g.group_id for g in saved]
    with pytest.raises(RescoreError, match="appears twice"):
        list(rescore_groups([saved[0], saved[1], saved[0]], rubric))


def test_the_bundled_rubrics_keep_their_prompt_versions():
    """New rubric fields (logprobs, grading shapes, score maps, samples auto) enter the prompt version only when
    used: files scored before they existed stay rescorable (`reward rescore` compares prompt versions)."""
    from reward.rubric.load import load_rubric

    assert load_rubric("execution_subagent").prompt_version == "471a5f920b56"  # as scored by 0.1.0 before them
    assert load_rubric("execution_subagent", ["judge.grade.logprobs=true"]).prompt_version != "471a5f920b56"
