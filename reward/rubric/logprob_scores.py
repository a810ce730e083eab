"""Logprob-weighted scores (rubric `judge.grade.logprobs: true`): each integer score becomes the expectation
sum(p * v) over the score token's distribution, the judge's own uncertainty, at no extra call.

Where each score is: the verdict's JSON content is scanned for the value of every top-level "<dim>_score" key
(its character span), and the reply's tokens (their texts concatenate to the content) are walked to the one
token holding that span. The rule for multi-digit values: a value is read only when ONE token holds all of
its digits (e.g. "10" as one token; o200k and cl100k tokenizers write 0-10 as single tokens). The
alternatives at that token position are read with the same text around the digits (" 7" and "7" are told
apart by what precedes the value), tokens that are not a valid score value on the scale are dropped and the
rest renormalised. A value split over several tokens ("1", "0") has no single distribution (the first token's
"1" could be 1 or 10): the verdict falls back.

Fallback is per verdict, all or nothing: a reply with no logprobs (a provider without them, a scripted or
cached reply from before), a cut reply, tokens that do not spell the content, or any score without a usable
distribution keeps the written values and says so (`scores_from: "written"`); mixing expectations and
written integers within one rollout would weigh its dimensions unevenly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reward.core.results import RolloutResult
    from reward.rubric.verdict import Verdict

Distribution = dict[int, float]  # valid score value -> probability (sums to 1)
_SLACK = 1e-3  # rounding in a provider's logprobs; more than this over 1 is a malformed distribution


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its logprob, and the most likely alternatives at its position
    (`top_logprobs`: [(token, logprob)], the chosen token usually among them). What a judge's Reply carries."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Weighted:
    """A score read from its distribution: the expectation and the distribution's standard deviation."""

    mean: float
    spread: float


_INTEGER = re.compile(r"-?[0-9]{1,6}")


def weigh(dist: Distribution) -> Weighted:
    mean = math.fsum(p * v for v, p in dist.items())
    var = math.fsum(p * (v - mean) ** 2 for v, p in dist.items())
    return Weighted(mean, math.sqrt(max(var, 0.0)))


def score_spans(content: str) -> dict[str, tuple[int, int]]:
    """Character span of each top-level "<name>_score" integer value in a JSON object, by name (without the
    suffix). A scanner rather than a regex: text inside reason strings (escaped quotes included) never counts."""
    spans: dict[str, tuple[int, int]] = {}
    depth, i, n = 0, 0, len(content)
    key: str | None = None  # the last string read at depth 1, while it may still be a key
    while i < n:
        c = content[i]
        if c == '"':
            j, escaped = i + 1, False
            while j < n and (escaped or content[j] != '"'):
                escaped = not escaped and content[j] == "\\"
                j += 1
            key = content[i + 1 : j] if depth == 1 else None
            i = j + 1
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c == ":" and depth == 1 and key is not None and key.endswith("_score"):
            j = i + 1
            while j < n and content[j] in " \t\r\n":
                j += 1
            k = j + (j < n and content[j] == "-")
            while k < n and "0" <= content[k] <= "9":  # ASCII digits: what JSON numbers are
                k += 1
            if k > j and (k >= n or content[k] not in ".eE"):  # an integer, not a number of another kind
                spans[key.removesuffix("_score")] = (j, k)
        if c not in " \t\r\n":
            key = key if c == ":" else None
        i += 1
    return spans


def _distribution(tok: TokenLogprob, before: str, after: str, valid: range) -> Distribution | None:
    """The valid values at one token position: alternatives spelled `before` + digits + `after`."""
    mass: dict[int, float] = {}
    seen: set[str] = set()
    listed = 0.0  # the probability of every distinct alternative listed: at most 1 in a real distribution
    for text, lp in (*tok.top, (tok.token, tok.logprob)):
        if text in seen or not math.isfinite(lp):
            continue
        seen.add(text)  # the chosen token, when listed among its alternatives, counts once
        listed += math.exp(min(lp, 0.0)) if lp <= _SLACK else math.inf  # a positive logprob is no probability
        if listed > 1 + _SLACK:  # four tokens at p = 1, say: not a distribution; keep the written values
            return None
        if not (text.startswith(before) and text.endswith(after) and len(text) > len(before) + len(after)):
            continue
        middle = text[len(before) : len(text) - len(after)]
        if _INTEGER.fullmatch(middle) and int(middle) in valid:  # "--5", 5000 digits: not a score
            mass[int(middle)] = mass.get(int(middle), 0.0) + math.exp(lp)
    total = math.fsum(mass.values())
    if total <= 0:
        return None
    return {v: p / total for v, p in sorted(mass.items())}


