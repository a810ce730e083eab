"""`reward report`: one self-contained HTML page, checked in a real headless browser with no network."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reward.analysis.report import render_report
from reward.analysis.scored import ScoredGroup
from reward.cli.main import app
from reward.errors import UsageError
from tests.conftest import EXAMPLES, cli_env
from tests.conftest import run_cli as reward

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def scored_k2(tmp_path_factory, fake_judge_server):
    """The bundled examples scored with 2 judge samples by the fake judge, as a user would."""
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "scored.jsonl"
    reward("score", EXAMPLES, "-o", out, "--no-progress", "--samples", "2", env=cli_env(fake_judge_server, tmp / "c"))
    return out


def _screenshot(page, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("REWARD_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is required here (REWARD_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    png = tmp_path / "shot.png"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2400",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    return Image.open(png).convert("RGB")


@pytest.mark.slow
def test_report_renders_offline_in_headless_chromium(scored_k2, tmp_path):
    page = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["report", str(scored_k2), "-o", str(page)])
    assert res.exit_code == 0, res.output
    html = page.read_text()
    # self-contained: every src/href is a data: URI, and the page forbids any other load
    assert re.findall(r'(?:src|href)="(?!data:)', html) == []
    assert "default-src 'none'" in html and html.count("data:image/svg+xml;base64,") == 4
    assert "group SNR" in html and "FAKE judge" in html
    img = _screenshot(page, tmp_path)
    pixels = np.asarray(img, dtype=np.int32).reshape(-1, 3)
    ink = int((pixels.sum(axis=1) < 720).sum())  # not white
    # the histogram's bars and the group dots, drawn from the SVG <img>s
    blue = int((np.abs(pixels - np.array([0x4C, 0x72, 0xB0])).max(axis=1) <= 40).sum())
    assert ink > 0.02 * len(pixels), f"page looks blank: {ink} of {len(pixels)} pixels inked"
    assert blue > 2000, f"the plots did not render: {blue} plot-blue pixels"


def _hostile_group() -> dict:
    evil = '<script>alert(1)</script><img src="http://evil.example/x">'
    return {
        "group_id": f"g{evil}",
        "rubric": "execution_subagent",
        "judge": {"condense_model": "m", "grade_model": "m", "fake": False},
        "rollouts": [
            {
                "id": f"r{evil}",
                "status": "ok",
                "reward": 12.5,
                "dimensions": {"command_correctness": {"score": 3, "reason": evil}},
                "meta": {"kind": evil},
            },
            {"id": "e", "status": "error", "reward": None, "error": {"category": "judge_timeout", "message": evil}},
        ],
    }


def test_report_escapes_everything_from_the_rollouts():
    html = render_report([ScoredGroup.model_validate(_hostile_group())], "t")
    assert "<script" not in html and 'evil.example/x"' not in html.replace("&#34;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_of_errors_only_and_empty_files(tmp_path):
    g = _hostile_group()
    g["rollouts"] = [g["rollouts"][1]]
    path = tmp_path / "errors.jsonl"
    path.write_text(json.dumps(g) + "\n")
    res = CliRunner().invoke(app, ["report", str(path), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert "judge_timeout" in (tmp_path / "r.html").read_text()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n")
    res = CliRunner().invoke(app, ["report", str(empty), "-o", str(tmp_path / "x.html")])
    assert isinstance(res.exception, UsageError) and not (tmp_path / "x.html").exists()


def test_keep_plans_writes_the_plans_the_grader_saw_and_the_report_shows_them(make_scorer, fake_judge):
    import asyncio

    from reward.core.trajectory import Group
    from reward.judge.base import Usage
    from tests.conftest import group, rollout

    g = Group.model_validate(group(rollouts=[rollout("a"), rollout("b", steps=[])]))
    plain = asyncio.run(make_scorer().score_group(g, Usage()))
    assert plain.reference_plan is None and plain.plans is None  # off by default
    scorer = make_scorer()
    scorer.keep_plans = True
    result = asyncio.run(scorer.score_group(g, Usage()))
    assert result.reference_plan is not None and result.reference_plan.startswith("EXECUTION PLAN")
    assert result.plans is not None and list(result.plans) == ["a"]  # "b" was penalised: never condensed
    assert "pytest -q" in result.plans["a"]
    html = render_report([ScoredGroup.model_validate(json.loads(result.model_dump_json()))], "t")
    # "a" is listed among both the lowest and the highest of two rollouts; "b" has no plan
    assert html.count("<summary>plan graded</summary>") == 2 and "reference plan" in html
