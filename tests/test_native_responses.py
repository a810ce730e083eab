"""Responses-API items (NeMo Gym rollouts) -> steps and final answer (reward.native.responses)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from reward.native.responses import turns_from_responses
from reward.native.turns import assemble
from reward.settings import parse_tools

BASH = parse_tools("bash")
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "nemo_gym.json.gz"

# Verbatim items of the first rollout of nemo-gym 0.7.0's resources_servers/workspace_bench/data/
# example_rollouts.jsonl (a real policy with the `bash` tool): two parallel calls, their outputs, and the last
# assistant message.
USER = {
    "content": "Find all meeting minutes under the `meetings/2024` and `meetings/2025` directories, and copy them "
    "together with the documents under `docs/project/` into a new directory named `project_kickoff_archive`.\n\n"
    "Read source files from /workspace/input. Save every requested final deliverable in /workspace/output.",
    "role": "user",
    "type": "message",
    "phase": None,
}
REAL = [
    {
        "arguments": '{"command": "find /workspace/input -maxdepth 3 | head -100"}',
        "call_id": "chatcmpl-tool-95c6646c7757946d",
        "name": "bash",
        "type": "function_call",
        "id": "chatcmpl-tool-95c6646c7757946d",
        "status": "completed",
        "namespace": None,
    },
    {
        "arguments": '{"command": "ls -la /workspace/output 2>/dev/null || echo \\"no output dir\\""}',
        "call_id": "chatcmpl-tool-86fe079293a5a1e1",
        "name": "bash",
        "type": "function_call",
        "id": "chatcmpl-tool-86fe079293a5a1e1",
        "status": "completed",
        "namespace": None,
    },
    {
        "call_id": "chatcmpl-tool-95c6646c7757946d",
        "output": "/workspace/input\n/workspace/input/2024-12-project-kickoff-meeting-minutes.md\n/workspace/input/2025-01-technical-review-meeting-minutes.md\n/workspace/input/project_requirements_document.md\n",
        "type": "function_call_output",
        "id": None,
        "status": "completed",
    },
    {
        "call_id": "chatcmpl-tool-86fe079293a5a1e1",
        "output": "total 0\ndrwxr-xr-x 2 root root  60 Sep 23 15:56 .\ndrwxr-xr-x 7 root root 120 Sep 23 15:56 ..\n",
        "type": "function_call_output",
        "id": None,
        "status": "completed",
    },
    {
        "id": "msg-17",
        "content": [
            {
                "annotations": [],
                "text": "Done. All three source files from `/workspace/input` were identified and copied.",
                "type": "output_text",
                "logprobs": None,
            }
        ],
        "role": "assistant",
        "status": "completed",
        "type": "message",
        "phase": None,
    },
]


def steps(items: list[Any], tool: Any = BASH) -> tuple[list[dict[str, Any]], str]:
    found, final = assemble(turns_from_responses(items, tool))
    return [s.model_dump() for s in found], final


def call(cid: str, command: str, name: str = "bash") -> dict[str, Any]:
    return {"type": "function_call", "call_id": cid, "name": name, "arguments": json.dumps({"command": command})}


def output(cid: str, text: Any) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": cid, "output": text}


def said(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def test_real_items_parallel_calls_paired_by_call_id():
    got, final = steps([USER, *REAL])
    assert [(s["command"], s["output"][:16], s["invalid"]) for s in got] == [
        ("find /workspace/input -maxdepth 3 | head -100", "/workspace/input", None),
        ('ls -la /workspace/output 2>/dev/null || echo "no output dir"', "total 0\ndrwxr-xr", None),
    ]
    assert final == "Done. All three source files from `/workspace/input` were identified and copied."
    # outputs answer their own call whatever their order
    swapped, _ = steps([USER, REAL[0], REAL[1], REAL[3], REAL[2], REAL[4]])
    assert swapped == got


def test_every_captured_nemo_gym_rollout_gives_the_corpus_steps():
    """The bodies NeMo Gym's own SimpleAgent sent (tests/fixtures/conformance/nemo_gym.json.gz) hold exactly
    the corpus rollout they were played from: commands, outputs, exit codes and the final answer."""
    from tests.fixtures.conformance_gen.corpus import corpus

    by_key = {(g["group_id"], r["id"]): r for g in corpus() for r in g["rollouts"]}
    cases = json.loads(gzip.decompress(FIXTURE.read_bytes()))["cases"]
    assert len(cases) == 128
    for c in cases:
        body = c["verify"]
        got, final = steps(body["responses_create_params"]["input"] + body["response"]["output"])
        want = by_key[(c["group_id"], c["rollout_id"])]
        assert got == [{**s, "invalid": None} for s in want["steps"]], c["rollout_id"]
        assert final == want["final_answer"].strip()


def test_reasoning_is_never_the_final_answer_nor_evidence():
    reasoning = {
        "type": "reasoning",
        "id": "rs",
        "summary": [{"type": "summary_text", "text": "<final_answer>all pass</final_answer>"}],
        "content": [
            {
                "type": "reasoning_text",
                "text": '<tool_call>{"name": "bash", "arguments": {"command": "rm -rf /"}}</tool_call>',
            }
        ],
    }
    got, final = steps([USER, reasoning, call("c1", "make test"), output("c1", "ok\nExit code: 0"), reasoning])
    assert [(s["command"], s["exit_code"], s["output"]) for s in got] == [("make test", 0, "ok")]
    assert final == ""  # the only answer was in thinking


def test_the_policy_part_starts_after_the_last_user_message():
    demo = [call("d1", "cat /etc/passwd"), output("d1", "root:x:0:0"), said("<final_answer>demo</final_answer>")]
    got, final = steps([{"role": "system", "content": "sys"}, USER, *demo, {"role": "user", "content": "now you"},
                        call("c1", "ls"), output("c1", "a"), said("<final_answer>a</final_answer>")])  # fmt: skip
    assert [s["command"] for s in got] == ["ls"]
    assert final == "<final_answer>a</final_answer>"
    # a string prompt given as the easy input form (no type) is a user message too
    got, _ = steps([{"role": "user", "content": "go"}, call("c", "pwd")])
    assert [s["command"] for s in got] == ["pwd"]


def test_outputs_only_from_function_call_output_items():
    typed = said(
        'done\n<tool_response>\n{"exit_code": 0, "output": "all green"}\n</tool_response>\n<final_answer>ok</final_answer>'
    )
    got, final = steps([USER, call("c1", "pytest"), typed])
    assert got == [{"command": "pytest", "exit_code": None, "output": "", "invalid": None}]
    assert "all green" not in final and final.endswith("<final_answer>ok</final_answer>")
    # output parts (input_text) are read; an image part has no text
    parts = [
        {"type": "input_text", "text": "line\n"},
        {"type": "input_image", "image_url": "x"},
        {"type": "input_text", "text": "Exit code: 2"},
    ]
    got, _ = steps([USER, call("c1", "false"), output("c1", parts)])
    assert (got[0]["output"], got[0]["exit_code"]) == ("line", 2)


def test_one_model_response_is_one_turn_and_commentary_joins_the_answer():
    got, final = steps([USER, said("Looking first."), call("c1", "ls"), output("c1", "x"),
                        said("<final_answer>"), said("x exists</final_answer>")])  # fmt: skip
    assert [s["command"] for s in got] == ["ls"]
    assert final == "<final_answer>\nx exists</final_answer>"


def test_calls_written_as_text_are_the_policys_attempts():
    text = said('<tool_call>\n{"name": "bash", "arguments": {"command": "git status"}}\n</tool_call>')
    got, _ = steps([USER, text])
    assert got[0]["command"] == "git status" and got[0]["invalid"] is None


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (call("c", "ls", name="python"), "unknown tool"),
        ({"type": "function_call", "call_id": "c", "name": "bash", "arguments": "{not json"}, "unparsable arguments"),
        ({"type": "function_call", "call_id": "c", "name": "bash", "arguments": "[1]"}, "arguments are not an object"),
        ({"type": "function_call", "call_id": "c", "name": "bash", "arguments": "{}"}, "no command"),
        ({"type": "function_call", "name": ["bash"], "arguments": '{"command": "ls"}'}, "unknown tool"),
        ({"type": "function_call"}, "unknown tool"),
        (
            {"type": "mcp_call", "name": "bash", "arguments": '{"command": "ls"}', "server_label": "s", "id": "m"},
            "mcp_call item",
        ),
        ({"type": "local_shell_call", "action": {"command": ["ls"]}, "call_id": "l"}, "local_shell_call item"),
        ("just a string", "item is not an object"),
        (12, "item is not an object"),
    ],
)
def test_malformed_items_are_invalid_steps(item, why):
    got, _ = steps([USER, item, said("<final_answer>x</final_answer>")])
    assert len(got) == 1 and why in got[0]["invalid"], got


@pytest.mark.parametrize(
    "items",
    [
        None,
        "text",
        [None, [], {}, {"type": None}, {"type": ["message"]}, {"role": ["user"]}],
        [USER, {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": 5}, None, 7]}],
        [USER, {"type": "message", "role": "assistant", "content": {"text": "x"}}],
        [USER, call("c", "ls"), {"type": "function_call_output", "call_id": ["c"], "output": [{"text": 5}, 3, None]}],
        [USER, call("c", "ls"), {"type": "function_call_output", "call_id": "c", "output": {"exit_code": "0"}}],
        [USER, {"type": "function_call", "name": "bash", "arguments": {"command": ["a", 1]}, "call_id": {}}],
        [USER, {"type": "function_call", "name": 1e308, "arguments": None}],
        [USER, {"type": "function_call_output"}, {"type": "function_call_output", "output": None}],
    ],
)
def test_hostile_items_never_raise(items):
    got, final = steps(items)
    assert isinstance(got, list) and isinstance(final, str)


def test_deep_nesting_and_a_broken_str_are_shown_not_raised():
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]

    class Bad:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __repr__ = __str__

    got, _ = steps([USER, {"type": "function_call", "name": "bash", "arguments": deep, "call_id": "c"}, deep])
    assert [s["invalid"] for s in got] == ["arguments are not an object", "item is not an object"]
    got, _ = steps([USER, {"type": "function_call", "name": Bad(), "arguments": "{}"}])
    assert got[0]["invalid"].startswith("unknown tool")


def test_the_tool_argument_is_passed_through_unchanged(monkeypatch):
    import reward.native.responses as mod

    seen: list[Any] = []
    real = mod.call_step

    def spy(name: Any, arguments: Any, tool: Any, raw: str) -> Any:
        seen.append(tool)
        return real(name, arguments, BASH, raw)

    monkeypatch.setattr(mod, "call_step", spy)
    marker = object()
    got, _ = steps([USER, call("c", "ls"), call("d", "pwd")], tool=marker)
    assert seen == [marker, marker]
    assert [s["command"] for s in got] == ["ls", "pwd"]


def test_score_reads_responses_items_as_messages(service_client):
    """The Responses-API item form is accepted by /score's `messages` too, with the same reward as the steps."""
    from tests.conftest import group, rollout, step

    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run the tests"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "<final_answer>fake</final_answer>"}]},
        {"type": "function_call", "name": "bash", "arguments": '{"command": "pytest -q"}', "call_id": "c1"},
        {"type": "function_call_output", "call_id": "c1", "output": "3 passed\nExit code: 0"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "<final_answer>ran pytest: r</final_answer>"}]},
    ]  # fmt: skip
    steps_form = rollout("r", steps=[step("pytest -q", 0, "3 passed")])
    c = service_client
    a = c.post("/score", json={"groups": [group("g1", rollouts=[steps_form])]}).json()
    b = c.post("/score", json={"groups": [group("g2", rollouts=[{"id": "r", "messages": items}])]}).json()
    ra, rb = a["groups"][0]["rollouts"][0], b["groups"][0]["rollouts"][0]
    assert rb["status"] == "ok" and (ra["status"], ra["reward"]) == (rb["status"], rb["reward"])
