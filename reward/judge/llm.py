"""The single import point of litellm, and the cheapest correct way through it.

litellm fetches a model cost map from the internet at import unless told not to, and prints banners;
both are settled here, before the first import, so no other module imports litellm directly.

Per call, litellm's own code costs more than the HTTP exchange. Three things here cut that without
changing behaviour (each measured by bench/run.py):
- the route: an OpenAI-compatible server given an API base (vLLM, SGLang, llama.cpp, a gateway) is called
  as `hosted_vllm/`, litellm's plain OpenAI-compatible path over its aiohttp transport, instead of
  `openai/` (the OpenAI SDK, which walks every message and the schema once more per call);
- an unpriced model gets a zero price registered, so the cost calculator stops raising and catching
  "model not mapped" on every call; the project still reports its cost as unknown (`has_price`);
- litellm runs its synchronous request set-up through the loop's default executor on every call; for
  routes whose set-up is pure CPU (no credential fetch) it runs inline instead, saving the thread hop.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import os
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal
from urllib.parse import urlparse

# Forced, not defaulted: the project must never download anything at run time.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")

import litellm

litellm.suppress_debug_info = True
litellm.set_verbose = False
litellm.telemetry = False
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
    logging.getLogger(_name).setLevel(logging.ERROR)

__all__ = [
    "Route",
    "choose_route",
    "count_tokens",
    "endpoint",
    "has_price",
    "inline_setup",
    "install_inline_setup",
    "litellm",
]

RouteKind = Literal["openai", "openai_compatible", "anthropic", "other"]
_OPENAI_HOSTS = ("api.openai.com",)


def count_tokens(text: str) -> int:
    """Tokens of `text` with tiktoken's cl100k_base, which litellm bundles (no download at run time)."""
    encoding: Any = litellm.encoding  # tiktoken's Encoding (untyped in litellm)
    return len(encoding.encode(text, disallowed_special=()))


def token_price(model: str, tier: str = "") -> tuple[float, float] | None:
    """litellm's price of `model` per prompt and completion token at a tier (`""`: list; `"_batches"`: the batch
    API's), or None when its map has none (a zero prompt price is one registered for an unknown model)."""
    try:
        info = litellm.get_model_info(model=model)
    except Exception:
        return None
    prices: dict[str, Any] = dict(info)  # the tier's keys are not all declared in litellm's ModelInfo
    prompt, completion = prices.get(f"input_cost_per_token{tier}"), prices.get(f"output_cost_per_token{tier}")
    if not prompt or completion is None:
        return None
    return float(prompt), float(completion)


def has_price(model: str) -> bool:
    """Does litellm know this model's price? A zero price (registered here or by litellm's Router for an
    unknown model) counts as unknown."""
    try:
        info = litellm.get_model_info(model=model)
    except Exception:
        return False
    return bool(info.get("input_cost_per_token"))


@dataclass(frozen=True)
class Route:
    model: str  # the litellm model string actually called
    kind: RouteKind
    priced: bool  # False: cost is reported as unknown (null)
    inline_setup: bool  # litellm's sync set-up is pure CPU on this route: skip the executor hop


# Where litellm's provider handlers look for an API base when none is passed (litellm/main.py), in its order.
_ENV_BASES: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
    "text-completion-openai": ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
    "anthropic": ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"),
    "azure": ("AZURE_API_BASE",),
    "hosted_vllm": ("HOSTED_VLLM_API_BASE",),
}


def endpoint(model: str, api_base: str | None) -> str | None:
    """The endpoint litellm really calls for `model`: the API base given, else litellm's module setting, else
    the provider's environment variable (OPENAI_BASE_URL, ANTHROPIC_API_BASE, ...), else the provider's
    default. Part of every cache key: a judgement from one server is never served for another."""
    if api_base:
        return api_base.rstrip("/")
    if litellm.api_base:
        return str(litellm.api_base).rstrip("/")
    provider = _provider(model, None)
    for var in _ENV_BASES.get(provider, ()):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    try:
        found = litellm.get_api_base(model, {})
    except Exception:
        found = None
    return str(found).rstrip("/") if found else provider


