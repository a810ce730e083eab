"""What judge calls cost, and the spend allowed (REWARD_MAX_COST, USD).

Each reply's tokens and cost (litellm's `response_cost`) are added to the caller's Usage here. With a budget,
each call first reserves its worst case (the prompt's tokens x the input price + max_tokens x the output
price, from litellm's price list) and is refused with a `budget_exhausted` JudgeError when what was spent,
plus what calls in flight may still cost, plus this worst case would pass the budget; when the call ends
its reservation is replaced by what it cost. So concurrent calls can never overshoot the budget together.

A call whose cost is unknown though its model is priced (sent, then cancelled: a hedge's loser, or a call cut
off by the request's deadline) is charged its worst case: it may be billed. A call cancelled before it was sent
(waiting for its turn) costs nothing. A model litellm has no price for makes the budget unenforceable: said once,
and every call goes out. One budget per judge: per `reward score` run, per `reward serve` worker process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from reward.errors import ConfigError
from reward.judge.base import Judge, JudgeError, Usage

log = logging.getLogger("reward.judge.budget")
_said: set[str] = set()


def account(usage: Usage, role: str, resp: Any, priced: bool) -> float | None:
    """Add one reply's call, tokens and cost to `usage`; returns its cost (None: unknown)."""
    usage.calls[role] += 1
    u = getattr(resp, "usage", None)
    if u is not None:
        usage.prompt_tokens += u.prompt_tokens or 0
        usage.completion_tokens += u.completion_tokens or 0
        # OpenAI-style details; litellm maps Anthropic's cache_read_input_tokens there too.
        usage.cached_tokens += getattr(getattr(u, "prompt_tokens_details", None), "cached_tokens", None) or 0
    cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
    if cost is None or not priced:
        usage.cost_known = False
        return None
    usage.cost += float(cost)
    return float(cost)


def account_cancelled(usage: Usage, role: str) -> None:
    """A call sent and then cancelled (a hedge's loser, a request's deadline): counted, its cost unknown."""
    usage.calls[role] += 1
    usage.cost_known = False


@dataclass(frozen=True)
class Price:
    input: float  # USD per prompt token
    output: float  # USD per completion token


def price_of(models: list[str]) -> Price | None:
    """The dearest price among a role's models (its deployments), input at the dearer of list and cache-write
    prices; None when any is unpriced (or none)."""
    from reward.judge.llm import litellm

    prices = []
    for model in models:
        try:
            info = litellm.get_model_info(model=model)
        except Exception:
            return None
        inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
        if not inp or out is None:  # a zero input price is one registered for an unknown model
            return None
        # a prompt-cache write is billed above list input (Anthropic: 1.25x): a worst case is the dearer one
        write = info.get("cache_creation_input_token_cost") or 0.0
        prices.append(Price(max(float(inp), float(write)), float(out)))
    if not prices:
        return None
    return Price(max(p.input for p in prices), max(p.output for p in prices))


@dataclass
class CallLedger:
    """One judge call's side calls: its worst case (reserved for it and for each hedged duplicate, counted
    in `duplicates`), the losers that answered anyway and those cancelled, and `cut`: every request sent and
    then cancelled, whoever cancelled it (a hedge's loser, the caller's deadline)."""

    worst: float
    duplicates: int = 0
    extra: list[Any] = field(default_factory=list)
    cancelled: int = 0
    cut: int = 0
    timed_out: int = 0  # attempts sent that timed out (retried or not): they may be billed too
    retried: int = 0  # worst cases reserved for attempts after a timed-out one (which keeps its own)


@dataclass(frozen=True)
class BudgetStatus:
    """For a run's summary: `limit` and `spent` in USD, `remaining` (None without a limit), `enforced`
    (False: no limit, or a price unknown, said in `note`)."""

    limit: float | None
    spent: float
    remaining: float | None
    enforced: bool
    note: str | None = None
    exhausted: bool = False  # a call was refused that can never fit under this limit (serve: not ready)


