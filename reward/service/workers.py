"""The worker processes of `reward serve`, and a quiet heap in each.

Load sharing: uvicorn's own `--workers` hands one listening socket to every worker, and whichever worker
wakes first accepts a whole burst of connections (a 3:1 CPU split was measured). Here each worker opens its
own socket on the same port with SO_REUSEPORT, and the kernel spreads new connections evenly over them.
A worker that dies is replaced; SIGTERM/SIGINT are passed on and every worker finishes its requests.

Garbage collection: importing litellm leaves ~330k tracked objects, and every full collection walked
them all (0.3 s pauses on the critical path). After start-up they are frozen out of collection and the
young-generation threshold is raised, so collections stay short and rare.

Logs and metrics: every process logs in REWARD_LOG_FORMAT (reward.service.logs), uvicorn included. With
several workers the supervisor makes a directory for this run's metrics (prometheus-client's multiprocess
mode: each worker writes its values there, any worker's /metrics reads them all), drops a dead worker's
gauges, and removes the directory when the server stops, so no run ever counts another's values.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from reward.errors import ConfigError, RunError
from reward.service.connections import ACCEPT_BURST, GuardedH11Protocol

GC_THRESHOLDS = (20_000, 20, 50)  # default (700, 10, 10): a young collection every 700 net allocations
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when a worker imports it
log = logging.getLogger("reward.serve")


def settle_heap() -> None:
    """Call once start-up is done: collect, freeze what survives (modules, litellm's tables), and raise
    the thresholds. Later collections only walk objects made after this point."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def guarded_protocol() -> type[Any]:
    """uvicorn's h11 protocol with REWARD_READ_TIMEOUT and REWARD_MAX_CONNECTIONS (built in each worker: a
    class made at run time does not travel to a spawned process)."""
    from reward.settings import Settings

    env = Settings.from_env(only=("read_timeout", "max_connections"))
    return GuardedH11Protocol.configure(env.read_timeout, env.max_connections)


def log_config() -> dict[str, Any]:
    """The logging configuration of every server process, in REWARD_LOG_FORMAT."""
    from reward.service.logs import dict_config
    from reward.settings import setting

    return dict_config(setting("log_format"))


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """A directory for this run's metrics, named in the environment the workers inherit, removed at the end.
    Inside PROMETHEUS_MULTIPROC_DIR when that is set (a volume of the operator's choosing), else in the
    temporary directory."""
    parent = os.environ.get(MULTIPROC_ENV) or None
    if parent is not None:
        os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(prefix="reward-metrics-", dir=parent)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if parent is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = parent
        shutil.rmtree(path, ignore_errors=True)


def _forget_worker(pid: int | None) -> None:
    """A dead worker's live gauges (calls in flight, workers) no longer count; its counters still do."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(pid)


def _bind(host: str, port: int, *, reuse_addr: bool = True, reuse_port: bool = False) -> list[socket.socket]:
    """Sockets bound to every address `host` resolves to, as asyncio's create_server binds them (`localhost`:
    127.0.0.1 and ::1; "": all; IPv6 sockets IPv6 only), on one port (port 0: the first one's free port), not
    yet listening. A taken port or a bad host is a clear ConfigError; without `reuse_port` this also refuses
    to join a stale server's SO_REUSEPORT group."""
    socks: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, addr in dict.fromkeys((info[0], info[4]) for info in infos):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            if reuse_addr:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((addr[0], port, *addr[2:]))
            port = int(sock.getsockname()[1])
    except (OSError, UnicodeError) as exc:
        _close(socks)
        raise ConfigError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from exc
    return socks


def _hold(host: str, port: int) -> list[socket.socket]:
    """The supervisor's hold on the port: bound, never listening (so never handed a connection), until the
    server stops. SO_REUSEPORT lets its workers join; without SO_REUSEADDR no one else's bind succeeds, not
    even another server's probe while none of our workers listens. Only where connections of an earlier
    server without SO_REUSEPORT linger in TIME_WAIT does it need SO_REUSEADDR, and holds less."""
    try:
        return _bind(host, port, reuse_addr=False, reuse_port=True)
    except ConfigError:
        return _bind(host, port, reuse_port=True)


def _port_of(socks: list[socket.socket]) -> int:
    return int(socks[0].getsockname()[1])


def _close(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def _worker(app: str, host: str, port: int, config: dict[str, Any], ready: Any) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # listening: from now on a death is a crash to recover from, not a bad start
                ready.set()

    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; these no-op handlers make that exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    socks = _bind(host, port, reuse_port=True)
    # No listen() here: uvicorn listens once the app has started, so the kernel never queues connections
    # on a worker that cannot answer yet (a bound socket that is not listening gets none).
    config.setdefault("backlog", ACCEPT_BURST)
    config.setdefault("log_config", log_config())
    config.setdefault("access_log", False)  # reward.access writes one line per request, with its request id
    Server(uvicorn.Config(app, factory=True, http=guarded_protocol(), **config)).run(sockets=socks)


def serve(
    app: str, host: str, port: int, workers: int, announce: Callable[[int], None] | None = None, **config: Any
) -> None:
    """Run the ASGI app factory `app` on host:port in `workers` processes (in this process when 1).
    `announce` gets the port served (port 0 resolved) once it is bound, before any request is answered."""
    import uvicorn

    from reward.service.logs import configure

    say = announce or (lambda _port: None)
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("several workers need SO_REUSEPORT (Linux); run one worker per process here")
    probe = _bind(host, port)  # a taken port, a stale server's socket group or an unknown host: one clear line
    if workers > 1:
        configure(log_config())  # the supervisor's own lines (a worker replaced) in the same format
        _close(probe)
        held = _hold(host, port)
        try:
            with metrics_dir():
                _supervise(app, host, _port_of(held), workers, config, say)
        finally:
            _close(held)
        return
    config.setdefault("backlog", ACCEPT_BURST)
    config.setdefault("log_config", log_config())
    config.setdefault("access_log", False)
    if port:
        # uvicorn binds once the app has started: until then a connection is refused, not left waiting.
        _close(probe)
        sockets = None
    else:
        # Port 0: nobody knows the port before the banner, so listening at once costs nothing, and makes the
        # port ours alone, the same one on every address of the host.
        for sock in probe:
            sock.listen(config["backlog"])
        sockets = probe

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # listening: the port it got
                say(int(self.servers[0].sockets[0].getsockname()[1]))

    # One process needs no metrics directory; one the operator named still gets this run's own.
    with metrics_dir() if os.environ.get(MULTIPROC_ENV) else contextlib.nullcontext():
        server = Server(uvicorn.Config(app, factory=True, host=host, port=port, http=guarded_protocol(), **config))
        # uvicorn.run swallows the Ctrl-C uvicorn re-raises after its graceful shutdown, and so do we:
        # stopped by Ctrl-C, one worker exits 0, like one stopped by SIGTERM and like several.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
        if not server.started:  # as uvicorn.run: a failed start-up is not a clean exit
            raise SystemExit(3)


def _supervise(
    app: str, host: str, port: int, workers: int, config: dict[str, Any], say: Callable[[int], None]
) -> None:
    spawn = multiprocessing.get_context("spawn")  # a clean interpreter each: no forked event loop or threads

    def start() -> tuple[Any, Any]:
        ready = spawn.Event()
        proc = spawn.Process(target=_worker, args=(app, host, port, dict(config), ready), name="reward-worker")
        proc.start()
        return proc, ready

    procs: list[tuple[Any, Any]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # Before the banner: whoever starts a server waits for it, then may stop the server at once.
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        say(port)
        while len(procs) < workers and not stopping:
            procs.append(start())
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p, _ in procs], timeout=0.5)
            for i, (proc, ready) in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                # A worker that never got to listen failed to start (bad settings, port, import): restarting
                # it would loop. One that served and then died (killed, out of memory) is replaced.
                if not ready.is_set():
                    raise RunError(f"a worker exited during start-up (exit code {proc.exitcode})")
                log.warning(
                    "worker %s exited (%s); starting another",
                    proc.pid,
                    proc.exitcode,
                    extra={"event": "worker_replaced", "pid": proc.pid, "exit_code": proc.exitcode},
                )
                _forget_worker(proc.pid)
                procs[i] = start()
    finally:
        for proc, _ in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        grace = float(config.get("timeout_graceful_shutdown") or 30) + 5
        for proc, _ in procs:
            proc.join(grace)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
