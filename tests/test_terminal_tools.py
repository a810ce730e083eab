"""Terminal tool recognition: the surveyed harness names count by default, a declared name replaces them, and
a rollout whose tool calls named no terminal tool carries a warning, so "no commands" never comes silently
from a name mismatch (TRL's HarborBashEnv and verifiers' BashHarness call their tool `bash`)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from reward.adapters import trl as trl_adapter
from reward.adapters.client import RewardClient
from reward.errors import ConfigError
from reward.native import TERMINAL_TOOL_SURVEY, steps_from_messages, steps_from_text, unmatched_tools
from reward.settings import DEFAULT_TERMINAL_TOOLS, Settings, parse_tools
from tests.conftest import group, rollout, run_cli


def chat(name: str, arguments: object, output: str = "3 passed\nExit code: 0") -> list[dict]:
    return [
        {"role": "user", "content": "run the tests"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": output},
        {"role": "assistant", "content": "<final_answer>3 passed</final_answer>"},
    ]  # fmt: skip


@pytest.mark.parametrize("name", list(TERMINAL_TOOL_SURVEY))
def test_every_surveyed_name_is_a_terminal_tool_by_default(name):
    steps, final = steps_from_messages(chat(name, json.dumps({"command": "pytest -q"})))
    assert [(s.command, s.exit_code, s.output, s.invalid) for s in steps] == [("pytest -q", 0, "3 passed", None)]
    assert final == "<final_answer>3 passed</final_answer>"


def test_bash_harness_in_chat_text_is_read_by_default():
    text = (
        '<tool_call>\n{"name": "bash", "arguments": {"command": "make"}}\n</tool_call>\nuser\n'
        "<tool_response>\nok\nExit code: 2\n</tool_response>\nassistant\n<final_answer>make failed</final_answer>"
    )
    steps, _ = steps_from_text(text)
    assert [(s.command, s.exit_code, s.invalid) for s in steps] == [("make", 2, None)]


@pytest.mark.parametrize(
    ("name", "arguments", "command"),
    [
        ("shell", {"command": ["bash", "-lc", "cd src && make"]}, "cd src && make"),  # Codex: a script in argv
        ("shell", {"command": ["ls", "-la", "my dir"]}, "ls -la 'my dir'"),  # plain argv: quoted as a shell would
        ("exec_command", {"cmd": "pytest -x"}, "pytest -x"),  # Codex unified exec
        ("execute_bash", {"cmd": "git status"}, "git status"),  # R2E-Gym
        ("run_in_terminal", {"command": "ls", "cmd": "rm -rf /"}, "ls"),  # `command` wins
    ],
)
def test_command_argument_shapes(name, arguments, command):
    steps, _ = steps_from_messages(chat(name, arguments))
    assert steps[0].invalid is None and steps[0].command == command


@pytest.mark.parametrize(
    "arguments",
    [{"command": ["ls", 3]}, {"command": []}, {"command": {"x": 1}}, {"cmd": None}, {"command": "   "}],
)
def test_malformed_command_arguments_are_behaviour_not_commands(arguments):
    steps, _ = steps_from_messages(chat("bash", arguments))
    assert steps[0].invalid == "no command"


def test_a_declared_name_replaces_the_defaults_and_matches_exactly():
    msgs = chat("run_in_terminal", {"command": "ls"})
    steps, _ = steps_from_messages(msgs, tool="my_shell")
    assert steps[0].invalid is not None and steps[0].invalid.startswith("unknown tool 'run_in_terminal'")
    assert "'my_shell'" in steps[0].invalid
    assert steps_from_messages(chat("my_shell", {"command": "ls"}), tool="bash,my_shell")[0][0].invalid is None
    # case matters: `Bash` (Claude Code) is surveyed, `BASH` is not a harness's name
    assert steps_from_messages(chat("BASH", {"command": "ls"}))[0][0].invalid is not None


def test_unmatched_tools_only_when_no_call_was_a_terminal_call():
    other, _ = steps_from_messages(chat("python_exec", {"code": "print(1)"}))
    assert unmatched_tools(other) == ["'python_exec'"]
    weird, _ = steps_from_messages(chat('it\'s "odd"', {}))
    assert unmatched_tools(weird) == [repr('it\'s "odd"')]
    mixed, _ = steps_from_messages(chat("python_exec", {}) + chat("bash", {"command": "ls"})[1:])
    assert unmatched_tools(mixed) is None  # one real command: the unknown call is just behaviour
    broken, _ = steps_from_messages(chat("bash", "{not json"))
    assert unmatched_tools(broken) is None  # the right tool, badly called: the policy's fault
    assert unmatched_tools([]) is None


@pytest.mark.parametrize("bad", ["", " , ", [], ["bash", 3], ["x" * 201]])
def test_bad_declarations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_tools(bad)


def test_environment_variable():
    assert Settings.from_env({"REWARD_TERMINAL_TOOL": " bash , my_shell,bash"}).terminal_tool == ("bash", "my_shell")
    assert Settings.from_env({}).terminal_tool == DEFAULT_TERMINAL_TOOLS
    with pytest.raises(ConfigError, match="REWARD_TERMINAL_TOOL"):
        Settings.from_env({"REWARD_TERMINAL_TOOL": ",,"})


# --- through the service ----------------------------------------------------------------------------


@pytest.fixture
def client(service_client):
    return service_client


def other_tool_group() -> dict:
    rollouts = [
        {"id": "py", "messages": chat("python_exec", {"command": "pytest -q"})},
        {"id": "bash", "messages": chat("bash", {"command": "pytest -q"})},
    ]
    return group("tools", rollouts=rollouts)


def test_a_name_mismatch_is_loud_in_the_rollout_and_the_metrics(client):
    resp = client.post("/score", json={"groups": [other_tool_group()]})
    assert resp.status_code == 200, resp.text
    by_id = {r["id"]: r for r in resp.json()["groups"][0]["rollouts"]}
    assert by_id["py"]["penalty"] == "no_commands" and by_id["py"]["reward"] == -50
    assert "'python_exec'" in by_id["py"]["warnings"][0] and "terminal_tool" in by_id["py"]["warnings"][0]
    assert by_id["bash"]["status"] == "ok" and by_id["bash"]["warnings"] is None
    assert resp.json()["metrics"]["unmatched_tool_rate"] == 0.5


def test_per_request_declaration(client):
    resp = client.post("/score", json={"groups": [other_tool_group()], "terminal_tool": ["python_exec"]})
    by_id = {r["id"]: r for r in resp.json()["groups"][0]["rollouts"]}
    assert by_id["py"]["status"] == "ok" and by_id["py"]["warnings"] is None
    # declared: `bash` is no longer a terminal tool for this request
    assert by_id["bash"]["penalty"] == "no_commands" and by_id["bash"]["warnings"]
    bad = client.post("/score", json={"groups": [other_tool_group()], "terminal_tool": []})
    assert bad.status_code == 422 and "terminal_tool" in bad.text


def test_trainer_endpoints_take_the_name_as_a_query_parameter(client):
    messages = chat("python_exec", {"command": "pytest -q"})
    text = "".join(
        f"<tool_call>\n{json.dumps({'name': m['tool_calls'][0]['function']['name'], 'arguments': m['tool_calls'][0]['function']['arguments']})}\n</tool_call>"
        if m.get("tool_calls") else f"\nuser\n<tool_response>\n{m['content']}\n</tool_response>\nassistant\n"
        if m["role"] == "tool" else ""
        for m in messages[1:]
    ) + messages[-1]["content"]  # fmt: skip
    label = json.dumps({"reference": group()["reference"], "query": "Run pytest -q and report failures."})
    body = {"prompt": "run the tests", "response": text, "label": label}
    plain = client.post("/slime", json=body).json()
    assert plain["penalty"] == "no_commands"
    declared = client.post("/slime?terminal_tool=python_exec", json=body).json()
    assert declared["status"] == "ok" and declared["penalty"] is None
    bad = client.post("/slime?terminal_tool=,", json=body)
    assert bad.status_code == 422 and "terminal_tool" in bad.text
    orl = {"query": [f"user\nrun the tests\nassistant\n{text}"], "prompts": ["user\nrun the tests\nassistant\n"]}
    orl["labels"] = [label]
    got = client.post("/openrlhf?terminal_tool=python_exec", json=orl)
    assert got.status_code == 200, got.text
    assert got.json()["rewards"][0] == declared["reward"]


# --- trainer side -----------------------------------------------------------------------------------


def test_client_sends_the_declared_tools(monkeypatch):
    monkeypatch.delenv("REWARD_TERMINAL_TOOL", raising=False)
    assert "terminal_tool" not in RewardClient("http://x")._body([], None)  # the server decides
    assert RewardClient("http://x", terminal_tool="bash")._body([], None)["terminal_tool"] == ["bash"]
    assert RewardClient("http://x")._body([], None, "a,b")["terminal_tool"] == ["a", "b"]
    monkeypatch.setenv("REWARD_TERMINAL_TOOL", "my_shell")
    assert RewardClient("http://x")._body([], None)["terminal_tool"] == ["my_shell"]
    with pytest.raises(ValueError):
        RewardClient("http://x", terminal_tool=[])


def test_trl_reward_function_declares_the_tool(monkeypatch):
    seen = {}

    async def ascore(groups, rubric=None, terminal_tool=None):
        seen["terminal_tool"] = terminal_tool
        n = sum(len(g["rollouts"]) for g in groups)
        rollouts = [{"id": r["id"], "reward": 1.0, "status": "ok"} for g in groups for r in g["rollouts"]]
        return {"groups": [{"group_id": groups[0]["group_id"], "rollouts": rollouts}], "n": n}

    monkeypatch.setattr("reward.adapters.client._default", SimpleNamespace(ascore=ascore))
    fn = trl_adapter.reward_function(terminal_tool="bash", name="terminal_reward")
    assert fn.__name__ == "terminal_reward"
    out = asyncio.run(fn(prompts=["p"], completions=["c"], reference=[{"plan": "x"}], query=["q"]))
    assert out == [1.0] and seen["terminal_tool"] == ("bash",)
    with pytest.raises(ValueError):
        trl_adapter.reward_function(terminal_tool="")


def test_cli_flag_and_variable(tmp_path):
    line = group("g", rollouts=[{"id": "a", "messages": chat("python_exec", {"command": "ls"})}, rollout("b")])
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(line) + "\n")
    ran = run_cli("score", str(src), "-o", str(tmp_path / "o1.jsonl"), "--fake-judge", "--no-progress")
    first = json.loads((tmp_path / "o1.jsonl").read_text())["rollouts"][0]
    assert first["penalty"] == "no_commands" and first["warnings"]
    ran = run_cli(
        "score", str(src), "-o", str(tmp_path / "o2.jsonl"), "--fake-judge", "--no-progress",
        "--terminal-tool", "python_exec,bash",
    )  # fmt: skip
    assert json.loads((tmp_path / "o2.jsonl").read_text())["rollouts"][0]["status"] == "ok"
    ran = run_cli(
        "score", str(src), "-o", str(tmp_path / "o3.jsonl"), "--fake-judge", "--terminal-tool", ",", check=False
    )
    assert ran.returncode == 2 and "--terminal-tool" in ran.stderr
    ran = run_cli(
        "score", str(src), "-o", str(tmp_path / "o4.jsonl"), "--fake-judge", env={"REWARD_TERMINAL_TOOL": ","},
        check=False,
    )  # fmt: skip
    assert ran.returncode != 0 and "REWARD_TERMINAL_TOOL" in ran.stderr


def test_verl_and_art_pass_the_declared_tool_to_the_client(monkeypatch):
    from reward.adapters import verl as verl_adapter

    seen = []

    class Stop(Exception):
        pass

    async def ascore(groups, rubric=None, terminal_tool=None):
        seen.append(terminal_tool)
        raise Stop

    monkeypatch.setattr("reward.adapters.client._default", SimpleNamespace(ascore=ascore))
    label = json.dumps({"reference": {"plan": "p"}, "query": "q"})
    with pytest.raises(Stop):
        asyncio.run(verl_adapter.compute_score("terminal_subagent", "text", label, terminal_tool="my_shell"))
    with pytest.raises(Stop):
        asyncio.run(verl_adapter.compute_score("terminal_subagent", "text", label))
    assert seen == ["my_shell", None]
