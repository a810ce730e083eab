"""`reward score` exit statuses tell the truth: a run in which the judge could not judge is never a 0."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli_env, group, read_jsonl, rollout
from tests.conftest import run_cli as reward


def write(tmp_path, groups):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in groups))
    return path


def test_every_judgement_failed_is_exit_5_naming_the_cause(fake_judge, tmp_path):
    src = write(tmp_path, [group("g1"), group("g2")])
    fake_judge.script(*[{"status": 401, "message": "Incorrect API key provided"}] * 100)
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", "--no-progress", env=cli_env(fake_judge, tmp_path / "c"), check=False)  # fmt: skip
    assert ran.returncode == 5, ran.stderr
    assert "no rollout could be judged (judge_auth 8)" in ran.stderr and "Incorrect API key" in ran.stderr
    assert all(r["status"] == "error" for g in read_jsonl(tmp_path / "o.jsonl") for r in g["rollouts"])


def test_some_failed_is_exit_4_unless_allowed(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "c")
    # one rollout of four fails: its grading call gets a 401 (the reference and other plans are fine)
    rollouts = [rollout("a"), rollout("b"), rollout("c"), rollout("d")]
    src = write(tmp_path, [group("g1", rollouts=rollouts)])
    fake_judge.script({"kind": "grade", "status": 401, "message": "key revoked"})
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", "--no-progress", env=env, check=False)
    assert ran.returncode == 4, ran.stderr
    assert "1 of 4 rollouts could not be judged (judge_auth 1)" in ran.stderr
    fake_judge.script({"kind": "grade", "status": 401, "message": "key revoked"})
    ran = reward("score", src, "-o", tmp_path / "o2.jsonl", "--no-progress", "--max-error-rate", "0.25", env=env, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr


def test_penalised_only_run_is_not_a_failure(fake_judge, tmp_path):
    src = write(tmp_path, [group("g1", rollouts=[rollout("a", steps=[]), rollout("b", final="no answer")])])
    fake_judge.script(*[{"status": 401, "message": "never asked"}] * 10)
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", "--no-progress", env=cli_env(fake_judge, tmp_path / "c"), check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr  # nothing needed the judge: every reward was computed


@pytest.mark.parametrize("rate", ["-0.1", "1.5", "x"])
def test_bad_threshold_is_a_usage_error(fake_judge, tmp_path, rate):
    src = write(tmp_path, [group("g1")])
    ran = reward("score", src, "-o", tmp_path / "o.jsonl", "--max-error-rate", rate, env=cli_env(fake_judge, tmp_path / "c"), check=False)  # fmt: skip
    assert ran.returncode == 2 and "--max-error-rate" in ran.stderr


SLOW_IMPORT = """
import importlib.abc, pathlib, signal, sys, time

signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal starts it (pytest may run in the background)
CUE = pathlib.Path(sys.argv[1])

class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "reward.cli.main":
            CUE.write_text("importing")  # the test's cue to press Ctrl-C
            try:
                time.sleep(3)
            except BaseException:  # as a library's broad except around an optional import does
                pass
        return None

sys.meta_path.insert(0, Slow())
sys.argv = ["reward", "--version"]
from reward.__main__ import run
run()
"""


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_status_130(tmp_path):
    """Importing the command line takes seconds on a loaded machine: a Ctrl-C then printed a traceback, or was
    swallowed by a library's broad except and the command ran on (a CI run saw `rescore` finish with 0)."""
    import signal
    import subprocess
    import sys
    import time

    cue = tmp_path / "cue"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_IMPORT, str(cue)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not cue.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cue.exists(), proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and " ".join(err.split()).startswith("interrupted: what was finished is saved")
    assert out == ""  # `--version` never ran


def test_ctrl_c_ignored_at_start_stays_ignored_between_steps():
    """A command started ignoring SIGINT (nohup, a background job) is not made interruptible halfway."""
    import os
    import signal

    from reward.cli.console import interrupt_between_steps

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt_between_steps() as step:
            os.kill(os.getpid(), signal.SIGINT)
            step()  # nothing pressed that counts
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
