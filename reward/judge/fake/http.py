"""A fake OpenAI-compatible judge: a real HTTP server for tests, dry runs and benchmarks.

- condensing calls (no `response_format`) get an EXECUTION PLAN built from the prompt's commands, exit
  codes and final answer;
- grading calls get a verdict that conforms to the JSON schema sent, with scores derived from the
  plans in the prompt (matching outcomes score well) and a hash of the prompt, so the same prompt always
  gets the same reply;
- every call is counted and recorded; replies can be scripted (bad JSON, HTTP errors, delays, refusals).

Its replies carry `system_fingerprint = "reward-fake-judge"`, and results computed from them are marked
`judge.fake = true`: they are not real judgements.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections import Counter
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from reward.judge.base import FAKE_FINGERPRINT
from reward.judge.fake.logprobs import fake_logprobs
from reward.judge.fake.prefix_cache import PrefixCache
from reward.judge.fake.replies import (  # noqa: F401  (re-exported for tests and benchmarks)
    CONTENT_FAULTS,
    FAKE_MODEL,
    PLAIN_REFUSAL,
    TRANSPORT_FAULTS,
    FakeNoise,
    _digest,
    fake_content,
    fake_plan,
    fake_verdict,
    fault_reply,
    read_request,
)


class FakeJudgeState:
    """Call counts, recorded prompts, scripted replies and fault injection; shared by the server thread
    and tests.

    Faults: the first attempt of a prompt fails with probability `fault_rate` (decided by the prompt's
    hash, so the same prompts fail in every run), the kinds taken in turn from `faults` (transport: 429
    with Retry-After, 500, 503, a hang of `hang_s`; content: empty, refusal (API field or plain text), a
    plan cut at the token limit, no choices, truncated or malformed JSON, a missing dimension, an
    out-of-range score, a 5000-digit number); later attempts of that prompt succeed. `down` makes
    every call answer 503.

    `noise`: grading replies of known signal and noise (`FakeNoise`); by default REWARD_FAKE_NOISE_SD's, else
    off. Settable between tests; `reset` keeps it.
    """

    def __init__(self, latency: float = 0.0, noise: FakeNoise | None = None) -> None:
        self.latency = latency
        self.noise = noise if noise is not None else FakeNoise.from_env()
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.record = True
        self.fault_rate = 0.0
        self.faults: tuple[str, ...] = TRANSPORT_FAULTS + tuple(sorted(set(sum(CONTENT_FAULTS.values(), ()))))
        self.hang_s = 5.0
        self.down = False
        self.in_flight = self.peak_in_flight = 0
        self.injected: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._turn: Counter[str] = Counter()
        self.prefix_cache = PrefixCache()  # usage reports cached_tokens for a repeated prompt prefix

    def injected_fault(self, kind: str, prompt: str) -> str | None:
        key = hashlib.sha256(f"{kind}\0{prompt}".encode()).hexdigest()
        with self.lock:
            self._attempts[key] += 1
            if self.fault_rate <= 0 or self._attempts[key] > 1:
                return None
        draw = int(key[:8], 16) / 0xFFFFFFFF
        if draw >= self.fault_rate:
            return None
        applicable = [f for f in self.faults if f in TRANSPORT_FAULTS or f in CONTENT_FAULTS[kind]]
        if not applicable:
            return None
        with self.lock:  # kinds in turn, so every kind occurs once enough faults were drawn
            fault = applicable[self._turn[kind] % len(applicable)]
            self._turn[kind] += 1
            self.injected[fault] += 1
        return fault

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.script.clear()
            self.injected.clear()
            self._attempts.clear()
            self._turn.clear()
            self.fault_rate = 0.0
            self.down = False
            self.peak_in_flight = self.in_flight
            self.prefix_cache.clear()

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = {"total": len(self.calls), "condense": 0, "grade": 0}
            for c in self.calls:
                out[c["kind"]] += 1
            return out

    def next_scripted(self, kind: str, tier: Any = None) -> dict[str, Any] | None:
        """The next scripted reply for this kind of call (and, where the entry names a `service_tier`, only for
        calls on that tier: a busy flex tier whose standard tier answers)."""
        with self.lock:
            for i, entry in enumerate(self.script):
                if entry.get("kind") in (None, kind) and entry.get("service_tier") in (None, tier):
                    return self.script.pop(i)
        return None


def _completion(
    content: str | None,
    refusal: str | None,
    prompt: str,
    finish: str = "stop",
    cached_tokens: int = 0,
    logprobs: list[dict[str, Any]] | None = None,
    model: Any = None,
) -> dict[str, Any]:
    text = content or ""
    return {
        "id": f"chatcmpl-fake-{_digest(prompt, text) % 10**12}",
        "object": "chat.completion",
        "created": int(time.time()),
        # the model asked for, as providers answer (litellm prices a reply by the model it names); the fake is
        # told apart by its system_fingerprint
        "model": model if isinstance(model, str) and model else FAKE_MODEL,
        "system_fingerprint": FAKE_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                **({"logprobs": {"content": logprobs}} if logprobs is not None else {}),
            }
        ],
        "usage": {
            "prompt_tokens": len(prompt) // 4 + 1,
            "completion_tokens": len(text) // 4 + 1,
            "total_tokens": len(prompt) // 4 + len(text) // 4 + 2,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        },
    }


def create_app(state: FakeJudgeState) -> FastAPI:
    app = FastAPI(title="reward fake judge", docs_url=None, redoc_url=None)

    @app.post("/v1/chat/completions")
    @app.post("/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        with state.lock:  # calls in flight at the judge, as a provider's concurrency limit sees them
            state.in_flight += 1
            state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            return await answer(request)
        finally:
            with state.lock:
                state.in_flight -= 1

    async def answer(request: Request) -> JSONResponse:
        body = await request.json()
        messages = body.get("messages") or []
        rf = body.get("response_format") or {}
        kind, prompt, schema = read_request(messages, rf)
        with state.lock:
            state.calls.append(
                {
                    "kind": kind,
                    "messages": messages if state.record else None,
                    "response_format": rf or None,
                    "seed": body.get("seed"),
                    "prompt_cache_key": body.get("prompt_cache_key"),
                    "top_logprobs": body.get("top_logprobs") if body.get("logprobs") else None,
                    "service_tier": body.get("service_tier"),
                }
            )
        if state.latency:
            await asyncio.sleep(state.latency)
        if state.down:
            return JSONResponse({"error": {"message": "judge down (injected)"}}, status_code=503)
        scripted = state.next_scripted(kind, body.get("service_tier"))
        if scripted is None:
            fault = state.injected_fault(kind, prompt)
            if fault is not None:
                correct = fake_content(kind, prompt, schema, body.get("seed"), state.noise)
                scripted = fault_reply(fault, correct, state.hang_s)
        if scripted is not None:
            if scripted.get("delay"):
                await asyncio.sleep(float(scripted["delay"]))
            if "body" in scripted:  # a raw completion body, however odd (no choices, wrong types, ...)
                raw = dict(scripted["body"]) if isinstance(scripted["body"], dict) else scripted["body"]
                if isinstance(raw, dict):
                    raw.setdefault("system_fingerprint", FAKE_FINGERPRINT)
                return JSONResponse(raw)
            status = int(scripted.get("status", 200))
            if status != 200:
                return JSONResponse(
                    {"error": {"message": scripted.get("message", f"fake error {status}"), "type": "fake"}},
                    status_code=status,
                    headers=scripted.get("headers") or {},
                )
            return JSONResponse(
                _completion(
                    scripted.get("content"),
                    scripted.get("refusal"),
                    prompt,
                    scripted.get("finish_reason", "stop"),
                    state.prefix_cache.cached_chars(prompt) // 4,
                    model=body.get("model"),
                )
            )
        content = fake_content(kind, prompt, schema, body.get("seed"), state.noise)
        top = body.get("top_logprobs")
        asked = kind == "grade" and body.get("logprobs") is True and isinstance(top, int) and top > 0
        tokens = fake_logprobs(content, prompt, schema, top) if asked else None  # scripted replies: none
        cached = state.prefix_cache.cached_chars(prompt) // 4
        body_out = _completion(content, None, prompt, cached_tokens=cached, logprobs=tokens, model=body.get("model"))
        if isinstance(body.get("service_tier"), str):  # echoed as OpenAI does: the tier that answered
            body_out["service_tier"] = body["service_tier"]
        return JSONResponse(body_out)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": FAKE_MODEL, "object": "model", "owned_by": "reward"}]}

    @app.get("/_stats")
    async def stats() -> dict[str, int]:
        return state.counts()

    @app.get("/_calls")
    async def calls() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.calls)

    @app.post("/_script")
    async def script(request: Request) -> dict[str, int]:
        entries = await request.json()
        with state.lock:
            state.script.extend(entries if isinstance(entries, list) else [entries])
            return {"queued": len(state.script)}

    @app.post("/_reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    return app


class FakeJudgeServer:
    """Run the fake judge in a background thread: `with FakeJudgeServer() as fj: fj.api_base ...`."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, noise: FakeNoise | None = None
    ) -> None:
        self.state = FakeJudgeState(latency=latency, noise=noise)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            create_app(self.state), log_level="warning", lifespan="off", access_log=False, backlog=2048
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeJudgeServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake judge did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> FakeJudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # conveniences for tests
    def counts(self) -> dict[str, int]:
        return self.state.counts()

    def script(self, *entries: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.script.extend(entries)

    def reset(self) -> None:
        self.state.reset()


def serve(host: str, port: int, latency: float, fault_rate: float = 0.0) -> None:
    """Run the fake judge in the foreground (the `reward fake-judge` command); REWARD_FAKE_NOISE_SD=SD makes
    its grades a known true value plus seeded noise of that spread (`FakeNoise`)."""
    state = FakeJudgeState(latency=latency)
    state.fault_rate = fault_rate
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", backlog=4096)


FakeJudge = FakeJudgeServer  # the name `reward.fake_judge` has always exported
