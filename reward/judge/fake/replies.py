"""The fake judge's replies, as pure functions of the request: shared by the HTTP fake judge
(`reward.judge.fake.http`) and the in-process one (`reward.judge.fake.in_process`), so both answer alike.

- condensing calls (no `response_format`) get an EXECUTION PLAN built from the prompt's commands, exit
  codes and final answer;
- grading calls get a verdict that conforms to the JSON schema sent, with scores derived from the
  plans in the prompt (matching outcomes score well) and a hash of the prompt, so the same prompt always
  gets the same reply;
- injected faults (`fault_reply`) are derived from the correct reply;
- with `FakeNoise` (a constructor argument of either fake, or REWARD_FAKE_NOISE_SD), grading calls instead
  give every numeric dimension a known true value plus seeded Gaussian noise of a set spread: a judge of
  known signal and noise, whose true reliability `FakeNoise.true_reliability` states.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

FAKE_MODEL = "reward-fake-judge"
# Commands as the condensing template shows them: fenced (reward.rubric.prompts.fence) or in backticks.
_CMD = re.compile(
    r"^### Command \d+: (?:\u27eadata:command\u27eb(.*?)\u27ea/data:command\u27eb|`(.*?)`)\s*\n+Exit Code: (\S+)",
    re.MULTILINE | re.DOTALL,
)
_FENCE = re.compile(r"\u27ea/?data:\w+\u27eb\n?")
# A fenced body other than a command's: what a rollout wrote there (an output forging "### Command 2: `x`")
# must not read as a command of the trajectory.
_FENCED_DATA = re.compile(r"\u27eadata:(?!command\u27eb)(\w+)\u27eb.*?\u27ea/data:\1\u27eb", re.DOTALL)


def _section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    return _FENCE.sub("", m.group(1)).strip() if m else ""


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


def fake_plan(prompt: str) -> str:
    commands = [(fenced or plain, code) for fenced, plain, code in _CMD.findall(_FENCED_DATA.sub("", prompt))]
    final_answer = _section(prompt, "Final Answer Returned to Parent Agent")
    codes = [c for _, c in commands]
    if not commands:
        outcome = "failure. No command was run."
    elif all(c == "0" for c in codes):
        outcome = "success. Every command exited 0."
    elif codes[-1] == "0":
        outcome = "partial. Some commands failed before the last one succeeded."
    else:
        outcome = f"failure. The last command exited {codes[-1]}."
    lines = [
        "EXECUTION PLAN (written by the reward fake judge: not a real judgement)",
        "",
        f"Task Outcome: {outcome}",
        "",
        "Commands Executed:",
        *[f"- `{cmd}` (exit code {code})" for cmd, code in commands],
        "",
        "Key Findings:",
        *[
            f"- {ln.strip()[:160]}"
            for ln in prompt.splitlines()
            if re.search(r"error|fail|passed|warning|tests? run", ln, re.IGNORECASE)
            and not ln.startswith(("#", "You ", "Key Findings", "Error Recovery"))
        ][:6],
        "",
        f"Error Recovery: {'retried after failures' if '0' in codes[1:] and codes[0] != '0' else 'none'}.",
        "",
        f"Final State: final answer of {len(final_answer)} characters returned to the parent agent.",
    ]
    return "\n".join(lines)


def _outcome(plan: str) -> str:
    m = re.search(r"Task Outcome:\s*(\w+)", plan)
    return m.group(1).lower() if m else ""


NOISE_ENV = "REWARD_FAKE_NOISE_SD"


@dataclass(frozen=True)
class FakeNoise:
    """A fake judge of known signal and noise.

    The true score of a dimension for a rollout is a hash of the candidate plan (or, with no plan, the
    candidate's final answer or response) and the dimension's name, mapped uniformly into [low, high] of the
    scale (fractions of it: on 0-10 with the defaults, uniform on [2, 8]); its variance,
    ((high - low) * (max - min))^2 / 12 (3.0 on 0-10), is the true signal variance. Each sample adds Gaussian
    noise of standard deviation `sd` (scale points) drawn from a generator seeded by the prompt, the dimension
    and the request's seed, then is clipped to the scale and rounded (integer scales: to the integer; continuous
    ones: to 2 decimals). Rounding adds about 1/12 to the noise variance, so the single-sample reliability is
    signal / (signal + sd^2 + 1/12) while clipping is negligible (3 / (3 + sd^2 + 1/12) on 0-10: 0.900 at sd 0.5,
    0.5625 at 1.5); `true_reliability` computes it exactly, clipping and rounding included (0.248 at sd 3).
    Dimensions are independent, so a linear reward of dimensions on one scale has the same reliability.
    """

    sd: float
    low: float = 0.2
    high: float = 0.8

    def __post_init__(self) -> None:
        if self.sd < 0 or not 0 <= self.low <= self.high <= 1:
            raise ValueError("FakeNoise needs sd >= 0 and 0 <= low <= high <= 1")

    @classmethod
    def from_env(cls) -> FakeNoise | None:
        """REWARD_FAKE_NOISE_SD=0.5 turns the mode on for the fake judge (`reward fake-judge`, the in-process one)."""
        from reward.settings import setting  # one name, one default, one error message for every variable

        sd = setting("fake_noise_sd")
        return None if sd is None else cls(sd=float(sd))

    def true_score(self, key: str, name: str, lo: float, hi: float) -> float:
        u = (_digest("true", key, name) % 1_000_000) / 999_999
        return lo + (self.low + (self.high - self.low) * u) * (hi - lo)

    def sample(self, key: str, name: str, prompt: str, seed: int | None, lo: float, hi: float, integer: bool) -> float:
        noise = random.Random(_digest("noise", prompt, name, f"seed={seed}")).gauss(0.0, self.sd) if self.sd else 0.0
        x = min(hi, max(lo, self.true_score(key, name, lo, hi) + noise))
        return float(min(hi, max(lo, round(x)))) if integer else round(x, 2)

    def signal_var(self, lo: float = 0.0, hi: float = 10.0) -> float:
        """The variance of the true scores (uniform on [low, high] of the scale)."""
        return ((self.high - self.low) * (hi - lo)) ** 2 / 12

    def nominal_reliability(self, lo: float = 0.0, hi: float = 10.0, integer: bool = True) -> float:
        """signal / (signal + sd^2 + 1/12 for rounding): exact while clipping is negligible."""
        s = self.signal_var(lo, hi)
        return s / (s + self.sd**2 + (1 / 12 if integer else 0.0))

    def true_reliability(self, lo: int = 0, hi: int = 10, points: int = 4001) -> float:
        """The single-sample reliability of an integer scale, clipping and rounding included: Var_t(E[x|t]) /
        (Var_t(E[x|t]) + E_t[Var(x|t)]) over the true value t, the score x a sample's clipped, rounded value."""
        means, variances = [], []
        for i in range(points):
            t = lo + (self.low + (self.high - self.low) * i / (points - 1)) * (hi - lo)
            probs = []
            for k in range(lo, hi + 1):
                upper = 1.0 if k == hi else _phi((k + 0.5 - t) / self.sd) if self.sd else float(k + 0.5 > t)
                lower = 0.0 if k == lo else _phi((k - 0.5 - t) / self.sd) if self.sd else float(k - 0.5 > t)
                probs.append(upper - lower)
            m = sum(p * k for p, k in zip(probs, range(lo, hi + 1), strict=True))
            means.append(m)
            variances.append(sum(p * (k - m) ** 2 for p, k in zip(probs, range(lo, hi + 1), strict=True)))
        mu = sum(means) / points
        signal = sum((m - mu) ** 2 for m in means) / points
        noise = sum(variances) / points
        return signal / (signal + noise) if signal + noise > 0 else 0.0


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def fake_verdict(
    prompt: str, schema: dict[str, Any], seed: int | None = None, noise: FakeNoise | None = None
) -> dict[str, Any]:
    """A verdict conforming to `schema`: high scores when the candidate's outcome matches the
    reference's, a final-answer score that grows with its detail, and prompt-hash jitter (a request's
    `seed` joins the hash, so repeated samples differ as a sampled judge's would). With `noise`, numeric
    scores are instead a known true value plus seeded noise (`FakeNoise`)."""
    reference = _section(prompt, "Reference Execution Plan")
    candidate = _section(prompt, "Candidate Execution Plan")
    # Without plans (a judge that sees the inputs directly, e.g. response_quality): the response's detail.
    final_answer = _section(prompt, "Candidate Final Answer") or _section(prompt, "Subagent Response")
    match = _outcome(reference) == _outcome(candidate) and _outcome(candidate) != ""
    detail = min(1.0, len(final_answer) / 400)
    props: dict[str, Any] = schema.get("properties", {})
    out: dict[str, Any] = {}
    key = candidate or final_answer or prompt
    for name, prop in props.items():
        if noise is not None and prop.get("type") == "integer":
            allowed = prop.get("enum") or list(range(prop.get("minimum", 0), prop.get("maximum", 10) + 1))
            out[name] = int(noise.sample(key, name, prompt, seed, min(allowed), max(allowed), integer=True))
        elif noise is not None and prop.get("type") == "number":
            lo, hi = float(prop.get("minimum", 0.0)), float(prop.get("maximum", 1.0))
            out[name] = noise.sample(key, name, prompt, seed, lo, hi, integer=False)
        elif prop.get("type") in ("integer", "number"):
            salt = () if seed is None else (f"seed={seed}",)
            jitter = (_digest(prompt, name, *salt) % 1000) / 1000 * 0.3
            if name.startswith(("hallucinated", "missed", "wrong", "unnecessary")):
                quality = (0.1 if match else 0.6) + jitter
            elif name.startswith(("detail", "factual", "informativeness")) or not reference:
                quality = 0.2 + 0.5 * detail + jitter
            else:
                quality = (0.65 if match else 0.25) + jitter
            if prop["type"] == "integer":
                allowed = prop.get("enum") or list(range(prop.get("minimum", 0), prop.get("maximum", 10) + 1))
                lo, hi = min(allowed), max(allowed)
                out[name] = max(lo, min(hi, lo + round(quality * (hi - lo))))
            else:  # a continuous scale: two decimals, within its bounds
                lo, hi = float(prop.get("minimum", 0.0)), float(prop.get("maximum", 1.0))
                out[name] = max(lo, min(hi, round(lo + quality * (hi - lo), 2)))
        elif prop.get("type") == "string":
            if not reference:
                out[name] = "fake judge: scored from the length of the response"
            else:
                out[name] = "fake judge: outcome matches the reference" if match else "fake judge: outcome differs"
        elif prop.get("type") == "boolean":
            out[name] = match
    return out


