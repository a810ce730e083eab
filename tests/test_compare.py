"""`reward compare`: Kendall tau-b, advantage sign flips, dimensions, moved rollouts and changes."""

import json

import pytest
from typer.testing import CliRunner

from reward.analysis.compare import compare_runs, kendall_tau, sign_flips
from reward.analysis.scored import ScoredGroup, read_scored_lenient
from reward.cli.main import app


def test_kendall_tau_hand_computed_with_ties():
    # pairs (i<j) of x=[1,2,2,3], y=[1,3,2,2]: 01 C, 02 C, 03 C, 12 tied in x only, 13 D, 23 tied in y only
    # tau_b = (3 - 1) / sqrt((3 + 1 + 1) * (3 + 1 + 1)) = 0.4
    assert kendall_tau([1, 2, 2, 3], [1, 3, 2, 2]) == pytest.approx(0.4)


def test_kendall_tau_known_value_and_edges():
    # the example of scipy.stats.kendalltau's documentation: tau-b = -0.47140452079103173
    assert kendall_tau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) == pytest.approx(-0.47140452079103173)
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert kendall_tau([5.0], [5.0]) is None  # one item: undefined
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None  # all tied in one run: undefined
    assert kendall_tau([0.1 + 0.2, 0.3], [1, 2]) is None  # float noise is a tie, not an order
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1])


def test_sign_flips_hand_computed():
    # r1 goes + -> - (a flip); r2 goes + -> 0 and r3 has no advantage in B: neither is a flip
    assert sign_flips([-1.2, 0.5, 0.3, 0.4, -0.1], [-1.0, -0.2, 0.0, None, 0.7]) == 2


def _dims(p: int, reason: str = "ok") -> dict:
    return {"command_correctness": {"score": p, "reason": reason}, "missed_errors": {"score": 10 - p, "reason": reason}}


def _run(rewards: dict[str, float | None], advantages: dict[str, float | None], **extra: dict) -> list[dict]:
    rollouts = []
    for rid, reward in rewards.items():
        r = {
            "id": rid,
            "status": "ok" if reward is not None else "error",
            "reward": reward,
            "advantage": advantages.get(rid),
            "dimensions": _dims(int(reward or 0) // 10, f"reason {rid}") if reward is not None else None,
            "error": None if reward is not None else {"category": "judge_timeout", "message": "x"},
        }
        r.update(extra.get(rid, {}))
        rollouts.append(r)
    return [{"group_id": "g1", "rollouts": rollouts, "filtered": False}]


def test_compare_runs_hand_computed():
    a = _run({"r0": 10, "r1": 20, "r2": 20, "r3": 30, "r4": 50}, {"r0": -1.0, "r1": 0.5, "r2": 0.3, "r3": 0.4})
    b = _run(
        {"r0": 10, "r1": 30, "r2": 20, "r3": 20, "r4": None},
        {"r0": -1.0, "r1": -0.2, "r2": 0.0, "r3": 0.9},
        r0={"status": "penalized", "penalty": "no_commands"},
    )
    c = compare_runs([ScoredGroup.model_validate(g) for g in a], [ScoredGroup.model_validate(g) for g in b])
    # graded in both: r1, r2, r3 (r0 is penalised in B, r4 errored in B): A [20, 20, 30], B [30, 20, 20]
    # pairs: 12 tied in A only, 13 D, 23 tied in B only -> tau_b = -1 / sqrt(2 * 2) = -0.5
    assert [g.model_dump() for g in c.groups] == [
        {"group_id": "g1", "n": 3, "kendall_tau": pytest.approx(-0.5), "advantage_sign_flips": 1}
    ]
    assert [(ch.id, ch.a, ch.b) for ch in c.changes.penalty] == [("r0", None, "no_commands")]
    assert [(ch.id, ch.a, ch.b) for ch in c.changes.error] == [("r4", None, "judge_timeout")]
    top = c.moved[0]
    assert (top.id, top.reward_a, top.reward_b, top.dimension) == ("r1", 20, 30, "command_correctness")
    assert (top.score_a, top.score_b, top.reason_a, top.reason_b) == (2, 3, "reason r1", "reason r1")
    # A graded: r0..r4 -> command_correctness 1,2,2,3,5; B graded: r1,r2,r3 -> 3,2,2
    d = c.dimensions["command_correctness"]
    assert d.mean_a == pytest.approx(2.6) and d.mean_b == pytest.approx(7 / 3)
    assert d.sd_a == pytest.approx(1.3564659966250536) and d.sd_b == pytest.approx(0.4714045207910317)


def test_compare_unmatched_and_filter_changes():
    a = _run({"r0": 10, "r1": 20}, {})
    b = _run({"r1": 20, "r9": 30}, {})
    b[0]["filtered"] = True
    c = compare_runs([ScoredGroup.model_validate(g) for g in a], [ScoredGroup.model_validate(g) for g in b])
    assert (c.unmatched.only_a, c.unmatched.only_b) == (1, 1)
    assert c.groups[0].n == 1 and c.groups[0].kendall_tau is None
    assert [(ch.group_id, ch.id, ch.a, ch.b) for ch in c.changes.filter] == [("g1", None, "False", "True")]


@pytest.fixture(scope="module")
def scored_examples(tmp_path_factory, fake_judge_server):
    """The bundled examples scored with the fake judge, over HTTP, as a user would."""
    from tests.conftest import EXAMPLES, cli_env
    from tests.conftest import run_cli as reward

    tmp = tmp_path_factory.mktemp("scored")
    out = tmp / "scored.jsonl"
    reward("score", EXAMPLES, "-o", out, "--no-progress", env=cli_env(fake_judge_server, tmp / "cache"))
    return out


def test_compare_run_with_itself_tau_one_everywhere(scored_examples, tmp_path):
    html = tmp_path / "cmp.html"
    res = CliRunner().invoke(
        app, ["compare", str(scored_examples), str(scored_examples), "--json", "--html", str(html)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["groups"]) == 4
    for g in data["groups"]:
        assert set(g) == {"group_id", "n", "kendall_tau", "advantage_sign_flips"}
        assert g["kendall_tau"] == 1.0 and g["advantage_sign_flips"] == 0 and g["n"] >= 5
    assert len(data["dimensions"]) == 14
    for d in data["dimensions"].values():
        assert set(d) == {"mean_a", "mean_b", "sd_a", "sd_b"}
        assert d["mean_a"] == d["mean_b"] and d["sd_a"] == d["sd_b"]
    assert data["moved"] == [] and data["changes"] == {"penalty": [], "error": [], "filter": []}
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/svg+xml;base64," in page and "FAKE judge" in page


def test_compare_table_and_bad_lines(scored_examples, tmp_path):
    broken = tmp_path / "b.jsonl"
    broken.write_text(scored_examples.read_text() + '{"group_id": "x"}\nnot json\n')
    res = CliRunner().invoke(app, ["compare", str(scored_examples), str(broken)])
    assert res.exit_code == 1  # compared, but some lines could not be read
    assert "Kendall τ" in res.stdout and "mean τ 1.000" in res.stdout
    groups, problems = read_scored_lenient(broken)
    assert len(groups) == 4
    assert problems[0].endswith(":5: rollouts: Field required") and "invalid JSON" in problems[1]


def test_non_finite_numbers_are_refused_not_averaged(tmp_path):
    path = tmp_path / "nan.jsonl"
    path.write_text('{"group_id": "g", "rollouts": [{"id": "a", "status": "ok", "reward": NaN}]}\n')
    groups, problems = read_scored_lenient(path)
    assert groups == [] and "rollouts[0].reward: Input should be a finite number" in problems[0]
