"""OpenRLHF 0.11.2 agent mode: examples/openrlhf_agent.py, replayed from what OpenRLHF's own code did with it.

The fixture (tests/fixtures/conformance_gen/openrlhf_agent_run.py) records OpenRLHF's loader requirements, and
every `generate` call and `step()` of `MultiTurnAgentExecutor.execute` running the example over the corpus
(Qwen3 chat text, with and without reasoning), with the reward OpenRLHF ended with. Here `openrlhf.utils.agent`
is a stand-in whose `execute` makes exactly the recorded calls, in order, against a real server: the example's
rewards must be the steps form's (with the example's exact token count; `too-long` is over the limit only by
the count the corpus records), the fixture's, and a judge failure must raise.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar

import httpx
import pytest

from reward.adapters.client import RewardClient
from reward.adapters.common import JudgeFailed
from tests.fixtures.conformance_gen.corpus import corpus
from tests.fixtures.conformance_gen.openrlhf_agent_run import BIG, EXAMPLE, ByteTokenizer
from tests.server_proc import ServerProcess, server_env

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conformance" / "openrlhf_agent.json.gz"
NEEDS_EXACT_COUNT = "too-long"


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


def stand_in_agent_module(recorded: dict[str, Any]) -> ModuleType:
    """openrlhf.utils.agent as the example sees it: the bases with the recorded abstract methods, and a
    MultiTurnAgentExecutor whose `execute` replays the recorded calls of the engine's episode."""
    mod = ModuleType("openrlhf.utils.agent")
    abstract = recorded["abstract"]

    class AgentExecutorBase(ABC):
        @abstractmethod
        async def execute(self, *a: Any, **kw: Any) -> Any: ...

    class AgentInstanceBase(ABC):
        @abstractmethod
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

        async def reset(self, states: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return states

        @abstractmethod
        async def step(self, state_dict: dict[str, Any], **kwargs: Any) -> Any: ...

    assert sorted(AgentExecutorBase.__abstractmethods__) == abstract["AgentExecutorBase"]
    assert sorted(AgentInstanceBase.__abstractmethods__) == abstract["AgentInstanceBase"]

    class MultiTurnAgentExecutor(AgentExecutorBase):
        def __init__(self, agent_instance_cls: type) -> None:
            assert issubclass(agent_instance_cls, AgentInstanceBase)
            self.agent_instance_cls = agent_instance_cls

        async def execute(self, prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images=None):  # type: ignore[no-untyped-def]
            case = llm_engine.case
            agent = self.agent_instance_cls()
            assert case["reset"] == {"observation": prompt, "label": label}
            assert (await agent.reset(dict(case["reset"])))["observation"] == prompt
            results = []
            for gen, step in zip(case["generate"], case["steps"], strict=True):
                sampling_params.max_tokens = gen["max_tokens"]
                await llm_engine.generate(hf_tokenizer.encode(gen["prompt_text"]), sampling_params)
                states = {**step["states"], "sampling_params": sampling_params}
                results.append(await agent.step(states))
            return results

    for cls in (AgentExecutorBase, AgentInstanceBase, MultiTurnAgentExecutor):
        setattr(mod, cls.__name__, cls)
    return mod


class ReplayEngine:
    """The rollout engine: the recorded output of each call (stop token in the ids, not in the text)."""

    def __init__(self, case: dict[str, Any], tok: ByteTokenizer) -> None:
        self.case, self.tok, self.turn = case, tok, 0

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> Any:
        gen = self.case["generate"][self.turn]
        assert len(prompt_token_ids) == gen["prompt_ids"]
        text = self.case["steps"][self.turn]["states"]["action_text"]
        self.turn += 1
        ids = self.tok.encode(gen["output_text"])
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, text=text, finish_reason="stop")])


