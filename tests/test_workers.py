"""`reward serve --workers N`: one SO_REUSEPORT socket per worker, replaced when killed, clean shutdown;
and the settled heap (gc frozen after start-up)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.server_proc import ServerProcess, server_env


def sockets_on(port: int, state: str) -> list[str]:
    """Inodes of the sockets on local `port` (any address) in a TCP state from /proc/net/tcp{,6}: "0A" is
    LISTEN, "06" TIME_WAIT."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == state and int(f[1].rsplit(":", 1)[1], 16) == port:
                out.append(f[9])
    return out


def listeners(port: int) -> list[str]:
    return sockets_on(port, "0A")


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
    """The supervisor holds the port (bound, never listening) while workers start or are replaced: another
    server's probe fails, its own workers join."""
    from reward.errors import ConfigError
    from reward.service.workers import _bind, _close, _hold

    held = _hold("127.0.0.1", 0)
    port = held[0].getsockname()[1]
    try:
        with pytest.raises(ConfigError, match="Address already in use"):
            _bind("127.0.0.1", port)  # a second `reward serve --port PORT`, even while no worker listens
        with socket.socket() as other, pytest.raises(OSError):  # a test's free_port(), anyone's plain bind
            other.bind(("127.0.0.1", port))
        workers = [_bind("127.0.0.1", port, reuse_port=True) for _ in range(2)]
        for w in workers:
            w[0].listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        for w in workers:
            _close(w)
    finally:
        _close(held)


def test_the_hold_still_starts_where_an_earlier_servers_connections_linger():
    """Connections of a server without SO_REUSEPORT in TIME_WAIT refuse a bind without SO_REUSEADDR: a
    restart on the same port must still start."""
    from reward.errors import ConfigError
    from reward.service.workers import _bind, _close, _hold

    with socket.socket() as lst:
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", 0))
        lst.listen()
        port = lst.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = lst.accept()
        accepted.close()  # the server closes first: its side lingers in TIME_WAIT
        time.sleep(0.1)
        client.close()
    time.sleep(0.1)
    assert sockets_on(port, "06"), "no TIME_WAIT connection: this test would prove nothing"
    with pytest.raises(ConfigError, match="in use"):  # what the hold meets: a bind without SO_REUSEADDR fails
        _close(_bind("127.0.0.1", port, reuse_addr=False, reuse_port=True))
    held = _hold("127.0.0.1", port)
    try:
        assert [s.getsockname()[1] for s in held] == [port]
    finally:
        _close(held)


def test_several_workers_need_so_reuseport(monkeypatch):
    from reward.errors import ConfigError
    from reward.service import workers

    monkeypatch.delattr(socket, "SO_REUSEPORT")
    with pytest.raises(ConfigError, match="SO_REUSEPORT"):
        workers.serve("reward.service.app:create_app", "127.0.0.1", 0, 2)


def start_serve(tmp_path, fake_judge, *args: str) -> tuple[subprocess.Popen, str]:
    """`reward serve` started as a terminal starts it; returns once its banner is out, with the URL in it."""
    env = server_env({}, fake_judge.api_base, tmp_path / "cache")
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 (the child holds it; closed with the test)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reward", "serve", "--port", "0", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r" on (http://\S+) \(", (tmp_path / "serve.log").read_text())
        if found:
            return proc, found.group(1)
        time.sleep(0.01)
    proc.kill()
    raise AssertionError((tmp_path / "serve.log").read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_right_after_the_banner_is_not_lost(tmp_path, fake_judge, sig):
    proc, _ = start_serve(tmp_path, fake_judge, "--workers", "2")
    proc.send_signal(sig)  # before any worker listens
    try:
        assert proc.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()
    finally:
        proc.kill()


def test_port_0_is_one_port_on_every_address_of_the_host(tmp_path, fake_judge):
    try:  # "" is every interface: 0.0.0.0 and, where this machine has IPv6, ::
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        loopbacks = ["127.0.0.1", "[::1]"]
    except OSError:
        loopbacks = ["127.0.0.1"]
    proc, url = start_serve(tmp_path, fake_judge, "--host", "")
    try:
        port = url.rsplit(":", 1)[1]
        assert url.startswith("http://0.0.0.0:")
        for host in loopbacks:
            assert httpx.get(f"http://{host}:{port}/healthz", timeout=10).status_code == 200, host
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_banner_is_one_line_in_a_narrow_terminal(tmp_path, fake_judge):
    env = server_env({}, fake_judge.api_base, tmp_path / "cache", COLUMNS="30", REWARD_RUBRIC="execution_subagent")
    srv = ServerProcess(env)  # it finds its port in the banner
    out = srv.stop()
    line = next(x for x in out.splitlines() if " on http://127.0.0.1:" in x)
    assert line.endswith(f"cache {tmp_path / 'cache'}"), out


def test_an_ipv6_host_in_brackets_is_served(tmp_path, fake_judge):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    proc, url = start_serve(tmp_path, fake_judge, "--host", "[::1]")  # as a URL spells it
    try:
        assert url.startswith("http://[::1]:")
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)
