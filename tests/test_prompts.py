import jinja2
import pytest

from reward.core.trajectory import Step, Trajectory, condense_input
from reward.rubric.prompts import TemplateProblem, condense_messages, grade_messages, render


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
