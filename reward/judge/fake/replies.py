"""The fake judge's replies, as pure functions of the request: shared by the HTTP fake judge
(`reward.judge.fake.http`) and the in-process one (`reward.judge.fake.in_process`), so both answer alike.

- condensing calls (no `response_format`) get an EXECUTION PLAN built from the prompt's commands, exit
  codes and final answer;
- grading calls get a verdict that conforms to the JSON schema sent, with scores derived from the
  plans in the prompt (matching outcomes score well) and a hash of the prompt, so the same prompt always
  gets the same reply;
- injected faults (`fault_reply`) are derived from the correct reply.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

FAKE_MODEL = "reward-fake-judge"
# Commands as the condensing template shows them: fenced (reward.rubric.prompts.fence) or in backticks.
_CMD = re.compile(
    r"^### Command \d+: (?:\u27eadata:command\u27eb(.*?)\u27ea/data:command\u27eb|`(.*?)`)\s*\n+Exit Code: (\S+)",
    re.MULTILINE | re.DOTALL,
)
_FENCE = re.compile(r"\u27ea/?data:\w+\u27eb\n?")


def _section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    return _FENCE.sub("", m.group(1)).strip() if m else ""


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


def fake_plan(prompt: str) -> str:
    commands = [(fenced or plain, code) for fenced, plain, code in _CMD.findall(prompt)]
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


def fake_verdict(prompt: str, schema: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    """A verdict conforming to `schema`: high scores when the candidate's outcome matches the
    reference's, a final-answer score that grows with its detail, and prompt-hash jitter (a request's
    `seed` joins the hash, so repeated samples differ as a sampled judge's would)."""
    reference = _section(prompt, "Reference Execution Plan")
    candidate = _section(prompt, "Candidate Execution Plan")
    # Without plans (a judge that sees the inputs directly, e.g. response_quality): the response's detail.
    final_answer = _section(prompt, "Candidate Final Answer") or _section(prompt, "Subagent Response")
    match = _outcome(reference) == _outcome(candidate) and _outcome(candidate) != ""
    detail = min(1.0, len(final_answer) / 400)
    props: dict[str, Any] = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, prop in props.items():
        if prop.get("type") in ("integer", "number"):
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


def fake_content(kind: str, prompt: str, schema: dict[str, Any] | None, seed: int | None) -> str:
    """The fake judge's correct reply: a verdict (JSON) for a grading call, a plan for a condensing one."""
    return json.dumps(fake_verdict(prompt, schema or {}, seed)) if kind == "grade" else fake_plan(prompt)


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
