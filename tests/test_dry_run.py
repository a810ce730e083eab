"""`reward score --dry-run`: the calls it predicts are the calls the run then makes, and it makes none itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reward.judge.llm import count_tokens, litellm
from reward.rubric.load import load_rubric
from reward.rubric.verdict import response_format
from reward.scoring.dry_run import MESSAGE_TOKENS, REQUEST_TOKENS
from tests.conftest import EXAMPLES, cli_env, group, rollout, step
from tests.conftest import run_cli as reward

PRICED = "openai/gpt-4.1-2025-04-14"  # litellm's bundled price map knows it


def dry(src: Path, out: Path, env: dict[str, str], *extra: Any, code: int = 0) -> dict[str, Any]:
    ran = reward("score", src, "-o", out, "--dry-run", "--json", "--no-progress", *extra, env=env, check=False)
    assert ran.returncode == code, ran.stderr
    return json.loads(ran.stdout)


def score(src: Path, out: Path, env: dict[str, str], *extra: Any, code: int = 0) -> None:
    ran = reward("score", src, "-o", out, "--no-progress", *extra, env=env, check=False)
    assert ran.returncode == code, ran.stdout + ran.stderr


def calls(plan: dict[str, Any]) -> dict[str, int]:
    stages = plan["stages"]
    return {"condense": stages["condense"]["calls"], "grade": stages["grade"]["calls"]}


def made(fake_judge) -> dict[str, int]:
    counts = fake_judge.counts()
    return {"condense": counts["condense"], "grade": counts["grade"]}


def test_the_examples_dry_run_counts_what_the_run_then_calls_and_then_all_is_cached(fake_judge, tmp_path):
    env, out = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "out.jsonl"
    plan = dry(EXAMPLES, out, env)
    assert fake_judge.counts()["total"] == 0 and not out.exists()  # no call, nothing written
    assert plan["rollouts"] == {"to_score": 32, "penalized": 7, "to_judge": 25, "errors": 0}
    assert calls(plan) == {"condense": 22, "grade": 22}
    # Identical rollouts are one call: 3 graded rollouts repeat another's content, and each repeated
    # trajectory (a rollout equal to its reference, too) shares one condensing call.
    assert plan["stages"]["grade"]["shared"] == 3 and plan["stages"]["condense"]["shared"] == 7
    score(EXAMPLES, out, env)
    assert made(fake_judge) == calls(plan)
    again = dry(EXAMPLES, tmp_path / "other.jsonl", env)
    assert calls(again) == {"condense": 0, "grade": 0}
    assert again["total"]["cached"] == plan["total"]["calls"] and again["total"]["cost_usd"] == 0
    # and on the output just written, nothing is left to do
    assert dry(EXAMPLES, out, env)["groups"] == {"to_score": 0, "already_done": 4, "invalid_lines": 0}
    assert made(fake_judge) == calls(plan)  # the dry runs after the run called nothing either


def awkward_file(path: Path) -> Path:
    """Duplicates within and across groups, penalised rollouts, a plan reference, a repeated group id."""
    same = {"steps": [step("pytest -q", 1, "1 failed")], "final": "<final_answer>1 test failed</final_answer>"}
    lines = [
        group(
            "dup",
            [
                rollout("a", steps=same["steps"], final=same["final"]),
                rollout("b", steps=same["steps"], final=same["final"]),  # a's content: one call
                rollout("c", steps=[step("pytest -x", 1, "stopped")]),
                rollout("no-answer", final=""),  # penalised: missing final answer
                rollout("no-commands", steps=[]),  # penalised: no commands
            ],
        ),
        # The same query, reference and rollout content in another group: its judgements are dup's.
        group("dup-again", [rollout("x", steps=same["steps"], final=same["final"]), rollout("y", final="")]),
        group("plan-ref", [rollout("p0"), rollout("p1", steps=[step("ls", 0, "a b")])], reference={"plan": "1. run"}),
        group("dup"),  # a repeated group id: an invalid line, as in the run
    ]
    path.write_text("".join(json.dumps(g) + "\n" for g in lines))
    return path


@pytest.mark.parametrize("sampling", [(), ("--samples", "3"), ("--samples", "2", "--resample-condense")])
def test_duplicates_penalties_and_k_samples_are_counted_as_the_run_calls(fake_judge, tmp_path, sampling):
    env, src, out = cli_env(fake_judge, tmp_path / "cache"), awkward_file(tmp_path / "in.jsonl"), tmp_path / "o.jsonl"
    plan = dry(src, out, env, *sampling, code=1)  # the repeated group id is an invalid line: 1, as the run
    assert fake_judge.counts()["total"] == 0
    assert plan["groups"] == {"to_score": 3, "already_done": 0, "invalid_lines": 1}
    assert plan["rollouts"] == {"to_score": 9, "penalized": 3, "to_judge": 6, "errors": 0}
    k = int(sampling[1]) if sampling else 1
    condense_seeds = k if "--resample-condense" in sampling else 1
    # distinct trajectories: dup's a (= dup-again's x), c, plan-ref's p0 and p1, and one reference (dup and
    # dup-again share it; plan-ref's is a plan); graded contents: a, c, p0, p1
    assert calls(plan) == {"condense": 4 * condense_seeds + 1, "grade": 4 * k}
    score(src, out, env, *sampling, code=1)
    assert made(fake_judge) == calls(plan)
    assert calls(dry(src, tmp_path / "o2.jsonl", env, *sampling, code=1)) == {"condense": 0, "grade": 0}


def test_a_group_whose_rollouts_are_all_penalised_needs_no_call(fake_judge, tmp_path):
    """Not even its reference plan: no rollout is graded against it. (The run starts condensing the reference
    before it knows, and cancels it once every rollout is penalised, before the call is sent: 0 of 40 runs
    sent it, with and without a disk cache.)"""
    env, src = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "in.jsonl"
    reference = {"steps": [step("make", 0, "ok")], "final_answer": "<final_answer>built</final_answer>"}
    src.write_text(json.dumps(group("all", [rollout("q0", final=""), rollout("q1", steps=[])], reference)) + "\n")
    plan = dry(src, tmp_path / "o.jsonl", env)
    assert plan["rollouts"]["penalized"] == 2 and calls(plan) == {"condense": 0, "grade": 0}
    assert plan["total"]["cost_usd"] == 0  # no call at all: $0 whatever the price
    score(src, tmp_path / "o.jsonl", env)
    assert made(fake_judge) == calls(plan)  # the run's reference task is cancelled before its call is sent


def test_a_partly_done_output_and_a_partly_filled_cache(fake_judge, tmp_path):
    env, out = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "out.jsonl"
    lines = EXAMPLES.read_text().splitlines(keepends=True)
    half = tmp_path / "half.jsonl"
    half.write_text("".join(lines[:2]))
    score(half, out, env)  # two groups scored into the output, their judgements cached
    before = made(fake_judge)
    plan = dry(EXAMPLES, out, env)
    assert plan["groups"] == {"to_score": 2, "already_done": 2, "invalid_lines": 0}
    fresh = dry(EXAMPLES, tmp_path / "fresh.jsonl", env)  # every group, half of them cached
    assert fresh["total"]["cached"] > 0 and calls(fresh) == calls(plan)
    assert made(fake_judge) == before
    score(EXAMPLES, out, env)
    assert {k: made(fake_judge)[k] - before[k] for k in before} == calls(plan)


def test_a_cached_plan_the_run_would_refuse_is_a_call(fake_judge, tmp_path):
    """A planted refusal in the plan cache is condensed again by the run: the dry run counts it as a call too."""
    from reward.cache.disk import Store

    env, out = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "out.jsonl"
    score(EXAMPLES, out, env)
    store = Store(tmp_path / "cache")
    for k in [k for k in store._disk.iterkeys() if k.startswith("plan:")]:
        store._disk.set(k, json.dumps({"plan": "I'm sorry, but I can't help with that.", "fake": True}))
    store.close()
    fake_judge.reset()
    plan = dry(EXAMPLES, tmp_path / "again.jsonl", env)
    assert calls(plan)["condense"] == 22
    score(EXAMPLES, tmp_path / "again.jsonl", env)
    # (a grading request on a plan not yet known is counted as a call: here it is the one cached before)
    assert made(fake_judge) == {"condense": 22, "grade": 0}


def test_prompt_tokens_of_requests_it_can_render_are_the_requests_sent(fake_judge, tmp_path):
    """With the plans cached (K = 1 run before), K = 2 grades sample 1 anew with plans known (sample 0 is the
    K = 1 request, cached): the dry run renders each grading request exactly as the run sends it, so its token
    count is the count of what was sent."""
    env, out = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "k1.jsonl"
    score(EXAMPLES, out, env)
    fake_judge.reset()
    plan = dry(EXAMPLES, tmp_path / "k2.jsonl", env, "--samples", "2")
    assert calls(plan) == {"condense": 0, "grade": 22}
    score(EXAMPLES, tmp_path / "k2.jsonl", env, "--samples", "2")
    sent = fake_judge.state.calls
    assert len(sent) == 22 and all(c["seed"] == 1 for c in sent)
    spec = load_rubric("execution_subagent").spec
    schema = count_tokens(json.dumps(response_format(spec)))
    counted = sum(
        REQUEST_TOKENS + schema + sum(MESSAGE_TOKENS + count_tokens(m["content"]) for m in c["messages"]) for c in sent
    )
    assert plan["stages"]["grade"]["prompt_tokens"] == counted
    assert plan["stages"]["grade"]["completion_tokens"] == 22 * spec.judge.grade.max_tokens  # an upper bound


def test_cost_from_litellm_prices_and_unknown_never_zero(fake_judge, tmp_path):
    env, out = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "out.jsonl"
    unknown = dry(EXAMPLES, out, env)  # openai/test-judge: litellm has no price for it
    assert unknown["total"]["cost_usd"] is None and unknown["stages"]["grade"]["cost_usd"] is None
    text = reward("score", EXAMPLES, "-o", out, "--dry-run", "--no-progress", env=env).stdout
    assert "unknown" in text and "$0" not in text and "no judge call" in text
    priced = dry(EXAMPLES, out, env, "--judge-model", PRICED)
    info = litellm.get_model_info(model=PRICED)
    expected = 0.0
    for stage in priced["stages"].values():
        assert stage["model"] == PRICED and stage["calls"] == 22
        cost = stage["prompt_tokens"] * info["input_cost_per_token"]
        cost += stage["completion_tokens"] * info["output_cost_per_token"]
        assert stage["cost_usd"] == pytest.approx(cost) and cost > 0
        expected += cost
    assert priced["total"]["cost_usd"] == pytest.approx(expected)
    assert fake_judge.counts()["total"] == 0


def test_json_without_dry_run_is_a_usage_error(fake_judge, tmp_path):
    env = cli_env(fake_judge, tmp_path / "cache")
    ran = reward("score", EXAMPLES, "-o", tmp_path / "o.jsonl", "--json", env=env, check=False)
    assert ran.returncode == 2 and "--dry-run" in ran.stderr
    assert fake_judge.counts()["total"] == 0


def test_a_dry_run_refuses_what_the_run_refuses_and_leaves_the_output_alone(fake_judge, tmp_path):
    env, out = cli_env(fake_judge, tmp_path / "cache"), tmp_path / "out.jsonl"
    lines = EXAMPLES.read_text().splitlines(keepends=True)
    half = tmp_path / "half.jsonl"
    half.write_text("".join(lines[:1]))
    score(half, out, env)
    torn = out.read_bytes() + b'{"group_id": "torn'
    out.write_bytes(torn)
    plan = dry(EXAMPLES, out, env)
    assert plan["groups"]["already_done"] == 1 and out.read_bytes() == torn  # the run would cut it; not a dry run
    ran = reward("score", EXAMPLES, "-o", out, "--dry-run", "--samples", "2", env=env, check=False)
    assert ran.returncode == 2 and "K = 1" in ran.stderr  # another K into the same file: refused, as the run does
