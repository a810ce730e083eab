"""`reward report`'s reading of a run: the rubric's directions and scale, weakest dimensions, errors, rounding."""

import json

import pytest

from reward.analysis.plots import BAD_COLOURS, GOOD_COLOURS, group_colours
from reward.analysis.report import render_report
from reward.analysis.report_data import (
    ReportGroup,
    clean_message,
    error_groups,
    read_report_groups,
    rubric_view,
)
from reward.analysis.report_rows import dimension_order, dimension_table, page_data, weakest_first
from reward.rubric.load import load_rubric
from tests.conftest import ROOT, run_cli


def _data(html: str) -> dict:
    return json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])


def _group(gid="g1", rollouts=None, rubric="execution_subagent", version=None):
    return ReportGroup.model_validate(
        {
            "group_id": gid,
            "rubric": rubric,
            "rubric_version": version if version is not None else load_rubric(rubric).version,
            "rollouts": rollouts or [],
        }
    )


def _ok(rid, scores, reward=50.0):
    return {"id": rid, "status": "ok", "reward": reward, "dimensions": {n: {"score": s} for n, s in scores.items()}}


def _renamed_rubric(tmp_path, failure_group="failures", scale="{min: 0.0, max: 1.0}"):
    """The bundled rubric with its failure-mode group renamed and another scale, loaded by path."""
    src = (ROOT / "rubrics" / "execution_subagent.yaml").read_text()
    src = src.replace("pitfall", failure_group).replace("scale: {min: 0, max: 10}", f"scale: {scale}")
    path = tmp_path / "renamed.yaml"
    path.write_text(src.replace("name: execution_subagent", "name: renamed", 1))
    return load_rubric(path)


def test_weakest_is_the_distance_from_the_best_value_in_each_dimensions_direction():
    # outcome_accuracy (higher is better) 6 is 4 from its best 10; missed_errors (a failure mode) 3 is 3 from
    # its best 0; efficiency 9 is 1 away; hallucinated_results 0 is at its best. Score order would say otherwise.
    g = _group(
        rollouts=[_ok("a", {"outcome_accuracy": 6, "missed_errors": 3, "efficiency": 9, "hallucinated_results": 0})]
    )
    view = rubric_view([g])
    dims = dimension_order([g], view)
    order = [dims[i] for i in weakest_first(g.rollouts[0], dims, view)]
    assert order == ["outcome_accuracy", "missed_errors", "efficiency", "hallucinated_results"]
    table = dimension_table([g], dims, view)
    assert [(r["name"], round(r["distance"], 2)) for r in table] == [
        ("outcome_accuracy", 0.4),
        ("missed_errors", 0.3),
        ("efficiency", 0.1),
        ("hallucinated_results", 0.0),
    ]
    assert table[0]["weakest"] == 1 and table[1]["direction"] == "higher is worse"


def test_direction_and_scale_come_from_a_rubric_given_by_path_never_from_a_group_name(tmp_path):
    renamed = _renamed_rubric(tmp_path)  # failure-mode group "failures", scale 0..1
    rollout = _ok("a", {"outcome_accuracy": 0.6, "missed_errors": 0.3, "efficiency": 0.9})
    g = _group(rollouts=[rollout], rubric="renamed", version=renamed.version)
    view = rubric_view([g], renamed)
    assert view.known and view.scale == (0.0, 1.0) and view.line == f"renamed @ {renamed.version}"
    assert view.higher_is_worse("missed_errors") and not view.higher_is_worse("outcome_accuracy")
    dims = dimension_order([g], view)
    assert [dims[i] for i in weakest_first(g.rollouts[0], dims, view)] == [
        "outcome_accuracy",
        "missed_errors",
        "efficiency",
    ]
    # a group *named* pitfall that is not a failure mode reads as higher is better
    not_failure = _renamed_rubric(tmp_path, failure_group="pitfall")
    src = not_failure.path.read_text().replace("failure_mode: true", "failure_mode: false")
    not_failure.path.write_text(src)
    assert not rubric_view([g], load_rubric(not_failure.path)).higher_is_worse("missed_errors")
    # the page: group labels, the 0..1 scale, the directions
    html = render_report([g], "t", renamed)
    data = _data(html)
    assert data["scale"] == [0.0, 1.0]
    assert {d["n"]: (d["g"], d["worse"]) for d in data["dims"]}["missed_errors"] == ("failures", True)
    assert "dimension groups from</th><td>renamed @ " in html


