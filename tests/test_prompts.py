import asyncio
import time
import tracemalloc
from pathlib import Path

import jinja2
import pytest

from reward.core.results import GroupResult
from reward.core.trajectory import Group, Step, Trajectory, condense_input
from reward.judge.base import Usage
from reward.rubric.load import RubricError, load_rubric
from reward.rubric.prompts import TemplateProblem, condense_messages, grade_messages, render
from tests.conftest import ROOT


def test_condense_prompt_follows_figure_5(rubric):
    traj = Trajectory(
        steps=[
            Step(command="cmake . && make", exit_code=0, output="\x1b[32m[100%] Built target app\x1b[0m"),
            Step(command="make test", exit_code=1, output="x" * 600 + "FAILED: 2 tests" + "y" * 600),
        ],
        final_answer="<final_answer>Command: make test\nSummary: 2 failed</final_answer>",
    )
    system, user = condense_messages(rubric, condense_input("Build and test.", traj, 500, 500))
    assert system["role"] == "system" and user["role"] == "user"
    for header in (
        "EXECUTION PLAN",
        "Task Outcome:",
        "Commands Executed:",
        "Key Findings:",
        "Error Recovery:",
        "Final State:",
    ):
        assert header in system["content"]
    u = user["content"]
    assert u.startswith("## Task Query\n\n⟪data:query⟫\nBuild and test.\n⟪/data:query⟫")
    assert "### Command 1: ⟪data:command⟫cmake . && make⟪/data:command⟫\n\nExit Code: 0" in u
    assert "### Command 2: ⟪data:command⟫make test⟪/data:command⟫\n\nExit Code: 1" in u
    assert "[100%] Built target app" in u and "\x1b" not in u  # cleaned
    assert "characters truncated" in u and "FAILED: 2 tests" not in u  # middle cut, head+tail kept
    assert "## Final Answer Returned to Parent Agent\n\n⟪data:final_answer⟫\n<final_answer>Command: make test" in u
    assert u.endswith("Create a detailed execution plan following the template.")


def test_condense_prompt_without_commands_or_exit_code(rubric):
    traj = Trajectory(steps=[Step(command="ls")], final_answer="")
    u = condense_messages(rubric, condense_input("q", traj, 500, 500))[1]["content"]
    assert "Exit Code: unknown" in u and "(no output)" in u and "(none)" in u
    u = condense_messages(rubric, condense_input("q", Trajectory(), 500, 500))[1]["content"]
    assert "(The agent ran no commands.)" in u


def test_grade_prompt_contains_everything_the_judge_needs(rubric):
    ci = condense_input("Q?", Trajectory(final_answer="<final_answer>FA</final_answer>"), 500, 500)
    system, user = grade_messages(rubric, ci, reference_plan="REF PLAN", candidate_plan="CAND PLAN")
    for d in rubric.spec.dimensions:
        assert d.name in system["content"] and d.description in system["content"]
        assert d.anchors.low in system["content"] and d.anchors.high in system["content"]
    assert "from 0 to 10" in system["content"]
    u = user["content"]
    assert u.index("Q?") < u.index("REF PLAN") < u.index("CAND PLAN") < u.index("<final_answer>FA</final_answer>")


def test_strict_undefined_rejects_a_missing_variable():
    src = "{% macro system() %}S{% endmacro %}{% macro user() %}{{ missing }}{% endmacro %}"
    with pytest.raises(TemplateProblem) as caught:
        render(src, {})
    assert isinstance(caught.value.__cause__, jinja2.UndefinedError)


def _macros(user: str) -> str:
    return "{% macro system() %}S{% endmacro %}{% macro user() %}" + user + "{% endmacro %}"


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("{{ patch * 300000000 }}", r"SecurityError: repetition \(`\*`\) would build more than 8,000,000"),
        ("{{ [patch] * 100000 }}", r"repetition \(`\*`\)"),
        ("{{ 10 ** 1000000000 }}", "an integer of more than 10,000 bits"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "more than 250,000"),
        ("{% for a in patch %}{% for b in patch %}{% for c in patch %}{% endfor %}{% endfor %}{% endfor %}", "250,000"),
        ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}", "250,000"),
        ("{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ f(patch, 40) }}", "`~`"),
        ("{{ patch | center(2000000000) }}", "the center filter"),
        ("{{ patch.ljust(2000000000) }}", r"ljust\(\)"),
        ('{{ "%2000000000s" % patch }}', "`%` formatting"),
        ('{{ "{:>2000000000}".format(patch) }}', "str.format"),
        ("{{ range(100000) | join(patch * 800) }}", "the join filter"),
        ('{{ patch | replace("x", patch) | replace("x", patch) }}', "the replace filter"),
        ("{{ lipsum(1000000) }}", r"lipsum\(\)"),
        ("{% for i in range(5000) %}{{ patch }}{% endfor %}", "outputs more than 32,000,000 characters"),
        ("{{ {}.fromkeys(range(100000), patch) }}", "outputs more than"),
        ("{% for x in [1] recursive %}{{ loop([]) }}{% endfor %}", "recursive loops are not allowed"),
    ],
)
def test_a_render_is_bounded_in_memory_and_time(user, message):
    # rollout text is adversarial: a template may not turn it into gigabytes or hours (each case took one or both)
    start = time.monotonic()
    with pytest.raises(TemplateProblem, match=message):
        render(_macros(user), {"patch": "x" * 10_000})
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(
    ("user", "message"),
    [  # each result past the bound though its argument is not: the estimate alone let them by
        ("{% set j = lt | tojson %}{{ j | length }}", "the tojson filter"),  # `<` becomes the 6 characters \u003c
        ("{{ (amp | e) | length }}", "the e filter"),  # `&` becomes `&amp;`
        ("{{ (amp | escape) | length }}", "the escape filter"),
    ],
)
def test_a_filter_whose_result_outgrows_its_argument_is_held_to_the_bound(user, message):
    values = {"lt": "<" * 3_000_000, "amp": "&" * 3_000_000}
    with pytest.raises(TemplateProblem, match=message):
        render(_macros(user), values)


