import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from reward.native.subagent_calls import GROUP_FIELDS, ROLLOUT_FIELDS, cut_subagent_calls, main, query_of
from reward.rubric.prompts import fence, render

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "response_quality"


def call(id_, name, arguments):
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant(text, *calls):
    m = {"role": "assistant", "content": text}
    if calls:
        m["tool_calls"] = list(calls)
    return m


def tool(id_, content):
    return {"role": "tool", "tool_call_id": id_, "content": content}


def terminal_turn(i):
    c = call(f"t{i}", "terminal", json.dumps({"command": f"cmd {i}"}))
    return [assistant(f"step {i}", c), tool(f"t{i}", f"out {i}")]


def run(after_turns=7):
    """system, problem, 2 terminal turns, the subagent call, then `after_turns` terminal turns."""
    sub = call("s1", "execution_subagent", json.dumps({"query": "Run pytest tests/test_x.py and report failures"}))
    messages = [{"role": "system", "content": "SYSTEM PROMPT"}, {"role": "user", "content": "Fix the bug."}]
    messages += terminal_turn(1) + terminal_turn(2)
    messages += [assistant("delegating", sub), tool("s1", "<final_answer>2 failed</final_answer>")]
    for i in range(3, 3 + after_turns):
        messages += terminal_turn(i)
    return messages


def test_fields_are_cut_around_the_call():
    (r,) = cut_subagent_calls(run(), n_after=5)
    assert r["system_prompt"] == "SYSTEM PROMPT" and r["problem_statement"] == "Fix the bug."
    assert r["trajectory"] == (
        '[assistant] step 1\nterminal({"command": "cmd 1"})\n\n[tool terminal] out 1\n\n'
        '[assistant] step 2\nterminal({"command": "cmd 2"})\n\n[tool terminal] out 2\n\n'
        "[assistant] delegating"  # the calling message, without the call itself
    )
    assert r["subagent_query"] == "Run pytest tests/test_x.py and report failures"
    assert r["subagent_response"] == "<final_answer>2 failed</final_answer>"
    after = r["trajectory_after"]
    assert r["n_after"] == 5
    assert [f"step {i}" in after for i in range(3, 10)] == [True] * 5 + [False] * 2  # exactly 5 turns
    assert "[tool terminal] out 7" in after and "out 8" not in after  # each turn with its tool result
    assert "SYSTEM PROMPT" not in r["trajectory"] and "Fix the bug." not in r["trajectory"]


def test_fewer_turns_after_at_the_end_of_a_run():
    (r,) = cut_subagent_calls(run(after_turns=2), n_after=5)
    assert r["n_after"] == 2 and "step 3" in r["trajectory_after"] and "step 4" in r["trajectory_after"]
    (r,) = cut_subagent_calls(run(after_turns=0), n_after=5)
    assert r["n_after"] == 0 and r["trajectory_after"] == ""
    (r,) = cut_subagent_calls(run(), n_after=0)
    assert r["n_after"] == 0 and r["trajectory_after"] == ""


def test_response_is_matched_by_tool_call_id():
    # Two calls in one message, answered in reverse order: each gets its own answer, and the other call's
    # answer opens the turns after (uncounted).
    a = call("a", "execution_subagent", json.dumps({"query": "QA"}))
    b = call("b", "execution_subagent", json.dumps({"query": "QB"}))
    messages = [
        {"role": "user", "content": "task"},
        assistant(None, a, b),
        tool("b", "answer B"),
        tool("a", "answer A"),
        assistant("next"),
    ]
    ra, rb = cut_subagent_calls(messages)
    assert (ra["subagent_query"], ra["subagent_response"]) == ("QA", "answer A")
    assert (rb["subagent_query"], rb["subagent_response"]) == ("QB", "answer B")
    assert ra["trajectory"] == '[assistant] execution_subagent({"query": "QB"})' and "QA" not in ra["trajectory"]
    assert ra["trajectory_after"] == "[tool execution_subagent] answer B\n\n[assistant] next"
    assert ra["n_after"] == rb["n_after"] == 1
    assert ra["system_prompt"] == ""  # no system message


