"""A stand-in for a provider's batch API (OpenAI's shape): the fake judge's HTTP server plus `/v1/files` and
`/v1/batches`, for the batch scoring tests and benchmark. No real provider is ever called by them.

- `POST /v1/files` (multipart, purpose=batch) keeps the JSONL; `GET /v1/files/{id}[/content]` gives it back;
- `POST /v1/batches` checks the file (one line per request, a `custom_id` each, at most `max_requests` lines
  and `max_bytes` bytes, as a provider refuses bigger ones) and starts a batch; `GET /v1/batches/{id}` says
  `in_progress` until `delay` seconds have passed, then answers every line at once with the fake judge's reply
  logic (`reward.judge.fake.replies`, scripted replies included) and says `completed`, with an output file
  (answered lines) and an error file (lines answered with an HTTP error);
- `GET /v1/batches?limit=&after=` lists them newest first, a page at a time (at most 100, 20 by default);
- `fail_next`: statuses (`failed`, `expired`) the next batches end in instead: a failed batch answers
  nothing, an expired one answers its first `expire_after` lines and lists the rest as `batch_expired`;
- `peers`: the client port of every batch API call (which connection it came on);
- `silent`: how many of the next calls of a route (`upload`, `create`, `retrieve`, `list`, `content`) go
  silent: the request is read and no answer comes for `silent_s` seconds (a connection gone quiet).

Every answered line counts as a call of the fake judge (`counts()`), so tests see what was asked.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from email import policy
from email.parser import BytesParser
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from reward.judge.fake.http import FakeJudgeServer, FakeJudgeState, _completion
from reward.judge.fake.logprobs import fake_logprobs
from reward.judge.fake.replies import FakeNoise, fake_content, read_request


class BatchState:
    """Files, batches and the knobs of the batch stand-in; shared by the server thread and tests."""

    def __init__(self, delay: float = 0.0, max_requests: int = 50_000, max_bytes: int = 200 * 1024**2) -> None:
        self.delay = delay
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.fail_next: list[str] = []
        self.expire_after = 0
        self.silent: dict[str, int] = {}
        self.silent_s = 30.0
        self.peers: list[int] = []  # the client port of each batch API call: which connection it came on
        self.lock = threading.Lock()
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (purpose, content)
        self.batches: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.retrieves = 0
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-fake-{next(self._ids)}"

    async def maybe_silent(self, route: str, request: Request) -> None:
        """Note the call's connection; go quiet on it if `silent` asks for it (one of its count used)."""
        with self.lock:
            self.peers.append(request.client.port if request.client else 0)
            quiet = self.silent.get(route, 0) > 0
            if quiet:
                self.silent[route] -= 1
        if quiet:
            await asyncio.sleep(self.silent_s)