def test_group_colours_follow_direction_and_order_not_names():
    assert group_colours({"positive": False, "pitfall": True, "final_answer": False}) == {
        "positive": GOOD_COLOURS[0],
        "pitfall": BAD_COLOURS[0],
        "final_answer": GOOD_COLOURS[1],
    }
    assert group_colours({"quality": False, "failures": True}) == {
        "quality": GOOD_COLOURS[0],
        "failures": BAD_COLOURS[0],
    }


def test_without_a_rubric_the_scale_is_read_from_the_scores_and_the_page_says_so():
    g = _group(rollouts=[_ok("a", {"x": 0.25, "y": 1.0})], rubric="not_a_known_rubric", version="v")
    view = rubric_view([g])
    assert not view.known and view.scale == (0.0, 1.0) and view.line.startswith("not known")
    assert "every dimension read as higher is better" in view.line


def test_a_version_or_name_other_than_the_files_is_a_note(tmp_path):
    g = _group(rollouts=[_ok("a", {"efficiency": 5})], version="0ld")
    assert any("not the version the file records (0ld)" in n for n in rubric_view([g]).notes)
    renamed = _renamed_rubric(tmp_path)
    notes = rubric_view([g], renamed).notes
    assert any("--rubric renamed, but the file records execution_subagent" in n for n in notes)
    html = render_report([g], "t")
    assert "not the version the file records (0ld)" in html


def test_an_all_error_run_is_one_row_per_category_with_one_clean_message():
    def err(i, cat, msg):
        return {"id": f"r{i}", "status": "error", "reward": None, "error": {"category": cat, "message": msg}}

    rollouts = [
        err(i, "judge_unavailable", f"Cannot connect: <ssl.SSLContext object at 0x7f{i:010x}>\n  retrying")
        for i in range(25)
    ]
    rollouts += [err(25, "judge_timeout", "timed out after 120 s"), err(26, "judge_unavailable", "HTTP 503")]
    groups = [_group(rollouts=rollouts)]
    rows = error_groups(groups)
    assert [(e.category, e.count, e.n_messages) for e in rows] == [
        ("judge_unavailable", 26, 2),
        ("judge_timeout", 1, 1),
    ]
    assert rows[0].message == "Cannot connect: ssl.SSLContext retrying"
    assert rows[0].others == [("HTTP 503", 1)] and len(rows[0].examples) == 5
    html = render_report(groups, "t")
    static = html.split('<script type="application/json"')[0]  # the errors table, before the page's data
    assert static.count("Cannot connect: ssl.SSLContext retrying") == 1 and "object at 0x" not in html


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<ssl.SSLContext object at 0x7f3a2b1c0d90>", "ssl.SSLContext"),
        ("id 0x7f3a2b1c0d90 gone", "id 0x… gone"),
        ("0x1F is a small number", "0x1F is a small number"),
        ("a\n\n  b\tc", "a b c"),
    ],
)
def test_clean_message(raw, clean):
    assert clean_message(raw) == clean