def distributions(
    content: str, tokens: Sequence[TokenLogprob], names: Sequence[str], lo: int, hi: int
) -> dict[str, Distribution] | None:
    """Each dimension's score distribution from the reply's tokens, or None when any is not usable."""
    if "".join(t.token for t in tokens) != content:
        return None  # the tokens do not spell the content: positions would be guesses
    spans = score_spans(content)
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t.token)
    valid = range(lo, hi + 1)
    out: dict[str, Distribution] = {}
    for name in names:
        if name not in spans:
            return None
        a, b = spans[name]
        holder = [i for i, s in enumerate(starts) if s <= a and b <= s + len(tokens[i].token)]
        if not holder:
            return None  # the value is split over several tokens
        tok, s = tokens[holder[0]], starts[holder[0]]
        dist = _distribution(tok, content[s:a], content[b : s + len(tok.token)], valid)
        if dist is None:
            return None
        out[name] = dist
    return out


def reply_distributions(reply: Any, names: Sequence[str], lo: int, hi: int) -> dict[str, Distribution] | None:
    """The distributions a judge's Reply carries, or None (no logprobs, cut at the token limit, positions not
    found)."""
    tokens = getattr(reply, "logprobs", None)
    if tokens is None or reply.finish_reason == "length":
        return None
    return distributions(reply.content, tokens, names, lo, hi)


def dists_to_cache(dists: dict[str, Distribution] | None) -> dict[str, dict[str, float]] | None:
    return None if dists is None else {n: {str(v): p for v, p in d.items()} for n, d in dists.items()}


def dists_from_cache(value: Any, names: Sequence[str], lo: int, hi: int) -> dict[str, Distribution] | None:
    """Cached distributions, checked as strictly as a reply's: every dimension, valid values, probabilities
    that are finite, non-negative and sum to 1. Raises ValueError on anything else."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(names):
        raise ValueError("cached distributions must cover exactly the rubric's dimensions")
    out: dict[str, Distribution] = {}
    for name, d in value.items():
        if not isinstance(d, dict) or not d:
            raise ValueError(f"cached distribution of {name} is not a non-empty object")
        dist: Distribution = {}
        for k, p in d.items():
            if not (isinstance(k, str) and k.isascii() and k.lstrip("-").isdigit() and lo <= int(k) <= hi):
                raise ValueError(f"cached distribution of {name} has a value off the scale: {k!r}")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
                raise ValueError(f"cached distribution of {name} has a bad probability: {p!r}")
            dist[int(k)] = float(p)
        if abs(math.fsum(dist.values()) - 1.0) > 1e-6:
            raise ValueError(f"cached distribution of {name} does not sum to 1")
        out[name] = dist
    return out


def with_logprob_fields(result: RolloutResult, verdicts: Sequence[Verdict]) -> RolloutResult:
    """A graded rollout with logprob scores marked: each dimension's `written` value and `spread` (the first
    sample's: one sample's are its verdict's own) and `scores_from`, "logprobs" only when every sample's
    scores came from logprobs ("written": some fell back). Unchanged for a rubric without logprob scores."""
    froms = {v.scores_from for v in verdicts}
    if not verdicts or froms == {None} or result.dimensions is None:
        return result
    first = verdicts[0].scores
    dims = {
        name: d.model_copy(update={"written": first[name].written, "spread": first[name].spread})
        if name in first and first[name].written is not None
        else d
        for name, d in result.dimensions.items()
    }
    return result.model_copy(
        update={"dimensions": dims, "scores_from": "logprobs" if froms == {"logprobs"} else "written"}
    )
