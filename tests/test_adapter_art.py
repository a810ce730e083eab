"""OpenPipe ART: the group scorer (`after_each` of `art.gather_trajectory_groups`) against a real server.

The fixture (tests/fixtures/conformance/art.json.gz, written by tests/fixtures/conformance_gen/art_run.py)
holds what ART 0.5.18's own code produced for the 128-rollout corpus: the trajectories' `messages_and_choices`
(openai `Choice` objects, logprob tokens as counts), what `Trajectory.messages()` gave, and the rewards ART
ended with after `gather_trajectory_groups(after_each=score_group)`. Here the same trajectories are rebuilt
as duck-typed stand-ins (ART is not installed in CI) and replayed through the adapter.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from reward.adapters import art as art_adapter
from reward.adapters.client import RewardClient, RewardServiceError
from reward.adapters.common import AdapterInputError
from tests.fixtures.conformance_gen.corpus import corpus
from tests.server_proc import ServerProcess, closed_port, server_env

pytestmark = pytest.mark.slow
PENALTIES = {"too_long", "missing_final_answer", "no_commands"}
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "art.json.gz"


def load() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


class Choice:
    """What the adapter reads of an openai `Choice`: `.message` and `.logprobs` (tokens as recorded counts)."""

    def __init__(self, dump: dict[str, Any]) -> None:
        self.message = SimpleNamespace(**dump["message"])
        lp = dump.get("logprobs")
        if lp is None:
            self.logprobs = None
        else:
            content = lp.get("content")
            tokens = None if content is None else [None] * content["count"]
            self.logprobs = SimpleNamespace(content=tokens, refusal=lp.get("refusal"))


class Trajectory:
    """An `art.Trajectory` as recorded before scoring: `messages()` returns what ART's own gave."""

    def __init__(self, rec: dict[str, Any]) -> None:
        self.messages_and_choices = [
            Choice(m["choice"]) if "choice" in m else copy.deepcopy(m["message"]) for m in rec["messages_and_choices"]
        ]
        self._messages = rec["messages"]
        self.reward = 0.0  # ART's default (art/trajectories.py)
        self.metrics: dict[str, Any] = {}
        self.metadata = {k: v for k, v in rec["metadata"].items() if not k.startswith("reward_")}
        self.additional_histories: list[Any] = []

    def messages(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._messages)


def group_of(trajectories: list[dict[str, Any]], metadata: dict[str, Any] | None) -> SimpleNamespace:
    return SimpleNamespace(trajectories=[Trajectory(t) for t in trajectories], metadata=dict(metadata or {}))


