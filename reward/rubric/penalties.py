"""Hard penalties for degenerate rollouts, checked before any judge call so they cost nothing.

Order (first match wins, as in the paper): too long, no final answer, no commands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from reward.core.clean import readable
from reward.core.results import PenaltyKind
from reward.core.trajectory import Rollout, Step
from reward.rubric.spec import Penalties

_FINAL_ANSWER = re.compile(r"<final_answer>(.*?)</final_answer>", re.DOTALL)


@dataclass(frozen=True)
class Penalty:
    kind: PenaltyKind
    reward: float
    detail: str


def has_final_answer(text: str) -> bool:
    """A closed, non-empty <final_answer>...</final_answer> block in the text as the judge is shown it
    (`readable`): a block of escape sequences, control or invisible characters only is empty."""
    return any(m.group(1).strip() for m in _FINAL_ANSWER.finditer(readable(text)))


def has_command(step: Step) -> bool:
    """A well-formed tool call whose command, as the judge is shown it, is not blank."""
    return step.invalid is None and bool(readable(step.command).strip())


def trajectory_text(rollout: Rollout) -> str:
    """What a rollout's context accumulates: its commands, their full outputs and its final answer. Raw, not
    cleaned: invisible characters are tokens of the policy's context too, so they count toward its length."""
    parts = []
    for s in rollout.steps:
        parts.append(s.command)
        parts.append(s.output)
    parts.append(rollout.final_answer)
    return "\n".join(parts)


# The longest cl100k_base token is 128 bytes: a text of more than 128·N bytes has more than N tokens.
MAX_TOKEN_BYTES = 128
# BPE is quadratic on long runs without a word break (one repetitive 40 MB output took half a minute), so
# text is counted in pieces; a piece boundary moves the count by a token at most.
_PIECE = 64 * 1024


def rollout_tokens(rollout: Rollout, max_tokens: int, counter: Callable[[str], int]) -> tuple[int, bool] | None:
    """The rollout's token count and whether it is exact, or None when it provably cannot exceed `max_tokens`.

    `num_tokens` from the trainer is exact and wins. Otherwise we count offline; every token covers at
    least one UTF-8 byte, so a text of at most `max_tokens` bytes is skipped without tokenizing, and one of
    more than `MAX_TOKEN_BYTES · max_tokens` bytes is over the limit without tokenizing (a lower bound).
    """
    if rollout.num_tokens is not None:
        return rollout.num_tokens, True
    text = trajectory_text(rollout)
    if len(text) <= max_tokens and len(text.encode("utf-8", "replace")) <= max_tokens:
        return None
    size = len(text.encode("utf-8", "replace"))
    if size <= max_tokens:
        return None
    if size > max_tokens * MAX_TOKEN_BYTES:
        return -(-size // MAX_TOKEN_BYTES), False
    return sum(counter(text[i : i + _PIECE]) for i in range(0, len(text), _PIECE)), True


def check_penalty(cfg: Penalties, rollout: Rollout, counter: Callable[[str], int]) -> Penalty | None:
    if cfg.too_long is not None:
        counted = rollout_tokens(rollout, cfg.max_tokens, counter)
        if counted is not None and counted[0] > cfg.max_tokens:
            tokens = counted[0] if counted[1] else f"at least {counted[0]}"
            how = "exact" if rollout.num_tokens is not None else "estimated with cl100k_base"
            return Penalty("too_long", cfg.too_long, f"{tokens} tokens ({how}) > {cfg.max_tokens}")
    if cfg.missing_final_answer is not None and not has_final_answer(rollout.final_answer):
        return Penalty(
            "missing_final_answer",
            cfg.missing_final_answer,
            "no non-empty <final_answer>...</final_answer> block",
        )
    if cfg.no_commands is not None and not any(has_command(s) for s in rollout.steps):
        invalid = sum(s.invalid is not None for s in rollout.steps)
        detail = f" ({invalid} malformed tool call(s))" if invalid else ""
        return Penalty("no_commands", cfg.no_commands, f"the rollout ran no command{detail}")
    return None
