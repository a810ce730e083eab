"""Hard penalties for degenerate rollouts, checked before any judge call so they cost nothing.

Order (first match wins, as in the paper): too long, no final answer, no commands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from reward.rubric import Penalties
from reward.trajectory import Rollout

_FINAL_ANSWER = re.compile(r"<final_answer>(.*?)</final_answer>", re.DOTALL)


@dataclass(frozen=True)
class Penalty:
    kind: str  # too_long | missing_final_answer | no_commands
    reward: float
    detail: str


def has_final_answer(text: str) -> bool:
    """A closed, non-empty <final_answer>...</final_answer> block."""
    return any(m.group(1).strip() for m in _FINAL_ANSWER.finditer(text))


def trajectory_text(rollout: Rollout) -> str:
    """What a rollout's context accumulates: its commands, their full outputs and its final answer."""
    parts = []
    for s in rollout.steps:
        parts.append(s.command)
        parts.append(s.output)
    parts.append(rollout.final_answer)
    return "\n".join(parts)


def rollout_tokens(rollout: Rollout, max_tokens: int, counter: Callable[[str], int]) -> int | None:
    """The rollout's token count, or None when it provably cannot exceed `max_tokens`.

    `num_tokens` from the trainer is exact and wins. Otherwise we count offline; every token covers at
    least one UTF-8 byte, so a text of at most `max_tokens` bytes is skipped without tokenizing.
    """
    if rollout.num_tokens is not None:
        return rollout.num_tokens
    text = trajectory_text(rollout)
    if len(text) <= max_tokens and len(text.encode("utf-8", "replace")) <= max_tokens:
        return None
    return counter(text)


def check_penalty(cfg: Penalties, rollout: Rollout, counter: Callable[[str], int]) -> Penalty | None:
    if cfg.too_long is not None:
        tokens = rollout_tokens(rollout, cfg.max_tokens, counter)
        if tokens is not None and tokens > cfg.max_tokens:
            how = "exact" if rollout.num_tokens is not None else "estimated with cl100k_base"
            return Penalty("too_long", cfg.too_long, f"{tokens} tokens ({how}) > {cfg.max_tokens}")
    if cfg.missing_final_answer is not None and not has_final_answer(rollout.final_answer):
        return Penalty(
            "missing_final_answer",
            cfg.missing_final_answer,
            "no non-empty <final_answer>...</final_answer> block",
        )
    if cfg.no_commands is not None and not any(s.command.strip() and s.invalid is None for s in rollout.steps):
        invalid = sum(s.invalid is not None for s in rollout.steps)
        detail = f" ({invalid} malformed tool call(s))" if invalid else ""
        return Penalty("no_commands", cfg.no_commands, f"the rollout ran no command{detail}")
    return None
