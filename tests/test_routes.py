"""The litellm route per judge kind, zero-price registration, and the inline set-up: every failure category
and usage field survives the chosen route (over real HTTP to the fake judge)."""

from __future__ import annotations

import asyncio
import threading
import time
from functools import partial

import pytest

from reward.judge.base import CallSettings, InvalidReply, JudgeError, Usage
from reward.judge.litellm_judge import LiteLLMJudge
from reward.judge.llm import choose_route, has_price, inline_setup, install_inline_setup, litellm
from reward.service.reward_service import usage_out
from tests.conftest import settings_for

# Two judge kinds against the same fake OpenAI-compatible server: a known OpenAI model behind a gateway
# (stays `openai/`) and a self-hosted model (called as `hosted_vllm/`).
ROUTES = {"openai/gpt-4o-mini": "openai", "openai/test-judge": "openai_compatible"}
MSG = [{"role": "system", "content": "sys"}, {"role": "user", "content": "## Task Query\n\n" + "hello " * 200}]


def client_for(fj, model: str, **overrides) -> LiteLLMJudge:
    calls = {"condense": CallSettings(model, 0.0, 256), "grade": CallSettings(model, 0.0, 256)}
    return LiteLLMJudge(settings_for(fj, **calls, **overrides))


def complete(client: LiteLLMJudge, usage: Usage | None = None, role: str = "condense", messages=MSG):
    return asyncio.run(client.complete(role, messages, usage or Usage()))


def test_route_per_judge_kind():
    local = "http://127.0.0.1:9/v1"
    r = choose_route("openai/my-qwen", local)
    assert (r.model, r.kind, r.priced, r.inline_setup) == ("hosted_vllm/my-qwen", "openai_compatible", False, True)
    assert choose_route("openai/gpt-4o-mini", local).model == "openai/gpt-4o-mini"  # a priced model: a gateway
    assert choose_route("openai/my-qwen", "https://api.openai.com/v1").kind == "openai"
    assert choose_route("gpt-4o-mini", None).kind == "openai"
    assert choose_route("hosted_vllm/Qwen/Qwen3-8B", local).model == "hosted_vllm/Qwen/Qwen3-8B"
    assert choose_route("anthropic/claude-sonnet-4-5", None).kind == "anthropic"
    other = choose_route("bedrock/anthropic.claude-v2", None)
    assert other.kind == "other" and not other.inline_setup  # credentials may be fetched in its set-up


def test_zero_price_registered_but_cost_still_unknown(fake_judge):
    client = client_for(fake_judge, "openai/unpriced-judge-x")
    info = litellm.get_model_info(model="hosted_vllm/unpriced-judge-x")
    assert info["input_cost_per_token"] == 0.0  # registered: the cost calculator no longer raises
    assert not has_price("hosted_vllm/unpriced-judge-x")
    usage = Usage()
    complete(client, usage)
    assert usage.calls["condense"] == 1 and usage.prompt_tokens > 0
    assert usage_out(usage).cost is None  # never a made-up 0.0


def test_zero_price_never_clobbers_a_known_price():
    choose_route("hosted_vllm/gpt-4o-mini", "http://127.0.0.1:9/v1")
    assert has_price("openai/gpt-4o-mini") and has_price("gpt-4o-mini")


@pytest.mark.parametrize("model", ROUTES)
def test_usage_fingerprint_and_cached_tokens_survive_the_route(fake_judge, model):
    client = client_for(fake_judge, model)
    assert client.routes["grade"].kind == ROUTES[model]
    usage = Usage()
    first = complete(client, usage)
    assert first.fake and first.content.startswith("EXECUTION PLAN")
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0 and usage.cached_tokens == 0
    complete(client, usage)  # the same prefix again: the judge reports it cached
    assert usage.cached_tokens > 0.8 * usage.prompt_tokens / 2
    assert usage_out(usage).cached_tokens == usage.cached_tokens
    assert usage.cost_known is (ROUTES[model] == "openai")


