"""`reward compare`: Kendall tau-b, advantage sign flips, dimensions, moved rollouts and changes."""

import json
import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reward.analysis.compare import compare_runs, kendall_tau, sign_flips
from reward.analysis.compare_kendall import _sign
from reward.analysis.scored import ScoredGroup, read_scored_lenient
from reward.cli.main import app
from reward.errors import UsageError
from tests.conftest import run_cli


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


def _kendall_tau_pairwise(x, y):
    """The O(n^2) implementation kendall_tau replaced, kept as the oracle of its semantics."""
    concordant = discordant = tied_x = tied_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx = _sign(x[i] - x[j])
            dy = _sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tied_x += 1
            elif dy == 0:
                tied_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + tied_x) * (concordant + discordant + tied_y))
    return None if denom == 0 else (concordant - discordant) / denom


# Few distinct values (many ties), some written with float noise (0.1 * 3 vs 0.3) that must still tie.
_reward = st.builds(
    lambda k, noisy: sum([0.1] * k) if noisy else k / 10, st.integers(0, 6), st.booleans()
) | st.sampled_from([-2.5, 0.0, 7.0, 10.0])


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.tuples(_reward, _reward), max_size=40))
def test_kendall_tau_equals_the_pairwise_definition(pairs):
    x, y = [a for a, _ in pairs], [b for _, b in pairs]
    assert kendall_tau(x, y) == _kendall_tau_pairwise(x, y)  # exactly: the same integer counts


def test_kendall_tau_equals_the_pairwise_definition_seeded():
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(0, 60)
        x = [rng.randint(0, rng.randint(0, 8)) / 3 for _ in range(n)]
        y = [rng.choice([rng.randint(0, 4), rng.random()]) for _ in range(n)]
        assert kendall_tau(x, y) == _kendall_tau_pairwise(x, y)


def test_kendall_tau_is_fast_on_a_large_group():
    rng = random.Random(3)
    x = [rng.randint(0, 50) / 5 for _ in range(20_000)]
    y = [rng.random() if rng.random() < 0.5 else rng.randint(0, 10) for _ in range(20_000)]
    start = time.perf_counter()
    tau = kendall_tau(x, y)
    assert time.perf_counter() - start < 5  # the pairwise count took minutes here
    assert tau is not None and -1 <= tau <= 1
    assert kendall_tau(x, x) == 1.0 and kendall_tau(x, [-v for v in x]) == -1.0


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
    assert [(g.group_id, g.n, g.kendall_tau, g.advantage_sign_flips) for g in c.groups] == [
        ("g1", 3, pytest.approx(-0.5), 1)
    ]
    assert [(ch.id, ch.a, ch.b) for ch in c.changes.penalty] == [("r0", None, "no_commands (10)")]
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
    assert [(ch.group_id, ch.id, ch.a, ch.b) for ch in c.changes.filter] == [("g1", None, "kept", "filtered")]


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
        assert {"group_id", "n", "kendall_tau", "advantage_sign_flips"} <= set(g)
        assert g["kendall_tau"] == 1.0 and g["advantage_sign_flips"] == 0 and g["n"] >= 5
    assert len(data["dimensions"]) == 14
    for d in data["dimensions"].values():
        assert {"mean_a", "mean_b", "sd_a", "sd_b"} <= set(d)
        assert d["mean_a"] == d["mean_b"] and d["sd_a"] == d["sd_b"]
        assert d["tau"] == 1.0 or d["tau"] is None
        assert d["changed"] == 0 and d["contribution"] == 0.0 and not d["reworded"] and d["only_in"] is None
    assert data["moved"] == [] and data["changes"] == {"penalty": [], "error": [], "filter": []}
    assert data["rubric_changes"] == [] and data["reward_change"]["delta"] == 0.0
    assert [r["label"] for r in data["runs"]] == ["A", "B"] and data["runs"][0] == data["runs"][1] | {"label": "A"}
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/svg+xml;base64," in page and "FAKE judge" in page


def test_compare_table_and_bad_lines(scored_examples, tmp_path):
    broken = tmp_path / "b.jsonl"
    broken.write_text(scored_examples.read_text() + '{"group_id": "x"}\nnot json\n')
    res = CliRunner().invoke(app, ["compare", str(scored_examples), str(broken)])
    assert res.exit_code == 1  # compared, but some lines could not be read
    assert "groups, most disagreement first" in res.stdout and "mean τ 1.000" in res.stdout
    groups, problems = read_scored_lenient(broken)
    assert len(groups) == 4
    assert problems[0].endswith(":5: rollouts: Field required") and "invalid JSON" in problems[1]


def test_non_finite_numbers_are_refused_not_averaged(tmp_path):
    path = tmp_path / "nan.jsonl"
    path.write_text('{"group_id": "g", "rollouts": [{"id": "a", "status": "ok", "reward": NaN}]}\n')
    with pytest.raises(UsageError, match=r"rollouts\[0\]\.reward: Input should be a finite number"):
        read_scored_lenient(path)  # no group left: the file is refused, naming the first problem


def _write_run(path, rewards: dict[str, float | None]) -> bytes:
    path.write_text("".join(json.dumps(g) + "\n" for g in _run(rewards, {})))
    return path.read_bytes()


@pytest.mark.parametrize("which", ["a", "b", "a via another spelling", "b via a link"])
def test_compare_refuses_html_over_an_input(tmp_path, which):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    before = {a: _write_run(a, {"r0": 10, "r1": 20}), b: _write_run(b, {"r0": 20, "r1": 10})}
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.jsonl").symlink_to(b)
    target = {
        "a": a,
        "b": b,
        "a via another spelling": tmp_path / "sub" / ".." / "a.jsonl",
        "b via a link": tmp_path / "link.jsonl",
    }[which]
    res = run_cli("compare", a, b, "--html", target, check=False)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --html") and str(target) in lines[0], res.stderr
    assert res.stdout == ""  # refused before comparing anything
    assert {p: p.read_bytes() for p in before} == before
    # another name is written as before
    assert run_cli("compare", a, b, "--html", tmp_path / "cmp.html").returncode == 0
    assert (tmp_path / "cmp.html").read_text().startswith("<!DOCTYPE html>")
