"""REWARD_LOG_FORMAT: a real `reward serve` whose every log line is one JSON object (access lines with request
ids, a judge failure behind a 503, a Redis outage and its end, uvicorn's own warnings), secrets redacted;
the text default gets the access line too."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time

import httpx
import pytest

from reward.service.logs import JsonFormatter, TextFormatter, request_id
from tests.conftest import distinct_groups, group, rollout, step
from tests.server_proc import ServerProcess, server_env

KEY = "sk-judge-key-never-logged-123"
PLAN = "EXECUTION PLAN\n\nTask Outcome: success.\n\nCommands Executed:\n- `ls` (exit code 0)"
CALL = '<tool_call>\n{"name": "run_in_terminal", "arguments": {"command": "%s"}}\n</tool_call>'


def records(output: str) -> list[dict]:
    """Every line of a server's output as JSON, the CLI's start-up banner and warnings included."""
    lines = [line for line in output.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # raises on any line that is not one JSON object
    assert all(isinstance(p, dict) and {"ts", "level", "logger", "msg"} <= set(p) for p in parsed)
    return parsed


def send_garbage(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        s.recv(1024)


@pytest.mark.slow
def test_every_line_is_json_with_request_ids_judge_failures_and_a_redis_outage(fake_judge, redis_server, tmp_path):
    env = server_env(dict(os.environ), fake_judge.api_base, tmp_path / "cache")
    env.update(REWARD_LOG_FORMAT="json", REWARD_JUDGE_API_KEY=KEY, REWARD_CACHE_URL=redis_server.url)
    proc = ServerProcess(env)
    try:
        ok = httpx.post(
            f"{proc.url}/score",
            json={"groups": distinct_groups("up", 1, 2)},
            headers={"X-Request-ID": "step-7"},
            timeout=60,
        )
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "step-7"
        fresh = httpx.get(f"{proc.url}/healthz").headers["x-request-id"]
        odd = httpx.get(f"{proc.url}/healthz", headers={"X-Request-ID": "two words"}).headers["x-request-id"]
        assert len(fresh) == 32 and odd not in ("two words", fresh)  # not an id one can inject text with

        # a judge failure behind a trainer endpoint that needs a number: 503, and one line saying why
        fake_judge.script({"kind": "condense", "status": 401, "message": f"Incorrect API key provided: {KEY}"})
        label = {"reference": {"plan": PLAN}, "query": "run the tests"}
        text = CALL % "pytest -q" + "<|im_end|>\n<|im_start|>assistant\n<final_answer>3 failed</final_answer>"
        failed = httpx.post(
            f"{proc.url}/slime",
            json={"prompt": "p", "response": text, "label": label},
            headers={"X-Request-ID": "rm-1"},
        )
        assert failed.status_code == 503

        redis_server.stop()  # the shared cache goes away: scoring goes on without it, one line says so
        down = httpx.post(f"{proc.url}/score", json={"groups": distinct_groups("down", 1, 1)}, timeout=60)
        assert down.status_code == 200 and down.json()["groups"][0]["rollouts"][0]["status"] == "ok"
        redis_server.start()
        time.sleep(1.5)  # the store leaves a failed Redis alone for a second
        back = httpx.post(f"{proc.url}/score", json={"groups": distinct_groups("back", 1, 1)}, timeout=60)
        assert back.status_code == 200
        send_garbage(proc.port)  # uvicorn's own warning
    finally:
        output = proc.stop()
    assert KEY not in output
    lines = records(output)
    banner = [r for r in lines if r["logger"] == "reward.serve"]
    assert banner and banner[0]["msg"].startswith("reward execution_subagent on http://")  # the CLI's own lines too

    access = [r for r in lines if r["logger"] == "reward.access"]
    # one per request, probes and refusals included (ServerProcess polled /healthz once it listened)
    assert len([r for r in access if r["path"] != "/healthz"]) == 4 and len(access) >= 7
    step7 = next(r for r in access if r["request_id"] == "step-7")
    assert (step7["method"], step7["path"], step7["status"]) == ("POST", "/score", 200)
    assert isinstance(step7["duration_ms"], float) and step7["duration_ms"] > 0
    assert {r["path"] for r in access} == {"/score", "/healthz", "/slime"}
    assert next(r for r in access if r["request_id"] == "rm-1")["status"] == 503

    judge = next(r for r in lines if r.get("event") == "judge_failed")
    assert judge["request_id"] == "rm-1" and judge["level"] == "warning"
    assert judge["categories"] == {"judge_auth": 1} and "[redacted]" in judge["error"]

    degraded = [r for r in lines if r.get("event") == "cache_degraded"]
    recovered = [r for r in lines if r.get("event") == "cache_recovered"]
    assert len(degraded) == 1 and degraded[0]["layer"] == "redis" and degraded[0]["level"] == "error"
    assert len(recovered) == 1 and lines.index(degraded[0]) < lines.index(recovered[0])
    assert any(r["logger"].startswith("uvicorn") and r["level"] == "warning" for r in lines)


@pytest.mark.slow
def test_text_is_the_default_and_has_the_access_line(fake_judge, tmp_path):
    env = server_env(dict(os.environ), fake_judge.api_base, tmp_path / "cache")
    env.pop("REWARD_LOG_FORMAT", None)
    proc = ServerProcess(env)
    try:
        body = {"groups": [group("t", rollouts=[rollout("r0", steps=[step("make")])])]}
        assert (
            httpx.post(f"{proc.url}/score", json=body, headers={"X-Request-ID": "txt-1"}, timeout=60).status_code == 200
        )
    finally:
        output = proc.stop()
    line = next(x for x in output.splitlines() if "reward.access" in x and "txt-1" in x)
    assert " INFO reward.access: POST /score 200 " in line and line.endswith("ms request_id=txt-1")
    assert not any(x.startswith("{") for x in output.splitlines())


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"failed with {KEY}")
        except RuntimeError:
            exc_info = sys.exc_info()
    r = logging.LogRecord("reward.cache", logging.ERROR, __file__, 1, msg, args, exc_info)
    r.__dict__.update(extra)
    return r


def test_secrets_are_redacted_in_the_message_the_fields_and_the_traceback(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("REWARD_CACHE_URL", "redis://:hunter2-password@cache:6379/0")
    line = JsonFormatter().format(
        record("using %s at %s", KEY, "redis://:hunter2-password@cache:6379/0", exc=True, detail={"k": [KEY]}, n=3)
    )
    parsed = json.loads(line)
    assert KEY not in line and "hunter2-password" not in line
    assert parsed["detail"] == {"k": ["[redacted]"]} and parsed["n"] == 3
    assert "RuntimeError" in parsed["exc"] and parsed["level"] == "error" and parsed["ts"].endswith("Z")
    text = TextFormatter().format(record("using %s", KEY, exc=True))
    assert KEY not in text and "\n" not in text  # one line, the traceback a quoted field


def test_fields_never_overwrite_the_core_keys():
    parsed = json.loads(JsonFormatter().format(record("real message", msg_note=1, level_x=2, ts_extra=3)))
    assert parsed["msg"] == "real message" and parsed["level"] == "error"
    r = record("m")
    r.__dict__["logger"] = "forged"
    assert json.loads(JsonFormatter().format(r))["logger"] == "reward.cache"
    assert json.loads(JsonFormatter().format(r))["field_logger"] == "forged"


def test_request_ids_a_client_may_choose():
    assert request_id([(b"x-request-id", b"trainer-step-12.r3")]) == "trainer-step-12.r3"
    for bad in (b"", b"a b", b"x" * 200, b"\xff\xfe", b"<script>"):
        rid = request_id([(b"X-Request-ID", bad)])
        assert len(rid) == 32 and rid != bad.decode("latin-1")


def test_a_client_gone_mid_body_is_logged_and_counted_499_not_500(caplog):
    """The client went (or the read deadline closed it) before its body arrived: the Guard answers nobody,
    and the access line and `reward_http_requests_total` say 499, not a server error."""
    import asyncio
    from pathlib import Path

    from reward.service.guard import Guard
    from reward.service.logs import AccessLog
    from reward.service.reward_service import ServiceSettings

    async def app(scope, receive, send):
        raise AssertionError("a body cut short never reaches the app")

    async def silent(scope, receive, send):
        return None  # an app that answers nothing with its client still there: a server error

    def run(inner, messages: list[dict]) -> list[int]:
        recorded: list[int] = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            raise AssertionError(f"nothing is sent: {message}")

        scope = {"type": "http", "method": "POST", "path": "/score", "headers": [(b"content-length", b"100")]}
        log = AccessLog(inner, record=lambda _scope, status, _s: recorded.append(status))
        asyncio.run(log(scope, receive, send))
        return recorded

    settings = ServiceSettings(rubric_dir=Path("rubrics"))
    with caplog.at_level(logging.INFO, logger="reward.access"):
        cut = [{"type": "http.request", "body": b'{"groups": [', "more_body": True}, {"type": "http.disconnect"}]
        assert run(Guard(app, settings), cut) == [499]
    assert any(getattr(r, "status", None) == 499 for r in caplog.records)
    whole = [{"type": "http.request", "body": b"{}", "more_body": False}]
    assert run(Guard(silent, settings), whole) == [500]


def test_litellms_marker_on_other_libraries_records_is_no_field():
    """litellm puts its secret filter on uvicorn's and httpx's loggers; what it stamps is not a field to log."""
    import reward.judge.llm  # noqa: F401 (imports litellm as the service does)

    r = logging.LogRecord(
        "uvicorn.error", logging.ERROR, __file__, 1, "[Errno -2] Name or service not known", None, None
    )
    for f in logging.getLogger("uvicorn.error").filters:
        f.filter(r) if isinstance(f, logging.Filter) else f(r)
    r.litellm_redacted = object()  # what litellm >= 1.110 stamps, whether or not this version's filter did
    assert set(json.loads(JsonFormatter().format(r))) == {"ts", "level", "logger", "msg"}
    assert "litellm_redacted" not in TextFormatter().format(r)
