"""OpenPipe ART: a group scorer for `art.gather_trajectory_groups(..., after_each=score_group)`.

```python
groups = await art.gather_trajectory_groups(
    (art.TrajectoryGroup((rollout(model, s) for _ in range(8)), metadata={"reference": s.ref_id, "query": s.query})
     for s in scenarios),
    after_each=score_group,   # or functools.partial(score_group, swallow_exceptions=True)
)
```

Matched against openpipe-art 0.5.18: `gather_trajectory_groups` (art/gather.py) awaits `after_each(group)`
once per finished group, outside its own exception handling: the group returned is kept, a list of groups
is spliced in, `None` drops the group, and an exception ends the whole gather (`max_exceptions` counts
only rollout exceptions). `Trajectory.reward` defaults to 0.0 (art/trajectories.py) and the GRPO advantage
is the reward minus the group mean (art/preprocessing/tokenize.py), so a trajectory left unscored would
train as 0.0 and a NaN would poison its group. Hence:

- the whole group goes to the service in ONE request (group statistics need the group);
- a judge failure drops the group (`None`, logged), as ART's own `ruler_score_group(swallow_exceptions=True)`
  drops a group it cannot judge; `on_error="drop_rollouts"` keeps the judged trajectories instead (the
  service leaves errored rollouts out of the group statistics, and so does ART once they are gone);
- a service that cannot be reached, or answers other than 200, raises (the gather fails) unless
  `swallow_exceptions=True`, which drops the group instead, logged; a label that is missing or malformed
  always raises.

What is scored is `Trajectory.messages()`: ART's own conversion, which turns the `Choice` of a trainable
model's turn into `{"role": "assistant", "content": str, "tool_calls": [{"id", "type", "function": {"name",
"arguments": JSON text}}]}` and keeps dict messages (prompt, tool results, a prompted model's turns) as they
are. The exact token count is the number of logprob tokens of the Choices, used only when every assistant
turn is a Choice with logprobs (a trainable model's rollout); otherwise the service estimates it.
`additional_histories` are refused (only the main history would be judged).

The task (label) comes from the caller's `reference` / `query` / `group_id`, else the trajectory's
`metadata`, else the group's `metadata`, under those keys; ART's metadata holds scalars only, so a
reference is an id or the JSON text of `{"plan": ...}` / a trajectory. Without a `query`, the task is read
from the prompt (`<query>…</query>`, else the last user message).

Each scored trajectory gets `reward`, and `metrics` (averaged per step by `model.log`): `reward/s_pos`,
`reward/s_pit`, `reward/s_fa` (when judged), `reward/penalized`, `reward/has_final_answer`,
`reward/fake_judge`; and `metadata` (kept with the trajectory in ART's parquet): `reward_status`,
`reward_penalty`, `reward_fake_judge` (true when the fake judge made any judgement behind it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from reward.adapters.common import AdapterInputError, build_groups, per_sample
from reward.core.trajectory import parse_json

logger = logging.getLogger(__name__)

_LABEL_KEYS = ("reference", "query", "group_id")


def _label(trajectory: Any, group: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The caller's fields, else the trajectory's metadata, else the group's."""
    label: dict[str, Any] = {}
    for source in (given, getattr(trajectory, "metadata", None) or {}, getattr(group, "metadata", None) or {}):
        for key in _LABEL_KEYS:
            if label.get(key) is None and source.get(key) is not None:
                label[key] = source[key]
    ref = label.get("reference")
    if isinstance(ref, str) and ref.strip().startswith("{"):
        try:  # strict, like a request body: NaN or absurd nesting is a label error, not a crash
            label["reference"] = parse_json(ref)
        except ValueError as exc:
            raise AdapterInputError(f"metadata.reference: {exc}") from exc
    return label


def _prompt(messages: list[Any]) -> list[Any]:
    """The messages before the policy's first turn: where the task query is read when no label gives it."""
    out = []
    for m in messages:
        if isinstance(m, Mapping) and m.get("role") == "assistant":
            break
        out.append(m)
    return out


