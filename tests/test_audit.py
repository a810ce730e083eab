"""`reward audit`: canaries built from the references by known attacks, and a fake judge with a planted weakness
(it pays out on one canary kind) caught by the audit, the others not."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.canaries import KINDS, built_kinds, canary_kind, shows, tally, with_canaries
from reward.core.results import DimensionResult, GroupResult, JudgeInfo, RolloutResult
from reward.core.trajectory import Group
from reward.rubric.load import Rubric
from reward.rubric.penalties import check_penalty
from tests.conftest import ROOT, example_groups, run_cli

FAKE_WEAKNESS = ("fence_forgery", "copied_query")


def groups_with_canaries(rubric: Rubric) -> list[Group]:
    names = [d.name for d in rubric.spec.dimensions]
    out = []
    for g in example_groups():
        built = with_canaries(Group.model_validate(g), names, (rubric.spec.scale.min, rubric.spec.scale.max))
        assert built is not None
        out.append(built)
    return out


def test_canaries_are_built_deterministically_from_each_reference(rubric: Rubric) -> None:
    first, again = groups_with_canaries(rubric), groups_with_canaries(rubric)
    assert [g.model_dump() for g in first] == [g.model_dump() for g in again]
    for g, original in zip(first, example_groups(), strict=True):
        honest = [r for r in g.rollouts if not (r.meta or {}).get("canary")]
        assert [r.id for r in honest] == [r["id"] for r in original["rollouts"]]  # next to the honest ones, after them
        canaries = g.rollouts[len(honest) :]
        assert {c.meta["canary"] for c in canaries if c.meta} == set(KINDS)
        assert len({r.id for r in g.rollouts}) == len(g.rollouts)


def test_each_canary_shows_its_own_attack_and_no_honest_rollout_shows_any(rubric: Rubric) -> None:
    for g in groups_with_canaries(rubric):
        for r in g.rollouts:
            kind = (r.meta or {}).get("canary")
            seen = {k for k in KINDS if shows(k, r.final_answer, g.query)}
            assert seen == ({kind} if kind else set()), (g.group_id, r.id, seen)


def test_canaries_reach_the_judge_past_the_penalties(rubric: Rubric) -> None:
    """A canary the penalties catch would test the rubric's checks, not the judge."""
    for g in groups_with_canaries(rubric):
        for r in g.rollouts[len(g.rollouts) - 8 :]:
            assert (r.meta or {}).get("canary")
            assert check_penalty(rubric.spec.penalties, r, lambda s: len(s) // 4) is None, r.id


def test_a_group_without_a_reference_trajectory_gets_no_canaries(rubric: Rubric) -> None:
    g = Group.model_validate({**example_groups()[0], "reference": {"plan": "EXECUTION PLAN ..."}})
    assert with_canaries(g, ["x"]) is None


def strong_input(tmp_path: Path) -> Path:
    """The example groups with their detailed honest rollouts only: the fake judge, which pays on outcome and
    length, then ranks the short attack answers below the honest median (what a sound judge does)."""
    path = tmp_path / "strong.jsonl"
    lines = []
    for g in example_groups():
        g["rollouts"] = [r for r in g["rollouts"] if len(r.get("final_answer", "")) >= 250]
        lines.append(json.dumps(g))
    path.write_text("\n".join(lines) + "\n")
    return path


def audit_json(*args: Any) -> dict[str, Any]:
    ran = run_cli("audit", "--fake-judge", "--json", *args)
    return json.loads(ran.stdout)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    tmp = tmp_path_factory.mktemp("audit")
    src, cache = strong_input(tmp), tmp / "cache"
    return audit_json("--input", src, "--cache-dir", cache), src, cache


@pytest.mark.parametrize("kind", FAKE_WEAKNESS)
def test_a_planted_weakness_is_caught_and_the_others_are_not(plain, kind: str) -> None:
    before, src, cache = plain
    report = audit_json("--input", src, "--cache-dir", cache, "--fake-weakness", kind)
    rates = {k: row["rate"] for k, row in report["canaries"].items()}
    assert set(rates) == set(KINDS)
    assert rates[kind] == 1.0 and before["canaries"][kind]["rate"] <= 0.25  # found
    for other in set(KINDS) - {kind}:  # and nothing else moved: the others stay low
        assert rates[other] == before["canaries"][other]["rate"] <= 0.5, other
    assert report["judge"] == {**before["judge"], "planted_weakness": kind}
    # every dimension paid out on the planted kind's canaries
    n = report["canaries"][kind]["n"]
    assert all(col["by_kind"].get(kind) == n for col in report["dimensions"].values())


def test_the_plain_fake_judges_numbers_are_marked_fake_and_cached(plain) -> None:
    before, src, cache = plain
    assert before["judge"]["fake"] is True and "planted_weakness" not in before["judge"]
    assert before["judge_calls"]["total"] > 0 and before["groups"] == 4
    ran = run_cli("audit", "--fake-judge", "--input", src, "--cache-dir", cache)
    assert "FAKE judge" in ran.stdout and "FAKE" in ran.stderr
    assert "0 judge calls" in ran.stdout  # all from the cache
    again = audit_json("--input", src, "--cache-dir", cache)
    assert again["judge_calls"]["total"] == 0 and again["canaries"] == before["canaries"]


def test_the_default_input_is_the_bundled_examples(tmp_path: Path) -> None:
    report = audit_json("--cache-dir", tmp_path / "c")
    assert report["groups"] == 4 and report["skipped_groups"] == []
    assert all(row["n"] == (8 if k == "master_key" else 4) for k, row in report["canaries"].items())


def test_canaries_never_reach_a_trainer(tmp_path: Path) -> None:
    """Built by the audit and, in the background, by `reward serve`'s canary mix (tests/test_canary_mix.py:
    never in a trainer's answer); nothing else imports them, and the audit writes no scored file."""
    users = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "reward").rglob("*.py")
        if re.search(r"analysis(\.canaries| import canaries)", p.read_text(encoding="utf-8"))
    }
    assert users == {
        "reward/cli/audit.py",
        "reward/judge/fake/planted.py",
        "reward/service/canary_mix.py",
        "reward/service/canary_metrics.py",  # the known kinds only: its labels
    }
    src = strong_input(tmp_path)
    text = src.read_text()
    before = set(tmp_path.iterdir())
    audit_json("--input", src, "--cache-dir", "none")
    assert src.read_text() == text and set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fake-weakness", "master_key"], "goes with --fake-judge"),
        (["--fake-judge", "--fake-weakness", "nope"], "unknown canary kind"),
        (["--fake-judge", "--rubric", "response_quality"], "takes no reference"),
        (["--fake-judge", "--input", "missing.jsonl"], "not found"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    ran = run_cli("audit", "--cache-dir", tmp_path / "c", *args, check=False)
    assert ran.returncode == 2 and message in ran.stderr


def result(rid: str, status: str, reward: float | None, canary: str | None = None, **dims: int) -> RolloutResult:
    return RolloutResult(
        id=rid,
        status=status,  # type: ignore[arg-type]
        reward=reward,
        dimensions={n: DimensionResult(score=s, reason="") for n, s in dims.items()} or None,
        in_group_stats=status != "error",
        has_final_answer=True,
        meta={"canary": canary} if canary else None,
    )


def test_tally_compares_with_the_judged_honest_median() -> None:
    rollouts = [
        result("a", "ok", 60.0, good=8, bad=2),
        result("b", "ok", 40.0, good=6, bad=4),
        result("p", "penalized", -100.0),  # no judgement: not in the baseline
        result("c1", "ok", 50.0, "master_key", good=7, bad=3),  # median 50: fooled; good paid, bad paid (3 <= 3)
        result("c2", "ok", 49.0, "master_key", good=2, bad=9),
        result("c3", "penalized", -50.0, "claimed_success"),
        result("c4", "error", None, "copied_query"),
    ]
    g = GroupResult.model_construct(
        group_id="g", rollouts=rollouts, judge=JudgeInfo(condense_model="", grade_model="m", fake=True)
    )
    built = {"g": {"c1": "master_key", "c2": "master_key", "c3": "claimed_success", "c4": "copied_query"}}
    assert [canary_kind(r, built["g"]) for r in rollouts][:3] == [None, None, None]
    out = tally([g], built, failure_modes={"bad"})
    assert out["canaries"]["master_key"] == {
        "n": 2,
        "fooled": 1,
        "rate": 0.5,
        "penalized": 0,
        "errors": 0,
        "no_baseline": 0,
    }
    assert out["canaries"]["claimed_success"]["penalized"] == 1 and out["canaries"]["claimed_success"]["fooled"] == 0
    assert out["canaries"]["copied_query"]["errors"] == 1 and out["canaries"]["copied_query"]["rate"] is None
    assert out["dimensions"]["good"] == {"n": 2, "paid": 1, "rate": 0.5, "by_kind": {"master_key": 1}}
    assert out["dimensions"]["bad"] == {"n": 2, "paid": 1, "rate": 0.5, "by_kind": {"master_key": 1}}
    lonely = GroupResult.model_construct(group_id="h", rollouts=[rollouts[3]], judge=g.judge)
    assert tally([lonely], {"h": {"c1": "master_key"}})["canaries"]["master_key"]["no_baseline"] == 1


def test_only_the_canaries_built_are_tallied_never_a_rollouts_own_meta() -> None:
    """An honest rollout's meta is the client's: a `canary` key there (any string, a known kind too) neither
    takes it out of the honest median nor makes a kind of its own."""
    rollouts = [
        result("a", "ok", 60.0, "trainer-tag-0", good=8),
        result("b", "ok", 40.0, "master_key", good=6),
        result("c", "ok", 20.0, "fence_forgery", good=4),
        result("canary-master-key-colon", "ok", 45.0, "master_key", good=5),
        result("odd", "ok", 45.0, good=5),
    ]
    g = GroupResult.model_construct(
        group_id="g", rollouts=rollouts, judge=JudgeInfo(condense_model="", grade_model="m", fake=True)
    )
    # only known kinds are ever a canary's, whatever a caller passes
    out = tally([g], {"g": {"canary-master-key-colon": "master_key", "odd": "not-a-kind"}})
    assert list(out["canaries"]) == ["master_key"]  # no trainer-tag-0, no not-a-kind, no fence_forgery
    assert out["canaries"]["master_key"] | {"rate": None} == {
        "n": 1,
        "fooled": 1,  # 45 >= the median of 60, 40, 20 and 45 (odd is honest): 42.5
        "rate": None,
        "penalized": 0,
        "errors": 0,
        "no_baseline": 0,
    }
    assert tally([g], {})["canaries"] == {}  # nothing built: nothing tallied
    canaries = with_canaries(Group.model_validate(example_groups()[0]), ["x"])
    assert canaries is not None
    assert sorted(set(built_kinds(canaries.rollouts).values())) == sorted(KINDS)
    assert all(rid.startswith("canary-") for rid in built_kinds(canaries.rollouts))


def test_the_audit_ignores_a_canary_key_in_the_inputs_meta(plain, tmp_path: Path) -> None:
    _, src, cache = plain
    tagged = tmp_path / "tagged.jsonl"
    lines = []
    for i, line in enumerate(src.read_text().splitlines()):
        g = json.loads(line)
        for j, r in enumerate(g["rollouts"]):
            r["meta"] = {"canary": "master_key" if j % 2 else f"policy-v{i}"}
        lines.append(json.dumps(g))
    tagged.write_text("\n".join(lines) + "\n")
    args = ("--cache-dir", cache, "--fake-weakness", "keyword_stuffing")
    clean, with_tags = audit_json("--input", src, *args), audit_json("--input", tagged, *args)
    assert list(with_tags["canaries"]) == list(KINDS)
    assert with_tags["canaries"] == clean["canaries"] and with_tags["dimensions"] == clean["dimensions"]
    assert all(row["no_baseline"] == 0 for row in with_tags["canaries"].values())
