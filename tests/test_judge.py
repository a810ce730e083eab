"""The judge client over real HTTP: transport retries happen once, in the Router, honouring Retry-After."""

import asyncio
import time

import pytest

from reward.judge.base import InvalidReply, JudgeError, Usage
from reward.judge.litellm_judge import LiteLLMJudge, categorize
from reward.judge.llm import litellm
from tests.conftest import group, rollout, settings_for

MSG = [{"role": "user", "content": "## Task Query\n\nhello"}]


def complete(client: LiteLLMJudge, role: str = "condense"):
    return asyncio.run(client.complete(role, MSG, Usage()))


def test_429_with_retry_after_is_retried_after_the_wait(fake_judge):
    fake_judge.script({"status": 429, "headers": {"Retry-After": "1"}, "message": "slow down"})
    client = LiteLLMJudge(settings_for(fake_judge, num_retries=2))
    t0 = time.monotonic()
    reply = complete(client)
    elapsed = time.monotonic() - t0
    assert reply.content.startswith("EXECUTION PLAN") and reply.fake
    assert fake_judge.counts()["total"] == 2  # one failure, one retry: nothing stacked
    assert elapsed >= 1.0


def test_5xx_retried_up_to_num_retries_then_categorised(fake_judge):
    fake_judge.script(*[{"status": 503, "headers": {"Retry-After": "0"}}] * 10)
    client = LiteLLMJudge(settings_for(fake_judge, num_retries=2))
    with pytest.raises(JudgeError) as exc:
        complete(client)
    assert exc.value.category == "judge_unavailable"
    assert fake_judge.counts()["total"] == 3  # 1 + num_retries, no SDK retries on top


def test_timeout_is_explicit_and_categorised(fake_judge):
    fake_judge.script({"delay": 3})
    client = LiteLLMJudge(settings_for(fake_judge, timeout_s=0.5, num_retries=0))
    t0 = time.monotonic()
    with pytest.raises(JudgeError) as exc:
        complete(client)
    assert exc.value.category == "judge_timeout"
    assert time.monotonic() - t0 < 2.5


def test_empty_reply_is_invalid_content_for_condensing(make_scorer, fake_judge):
    from reward.judge.base import Reply
    from reward.scoring.plan_check import check_plan

    with pytest.raises(InvalidReply) as exc:
        check_plan(Reply("   ", False), ("Task Outcome",))
    assert exc.value.category == "judge_empty_reply"


@pytest.mark.parametrize(
    "entry",
    [
        {"refusal": "I can't help with that", "content": None},
        {"body": {"id": "x", "object": "chat.completion", "model": "m", "choices": []}},
        {"content": ""},
    ],
    ids=["refusal", "no-choices", "empty"],
)
def test_every_reply_of_the_fake_judge_marks_the_group_fake_even_one_rejected_unread(make_scorer, fake_judge, entry):
    """README: any plan or verdict the fake gave, valid or not, marks the group: a refusal by the API or a reply
    without choices too (the client rejects those before the scorer's validation sees them)."""
    from reward.core.trajectory import Group
    from reward.scoring.build import run_scoring

    fake_judge.script(*[entry] * 10)  # every call, the rollout's plan first: no valid fake reply at all
    scorer = make_scorer()
    data = group("g-fake", rollouts=[rollout("x")], reference={"plan": "1. Run pytest -q"})
    result = run_scoring(scorer, scorer.score_group(Group.model_validate(data), Usage()))
    assert result.rollouts[0].status == "error" and result.judge.fake


def test_concurrency_is_bounded_by_the_semaphore(fake_judge):
    fake_judge.state.latency = 0.2
    client = LiteLLMJudge(settings_for(fake_judge, concurrency=2))

    async def many():
        return await asyncio.gather(*(client.complete("condense", MSG, Usage()) for _ in range(6)))

    t0 = time.monotonic()
    asyncio.run(many())
    # 6 calls, 2 at a time, 0.2 s each: at least 3 rounds
    assert time.monotonic() - t0 >= 0.6
    assert client.usage.calls["condense"] == 6


def test_categories():
    assert categorize(litellm.Timeout("t", model="m", llm_provider="openai")) == "judge_timeout"
    assert categorize(TimeoutError()) == "judge_timeout"
    assert categorize(ValueError("?")) == "judge_error"


def test_router_config_file_routes_both_roles_and_is_the_only_retry_loop(fake_judge, tmp_path):
    from reward.judge.router_config import load_router_config

    cfg = tmp_path / "router.yaml"
    deployments = "\n".join(
        f"  - model_name: {role}\n    litellm_params: {{model: openai/test-judge, api_base: {fake_judge.api_base}, api_key: sk-x}}"
        for role in ("condense", "grade")
    )
    cfg.write_text(f"model_list:\n{deployments}\nnum_retries: 1\n")
    client = LiteLLMJudge(settings_for(fake_judge, num_retries=5), load_router_config(str(cfg)))
    assert complete(client, "grade").content
    fake_judge.reset()
    fake_judge.script(*[{"status": 503, "headers": {"Retry-After": "0"}}] * 5)
    with pytest.raises(JudgeError):
        complete(client)
    assert fake_judge.counts()["total"] == 2  # the Router's num_retries=1, not ours (5) on top
    fake_judge.reset()


def test_router_config_must_name_both_roles(tmp_path):
    from reward.errors import ConfigError
    from reward.judge.router_config import load_router_config

    cfg = tmp_path / "router.yaml"
    cfg.write_text("model_list:\n  - model_name: judge\n    litellm_params: {model: openai/x}\n")
    with pytest.raises(ConfigError, match="'condense' and 'grade'"):
        load_router_config(str(cfg))


def test_redaction_neither_mangles_text_nor_misses_keys():
    from reward.redaction import redact

    # a short test key is removed where it stands alone, never from inside words
    assert redact("OpenAIException - bad key x", ["x"]) == "OpenAIException - bad key [redacted]"
    # a key without a known prefix, echoed by the judge after "API key" / "Bearer" / "api_key="
    assert redact("Incorrect API key provided: abcdef1234567890XYZ.", []) == "Incorrect API key provided: [redacted]."
    assert redact("Authorization: Bearer zzzzzzzz9999", []) == "Authorization: Bearer [redacted]"
    assert redact("url?api_key=hunter2hunter2 failed", []) == "url?api_key=[redacted] failed"
    assert "[redacted]" not in redact("pattern ^[a-z]*$ in keyless text: the api key is wrong", [])
    assert redact("x mysecretvalue123 and prefixmysecretvalue123", ["mysecretvalue123"]) == (
        "x [redacted] and prefix[redacted]"
    )


def test_router_config_keys_are_secrets(fake_judge):
    from reward.judge.litellm_judge import LiteLLMJudge

    config = {
        "model_list": [
            {"model_name": "condense", "litellm_params": {"model": "openai/m", "api_key": "plainrouterkey42"}},
            {"model_name": "grade", "litellm_params": {"model": "openai/m", "api_key": "plainrouterkey42"}},
        ]
    }
    client = LiteLLMJudge(settings_for(fake_judge), config)
    assert "plainrouterkey42" in client._secrets