def report(path: str, matrix: Counter[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    forms = sorted({f for f, _ in matrix})
    table = {f: (matrix[(f, True)], matrix[(f, True)] + matrix[(f, False)]) for f in forms}
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": path, "forms": table}) + "\n")
    return table


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("art")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def expected(server) -> dict[tuple[str, str], tuple[str, float]]:
    """The steps form of the corpus, scored by /score."""
    resp = httpx.post(f"{server.url}/score", json={"groups": corpus()}, timeout=300)
    assert resp.status_code == 200, resp.text[:300]
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp.json()["groups"] for r in g["rollouts"]}


def test_every_rollout_through_art_gets_the_steps_form_reward(server, expected):
    fixture = load()
    client = RewardClient(server.url, timeout_s=120)
    replay: Counter[tuple[str, bool]] = Counter()
    in_art: Counter[tuple[str, bool]] = Counter()

    problems: list[str] = []

    async def run() -> None:
        for g in fixture["groups"]:
            group = group_of(g["trajectories"], g["group_metadata"])
            scored = await art_adapter.score_group(group, client=client)
            assert scored is group and len(scored.trajectories) == 8
            for t, rec in zip(scored.trajectories, g["trajectories"], strict=True):
                key = (g["group_id"], t.metadata["rollout_id"])
                got = (t.metadata["reward_status"], t.reward)
                replay[("art_after_each", got == expected[key])] += 1
                # what ART itself ended with at capture time
                in_art[("art_after_each", (rec["metadata"]["reward_status"], rec["reward"]) == expected[key])] += 1
                # the fake judge's mark travels with the trajectory, and the status with its penalty
                penalty = t.metadata["reward_penalty"]
                checks = {
                    "fake": t.metadata["reward_fake_judge"] is True and t.metrics["reward/fake_judge"] == 1.0,
                    "penalty": penalty is None if got[0] == "ok" else penalty in PENALTIES,
                    "penalized": t.metrics["reward/penalized"] == float(got[0] == "penalized"),
                    "scores": ("reward/s_pos" in t.metrics) == (got[0] == "ok"),
                    "as_in_art": t.metrics == {k: v for k, v in rec["metrics"].items() if k.startswith("reward/")},
                }
                problems.extend(f"{key}: {name}" for name, ok in checks.items() if not ok)

    asyncio.run(run())
    assert report("ART replay", replay) == {"art_after_each": (128, 128)}
    assert report("ART at capture", in_art) == {"art_after_each": (128, 128)}
    assert problems == []


def test_the_exact_token_count_is_the_choices_logprob_tokens(server, expected):
    """The over-limit rollout is penalised on ART's own count; rollouts without logprobs are estimated."""
    fixture = load()
    counted = {(g["group_id"], r["id"]): r.get("num_tokens") for g in corpus() for r in g["rollouts"]}
    for g in fixture["groups"]:
        for rec in g["trajectories"]:
            t = Trajectory(rec)
            key = (g["group_id"], rec["metadata"]["rollout_id"])
            assert art_adapter._num_tokens(t) == counted[key]
            if rec["metadata"]["rollout_id"] == "too-long":
                assert rec["metadata"]["reward_penalty"] == "too_long"
                assert (rec["metadata"]["reward_status"], rec["reward"]) == ("penalized", -100.0) == expected[key]


def test_fixture_was_captured_by_running_art():
    meta = load()
    assert (meta["framework"], meta["package"], meta["version"]) == ("OpenPipe ART", "openpipe-art", "0.5.18")
    assert meta["function"] == "art.gather.gather_trajectory_groups(after_each=reward.adapters.art.score_group)"
    assert meta["tool"] == "bash" and meta["policy_request_tools"][0]["function"]["name"] == "bash"
    assert len(meta["groups"]) == 16 and meta["dropped"] == []
    # after_each sees the group before any reward is set: ART's default 0.0
    assert {r["reward_before"] for g in meta["groups"] for r in g["reward_before"]} == {0.0}
    choices = [m for g in meta["groups"] for t in g["trajectories"] for m in t["messages_and_choices"] if "choice" in m]
    assert {c["type"] for c in choices} == {"openai.types.chat.chat_completion.Choice"}
    # Trajectory.messages(): a Choice becomes a dict, content "" (never None), tool calls model_dump(mode="json")
    turns = [m for g in meta["groups"] for t in g["trajectories"] for m in t["messages"] if m["role"] == "assistant"]
    calls = [c for m in turns for c in m.get("tool_calls", [])]
    assert calls and all(set(c) == {"id", "type", "function"} and c["function"]["name"] == "bash" for c in calls)
    assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    assert all(m["content"] == "" for m in turns if m.get("tool_calls"))
    assert all(set(m) == {"role", "content"} for m in turns if not m.get("tool_calls"))  # reasoning dropped
    tools = [m for g in meta["groups"] for t in g["trajectories"] for m in t["messages"] if m["role"] == "tool"]
    assert tools and all(set(m) == {"role", "tool_call_id", "content"} for m in tools)


def test_art_contract_recorded_at_capture():
    """What ART did with an exception, a swallowed failure, a list, no reward and a NaN."""
    c = load()["contract"]
    assert c["exception"]["raised"] == "reward.adapters.client.RewardServiceError"  # ends the gather
    assert c["exception"]["max_exceptions"] == "inf"  # even so: after_each is outside ART's handling
    assert c["swallowed"] == {"kept": 0}  # None: the group is dropped
    assert c["list"] == {"kept": 2}  # a list is spliced in
    assert c["no_after_each"]["rewards"] == [0.0] * 8  # an unscored trajectory trains as 0.0
    assert c["nan_reward_accepted"] is True  # nothing in ART stops a NaN


def test_judge_failure_drops_the_group_in_art_and_in_replay(fake_judge_server, fake_judge, tmp_path, caplog):
    failure = load()["judge_failure"]
    # at capture: ART kept only the healthy group, and the service had said why
    assert [g["group_id"] for g in failure["kept"]] == [failure["healthy"]]
    said = failure["service_said"][failure["failing"]]
    assert {r["error"] for r in said if r["status"] == "error"} == {"judge_auth"}
    assert any(r["status"] == "penalized" for r in said)  # numbers for some: the group is dropped all the same
    assert failure["log"] and "dropped" in failure["log"][0]
    assert all(r["status"] != "error" for r in failure["service_said"][failure["healthy"]])

    # replay: a cold cache, every judge call answered 401
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp_path / "cache"))
    try:
        client = RewardClient(proc.url, timeout_s=30)
        fake_judge.script(*[{"status": 401, "message": "invalid key"}] * 200)
        group = group_of(failure["failing_group"], failure["failing_group_metadata"])
        with caplog.at_level("WARNING", logger="reward.adapters.art"):
            assert asyncio.run(art_adapter.score_group(group, client=client)) is None
        assert "judge_auth" in caplog.text and "no reward was computed" in caplog.text
        assert all(t.reward == 0.0 and "reward_status" not in t.metadata for t in group.trajectories)

        # drop_rollouts keeps the penalised ones, with their numbers, and nothing for the failed ones
        group = group_of(failure["failing_group"], failure["failing_group_metadata"])
        kept = asyncio.run(art_adapter.score_group(group, client=client, on_error="drop_rollouts"))
        assert kept is group and len(kept.trajectories) == sum(r["status"] != "error" for r in said) > 0
        assert all(t.metadata["reward_status"] == "penalized" for t in kept.trajectories)
    finally:
        proc.stop()


