"""`reward serve` as a command: configuration errors, the flagged fallback, the Docker entrypoint."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, group, rollout, step
from tests.server_proc import ServerProcess, free_port, server_env


def test_serve_without_a_judge_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARD_", "OPENAI_"))}
    env["REWARD_CACHE_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "reward", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "no judge is configured" in proc.stderr and "--fake-judge" in proc.stderr


def test_serve_with_an_invalid_rubric_refuses_to_start(tmp_path, fake_judge):
    (tmp_path / "bad.yaml").write_text("name: bad\nreward_scale: -1\n")
    env = server_env(dict(os.environ), fake_judge.api_base, tmp_path / "c")
    proc = subprocess.run(
        [sys.executable, "-m", "reward", "serve", "--rubric-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "bad.yaml" in proc.stderr and "reward_scale" in proc.stderr


def test_explicit_fallback_is_flagged(tmp_path, fake_judge):
    env = server_env(dict(os.environ), fake_judge.api_base, tmp_path / "c")
    server = ServerProcess(env, "--judge-error-fallback", "-100")
    try:
        g = group("fb", rollouts=[rollout("x", steps=[step("make unique-fallback")])])
        fake_judge.script({"kind": "condense", "status": 400})
        body = {
            "prompt": "p",
            "response": "<tool_call>\n"
            + json.dumps({"name": "run_in_terminal", "arguments": {"command": "make unique-fallback"}})
            + "\n</tool_call>\n<tool_response>\nok\n</tool_response>\n<final_answer>done</final_answer>",
            "label": {"reference": {"plan": "EXECUTION PLAN"}, "query": g["query"]},
        }
        out = httpx.post(f"{server.url}/slime", json=body, timeout=30).json()
        assert out["reward"] == -100.0 and out["reward_fallback"] is True and out["status"] == "error"
    finally:
        server.stop()


def test_dockerfile_entrypoint_and_healthcheck_work_as_written(tmp_path, fake_judge):
    """No Docker engine here: run the Dockerfile's ENTRYPOINT/CMD and HEALTHCHECK commands directly."""
    text = (ROOT / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    health = re.search(r"^HEALTHCHECK .*CMD (.*)$", text, re.M).group(1)
    assert entry[:2] == ["reward", "serve"]
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the image must not run as root"
    env = server_env(dict(os.environ), fake_judge.api_base, tmp_path / "c")
    env.update({k: v for k, v in re.findall(r"^ENV (REWARD_\w+)=(\S+)", text, re.M) if k != "REWARD_CACHE_DIR"})
    env["REWARD_PORT"] = str(free_port())  # the image's port may be taken on this machine
    env["REWARD_HOST"] = "127.0.0.1"
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(entry, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(150):
            check = subprocess.run(health, shell=True, env=env, timeout=10)
            if check.returncode == 0:
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        assert check.returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_listening_beyond_loopback_without_a_token_is_warned():
    from reward.cli.serve import exposure_warning

    for host in ("0.0.0.0", "::", "10.0.0.5", "reward.internal", ""):
        assert "REWARD_TOKENS" in exposure_warning(host, ())
    assert "listening on every interface" in exposure_warning("", ())
    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        assert exposure_warning(host, ()) is None
    assert exposure_warning("0.0.0.0", ("tok",)) is None


def test_the_banner_spells_an_ipv6_host_as_a_url_does():
    from reward.cli.serve import url_host

    hosts = ("::", "[::1]", "0.0.0.0", "localhost", "")
    assert [url_host(h) for h in hosts] == ["[::]", "[::1]", "0.0.0.0", "localhost", "0.0.0.0"]