def read_request(messages: list[Any], rf: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    """(kind, prompt, schema) of a chat request: a response_format schema makes it a grading call.

    Replies depend on the original prompt only (system + first user message), so a re-ask, which appends
    to the conversation, gets the same answer as a first ask would have."""
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), len(messages) - 1)
    prompt = "\n".join(str(m.get("content") or "") for m in messages[: first_user + 1])
    schema = (rf.get("json_schema") or {}).get("schema") or rf.get("schema")
    return ("grade" if schema else "condense"), prompt, schema


def fake_content(
    kind: str, prompt: str, schema: dict[str, Any] | None, seed: int | None, noise: FakeNoise | None = None
) -> str:
    """The fake judge's correct reply: a verdict (JSON) for a grading call, a plan for a condensing one."""
    if kind != "grade":
        return fake_plan(prompt)
    props = (schema or {}).get("properties", {})
    if "rollouts" in props:
        return json.dumps(fake_group_verdict(prompt, schema or {}, seed, noise))
    if any(n.endswith("_preferred") for n in props):
        return json.dumps(fake_pair_verdict(prompt, schema or {}, seed))
    if props and all(_CRITERION.match(n) for n in props) and "\u27eadata:criterion_" in prompt:
        return json.dumps(fake_checklist_verdict(prompt, schema or {}))
    return json.dumps(fake_verdict(prompt, schema or {}, seed, noise))