def test_missing_tool_response_and_other_tools():
    messages = run()
    del messages[7]  # the subagent's answer
    (r,) = cut_subagent_calls(messages)
    assert r["subagent_response"] == "" and r["n_after"] == 5
    assert cut_subagent_calls(run(), tool_name="other_subagent") == []


@pytest.mark.parametrize(
    ("arguments", "query"),
    [
        ('{"query": "run it"', '{"query": "run it"'),  # not JSON: the raw arguments
        ('{"command": "ls"}', '{"command": "ls"}'),  # no such key
        ('["run it"]', '["run it"]'),  # not an object
        ('{"query": ["a", 1]}', '["a", 1]'),  # not a string
        ("[" * 100_000, "[" * 100_000),  # nested too deeply for the parser
        ({"query": "already parsed"}, "already parsed"),
        (None, "null"),
    ],
)
def test_malformed_arguments_never_crash(arguments, query):
    assert query_of(arguments, "query") == query
    messages = [{"role": "user", "content": "t"}, assistant("", call("x", "execution_subagent", arguments))]
    (r,) = cut_subagent_calls(messages, max_chars=10**6)
    assert r["subagent_query"] == query


def test_malformed_messages_are_rendered_not_raised():
    messages = [
        "not a message",
        {"role": "user", "content": "task"},
        {"role": "assistant", "tool_calls": "oops"},
        {"role": "assistant", "tool_calls": [None, {"function": "x"}, call("s", "execution_subagent", "{}")]},
        {"role": "tool", "content": None},
        {"role": "tool", "tool_call_id": ["s"], "content": "unhashable id"},
        {"role": "tool", "tool_call_id": "s", "content": "the answer"},
        {"role": "tool", "tool_call_id": "s", "content": "a second answer"},
        assistant("next", {"id": {"a": 1}, "function": {"name": "execution_subagent", "arguments": "{}"}}),
        {"role": "tool", "tool_call_id": None, "content": "no id"},
    ]
    r, r2 = cut_subagent_calls(messages)
    assert r["subagent_query"] == "{}" and r["subagent_response"] == "the answer"  # the first answer
    assert r["trajectory"] == "[assistant] ()"  # the call with no function
    assert r["trajectory_after"] == (
        "[tool]\n\n[tool] unhashable id\n\n[tool execution_subagent] a second answer\n\n"
        "[assistant] next\nexecution_subagent({})\n\n[tool] no id"
    )
    assert r2["subagent_response"] == "" and r2["trajectory_after"] == "[tool] no id"


def test_content_parts_and_cleaning():
    sub = call("s", "execution_subagent", '{"query": "q"}')
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "SYS "}, {"type": "text", "text": "PROMPT"}]},
        {"role": "user", "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}]},
        assistant([{"type": "text", "text": "thinking"}], sub),
        tool("s", [{"type": "text", "text": "\x1b[31mFAILED\x1b[0m test_a"}]),
    ]
    (r,) = cut_subagent_calls(messages)
    assert r["system_prompt"] == "SYS PROMPT" and r["problem_statement"] == "part one, part two"
    assert r["trajectory"] == "[assistant] thinking"
    assert r["subagent_response"] == "FAILED test_a"  # escape sequences removed


def test_long_texts_are_cut_in_the_middle():
    messages = run()
    messages[7]["content"] = "HEAD" + "x" * 50_000 + "TAIL"
    messages[0]["content"] = "SYS" + "y" * 10_000 + "END"
    (r,) = cut_subagent_calls(messages, max_chars=1_000, system_chars=100)
    resp = r["subagent_response"]
    assert resp.startswith("HEAD") and resp.endswith("TAIL") and "characters truncated" in resp
    assert len(resp) < 1_100
    assert r["system_prompt"].startswith("SYS") and r["system_prompt"].endswith("END")
    assert len(r["system_prompt"]) < 200


@pytest.mark.slow
def test_cli_reproduces_the_example_groups(tmp_path):
    out = tmp_path / "groups.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "reward.native.subagent_calls", str(EXAMPLES / "main_agent.jsonl"), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (EXAMPLES / "groups.jsonl").read_bytes()
    groups = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["group_id"] for g in groups] == [
        "marshmallow-timedelta/0",
        "httpx-copy-with/0",
        "click-bool-envvar/0",
        "click-bool-envvar/1",
        "vite-alias-build/0",
    ]
    assert [g["inputs"]["n_after"] for g in groups] == [5, 5, 5, 2, 5]
    assert all(g["rollouts"][0]["id"] == g["group_id"] for g in groups)


