"""`reward migrate`: a fake judge with a planted monotone distortion is mapped back onto the original scale."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.migrate_fit import Pair, agreement, isotonic, rank_flips
from reward.analysis.migrate_sample import stratified_sample
from reward.judge.fake.distorted import Distortion
from reward.rubric.score_maps import ScoreMap, score_map_problem
from tests.conftest import group, rollout, run_cli, step

GAMMA = 1.7


# --- the fit, the sample, the distortion (pure) ---------------------------------------------------------------


def test_isotonic_pools_adjacent_violators():
    assert isotonic([1, 2, 3, 4], [1, 3, 2, 4]) == [(1, 1.0), (2, 2.5), (3, 2.5), (4, 4.0)]
    # ties in x are one point (their mean); data already monotone is left as it is
    assert isotonic([2, 1, 2, 3], [4, 1, 2, 5]) == [(1, 1.0), (2, 3.0), (3, 5.0)]
    rng = random.Random(7)
    xs = [rng.randint(0, 10) for _ in range(300)]
    ys = [x + rng.gauss(0, 3) for x in xs]
    fit = isotonic(xs, ys)
    assert [x for x, _ in fit] == sorted(set(xs))
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(fit))
    # least squares keeps the total: pooled blocks are means, so the fitted values sum to the data's
    n = {x: xs.count(x) for x in set(xs)}
    assert sum(y * n[x] for x, y in fit) == pytest.approx(sum(ys))


def test_agreement_counts_flips_within_groups_only():
    pairs = [Pair("a", 1, 5), Pair("a", 2, 4), Pair("a", 3, 6), Pair("b", 0, 9), Pair("b", 9, 0)]
    assert rank_flips(pairs) == (4, 2)  # a: (1,2) flipped, (1,3) and (2,3) kept; b: flipped; never across groups
    a = agreement(pairs, mapped=[p.old for p in pairs])
    assert a.mean_shift == pytest.approx((5 + 4 + 6 + 9 + 0 - 1 - 2 - 3 - 0 - 9) / 5)
    assert a.mapped_mean_abs_diff == 0


def test_stratified_sample_spreads_over_groups_and_rewards():
    groups = [(f"g{g}", [(f"r{i}", g * 10 + i) for i in range(8)]) for g in range(10)]
    picks = stratified_sample(groups, 20)
    assert len(picks) == 20
    by_group: dict[str, set[str]] = {}
    for g, r in picks:
        by_group.setdefault(g, set()).add(r)
    assert all(v == {"r0", "r7"} for v in by_group.values()) and len(by_group) == 10  # lowest and highest each
    few = stratified_sample(groups, 6)
    assert {g for g, _ in few} == {"g0", "g4", "g9"}  # across the quantiles of the group means, 2 each
    assert len(stratified_sample(groups, 1000)) == 80
    assert stratified_sample(groups, 20) == picks  # deterministic


def test_distortion_and_its_inverse():
    d = Distortion(GAMMA, 0, 10)
    assert [d(s) for s in (0, 5, 10)] == [0.0, 3.0, 10.0]
    assert all(d.inverse(d.exact(s)) == pytest.approx(s) for s in range(11))


def test_a_map_used_with_another_grading_judge_is_named():
    m = ScoreMap(points=[(0, 0), (10, 10)], judge="new/judge", onto="old/judge")
    assert score_map_problem({"x": m}, "new/judge") is None
    assert score_map_problem({"x": ScoreMap(points=[(0, 0), (1, 1)])}, "any") is None  # unrecorded: no check
    problem = score_map_problem({"x": m}, "other/judge")
    assert problem and "new/judge" in problem and "other/judge" in problem and "old/judge" in problem


# --- end to end: two fake judges, the second a distortion of the first -----------------------------------------


def spread_groups(n_groups: int = 12, n_rollouts: int = 8) -> list[dict[str, Any]]:
    """Groups whose rollouts cover the fake judge's scale: outcomes that match the reference or not (exit codes)
    and final answers from terse to detailed (the fake judge's detail dimensions)."""
    out = []
    for g in range(n_groups):
        rollouts = []
        for i in range(n_rollouts):
            code = 0 if (i + g) % 3 else 1
            steps = [step(command=f"pytest -q -k case_{g}_{i}", exit_code=code, output=f"{i} passed, {code} failed")]
            answer = f"<final_answer>case {g}/{i}: " + "details " * (6 * i + g) + "</final_answer>"
            rollouts.append(rollout(f"r{i}", steps=steps, final=answer))
        out.append(group(f"g{g}", rollouts))
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def scored_run(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", spread_groups())
    scored = tmp_path / "a.jsonl"
    run_cli("score", rollouts, "-o", scored, "--fake-judge", "--include-plans", "--no-progress", env=env)
    return rollouts, scored, env


def score_with(rubric_path: Path | str, rollouts: Path, tmp_path: Path, gamma: float | None) -> dict[tuple, float]:
    """Rewards of every graded rollout scored with `rubric_path` by the fake judge, distorted by `gamma`."""
    from reward.cache.disk import Store
    from reward.core.trajectory import Group
    from reward.judge.base import CallSettings, JudgeSettings, Usage
    from reward.judge.fake import DistortedJudge, InProcessFakeJudge
    from reward.native.prepare import prepare_group
    from reward.rubric.load import load_rubric
    from reward.scoring.scorer import Scorer

    r = load_rubric(rubric_path, overrides=[])
    settings = JudgeSettings(condense=CallSettings("fake", 0.0, 2048), grade=CallSettings("fake", 0.0, 2048))
    judge: Any = InProcessFakeJudge(settings)
    if gamma is not None:
        judge = DistortedJudge(judge, Distortion.on(r.spec, gamma), r.spec)
    store = Store(tmp_path / "score-cache")
    scorer = Scorer(r, judge, store)
    groups = [prepare_group(Group.model_validate_json(line)) for line in rollouts.read_text().splitlines()]

    async def run() -> list[Any]:
        return list(await asyncio.gather(*(scorer.score_group(g, Usage()) for g in groups)))

    try:
        results = asyncio.run(run())
    finally:
        store.close()
    return {(g.group_id, x.id): x.reward for g in results for x in g.rollouts if x.status == "ok"}


def test_migrate_recovers_a_planted_distortion(scored_run, tmp_path: Path):
    rollouts, scored, env = scored_run
    overlay = tmp_path / "overlay.yaml"
    ran = run_cli(
        "migrate", scored, "-i", rollouts, "--fake-judge", "--fake-distortion", GAMMA, "-o", overlay, "--json", env=env
    )
    report = json.loads(ran.stdout)
    m = report["migration"]
    assert "grade" in ran.stderr and "calls" in ran.stderr  # the estimate came first (on stderr with --json)
    assert m["regraded"] == m["sampled"] == m["graded"] > 50 and m["fake"] is True
    d = Distortion(GAMMA, 0, 10)
    worst = 0.0
    for name, fitted in m["maps"].items():
        assert fitted["judge"].endswith(f"~gamma{GAMMA:g}") and fitted["onto"] == "openai/reward-fake-judge"
        if name in m["flat"]:  # one score from the new judge: the old mean, whatever it says
            assert [x for x, _ in fitted["points"]] == [0, 10] and len({y for _, y in fitted["points"]}) == 1
            continue
        for x, y in fitted["points"]:
            lo, hi = d.inverse(x - 0.5), d.inverse(x + 0.5)  # the old scores the judge's rounding sends to x
            if sum(lo <= s < hi for s in range(11)) > 1:  # merged (0 and 1 both become 0): any of them
                assert lo - 0.5 <= y <= hi + 0.5, (name, x, y)
            else:
                worst = max(worst, abs(y - d.inverse(x)))
        assert m["dimensions"][name]["rank_flips"] == 0  # a monotone distortion never reorders
        assert m["dimensions"][name]["mean_shift"] < 0  # gamma > 1 bends scores down
    assert worst <= 0.5, worst
    assert len(m["maps"]) == 14 and len(m["flat"]) < 14

    # scoring with the overlay and the distorted judge keeps the original judge's rewards
    original = {
        (g["group_id"], x["id"]): x["reward"]
        for g in map(json.loads, scored.read_text().splitlines())
        for x in g["rollouts"]
        if x["status"] == "ok"
    }
    raw = score_with("execution_subagent", rollouts, tmp_path, GAMMA)
    mapped = score_with(overlay, rollouts, tmp_path, GAMMA)
    assert set(raw) == set(mapped) == set(original)
    mad_raw = sum(abs(raw[k] - original[k]) for k in original) / len(original)
    mad_mapped = sum(abs(mapped[k] - original[k]) for k in original) / len(original)
    print(f"mean |reward - original|: distorted {mad_raw:.2f}, distorted + overlay {mad_mapped:.2f}")
    assert mad_raw > 5 and mad_mapped < 1.0 and mad_mapped < mad_raw / 5


def test_migrate_recovers_an_unrounded_distortion(tmp_path: Path):
    """On a continuous scale the judge does not round: the map is f's inverse itself, within 0.5 everywhere."""
    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", spread_groups(6))
    scored = tmp_path / "a.jsonl"
    scale = "scale={min: 0.0, max: 10.0}"
    run_cli(
        "score", rollouts, "-o", scored, "--fake-judge", "--include-plans", "--no-progress", "--set", scale, env=env
    )
    ran = run_cli("migrate", scored, "-i", rollouts, "--fake-judge", "--fake-distortion", GAMMA, "--json", env=env)
    m = json.loads(ran.stdout)["migration"]
    d = Distortion(GAMMA, 0.0, 10.0, integer=False)
    errors = [abs(y - d.inverse(x)) for fitted in m["maps"].values() for x, y in fitted["points"]]
    assert len(errors) > 100 and max(errors) <= 0.5
    assert m["reward"]["mapped_mean_abs_diff"] < m["reward"]["mean_abs_diff"] / 5


def test_dry_run_estimates_and_a_rerun_is_answered_by_the_cache(scored_run, tmp_path: Path):
    rollouts, scored, env = scored_run
    args = ("migrate", scored, "-i", rollouts, "--fake-judge", "--fake-distortion", GAMMA, "--sample", 20)
    dry = json.loads(run_cli(*args, "--dry-run", "--json", env=env).stdout)
    assert dry["sampled"] == 20 and dry["stages"]["grade"]["calls"] == 20 and dry["stages"]["grade"]["cached"] == 0
    assert dry["stages"]["condense"]["model"] is None  # the plans came from the file: nothing condensed
    assert dry["stages"]["grade"]["cost_usd"] is None  # the fake judge has no price: unknown, never $0
    first = json.loads(run_cli(*args, "--json", env=env).stdout)
    assert first["estimate"]["stages"]["grade"]["calls"] == 20  # the dry run called nothing and cached nothing
    again = json.loads(run_cli(*args, "--json", env=env).stdout)
    assert again["estimate"]["stages"]["grade"] | {"calls": 0, "cached": 20} == again["estimate"]["stages"]["grade"]
    assert again["migration"]["maps"] == first["migration"]["maps"]


def test_without_plans_in_the_file_the_runs_judge_condenses(tmp_path: Path):
    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", spread_groups(4))
    scored = tmp_path / "a.jsonl"
    run_cli("score", rollouts, "-o", scored, "--fake-judge", "--no-progress", env=env)
    args = ("migrate", scored, "-i", rollouts, "--fake-judge", "--fake-distortion", GAMMA)
    dry = json.loads(run_cli(*args, "--dry-run", "--json", env=env).stdout)
    assert dry["stages"]["condense"]["model"] == "openai/reward-fake-judge"
    assert dry["stages"]["condense"]["calls"] == 0 and dry["stages"]["condense"]["cached"] > 0  # the run's plans
    m = json.loads(run_cli(*args, "--json", env=env).stdout)["migration"]
    assert all(a["rank_flips"] == 0 for a in m["dimensions"].values()) and m["regraded"] == m["graded"]


def hostile(tmp_path: Path, *args: Any, env: dict[str, str] | None = None) -> str:
    env = env or {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    ran = run_cli("migrate", *args, env=env, check=False)
    assert ran.returncode == 2, (ran.stdout, ran.stderr)
    assert "Traceback" not in ran.stderr
    return " ".join(ran.stderr.split())


def test_hostile_inputs_are_clear_errors(scored_run, tmp_path: Path):
    rollouts, scored, _ = scored_run
    fake = ("--fake-judge", "--fake-distortion", GAMMA)
    assert "not a scored file" in hostile(tmp_path, rollouts, "-i", rollouts, *fake)
    assert "not found" in hostile(tmp_path, tmp_path / "nope.jsonl", "-i", rollouts, *fake)
    assert "--input" in hostile(tmp_path, scored, *fake)
    assert "not a model" in hostile(tmp_path, scored, "-i", rollouts, "--to", "no-such-provider-model-xyz")
    assert "--fake-judge" in hostile(tmp_path, scored, "-i", rollouts, "--fake-distortion", GAMMA)
    # too few graded rollouts for a fit, and none at all (every rollout penalised)
    lines = [json.loads(x) for x in scored.read_text().splitlines()]
    few = write_jsonl(tmp_path / "few.jsonl", [{**lines[0], "rollouts": lines[0]["rollouts"][:5]}])
    assert "at least 8" in hostile(tmp_path, few, "-i", rollouts, *fake)
    for g in lines:
        for r in g["rollouts"]:
            r.update(status="penalized", penalty="no_commands", dimensions=None)
    none = write_jsonl(tmp_path / "none.jsonl", lines)
    assert "no graded rollout" in hostile(tmp_path, none, "-i", rollouts, *fake)
    # the input is not the one the run scored
    other = write_jsonl(tmp_path / "other.jsonl", spread_groups(2, 2))
    assert "is it the input the run scored" in hostile(tmp_path, scored, "-i", other, *fake)
    # a rubric that asks the judge otherwise
    assert "asks the judge differently" in hostile(tmp_path, scored, "-i", rollouts, "-r", "response_quality", *fake)


def test_the_estimate_prices_a_real_judge_and_a_fake_run_is_not_fitted_onto(scored_run, tmp_path: Path):
    rollouts, scored, env = scored_run
    env = {**env, "OPENAI_API_KEY": "sk-test-not-used"}  # a dry run calls nothing
    args = ("migrate", scored, "-i", rollouts, "--to", "openai/gpt-4.1-2025-04-14", "--sample", 10, "--json")
    dry = json.loads(run_cli(*args, "--dry-run", env=env).stdout)
    grade = dry["stages"]["grade"]
    assert grade["model"] == "openai/gpt-4.1-2025-04-14" and grade["calls"] == 10 and grade["prompt_tokens"] > 0
    expected = grade["prompt_tokens"] * grade["price_per_token"]["prompt"]
    expected += grade["completion_tokens"] * grade["price_per_token"]["completion"]
    assert grade["cost_usd"] == pytest.approx(expected) and grade["cost_usd"] > 0
    assert "FAKE judge" in hostile(tmp_path, *args[1:], env=env)  # scored by the fake judge: no real scale to fit onto


def test_an_overlay_that_would_find_other_templates_is_refused(tmp_path: Path):
    """A rubric with its own template: the overlay must sit where that template is found."""
    from tests.conftest import ROOT

    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    own = tmp_path / "mine"
    own.mkdir()
    text = (ROOT / "rubrics" / "execution_subagent.yaml").read_text().replace("grade.j2", "mine.j2")
    (own / "mine.yaml").write_text(text)
    (own / "mine.j2").write_text((ROOT / "templates" / "grade.j2").read_text().replace("strict evaluator", "judge"))
    rollouts = write_jsonl(tmp_path / "rollouts.jsonl", spread_groups(2))
    scored = tmp_path / "a.jsonl"
    run_cli("score", rollouts, "-o", scored, "-r", own / "mine.yaml", "--fake-judge", "--include-plans", env=env)
    args = (scored, "-i", rollouts, "-r", own / "mine.yaml", "--fake-judge", "--fake-distortion", GAMMA)
    assert "write it into" in hostile(tmp_path, *args, "-o", tmp_path / "elsewhere.yaml", env=env)
    assert not (tmp_path / "elsewhere.yaml").exists() and not list(tmp_path.glob(".elsewhere*"))
    run_cli("migrate", *args, "-o", own / "overlay.yaml", env=env)
    from reward.rubric.load import load_rubric

    overlay = load_rubric(own / "overlay.yaml", overrides=[])
    assert "judge" in overlay.grade_template and "strict evaluator" not in overlay.grade_template
    assert overlay.spec.score_maps and overlay.spec.judge.grade.model.endswith("~gamma1.7")


def test_score_refuses_a_rubric_whose_maps_were_fitted_for_another_grading_judge(fake_judge, tmp_path: Path):
    """A real judge graded through another judge's maps would change every reward's scale silently: refused
    before any call; the fake judge (which measures nothing) is only warned about."""
    from reward.rubric.load import data_root
    from tests.conftest import EXAMPLES, cli_env

    text = (data_root() / "rubrics" / "execution_subagent.yaml").read_text()
    maps = (
        "\nscore_maps:\n  efficiency: {points: [[0, 0], [10, 10]], judge: openai/some-other-judge, onto: old/judge}\n"
    )
    overlay = tmp_path / "overlay.yaml"  # its templates: the built-in ones
    overlay.write_text(text + maps)
    env = cli_env(fake_judge, tmp_path / "cache")
    out = tmp_path / "o.jsonl"
    ran = run_cli("score", EXAMPLES, "-o", out, "--rubric", overlay, "--no-progress", env=env, check=False)
    assert ran.returncode == 2 and "fitted for grading judge openai/some-other-judge" in ran.stderr
    assert fake_judge.counts()["total"] == 0 and not out.exists()
    faked = run_cli("score", EXAMPLES, "-o", out, "--rubric", overlay, "--fake-judge", "--no-progress", env=env)
    assert "fitted for grading judge openai/some-other-judge" in faked.stderr


def test_the_service_refuses_a_rubric_whose_maps_were_fitted_for_another_grading_judge(tmp_path: Path, monkeypatch):
    """Every way of serving (`reward serve`, its workers, Ray Serve) builds RewardService: the check is there."""
    import shutil

    from reward.errors import ConfigError
    from reward.rubric.load import data_root
    from reward.scoring.build import FAKE_MODEL
    from reward.service.reward_service import RewardService, ServiceSettings

    rubrics = tmp_path / "rubrics"
    rubrics.mkdir()
    text = (data_root() / "rubrics" / "execution_subagent.yaml").read_text()
    maps = "\nscore_maps:\n  efficiency: {points: [[0, 0], [10, 10]], judge: openai/some-other-judge}\n"
    (rubrics / "execution_subagent.yaml").write_text(text + maps)
    shutil.copytree(data_root() / "templates", tmp_path / "templates")
    settings = ServiceSettings(rubric_dir=rubrics, cache_dir=tmp_path / "cache")
    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/test-judge")
    with pytest.raises(ConfigError, match="fitted for grading judge openai/some-other-judge"):
        RewardService(settings)
    monkeypatch.setenv("REWARD_JUDGE_MODEL", FAKE_MODEL)  # `serve --fake-judge`: measures nothing, allowed
    RewardService(settings).close()
    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/some-other-judge")  # the judge it was fitted for
    RewardService(settings).close()


def test_rescore_refuses_a_file_whose_scores_were_mapped(tmp_path: Path):
    """Saved scores of a rubric with score_maps are already mapped: rescoring would map them a second time."""
    from reward.rubric.load import data_root
    from tests.conftest import EXAMPLES

    text = (data_root() / "rubrics" / "execution_subagent.yaml").read_text()
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(text + "\nscore_maps:\n  efficiency: {points: [[0, 0], [10, 9]]}\n")
    env = {"REWARD_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    mapped = tmp_path / "mapped.jsonl"
    run_cli("score", EXAMPLES, "-o", mapped, "--rubric", overlay, "--fake-judge", "--no-progress", env=env)
    assert all(json.loads(line)["basis"]["score_maps"] is True for line in mapped.read_text().splitlines())
    ran = run_cli("rescore", mapped, "-r", overlay, "-o", tmp_path / "again.jsonl", env=env, check=False)
    assert ran.returncode == 2 and "would map them again" in ran.stderr
    # the judge's own scores (a run without maps) may be rescored with the maps: mapped once
    plain = tmp_path / "plain.jsonl"
    run_cli("score", EXAMPLES, "-o", plain, "--fake-judge", "--no-progress", env=env)
    assert "score_maps" not in plain.read_text()
    run_cli("rescore", plain, "-r", overlay, "-o", tmp_path / "once.jsonl", env=env)


@pytest.mark.parametrize(
    ("maps", "problem"),
    [
        (
            "nonexistent: {points: [[0, 0], [10, 10]]}",
            "score maps for dimensions the rubric does not have: nonexistent",
        ),
        ("efficiency: {points: [[0, 5], [10, 3]]}", "mapped scores may not decrease"),
        ("efficiency: {points: [[5, 0], [5, 10]]}", "strictly increasing judge scores"),
        ("efficiency: {points: [[0, 0]]}", "at least 2"),
        ("efficiency: {points: [[0, 0], [10, .nan]]}", "efficiency"),
    ],
)
def test_a_hostile_score_map_is_refused_when_the_rubric_loads(tmp_path: Path, maps: str, problem: str):
    """A map that reorders scores, names a dimension the rubric lacks, or is not a function is a rubric error
    (exit 2 from `rubric check`), never a silently moved reward."""
    from reward.rubric.load import data_root

    text = (data_root() / "rubrics" / "execution_subagent.yaml").read_text()
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(text + "\nscore_maps:\n  " + maps + "\n")
    ran = run_cli("rubric", "check", overlay, env={"COLUMNS": "200"}, check=False)
    assert ran.returncode == 2 and problem in ran.stderr, ran.stderr
