"""What the adapters share: reading the task query and reference from a trainer's label, and grouping."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from reward.core.trajectory import parse_json
from reward.errors import RewardError

_QUERY_TAG = re.compile(r"<query>\s*(.*?)\s*</query>", re.DOTALL)
_REFERENCE_KEYS = {"plan", "id", "steps", "final_answer", "messages", "text"}
_USER_TURN = re.compile(r"<\|im_start\|>user\s*\n(.*?)<\|im_end\|>", re.DOTALL)
# A problem the service finds in a field of a group that came from a label.
_LABEL_FIELD = re.compile(r"^groups\[(\d+)\]\.(?=(?:reference|query|group_id)\b)")


class AdapterInputError(RewardError, ValueError):
    """A trainer payload we cannot turn into a group; answered with 422 / raised in-process."""


class JudgeFailed(RewardError, RuntimeError):
    """Some rollouts could not be judged: the trainer must not receive a number for them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        cats = sorted({e["category"] for e in errors})
        super().__init__(f"{len(errors)} rollout(s) could not be judged ({', '.join(cats)}); no reward was computed")
        self.errors = errors


def parse_label(label: Any, where: str = "label") -> dict[str, Any]:
    """A trainer label: a dict (or its JSON text) with `reference` and optional `query` / `group_id`, or a
    plain string naming a reference plan loaded at start-up. `where` names the label in errors."""
    if isinstance(label, str):
        text = label.strip()
        if not text:
            raise AdapterInputError(f"{where}: empty; it must name or carry the reference")
        if not text.startswith("{"):
            return {"reference": {"id": text}, "query": None, "group_id": None}
        try:  # strict, like a request body: too deep, NaN or a 5000-digit number is an answer, not a crash
            label = parse_json(text)
        except ValueError as exc:
            raise AdapterInputError(f"{where}: {exc}") from exc
    if not isinstance(label, dict):
        raise AdapterInputError(f"{where}: expected an object or a reference id, got {json_kind(label)}")
    if "reference" not in label and set(label) & _REFERENCE_KEYS:
        label = {"reference": label}  # a bare reference: {"plan": ...}, {"id": ...} or a trajectory
    unknown = set(label) - {"reference", "query", "group_id"}
    if unknown:
        raise AdapterInputError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return {
        "reference": _reference(label.get("reference"), where),
        "query": _optional_text(label, "query", where),
        "group_id": _optional_text(label, "group_id", where),
    }


def json_kind(value: Any) -> str:
    """A value's JSON type, for an error message (never the value: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), type(value).__name__)


def _optional_text(label: dict[str, Any], field: str, where: str) -> str | None:
    # Checked here: a dict group_id would be a dict key (unhashable: a 500), a number a silent fallback.
    value = label.get(field)
    if value is None or isinstance(value, str):
        return value
    raise AdapterInputError(f"{where}.{field}: expected a string, got {json_kind(value)}")


def _reference(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        return {"id": value}
    if isinstance(value, dict):
        return value  # its fields are checked by the service's models, with their paths
    got = "none" if value is None else json_kind(value)
    raise AdapterInputError(f"{where}.reference: required (a reference id, {{'plan': ...}} or a trajectory), got {got}")


def query_from_prompt(prompt: Any) -> str:
    """The subagent's task query when the label does not carry it: the paper's `<query>` wrapper, else the
    last user message."""
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        text = _content_text(users[-1]) if users else ""
    else:
        text = str(prompt or "")
        turns = _USER_TURN.findall(text)
        if turns:
            text = turns[-1]
    m = _QUERY_TAG.search(text)
    return (m.group(1) if m else text).strip()


def _content_text(content: Any) -> str:
    """A chat message's content as text: a string, or the text of its blocks (an image block has none)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict)]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise AdapterInputError("prompt: the last user message's content must be text or a list of text blocks")


