"""A real Redis server (the `redis-server` binary) on 127.0.0.1 on a free port, for the shared-cache tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.server_proc import free_port


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("REWARD_REQUIRE_SERVICES") == "1":  # CI installs it (.ci/run): a failure there
            raise RuntimeError("redis-server is required here (REWARD_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.fixed = port is not None  # a port asked for is the port served, or no start
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        # A free port picked here may be taken by another xdist worker before redis binds it: then this
        # redis exits, and a ping could even reach the other one. Only our own process (by pid) counts.
        for _ in range(1 if self.fixed else 5):
            if self._start_once():
                self.fixed = True  # a restart (an outage and back) comes back where the clients point
                return self
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _start_once(self) -> bool:
        import redis

        proc = self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).info("server")["process_id"] == proc.pid:
                    return True
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.stop()
        return False

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