def _fenced(prompt: str, label: str) -> str:
    m = re.search(rf"\u27eadata:{label}\u27eb\n?(.*?)\n?\u27ea/data:{label}\u27eb", prompt, re.DOTALL)
    return m.group(1) if m else ""


def _candidate(prompt: str, label: str) -> str:
    """A one-candidate prompt of candidate `label` of a multi-candidate request, as a rollout's would read: its
    own fenced plan and final answer only, so where it is shown changes nothing."""
    return "\n".join(
        (
            f"## Reference Execution Plan\n{_section(prompt, 'Reference Execution Plan')}",
            f"## Candidate Execution Plan\n{_fenced(prompt, f'candidate_{label}_plan')}",
            f"## Candidate Final Answer\n{_fenced(prompt, f'candidate_{label}_final_answer')}",
        )
    )


def fake_group_verdict(
    prompt: str, schema: dict[str, Any], seed: int | None = None, noise: FakeNoise | None = None
) -> dict[str, Any]:
    """A group (listwise) verdict: each label's item scored as `fake_verdict` scores that candidate alone (its
    own plan, final answer and the reference), so a candidate's scores do not depend on the order shown."""
    items = schema["properties"]["rollouts"]["items"]
    labels = items["properties"]["label"]["enum"]
    one = {"properties": {k: v for k, v in items["properties"].items() if k != "label"}}
    return {"rollouts": [{"label": x, **fake_verdict(_candidate(prompt, x), one, seed, noise)} for x in labels]}