def group_id_for(query: str, reference: dict[str, Any]) -> str:
    """A stable group id for samples of one task: the same query and reference, the same group."""
    blob = json.dumps([query, reference], sort_keys=True, ensure_ascii=False)
    return "g-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_groups(
    samples: list[dict[str, Any]], label_at: str = "label"
) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Group samples ({"label", "prompt", "rollout"}) by task, keeping each sample's (group, rollout) index.
    `label_at` names sample i's label in errors: "label", or "labels[{}]" for labels[i]."""
    groups: list[dict[str, Any]] = []
    by_key: dict[str, int] = {}
    index: list[tuple[int, int]] = []
    for i, sample in enumerate(samples):
        where = label_at.format(i)
        try:
            gi = _group_of(sample, where, groups, by_key)
        except RecursionError:  # a reference nested near the parser's limit, hashed or compared here
            raise AdapterInputError(f"{where}: nested too deeply") from None
        rollouts = groups[gi]["rollouts"]
        rollouts.append({"id": str(len(rollouts)), **sample["rollout"]})
        index.append((gi, len(rollouts) - 1))
    return groups, index


def _group_of(sample: dict[str, Any], where: str, groups: list[dict[str, Any]], by_key: dict[str, int]) -> int:
    """The index of the sample's group in `groups`, added if new."""
    label = parse_label(sample["label"], where)
    query = label["query"] or query_from_prompt(sample.get("prompt"))
    gid = label["group_id"] or group_id_for(query, label["reference"])
    if gid not in by_key:
        by_key[gid] = len(groups)
        groups.append({"group_id": gid, "query": query, "reference": label["reference"], "rollouts": []})
    g = groups[by_key[gid]]
    if (g["query"], g["reference"]) != (query, label["reference"]):
        # one group must mean one task: scoring against the first sample's reference would be silently wrong
        first, other = (_short(g["query"], g["reference"]), _short(query, label["reference"]))
        raise AdapterInputError(f"{where}.group_id: {gid!r} is claimed by two different tasks: {first} and {other}")
    return by_key[gid]


def label_problems(problems: list[str], index: list[tuple[int, int]], label_at: str) -> list[str]:
    """Problems the service found in groups built by `build_groups`, named by the label the field came from:
    the trainer sent labels, not groups (`groups[1].reference.plan` -> `labels[4].reference.plan`)."""
    first: dict[int, int] = {}
    for i, (g, _) in enumerate(index):
        first.setdefault(g, i)

    def name(m: re.Match[str]) -> str:
        g = int(m.group(1))
        return label_at.format(first[g]) + "." if g in first else m.group(0)

    return [_LABEL_FIELD.sub(name, p, count=1) for p in problems]


def _short(query: str, reference: dict[str, Any]) -> str:
    text = json.dumps({"query": query, "reference": reference}, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


def per_sample(response: dict[str, Any], index: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Each sample's scored rollout, in the trainer's order (`index` from build_groups)."""
    groups = response["groups"]
    return [groups[g]["rollouts"][r] for g, r in index]


def fake_marks(response: dict[str, Any], index: list[tuple[int, int]]) -> list[bool]:
    """Per sample: was its group judged (in part) by the fake judge? Every return shape that can carry it
    does: a fake reward is never handed over unmarked."""
    return [bool(response["groups"][g].get("judge", {}).get("fake")) for g, _ in index]


def sample_answer(rollout: dict[str, Any], fallback: float | None = None) -> dict[str, Any]:
    """One scored rollout as a trainer endpoint answers it per sample: the reward (the explicit fallback,
    flagged, where the judge failed), status, penalty, error and the group means."""
    reward = rollout["reward"]
    return {
        "reward": fallback if reward is None else reward,
        "reward_fallback": reward is None,
        "status": rollout["status"],
        "penalty": rollout["penalty"],
        "error": rollout["error"],
        "s_pos": rollout["s_pos"],
        "s_pit": rollout["s_pit"],
        "s_fa": rollout["s_fa"],
        "has_final_answer": rollout["has_final_answer"],
    }