def test_rewards_are_rounded_for_display_only(tmp_path):
    scored = tmp_path / "s.jsonl"
    line = {
        "group_id": "g",
        "rubric": "execution_subagent",
        "rollouts": [
            {"id": "a", "status": "ok", "reward": -9.999999999999998, "advantage": -0.0000001},
            {"id": "b", "status": "ok", "reward": 0.30000000000000004, "reward_std": 1.23456789},
        ],
        "mean": -4.849999999999999,
        "std": 5.15,
    }
    scored.write_text(json.dumps(line) + "\n")
    page = tmp_path / "r.html"
    run_cli("report", scored, "-o", page)
    html = page.read_text()
    data = _data(html)
    assert [(r["r"], r.get("adv")) for r in data["rollouts"]] == [(-10.0, 0.0), (0.3, None)]
    assert data["rollouts"][1]["sd"] == 1.2346 and data["groups"][0]["mean"] == -4.85
    assert "9.999999" not in html and "0.30000000000000004" not in html and "-4.84999" not in html
    assert json.loads(scored.read_text())["rollouts"][0]["reward"] == -9.999999999999998  # the file keeps it


def test_the_report_reader_keeps_what_only_the_report_shows(tmp_path):
    scored = tmp_path / "s.jsonl"
    line = {
        "group_id": "g",
        "rubric": "execution_subagent",
        "filtered": True,
        "filter_reason": "std 0 below min_std",
        "future_field": {"ignored": True},
        "rollouts": [
            {
                "id": "a",
                "status": "penalized",
                "reward": -100.0,
                "penalty": "too_long",
                "penalty_detail": "41873 tokens > max_tokens 30000",
                "num_tokens": 41873,
                "warnings": ["no terminal tool"],
                "meta": {"kind": "bad", "x": float("nan")},
            }
        ],
    }
    scored.write_text(json.dumps(line) + "\nnot json\n")
    groups, problems = read_report_groups(scored)
    assert len(problems) == 1 and "s.jsonl:2: invalid JSON" in problems[0]
    data = page_data(groups, [], rubric_view(groups))
    assert data["rollouts"][0] | {"g": 0} == {
        "g": 0,
        "id": "a",
        "r": -100.0,
        "st": "penalized",
        "why": "too_long",
        "det": "41873 tokens > max_tokens 30000",
        "tok": 41873,
        "warn": ["no terminal tool"],
        "meta": {"kind": "bad", "x": "nan"},  # a NaN in meta cannot break the page's JSON
    }
    assert data["groups"][0]["fr"] == "std 0 below min_std" and data["groups"][0]["tok"] == 41873
    res = run_cli("report", scored, "-o", tmp_path / "r.html", check=False)
    assert res.returncode == 1 and "skipped:" in res.stderr and (tmp_path / "r.html").exists()


def test_a_run_scored_with_set_overrides_is_read_against_the_rubric_with_them(tmp_path):
    edits = ["scale.max=5", "constants.alpha=0.7"]
    edited = load_rubric("execution_subagent", overrides=edits)
    g = _group(rollouts=[_ok("a", {"efficiency": 5, "missed_errors": 0})], version=edited.version)
    g.basis = {"prompt_version": "p", "overrides": edits}
    view = rubric_view([g])
    assert view.scale == (0.0, 5.0) and view.notes == []  # the recorded version is the one found
    assert view.line == f"execution_subagent @ {edited.version} with --set scale.max=5 constants.alpha=0.7"
    # and with the rubric given by the user (a path), the same edits applied to it
    given = load_rubric(ROOT / "rubrics" / "execution_subagent.yaml", overrides=[])
    assert rubric_view([g], given).line == view.line
    # without the record, the edited run's version is not the file's: said, not hidden
    g.basis = None
    assert any("is not the version the file records" in n for n in rubric_view([g]).notes)