def test_cli_reports_bad_lines_and_goes_on(tmp_path, capsys):
    good = {"id": 7, "messages": run()}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"id": "x"}),
        json.dumps({"id": True, "messages": []}),
        "",
        json.dumps(good),
        "[1]",
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n")
    assert main([str(src), "-o", str(out), "--n-after", "1"]) == 1
    err = capsys.readouterr().err
    for n, why in [(2, "invalid JSON"), (3, "messages"), (4, "id"), (6, "duplicate run id"), (7, "JSON object")]:
        assert f"line {n}: " in err and why in err.split(f"line {n}: ")[1].split("\n")[0]
    (group,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert group["group_id"] == "7/0" and group["inputs"]["n_after"] == 1
    assert set(group["inputs"]) == {"system_prompt", "problem_statement", "trajectory", "subagent_query", "n_after"}
    assert set(group["rollouts"][0]["inputs"]) == {"subagent_response", "trajectory_after"}


def test_template_shows_every_field_fenced_and_every_dimension():
    spec = yaml.safe_load((ROOT / "rubrics" / "response_quality.yaml").read_text())
    group = json.loads((EXAMPLES / "groups.jsonl").read_text().splitlines()[0])
    inputs = {**group["inputs"], **group["rollouts"][0]["inputs"]}
    dims = [
        SimpleNamespace(name=d["name"], group=d["group"], description=d["description"], anchors=None, weight=1.0)
        for d in spec["dimensions"]
    ]
    variables = {
        **inputs,
        "dimensions": dims,
        "scale": SimpleNamespace(min=0.0, max=1.0, kind="number"),
        "groups": [SimpleNamespace(name="quality", title="RESPONSE QUALITY (higher is better)", description="")],
    }
    system, user = render((ROOT / "templates" / "response_quality.j2").read_text(), variables)
    for name, value in inputs.items():
        if name != "n_after":
            assert fence(value, name) in user["content"], name
    assert "## Subsequent Trajectory (5 turns after)" in user["content"]
    assert [d.name for d in dims] == [
        "task_completion",
        "factual_accuracy",
        "informativeness",
        "relevance",
        "actionability",
    ]
    for d in dims:
        assert f"{d.name}: {d.description}" in system["content"]
        assert (
            f'"{d.name}_reason"' in system["content"]
            and f'"{d.name}_score": a number from 0.0 to 1.0' in system["content"]
        )
    assert "Fig" not in system["content"] and "(0.0–1.0)" in system["content"]
    assert user["content"].endswith("assess whether the main agent effectively used it.")


FIGURE_7 = {
    "task_completion": "Did the subagent fully accomplish what was asked?",
    "factual_accuracy": "Is the response factually grounded and verifiable? (exit codes, paths, exact errors)",
    "informativeness": "Enough detail to proceed without re-running commands?",
    "relevance": "Focused on the query with no extraneous content?",
    "actionability": "Can the main agent determine clear next steps?",
}


def test_rubric_declares_figure_7_and_everything_its_template_uses():
    import jinja2
    from jinja2 import meta

    spec = yaml.safe_load((ROOT / "rubrics" / "response_quality.yaml").read_text())
    assert {d["name"]: d["description"] for d in spec["dimensions"]} == FIGURE_7
    assert all(d["group"] == "quality" and set(d["anchors"]) == {"low", "mid", "high"} for d in spec["dimensions"])
    inputs = {**spec["inputs"]["group"], **spec["inputs"]["rollout"]}
    assert set(inputs) == {*GROUP_FIELDS, *ROLLOUT_FIELDS} and inputs["n_after"]["type"] == "integer"
    assert (spec["formula"], spec["reward_scale"], spec["scale"]) == ("quality", 1, {"min": 0.0, "max": 1.0})
    source = (ROOT / "templates" / spec["templates"]["grade"]).read_text()
    env = jinja2.Environment()
    env.filters["data"] = fence
    used = meta.find_undeclared_variables(env.parse(source))
    assert used == set(inputs) | {"dimensions", "scale"}
