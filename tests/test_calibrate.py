"""Labels and agreement: `meta` passed through untouched (never shown to the judge), `reward calibrate`."""

import asyncio
import json

import pytest
from typer.testing import CliRunner

from reward.analysis.calibrate import OrderError, calibrate, label_of, parse_order
from reward.analysis.scored import ScoredGroup
from reward.cli.main import app
from reward.core.trajectory import Group
from reward.judge.base import Usage
from tests.conftest import group, rollout

ORDER = "reference>good>vague=missed_error>hallucinated"


def test_parse_order():
    assert parse_order(ORDER) == {"reference": 0, "good": 1, "vague": 2, "missed_error": 2, "hallucinated": 3}
    for bad in ("good", "good>>bad", "a>b>a", "a=>b"):
        with pytest.raises(OrderError):
            parse_order(bad)


def test_label_of_paths():
    rec = {"status": "ok", "meta": {"kind": "good", "n": 3, "deep": {"x": True}, "list": [1]}}
    assert label_of(rec, "meta.kind") == "good"
    assert label_of(rec, "meta.n") == "3"
    assert label_of(rec, "meta.deep.x") == "True"
    assert label_of(rec, "status") == "ok"
    assert label_of(rec, "meta.list") is None and label_of(rec, "meta.missing") is None
    assert label_of({"meta": None}, "meta.kind") is None


def _g(gid: str, rows: list[tuple[str | None, float | None]]) -> dict:
    rollouts = []
    for i, (kind, reward) in enumerate(rows):
        rollouts.append(
            {
                "id": f"r{i}",
                "status": "ok" if reward is not None else "error",
                "reward": reward,
                "meta": None if kind is None else {"kind": kind},
            }
        )
    return {"group_id": gid, "rollouts": rollouts}


FIXTURE = [
    _g(
        "g1",
        [
            ("reference", 90),
            ("good", 70),
            ("vague", 50),
            ("missed_error", 50),
            ("hallucinated", 60),
            ("good", None),  # no reward (judge error): left out
            (None, 10),  # no label: left out
            ("other", 10),  # not in the order: left out
        ],
    ),
    _g("g2", [("good", 40), ("hallucinated", 40)]),  # a tie counts half
    _g("g3", [("reference", 0)]),  # never compared with other groups
]


def test_calibrate_hand_computed():
    result, skipped = calibrate([ScoredGroup.model_validate(g) for g in FIXTURE], "meta.kind", parse_order(ORDER))
    # g1: 10 label pairs minus vague=missed_error -> 9; wrong: vague<hallucinated, missed_error<hallucinated -> 7
    # g2: good = hallucinated -> 0.5.  (7 + 0.5) / 10
    assert (result.pairs, result.accuracy, skipped) == (10, 0.75, 3)
    assert {k: (v.pairs, v.accuracy) for k, v in result.by_pair.items()} == {
        "reference>good": (1, 1.0),
        "reference>vague": (1, 1.0),
        "reference>missed_error": (1, 1.0),
        "reference>hallucinated": (1, 1.0),
        "good>vague": (1, 1.0),
        "good>missed_error": (1, 1.0),
        "good>hallucinated": (2, 0.75),
        "vague>hallucinated": (1, 0.0),
        "missed_error>hallucinated": (1, 0.0),
    }
    assert list(result.by_pair)[:2] == ["reference>good", "reference>vague"]  # best label first


