"""What a batch prefill costs: the report's tokens and prices (the batch price next to the list price), and the
judge's budget (`--max-cost` / REWARD_MAX_COST, reward.judge.budget) kept across the batches.

Before a batch is uploaded, each request reserves its worst case at the batch price by the budget's own rule
(every prompt token, every allowed completion token); a request that does not fit is held back, and offered to
the next batch once the batches sent beside it are read; one that does not fit with no batch in flight is left
to the synchronous run, which refuses it too. When a batch is read its reservation is settled with what it
cost, so the budget's `spent` (the run's summary line, and what the synchronous run that follows may still
spend) includes the batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reward.judge.base import Usage
from reward.judge.batch_api import BatchAPI, LineResult, batch_price
from reward.judge.budget import Budget, Price
from reward.judge.llm import litellm
from reward.scoring.batch_replay import Request
from reward.scoring.dry_run_report import price

log = logging.getLogger("reward.scoring.batch")
BatchProgress = Callable[[str], None]  # one line per change: what the batches are doing


@dataclass
class BatchReport:
    """What the prefill did: batches, requests, tokens and cost at the batch price."""

    batches: list[str] = field(default_factory=list)  # batch ids, in the order made (resumed ones included)
    requests: int = 0  # request lines sent (re-asks and resubmissions included)
    answered: int = 0  # lines the batches answered
    passes: int = 0
    left: dict[str, str] = field(default_factory=dict)  # request id -> why the synchronous run asks it
    warnings: list[str] = field(default_factory=list)  # failed or expired batches, said loudly
    usage: Usage = field(default_factory=Usage)  # the answered lines' tokens; cost at the batch price
    list_cost: float | None = 0.0  # the same tokens at the list price (None: unknown)

    def warn(self, message: str, progress: BatchProgress) -> None:
        self.warnings.append(message)
        log.warning("%s", message)
        progress(f"WARNING: {message}")


class BatchCost:
    """The prices of one batch endpoint's roles and the judge's budget, for the batches of one prefill."""

    def __init__(self, api: BatchAPI, report: BatchReport) -> None:
        self.api, self.report = api, report
        self.prices = {role: batch_price(route) for role, route in api.routes.items()}
        self.list_prices = {role: price(route) for role, route in api.routes.items()}
        budget = getattr(api.judge, "budget", None)
        self.budget = budget if isinstance(budget, Budget) else Budget(None, {})
        self.held: dict[str, float] = {}  # input file id -> what its batch holds of the budget

    def worst_case(self, r: Request) -> float:
        """What a request may cost at most at the batch price (the list price where the batch one is unknown);
        0 without a budget to keep (then the token count is not needed)."""
        if not self.budget.enforced:
            return 0.0
        s = self.api.judge.settings
        call = s.condense if r.role == "condense" else s.grade
        try:
            prompt = int(litellm.token_counter(model=self.api.routes[r.role], messages=r.messages))
        except Exception:  # an unknown model's tokenizer: about 4 characters a token
            prompt = sum(len(str(m.get("content") or "")) for m in r.messages) // 4
        bp = self.prices.get(r.role)
        return self.budget.worst_case(r.role, prompt, call.max_tokens, Price(*bp) if bp else None)

    def held_back(self, refused: int) -> str:
        """A progress line: requests the budget holds back until the batch sent beside them is read."""
        status = self.budget.status()
        return (
            f"the judge budget (REWARD_MAX_COST) of ${status.limit or 0.0:.4f} cannot hold {refused} more "
            f"request(s) at their worst case (${status.spent:.4f} spent, ${self.budget.reserved:.4f} held by "
            "this batch): offered to the next batch, once this one is read and holds only what it cost"
        )

    def refused_warning(self, refused: int) -> str:
        """Requests that do not fit with no batch in flight: none ever will (what is spent only grows)."""
        status = self.budget.status()
        return (
            f"the judge budget (REWARD_MAX_COST) of ${status.limit or 0.0:.4f} cannot hold {refused} more "
            f"request(s) at their worst case even with no batch in flight (${status.spent:.4f} spent): not sent "
            "in a batch; left to the synchronous run, which refuses them too (budget_exhausted: their worst case "
            "at the list price is no smaller)"
        )

    def settle(
        self, file_id: str, results: dict[str, LineResult], sent: list[str], kept: dict[str, LineResult]
    ) -> None:
        """A batch was read: count its lines (`kept`: the usable replies) and settle its reservation (a batch
        a stopped run made holds nothing in this one) with what it cost."""
        self.budget.settle(self.held.pop(file_id, 0.0), self.account(results, sent, kept))

    def release(self, file_id: str, billed: bool) -> None:
        """A batch dropped unread: refused when created (nothing `billed`), or its output gone (`billed`, at a cost
        unknown: the budget charges its worst case, as it does a call whose cost is unknown; the report's tokens
        and cost cannot count it)."""
        held = self.held.pop(file_id, 0.0)
        self.budget.settle(held, held if billed else 0.0)

    def account(self, results: dict[str, LineResult], sent: list[str], kept: dict[str, LineResult]) -> float:
        """Count a batch's lines in the report; returns its cost for the budget (at the batch price, or the
        list price where that is unknown)."""
        u = self.report.usage
        charged = 0.0
        for cid in sent:
            got = results.get(cid)
            if got is None or got.body is None:
                continue
            role = cid.partition("-")[0]
            usage: Any = got.body.get("usage")
            if not isinstance(usage, dict):
                usage = {}
            prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
            u.prompt_tokens += prompt  # a malformed completion's tokens too: the provider charges its line
            u.completion_tokens += completion
            reply = kept.get(cid)
            if reply is not None and reply.body is not None:
                u.calls[role] += 1
                self.report.answered += 1
            bp, lp = self.prices.get(role), self.list_prices.get(role)
            if bp is None:
                u.cost_known = False
            else:
                u.cost += prompt * bp[0] + completion * bp[1]
            if lp is None or self.report.list_cost is None:
                self.report.list_cost = None
            else:
                self.report.list_cost += prompt * lp[0] + completion * lp[1]
            rate = bp or lp
            charged += prompt * rate[0] + completion * rate[1] if rate else 0.0
        return charged


def _count(value: object) -> int:
    """A token count from a provider's line: anything but a count is none."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
