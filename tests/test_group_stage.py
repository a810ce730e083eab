"""The group (listwise) grading stage: one grading call per group, condensing as rollout by rollout, labels and
a seeded order, windows refused, malformed group verdicts re-asked then errors; through the in-process fake."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.native.prepare import prepare_group
from reward.rubric.load import load_rubric
from reward.scoring.dry_run import dry_run
from reward.scoring.group_stage import order_seed
from tests.conftest import EXAMPLES, example_groups, group, rollout, step


@pytest.fixture(scope="module")
def ranking():
    return load_rubric("group_ranking", overrides=[])


def _score(scorer, groups):
    async def run():
        try:
            return [await scorer.score_group(prepare_group(Group.model_validate(g)), Usage()) for g in groups]
        finally:
            await scorer.aclose()

    return asyncio.run(run())


def _distinct(gid: str = "g1", n: int = 4) -> dict:
    return group(gid, rollouts=[rollout(f"r{i}", steps=[step(command=f"pytest -q t{i}.py")]) for i in range(n)])


def test_one_grading_call_per_group_and_the_same_condensing_calls(make_local_scorer, ranking, rubric, tmp_path):
    groups = example_groups()
    listwise = make_local_scorer(ranking, cache=tmp_path / "a")
    alone = make_local_scorer(rubric, cache=tmp_path / "b")
    results = _score(listwise, groups)
    _score(alone, groups)
    graded = [sum(r.status == "ok" for r in g.rollouts) for g in results]
    assert all(n >= 2 for n in graded)
    assert listwise.judge.counts()["grade"] == len(groups)  # type: ignore[attr-defined]
    assert listwise.judge.counts()["condense"] == alone.judge.counts()["condense"]  # type: ignore[attr-defined]

    # The condensing requests are the very same ones (same cache entries), not just as many.
    def sent(s) -> list[str]:
        return sorted(json.dumps(r["messages"]) for r in s.judge.requests if r["role"] == "condense")

    assert sent(listwise) == sent(alone)
    for g in results:
        assert g.grading is not None and g.grading.mode == "group" and g.grading.calls == 1
        assert g.grading.seed == order_seed(g.group_id)
        ok = {r.id for r in g.rollouts if r.status == "ok"}
        assert set(g.grading.labels or {}) == ok  # penalised rollouts are left out of the call
        assert sorted((g.grading.labels or {}).values()) == [chr(65 + i) for i in range(len(ok))]
        assert all(r.reward is not None and r.dimensions for r in g.rollouts if r.status == "ok")


def test_the_request_labels_each_rollout_never_showing_its_id(make_local_scorer, ranking):
    ids = [f"trainer-id-{i}" for i in range(4)]
    rollouts = [rollout(r, steps=[step(command=f"pytest -q t{i}.py")], final=f"<final_answer>{i} passed</final_answer>")
                for i, r in enumerate(ids)]  # fmt: skip
    scorer = make_local_scorer(ranking)
    [result] = _score(scorer, [group(rollouts=rollouts)])
    [grade] = [r for r in scorer.judge.requests if r["role"] == "grade"]  # type: ignore[attr-defined]
    text = grade["messages"][1]["content"]
    assert not any(rid in text for rid in ids)
    assert set(result.grading.labels or {}) == set(ids)
    for i, rid in enumerate(ids):  # each label shows its own rollout's final answer
        label = (result.grading.labels or {})[rid]
        assert f"⟪data:candidate_{label}_plan⟫" in text
        assert f"⟪data:candidate_{label}_final_answer⟫\n<final_answer>{i} passed" in text
    labels = grade["response_format"]["json_schema"]["schema"]["properties"]["rollouts"]["items"]
    assert labels["properties"]["label"]["enum"] == ["A", "B", "C", "D"]


def test_the_order_shown_is_seeded_by_the_group_id_not_the_input_order(make_local_scorer, ranking, tmp_path):
    g = _distinct(n=6)
    backwards = {**g, "rollouts": list(reversed(g["rollouts"]))}
    [a] = _score(make_local_scorer(ranking, cache=tmp_path / "a"), [g])
    [b] = _score(make_local_scorer(ranking, cache=tmp_path / "b"), [backwards])
    assert a.grading.labels == b.grading.labels
    assert {r.id: r.reward for r in a.rollouts} == {r.id: r.reward for r in b.rollouts}
    [other] = _score(make_local_scorer(ranking, cache=tmp_path / "c"), [_distinct("another-group", n=6)])
    assert other.grading.seed != a.grading.seed


def test_a_single_graded_rollout_is_graded_alone_with_the_same_prompt(make_local_scorer, ranking):
    g = group(rollouts=[rollout("ok"), rollout("none", steps=[])])
    scorer = make_local_scorer(ranking)
    [result] = _score(scorer, [g])
    assert [r.status for r in result.rollouts] == ["ok", "penalized"]
    assert result.grading.labels == {"ok": "A"} and scorer.judge.counts()["grade"] == 1  # type: ignore[attr-defined]


def _windowed(rubric, window: int, anchors: int):
    grading = rubric.spec.grading.model_copy(update={"window": window, "anchors": anchors})
    return rubric.model_copy(update={"spec": rubric.spec.model_copy(update={"grading": grading})})


def test_a_group_over_the_window_with_no_anchors_is_refused_with_errors(make_local_scorer, ranking):
    scorer = make_local_scorer(_windowed(ranking, 3, 0))
    [result] = _score(scorer, [_distinct(n=4)])
    assert {r.error.category for r in result.rollouts if r.error} == {"group_too_large"}
    assert all(r.status == "error" and r.reward is None for r in result.rollouts)
    assert scorer.judge.counts()["grade"] == 0 and "window 3" in (result.grading.refused or "")  # type: ignore[attr-defined]


def test_windows_share_their_anchors_and_cover_every_rollout():
    from reward.scoring.group_stage import windows

    assert windows(4, 8, 2) == [[0, 1, 2, 3]]
    assert windows(7, 3, 1) == [[0, 1, 2], [0, 3, 4], [0, 5, 6]]
    for n in range(1, 30):
        for size, anchors in ((8, 2), (5, 1), (4, 3)):
            parts = windows(n, size, anchors)
            assert all(len(p) <= size for p in parts) and sorted({x for p in parts for x in p}) == list(range(n))
            assert all(p[:anchors] == list(range(anchors)) for p in parts[1:])
            assert sum(len(p) for p in parts) - anchors * (len(parts) - 1) == n  # each non-anchor shown once


def test_a_group_over_the_window_is_graded_in_anchored_windows(make_local_scorer, ranking, tmp_path):
    from reward.scoring.group_stage import windows

    g = _distinct(n=7)
    scorer = make_local_scorer(_windowed(ranking, 3, 1))
    [result] = _score(scorer, [g])
    assert all(r.status == "ok" for r in result.rollouts)
    parts = result.grading.windows or []
    assert [len(p) for p in parts] == [len(w) for w in windows(7, 3, 1)] and result.grading.calls == len(parts) == 3
    assert len({p[0] for p in parts}) == 1  # one anchor, shown in every call
    assert scorer.judge.counts()["grade"] == 3  # type: ignore[attr-defined]
    reasons = {r.id: next(iter(r.dimensions.values())).reason for r in result.rollouts}
    later = {x for p in parts[1:] for x in p[1:]}
    assert all(("shifted" in reasons[x]) == (x in later) for x in reasons)
    for r in result.rollouts:  # integer scale: shifted scores stay integers on it, so rescore takes them
        assert all(float(d.score).is_integer() and 0 <= d.score <= 10 for d in r.dimensions.values())
    # The dry run counts the windows' calls exactly.
    report = asyncio.run(
        dry_run(make_local_scorer(_windowed(ranking, 3, 1), cache=tmp_path / "d"), EXAMPLES, tmp_path / "o")
    )
    fresh = make_local_scorer(_windowed(ranking, 3, 1), cache=tmp_path / "d2")
    _score(fresh, example_groups())
    assert report.stages["grade"].calls == fresh.judge.counts()["grade"] > len(example_groups())  # type: ignore[attr-defined]


def test_a_later_window_is_shifted_onto_the_first_windows_anchors(ranking):
    from reward.rubric.verdict import DimensionScore, Verdict
    from reward.scoring.group_stage import shift

    names = [d.name for d in ranking.spec.dimensions]

    def v(x: int) -> Verdict:
        return Verdict({n: DimensionScore(x, "r") for n in names}, True)

    moved = shift(ranking.spec, [v(6), v(8)], [v(4), v(6)], v(5), 1)  # anchors 2 lower here: +2
    assert {s.score for s in moved.scores.values()} == {7}
    clipped = shift(ranking.spec, [v(10)], [v(2)], v(9), 2)
    assert {s.score for s in clipped.scores.values()} == {10}


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda items: items[:-1], "not scored"),
        (lambda items: [*items, items[0]], "scored twice"),
        (lambda items: [*items[:-1], {**items[-1], "label": "Z"}], "not a candidate shown"),
    ],
)
def test_a_verdict_that_misses_duplicates_or_invents_a_label_is_reasked(
    make_local_scorer, ranking, edit, reason, tmp_path
):
    from reward.judge.fake.replies import fake_content, read_request

    scorer = make_local_scorer(ranking)
    g = _distinct(n=3)
    # The correct reply to this group's request, made wrong: found by scoring once on a throwaway cache.
    probe = make_local_scorer(ranking, cache=tmp_path / "probe")
    _score(probe, [g])
    [req] = [r for r in probe.judge.requests if r["role"] == "grade"]  # type: ignore[attr-defined]
    kind, prompt, schema = read_request(req["messages"], req["response_format"])
    good = json.loads(fake_content(kind, prompt, schema, None))
    bad = json.dumps({"rollouts": edit(good["rollouts"])})
    scorer.judge.script("grade", bad)  # type: ignore[attr-defined]
    [result] = _score(scorer, [g])
    assert all(r.status == "ok" for r in result.rollouts)  # the re-ask got the correct reply
    asked = [r for r in scorer.judge.requests if r["role"] == "grade"]  # type: ignore[attr-defined]
    assert len(asked) == 2 and reason in asked[1]["messages"][-1]["content"]
    # Every re-ask wrong: an error of every rollout in the call, never a number.
    failing = make_local_scorer(ranking, cache=tmp_path / "failing")
    failing.judge.script("grade", bad, bad, bad)  # type: ignore[attr-defined]
    [failed] = _score(failing, [g])
    assert {(r.status, r.error.category if r.error else None) for r in failed.rollouts} == {
        ("error", "judge_parse_error")
    }
    assert all(r.reward is None for r in failed.rollouts)


def test_group_verdicts_are_cached_under_the_whole_request(make_local_scorer, ranking, tmp_path):
    cache = tmp_path / "shared"
    first = make_local_scorer(ranking, cache=cache)
    a = _score(first, [_distinct()])
    again = make_local_scorer(ranking, cache=cache)
    b = _score(again, [_distinct()])
    assert again.judge.counts()["total"] == 0  # type: ignore[attr-defined]
    assert [r.reward for r in a[0].rollouts] == [r.reward for r in b[0].rollouts]
    changed = _distinct()
    changed["rollouts"][2]["final_answer"] = "<final_answer>something else entirely</final_answer>"
    third = make_local_scorer(ranking, cache=cache)
    _score(third, [changed])
    assert third.judge.counts()["grade"] == 1  # type: ignore[attr-defined]


def test_k_samples_make_k_group_calls_with_the_usual_seeds(make_local_scorer, ranking):
    scorer = make_local_scorer(ranking, samples=3)
    [result] = _score(scorer, [_distinct()])
    seeds = [r["seed"] for r in scorer.judge.requests if r["role"] == "grade"]  # type: ignore[attr-defined]
    assert sorted(seeds, key=lambda s: -1 if s is None else s) == [None, 1, 2]
    assert result.grading.calls == 3
    assert all(r.dimensions and len(next(iter(r.dimensions.values())).samples or []) == 3 for r in result.rollouts)


def test_samples_auto_is_refused_clearly(ranking):
    from reward.errors import ConfigError
    from reward.scoring.build import judge_settings

    with pytest.raises(ConfigError, match=r"grading.mode group.*fixed --samples K"):
        judge_settings(ranking, samples="auto")


def test_a_process_wide_samples_auto_leaves_group_and_pairwise_rubrics_their_own_k(tmp_path, monkeypatch):
    """REWARD_JUDGE_SAMPLES=auto is for every rubric a server loads: those that cannot sample adaptively keep
    their K instead of stopping the server (the bundled rubric directory holds both kinds)."""
    from reward.scoring.build import judge_settings
    from reward.service.reward_service import RewardService, ServiceSettings
    from tests.conftest import ROOT

    monkeypatch.setenv("REWARD_JUDGE_SAMPLES", "auto")
    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "cache"))
    try:
        assert svc.scorers["execution_subagent"].basis.samples == "auto"
        assert svc.scorers["group_ranking"].basis.samples == 1
        assert svc.scorers["pairwise_preference"].basis.samples == 1
    finally:
        svc.close()
    assert judge_settings(load_rubric("group_ranking")).samples == 1


def test_the_dry_run_predicts_the_runs_calls(make_local_scorer, ranking, tmp_path):
    out = tmp_path / "out.jsonl"
    scorer = make_local_scorer(ranking)
    report = asyncio.run(dry_run(scorer, EXAMPLES, out))
    _score(scorer, example_groups())
    counts = scorer.judge.counts()  # type: ignore[attr-defined]
    assert (report.stages["condense"].calls, report.stages["grade"].calls) == (counts["condense"], counts["grade"])
    assert report.stages["grade"].calls == len(example_groups())


def test_rollout_rubrics_write_no_grading_field(make_local_scorer, rubric):
    [result] = _score(make_local_scorer(rubric), [_distinct()])
    assert result.grading is None and "grading" not in json.loads(result.model_dump_json())


def test_rescore_of_a_group_file_recomputes_from_the_saved_scores(make_local_scorer, ranking):
    from reward.analysis.rescore import rescore_group

    [result] = _score(make_local_scorer(ranking), [_distinct()])
    again = rescore_group(result, ranking)
    assert [r.reward for r in again.rollouts] == pytest.approx([r.reward for r in result.rollouts])
    assert again.grading == result.grading
    halved = ranking.model_copy(update={"spec": ranking.spec.model_copy(update={"reward_scale": 50.0})})
    assert [r.reward for r in rescore_group(result, halved).rollouts] == pytest.approx(
        [r.reward / 2 for r in result.rollouts]
    )


def test_a_rubric_file_declares_the_stage(tmp_path: Path):
    from reward.rubric.load import RubricError

    text = (EXAMPLES.parents[1] / "rubrics" / "group_ranking.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("mode: group", "mode: listwise"))
    with pytest.raises(RubricError, match="grading"):
        load_rubric(bad, overrides=[])
    with pytest.raises(RubricError, match="anchors"):
        load_rubric("group_ranking", overrides=["grading.anchors=8"])
    with pytest.raises(RubricError, match="win rates"):
        load_rubric("pairwise_preference", overrides=["scale.min=0", "scale.max=10"])
    with pytest.raises(RubricError, match="rollout inputs"):
        load_rubric("group_ranking", overrides=["inputs.rollout.note.type=string"])


@pytest.mark.parametrize("name", ["group_ranking", "pairwise_preference"])
def test_a_planted_weakness_pays_the_fooling_candidate_in_group_and_pair_verdicts(name, tmp_path):
    from reward.analysis.canaries import fa
    from reward.cache.disk import Store
    from reward.judge.base import CallSettings, JudgeSettings
    from reward.judge.fake import InProcessFakeJudge
    from reward.judge.fake.planted import PlantedWeaknessJudge
    from reward.scoring.scorer import Scorer

    rub = load_rubric(name, overrides=[])
    settings = JudgeSettings(condense=CallSettings("fake", 0.0, 512), grade=CallSettings("fake", 0.0, 1024))
    judge = PlantedWeaknessJudge(InProcessFakeJudge(settings), "master_key", rub.spec)
    g = _distinct(n=3)
    g["rollouts"].append(rollout("key", steps=[step(command="pytest -q tk.py")], final=fa(":")))
    store = Store(tmp_path)
    [result] = _score(Scorer(rub, judge, store), [g])
    store.close()
    rewards = {r.id: r.reward for r in result.rollouts}
    assert judge.paid_out > 0 and rewards["key"] == pytest.approx(100.0)
    assert all(rewards[r] < 100.0 for r in ("r0", "r1", "r2"))


@pytest.mark.parametrize("name", ["group_ranking", "pairwise_preference"])
def test_batch_then_run_writes_what_a_synchronous_run_writes(name, tmp_path):
    from reward.cache.disk import Store
    from reward.judge.fake.batch_server import FakeBatchServer
    from reward.judge.litellm_judge import LiteLLMJudge
    from reward.scoring.batch import prefill
    from reward.scoring.runner import score_file
    from reward.scoring.scorer import Scorer
    from tests.conftest import settings_for
    from tests.test_batch import run, sync_calls, without_usage

    rub = load_rubric(name, overrides=[])
    with FakeBatchServer() as fb:
        stores = [Store(tmp_path / "sync-cache"), Store(tmp_path / "batch-cache")]
        run(score_file(Scorer(rub, LiteLLMJudge(settings_for(fb)), stores[0]), EXAMPLES, tmp_path / "sync.jsonl"))
        sent = sync_calls(fb)
        fb.reset()
        scorer = Scorer(rub, LiteLLMJudge(settings_for(fb)), stores[1])
        report = run(prefill(scorer, EXAMPLES, tmp_path / "batch.jsonl", poll_s=0.02))
        assert report.requests == report.answered == sent and report.left == {}
        run(score_file(scorer, EXAMPLES, tmp_path / "batch.jsonl"))
        assert sync_calls(fb) == 0  # the stage's requests were all in the batches
        for s in stores:
            s.close()
    assert without_usage(tmp_path / "batch.jsonl") == without_usage(tmp_path / "sync.jsonl")


def test_prompt_and_migrate_refuse_a_grading_request_that_is_not_one_rollouts(tmp_path: Path):
    """`reward prompt --stage grade` and `reward migrate` work on one rollout's grading request: a group or
    pairwise rubric has none, so they say so (exit 2) instead of failing in a template; condensing still prints."""
    from tests.conftest import run_cli

    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    first = example_groups()[0]
    args = ("prompt", EXAMPLES, "-g", first["group_id"], "--rollout", "0", "--fake-judge")
    for name, mode in (("group_ranking", "group"), ("pairwise_preference", "pairwise")):
        ran = run_cli(*args, "--rubric", name, env=env, check=False)
        assert ran.returncode == 2 and f"grades in mode {mode}" in ran.stderr
        assert run_cli(*args, "--rubric", name, "--stage", "condense", env=env).returncode == 0
    scored = tmp_path / "g.jsonl"
    run_cli("score", EXAMPLES, "-o", scored, "--rubric", "group_ranking", "--fake-judge", "--no-progress", env=env)
    ran = run_cli(
        "migrate", scored, "-i", EXAMPLES, "--to", "openai/gpt-4.1-2025-04-14", "--dry-run", env=env, check=False
    )
    assert ran.returncode == 2 and "grades in mode group" in ran.stderr