def test_filters_within_the_bound_still_work():
    # a 4.5M-character answer wrapped is legitimate: the estimate of a break per character refused it
    user = "{{ (x | tojson) | length }} {{ (x | e) | length }} {{ (y | wordwrap(79)) | length }}"
    out = render(_macros(user), {"x": "<&" * 1000, "y": "word " * 900_000})
    assert out[1]["content"] == "12002 9000 4499999"


@pytest.mark.parametrize("text", ['"{0.__class__}"', '("{0.__class__}" | safe)'])  # str.format, Markup.format
def test_format_is_still_sandboxed(text):
    with pytest.raises(TemplateProblem, match="SecurityError: access to attribute '__class__'"):
        render(_macros("{{ " + text + ".format(patch) }}"), {"patch": "x"})


def test_a_prompt_over_the_cap_is_refused():
    with pytest.raises(TemplateProblem, match=r"the user prompt is 8,000,001 characters, over 8,000,000"):
        render(_macros("{{ patch }}"), {"patch": "x" * 8_000_001})
    assert render(_macros("{{ patch }}"), {"patch": "x" * 1000})[1]["content"] == "x" * 1000


def test_a_huge_constant_is_a_clear_error_at_load_quickly_and_without_gigabytes(tmp_path):
    # jinja folds constants when it compiles: `"a" * 2000000000` was built then (7.5 GB for `rubric check`)
    source = (
        (ROOT / "templates" / "grade.j2").read_text().replace("{% macro user() -%}", _USER + '{{ "a" * 2000000000 }}')
    )
    (tmp_path / "mine.j2").write_text(source)
    path = _rubric(tmp_path)
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(RubricError, match=r"templates.grade \(mine.j2\): rendering .* repetition \(`\*`\)"):
            load_rubric(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 10 and peak < 100_000_000


def test_a_branch_only_a_rollout_takes_is_bounded_at_scoring_an_error_of_that_rollout(make_local_scorer, tmp_path):
    """Trial renders never take it; the rollout that does gets a template error, the others their rewards."""
    trigger = '{% if "TRIGGER" in final_answer %}{{ final_answer * 300000000 }}{% endif %}'
    source = (ROOT / "templates" / "grade.j2").read_text().replace("{% macro user() -%}", _USER + trigger)
    (tmp_path / "mine.j2").write_text(source)
    rubric = load_rubric(_rubric(tmp_path), overrides=["penalties.too_long=null"])  # loads: the branch is not taken
    big = "<final_answer>" + "y" * 8_100_000 + "</final_answer>"  # a prompt past the cap
    (result,) = _score(
        make_local_scorer(rubric), ["<final_answer>TRIGGER</final_answer>", big, "<final_answer>ok</final_answer>"]
    )
    hit, huge, fine = result.rollouts
    assert hit.status == "error" and hit.error is not None and hit.error.category == "template_error"
    assert "repetition" in hit.error.message
    assert huge.status == "error" and huge.error is not None and huge.error.category == "template_error"
    assert "characters, over 8,000,000" in huge.error.message
    assert fine.status == "ok" and fine.reward is not None


_USER = "{% macro user() -%}"


def _rubric(tmp_path: Path) -> Path:
    """execution_subagent with its grading template mine.j2 (next to it)."""
    text = (ROOT / "rubrics" / "execution_subagent.yaml").read_text()
    assert "grade: grade.j2}" in text
    path = tmp_path / "mine.yaml"
    path.write_text(text.replace("grade: grade.j2}", "grade: mine.j2}"))
    return path


def _score(scorer, finals: list[str]) -> list[GroupResult]:
    g = Group.model_validate(
        {
            "group_id": "g",
            "query": "q",
            "reference": {"plan": "EXECUTION PLAN"},
            "rollouts": [
                {"id": f"r{i}", "steps": [{"command": "ls"}], "final_answer": f} for i, f in enumerate(finals)
            ],
        }
    )

    async def go() -> list[GroupResult]:
        try:
            return [await scorer.score_group(g, Usage())]
        finally:
            await scorer.aclose()

    return asyncio.run(go())