def _num_tokens(trajectory: Any) -> int | None:
    """The policy's exact token count: the Choices' logprob tokens, if every assistant turn has them."""
    total, choices = 0, 0
    for m in trajectory.messages_and_choices:
        if isinstance(m, Mapping):
            if m.get("role") == "assistant":  # a turn given as a dict has no logprobs: no exact count
                return None
            continue
        logprobs = getattr(m, "logprobs", None)
        tokens = None if logprobs is None else (logprobs.content if logprobs.content is not None else logprobs.refusal)
        if tokens is None:
            return None
        total, choices = total + len(tokens), choices + 1
    return total if choices else None


def _rollout(trajectory: Any) -> dict[str, Any]:
    if getattr(trajectory, "additional_histories", None):
        raise AdapterInputError("ART trajectory with additional_histories: only the main history would be judged")
    rollout: dict[str, Any] = {"messages": trajectory.messages()}
    n = _num_tokens(trajectory)
    if n is not None:
        rollout["num_tokens"] = n
    return rollout


def _record(trajectory: Any, r: dict[str, Any], fake: bool) -> None:
    trajectory.reward = float(r["reward"])
    metrics = {f"reward/{k}": r[k] for k in ("s_pos", "s_pit", "s_fa") if r[k] is not None}
    metrics["reward/penalized"] = float(r["status"] == "penalized")
    metrics["reward/has_final_answer"] = float(bool(r["has_final_answer"]))
    metrics["reward/fake_judge"] = float(fake)
    trajectory.metrics.update(metrics)
    trajectory.metadata.update(
        {"reward_status": r["status"], "reward_penalty": r["penalty"], "reward_fake_judge": fake}
    )


async def score_group(
    group: Any,
    *,
    reference: Any = None,
    query: str | None = None,
    group_id: str | None = None,
    rubric: str | None = None,
    terminal_tool: str | Sequence[str] | None = None,
    client: Any = None,
    on_error: Literal["drop_group", "drop_rollouts"] = "drop_group",
    swallow_exceptions: bool = False,
) -> Any:
    """ART's `after_each`: the group with every trajectory's reward set, or None to drop it (see the module).
    `terminal_tool`: the agent's terminal tool name(s) when they are not among the recognised ones (use
    `functools.partial(score_group, terminal_tool="my_shell")` as `after_each`)."""
    if on_error not in ("drop_group", "drop_rollouts"):
        raise ValueError(f"on_error: 'drop_group' or 'drop_rollouts', got {on_error!r}")
    trajectories = list(group.trajectories)
    if not trajectories:  # every rollout raised: ART keeps the empty group and trains nothing from it
        return group
    given = {"reference": reference, "query": query, "group_id": group_id}
    samples = []
    for t in trajectories:
        rollout = _rollout(t)
        samples.append({"label": _label(t, group, given), "prompt": _prompt(rollout["messages"]), "rollout": rollout})
    groups, index = build_groups(samples, "trajectories[{}].metadata")
    if client is None:
        from reward.adapters.client import default_client

        client = default_client()
    try:
        response = await client.ascore(groups, rubric, terminal_tool)
    except Exception as exc:
        if not swallow_exceptions:
            raise
        logger.warning("ART group of %d dropped: the reward service failed: %s", len(trajectories), exc)
        return None
    rollouts = per_sample(response, index)
    fakes = [bool((response["groups"][g].get("judge") or {}).get("fake")) for g, _ in index]
    failed = [r["error"] for r in rollouts if r["reward"] is None]
    if failed and (on_error == "drop_group" or len(failed) == len(rollouts)):
        cats = ", ".join(sorted({e["category"] for e in failed}))
        logger.warning(
            "ART group %s dropped: %d of %d trajectories could not be judged (%s); no reward was computed",
            ", ".join(g["group_id"] for g in groups), len(failed), len(rollouts), cats,
        )  # fmt: skip
        return None
    kept = []
    for t, r, fake in zip(trajectories, rollouts, fakes, strict=True):
        if r["reward"] is not None:
            _record(t, r, fake)
            kept.append(t)
    if failed:
        logger.warning(
            "ART group %s: %d of %d trajectories could not be judged and were dropped (%s)",
            ", ".join(g["group_id"] for g in groups), len(failed), len(rollouts),
            ", ".join(sorted({e["category"] for e in failed})),
        )  # fmt: skip
        group.trajectories = kept
    return group
