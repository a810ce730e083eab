"""The flex service tier (judge.service_tier): sent on every call, its capacity 429s retried with back-off until
the deadline and then the standard tier, refused at start-up for models without it, calls and cost by tier."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from reward.errors import ConfigError
from reward.judge.base import CallSettings, Usage
from reward.judge.litellm_judge import LiteLLMJudge
from reward.judge.llm import litellm
from reward.judge.tiers import check_tier, on_tier, tier_problem
from reward.rubric.service_tier import ServiceTier
from tests.conftest import TEST_MODEL, settings_for

FLEX = ServiceTier(name="flex", deadline_s=5.0, backoff_s=0.01)
MSG = [{"role": "user", "content": "Condense this."}]
BUSY = {"kind": "condense", "status": 429, "message": "Resource unavailable: flex capacity"}


def busy() -> Exception:
    return litellm.RateLimitError(message="Resource unavailable", llm_provider="openai", model="o3")


class Provider:
    """Answers `fail` errors first, then a reply that echoes the tier it was asked for."""

    def __init__(self, *fail: Exception, flex_busy: bool = False) -> None:
        self.fail = list(fail)
        self.flex_busy = flex_busy  # every call on the flex tier answers 429
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, extra: dict[str, Any]) -> Any:
        self.sent.append(extra)
        if self.fail:
            raise self.fail.pop(0)
        if self.flex_busy and extra.get("service_tier") == "flex":
            raise busy()
        return type("Resp", (), {"service_tier": extra.get("service_tier", "default")})()


def test_capacity_429s_are_retried_with_back_off_on_the_tier():
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    p = Provider(busy(), busy(), busy())
    _, served = asyncio.run(on_tier(FLEX, p, sleep))
    assert served == "flex" and p.sent == [{"service_tier": "flex"}] * 4
    assert waits == pytest.approx([0.01, 0.02, 0.04])  # doubled each time


def test_past_the_deadline_the_standard_tier_answers():
    p = Provider(*[busy() for _ in range(1000)])
    tier = ServiceTier(name="flex", deadline_s=0.2, backoff_s=0.05)
    t0 = time.monotonic()
    with pytest.raises(litellm.RateLimitError):  # the standard tier is busy too here: its error stands
        asyncio.run(on_tier(tier, p))
    assert 0.2 <= time.monotonic() - t0 < 1.0
    assert p.sent[-1] == {} and all(x == {"service_tier": "flex"} for x in p.sent[:-1])
    q = Provider(flex_busy=True)
    _, served = asyncio.run(on_tier(ServiceTier(name="flex", deadline_s=0.05, backoff_s=0.02), q))
    assert served == "default" and q.sent[-1] == {}


def test_other_errors_are_not_the_tiers_and_no_tier_sends_nothing():
    p = Provider(litellm.BadRequestError(message="bad", llm_provider="openai", model="o3"))
    with pytest.raises(litellm.BadRequestError):
        asyncio.run(on_tier(FLEX, p))
    assert p.sent == [{"service_tier": "flex"}]
    q = Provider()
    assert asyncio.run(on_tier(None, q))[1] is None and q.sent == [{}]


def test_models_without_the_tier_are_refused_at_start_up(fake_judge):
    assert tier_problem("openai/o3", "flex") is None
    assert "no flex tier for openai/gpt-4.1" in (tier_problem("openai/gpt-4.1", "flex") or "")
    assert tier_problem("anthropic/claude-3-5-sonnet-20241022", "flex") is not None
    check_tier(None, ["openai/gpt-4.1"])  # no tier: nothing to check
    with pytest.raises(ConfigError, match=r"openai/gpt-4\.1"):
        check_tier(FLEX, ["openai/o3", "openai/gpt-4.1"])
    settings = settings_for(fake_judge, service_tier=FLEX)  # openai/test-judge: litellm knows no flex for it
    with pytest.raises(ConfigError, match="no flex tier"):
        LiteLLMJudge(settings)


def test_through_litellm_each_call_asks_the_tier_and_usage_counts_calls_by_tier(fake_judge):
    tier = ServiceTier(name="flex", deadline_s=0.4, backoff_s=0.02)
    settings = settings_for(fake_judge, service_tier=tier, fake=True, condense=CallSettings(TEST_MODEL, 0.0, 256))
    client = LiteLLMJudge(settings)
    usage = Usage()

    async def main() -> None:
        await client.complete("condense", MSG, usage)  # flex answers
        fake_judge.script(BUSY, BUSY)
        await client.complete("condense", MSG, usage)  # two capacity 429s, then flex
        fake_judge.script(*[{**BUSY, "service_tier": "flex"}] * 200)
        await client.complete("condense", MSG, usage)  # flex busy past the deadline: the standard tier
        await client.aclose()

    asyncio.run(main())  # the busy replies left for the flex tier are dropped by the fixture
    sent = [c["service_tier"] for c in fake_judge.state.calls]
    assert sent[:4] == ["flex"] * 4 and sent[-1] is None  # the fallback asks no tier: the standard one
    # the 429s were the tier's to retry, not the transport loop's too (that would have stacked 3 retries each)
    assert usage.tier_calls == {"flex": 2, "default": 1} and usage.calls["condense"] == 3
    assert set(usage.tier_cost) == {"flex", "default"}
    total = Usage()
    total.add(usage)
    total.add(usage)
    assert total.tier_calls == {"flex": 4, "default": 2}


def test_a_rubric_declares_the_tier_and_a_model_without_it_is_refused_before_any_call(fake_judge, tmp_path):
    """`judge: {service_tier: {name: flex}}` in a rubric reaches the judge; for a model litellm knows no flex
    price for, `reward score` stops at start (exit 2) with the reason, before any judge call."""
    from reward.rubric.load import data_root, load_rubric
    from reward.scoring.build import judge_settings
    from tests.conftest import EXAMPLES, cli_env, run_cli

    text = (data_root() / "rubrics" / "execution_subagent.yaml").read_text()
    rubric = tmp_path / "flex.yaml"
    rubric.write_text(text.replace("judge:\n", "judge:\n  service_tier: {name: flex, deadline_s: 60}\n", 1))
    settings = judge_settings(load_rubric(str(rubric)))
    assert settings.service_tier is not None and settings.service_tier.name == "flex"
    env = {**cli_env(fake_judge, tmp_path / "cache"), "REWARD_JUDGE_MODEL": "openai/gpt-4.1-2025-04-14"}
    ran = run_cli(
        "score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--rubric", rubric, "--no-progress", env=env, check=False
    )
    assert ran.returncode == 2 and "flex" in ran.stderr and fake_judge.counts()["total"] == 0


def test_a_back_off_that_would_flood_the_provider_is_refused():
    from pydantic import ValidationError

    from reward.rubric.service_tier import ServiceTier

    with pytest.raises(ValidationError):
        ServiceTier(name="flex", backoff_s=1e-300)  # 999 calls in 2 s on capacity 429s
    assert ServiceTier(name="flex", backoff_s=0.01).backoff_s == 0.01
