"""Every invalid variable reported at once, each named, in one line, before anything starts (ports included)."""

from __future__ import annotations

import pytest

from reward.errors import ConfigError
from reward.settings import Settings
from tests.conftest import run_cli

BAD = {"REWARD_PORT": "-3", "REWARD_JUDGE_CONCURRENCY": "abc", "REWARD_JUDGE_TIMEOUT": "soon"}


def test_all_problems_in_one_message():
    with pytest.raises(ConfigError) as info:
        Settings.from_env(BAD)
    message = str(info.value)
    assert "\n" not in message
    assert "REWARD_PORT must be a port number, 0 to 65535, got '-3'" in message
    assert "REWARD_JUDGE_CONCURRENCY must be an integer, got 'abc'" in message  # not "a int"
    assert "REWARD_JUDGE_TIMEOUT must be a number, got 'soon'" in message


@pytest.mark.parametrize("port", ["65536", "1e9", "-1"])
def test_port_range(port):
    with pytest.raises(ConfigError, match="REWARD_PORT"):
        Settings.from_env({"REWARD_PORT": port})
    assert Settings.from_env({"REWARD_PORT": "0"}).port == 0  # any free port


@pytest.mark.parametrize("command", [["env"], ["serve"]])
def test_commands_refuse_in_one_line_without_a_traceback(command):
    ran = run_cli(*command, env={**BAD, "PATH": "/usr/bin:/bin"}, check=False)
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr and "OverflowError" not in ran.stderr
    assert "REWARD_PORT" in ran.stderr
    if command == ["env"]:
        assert "REWARD_JUDGE_CONCURRENCY" in ran.stderr  # both, not only the first
