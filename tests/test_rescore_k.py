"""`reward rescore` takes K from the file: a K = 3 file rescored with no flag, another K refused naming both."""

from __future__ import annotations

import pytest

from reward.analysis.rescore import RescoreError, rescore_group
from reward.rubric.load import load_rubric
from tests.conftest import EXAMPLES, cli_env, read_jsonl
from tests.conftest import run_cli as reward
from tests.test_rubric_data import run


@pytest.fixture(scope="module")
def k3(tmp_path_factory, fake_judge_server):
    """The examples scored with K = 3 and with K = 2 condensed anew, through the CLI (the HTTP fake judge)."""
    tmp = tmp_path_factory.mktemp("k3")
    env = cli_env(fake_judge_server, tmp / "cache")
    reward("score", EXAMPLES, "-o", tmp / "k3.jsonl", "--samples", "3", "--no-progress", env=env)
    args = ("--samples", "2", "--resample-condense", "--no-progress")
    reward("score", EXAMPLES, "-o", tmp / "k2r.jsonl", *args, env=env)
    return tmp, env


def test_a_k3_file_rescores_with_no_samples_flag(k3, tmp_path):
    tmp, env = k3
    ran = reward("rescore", tmp / "k3.jsonl", "-r", "execution_subagent", "-o", tmp_path / "re.jsonl", env=env)
    assert "0 judge calls" in ran.stdout
    saved, rescored = read_jsonl(tmp / "k3.jsonl"), read_jsonl(tmp_path / "re.jsonl")
    assert [g["basis"]["samples"] for g in rescored] == [3] * len(saved)
    assert rescored == saved  # the same rubric and K: exactly what the paid run wrote
    # the file's K wins over REWARD_JUDGE_SAMPLES too (it says how a new run would sample, not this file)
    env2 = {**env, "REWARD_JUDGE_SAMPLES": "5"}
    reward("rescore", tmp / "k3.jsonl", "-r", "execution_subagent", "-o", tmp_path / "env.jsonl", env=env2)
    assert read_jsonl(tmp_path / "env.jsonl") == saved


def test_an_explicit_other_k_is_refused_naming_both(k3, tmp_path):
    tmp, _ = k3
    out = tmp_path / "re.jsonl"
    bad = reward("rescore", tmp / "k3.jsonl", "-r", "execution_subagent", "-o", out, "--samples", "2", check=False)
    assert bad.returncode == 2 and not out.exists()
    assert "graded with 3 sample(s) per rollout, not the 2 asked for" in bad.stderr
    assert "leave --samples out" in bad.stderr
    same = reward("rescore", tmp / "k3.jsonl", "-r", "execution_subagent", "-o", out, "--samples", "3", check=False)
    assert same.returncode == 0  # the file's own K is fine as a check


def test_resample_condense_comes_from_the_file_too(k3, tmp_path):
    tmp, _ = k3
    out = tmp_path / "re.jsonl"
    reward("rescore", tmp / "k2r.jsonl", "-r", "execution_subagent", "-o", out)
    assert {(g["basis"]["samples"], g["basis"]["resample_condense"]) for g in read_jsonl(out)} == {(2, True)}
    bad = reward(
        "rescore", tmp / "k2r.jsonl", "-r", "execution_subagent", "-o", tmp_path / "x.jsonl", "--no-resample-condense",
        check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "resample_condense True, not False" in bad.stderr


def test_rescore_group_uses_each_groups_own_k(make_local_scorer):
    rubric = load_rubric("execution_subagent")
    k1, k2 = run(make_local_scorer())[0], run(make_local_scorer(samples=2))[0]
    assert rescore_group(k1, rubric).basis.samples == 1
    again = rescore_group(k2, rubric)
    assert again.basis.samples == 2 and again.model_dump_json() == k2.model_dump_json()
    with pytest.raises(RescoreError, match="graded with 2 sample"):
        rescore_group(k2, rubric, samples=1)
    with pytest.raises(RescoreError, match="older version"):
        rescore_group(k2.model_copy(update={"basis": None}), rubric)
