"""The provider's batch API through litellm (OpenAI's shape: a JSONL file of /v1/chat/completions requests, a
batch over it, an output and an error file): the only module that makes those calls.

Which judges can batch is decided here, before anything is sent: a litellm judge without a router, whose
models go to OpenAI or to an OpenAI-compatible endpoint that answers the batch API (probed with a listing,
which sends no judge request). Anything else is a `RunError` naming why.

litellm decides the provider, maps each request line's parameters and prices it; the files and batches calls
themselves go through one OpenAI SDK client per run (the client litellm's own batch functions wrap), opened on
the run's event loop and closed when the run ends. litellm's batch functions build a new client per call and
never close it: its finaliser then closes it on whatever event loop runs in the thread the garbage collector
happens to run in, which, in a process with a second loop (a notebook's, a server's), removed a live connection
of ours from our loop and left a status poll or an upload waiting forever.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI, Timeout

from reward.errors import RunError
from reward.judge.base import Judge
from reward.judge.llm import litellm, token_price
from reward.judge.logprob_reply import takes_logprobs
from reward.redaction import short_error

# OpenAI's limits per batch input file (https://platform.openai.com/docs/guides/batch): 50,000 requests and
# 200 MB; a little under the bytes, as the multipart framing counts too.
MAX_REQUESTS = 50_000
MAX_BYTES = 190 * 1024 * 1024
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_PROVIDERS = ("openai", "hosted_vllm")  # their batch API is OpenAI's shape: the OpenAI SDK's client speaks it
CALL_TIMEOUT_S = 60.0  # a batch API call but an upload or a results file: a status, a listing, a create
# an upload or a results file may take long, but never this long without a byte moving (the SDK's 600 s else)
_STALL = Timeout(600.0, connect=30.0, read=120.0, write=120.0)
# 4xx statuses that refuse no one call for good: credentials (every call would fail alike), a timeout
_NOT_REFUSALS = frozenset({401, 403, 408})
_PAGES = 1000  # find(): at most this many pages of 100 batches (the newest 100,000 of an account)


class BatchAPIError(RunError):
    """A batch API call that failed (after the SDK's retries of 429, 5xx and connection errors)."""


class BatchRefused(BatchAPIError):
    """The provider refused this call for good (a 4xx: a file gone, a batch over its limits or the quota):
    calling again would get the same answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class BatchStatus:
    id: str
    status: str
    total: int
    completed: int
    failed: int
    output_file_id: str | None
    error_file_id: str | None
    errors: str  # the batch's own errors (a failed batch), as one line

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class LineResult:
    """One request's outcome in a finished batch: its completion body, or why it has none."""

    body: dict[str, Any] | None
    error: str | None = None


def _status(b: Any) -> BatchStatus:
    counts = getattr(b, "request_counts", None)
    errs = getattr(getattr(b, "errors", None), "data", None) or []
    return BatchStatus(
        id=str(b.id),
        status=str(b.status),
        total=int(getattr(counts, "total", 0) or 0),
        completed=int(getattr(counts, "completed", 0) or 0),
        failed=int(getattr(counts, "failed", 0) or 0),
        output_file_id=getattr(b, "output_file_id", None),
        error_file_id=getattr(b, "error_file_id", None),
        errors="; ".join(f"{getattr(e, 'code', '')}: {getattr(e, 'message', '')}" for e in errs),
    )


class BatchAPI:
    """The batch endpoint of one litellm judge: `BatchAPI.of(judge)` refuses a judge that cannot batch."""

    def __init__(self, judge: Judge, models: dict[str, str], routes: dict[str, str], providers: dict[str, str]) -> None:
        self.judge = judge
        self.models = models  # role -> the model name written into each request line
        self.routes = routes  # role -> the litellm model string (its prices)
        self.providers = providers  # role -> litellm's provider of it (how its parameters are mapped)
        s = judge.settings
        # as litellm resolves an OpenAI endpoint and key; an endpoint of one's own (vLLM) may want no key, but
        # the SDK sends one: vLLM's placeholder
        self._base = s.api_base or os.getenv("OPENAI_BASE_URL") or os.getenv("OPENAI_API_BASE") or None
        self._key = s.api_key or os.getenv("OPENAI_API_KEY") or ("EMPTY" if s.api_base else None)
        self.where = self._base or "OpenAI"  # an endpoint set by OPENAI_BASE_URL is named too
        self._secrets = [x for x in [self._key] if x and x != "EMPTY"]
        self._client: AsyncOpenAI | None = None

    @classmethod
    def of(cls, judge: Judge) -> BatchAPI:
        """The batch API of `judge`, or a RunError saying why it has none (nothing is sent)."""
        from reward.judge.litellm_judge import LiteLLMJudge

        if not isinstance(judge, LiteLLMJudge):
            raise RunError(
                "batch scoring needs a litellm judge with a batch API (OpenAI, or an endpoint that speaks it); "
                "the in-process fake judge has none"
            )
        if judge.router is not None:
            raise RunError("batch scoring sends every request to one provider: it cannot go through a router config")
        models: dict[str, str] = {}
        providers: dict[str, str] = {}
        for role, route in judge.routes.items():
            try:
                name, provider, _, _ = litellm.get_llm_provider(route.model)
            except Exception as exc:
                raise RunError(f"batch scoring: litellm does not know the model {route.model!r}: {exc}") from exc
            if provider not in _PROVIDERS or (provider == "hosted_vllm" and not judge.settings.api_base):
                raise RunError(
                    f"batch scoring: the {role} judge {route.model!r} goes to {provider!r}, which has no "
                    "OpenAI-style batch API through litellm here; score without batch (the synchronous run)"
                )
            models[role], providers[role] = name, provider
        return cls(judge, models, {role: r.model for role, r in judge.routes.items()}, providers)

    def client(self) -> AsyncOpenAI:
        """The run's client, opened on first use (on the running loop); `aclose` closes it."""
        if self._client is None:
            if self._key is None:
                raise RunError("batch scoring: no OpenAI API key (the judge's api_key or OPENAI_API_KEY)")
            # the SDK's own retries of 429, 5xx and connection errors: the only retry loop here
            self._client = AsyncOpenAI(api_key=self._key, base_url=self._base, max_retries=2, timeout=_STALL)
        return self._client

    async def aclose(self) -> None:
        """Close the run's client and its connections (on the loop that opened them)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def probe(self) -> None:
        """Does the endpoint answer the batch API? A listing: no judge request is sent."""
        client = self.client()
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await client.batches.list(limit=1)
        except Exception as exc:
            raise RunError(
                f"batch scoring: {self.where} does not answer the batch API (GET /batches): "
                f"{short_error(exc, self._secrets)}; score without batch (the synchronous run)"
            ) from exc

    def line(
        self,
        custom_id: str,
        role: str,
        messages: list[dict[str, str]],
        response_format: dict[str, Any] | None,
        seed: int | None,
    ) -> bytes:
        """One request line: the body the synchronous call sends, its parameters mapped by litellm for the
        provider as `acompletion` maps them (max_tokens or max_completion_tokens, ...); the seed only where litellm
        passes one. Parameters the provider refuses are a RunError here, before anything is sent."""
        call = self.judge.settings.condense if role == "condense" else self.judge.settings.grade
        name, provider = self.models[role], self.providers[role]
        wanted: dict[str, Any] = {"temperature": call.temperature, "max_tokens": call.max_tokens}
        if response_format is not None:
            wanted["response_format"] = response_format
        if seed is not None and _takes_seed(name, provider):
            wanted["seed"] = seed
        if role == "grade" and call.top_logprobs and takes_logprobs(call.model):  # as the synchronous call asks
            wanted["logprobs"], wanted["top_logprobs"] = True, call.top_logprobs
        try:
            params = litellm.utils.get_optional_params(model=name, custom_llm_provider=provider, **wanted)
        except Exception as exc:
            raise RunError(f"batch scoring: litellm refuses the {role} call's settings for {name}: {exc}") from exc
        params.pop("stream", None)
        extra = params.pop("extra_body", None) or {}
        body: dict[str, Any] = {"model": name, "messages": messages, **params, **extra}
        record = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def upload(self, lines: list[bytes]) -> str:
        content = b"\n".join(lines) + b"\n"
        # an upload of up to the provider's file limit (200 MB) may take long: bounded by _STALL only
        made = await self._call(
            self.client().files.create, file=("requests.jsonl", content), purpose="batch", bounded=False
        )
        return str(made.id)

    async def create(self, file_id: str) -> BatchStatus:
        made = await self._call(
            self.client().batches.create,
            completion_window="24h",
            endpoint="/v1/chat/completions",
            input_file_id=file_id,
            metadata={"created_by": "reward"},
        )
        return _status(made)

    async def find(self, file_id: str) -> BatchStatus | None:
        """The batch made over `file_id`, if a run was stopped between creating it and writing its id down: the
        account's batches are listed page after page, newest first (up to `_PAGES` pages of 100)."""
        after: str | None = None
        for _ in range(_PAGES):
            page_of: dict[str, Any] = {"limit": 100} if after is None else {"limit": 100, "after": after}
            listing = await self._call(self.client().batches.list, **page_of)
            page = getattr(listing, "data", None) or []
            for b in page:
                if getattr(b, "input_file_id", None) == file_id:
                    return _status(b)
            last = str(page[-1].id) if page else None
            if not getattr(listing, "has_more", False) or last is None or last == after:
                break
            after = last
        return None

    async def retrieve(self, batch_id: str) -> BatchStatus:
        return _status(await self._call(self.client().batches.retrieve, batch_id))

    async def settled(self, batch_id: str, poll_s: float, progress: Callable[[str], None]) -> BatchStatus:
        """Poll a batch every `poll_s` until it ends (a line to `progress` when its counts change); a
        BatchAPIError after 5 failed polls in a row."""
        last, errors = "", 0
        while True:
            try:
                status = await self.retrieve(batch_id)
                errors = 0
            except BatchAPIError:
                errors += 1
                if errors >= 5:
                    raise
            else:
                shown = f"batch {status.id}: {status.completed + status.failed}/{status.total} ({status.status})"
                if shown != last:
                    progress(shown)
                    last = shown
                if status.terminal:
                    return status
            await asyncio.sleep(poll_s)

    async def results(self, status: BatchStatus) -> dict[str, LineResult]:
        """Each request's outcome in a finished batch, by custom_id (absent: no outcome at all)."""
        found: dict[str, LineResult] = {}
        for file_id in (status.error_file_id, status.output_file_id):  # output last: it wins
            if not file_id:
                continue
            # a rate limit is no refusal here: the file is there, to be read again by a rerun
            content = await self._call(  # a results file may be large: bounded by _STALL only
                self.client().files.content, file_id, not_refused=_NOT_REFUSALS | {429}, bounded=False
            )
            for raw in bytes(content.content).splitlines():
                parsed = _parse(raw)
                if parsed is not None:
                    found[parsed[0]] = parsed[1]
        return found

    async def _call(
        self,
        fn: Any,
        /,
        *args: Any,
        not_refused: frozenset[int] = _NOT_REFUSALS,
        bounded: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One batch API call; transport failures (429, 5xx, connection) are retried by the SDK (max_retries),
        anything left is a BatchAPIError naming the endpoint: a BatchRefused for a 4xx but `not_refused`. A
        `bounded` call with no answer in CALL_TIMEOUT_S is a BatchAPIError too (a connection gone silent; a poll
        is then simply the next poll's to make); any other stalls after _STALL's read or write timeout."""
        timeout_s = CALL_TIMEOUT_S if bounded else None
        try:
            async with asyncio.timeout(timeout_s):
                return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except TimeoutError as exc:
            raise BatchAPIError(f"batch API at {self.where}: no answer in {CALL_TIMEOUT_S:g} s") from exc
        except Exception as exc:
            message = f"batch API at {self.where}: {short_error(exc, self._secrets)}"
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and 400 <= status < 500 and status not in not_refused:
                raise BatchRefused(message, status) from exc
            raise BatchAPIError(message) from exc


def _parse(raw: bytes) -> tuple[str, LineResult] | None:
    """(custom_id, outcome) of one output or error line; None for a line that names no request."""
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
        cid = record["custom_id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(cid, str):
        return None
    response = record.get("response") if isinstance(record.get("response"), dict) else {}
    body = response.get("body")
    if response.get("status_code") == 200 and isinstance(body, dict):
        return cid, LineResult(body)
    error = record.get("error") if isinstance(record.get("error"), dict) else None
    if error is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
    code = response.get("status_code")
    why = (error or {}).get("message") or (error or {}).get("code") or f"HTTP {code}"
    return cid, LineResult(None, f"{(error or {}).get('code') or code}: {why}"[:500])


def _takes_seed(name: str, provider: str) -> bool:
    """Does litellm pass `seed` to this model's provider? (As the synchronous call decides.)"""
    try:
        return "seed" in (litellm.get_supported_openai_params(model=name, custom_llm_provider=provider) or [])
    except Exception:
        return False


def batch_price(model: str) -> tuple[float, float] | None:
    """litellm's batch price of `model` per prompt and completion token; None when its map has none."""
    return token_price(model, "_batches")
