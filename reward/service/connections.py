"""Connections no client can hold hostage: uvicorn's h11 protocol with a read deadline and a connection cap.

uvicorn closes a keep-alive connection idle between requests, but a socket that sends nothing after
connecting, half a header or half a body is held forever; enough of them (no token needed) exhaust the
worker's file descriptors and `/healthz` and authenticated `/score` stop answering. Here:

- a request must arrive whole (headers and body) within `read_timeout_s` of its first byte being awaited
  (the connection opening, or the previous response completing); a slower socket is closed;
- over `max_connections` open connections, the oldest one not being served (idle, or still sending its
  request) is closed to make room, so the newest client (a probe, a trainer) always gets in. The default
  cap sits below the process's file-descriptor limit by more than one accept burst, so the cap acts before
  `accept` can fail.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

# The listen backlog, which is also how many connections asyncio accepts in one go before any of them reaches
# `connection_made` (where the cap acts): the cap leaves that many descriptors free, plus what a worker needs
# besides client sockets (the cache, Redis, judge connections, logs), so `accept` never fails with EMFILE (it
# would pause accepting and log a traceback per attempt).
ACCEPT_BURST = 256
# Two bursts: under load the loop can accept again before the first burst's connections are made.
_RESERVED_FDS = 2 * ACCEPT_BURST + 128


def default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, soft - _RESERVED_FDS))


class _AcceptErrorsOncePerMinute(logging.Filter):
    """If `accept` does fail (another process used the descriptors), asyncio logs a traceback per attempt,
    thousands a second: one a minute says it, the rest would drown the logs and stall a slow log reader."""

    def __init__(self) -> None:
        super().__init__()
        self.last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("socket.accept() out of system resource"):
            return True
        now = time.monotonic()
        if now - self.last < 60:
            return False
        self.last = now
        return True


_ACCEPT_ERRORS = _AcceptErrorsOncePerMinute()


class GuardedH11Protocol(H11Protocol):
    """Set the limits with `configure` (class attributes: uvicorn builds one protocol per connection)."""

    read_timeout_s: float = 30.0
    max_connections: int = 4096

    @classmethod
    def configure(cls, read_timeout_s: float, max_connections: int | None) -> type[GuardedH11Protocol]:
        """A subclass with these limits (uvicorn's `http=` takes a protocol class)."""
        limits = {"read_timeout_s": read_timeout_s, "max_connections": max_connections or default_max_connections()}
        logging.getLogger("asyncio").addFilter(_ACCEPT_ERRORS)  # once: a filter is added to a logger once
        return type("GuardedH11Protocol", (cls,), limits)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self.opened = time.monotonic()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if len(self.connections) > self.max_connections:
            self._shed()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_whole():
            self._disarm()  # the app has it all: how long it takes to answer is the request deadline's business
        elif self._read_deadline is None:
            self._arm()  # the next request on a kept-alive connection started arriving (uvicorn's keep-alive
            # timeout covers the idle time between requests; it stops at the first byte of the next one)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # --- the read deadline --------------------------------------------------------------------------------

    def _request_whole(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if not self._request_whole() and not self.transport.is_closing():
            self.transport.close()

    # --- the connection cap -------------------------------------------------------------------------------

    def _shed(self) -> None:
        """Close the oldest connection that is not being served; none: close this new one."""
        others = [c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol)]
        idle = [c for c in others if not c._request_whole() and not c.transport.is_closing()]
        victim = min(idle, key=lambda c: c.opened) if idle else self
        victim.transport.close()