@pytest.fixture
def example(recorded, monkeypatch) -> ModuleType:
    """The example loaded as OpenRLHF's `_load_agent_executor` loads it, with the stand-in module."""
    pkg, utils = ModuleType("openrlhf"), ModuleType("openrlhf.utils")
    agent = stand_in_agent_module(recorded)
    pkg.utils, utils.agent = utils, agent  # type: ignore[attr-defined]
    for name, mod in (("openrlhf", pkg), ("openrlhf.utils", utils), ("openrlhf.utils.agent", agent)):
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("agent_module", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Terminal:
    """Each command answered with the corpus rollout's recorded output."""

    steps: ClassVar[list[dict[str, Any]]] = []

    def __init__(self) -> None:
        self.done = 0

    def run(self, command: str) -> tuple[str, int | None]:
        step = self.steps[self.done]
        assert command == step["command"]
        self.done += 1
        return step["output"], step["exit_code"]


class Spy(RewardClient):
    """The default client, keeping what the agent sent and what the service answered."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout_s=60)
        self.seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def ascore(self, groups: list[dict[str, Any]], rubric: str | None = None) -> dict[str, Any]:
        resp = await super().ascore(groups, rubric)
        self.seen.append((groups[0]["rollouts"][0], resp["groups"][0]["rollouts"][0]))
        return resp


@pytest.fixture(scope="module")
def server(fake_judge_server, tmp_path_factory):
    proc = ServerProcess(server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("orl") / "c"))
    yield proc
    proc.stop()


@pytest.fixture
def spy(server, monkeypatch) -> Spy:
    client = Spy(server.url)
    monkeypatch.setattr("reward.adapters.client._default", client)
    return client


def rollouts() -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["group_id"], r["id"]): r for g in corpus() for r in g["rollouts"]}


def score(server: ServerProcess, groups: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, float]]:
    resp = httpx.post(f"{server.url}/score", json={"groups": groups}, timeout=120)
    assert resp.status_code == 200, resp.text[:300]
    return {(g["group_id"], r["id"]): (r["status"], r["reward"]) for g in resp.json()["groups"] for r in g["rollouts"]}


async def replay(example: ModuleType, case: dict[str, Any], steps: list[dict[str, Any]], max_length: int) -> Any:
    """The example through the recorded calls of one episode: the step results it returned."""
    Terminal.steps = steps
    example.AgentInstance.terminal = Terminal
    tok = ByteTokenizer()
    prompt, label = case["reset"]["observation"], case["reset"]["label"]
    sp = SimpleNamespace(max_tokens=None, logprobs=None)
    return await example.AgentExecutor().execute(prompt, label, sp, max_length, tok, ReplayEngine(case, tok))


def test_example_defines_what_openrlhfs_loader_requires(recorded, example):
    assert recorded["trainer"] == "OpenRLHF" and recorded["version"] == "0.11.2"
    assert recorded["function"] == "openrlhf.utils.agent.MultiTurnAgentExecutor.execute"
    loader = recorded["loader"]
    assert loader == {"class_name": "AgentExecutor", "must_subclass": "AgentExecutorBase", "built_with_args": 0}
    cls = getattr(example, loader["class_name"])
    base = getattr(sys.modules["openrlhf.utils.agent"], loader["must_subclass"])
    assert issubclass(cls, base)
    executor = cls()  # built with no arguments, as the loader builds it
    assert [c.__name__ for c in type(executor).__mro__] == recorded["executor_mro"]
    assert issubclass(executor.agent_instance_cls, sys.modules["openrlhf.utils.agent"].AgentInstanceBase)
    executor.agent_instance_cls()  # MultiTurnAgentExecutor builds one per episode, with no arguments


def test_recorded_episodes_replay_to_the_steps_form(recorded, example, server, spy):
    by_key = rollouts()
    matrix: dict[str, list[int]] = {}

    async def run_all() -> list[Any]:
        return [await replay(example, c, by_key[(c["group_id"], c["rollout_id"])]["steps"], BIG)
                for c in recorded["cases"]]  # fmt: skip

    results = asyncio.run(run_all())
    assert len(spy.seen) == len(recorded["cases"]) == 256  # one request per episode, at its last step
    counts: dict[str, dict[tuple[str, str], int]] = {}
    for c, (sent, _) in zip(recorded["cases"], spy.seen, strict=True):
        counts.setdefault(c["form"], {})[(c["group_id"], c["rollout_id"])] = sent["num_tokens"]
        assert sent["num_tokens"] == c["observation_tokens"] - c["generate"][0]["prompt_ids"]  # exact
    plain = score(server, corpus())
    for c, steps, (_, answer) in zip(recorded["cases"], results, spy.seen, strict=True):
        key = (c["group_id"], c["rollout_id"])
        # the same step results as under OpenRLHF: feedback, done only at the last, reward only there
        got = [(s["environment_feedback"], s["done"], s["rewards"].item()) for s in steps]
        want = [(s["result"]["environment_feedback"], s["result"]["done"], s["result"]["rewards"]) for s in c["steps"]]
        assert got == want, key
        total = sum(s["rewards"].item() for s in steps)  # as MultiTurnAgentExecutor sums them
        assert total == c["final"]["reward"] and steps[-1]["extra_logs"] == c["final"]["extra_logs"]
        # the fake mark reaches OpenRLHF's logs (a penalised rollout is not judged at all)
        assert c["final"]["extra_logs"]["fake_judge"] == float(c["status"] != "penalized")
        assert (answer["status"], total) == (c["status"], c["final"]["reward"])
        ok = (answer["status"], total) == plain[key]
        if c["rollout_id"] == NEEDS_EXACT_COUNT:
            assert not ok and plain[key] == ("penalized", -100.0)  # over the limit only by the corpus count
        cell = matrix.setdefault(f"{c['form']} vs steps", [0, 0])
        cell[0] += ok or c["rollout_id"] == NEEDS_EXACT_COUNT
        cell[1] += 1
    for form, count in counts.items():  # like for like: the steps form with the example's token counts
        groups = [{**g, "rollouts": [{**r, "num_tokens": count[(g["group_id"], r["id"])]} for r in g["rollouts"]]}
                  for g in corpus()]  # fmt: skip
        want = score(server, groups)
        same = [(c["status"], c["final"]["reward"]) == want[(c["group_id"], c["rollout_id"])]
                for c in recorded["cases"] if c["form"] == form]  # fmt: skip
        matrix[f"{form} vs steps, same count"] = [sum(same), len(same)]
    if os.environ.get("REWARD_CONFORMANCE_REPORT"):
        with open(os.environ["REWARD_CONFORMANCE_REPORT"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"trainer": "OpenRLHF agent", "forms": matrix}) + "\n")
    assert all(ok == n == 128 for ok, n in matrix.values()), matrix


def test_an_episode_cut_by_max_length_is_scored_at_its_last_step(recorded, example, server, spy):
    """OpenRLHF stops calling step() once the tokens reach max_length: the recorded agent that scores only
    when the environment is done ended those episodes with 0.0; the example scores the step they end at."""
    by_key = rollouts()
    assert recorded["budget"]
    for c in recorded["budget"]:
        r = by_key[(c["group_id"], c["rollout_id"])]
        steps = asyncio.run(replay(example, c, r["steps"], c["max_length"]))
        assert len(steps) == 1 and steps[0]["done"] and len(r["steps"]) >= 2
        assert c["naive_reward"] == 0.0 != c["final"]["reward"] == steps[0]["rewards"].item()
        sent = spy.seen[-1][0]
        cut = {"id": r["id"], "steps": r["steps"][:1], "num_tokens": sent["num_tokens"]}
        g = next(g for g in corpus() if g["group_id"] == c["group_id"])
        want = score(server, [{**g, "rollouts": [cut]}])[(g["group_id"], r["id"])]
        assert (c["status"], c["final"]["reward"]) == want == (spy.seen[-1][1]["status"], steps[0]["rewards"].item())


def test_a_judge_failure_raises_from_step(recorded, example, server, spy, fake_judge):
    failure = recorded["judge_failure"]
    # what OpenRLHF did: generate_responses' gather re-raised it (ray.get re-raises it in the trainer)
    assert failure["raised"] == "JudgeFailed" and "could not be judged" in failure["message"]
    case = next(c for c in recorded["cases"] if c["form"] == "qwen3" and c["group_id"] == failure["group_id"]
                and c["rollout_id"] == failure["rollout"]["id"])  # fmt: skip
    final = case["steps"][-1]["states"]["action_text"].replace(
        "</final_answer>", "(a fresh judgement)\n</final_answer>"
    )
    case = json.loads(json.dumps(case))
    case["steps"][-1]["states"]["action_text"] = final
    case["generate"][-1]["output_text"] = final + "<|im_end|>"
    fake_judge.script(*[{"kind": "grade", "status": 401, "message": "bad key"}] * 20)
    try:
        with pytest.raises(JudgeFailed, match="judge_auth"):
            asyncio.run(replay(example, case, failure["rollout"]["steps"], BIG))
    finally:
        fake_judge.reset()