def _noisy(gid, reliability, dims=None, k=4, n_penalized=0):
    from reward.core.summary import k_needed, spearman_brown

    g = _group(gid, [_ok("r1", {"efficiency": 5}), _ok("r2", {"efficiency": 7})])
    noise = {
        "samples": k,
        "snr": 1.0,
        "n_penalized": n_penalized,
        "reliability": reliability,
        "reliability_k": spearman_brown(reliability, k),
        "k_needed": k_needed(reliability),
        "reliability_target": 0.8,
        "dimensions": {
            name: {"reliability": r, "reliability_k": spearman_brown(r, k), "k_needed": k_needed(r)}
            for name, r in (dims or {}).items()
        },
    }
    return ReportGroup.model_validate({**g.model_dump(), "noise": noise})


def test_the_runs_reliability_is_the_median_over_groups_and_the_k_that_brings_it_to_the_target():
    from reward.analysis.report_reliability import run_reliability

    groups = [
        _noisy("a", 0.2, {"efficiency": 0.1, "completeness": 0.9}, n_penalized=1),
        _noisy("b", 0.5, {"efficiency": 0.3, "completeness": 0.7}),
        _noisy("c", 0.0, {"efficiency": 0.0}),
        _noisy("d", 0.9, {"efficiency": 0.5}, k=2),
        _group("k1"),  # scored with one sample: no reliability
    ]
    view = rubric_view(groups)
    rel = run_reliability(groups, view)
    assert rel is not None
    assert (rel.groups, rel.of, rel.median, rel.lowest, rel.highest) == (4, 5, 0.35, 0.0, 0.9)
    # Spearman-Brown: ceil(0.8 (1 - 0.35) / (0.35 (1 - 0.8))) = ceil(7.43) = 8
    assert rel.k_needed == 8 and rel.unreachable == 1 and rel.samples == (2, 4) and rel.n_penalized == 1
    assert [(d.name, d.median, d.groups) for d in rel.dimensions] == [("efficiency", 0.2, 4), ("completeness", 0.8, 2)]
    assert rel.dimensions[0].k_needed == 16 and rel.dimensions[1].k_needed == 1
    assert "0.35 for one sample (median of 4 groups" in rel.line and "K = 8 reaches 0.80" in rel.line
    assert run_reliability([_group("k1"), _group("k2")], view) is None


def test_the_page_has_reliability_only_where_the_file_has_it():
    noisy = [_noisy("a", 0.25, {"efficiency": 0.4}), _noisy("b", 0.75, {"efficiency": 0.6})]
    page = render_report(noisy, "t")
    assert 'id="reliability"' in page and 'id="rel-dimensions"' in page
    assert "0.50 for one sample (median of 2 groups" in page
    data = _data(page)
    assert data["rel"] is True and [g["rel"] for g in data["groups"]] == [0.25, 0.75]
    assert [g["kn"] for g in data["groups"]] == [12, 2]
    plain = render_report([_group("k1", [_ok("r1", {"efficiency": 5})])], "t")
    assert "reliability" not in plain.split("<script")[0].lower()
    assert _data(plain)["rel"] is False and "rel" not in _data(plain)["groups"][0]


@pytest.mark.parametrize("target", [1.0, 0.0, -3.0, 7.5])
def test_a_hostile_reliability_figure_in_the_file_renders_never_crashes(target):
    """A target no K reaches, or a reliability so small that Spearman-Brown's denominator underflows: the page
    renders with the standard target and "no K reaches it", never a ZeroDivisionError."""
    from reward.analysis.report_reliability import run_reliability
    from reward.core.summary import TARGET, k_needed

    tiny = _noisy("tiny", 5e-324, {"efficiency": 5e-324})
    odd = ReportGroup.model_validate(
        {
            **_noisy("odd", 0.5).model_dump(),
            "noise": {**_noisy("odd", 0.5).noise.model_dump(), "reliability_target": target},
        }
    )
    groups = [tiny, odd]
    rel = run_reliability(groups, rubric_view(groups))
    assert rel is not None and rel.target == TARGET
    assert render_report(groups, "t")
    assert k_needed(5e-324) is None and k_needed(0.5, 1.0) is None and k_needed(float("nan")) is None
