"""The judge's cost budget (REWARD_MAX_COST): reservations of each call's worst case, refusals as
`budget_exhausted` errors before anything is sent, and no enforcement (said once) without a price."""

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

import pytest

from reward.core.trajectory import Group
from reward.judge.base import CallSettings, JudgeError, Usage
from reward.judge.budget import Budget, CallLedger, Price, budget_status, price_of, set_max_cost
from reward.judge.litellm_judge import LiteLLMJudge
from tests.conftest import group, rollout, settings_for

PRICED = "openai/gpt-4o-mini"  # in litellm's bundled price list
MSG = [{"role": "user", "content": "## Task Query\n\nhello"}]


def priced_settings(fj, **overrides):
    return settings_for(fj, condense=CallSettings(PRICED, 0.0, 512), grade=CallSettings(PRICED, 0.0, 1024), **overrides)


def test_prices_come_from_litellm_and_an_unknown_one_is_none():
    p = price_of([PRICED])
    assert p is not None and p.input > 0 and p.output > p.input
    assert price_of([PRICED, "openai/surely-not-a-model-xyz"]) is None
    assert price_of([]) is None


def test_reservations_keep_concurrent_calls_under_the_budget():
    b = Budget(1.0, {"grade": Price(0.001, 0.002)})
    worst = b.worst_case("grade", prompt_tokens=100, max_tokens=100)
    assert worst == pytest.approx(0.3)
    b.reserve(worst)
    b.reserve(worst)
    b.reserve(worst)  # 0.9 held by three calls in flight
    with pytest.raises(JudgeError) as exc:
        b.reserve(worst)
    assert exc.value.category == "budget_exhausted" and "REWARD_MAX_COST" in exc.value.message
    b.settle(worst, 0.05)  # one call ended, it cost less than its worst case: room again
    b.reserve(worst)
    s = b.status()
    assert s.enforced and s.spent == pytest.approx(0.05) and s.remaining == pytest.approx(0.95)


def test_a_cancelled_hedge_is_charged_its_worst_case_and_counted_as_unknown_cost():
    b = Budget(10.0, {"grade": Price(0.001, 0.001)})
    ledger = CallLedger(worst=0.5, duplicates=1, cancelled=1)
    b.reserve(0.5)
    b.reserve(0.5)

    class Resp:
        usage = None
        _hidden_params: ClassVar[dict] = {"response_cost": 0.1}

    usage = Usage()
    this = b.close(ledger, "grade", Resp(), [usage], priced=True)
    assert b.reserved == 0 and b.spent == pytest.approx(0.6)  # 0.1 answered + 0.5 for the cancelled one
    assert usage.calls["grade"] == 2 and this.calls["grade"] == 2 and usage.cost_known is False


def test_an_unpriced_judge_is_not_held_to_the_budget_and_says_so_once(fake_judge, monkeypatch, caplog):
    monkeypatch.setenv("REWARD_MAX_COST", "0.000001")
    from reward.judge import budget

    budget._said.clear()
    with caplog.at_level(logging.WARNING, logger="reward.judge.budget"):
        client = LiteLLMJudge(settings_for(fake_judge))
        LiteLLMJudge(settings_for(fake_judge))
    assert [r.message for r in caplog.records].count(client.budget.note) == 1
    assert "cannot be enforced" in (client.budget.note or "")
    asyncio.run(client.complete("condense", MSG, Usage()))  # goes out whatever it costs
    status = budget_status(client)
    assert status is not None and not status.enforced and status.limit == 0.000001


