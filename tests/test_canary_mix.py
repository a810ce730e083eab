"""Canaries mixed into live traffic (reward.service.canary_mix): the trainer's answer never changes, canary judge
calls happen in the background and are bounded, a planted weakness shows up for its kind only, and the counts
reach /metrics and GET /canaries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from reward.analysis.canaries import KINDS
from reward.core.trajectory import Group
from reward.judge.base import Judge
from reward.judge.fake.in_process import InProcessFakeJudge
from reward.judge.fake.planted import PlantedWeaknessJudge
from reward.rubric.load import Rubric
from reward.scoring.build import judge_settings
from reward.scoring.scorer import Scorer
from reward.service.app import create_app
from reward.service.canary_mix import CanaryMixer, draw
from reward.service.reward_service import RewardService, ScoreRequest, ScoreResponse, ServiceSettings
from tests.conftest import ROOT, example_groups, group

RUBRIC = "execution_subagent"


def service(tmp_path, rate: float, judge: Judge | None = None, cap: int = 2, latency: float = 0.0) -> RewardService:
    """A service on its own cache whose rubric is judged in process: by `judge`, else the plain fake."""
    svc = RewardService(
        ServiceSettings(
            rubric_dir=ROOT / "rubrics",
            cache_dir=tmp_path / f"cache-{time.monotonic_ns()}",
            canary_rate=rate,
            canary_max_in_flight=cap,
        )
    )
    rub = svc.rubrics[RUBRIC]
    svc.scorers[RUBRIC] = Scorer(rub, judge or InProcessFakeJudge(judge_settings(rub), latency=latency), svc.store)
    return svc


def fake(svc: RewardService) -> InProcessFakeJudge:
    judge = svc.scorers[RUBRIC].judge
    judge = judge.inner if isinstance(judge, PlantedWeaknessJudge) else judge
    assert isinstance(judge, InProcessFakeJudge)
    return judge


def request(groups: list[dict[str, Any]]) -> ScoreRequest:
    return ScoreRequest.model_validate({"groups": groups})


async def score_then_wait(svc: RewardService, groups: list[dict[str, Any]]) -> tuple[ScoreResponse, dict, int]:
    """The answer, the answer as it was when returned, and the judge calls made by then."""
    answer = await svc.score(request(groups))
    as_returned, calls = answer.model_dump(mode="json"), sum(fake(svc).calls.values())
    await svc.canaries.wait()
    return answer, as_returned, calls


def test_the_answer_is_the_same_with_and_without_canaries(tmp_path):
    async def run() -> None:
        plain, mixed = service(tmp_path, 0.0), service(tmp_path, 1.0)
        _, without, calls_plain = await score_then_wait(plain, example_groups())
        answer, with_, calls_mixed = await score_then_wait(mixed, example_groups())
        # rewards, advantages, group statistics, usage and metrics: identical, and never touched afterwards
        assert with_ == without
        assert answer.model_dump(mode="json") == with_
        assert calls_mixed == calls_plain  # no canary call before the answer
        # ... and then the canaries were judged, in calls of their own
        extra = sum(fake(mixed).calls.values()) - calls_mixed
        assert extra > 0 and sum(fake(plain).calls.values()) == calls_plain
        assert mixed.canaries.outcomes == {"done": 1} and not plain.canaries.outcomes
        for svc in (plain, mixed):
            svc.close()

    asyncio.run(run())


def test_every_canary_graded_is_one_grade_call_of_its_own(tmp_path):
    async def run() -> None:
        svc = service(tmp_path, 1.0)
        judge = fake(svc)
        answer = await svc.score(request(example_groups()[:1]))
        grades = judge.calls["grade"]
        await svc.canaries.wait()
        kinds = svc.canaries.kinds
        assert set(kinds) == set(KINDS)
        graded = sum(c["n"] - c["penalized"] for c in kinds.values())  # penalised canaries get no judgement
        assert judge.calls["grade"] - grades == graded >= len(KINDS) - 1
        assert sum(g.usage.judge_calls for g in answer.groups) == answer.usage.judge_calls  # not the canaries'
        svc.close()

    asyncio.run(run())


def rates(tmp_path, judge_for: Any) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        rub = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=None)).rubrics[RUBRIC]
        svc = service(tmp_path, 1.0, judge=judge_for(rub))
        for g in example_groups():  # one request per group: each audited
            await svc.score(request([g]))
            await svc.canaries.wait()
        assert svc.canaries.outcomes == {"done": len(example_groups())}
        svc.close()
        return svc.canaries.view()

    return asyncio.run(run())


@pytest.mark.parametrize("weak", ["master_key", "fence_forgery"])
def test_a_planted_weakness_shows_up_for_its_kind_only(tmp_path, weak):
    def plain(rub: Rubric) -> Judge:
        return InProcessFakeJudge(judge_settings(rub))

    def planted(rub: Rubric) -> Judge:
        return PlantedWeaknessJudge(InProcessFakeJudge(judge_settings(rub)), weak, rub.spec)

    before, after = rates(tmp_path, plain), rates(tmp_path, planted)
    assert before[weak]["rate"] < 0.5 and after[weak]["rate"] == 1.0
    assert after[weak]["n"] == before[weak]["n"] > 0
    assert {k: v for k, v in after.items() if k != weak} == {k: v for k, v in before.items() if k != weak}


def test_rate_zero_makes_no_canary_call(tmp_path):
    async def run() -> None:
        svc = service(tmp_path, 0.0)
        _, _, calls = await score_then_wait(svc, example_groups())
        assert sum(fake(svc).calls.values()) == calls and not svc.canaries.outcomes and svc.canaries.peak == 0
        svc.close()

    asyncio.run(run())


def test_which_requests_are_audited_is_a_reproducible_fraction():
    groups = [Group.model_validate(group(f"step-{i}")) for i in range(2000)]
    picks = [[CanaryMixer(0.1).pick([g]) is not None for g in groups] for _ in range(2)]
    assert picks[0] == picks[1]  # the same requests on every worker, replica and run
    assert 0.08 < sum(picks[0]) / len(groups) < 0.12
    assert not any(CanaryMixer(0.0).pick([g]) for g in groups[:50])
    assert all(CanaryMixer(1.0).pick([g]) for g in groups[:50])
    # a group with a ready plan or an id as its reference cannot be audited
    plan = Group.model_validate({**group("p"), "reference": {"plan": "EXECUTION PLAN\n\nTask Outcome: ok."}})
    assert CanaryMixer(1.0).pick([plan]) is None
    assert 0 <= draw("x") < 1 and draw("x") == draw("x") != draw("y")


def test_a_group_audited_lately_is_not_audited_again(tmp_path):
    async def run() -> None:
        svc = service(tmp_path, 1.0)
        for _ in range(3):  # one sample per request (slime): the same group again and again
            await svc.score(request(example_groups()[:1]))
            await svc.canaries.wait()
        assert svc.canaries.outcomes == {"done": 1}
        svc.close()

    asyncio.run(run())


def test_a_group_is_audited_again_once_the_interval_has_passed(tmp_path):
    """Most datasets have fewer tasks than any cap on remembered groups: each epoch's tasks are audited again
    (against the policy's current rollouts), at most once per REAUDIT_S."""
    interval = 600.0

    async def run() -> None:
        svc = service(tmp_path, 1.0)
        now = [1000.0]
        svc.canaries.clock = lambda: now[0]
        svc.canaries.reaudit_s = interval
        done = []
        for _ in range(3):  # three epochs over the same four tasks, one request per task
            for g in example_groups():
                await svc.score(request([g]))
                await svc.canaries.wait()
                now[0] += 1.0
            done.append(svc.canaries.outcomes["done"])
            await svc.score(request(example_groups()[:1]))  # within the interval: not again
            await svc.canaries.wait()
            now[0] += interval
        assert done == [4, 8, 12] and svc.canaries.outcomes == {"done": 12}
        assert sum(c["n"] + c["errors"] + c["no_baseline"] for c in svc.canaries.kinds.values()) == 12 * 8
        svc.close()

    asyncio.run(run())
    from reward.service.canary_mix import REAUDIT_S

    assert CanaryMixer(1.0).reaudit_s == REAUDIT_S >= 60  # the default: longer than a step, shorter than an epoch


def test_a_rollouts_own_meta_canary_is_honest_and_never_a_metric_label(tmp_path):
    """The trainer's meta is free-form: `meta.canary` there (its own tag, or a known kind's name) changes nothing,
    and no string from a request becomes a label value."""
    from reward.service import canary_metrics

    async def tallied(tags: bool) -> dict[str, Any]:
        svc = service(tmp_path, 1.0)
        seen: list[dict[str, Any]] = []

        class Spy(canary_metrics.CanaryMetrics):
            def tallied(self, rubric: str, kinds: dict[str, dict[str, Any]]) -> None:
                seen.append(kinds)
                super().tallied(rubric, kinds)

        svc.canaries.observer = Spy()
        g = {**example_groups()[0], "group_id": f"tagged-{tags}"}
        if tags:
            g["rollouts"] = [
                {**r, "meta": {"canary": "master_key" if i % 2 else f"trainer-tag-{i}"}}
                for i, r in enumerate(g["rollouts"])
            ]
        await score_then_wait(svc, [g])
        svc.close()
        assert len(seen) == 1
        return {k: dict(c) for k, c in svc.canaries.kinds.items()}

    before = canary_metrics.view(list(canary_metrics.CANARIES.collect()))["canaries"]
    plain, tagged = asyncio.run(tallied(False)), asyncio.run(tallied(True))
    assert tagged == plain and set(tagged) == set(KINDS)
    assert all(c["no_baseline"] == 0 for c in tagged.values())  # the honest rollouts stayed the baseline
    after = canary_metrics.view(list(canary_metrics.CANARIES.collect()))["canaries"]
    assert set(after) <= set(KINDS) and not any("trainer-tag" in k for k in after)
    assert after["master_key"]["n"] - before.get("master_key", {"n": 0})["n"] == 2 * plain["master_key"]["n"]
    # and the metrics take known kinds only, whoever calls them
    canary_metrics.CANARY.tallied(RUBRIC, {"made-up": {"n": 1, "fooled": 1, "errors": 0, "no_baseline": 0}})
    assert "made-up" not in canary_metrics.view(list(canary_metrics.CANARIES.collect()))["canaries"]


def test_a_burst_never_has_more_audits_in_flight_than_the_cap(tmp_path):
    async def run() -> None:
        svc = service(tmp_path, 1.0, cap=2, latency=0.005)
        bodies = []
        for i in range(10):
            g = example_groups()[i % 4]
            bodies.append([{**g, "group_id": f"burst-{i}"}])
        answers = await asyncio.gather(*(svc.score(request(b)) for b in bodies))
        assert len(answers) == 10 and svc.canaries.in_flight <= 2
        await svc.canaries.wait()
        assert svc.canaries.peak == 2
        outcomes = svc.canaries.outcomes
        assert outcomes["skipped"] >= 1 and outcomes["done"] + outcomes["skipped"] == 10
        svc.close()

    asyncio.run(run())


def wait_until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def scrape(client: TestClient) -> dict[str, dict[tuple, float]]:
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def by_kind(m: dict, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, v in m.get(name, {}).items():
        kind = dict(labels)["kind"]
        out[kind] = out.get(kind, 0.0) + v
    return out


def test_metrics_and_the_json_view_count_the_canaries(tmp_path):
    svc = service(tmp_path, 1.0, judge=None)
    rub = svc.rubrics[RUBRIC]
    svc.scorers[RUBRIC] = Scorer(
        rub, PlantedWeaknessJudge(InProcessFakeJudge(judge_settings(rub)), "master_key", rub.spec), svc.store
    )
    with TestClient(create_app(svc)) as client:
        before_m, before_v = scrape(client), client.get("/canaries").json()
        body = {"groups": [{**g, "group_id": f"metrics-{g['group_id']}"} for g in example_groups()[:2]]}
        assert client.post("/score", json=body).status_code == 200
        wait_until(lambda: svc.canaries.outcomes["done"] == 1)
        m, v = scrape(client), client.get("/canaries").json()
    mine = svc.canaries.kinds
    judged, fooled = by_kind(m, "reward_canaries_total"), by_kind(m, "reward_canaries_fooled_total")
    judged0, fooled0 = by_kind(before_m, "reward_canaries_total"), by_kind(before_m, "reward_canaries_fooled_total")
    for kind, c in mine.items():
        assert judged[kind] - judged0.get(kind, 0) == c["n"]
        assert fooled[kind] - fooled0.get(kind, 0) == c["fooled"]
        # the rate is computed from the summed counters, as a scrape has them
        assert m["reward_canary_fooled_rate"][(("kind", kind), ("rubric", RUBRIC))] == pytest.approx(
            fooled[kind] / judged[kind]
        )
        row, row0 = v["canaries"][kind], before_v["canaries"].get(kind, {"n": 0, "fooled": 0})
        assert (row["n"] - row0["n"], row["fooled"] - row0["fooled"]) == (c["n"], c["fooled"])
    assert mine["master_key"]["fooled"] == mine["master_key"]["n"] > 0
    assert v["rate"] == 1.0 and v["audits"]["done"] - before_v["audits"]["done"] == 1


def test_a_failing_audit_is_counted_and_logged_never_an_error(tmp_path, monkeypatch, caplog):
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("canaries could not be built")

    monkeypatch.setattr("reward.service.canary_mix.canary_rollouts", broken)
    svc = service(tmp_path, 1.0)
    with TestClient(create_app(svc), raise_server_exceptions=False) as client:
        r = client.post("/score", json={"groups": [{**example_groups()[0], "group_id": "failing-audit"}]})
        assert r.status_code == 200 and all(x["reward"] is not None for x in r.json()["groups"][0]["rollouts"])
        wait_until(lambda: svc.canaries.outcomes["failed"] == 1)
        assert client.get("/canaries").json()["audits"]["failed"] >= 1
    assert "canary audit of group 'failing-audit' failed" in caplog.text


def test_shutdown_cancels_the_audits_in_flight(tmp_path):
    svc = service(tmp_path, 1.0, latency=0.5)  # an audit of 8 canaries would take seconds
    with TestClient(create_app(svc)) as client:
        assert client.post("/score", json={"groups": example_groups()[:1]}).status_code == 200
        wait_until(lambda: svc.canaries.in_flight == 1)
        started = time.monotonic()
    assert time.monotonic() - started < 2.0  # the app stopped without waiting for the audit
    assert svc.canaries.in_flight == 0 and not svc.canaries.outcomes  # cancelled: neither done nor failed


def test_canary_calls_wait_while_the_trainers_rollouts_take_every_judge_slot(tmp_path):
    async def run() -> None:
        svc = service(tmp_path, 1.0)
        judge = fake(svc)
        await svc.score(request(example_groups()[:1]))
        calls = sum(judge.calls.values())
        svc.pending_rollouts = judge.settings.concurrency  # a step that wants every slot is being scored
        await asyncio.sleep(0.3)
        assert sum(judge.calls.values()) == calls and svc.canaries.in_flight == 1  # waiting, not skipped
        svc.pending_rollouts = judge.settings.concurrency - 1  # one slot free: the audit goes on
        await asyncio.wait_for(svc.canaries.wait(), 30)
        assert sum(judge.calls.values()) > calls and svc.canaries.outcomes == {"done": 1}
        svc.close()

    asyncio.run(run())


def test_canaries_the_judge_fails_on_are_counted_as_unjudged_never_as_passed(tmp_path):
    from reward.service import canary_metrics, metrics

    async def run() -> None:
        svc = service(tmp_path, 1.0)
        svc.canaries.observer = canary_metrics.CANARY
        judge = fake(svc)
        before = metrics.canary_view()
        await svc.score(request([{**example_groups()[0], "group_id": "judge-fails-on-canaries"}]))
        judge.script("grade", *["not a verdict"] * 200)  # every grade from now on: invalid, re-asked, an error
        await svc.canaries.wait()
        errors = {k: c["errors"] for k, c in svc.canaries.kinds.items()}
        assert sum(errors.values()) >= len(KINDS) - 1
        assert all(c["fooled"] == 0 for c in svc.canaries.kinds.values())
        after = metrics.canary_view()["canaries"]
        for kind, n in errors.items():
            got = after[kind]["unjudged"] - before["canaries"].get(kind, {"unjudged": 0})["unjudged"]
            assert got == n
        assert svc.canaries.outcomes == {"done": 1}  # judged as far as the judge allowed: not a failed audit
        svc.close()

    asyncio.run(run())


def test_a_rubric_that_takes_no_reference_is_never_audited(tmp_path):
    async def run() -> None:
        svc = service(tmp_path, 1.0)
        scorer = svc.scorers["response_quality"]
        assert not scorer.rubric.spec.reference
        groups = [Group.model_validate(group("with-a-reference-trajectory"))]
        svc.canaries.after(scorer, groups, [])
        assert svc.canaries.in_flight == 0 and not svc.canaries.outcomes
        # the same group under a rubric with references is picked (no honest result given: a counted failure)
        svc.canaries.after(svc.scorers[RUBRIC], groups, [])
        assert svc.canaries.outcomes == {"failed": 1}
        svc.close()

    asyncio.run(run())


def test_no_audit_for_group_or_pairwise_rubrics_nor_under_a_cost_budget(tmp_path, caplog):
    """A canary judged alone is not comparable with rollouts judged against each other (group, pairwise); and
    under REWARD_MAX_COST the audit's calls would spend the trainer's budget: no audit, said once per rubric."""
    from reward.judge.budget import set_max_cost
    from reward.judge.litellm_judge import LiteLLMJudge

    async def run() -> None:
        svc = service(tmp_path, 1.0)
        groups = [Group.model_validate(group("with-a-reference-trajectory"))]
        for name in ("group_ranking", "pairwise_preference"):
            with caplog.at_level("WARNING", logger="reward"):
                svc.canaries.after(svc.scorers[name], groups, [])
                svc.canaries.after(svc.scorers[name], groups, [])
            assert svc.canaries.in_flight == 0 and not svc.canaries.outcomes
            assert sum(f"no canary audits for rubric {name}" in r.message for r in caplog.records) == 1
        rub = svc.rubrics[RUBRIC]
        budgeted = Scorer(rub, LiteLLMJudge(judge_settings(rub)), svc.store)
        assert CanaryMixer.unsupported(budgeted) is None  # no budget set: audited
        set_max_cost(budgeted.judge, 5.0)
        assert "trainer's budget" in (CanaryMixer.unsupported(budgeted) or "")
        svc.canaries.after(budgeted, groups, [])
        assert svc.canaries.in_flight == 0 and not svc.canaries.outcomes
        svc.close()

    asyncio.run(run())