@pytest.mark.parametrize("model", ROUTES)
@pytest.mark.parametrize(
    ("script", "category"),
    [
        ({"status": 400, "message": "bad schema"}, "judge_bad_request"),
        ({"status": 400, "message": "This model's maximum context length is 8192 tokens"}, "judge_context_window"),
        ({"status": 401, "message": "bad key"}, "judge_auth"),
        ({"status": 404, "message": "no such model"}, "judge_bad_request"),
        ({"status": 500, "message": "boom"}, "judge_unavailable"),
        ({"status": 503, "message": "overloaded"}, "judge_unavailable"),
        ({"status": 429, "headers": {"Retry-After": "0"}, "message": "slow down"}, "judge_rate_limited"),
    ],
)
def test_every_failure_category_survives_the_route(fake_judge, model, script, category):
    fake_judge.script(*[script] * 3)
    client = client_for(fake_judge, model, num_retries=0)
    with pytest.raises(JudgeError) as exc:
        complete(client)
    assert exc.value.category == category
    assert fake_judge.counts()["total"] == 1


def test_403_is_categorised_alike_on_both_routes(fake_judge):
    # litellm maps a 403 from an OpenAI-compatible server to a plain APIError on either route.
    categories = set()
    for model in ROUTES:
        fake_judge.script({"status": 403, "message": "forbidden"})
        with pytest.raises(JudgeError) as exc:
            complete(client_for(fake_judge, model, num_retries=0))
        categories.add(exc.value.category)
    assert categories == {"judge_auth"}  # never an outage: no retry fixes a key


def test_a_missing_key_is_judge_auth_not_an_outage():
    from reward.judge.litellm_judge import categorize, litellm

    missing = litellm.InternalServerError(
        "OpenAIException - Missing credentials. Please pass an `api_key`", llm_provider="openai", model="gpt-4.1"
    )
    assert categorize(missing) == "judge_auth"
    assert categorize(litellm.InternalServerError("upstream hiccup", llm_provider="openai", model="m")) == (
        "judge_unavailable"
    )


@pytest.mark.parametrize("model", ROUTES)
def test_timeout_retry_after_and_refusals_survive_the_route(fake_judge, model):
    client = client_for(fake_judge, model, num_retries=1, timeout_s=0.5)
    fake_judge.script({"status": 429, "headers": {"Retry-After": "0"}})
    assert complete(client).fake  # retried once, then served
    fake_judge.script({"delay": 2}, {"delay": 2})
    with pytest.raises(JudgeError) as exc:
        complete(client)
    assert exc.value.category == "judge_timeout"
    # The timed-out attempts are still at the judge (2 s each): let them end, so none takes the next script
    deadline = time.monotonic() + 10
    while fake_judge.state.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    fake_judge.state.script.clear()
    fake_judge.script({"refusal": "I can't help with that", "content": None})
    with pytest.raises(InvalidReply) as ref:
        complete(client)
    assert ref.value.category == "judge_refusal"
    fake_judge.script({"content": "", "finish_reason": "content_filter"})
    with pytest.raises(InvalidReply) as cf:
        complete(client)
    assert cf.value.category == "judge_refusal"


@pytest.mark.parametrize("model", ROUTES)
def test_litellm_setup_runs_inline_without_a_thread_hop(fake_judge, model, monkeypatch):
    import litellm.main

    real, threads = litellm.main.completion, []

    def recorded(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm.main, "completion", recorded)
    client = client_for(fake_judge, model)

    async def run():
        replies = await asyncio.gather(*(client.complete("condense", MSG, Usage()) for _ in range(4)))
        return replies, threading.get_ident()

    replies, loop_thread = asyncio.run(run())
    assert all(r.fake for r in replies)
    assert threads == [loop_thread] * 4  # litellm's set-up ran on the event loop's thread, every call


def test_inline_executor_runs_only_litellm_setup_and_passes_errors_on(monkeypatch):
    import contextvars

    import litellm.main

    ran_on = []

    def setup(**kw):
        ran_on.append(threading.get_ident())
        raise ValueError("bad call")

    monkeypatch.setattr(litellm.main, "completion", setup)

    async def run():
        loop = asyncio.get_running_loop()
        install_inline_setup(loop)
        inline_setup.set(True)
        ctx = contextvars.copy_context()
        with pytest.raises(ValueError, match="bad call"):
            await loop.run_in_executor(None, partial(ctx.run, partial(litellm.main.completion, model="x")))
        # anything else still goes to a worker thread
        other = await loop.run_in_executor(None, threading.get_ident)
        return other

    other = asyncio.run(run())
    assert ran_on == [threading.get_ident()]  # inline, on the loop's thread
    assert other != threading.get_ident()