def test_a_service_failure_raises_or_drops_when_swallowed():
    g = load()["groups"][0]
    with closed_port() as port:
        dead = RewardClient(f"http://127.0.0.1:{port}", timeout_s=0.5)
        with pytest.raises(RewardServiceError):
            asyncio.run(art_adapter.score_group(group_of(g["trajectories"], g["group_metadata"]), client=dead))
        group = group_of(g["trajectories"], g["group_metadata"])
        assert asyncio.run(art_adapter.score_group(group, client=dead, swallow_exceptions=True)) is None


class Capture:
    """A client that records the groups it is sent and answers every rollout ok."""

    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        self.tools: list[Any] = []

    async def ascore(
        self, groups: list[dict[str, Any]], rubric: str | None = None, terminal_tool: Any = None
    ) -> dict[str, Any]:
        self.sent.append(groups)
        self.tools.append(terminal_tool)
        ok = {"status": "ok", "reward": 1.0, "penalty": None, "error": None, "s_pos": 0.5, "s_pit": 0.5, "s_fa": 0.5,
              "has_final_answer": True}  # fmt: skip
        return {"groups": [{"group_id": g["group_id"], "judge": {"fake": False}, "rollouts": [ok] * len(g["rollouts"])}
                           for g in groups]}  # fmt: skip


def test_labels_one_request_and_refusals():
    g = next(x for x in load()["groups"] if x["group_metadata"])  # the label in the group's metadata
    cap = Capture()
    group = group_of(g["trajectories"], g["group_metadata"])
    asyncio.run(art_adapter.score_group(group, client=cap))
    assert len(cap.sent) == 1 and len(cap.sent[0]) == 1 and len(cap.sent[0][0]["rollouts"]) == 8  # ONE request
    sent = cap.sent[0][0]
    assert sent["group_id"] == g["group_id"] and isinstance(sent["reference"], dict)  # JSON text parsed
    assert group.trajectories[0].metadata["reward_fake_judge"] is False

    # the caller's reference wins; without a query it is read from the prompt's <query>
    cap = Capture()
    asyncio.run(art_adapter.score_group(group_of(g["trajectories"], {}), reference="plan-7", client=cap))
    assert cap.sent[0][0]["reference"] == {"id": "plan-7"}
    assert cap.sent[0][0]["query"] == g["group_metadata"]["query"]
    assert cap.tools == [None]  # the server's terminal tools unless the agent declares its own
    asyncio.run(art_adapter.score_group(group, client=cap, terminal_tool="my_shell"))
    assert cap.tools[-1] == "my_shell"

    with pytest.raises(AdapterInputError, match="reference"):
        asyncio.run(art_adapter.score_group(group_of(g["trajectories"], {}), client=Capture()))
    bad = group_of(g["trajectories"], {**g["group_metadata"], "reference": '{"plan": NaN}'})
    with pytest.raises(AdapterInputError, match=r"metadata\.reference"):
        asyncio.run(art_adapter.score_group(bad, client=Capture()))
    extra = group_of(g["trajectories"], g["group_metadata"])
    extra.trajectories[0].additional_histories = [object()]
    with pytest.raises(AdapterInputError, match="additional_histories"):
        asyncio.run(art_adapter.score_group(extra, client=Capture()))
    empty = SimpleNamespace(trajectories=[], metadata={})
    cap = Capture()
    assert asyncio.run(art_adapter.score_group(empty, client=cap)) is empty and cap.sent == []


def test_no_exact_count_unless_every_assistant_turn_has_logprobs():
    rec = next(t for g in load()["groups"] for t in g["trajectories"] if t["metadata"]["rollout_id"] == "too-long")
    t = Trajectory(rec)
    assert art_adapter._num_tokens(t) == 41873
    t.messages_and_choices.append({"role": "assistant", "content": "a turn given as a dict"})
    assert art_adapter._num_tokens(t) is None
    t = Trajectory(rec)
    t.messages_and_choices[2].logprobs = None
    assert art_adapter._num_tokens(t) is None