def _file_object(fid: str, purpose: str, content: bytes) -> dict[str, Any]:
    return {
        "id": fid,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": f"{fid}.jsonl",
        "purpose": purpose,
        "status": "processed",
    }


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name (the stdlib's MIME parser: no extra dependency)."""
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


def _answer_line(judge: FakeJudgeState, line: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(answered, output line) for one request line, as the fake judge's chat endpoint would answer it."""
    body = line.get("body") or {}
    messages = body.get("messages") or []
    rf = body.get("response_format") or {}
    kind, prompt, schema = read_request(messages, rf)
    with judge.lock:
        judge.calls.append(
            {"kind": kind, "messages": messages if judge.record else None, "seed": body.get("seed"), "batch": True}
        )
    head = {"id": f"batch_req_{line['custom_id']}", "custom_id": line["custom_id"]}
    scripted = judge.next_scripted(kind)
    if scripted is not None and int(scripted.get("status", 200)) != 200:
        status = int(scripted["status"])
        err = {"error": {"message": scripted.get("message", f"fake error {status}"), "type": "fake"}}
        return False, {**head, "response": {"status_code": status, "body": err}, "error": None}
    if scripted is not None:
        completion = _completion(
            scripted.get("content"),
            scripted.get("refusal"),
            prompt,
            scripted.get("finish_reason", "stop"),
            model=body.get("model"),
        )
    else:
        content = fake_content(kind, prompt, schema, body.get("seed"), judge.noise)
        top = body.get("top_logprobs")  # as the chat endpoint: the score tokens' logprobs when a line asks
        asked = kind == "grade" and body.get("logprobs") is True and isinstance(top, int) and top > 0
        tokens = fake_logprobs(content, prompt, schema, top) if asked and isinstance(top, int) else None
        completion = _completion(content, None, prompt, logprobs=tokens, model=body.get("model"))
    return True, {**head, "response": {"status_code": 200, "body": completion}, "error": None}


def _finish(state: BatchState, judge: FakeJudgeState, batch: dict[str, Any]) -> None:
    """Answer a batch whose time has come (once), writing its output and error files."""
    _, content = state.files[batch["input_file_id"]]
    lines = [json.loads(x) for x in content.splitlines() if x.strip()]
    outcome = state.fail_next.pop(0) if state.fail_next else "completed"
    batch["status"] = outcome
    if outcome == "failed":
        batch["errors"] = {"object": "list", "data": [{"code": "server_error", "message": "injected failure"}]}
        batch["request_counts"] = {"total": len(lines), "completed": 0, "failed": len(lines)}
        return
    out: list[bytes] = []
    err: list[bytes] = []
    for i, line in enumerate(lines):
        if outcome == "expired" and i >= state.expire_after:
            expired = {"code": "batch_expired", "message": "This request could not be executed before expiry."}
            row = {"id": "x", "custom_id": line["custom_id"], "response": None, "error": expired}
            err.append(json.dumps(row).encode())
            continue
        ok, answer = _answer_line(judge, line)
        (out if ok else err).append(json.dumps(answer).encode())
    for name, rows in (("output_file_id", out), ("error_file_id", err)):
        if rows:
            fid = state.new_id("file")
            state.files[fid] = ("batch_output", b"\n".join(rows) + b"\n")
            batch[name] = fid
    batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}


def add_batch_routes(app: FastAPI, state: BatchState, judge: FakeJudgeState) -> None:
    @app.post("/v1/files")
    async def upload(request: Request) -> JSONResponse:
        fields = _multipart(request.headers.get("content-type", ""), await request.body())
        await state.maybe_silent("upload", request)
        if "file" not in fields:
            return _error(400, "a multipart upload with a `file` part is needed")
        purpose = fields.get("purpose", b"batch").decode("utf-8", "replace")
        with state.lock:
            fid = state.new_id("file")
            state.files[fid] = (purpose, fields["file"])
        return JSONResponse(_file_object(fid, purpose, fields["file"]))

    @app.get("/v1/files/{fid}")
    async def file_info(fid: str) -> JSONResponse:
        with state.lock:
            found = state.files.get(fid)
        if found is None:
            return _error(404, f"no file {fid}")
        return JSONResponse(_file_object(fid, found[0], found[1]))

    @app.get("/v1/files/{fid}/content")
    async def file_content(fid: str, request: Request) -> Response:
        await state.maybe_silent("content", request)
        with state.lock:
            found = state.files.get(fid)
        if found is None:
            return _error(404, f"no file {fid}")
        return Response(found[1], media_type="application/octet-stream")

    @app.post("/v1/batches")
    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        await state.maybe_silent("create", request)
        with state.lock:
            found = state.files.get(str(body.get("input_file_id")))
            if found is None:
                return _error(404, f"no file {body.get('input_file_id')}")
            lines = [x for x in found[1].splitlines() if x.strip()]
            if len(lines) > state.max_requests or len(found[1]) > state.max_bytes:
                return _error(400, f"a batch holds at most {state.max_requests} requests and {state.max_bytes} bytes")
            try:
                ids = [json.loads(x)["custom_id"] for x in lines]
            except (ValueError, KeyError, TypeError):
                return _error(400, "every line needs a custom_id")
            if len(set(ids)) != len(ids):
                return _error(400, "custom_id values must be unique")
            state.creates += 1
            bid = state.new_id("batch")
            batch = {
                "id": bid,
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "input_file_id": body.get("input_file_id"),
                "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress",
                "created_at": int(time.time()),
                "metadata": body.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "_due": time.monotonic() + state.delay,
            }
            state.batches[bid] = batch
        return JSONResponse({k: v for k, v in batch.items() if not k.startswith("_")})

    @app.get("/v1/batches/{bid}")
    async def retrieve(bid: str, request: Request) -> JSONResponse:
        await state.maybe_silent("retrieve", request)
        with state.lock:
            state.retrieves += 1
            batch = state.batches.get(bid)
            if batch is None:
                return _error(404, f"no batch {bid}")
            if batch["status"] == "in_progress" and time.monotonic() >= batch["_due"]:
                _finish(state, judge, batch)
            return JSONResponse({k: v for k, v in batch.items() if not k.startswith("_")})

    @app.get("/v1/batches")
    async def listing(request: Request, limit: int = 20, after: str | None = None) -> JSONResponse:
        await state.maybe_silent("list", request)
        with state.lock:
            data = [{k: v for k, v in b.items() if not k.startswith("_")} for b in state.batches.values()][::-1]
        ids = [b["id"] for b in data]
        start = ids.index(after) + 1 if after in ids else 0
        page = data[start : start + max(1, min(limit, 100))]
        return JSONResponse({"object": "list", "data": page, "has_more": start + len(page) < len(data)})


class FakeBatchServer(FakeJudgeServer):
    """The fake judge (chat completions) with the batch API beside it: `with FakeBatchServer(delay=0.2) as fb:`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0, noise: FakeNoise | None = None):
        super().__init__(host, port, noise=noise)
        self.batch = BatchState(delay=delay)
        app = self._server.config.app  # the fake judge's app, not started yet: the batch routes join it
        assert isinstance(app, FastAPI)
        add_batch_routes(app, self.batch, self.state)