def test_a_call_that_would_pass_the_budget_is_refused_before_it_is_sent(fake_judge, monkeypatch):
    monkeypatch.setenv("REWARD_MAX_COST", "1")
    client = LiteLLMJudge(priced_settings(fake_judge))
    usage = Usage()

    async def main() -> JudgeError:
        try:
            for _ in range(3):  # what these calls cost depends on the fake's replies: measured, not assumed
                await client.complete("condense", MSG, usage)
            # room for half of the next call's worst case (its prompt tokens and max_tokens at list price)
            worst = client.budget.worst_case("condense", usage.prompt_tokens // 3, 512)
            set_max_cost(client, usage.cost + worst / 2)
            await client.complete("condense", MSG, usage)
        except JudgeError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("never refused")

    exc = asyncio.run(main())
    assert exc.category == "budget_exhausted"
    sent = fake_judge.counts()["condense"]
    assert sent == usage.calls["condense"] == 3  # the refused call never reached the judge
    status = budget_status(client)
    assert status is not None and status.enforced and status.limit is not None
    assert status.spent == pytest.approx(usage.cost) and 0 < status.spent <= status.limit
    assert status.remaining == pytest.approx(status.limit - status.spent)


def test_an_exhausted_budget_makes_rollouts_errors_never_numbers(make_scorer, fake_judge, monkeypatch):
    monkeypatch.setenv("REWARD_MAX_COST", "0.00001")  # less than any call's worst case
    scorer = make_scorer(condense=CallSettings(PRICED, 0.0, 512), grade=CallSettings(PRICED, 0.0, 1024), num_retries=0)
    data = group(rollouts=[rollout("x"), rollout("y")], reference={"plan": "EXECUTION PLAN"})
    result = asyncio.run(scorer.score_group(Group.model_validate(data), Usage()))
    assert [r.status for r in result.rollouts] == ["error", "error"]
    assert all(r.reward is None and r.error.category == "budget_exhausted" for r in result.rollouts)
    assert fake_judge.counts()["total"] == 0
    assert budget_status(scorer.judge) is not None


def test_a_limit_set_after_the_judge_is_built_is_enforced(fake_judge, make_scorer):
    from reward.judge.budget import set_max_cost

    client = LiteLLMJudge(priced_settings(fake_judge))
    assert budget_status(client).limit is None and not client.budget.enforced
    status = set_max_cost(client, 0.00001)  # as `--max-cost` would, on the scorer's judge
    assert status is not None and status.enforced and status.remaining == pytest.approx(0.00001)
    with pytest.raises(JudgeError) as exc:
        asyncio.run(client.complete("condense", MSG, Usage()))
    assert exc.value.category == "budget_exhausted" and fake_judge.counts()["total"] == 0
    with pytest.raises(Exception, match="USD >= 0"):
        set_max_cost(client, -1.0)
    assert set_max_cost(object(), 1.0) is None  # a judge without a budget (the fakes)


def test_score_max_cost_stops_the_run_at_the_budget_and_a_larger_one_resumes_it(fake_judge, tmp_path):
    """`reward score --max-cost`: past the budget the rollouts are budget_exhausted errors (exit 4, the summary
    says what was spent of what), never numbers; the same command with room scores exactly those."""
    from tests.conftest import EXAMPLES, cli_env, read_jsonl, run_cli

    env = {**cli_env(fake_judge, tmp_path / "cache"), "REWARD_JUDGE_MODEL": PRICED, "COLUMNS": "250"}
    out = tmp_path / "o.jsonl"
    tight = run_cli("score", EXAMPLES, "-o", out, "--max-cost", "0.01", "--no-progress", env=env, check=False)
    rollouts = [r for g in read_jsonl(out) for r in g["rollouts"]]
    stopped = [r for r in rollouts if r["status"] == "error"]
    assert tight.returncode == 4 and stopped
    assert {r["error"]["category"] for r in stopped} == {"budget_exhausted"} and all(
        r["reward"] is None for r in stopped
    )
    assert "of $0.0100" in tight.stdout and "left" in tight.stdout
    sent = fake_judge.counts()["total"]
    assert 0 < sent < 44  # the examples need 44 calls: the budget stopped some before they were sent
    again = run_cli("score", EXAMPLES, "-o", out, "--max-cost", "5", "--no-progress", env=env)
    assert again.returncode == 0
    assert all(r["status"] != "error" for g in read_jsonl(out) for r in g["rollouts"])


def worst_of(client: LiteLLMJudge, role: str = "condense") -> float:
    """The worst case `complete` reserves for MSG: its prompt's tokens and max_tokens at list price."""
    call = client.call_settings(role)
    return client.budget.worst_case(role, client._estimate_tokens(role, call, MSG) - call.max_tokens, call.max_tokens)


def outcome(client: LiteLLMJudge, usage: Usage) -> str:
    """One condense call of MSG: "answered", or the category of the JudgeError that ended it."""

    async def main() -> str:
        try:
            await client.complete("condense", MSG, usage)
        except JudgeError as exc:
            return exc.category
        finally:
            await client.aclose()
        return "answered"

    return asyncio.run(main())


async def cut_off(fj, call: Any, received: int) -> None:
    """Run `call`, cancel it once the fake judge has received `received` requests (so it was sent), as a
    request's deadline would; the cancellation is the caller's, so it ends here."""
    task = asyncio.ensure_future(call)
    while fj.counts()["total"] < received and not task.done():
        await asyncio.sleep(0.005)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_call_cut_off_by_its_deadline_is_charged_its_worst_case_and_counted(fake_judge, monkeypatch):
    """Sent, then cancelled (a request's deadline, an outer timeout): the provider may bill it, so the budget
    keeps its worst case and the usage counts it at an unknown cost; else `serve` under deadlines passes the
    budget without ever seeing a cost."""
    monkeypatch.setenv("REWARD_MAX_COST", "1")
    fake_judge.state.latency = 1.0
    client = LiteLLMJudge(priced_settings(fake_judge))
    worst = worst_of(client)
    set_max_cost(client, 2.5 * worst)  # room for two calls' worst cases, not three
    usage = Usage()

    async def main() -> None:
        try:
            for n in (1, 2):
                await cut_off(fake_judge, client.complete("condense", MSG, usage), received=n)
            await client.complete("condense", MSG, usage)
        finally:
            await client.aclose()

    with pytest.raises(JudgeError) as exc:
        asyncio.run(main())
    assert exc.value.category == "budget_exhausted"  # the third call: two cut-off calls hold the budget
    assert client.budget.spent == pytest.approx(2 * worst) and client.budget.reserved == pytest.approx(0)
    assert usage.calls["condense"] == client.usage.calls["condense"] == 2
    assert usage.cost_known is False and usage.cost == 0  # the request's `cost`: null, not 0
    assert fake_judge.counts()["condense"] == 2  # the refused call was not sent


def test_a_call_cancelled_before_it_was_sent_costs_nothing(fake_judge, monkeypatch):
    """Cancelled while waiting for its turn under the judge limits (its worst case already reserved): never
    sent, so its reservation goes back and nothing is counted."""
    from reward.judge.limits import JudgeLimiter, RoleLimits

    monkeypatch.setenv("REWARD_MAX_COST", "1")
    fake_judge.state.latency = 1.0
    client = LiteLLMJudge(priced_settings(fake_judge))
    client.limiter = JudgeLimiter({"condense": RoleLimits(max_parallel_requests=1)}, None, "budget-test")
    usage = Usage()

    async def main() -> None:
        try:
            first = asyncio.ensure_future(client.complete("condense", MSG, usage))
            while fake_judge.counts()["total"] < 1:  # the first call holds the role's one slot
                await asyncio.sleep(0.005)
            waiting = asyncio.ensure_future(client.complete("condense", MSG, usage))
            await asyncio.sleep(0.1)
            assert client.budget.reserved == pytest.approx(2 * worst_of(client))  # both reserved, one sent
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            await first
        finally:
            await client.aclose()

    asyncio.run(main())
    assert fake_judge.counts()["condense"] == usage.calls["condense"] == 1 and usage.cost_known
    assert client.budget.spent == pytest.approx(usage.cost) and client.budget.reserved == pytest.approx(0)


def test_attempts_that_time_out_are_charged_and_counted_whether_or_not_a_retry_answers(fake_judge, monkeypatch):
    """The judge's own timeout: each attempt was sent and may be billed. Charged its worst case and counted at an
    unknown cost, so `--max-cost` cannot be passed by calls that keep timing out."""
    monkeypatch.setenv("REWARD_MAX_COST", "1")
    client = LiteLLMJudge(priced_settings(fake_judge, timeout_s=0.5, num_retries=2))
    usage = Usage()
    fake_judge.state.latency = 1.5

    assert outcome(client, usage) == "judge_timeout"
    worst = client.budget.worst_case("condense", usage.prompt_tokens or 10, 512)
    assert usage.calls["condense"] == 3 and usage.cost_known is False  # the 3 attempts the judge received
    status = budget_status(client)
    assert status is not None and status.spent >= 3 * worst * 0.9 and client.budget.reserved == 0


def test_a_retry_reserves_its_own_worst_case_so_timeouts_never_pass_the_budget(fake_judge, monkeypatch):
    """Room for one call's worst case only: the first attempt times out (and may be billed), so the retry
    is refused as budget_exhausted instead of being sent; what was spent stays within the limit."""
    client = LiteLLMJudge(priced_settings(fake_judge, timeout_s=0.5, num_retries=2))
    set_max_cost(client, 1.0)  # enforced: the judge now counts prompt tokens for worst cases
    set_max_cost(client, worst_of(client) * 1.01)
    fake_judge.state.latency = 1.5
    usage = Usage()

    assert outcome(client, usage) == "budget_exhausted"
    assert usage.calls["condense"] == 1  # one attempt sent (and charged); the retries never were
    status = budget_status(client)
    assert status is not None and status.limit is not None
    assert status.spent <= status.limit and client.budget.reserved == pytest.approx(0)


def test_exhausted_only_when_a_refused_call_could_not_fit_even_after_the_calls_in_flight():
    b = Budget(1.0, {"grade": Price(0.001, 0.001)})
    b.reserve(0.6)
    assert not b.try_reserve(0.5)  # refused for the call in flight: room again once it settles cheaply
    assert not b.exhausted and not b.status().exhausted
    b.settle(0.6, 0.7)  # it cost 0.7: 0.3 left, a 0.5 call can never fit again
    assert not b.try_reserve(0.5)
    assert b.exhausted and b.status().exhausted
    assert b.try_reserve(0.2)  # smaller calls still go out while they fit
    b.set_limit(5.0)  # a larger limit lifts it
    assert not b.exhausted


def test_a_worst_case_covers_a_prompt_cache_write_billed_above_list_input():
    """Anthropic bills a cache_control write at 1.25x input: a call that writes its whole prompt to the cache
    and uses every allowed token must not cost more than its reserved worst case."""
    import litellm

    model = "anthropic/claude-sonnet-4-5-20250929"
    info = litellm.get_model_info(model=model)
    assert info["cache_creation_input_token_cost"] > info["input_cost_per_token"]  # the premise
    b = Budget.priced(1.0, {"grade": [model]})
    worst = b.worst_case("grade", 10_000, 1024)
    billed = 10_000 * info["cache_creation_input_token_cost"] + 1024 * info["output_cost_per_token"]
    assert billed <= worst * (1 + 1e-9)


@pytest.mark.parametrize("value", ["0", "inf", "-1", "nan"])
def test_max_cost_flag_takes_what_the_variable_takes(fake_judge, tmp_path, value):
    """--max-cost and REWARD_MAX_COST: one rule (a positive, finite USD amount), a usage error otherwise."""
    from tests.conftest import EXAMPLES, cli_env, run_cli

    env = cli_env(fake_judge, tmp_path / "cache")
    flag = run_cli("score", EXAMPLES, "-o", tmp_path / "o.jsonl", f"--max-cost={value}", env=env, check=False)
    assert flag.returncode == 2 and "--max-cost" in flag.stderr and "Traceback" not in flag.stderr
    var = run_cli("score", EXAMPLES, "-o", tmp_path / "o.jsonl", env={**env, "REWARD_MAX_COST": value}, check=False)
    assert var.returncode == 2 and "REWARD_MAX_COST" in var.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_a_retry_after_a_refusal_reuses_the_reservation_and_is_sent(fake_judge):
    """A 503 is not billed: with room for one worst case only, the retry after it goes out and answers (a
    reservation per attempt would refuse it)."""
    client = LiteLLMJudge(priced_settings(fake_judge, num_retries=2))
    set_max_cost(client, 1.0)  # enforced: the judge now counts prompt tokens for worst cases
    worst = worst_of(client)
    set_max_cost(client, worst * 1.01)
    fake_judge.script({"status": 503, "message": "overloaded"})
    usage = Usage()

    async def main() -> str:
        try:
            reply = await client.complete("condense", MSG, usage)
        finally:
            await client.aclose()
        return reply.content

    assert asyncio.run(main())
    assert fake_judge.counts()["condense"] == 2 and client.budget.reserved == pytest.approx(0)


def test_one_oversized_call_does_not_make_the_budget_exhausted():
    """A call larger than any the budget admitted (a huge query), refused, says nothing of the calls that still
    fit: serve would otherwise report not ready for good after one hostile request."""
    b = Budget(1.0, {"grade": Price(0.001, 0.001)})
    assert not b.try_reserve(5.0)  # larger than the whole budget, before anything was admitted
    assert not b.exhausted
    b.reserve(0.1)
    b.settle(0.1, 0.05)
    assert not b.try_reserve(0.99)  # no room for this one, but it is no typical call
    assert not b.exhausted and b.try_reserve(0.1)


def test_a_retry_after_a_hedged_pair_timed_out_reserves_only_its_own_worst_case():
    """The call and its duplicate each hold a reservation and both timed out (both may be billed): the retry
    needs one more, not two, so near the limit it still goes out."""
    from reward.judge import litellm_judge

    class Hedger:  # a hedged attempt whose call and duplicate both time out
        enabled = True

        async def run(self, role, sent, slot, spare):
            await spare()
            outcomes = await asyncio.gather(sent(), sent(), return_exceptions=True)
            raise outcomes[0]

    class Judge:  # what LiteLLMJudge._attempt uses
        _attempt = LiteLLMJudge._attempt
        _spare = LiteLLMJudge._spare
        semaphore = limiter = None

    async def no_slot(*_):
        return None

    import litellm

    async def timing_out():
        raise litellm.Timeout("t", model="m", llm_provider="openai")

    async def main() -> None:
        j = Judge()
        j.budget, j.hedger = Budget(1.0, {"grade": Price(1e-3, 1e-3)}), Hedger()
        ledger = CallLedger(0.3)
        j.budget.reserve(0.3)
        with pytest.raises(litellm.Timeout):
            await j._attempt("grade", 10, ledger, timing_out)
        assert ledger.timed_out == 2 and ledger.duplicates == 1 and j.budget.reserved == pytest.approx(0.6)
        with pytest.raises(litellm.Timeout):  # sent and timed out again: not refused as budget_exhausted
            await j._attempt("grade", 10, ledger, timing_out)  # 0.9 <= 1.0: it fits
        assert ledger.retried == 1

    original = litellm_judge.spare_slot
    litellm_judge.spare_slot = lambda semaphore, take: no_slot()
    try:
        asyncio.run(main())
    finally:
        litellm_judge.spare_slot = original
