"""verifiers v1 (and prime-rl, which trains on its traces): a task reward that asks `reward serve`.

Checked against verifiers 0.4.0's own `Task.score` (`verifiers/v1/task.py`): every `@vf.reward` method and
every reward plugged through `TaskConfig.rewards` is called by keyword with what it names (`task`: the
TaskData, `trace`: the Trace), awaited in `asyncio.gather`, so it must be `async def`; a float is recorded
as `trace.rewards[name]` (a mapping would record each key as a reward, summed into `trace.reward`).
No code is needed in the task:

    --env.taskset.task.rewards.execution_subagent.fn reward.adapters.verifiers:execution_subagent

or, in a Task of your own, `return await execution_subagent(task, trace)` from a `@vf.reward` method.
The TaskData needs a `reference` field (a reference id, `{"plan": ...}` or a trajectory) and may have
`query` and `group_id`; without `query` the task is read from the prompt. What is sent is the trace's
final branch as verifiers holds it (`trace.messages`: system, user prompt, assistant turns whose tool
calls are flat `{"id", "type", "name", "arguments"}`, `tool` messages with `tool_call_id` and `name`).
verifiers' BashHarness calls its tool `bash` (among the service's default terminal tool names; another
harness's name is declared with `terminal_tool=` or REWARD_TERMINAL_TOOL) and returns stdout + stderr
only: no exit code reaches any reward function from it.

Groups: verifiers v1 shows a reward one trace; a GRPO group is `n` independent episodes (`Env.slots`)
and prime-rl computes advantages itself over the traces without errors. So each rollout is one request
(the reference plan is cached, so nothing is condensed twice) and the group statistics are prime-rl's.

Failure: a rollout the judge could not score raises JudgeFailed (an unreachable service raises
RewardServiceError): verifiers records it on the trace as a TaskError (`trace.ok = False`) and prime-rl
drops errored traces before computing advantages. Never 0.0, None or NaN: `float(None)` fails inside
verifiers too, but a NaN would be recorded and poison the whole group's mean. The service's own fields
(status, penalty, s_pos / s_pit / s_fa, the fake-judge mark) go to `trace.info["reward_service"]`, the
numbers also to `trace.metrics` (`reward_service/...`), which are logged but never summed into the reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reward.adapters.common import AdapterInputError, JudgeFailed, build_groups, per_sample
from reward.core.trajectory import parse_json

_LABEL_FIELDS = ("reference", "query", "group_id")
_METRICS = ("s_pos", "s_pit", "s_fa")


def _field(task: Any, name: str) -> Any:
    """A TaskData field, declared or carried as an extra (verifiers' WireTaskData keeps unknown fields)."""
    value = getattr(task, name, None)
    if value is None and isinstance(getattr(task, "model_extra", None), dict):
        value = task.model_extra.get(name)
    return value


def label_of(task: Any) -> dict[str, Any]:
    """The label build_groups reads, from the TaskData's `reference` / `query` / `group_id`; a reference
    kept as JSON text (a dataset column) is parsed, strictly."""
    label = {k: v for k in _LABEL_FIELDS if (v := _field(task, k)) is not None}
    ref = label.get("reference")
    if isinstance(ref, str) and ref.strip().startswith("{"):
        try:
            label["reference"] = parse_json(ref)
        except ValueError as exc:
            raise AdapterInputError(f"task.reference: {exc}") from exc
    return label


def message_dicts(trace: Any) -> list[dict[str, Any]]:
    """The final branch's messages as JSON objects (verifiers holds pydantic models; a replay, dicts)."""
    out = []
    for m in trace.messages:
        out.append(m if isinstance(m, dict) else m.model_dump(mode="json", exclude_none=True))
    return out


def prompt_of(task: Any, messages: list[dict[str, Any]]) -> Any:
    """The task's prompt (where the query is read when the TaskData has none): its own, else the
    messages before the first assistant turn."""
    prompt = _field(task, "prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        return [p if isinstance(p, dict) else p.model_dump(mode="json", exclude_none=True) for p in prompt]
    head = []
    for m in messages:
        if m.get("role") == "assistant":
            break
        head.append(m)
    return head


def num_tokens_of(trace: Any) -> int | None:
    """The policy's part of the final branch in the model's own tokens: the last call's whole sequence
    (prompt + completion) less the first call's prompt, from provider-reported usage. Exact while the
    history is append-only (no compaction); None when a call reports no usage (the service estimates)."""
    branches = getattr(trace, "branches", None)
    calls = list(branches[-1].calls) if branches else []
    if not calls or any(c.usage is None for c in calls):
        return None
    first, last = calls[0].usage, calls[-1].usage
    total = last.input_tokens + last.completion_tokens - first.input_tokens
    return total if total >= 0 else None


def _record(trace: Any, rollout: dict[str, Any], fake: bool) -> None:
    info = {
        "status": rollout["status"],
        "reward": rollout["reward"],
        "penalty": rollout.get("penalty"),
        "error": rollout.get("error"),
        "fake": fake,
        "num_tokens_exact": rollout.get("num_tokens_exact"),
        **{k: rollout.get(k) for k in _METRICS},
    }
    trace.info["reward_service"] = info
    trace.record_metric("reward_service/fake_judge", float(fake))
    trace.record_metric("reward_service/penalized", float(rollout["status"] == "penalized"))
    for key in _METRICS:
        if rollout.get(key) is not None:
            trace.record_metric(f"reward_service/{key}", float(rollout[key]))


async def execution_subagent(task: Any, trace: Any, *, terminal_tool: str | Sequence[str] | None = None) -> float:
    """The execution-subagent reward of one verifiers trace, from `reward serve` (REWARD_URL). verifiers
    passes only `task` and `trace`; a harness whose terminal tool is not among the service's default
    names declares it here (from a `@vf.reward` method) or with REWARD_TERMINAL_TOOL in this process."""
    from reward.adapters.client import default_client

    messages = message_dicts(trace)
    rollout: dict[str, Any] = {"messages": messages}
    n = num_tokens_of(trace)
    if n is not None:
        rollout["num_tokens"] = n
    groups, index = build_groups([{"label": label_of(task), "prompt": prompt_of(task, messages), "rollout": rollout}])
    response = await default_client().ascore(groups, terminal_tool=terminal_tool)
    scored = per_sample(response, index)[0]
    fake = bool(response["groups"][index[0][0]]["judge"]["fake"])
    _record(trace, scored, fake)
    if scored["reward"] is None:
        raise JudgeFailed([scored["error"]])
    return float(scored["reward"])