_CRITERION = re.compile(r"^c\d+_(score|reason)$")
_WORD = re.compile(r"[a-z0-9_./:-]{4,}|\d+")
# Words that say nothing about whether a criterion is met.
_STOP = frozenset(
    {"that", "this", "with", "from", "have", "does", "were", "which", "their", "they", "them", "into", "then"}
)


def criterion_words(text: str) -> set[str]:
    """The key words of a criterion the fake looks for: lower-cased words of 4+ characters and numbers."""
    return {w.strip(".:-/") for w in _WORD.findall(text.lower())} - _STOP - {""}


def criterion_met(criterion: str, candidate: str) -> bool:
    """The fake's judgement of one criterion (a pitfall too: found, the mistake made): met when every phrase of
    it in backticks occurs in the candidate's plan and final answer (case-insensitive); a criterion with none,
    when at least half of its key words do."""
    phrases = re.findall(r"`([^`]+)`", criterion)
    if phrases:
        return all(p.lower() in candidate.lower() for p in phrases)
    words = criterion_words(criterion)
    found = criterion_words(candidate)
    return bool(words) and 2 * len(words & found) >= len(words)


def fake_checklist_verdict(prompt: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A checklist verdict: criterion `c<i>` (fenced as `criterion_c<i>` in the prompt) scores the scale's top
    when `criterion_met`, its bottom otherwise; deterministic, from the candidate's own plan and final answer."""
    candidate = _section(prompt, "Candidate Execution Plan") + "\n" + _section(prompt, "Candidate Final Answer")
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        cid, _, kind = name.partition("_")
        met = criterion_met(_fenced(prompt, f"criterion_{cid}"), candidate)
        if kind == "reason":
            out[name] = f"fake judge: the criterion's key words {'occur' if met else 'do not occur'} in the candidate"
        else:
            allowed = prop.get("enum") or [prop.get("minimum", 0), prop.get("maximum", 1)]
            out[name] = max(allowed) if met else min(allowed)
    return out


# A pair judged in both orders: the fake prefers the candidate shown first when the two are within this much of
# each other (in quality, 0..1), as real judges favour a position on close calls; 0 makes it order-blind.
POSITION_BIAS = 0.05


def _quality(one: str, name: str, seed: int | None) -> float:
    """How good a candidate looks to the fake on one comparison: the reference's outcome matched, the final
    answer's detail, and a jitter of the candidate's own text (never of the order it is shown in)."""
    reference, candidate = _section(one, "Reference Execution Plan"), _section(one, "Candidate Execution Plan")
    answer = _section(one, "Candidate Final Answer")
    match = _outcome(reference) == _outcome(candidate) and _outcome(candidate) != ""
    salt = () if seed is None else (f"seed={seed}",)
    jitter = (_digest(candidate, answer, name, *salt) % 1000) / 1000 * 0.2
    return (0.5 if match else 0.0) + 0.3 * min(1.0, len(answer) / 400) + jitter


def fake_pair_verdict(
    prompt: str, schema: dict[str, Any], seed: int | None = None, position_bias: float | None = None
) -> dict[str, Any]:
    """A pair verdict: per `<name>_preferred`, the candidate of higher `_quality`; within `position_bias`
    (default POSITION_BIAS) of each other, A (the one shown first); equal with no bias, a tie."""
    bias = POSITION_BIAS if position_bias is None else position_bias
    a, b = _candidate(prompt, "A"), _candidate(prompt, "B")
    out: dict[str, Any] = {}
    for name in schema.get("properties", {}):
        if name.endswith("_reason"):
            out[name] = "fake judge: compared the two candidates' outcomes and final answers"
            continue
        qa, qb = _quality(a, name, seed), _quality(b, name, seed)
        out[name] = "A" if (bias > 0 and abs(qa - qb) <= bias) else "tie" if qa == qb else "A" if qa > qb else "B"
    return out


TRANSPORT_FAULTS = ("429", "500", "503", "hang")
CONTENT_FAULTS = {
    "condense": ("empty", "refusal", "cut", "plain_refusal", "no_choices"),
    "grade": ("truncated", "malformed", "missing_dimension", "out_of_range", "empty", "refusal", "huge_number"),
}
PLAIN_REFUSAL = "I'm sorry, but I can't help with that."


def fault_reply(fault: str, content: str, hang_s: float) -> dict[str, Any]:
    """A scripted-reply entry for one injected fault, derived from the correct reply `content`."""
    if fault == "429":
        return {"status": 429, "headers": {"Retry-After": "1"}, "message": "rate limited (injected)"}
    if fault in ("500", "503"):
        return {"status": int(fault), "message": "server error (injected)"}
    if fault == "hang":
        return {"delay": hang_s, "content": content}
    if fault == "empty":
        return {"content": ""}
    if fault == "refusal":
        return {"content": None, "refusal": "I can't help with that. (injected)"}
    if fault == "cut":  # stopped by the token limit
        return {"content": content[: len(content) // 3], "finish_reason": "length"}
    if fault == "plain_refusal":
        return {"content": PLAIN_REFUSAL}
    if fault == "no_choices":
        return {"body": {"id": "chatcmpl-fake", "object": "chat.completion", "model": FAKE_MODEL, "choices": []}}
    if fault == "truncated":
        return {"content": content[: len(content) // 2]}
    if fault == "malformed":
        return {"content": "Sure! Here are the scores: " + content.replace('"', "'")}
    verdict = json.loads(content)
    key = next(k for k in verdict if k.endswith("_score"))
    if fault == "huge_number":  # valid JSON that Python refuses to parse (over 4300 digits)
        return {"content": json.dumps(verdict).replace(f'"{key}": {verdict[key]}', f'"{key}": {"9" * 5000}', 1)}
    if fault == "missing_dimension":
        verdict.pop(key)
    else:  # out_of_range
        verdict[key] = 999
    return {"content": json.dumps(verdict)}
