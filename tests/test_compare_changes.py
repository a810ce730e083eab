"""`reward compare` explains: runs named, the reward change split by dimension, formula-only edits, judge noise,
sweeps of N runs, terminal widths, added dimensions, HTML escaping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.compare import compare_runs
from reward.analysis.compare_runs import run_info
from reward.analysis.scored import ScoredGroup
from reward.rubric.formula import graded_reward
from reward.rubric.load import load_rubric
from reward.rubric.verdict import DimensionScore
from tests.conftest import run_cli

RUBRIC = load_rubric("execution_subagent")
DIMS = [d.name for d in RUBRIC.spec.dimensions]


def _reward(scores: dict[str, float], spec: Any = RUBRIC.spec) -> float:
    return graded_reward(spec, {n: DimensionScore(s, "") for n, s in scores.items()})[0]


def _rollout(rid: str, scores: dict[str, float] | None, **extra: Any) -> dict[str, Any]:
    if scores is None:
        return {"id": rid, "status": "penalized", "reward": -50.0, "penalty": "no_commands", **extra}
    dims = {n: {"score": s, "reason": f"{n} of {rid}"} for n, s in scores.items()}
    return {"id": rid, "status": "ok", "reward": _reward(scores), "dimensions": dims, **extra}


def _group(gid: str, rollouts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    judge = {"condense_model": "openai/x", "grade_model": "openai/x", "fake": False}
    base = {"group_id": gid, "rubric": RUBRIC.name, "rubric_version": RUBRIC.version, "judge": judge}
    return {**base, "rollouts": rollouts, "filtered": False, **extra}


def _write(path: Path, groups: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(g) + "\n" for g in groups))
    return path


def _all(v: float) -> dict[str, float]:
    return dict.fromkeys(DIMS, v)


def test_reward_change_split_by_dimension_hand_computed():
    # Paper eq. 2, alpha 0.5, scale 100: +1 on a positive dimension (1 of 7) moves the reward by
    # 100 * 0.5 * 0.1 / 7; on a pitfall one (1 of 4) by -100 * 0.5 * 0.1 / 4 = -1.25; on a final-answer
    # one (1 of 3) by 100 * 0.5 * 0.1 / 3.
    a = _all(5)
    b = a | {"command_correctness": 6, "missed_errors": 6, "detail_level": 7}
    ga = [ScoredGroup.model_validate(_group("g", [_rollout("r0", a), _rollout("r1", a)]))]
    gb = [ScoredGroup.model_validate(_group("g", [_rollout("r0", b), _rollout("r1", a)]))]
    c = compare_runs(ga, gb, specs=(RUBRIC.spec, RUBRIC.spec))
    rc = c.reward_change
    assert rc.n == 2 and rc.scores_moved == 1
    assert rc.by_dimension == pytest.approx(
        {"command_correctness": 50 / 7 / 10 / 2, "missed_errors": -1.25 / 2, "detail_level": 2 * 50 / 3 / 10 / 2}
    )
    assert rc.formula == pytest.approx(0.0, abs=1e-12)
    assert sum(rc.by_dimension.values()) + rc.formula + rc.penalty_values + rc.status == pytest.approx(rc.delta)
    assert c.dimensions["missed_errors"].contribution == pytest.approx(-0.625)
    assert c.dimensions["efficiency"].contribution == 0.0  # known, did not move
    top = c.moved[0]
    # the dimension that moved the reward the way it went, not the pitfall that pulled against it
    assert (top.id, top.dimension, top.contribution) == ("r0", "detail_level", pytest.approx(100 / 30))
    assert top.cause == "dimension scores"


@pytest.fixture(scope="module")
def scored_examples(tmp_path_factory, fake_judge_server):
    """The bundled examples scored with the fake judge, as a user would."""
    from tests.conftest import EXAMPLES, cli_env

    tmp = tmp_path_factory.mktemp("scored")
    out = tmp / "scored.jsonl"
    run_cli("score", EXAMPLES, "-o", out, "--no-progress", env=cli_env(fake_judge_server, tmp / "cache"))
    return out


def test_formula_only_edit_names_what_moved(scored_examples, tmp_path):
    """A rescore with --set: no dimension moved; the parts are the formula side and the penalty values, and
    every changed constant, penalty value and filter threshold is listed."""
    a, b = scored_examples, tmp_path / "b.jsonl"
    sets = ["--set", "constants.alpha=0.7", "--set", "penalties.no_commands=-30", "--set", "group_filter.min_std=5"]
    run_cli("rescore", a, "-r", "execution_subagent", *sets, "-o", b)
    data = json.loads(run_cli("compare", a, b, "--json").stdout)
    rc = data["reward_change"]
    assert rc["scores_moved"] == 0 and rc["by_dimension"] == {} and rc["graded"] == 25 and rc["n"] == 32
    # expected from the file's scores, through the edited formula: the graded part, and +20 per no_commands
    edited = load_rubric("execution_subagent", overrides=["constants.alpha=0.7"]).spec
    rollouts = [r for line in a.read_text().splitlines() for r in json.loads(line)["rollouts"]]
    graded = [{n: d["score"] for n, d in r["dimensions"].items()} for r in rollouts if r["status"] == "ok"]
    assert rc["formula"] == pytest.approx(sum(_reward(s, edited) - _reward(s) for s in graded) / 32)
    no_commands = sum(r["penalty"] == "no_commands" for r in rollouts)
    assert no_commands == 2 and rc["penalty_values"] == pytest.approx(20 * no_commands / 32) and rc["status"] == 0
    assert rc["delta"] == pytest.approx(rc["formula"] + rc["penalty_values"])
    changes = {(c["what"], c["a"], c["b"]) for c in data["rubric_changes"]}
    assert {
        ("constants.alpha", "0.5", "0.7"),
        ("penalties.no_commands", "-50", "-30"),
        ("group_filter.min_std", "0.01", "5"),
    } <= changes
    assert data["runs"][1]["overrides"] == [
        "constants.alpha=0.7",
        "penalties.no_commands=-30",
        "group_filter.min_std=5",
    ]
    penalties = [(p["id"], p["a"], p["b"]) for p in data["changes"]["penalty"]]
    assert penalties == [("no-commands", "no_commands (-50)", "no_commands (-30)")] * 2
    assert {m["cause"] for m in data["moved"]} == {"penalty value", "formula side (no dimension score moved)"}
    assert all(m["dimension"] is None for m in data["moved"])  # never "8 -> 8" with the same reason
    text = run_cli("compare", a, b).stdout
    assert "no dimension score moved in the 25 rollouts graded in both" in text
    assert "constants.alpha" in text and "no_commands (-50) -> no_commands (-30)" in text


def _noisy(rid: str, reward: float, std: float | None, k: int = 3) -> dict[str, Any]:
    dims = {n: {"score": 5.0, "reason": "", "samples": [5] * k, "std": 0.0} for n in DIMS}
    return {"id": rid, "status": "ok", "reward": reward, "reward_std": std, "dimensions": dims}


def test_moves_within_judge_noise_are_flagged():
    # reward_std 3 with K = 3 in both runs: each reward's SE is 3 / sqrt(3), a move's sqrt(3 + 3) = 2.449;
    # a move of 4 is within 2 SE (4.899), one of 6 is not.
    a = [_group("g", [_noisy("small", 50, 3), _noisy("big", 50, 3)], noise={"samples": 3})]
    b = [_group("g", [_noisy("small", 54, 3), _noisy("big", 56, 3)], noise={"samples": 3})]
    c = compare_runs([ScoredGroup.model_validate(g) for g in a], [ScoredGroup.model_validate(g) for g in b])
    moved = {m.id: m for m in c.moved}
    assert moved["small"].noise_se == pytest.approx(6**0.5) and moved["small"].within_noise is True
    assert moved["big"].within_noise is False
    assert c.noise == "measured in both runs"
    assert c.reward_change.noise_se == pytest.approx((6 + 6) ** 0.5 / 2)  # mean move 5 vs 2 SE 3.46
    assert c.reward_change.within_noise is False
    assert c.groups[0].within_noise is False  # one move stands out of the noise
    # measured in A only: B's single sample is assumed as noisy as A's samples (SE 3 / 1 for K = 1)
    b1 = [_group("g", [_noisy("small", 54, None, 1), _noisy("big", 56, None, 1)])]
    c1 = compare_runs([ScoredGroup.model_validate(g) for g in a], [ScoredGroup.model_validate(g) for g in b1])
    assert c1.noise.startswith("measured in A only")
    assert {m.id: m.noise_se for m in c1.moved}["small"] == pytest.approx((3 + 9) ** 0.5)
    # neither: unknown, never "within"
    a0 = [_group("g", [_noisy("small", 50, None, 1), _noisy("big", 50, None, 1)])]
    c0 = compare_runs([ScoredGroup.model_validate(g) for g in a0], [ScoredGroup.model_validate(g) for g in b1])
    assert c0.noise.startswith("unknown") and all(m.within_noise is None for m in c0.moved)
    assert c0.reward_change.within_noise is None


def test_groups_most_disagreement_first_and_runs_named(tmp_path):
    same = [_rollout(f"r{i}", _all(i)) for i in range(4)]
    flipped = [_rollout(f"r{i}", _all(3 - i)) for i in range(4)]
    a = _write(tmp_path / "a.jsonl", [_group("agree", same), _group("flip", same), _group("one", same[:1])])
    b = _write(tmp_path / "b.jsonl", [_group("agree", same), _group("flip", flipped), _group("one", same[:1])])
    data = json.loads(run_cli("compare", a, b, "--json").stdout)
    assert [(g["group_id"], g["kendall_tau"]) for g in data["groups"]] == [
        ("flip", -1.0),
        ("agree", 1.0),
        ("one", None),
    ]
    run = data["runs"][0]
    assert (run["label"], run["rubric"], run["rubric_version"], run["grade_model"], run["samples"]) == (
        "A",
        "execution_subagent",
        RUBRIC.version,
        "openai/x",
        1,
    )
    assert run["rubric_source"] == str(RUBRIC.path)  # the configured rubric of the same version
    # per dimension: every dimension flipped in "flip", agreed in "agree" -> mean tau 0 over 2 groups
    assert {d["tau"] for d in data["dimensions"].values()} == {0.0}


def test_a_rubric_of_another_version_is_not_used(tmp_path):
    a = _write(tmp_path / "a.jsonl", [_group("g", [_rollout("r", _all(5))], rubric_version="0123456789ab")])
    res = run_cli("compare", a, a, "--json", "--rubric", "execution_subagent")
    data = json.loads(res.stdout)
    assert data["runs"][0]["rubric_source"] is None
    assert f"is version {RUBRIC.version}, the run was scored with 0123456789ab" in data["runs"][0]["rubric_note"]
    assert "matches no run's rubric version" in res.stderr


def test_added_dimension_is_compared_and_plotted(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from reward.analysis import compare_plots

    ra = _rollout("r", _all(5))
    rb = json.loads(json.dumps(ra))
    rb["dimensions"]["politeness"] = {"score": 7, "reason": "<script>alert(1)</script>"}
    a = _write(tmp_path / "a.jsonl", [_group("g", [ra])])
    b = _write(tmp_path / "b.jsonl", [_group("g", [rb])])
    seen: dict[str, Any] = {}
    real = compare_plots.dimension_shift

    def spy(names, means):
        seen["names"], seen["means"] = list(names), {k: list(v) for k, v in means.items()}
        return real(names, means)

    monkeypatch.setattr(compare_plots, "dimension_shift", spy)
    html = tmp_path / "c.html"
    data = json.loads(run_cli("compare", a, b, "--json", "--html", html).stdout)
    assert data["dimensions"]["politeness"]["only_in"] == "B"
    assert "politeness" in seen["names"]
    i = seen["names"].index("politeness")
    assert seen["means"]["A"][i] is None and seen["means"]["B"][i] == 7
    page = html.read_text()
    assert "only in B" in page and "<script>alert" not in page


def test_sweep_of_three_runs_each_against_the_first(tmp_path):
    base = [_rollout(f"r{i}", _all(i + 2)) for i in range(3)]
    a = _write(tmp_path / "a.jsonl", [_group("g", base)])
    b = _write(tmp_path / "b.jsonl", [_group("g", base)])
    moved = [_rollout("r0", _all(9)), *base[1:]]
    c = _write(tmp_path / "c.jsonl", [_group("g", moved)])
    html = tmp_path / "sweep.html"
    data = json.loads(run_cli("compare", a, b, c, "--json", "--html", html).stdout)
    assert [r["label"] for r in data["runs"]] == ["A", "B", "C"] and data["baseline"] == "A"
    assert [[r["label"] for r in cmp["runs"]] for cmp in data["comparisons"]] == [["A", "B"], ["A", "C"]]
    rows = {r["run"]: r for r in data["summary"]}
    assert rows["B"]["reward_delta"] == 0.0 and rows["B"]["mean_tau"] == 1.0
    assert rows["C"]["reward_delta"] > 0 and rows["C"]["mean_tau"] == pytest.approx(-1 / 3)
    text = run_cli("compare", a, b, c).stdout
    assert "each run against A" in text and "what changed A -> C" in text
    page = html.read_text()
    assert "A → B" in page and "A → C" in page and "Each run against A" in page
    assert page.count(RUBRIC.version) >= 3 and "openai/x" in page and "<th>K (samples)</th>" in page
    one = run_cli("compare", a, check=False)
    assert one.returncode == 2 and "at least two scored runs" in one.stderr


@pytest.mark.parametrize("width", [80, 200])
def test_text_fits_the_terminal(tmp_path, monkeypatch, width):
    from reward.cli import console

    long_id = "dotnet-pdfsharpcore-build-ok"  # 28 characters: fits beside the numbers at 80
    # measured noise (reward_std, K = 3) puts "±… within" beside the numbers: it must wrap, never be cut
    noisy = {"reward_std": 40.0}
    a = _write(tmp_path / "a.jsonl", [_group(long_id, [_rollout(f"r{i}", _all(i), **noisy) for i in range(3)])])
    b = _write(
        tmp_path / "b.jsonl",
        [_group(long_id, [_rollout(f"r{i}", _all(i) | {"completeness": 9 - i}, **noisy) for i in range(3)])],
    )
    monkeypatch.setattr(console.out, "width", width)
    text = run_cli("compare", a, b).stdout
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert any(long_id in line for line in lines)  # an id is never cut or folded when it fits
    assert any("key_information_extraction" in line for line in lines)
    header = next(line for line in lines if "moved" in line and "dimension" in line and "Δ mean" in line)
    assert ("mean A" in header) is (width >= 100)  # narrow: the two runs' means give way, their change stays
    assert "Δ mean" in text and "…" not in text
    assert "within" in text.split("groups, most disagreement first")[1].split("mean τ")[0]


def test_values_from_the_file_are_not_markup(tmp_path):
    a = _write(tmp_path / "a.jsonl", [_group("[bold red]g[/bold red]", [_rollout("[link]r", _all(5))])])
    b = _write(tmp_path / "b.jsonl", [_group("[bold red]g[/bold red]", [_rollout("[link]r", _all(6))])])
    text = run_cli("compare", a, b).stdout
    assert "[bold red]g[/bold red]" in text and "[link]r" in text


def test_run_info_counts_penalty_values_and_k():
    g = ScoredGroup.model_validate(_group("g", [_rollout("p", None), _noisy("n", 1.0, 0.5, 4)]))
    info = run_info("A", None, [g])
    assert info.penalty_values == {"no_commands": [-50.0]} and info.samples == 4
