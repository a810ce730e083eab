"""Secrets never reach a log line or an error: credentials in URLs, the environment's keys, a Redis password."""

from __future__ import annotations

import asyncio
import logging

import pytest

from reward.redaction import describe_error, redact, redact_known, redact_url, url_secrets

SECRET = "hunter22-limits-password"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:hunter22@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://user:pw@host", "redis://user:***@host"),
        ("async+rediss://u:p@ss@h:1/0?db=1 failed", "async+rediss://u:***@h:1/0?db=1 failed"),  # the last @
        ("see https://ghp_token1234@github.com/x", "see https://***@github.com/x"),  # a lone user-info part
        ("unix:///tmp/r.sock?db=0&password=s3cret&x=1", "unix:///tmp/r.sock?db=0&password=[redacted]&x=1"),
    ],
)
def test_credentials_in_urls_are_redacted(text, shown):
    assert redact_url(text) == shown
    assert redact(text, []) == shown  # every redacted message gets it


def test_urls_and_text_without_credentials_are_left_alone():
    for text in ("redis://127.0.0.1:6379/0", "mail a@b.com", "http://h/p?u=a@b", "rediss://h:1/0?db=2"):
        assert redact_url(text) == text


def test_the_password_a_url_carries_is_redacted_wherever_it_shows_up(monkeypatch):
    monkeypatch.setenv("REWARD_JUDGE_API_KEY", "envsecretvalue42")
    url = "redis://u:p%40ssword99@h/0?password=querysecret77"
    assert set(url_secrets(url)) == {"p@ssword99", "p%40ssword99", "querysecret77"}
    text = redact_known("AUTH p@ssword99 / querysecret77 refused, key envsecretvalue42", url)
    assert text == "AUTH [redacted] / [redacted] refused, key [redacted]"
    assert describe_error(ConnectionError(f"cannot reach {url}"), url) == (
        "ConnectionError: cannot reach redis://u:***@h/0?password=[redacted]"
    )
    assert url_secrets(None) == [] and url_secrets("redis://[::1") == []  # unreadable: nothing, no error


def test_redacting_a_long_text_of_url_fragments_takes_linear_time():
    import time

    start = time.monotonic()
    redact_url("://" * 100_000 + "a." * 100_000)
    assert time.monotonic() - start < 2


def test_the_judge_limiter_never_logs_a_redis_password(monkeypatch, caplog):
    """A redis-py error that quotes the URL (or the password) is redacted before the limiter logs it."""
    import redis
    import redis.asyncio.connection

    from reward.judge.limits import JudgeLimiter, RoleLimits
    from tests.server_proc import free_port

    url = f"redis://user:{SECRET}@127.0.0.1:{free_port()}/0"  # nobody listens there

    async def refuse(*_: object) -> None:
        raise redis.ConnectionError(f"Error connecting to {url} (password {SECRET})")

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "connect", refuse)
    limiter = JudgeLimiter(
        {"grade": RoleLimits(rpm=100, max_parallel_requests=2)}, url, "test", timeout_s=0.5, pause_s=0.05
    )

    async def call() -> None:
        async with limiter.slot("grade"):
            pass

    with caplog.at_level(logging.WARNING, logger="reward.judge.limits"):
        asyncio.run(call())
    logged = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    assert "Redis failed" in logged and "Error connecting to" in logged
    assert SECRET not in logged and "user:***@" in logged
