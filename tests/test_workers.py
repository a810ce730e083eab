"""`reward serve --workers N`: one SO_REUSEPORT socket per worker, replaced when killed, clean shutdown;
and the settled heap (gc frozen after start-up)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.server_proc import ServerProcess, server_env


def listeners(port: int) -> list[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp{,6}."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                out.append(f[9])
    return out


def children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def wait_for(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_two_workers_listen_on_their_own_sockets_and_a_killed_one_is_replaced(tmp_path, fake_judge):
    srv = ServerProcess(server_env({}, fake_judge.api_base, tmp_path / "cache"), "--workers", "2")
    try:
        assert wait_for(lambda: len(listeners(srv.port)) == 2)  # one socket per worker, not one shared
        workers = [p for p in children(srv.proc.pid) if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()]  # noqa: SIM115
        assert len(workers) == 2 and len(set(listeners(srv.port))) == 2
        for _ in range(8):  # new connections each: both workers serve
            assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: victim not in children(srv.proc.pid) and len(listeners(srv.port)) == 2)
        assert wait_for(lambda: httpx.get(f"{srv.url}/readyz", timeout=10).status_code == 200)
        ours = set(listeners(srv.port))
    finally:
        out = srv.stop()
    assert srv.proc.returncode == 0, out
    # Our sockets, by inode, are all closed (the freed port itself may already be another test's).
    assert ours and not ours & set(listeners(srv.port))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use_is_a_clear_error(tmp_path, fake_judge, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env({}, fake_judge.api_base, tmp_path / "cache")
        proc = subprocess.run(
            [sys.executable, "-m", "reward", "serve", "--workers", workers, "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_is_a_clean_stop(tmp_path, fake_judge, workers, sig):
    srv = ServerProcess(server_env({}, fake_judge.api_base, tmp_path / "cache"), "--workers", workers, sigint=True)
    try:
        srv.proc.send_signal(sig)
        code = srv.proc.wait(timeout=60)
    finally:
        out = srv.stop()
    assert code == 0, out


def test_heap_settled_after_start_up():
    code = (
        "import gc, reward.judge.llm; from reward.service.workers import settle_heap, GC_THRESHOLDS; settle_heap(); "
        "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count(); assert gc.get_threshold() == GC_THRESHOLDS"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_bind_takes_every_address_on_one_port_and_fails_clearly():
    from reward.errors import ConfigError
    from reward.service.workers import _bind, _close

    socks = _bind("", 0)  # every interface, as asyncio binds "": 0.0.0.0 and, where there is IPv6, ::
    try:
        assert {s.family for s in socks} >= {socket.AF_INET}
        assert len({s.getsockname()[1] for s in socks}) == 1  # port 0 resolved once, for every address
        for s in socks:
            if s.family == socket.AF_INET6:  # as asyncio: "::" does not also take the IPv4 port
                assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        _close(socks)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            _bind("127.0.0.1", port)
    with pytest.raises(ConfigError, match=r"cannot listen on \[::1\]:8000"):  # a host no resolver knows
        _bind("[::1]", 8000)


def test_the_port_held_for_the_workers_is_nobody_elses():
    """The supervisor holds the port (bound, never listening) while workers start or are replaced."""
    from reward.service.workers import _bind, _close

    held = _bind("127.0.0.1", 0, reuse_port=True)
    port = held[0].getsockname()[1]
    try:
        with socket.socket() as other, pytest.raises(OSError):  # a test's free_port(), another server's bind
            other.bind(("127.0.0.1", port))
        workers = [_bind("127.0.0.1", port, reuse_port=True) for _ in range(2)]  # the workers join it
        for w in workers:
            w[0].listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        for w in workers:
            _close(w)
    finally:
        _close(held)


def test_the_banner_is_one_line_in_a_narrow_terminal(tmp_path, fake_judge):
    env = server_env({}, fake_judge.api_base, tmp_path / "cache", COLUMNS="30", REWARD_RUBRIC="execution_subagent")
    srv = ServerProcess(env)  # it finds its port in the banner
    out = srv.stop()
    line = next(x for x in out.splitlines() if " on http://127.0.0.1:" in x)
    assert line.endswith(f"cache {tmp_path / 'cache'}"), out