def test_calibrate_cli_json_shape(tmp_path):
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in FIXTURE))
    res = CliRunner().invoke(app, ["calibrate", str(path), "--label", "meta.kind", "--order", ORDER, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) == {"pairs", "accuracy", "ci95", "by_pair", "by_dimension", "misordered"}
    assert data["pairs"] == 10 and data["accuracy"] == 0.75
    assert data["by_pair"]["good>hallucinated"] == {"pairs": 2, "accuracy": 0.75}
    table = CliRunner().invoke(app, ["calibrate", str(path), "--order", ORDER])
    assert "75.0%" in table.stdout and "3 rollouts left out" in table.stdout


def test_calibrate_no_pairs_is_null_accuracy(tmp_path):
    result, _ = calibrate([ScoredGroup.model_validate(FIXTURE[2])], "meta.kind", parse_order(ORDER))
    assert (result.pairs, result.accuracy, result.by_pair) == (0, None, {})


def _d(**scores: float) -> dict:
    return {name: {"score": v, "reason": ""} for name, v in scores.items()}


def test_per_dimension_accuracy_misordered_pairs_and_what_decided_them(rubric):
    """Directions come from the rubric: a failure-mode dimension orders a pair right when it is LOWER."""
    rows = [
        {"id": "a", "status": "ok", "reward": 80.0, "meta": {"kind": "good"},
         "dimensions": _d(completeness=9, hallucinated_results=1)},
        {"id": "b", "status": "ok", "reward": 90.0, "meta": {"kind": "hallucinated"},
         "dimensions": _d(completeness=10, hallucinated_results=9)},  # misordered: its reward is higher
        {"id": "c", "status": "penalized", "reward": -100.0, "penalty": "no_commands", "meta": {"kind": "good"}},
        {"id": "d", "status": "ok", "reward": 10.0, "meta": {"kind": "hallucinated"},
         "dimensions": _d(completeness=5, hallucinated_results=5)},
    ]  # fmt: skip
    g = ScoredGroup.model_validate({"group_id": "g", "rollouts": rows})
    result, _ = calibrate([g], "meta.kind", parse_order("good>hallucinated"), rubric)
    # pairs: (a,b) wrong, (a,d) right, (c,b) wrong, (c,d) wrong (c is penalised, -100): 1 of 4
    assert result.pairs == 4 and result.accuracy == 0.25
    by = {(m.better.id, m.worse.id): m.decided_by for m in result.misordered}
    assert by[("a", "b")] == "completeness"  # hallucinated_results favours a (lower is better); completeness b
    assert by[("c", "b")] == "penalty no_commands" and by[("c", "d")] == "penalty no_commands"
    # per dimension, over the pairs where both have scores: only (a, b) and (a, d)
    assert result.by_dimension["hallucinated_results"].pairs == 2
    assert result.by_dimension["hallucinated_results"].accuracy == 1.0  # lower is better: a (1) < b (9), d (5)
    assert result.by_dimension["completeness"].accuracy == 0.5  # (a, b) wrong, (a, d) right


def test_bootstrap_interval_over_groups_is_seeded_and_brackets_the_estimate():
    groups = [
        ScoredGroup.model_validate(_g(f"g{i}", [("good", 10 + (i % 3)), ("hallucinated", 11)])) for i in range(12)
    ]
    a, _ = calibrate(groups, "meta.kind", parse_order("good>hallucinated"))
    b, _ = calibrate(groups, "meta.kind", parse_order("good>hallucinated"))
    assert a.ci95 == b.ci95 and a.ci95 is not None
    assert a.ci95[0] <= (a.accuracy or 0) <= a.ci95[1] and a.ci95[0] < a.ci95[1]
    one, _ = calibrate(groups[:1], "meta.kind", parse_order("good>hallucinated"))
    assert one.ci95 is None  # one group: no interval can be drawn from groups


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--order", "good>vauge"], "--order names 'vauge', which no rollout's meta.kind has (values seen:"),
        (["--label", "meta.knd", "--order", ORDER], "--label meta.knd: no rollout has a value at this path (meta keys"),
        (["--order", "reference>good", "--only", "g2,g3"], "nothing to measure"),  # no group holds both labels
    ],
)
def test_calibrate_refuses_what_would_measure_nothing(tmp_path, args, message):
    from tests.conftest import run_cli

    only = args[args.index("--only") + 1].split(",") if "--only" in args else None
    args = args[: args.index("--only")] if only else args
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in FIXTURE if only is None or g["group_id"] in only))
    ran = run_cli("calibrate", str(path), *args, check=False)
    assert ran.returncode == 2 and message in " ".join(ran.stderr.split()), ran.stderr


def test_meta_passed_through_untouched_and_never_shown_to_the_judge(make_scorer, fake_judge):
    meta = {"kind": "label-zq81", "SECRET_LABEL": "<b>ref</b>", "nested": {"a": [1, 2.5, None, "ü"]}}
    g = group(rollouts=[rollout("a", meta=meta), rollout("b")])
    result = asyncio.run(make_scorer().score_group(Group.model_validate(g), Usage()))
    assert result.rollouts[0].meta == meta and result.rollouts[1].meta is None
    assert json.loads(result.model_dump_json())["rollouts"][0]["meta"] == meta
    prompts = json.dumps([c["messages"] for c in fake_judge.state.calls])
    assert fake_judge.state.calls and "SECRET_LABEL" not in prompts and "zq81" not in prompts


def test_meta_must_be_an_object():
    with pytest.raises(ValueError, match="meta"):
        Group.model_validate(group(rollouts=[rollout("a", meta=["not", "an", "object"])]))


def test_bundled_calibration_set_is_valid_and_built_from_the_captures():
    import importlib.util

    from tests.conftest import ROOT

    here = ROOT / "examples" / "calibration"
    spec = importlib.util.spec_from_file_location("calibration_build", here / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    lines = [json.loads(line) for line in (here / "calibration.jsonl").read_text().splitlines() if line.strip()]
    assert lines == build.build()  # the committed file is what build.py makes from captures.json
    ranks = parse_order(build.ORDER)
    captured = {(c["command"], c["exit_code"], c["output"]) for c in json.loads((here / "captures.json").read_text())}
    ecosystems = set()
    for line in lines:
        g = Group.model_validate(line)
        assert sorted(r.meta["kind"] for r in g.rollouts if r.meta) == sorted(ranks)
        for r in g.rollouts:
            assert r.meta is not None
            ecosystems.add(r.meta["ecosystem"])
            assert all((s.command, s.exit_code, s.output) in captured for s in r.steps)  # every output is real
    assert len(lines) == 5 and len(ecosystems) == 5
