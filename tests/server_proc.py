"""Start `reward serve` as a real process (uvicorn on 127.0.0.1) against the fake judge."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BANNER = re.compile(r" on http://127\.0\.0\.1:(\d+) \(")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port that refuses connections for as long as the block runs: bound here but never listening, so
    no other process can take it (a port merely found free may be another test's server a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def _nofile(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _as_a_terminal_starts_it() -> None:
    # pytest run as a background job hands its children an ignored SIGINT: a server started that way could
    # not be tested for Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ServerProcess:
    def __init__(self, env: dict[str, str], *args: str, nofile: int | None = None, sigint: bool = False) -> None:
        # Port 0: the server binds a free port itself and names it in its banner. A port picked here and
        # handed over would be free only until another xdist worker's server or client took it.
        self.port = 0
        self.url = ""
        # A file, not a pipe: nobody reads a pipe while tests run, and an access line per request fills its
        # 64 KB buffer after a few hundred requests, blocking the server in its next log write.
        self.log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reward", "serve", "--port", "0", *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            # preexec_fn only where a test needs it: it is unsafe in a process with threads (test_replicas).
            preexec_fn=functools.partial(_nofile, nofile) if nofile else _as_a_terminal_starts_it if sigint else None,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"reward serve exited {self.proc.returncode}:\n{self.output()}")
            if not self.port:
                served = BANNER.search(self.output())
                if served is None:
                    time.sleep(0.1)
                    continue
                self.port = int(served.group(1))
                self.url = f"http://127.0.0.1:{self.port}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"reward serve did not become healthy:\n{self._output}")

    def output(self) -> str:
        # pread, not seek+read: the server writes through the same open file, so moving its offset here
        # would make it write over what it wrote before.
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")

    def stop(self) -> str:
        if self.log.closed:  # stopped already (a test killed it, then its fixture stops it)
            return self._output
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._output = self.output()
        self.log.close()
        return self._output


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
