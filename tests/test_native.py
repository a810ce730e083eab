import pytest

from reward.native import NativeFormatError, parse_tool_result, steps_from_messages, steps_from_text
from reward.trajectory import Step
from tests.conftest import example_groups
from tests.native_forms import as_messages, as_text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("3 passed\nExit code: 0", ("3 passed", 0)),
        ("3 passed\nexit_code=2\n", ("3 passed", 2)),
        ("[exit code: 127]\nbash: x: not found", ("bash: x: not found", 127)),
        ("boom\nCommand exited with code 1", ("boom", 1)),
        ("boom\nProcess exited with code 101.", ("boom", 101)),
        ("boom\n<exit_code>-9</exit_code>", ("boom", -9)),
        ('{"output": "ok", "exit_code": 0}', ("ok", 0)),
        ('{"stdout": "ok\\n", "stderr": "warn", "returncode": 3}', ("ok\nwarn", 3)),
        ("plain output", ("plain output", None)),
        ("exit code is mentioned: 1 in prose", ("exit code is mentioned: 1 in prose", None)),
        ([{"type": "text", "text": "a\n"}, {"type": "text", "text": "Exit code: 4"}], ("a", 4)),
    ],
)
def test_exit_code_forms(content, expected):
    assert parse_tool_result(content) == expected


def test_explicit_exit_code_field_wins():
    assert parse_tool_result("out\nExit code: 1", exit_code=0) == ("out\nExit code: 1", 0)


def test_messages_and_text_recover_the_same_steps_as_given():
    g = example_groups()[1]  # npm: several commands, ANSI, progress bars
    for r in g["rollouts"]:
        expected = [Step(**s) for s in r["steps"]]
        for style in ("line", "json"):
            steps, final = steps_from_messages(as_messages(g["query"], r, style))
            assert [(s.command, s.exit_code, s.output) for s in steps] == [
                (s.command, s.exit_code, s.output) for s in expected
            ]
            assert final == r["final_answer"].strip()
        steps, final = steps_from_text(as_text(g["query"], r))
        assert [(s.command, s.exit_code) for s in steps] == [(s.command, s.exit_code) for s in expected]
        assert [s.output.strip() for s in steps] == [s.output.strip() for s in expected]
        assert final == r["final_answer"].strip()


def test_text_ignores_tool_call_examples_in_the_prompt():
    text = as_text("q", {"steps": [], "final_answer": "<final_answer>none</final_answer>"})
    assert steps_from_text(text) == ([], "<final_answer>none</final_answer>")


def test_response_only_text_and_think_blocks():
    text = '<think>plan</think><tool_call>\n{"name": "run_in_terminal", "arguments": {"command": "ls"}}\n</tool_call>\n<tool_response>\na.txt\n</tool_response>\n<think>done</think><final_answer>a.txt</final_answer>'
    steps, final = steps_from_text(text)
    assert [(s.command, s.output) for s in steps] == [("ls", "a.txt")]
    assert final == "<final_answer>a.txt</final_answer>"


def test_tool_calls_to_other_tools_only_is_an_error():
    msgs = [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "read_file", "arguments": "{}"}}]}]
    with pytest.raises(NativeFormatError, match="run_in_terminal"):
        steps_from_messages(msgs)
    with pytest.raises(NativeFormatError):
        steps_from_text('<tool_call>{"name": "run_in_terminal", "arguments": "not json"}</tool_call>')


def test_configurable_tool_name_and_tool_messages_without_ids():
    msgs = [
        {"role": "assistant", "tool_calls": [{"function": {"name": "bash", "arguments": {"command": "make"}}}]},
        {"role": "tool", "name": "bash", "content": "done\nExit code: 0"},
        {"role": "assistant", "content": "<final_answer>built</final_answer>"},
    ]
    steps, _ = steps_from_messages(msgs, tool="bash")
    assert [(s.command, s.exit_code, s.output) for s in steps] == [("make", 0, "done")]


def test_no_tool_calls_at_all_is_a_rollout_without_commands():
    steps, final = steps_from_messages([{"role": "assistant", "content": "<final_answer>I did nothing</final_answer>"}])
    assert steps == [] and final == "<final_answer>I did nothing</final_answer>"
