"""A judge stand-in that costs next to nothing per call, for the benchmark (run in its own process).

    python bench/stub_judge.py PORT LATENCY_S [lognormal [SEED]]

An OpenAI-compatible /v1/chat/completions on bare asyncio (no framework): a condensing call gets a short
plan carrying a digest of the prompt (so distinct rollouts stay distinct), a grading call gets a verdict
that fits the schema sent (built once per schema); replies wait LATENCY_S on a timer, or with `lognormal` a
lognormal time per call with median LATENCY_S and sigma 1 (a judge's long tail: p90 3.6x, p99 10x the
median), seeded for repeatable draws. Usage reports
`prompt_tokens_details.cached_tokens` for a repeated prompt prefix, as a provider's prompt cache would.
GET /_stats: calls, prompt and cached tokens per kind, and the grade prompts' group-shared prefix
(everything before the candidate's fenced plan) in tokens.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import zlib
from collections import Counter
from typing import Any

from reward.judge.fake.prefix_cache import PrefixCache  # no litellm import: this process stays small

SPLIT = "\u27eadata:candidate_plan\u27eb"
stats: Counter[str] = Counter()
cache = PrefixCache(block_chars=512)
# As long as the reference plan the benchmark sends (bench/harness.py), so shares of tokens are realistic.
PLAN = (
    "EXECUTION PLAN\n\nTask Outcome: partial. The last command exited 0.\n\nCommands Executed:\n- `run the "
    "tests` (exit code 1)\n\nKey Findings:\n- run {digest:08x}\n\nError Recovery: none.\n\nFinal State: reported."
)
_templates: dict[str, tuple[list[str], list[int]]] = {}


def verdict(schema: dict[str, Any], digest: int) -> str:
    key = json.dumps(schema, sort_keys=True)
    if key not in _templates:
        props = schema.get("properties") or {}
        enum = next((p["enum"] for p in props.values() if "enum" in p), [1, 2, 3, 4, 5])
        _templates[key] = (list(props), enum)
    names, enum = _templates[key]
    return json.dumps(
        {n: (enum[(digest >> i) % len(enum)] if n.endswith("_score") else "stub") for i, n in enumerate(names)}
    )


def reply(body: dict[str, Any]) -> bytes:
    messages = body.get("messages") or []
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), len(messages) - 1)
    prompt = "\n".join(str(m.get("content") or "") for m in messages[: first_user + 1])
    digest = zlib.crc32(prompt.encode())
    rf = body.get("response_format") or {}
    schema = (rf.get("json_schema") or {}).get("schema") or rf.get("schema")
    kind = "grade" if schema else "condense"
    if schema:
        content = verdict(schema, digest)
        at = prompt.find(SPLIT)
        stats["grade_shared_prefix_tokens"] += max(at, 0) // 4
    else:
        content = PLAN.format(digest=digest)
    prompt_tokens = len(prompt) // 4 + 1
    cached = cache.cached_chars(prompt) // 4
    stats[f"{kind}_calls"] += 1
    stats[f"{kind}_prompt_tokens"] += prompt_tokens
    stats[f"{kind}_cached_tokens"] += cached
    return json.dumps(
        {
            "id": f"chatcmpl-stub-{digest}",
            "object": "chat.completion",
            "created": 0,
            "model": "bench-judge",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(content) // 4 + 1,
                "total_tokens": prompt_tokens + len(content) // 4 + 1,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
    ).encode()


class Latency:
    """Seconds before a chat reply: fixed, or lognormal (sigma 1) around a median."""

    def __init__(self, median: float, lognormal: bool = False, seed: int = 0) -> None:
        self.median = median
        self.rng = random.Random(seed) if lognormal else None

    def draw(self) -> float:
        if self.rng is None or self.median <= 0:
            return self.median
        return self.rng.lognormvariate(math.log(self.median), 1.0)


class Http(asyncio.Protocol):
    def __init__(self, latency: Latency) -> None:
        self.latency = latency
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < head_end + 4 + length:
                return
            body = self.buf[head_end + 4 : head_end + 4 + length]
            self.buf = self.buf[head_end + 4 + length :]
            path = head.split(" ", 2)[1]
            if path.endswith("/chat/completions"):
                out = reply(json.loads(body))
                delay = self.latency.draw()
            else:
                out = json.dumps(dict(stats) if path == "/_stats" else {"object": "list", "data": []}).encode()
                delay = 0.0
            response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(out),
                out,
            )
            if delay:
                asyncio.get_running_loop().call_later(delay, self._write, response)
            else:
                self._write(response)

    def _write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)


async def main(port: int, latency: Latency) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(latency), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    lognormal = len(sys.argv) > 3 and sys.argv[3] == "lognormal"
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(main(int(sys.argv[1]), Latency(float(sys.argv[2]), lognormal, seed)))
