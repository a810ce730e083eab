"""What the adapters share: reading the task query and reference from a trainer's label, and grouping."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from reward.errors import RewardError

_QUERY_TAG = re.compile(r"<query>\s*(.*?)\s*</query>", re.DOTALL)
_REFERENCE_KEYS = {"plan", "id", "steps", "final_answer", "messages", "text"}
_USER_TURN = re.compile(r"<\|im_start\|>user\s*\n(.*?)<\|im_end\|>", re.DOTALL)


class AdapterInputError(RewardError, ValueError):
    """A trainer payload we cannot turn into a group; answered with 422 / raised in-process."""


class JudgeFailed(RewardError, RuntimeError):
    """Some rollouts could not be judged: the trainer must not receive a number for them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        cats = sorted({e["category"] for e in errors})
        super().__init__(f"{len(errors)} rollout(s) could not be judged ({', '.join(cats)}); no reward was computed")
        self.errors = errors


def parse_label(label: Any) -> dict[str, Any]:
    """A trainer label: a dict (or its JSON text) with `reference` and optional `query` / `group_id`, or a
    plain string naming a reference plan loaded at start-up."""
    if isinstance(label, str):
        text = label.strip()
        if text.startswith("{"):
            try:
                label = json.loads(text)
            except ValueError as exc:
                raise AdapterInputError(f"label: invalid JSON: {exc}") from exc
        elif text:
            return {"reference": {"id": text}, "query": None, "group_id": None}
        else:
            raise AdapterInputError("label: empty; it must name or carry the reference")
    if not isinstance(label, dict):
        raise AdapterInputError(f"label: expected an object or a reference id, got {type(label).__name__}")
    if "reference" not in label and set(label) & _REFERENCE_KEYS:
        label = {"reference": label}  # a bare reference: {"plan": ...}, {"id": ...} or a trajectory
    unknown = set(label) - {"reference", "query", "group_id"}
    if unknown:
        raise AdapterInputError(f"label: unknown field(s) {', '.join(sorted(unknown))}")
    reference = label.get("reference")
    if isinstance(reference, str):
        reference = {"id": reference}
    if not isinstance(reference, dict):
        raise AdapterInputError("label.reference: required (a reference id, {'plan': ...} or a trajectory)")
    return {"reference": reference, "query": label.get("query"), "group_id": label.get("group_id")}


def query_from_prompt(prompt: Any) -> str:
    """The subagent's task query when the label does not carry it: the paper's `<query>` wrapper, else the
    last user message."""
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        text = users[-1] if users else ""
        if isinstance(text, list):
            text = "".join(b.get("text", "") for b in text if isinstance(b, dict))
    else:
        text = str(prompt or "")
        turns = _USER_TURN.findall(text)
        if turns:
            text = turns[-1]
    text = text if isinstance(text, str) else str(text or "")
    m = _QUERY_TAG.search(text)
    return (m.group(1) if m else text).strip()


def group_id_for(query: str, reference: dict[str, Any]) -> str:
    blob = json.dumps([query, reference], sort_keys=True, ensure_ascii=False)
    return "g-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_groups(samples: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Group samples ({"label", "prompt", "rollout"}) by task, keeping each sample's (group, rollout) index."""
    groups: list[dict[str, Any]] = []
    by_key: dict[str, int] = {}
    index: list[tuple[int, int]] = []
    for sample in samples:
        label = parse_label(sample["label"])
        query = label["query"] or query_from_prompt(sample.get("prompt"))
        gid = label["group_id"] or group_id_for(query, label["reference"])
        if gid not in by_key:
            by_key[gid] = len(groups)
            groups.append({"group_id": gid, "query": query, "reference": label["reference"], "rollouts": []})
        g = groups[by_key[gid]]
        if (g["query"], g["reference"]) != (query, label["reference"]):
            # one group must mean one task: scoring against the first sample's reference would be silently wrong
            first, other = (_short(g["query"], g["reference"]), _short(query, label["reference"]))
            raise AdapterInputError(f"group_id {gid!r} is claimed by two different tasks: {first} and {other}")
        rollout = {"id": str(len(g["rollouts"])), **sample["rollout"]}
        g["rollouts"].append(rollout)
        index.append((by_key[gid], len(g["rollouts"]) - 1))
    return groups, index


def _short(query: str, reference: dict[str, Any]) -> str:
    text = json.dumps({"query": query, "reference": reference}, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


def per_sample(response: dict[str, Any], index: list[tuple[int, int]]) -> list[dict[str, Any]]:
    groups = response["groups"]
    return [groups[g]["rollouts"][r] for g, r in index]