class Budget:
    """The spend allowed to one judge: `reserve` before a call, `settle` after it."""

    def __init__(
        self, limit: float | None, prices: dict[str, Price | None], models: dict[str, list[str]] | None = None
    ) -> None:
        self.prices = prices
        self.models = models or {}  # to price the roles when a limit comes later (set_limit)
        self.spent = 0.0
        self.reserved = 0.0  # worst cases of the calls in flight
        # the smallest call refused that could not fit even once every call in flight had settled: spent only
        # grows, so while the limit stays, no call that size fits again (`exhausted`)
        self.refused: float | None = None
        self.admitted: float | None = None  # the largest worst case reserved so far
        self.set_limit(limit)

    @classmethod
    def priced(cls, limit: float | None, models: dict[str, list[str]]) -> Budget:
        """A budget for roles calling these models (litellm's prices looked up only with a limit)."""
        return cls(limit, {role: price_of(m) for role, m in models.items()} if limit is not None else {}, models)

    def set_limit(self, limit: float | None) -> None:
        """Set (or lift) the limit: REWARD_MAX_COST at construction, or a flag (`--max-cost`) later."""
        if limit is not None and limit < 0:
            raise ConfigError(f"the judge budget must be a cost in USD >= 0, got {limit!r}")
        if limit is not None and not self.prices:
            self.prices = {role: price_of(m) for role, m in self.models.items()}
        self.limit = limit
        unpriced = sorted(role for role, p in self.prices.items() if p is None)
        self.note: str | None = None
        if limit is not None and (unpriced or not self.prices):
            self.note = (
                f"the judge budget (REWARD_MAX_COST) cannot be enforced: litellm has no price for the "
                f"{' and '.join(unpriced) or 'judge'} model; every call goes out and its cost is not known"
            )
            if self.note not in _said:  # once per process, however many judges are built
                _said.add(self.note)
                log.warning(self.note, extra={"event": "budget_unenforced"})
        self.enforced = limit is not None and self.note is None

    def worst_case(self, role: str, prompt_tokens: int, max_tokens: int, rate: Price | None = None) -> float:
        """The most one call may cost: every prompt token uncached, every allowed token written; at `rate`
        where the call has another price than the role's list price (a batch's)."""
        price = self.prices.get(role)
        if not self.enforced or price is None:
            return 0.0
        price = rate or price
        return prompt_tokens * price.input + max_tokens * price.output

    def reserve(self, amount: float) -> None:
        """Reserve a call's worst case, or refuse the call (JudgeError `budget_exhausted`)."""
        if not self.try_reserve(amount):
            assert self.limit is not None
            raise JudgeError(
                "budget_exhausted",
                f"the judge budget (REWARD_MAX_COST) of ${self.limit:.4f} would be passed: ${self.spent:.4f} "
                f"spent, ${self.reserved:.4f} held by calls in flight, this call may cost up to ${amount:.4f}; "
                "raise the budget and resume the run to score what is left",
            )

    def try_reserve(self, amount: float) -> bool:
        if not self.enforced:
            return True
        assert self.limit is not None
        if self.spent + self.reserved + amount > self.limit:
            # no room even without the calls in flight, for a call no larger than the largest already admitted
            # (not one oversized request): calls like the ones this budget paid for no longer fit, for good
            typical = self.admitted is not None and amount <= self.admitted
            if typical and not self.fits_alone(amount):
                self.refused = amount if self.refused is None else min(self.refused, amount)
            return False
        self.reserved += amount
        self.admitted = amount if self.admitted is None else max(self.admitted, amount)
        return True

    def fits_alone(self, amount: float) -> bool:
        """Would a call of this worst case fit with nothing in flight? (What is spent only grows: if not, never.)"""
        return not self.enforced or self.limit is None or self.spent + amount <= self.limit

    def settle(self, reserved: float, spent: float) -> None:
        """A call (or a hedged pair) ended: its reservations go, what it cost stays."""
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += spent

    def close(self, ledger: CallLedger, role: str, resp: Any, usages: list[Usage], priced: bool) -> Usage:
        """A call ended (`resp`: its answer, None when it failed or was cancelled): count the answer and its
        hedge's loser, or the requests cut off in flight, in each of `usages` and in the Usage returned (this
        call's own), settle its reservations."""
        this = Usage()
        spent = 0.0
        if resp is not None:
            for u in (*usages, this):
                u.hedged += len(ledger.extra) + ledger.cancelled
            for r in (resp, *ledger.extra):
                for u in (*usages, this):
                    cost = account(u, role, r, priced)
                spent += ledger.worst if cost is None else cost
            for _ in range(ledger.cancelled):
                for u in (*usages, this):
                    account_cancelled(u, role)
                spent += ledger.worst
        else:  # cancelled (the request's deadline) after it was sent: it may still be billed
            for _ in range(ledger.cut):
                for u in (*usages, this):
                    account_cancelled(u, role)
                spent += ledger.worst
        for _ in range(ledger.timed_out):  # whether or not a retry then answered
            for u in (*usages, this):
                account_cancelled(u, role)
            spent += ledger.worst
        self.settle(ledger.worst * (1 + ledger.duplicates + ledger.retried), spent)
        return this

    @property
    def exhausted(self) -> bool:
        """No call of the size last refused can fit any more (a larger limit lifts it)."""
        return (
            self.enforced
            and self.limit is not None
            and self.refused is not None
            and self.spent + self.refused > self.limit
        )

    def status(self) -> BudgetStatus:
        remaining = None if self.limit is None else max(0.0, self.limit - self.spent)
        return BudgetStatus(self.limit, self.spent, remaining, self.enforced, self.note, self.exhausted)


def set_max_cost(judge: Judge | Any, limit: float | None) -> BudgetStatus | None:
    """Give a judge (or the judge a CachedJudge wraps) a budget, e.g. from `--max-cost`, before it is used;
    None where it keeps none (the fakes: they cost nothing)."""
    budget = getattr(getattr(judge, "judge", judge), "budget", None)
    if not isinstance(budget, Budget):
        return None
    budget.set_limit(limit)
    return budget.status()


def budget_status(judge: Judge | Any) -> BudgetStatus | None:
    """The budget of a judge (or of the judge a CachedJudge wraps): None where it keeps none (the fakes)."""
    judge = getattr(judge, "judge", judge)
    budget = getattr(judge, "budget", None)
    return budget.status() if isinstance(budget, Budget) else None
