"""Start `reward serve` as a real process (uvicorn on 127.0.0.1) against the fake judge."""

from __future__ import annotations

import functools
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nofile(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


class ServerProcess:
    def __init__(self, env: dict[str, str], *args: str, nofile: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reward", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=None if nofile is None else functools.partial(_nofile, nofile),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"reward serve exited {self.proc.returncode}:\n{self.proc.stdout.read()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("reward serve did not become healthy")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


def server_env(base: dict[str, str], judge_url: str, cache: Path, **extra: str) -> dict[str, str]:
    env = dict(base or os.environ)
    env.update(
        {
            "REWARD_JUDGE_MODEL": "openai/test-judge",
            "REWARD_JUDGE_API_BASE": judge_url,
            "REWARD_JUDGE_API_KEY": "sk-test",
            "REWARD_CACHE_DIR": str(cache),
            **extra,
        }
    )
    return env