def _provider(model: str, api_base: str | None) -> str:
    try:
        return str(litellm.get_llm_provider(model=model, api_base=api_base)[1])
    except Exception:
        return model.split("/", 1)[0] if "/" in model else "unknown"


def choose_route(model: str, api_base: str | None) -> Route:
    """The litellm route for a judge model: what is called, and how.

    - `openai/NAME` (or a bare OpenAI name) with an API base that is not OpenAI's and a NAME litellm has no
      price for is a self-hosted OpenAI-compatible server: called as `hosted_vllm/NAME`;
    - OpenAI itself, or a known OpenAI model behind a gateway, stays `openai/` (prices, `prompt_cache_key`);
    - `anthropic/` stays (its own HTTP path; prompt caching through `cache_control`);
    - anything else is called as given.
    Unpriced models get a zero price registered (see the module docstring) and report cost as unknown.
    """
    provider = _provider(model, api_base)
    name = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
    priced = has_price(model)
    kind: RouteKind = "other"
    called = model
    if provider == "openai":
        host = (urlparse(api_base).hostname or "") if api_base else ""
        if api_base and host not in _OPENAI_HOSTS and not priced:
            called, kind = f"hosted_vllm/{name}", "openai_compatible"
        else:
            kind = "openai"
    elif provider == "hosted_vllm":
        kind = "openai_compatible"
    elif provider == "anthropic":
        kind = "anthropic"
    if not priced:
        _register_zero_price(called, name, provider if kind != "openai_compatible" else "hosted_vllm")
    return Route(model=called, kind=kind, priced=priced, inline_setup=kind != "other")


def _known(model: str) -> bool:
    try:
        litellm.get_model_info(model=model)
    except Exception:
        return False
    return True


def _register_zero_price(model: str, name: str, provider: str) -> None:
    entry = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "litellm_provider": provider, "mode": "chat"}
    # The bare name too (the cost calculator tries it), unless litellm knows it: never clobber a real price.
    keys = [model] + ([name] if name != model and not _known(name) else [])
    try:
        litellm.register_model({k: dict(entry) for k in keys})
    except Exception:  # a registration failure only costs speed, never correctness
        logging.getLogger(__name__).debug("zero-price registration of %s failed", model, exc_info=True)


# --- litellm's per-call executor hop -----------------------------------------------------------------

inline_setup: contextvars.ContextVar[bool] = contextvars.ContextVar("reward_inline_setup", default=False)


def _is_litellm_setup(fn: Any) -> bool:
    """`acompletion` submits `partial(ctx.run, partial(litellm.main.completion, ...))`."""
    inner = fn.args[0] if isinstance(fn, partial) and fn.args else None
    main = sys.modules.get("litellm.main")
    return isinstance(inner, partial) and main is not None and inner.func is getattr(main, "completion", None)


class _InlineSetupExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, except that litellm's synchronous set-up of a call made by the judge
    client on a pure-CPU route runs inline (it does no I/O there: it only builds the request and returns
    the coroutine that sends it). Everything else (DNS lookups, other libraries) still goes to threads."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if inline_setup.get() and _is_litellm_setup(fn):
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # as a worker thread would: the awaiting caller gets it
                future.set_exception(exc)
            return future
        return super().submit(fn, *args, **kwargs)


def install_inline_setup(loop: Any) -> None:
    """Make the running loop's default executor the inline-set-up one (once per loop)."""
    current = getattr(loop, "_default_executor", None)
    if isinstance(current, _InlineSetupExecutor):
        return
    loop.set_default_executor(_InlineSetupExecutor(thread_name_prefix="asyncio"))
    if current is not None:
        current.shutdown(wait=False)
