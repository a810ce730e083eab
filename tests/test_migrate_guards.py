"""`reward migrate` on inputs a migration must not trust: scores off the rubric's scale, a run's K beyond what
`--samples` takes, a new judge that gives a dimension one value, more distinct scores than a map holds, an output
path that is not a regular file, and a line nested too deeply to parse."""

from __future__ import annotations

import json
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.migrate_fit import MAX_KNOTS, Pair, fit_map, isotonic, thin
from reward.rubric.score_maps import ScoreMap
from tests.conftest import EXAMPLES, run_cli

FAKE = ("--fake-judge", "--fake-distortion", 1.7)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The examples scored by the fake judge, with their plans (a run migrate can re-grade)."""
    tmp = tmp_path_factory.mktemp("migrate-guards")
    env = {"REWARD_CACHE_DIR": str(tmp / "cache"), "COLUMNS": "200"}
    scored = tmp / "scored.jsonl"
    run_cli("score", EXAMPLES, "-o", scored, "--fake-judge", "--include-plans", "--no-progress", env=env)
    return scored, env


def edited(run: tuple[Path, dict[str, str]], tmp_path: Path, change: Any) -> Path:
    scored, _ = run
    lines = [json.loads(x) for x in scored.read_text().splitlines()]
    for g in lines:
        change(g)
    out = tmp_path / "edited.jsonl"
    out.write_text("".join(json.dumps(g) + "\n" for g in lines))
    return out


def refused(run: tuple[Path, dict[str, str]], *args: Any, code: int = 2) -> str:
    ran = run_cli("migrate", *args, env=run[1], check=False)
    assert ran.returncode == code, (ran.stdout, ran.stderr)
    assert "Traceback" not in ran.stderr
    return " ".join(ran.stderr.split())


# --- the scored file: scores on the rubric's scale, K within 1..32 -----------------------------------------


@pytest.mark.parametrize("score", [-5000.0, 1e308, 10.5])
def test_scores_off_the_rubrics_scale_are_refused(run, tmp_path: Path, score: float) -> None:
    def change(g: dict[str, Any]) -> None:
        for r in g["rollouts"]:
            if r["dimensions"]:
                r["dimensions"]["efficiency"]["score"] = score

    path = edited(run, tmp_path, change)
    why = refused(run, path, "-i", EXAMPLES, *FAKE, "--dry-run")
    assert "outside the rubric's scale [0, 10]" in why and "efficiency" in why


@pytest.mark.parametrize("reward", [1e308, -1e308, 100.5, -51.0])
def test_rewards_beyond_what_the_rubric_gives_are_refused(run, tmp_path: Path, reward: float) -> None:
    """Graded rewards of execution_subagent lie in [-50, 100]: 1e308 there would overflow every mean to inf."""

    def change(g: dict[str, Any]) -> None:
        for r in g["rollouts"]:
            if r["status"] == "ok":
                r["reward"] = reward

    why = refused(run, edited(run, tmp_path, change), "-i", EXAMPLES, *FAKE)
    assert "outside what execution_subagent can give [-50, 100]" in why


@pytest.mark.parametrize("samples", [0, 33, 1000, -1, "7"])
def test_a_runs_k_beyond_what_samples_takes_is_refused(run, tmp_path: Path, samples: Any) -> None:
    path = edited(run, tmp_path, lambda g: g["basis"].update(samples=samples))
    started = time.monotonic()
    why = refused(run, path, "-i", EXAMPLES, *FAKE, "--dry-run")
    assert "basis.samples" in why and "1..32" in why and time.monotonic() - started < 30


def test_a_runs_k_within_range_and_auto_are_taken(run, tmp_path: Path) -> None:
    for samples, calls in ((3, 3), ("auto", 1)):
        path = edited(run, tmp_path, lambda g, k=samples: g["basis"].update(samples=k))
        ran = run_cli("migrate", path, "-i", EXAMPLES, *FAKE, "--dry-run", "--json", "-n", 5, env=run[1])
        assert json.loads(ran.stdout)["stages"]["grade"]["calls"] == 5 * calls


# --- the fit: one value gives a flat map, many values fit in a map ----------------------------------------------


def test_a_dimension_the_new_judge_scores_once_is_mapped_to_the_old_mean(run, tmp_path: Path) -> None:
    """Without its map, scoring with the overlay would use the new judge's raw score for that dimension: the
    reward would move by however far it lies from the old scores (9.5 points here)."""
    scored, env = run
    overlay = tmp_path / "overlay.yaml"
    args = ("migrate", scored, "-i", EXAMPLES, "--fake-judge", "--fake-distortion", 20, "-o", overlay)
    m = json.loads(run_cli(*args, "--json", env=env).stdout)["migration"]
    assert m["flat"] and set(m["maps"]) == set(m["dimensions"])  # every dimension has its map
    for name in m["flat"]:
        points = m["maps"][name]["points"]
        assert [x for x, _ in points] == [0, 10]
        assert points[0][1] == points[1][1] == pytest.approx(m["dimensions"][name]["mean_old"], abs=1e-4)
        assert m["dimensions"][name]["mapped_mean_shift"] == pytest.approx(0, abs=1e-3)
    assert abs(m["reward"]["mean_shift"]) > 20 and abs(m["reward"]["mapped_mean_shift"]) < 0.5
    from reward.rubric.load import load_rubric

    assert set(load_rubric(overlay, overrides=[]).spec.score_maps) == set(m["dimensions"])
    table = run_cli(*args[:-2], env=env).stdout
    assert "mapped to the old mean" in " ".join(table.split())


def test_more_distinct_scores_than_a_map_holds_are_thinned() -> None:
    rng = random.Random(3)
    xs = [rng.uniform(0, 10) for _ in range(1000)]  # a continuous scale: every score distinct
    pairs = [Pair(f"g{i % 50}", min(10.0, 10 * (x / 10) ** 0.6 + rng.gauss(0, 0.1)), x) for i, x in enumerate(xs)]
    m = fit_map(pairs, "new", "old", (0.0, 10.0))
    assert m is not None and 2 <= len(m.points) <= MAX_KNOTS
    full = isotonic([p.new for p in pairs], [p.old for p in pairs])
    assert m.points[0] == (full[0][0], round(full[0][1], 4)) and m.points[-1][0] == full[-1][0]  # the ends kept
    assert max(abs(m(x) - y) for x, y in full) < 0.5  # between knots: the chord of a monotone fit
    assert all(b[1] >= a[1] for a, b in zip(m.points, m.points[1:], strict=False))


def test_thinning_drops_what_the_map_does_not_need_first() -> None:
    line = [(float(x), 2.0 * x) for x in range(300)]
    assert thin(line) == [line[0], line[-1]]  # a straight run: its ends
    steps = [(float(x), float(x // 100)) for x in range(300)]  # three flat blocks
    assert thin(steps) == [(0, 0), (99, 0), (100, 1), (199, 1), (200, 2), (299, 2)]
    bent = [(float(x), float(x * x)) for x in range(1000)]  # nothing collinear: evenly spaced knots
    kept = thin(bent)
    assert len(kept) == MAX_KNOTS and kept[0] == bent[0] and kept[-1] == bent[-1]
    ScoreMap(points=kept)  # a valid map


def test_a_map_that_cannot_be_written_is_a_clear_error(run, monkeypatch) -> None:
    def broken(*_: Any) -> ScoreMap:
        return ScoreMap(points=[(0, 0)])  # a ValidationError, as any the fit would raise

    monkeypatch.setattr("reward.analysis.migrate.fit_map", broken)
    why = refused(run, run[0], "-i", EXAMPLES, *FAKE)
    assert "is not a valid score map" in why


# --- the output: a regular file, or a link to one ---------------------------------------------------------------


def test_an_output_that_is_not_a_regular_file_is_refused_before_any_call(run, tmp_path: Path) -> None:
    fifo = tmp_path / "overlay.yaml"
    os.mkfifo(fifo)
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nothing.yaml")
    for out in (fifo, tmp_path / "folder.yaml", tmp_path / "dangling.yaml"):
        ran = run_cli("migrate", run[0], "-i", EXAMPLES, *FAKE, "-o", out, env=run[1], check=False)
        assert ran.returncode == 3 and "cannot write" in ran.stderr and "Traceback" not in ran.stderr
        assert "re-grade" not in ran.stdout  # refused before the estimate and any call
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and (tmp_path / "dangling.yaml").is_symlink()
    assert not (tmp_path / "nothing.yaml").exists()


def test_an_overlay_written_through_a_link_lands_in_its_target(run, tmp_path: Path) -> None:
    target = tmp_path / "real" / "overlay.yaml"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "overlay.yaml"
    link.symlink_to(target)
    run_cli("migrate", run[0], "-i", EXAMPLES, *FAKE, "-o", link, env=run[1])
    assert link.is_symlink() and "score_maps" in target.read_text()
    assert not [p.name for d in (tmp_path, target.parent) for p in d.iterdir() if p.name.startswith(".")]


def test_report_outputs_follow_links_and_refuse_fifos(run, tmp_path: Path) -> None:
    fifo = tmp_path / "report.html"
    os.mkfifo(fifo)
    ran = run_cli("report", run[0], "-o", fifo, check=False)
    assert ran.returncode == 3 and "not a regular file" in ran.stderr and stat.S_ISFIFO(fifo.lstat().st_mode)
    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    run_cli("report", run[0], "-o", link)
    assert link.is_symlink() and target.read_text().startswith("<!DOCTYPE html>")


# --- a line nested too deeply to parse ------------------------------------------------------------------------------


def test_a_line_nested_too_deeply_is_a_reported_line_not_a_traceback(run, tmp_path: Path) -> None:
    deep = "[" * 200_000 + "\n"
    only = tmp_path / "deep.jsonl"
    only.write_text(deep)
    assert "nested too deeply" in refused(run, only, "-i", EXAMPLES, *FAKE)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(run[0].read_text() + deep)
    assert "nested too deeply" in refused(run, mixed, "-i", EXAMPLES, *FAKE)
    ran = run_cli("report", mixed, "-o", tmp_path / "r.html", check=False)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr and "nested too deeply" in ran.stderr
    assert (tmp_path / "r.html").exists()  # the other lines reported


def test_compare_reports_a_line_nested_too_deeply_without_a_traceback(run, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(run[0].read_text() + "[" * 200_000 + "\n")
    ran = run_cli("compare", run[0], mixed, check=False)
    assert "Traceback" not in ran.stderr and "RecursionError" not in ran.stderr
    assert "nested too deeply" in ran.stderr + ran.stdout
