"""`reward report`: one self-contained HTML page, checked in a real headless browser with no network."""

import base64
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reward.analysis.report import render_report
from reward.analysis.scored import ScoredGroup
from reward.cli.main import app
from reward.errors import UsageError
from tests.conftest import EXAMPLES, ROOT, cli_env
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
    # the page's own two script elements (its data, its code) and no other; nothing from the file is markup
    assert re.findall(r"<script[^>]*>", html) == ['<script type="application/json" id="report-data">', "<script>"]
    assert "alert(1)</script>" not in html and 'evil.example/x"' not in html.replace("&#34;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the error message, in the errors table
    data = html.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in data and "<" not in data
    assert json.loads(data)["rollouts"][0]["rs"][0].startswith("<script>alert(1)</script>")  # read back intact


def test_the_page_allows_its_own_script_by_hash_and_nothing_else():
    import hashlib

    html = render_report([ScoredGroup.model_validate(_plain_group("g1"))], "t")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    code = html.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert html_lib.unescape(csp) == (
        f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    )
    # it loads nothing and writes no markup: values are set as text only
    assert (
        re.findall(r"fetch\(|XMLHttpRequest|\.innerHTML\s*=|outerHTML|insertAdjacentHTML|document\.write", code) == []
    )


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
    data = json.loads(html.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    # the plan graded with its rollout ("b" has none), the reference once, with the group
    assert [r.get("plan") for r in data["rollouts"]] == [result.plans["a"], None]
    assert data["groups"][0]["ref"] == result.reference_plan
    assert result.reference_plan not in json.dumps(data["rollouts"])


# Each is a mathtext error (or markup) were `$...$` parsed: drawn in a plot, each must be shown as typed.
DOLLARS = ["a$b$c", r"$\frac{1}{0}$", r"$\foo$", "x$_$y", "$^^$"]


def _plain_group(gid: str, rubric: str = "execution_subagent", rid: str = "r0", dim: str = "command_correctness"):
    return {
        "group_id": gid,
        "rubric": rubric,
        "judge": {"condense_model": "m", "grade_model": "m", "fake": True},
        "rollouts": [
            {"id": rid, "status": "ok", "reward": 40.0, "dimensions": {dim: {"score": 4, "reason": "fine"}}},
            {"id": f"{rid}-2", "status": "penalized", "reward": -10.0, "penalty": DOLLARS[1]},
        ],
    }


def _write_groups(path, groups) -> bytes:
    path.write_text("".join(json.dumps(g) + "\n" for g in groups))
    return path.read_bytes()


def _svgs(page: str) -> list[str]:
    uris = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    return [base64.b64decode(u).decode() for u in uris]


def test_report_draws_dollar_signs_literally_not_as_mathtext(tmp_path):
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties, findfont, get_font

    parse_math = rcParams["text.parse_math"]
    ids = zip(DOLLARS, DOLLARS[::-1], DOLLARS[2:] + DOLLARS[:2], strict=True)
    groups = [_plain_group(g, rid=r, dim=d) for g, r, d in ids]
    scored = tmp_path / "dollars.jsonl"
    _write_groups(scored, groups)
    page = tmp_path / "r.html"
    res = reward("report", scored, "-o", page, check=False)
    assert res.returncode == 0, res.stderr
    text = page.read_text()
    for s in DOLLARS:
        assert html_lib.escape(s) in text
    # the `$` glyph is drawn (mathtext would have consumed it) in the dimension, group and rate plots
    font = get_font(findfont(FontProperties()))
    dollar = f'id="{font.postscript_name}-{font.get_char_index(ord("$")):x}"'
    svgs = _svgs(text)
    assert len(svgs) == 4 and all(dollar in svgs[i] for i in (1, 2, 3))
    assert rcParams["text.parse_math"] == parse_math  # the caller's matplotlib settings are left alone
    from reward.analysis import compare_plots

    assert (
        dollar in _svgs(f'src="{compare_plots.dimension_shift(DOLLARS, {"A": [1.0] * 5, "B": [2.0] * 5})}"')[0]
    )  # compare --html


def _report_in_a_process(scored, page, *extra, cwd):
    """`reward report` in a process of its own: a report that blocks fails the test instead of hanging it."""
    cmd = [sys.executable, "-m", "reward", "report", str(scored), "-o", str(page), *map(str, extra)]
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reward report blocked (did it open a FIFO named by the scored file?)")
    assert proc.returncode == 0, proc.stderr
    return proc, time.monotonic() - start


@pytest.mark.parametrize("spelling", ["absolute path", "bare name in the working directory"])
def test_report_never_opens_a_rubric_path_from_the_scored_file(tmp_path, spelling):
    fifo = tmp_path / "evil_rubric"
    os.mkfifo(fifo)
    name = str(fifo) if spelling == "absolute path" else fifo.name
    scored = tmp_path / "s.jsonl"
    _write_groups(scored, [_plain_group("g1", rubric=name)])
    page = tmp_path / "r.html"
    _report_in_a_process(scored, page, cwd=tmp_path)
    assert "dimension groups from</th><td>not known" in page.read_text()
    with pytest.raises(OSError):  # no reader has the FIFO open (nor left it so)
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def _edited_rubric(tmp_path):
    """A copy of the bundled rubric under another name, in a folder of its own (templates are built in)."""
    src = (ROOT / "rubrics" / "execution_subagent.yaml").read_text()
    path = tmp_path / "mine" / "edited.yaml"
    path.parent.mkdir()
    path.write_text(src.replace("name: execution_subagent", "name: edited_rubric", 1))
    return path


def test_report_takes_the_rubric_by_name_from_the_file_and_a_path_only_from_the_user(tmp_path):
    edited = _edited_rubric(tmp_path)
    scored = tmp_path / "s.jsonl"
    page = tmp_path / "r.html"
    # a path in the file, even to a real rubric, is ignored: the report renders without rubric info
    _write_groups(scored, [_plain_group("g1", rubric=str(edited))])
    reward("report", scored, "-o", page)
    assert "dimension groups from</th><td>not known" in page.read_text()
    # ... and is used when the user gives it
    reward("report", scored, "-o", page, "--rubric", edited)
    assert "dimension groups from</th><td>edited_rubric @ " in page.read_text()
    # a bundled rubric's name is looked up as before
    _write_groups(scored, [_plain_group("g1")])
    reward("report", scored, "-o", page)
    assert "dimension groups from</th><td>execution_subagent @ " in page.read_text()
    res = reward("report", scored, "-o", page, "--rubric", "no_such_rubric", check=False)
    assert res.returncode == 2 and "no_such_rubric" in res.stderr


@pytest.mark.parametrize(
    "name",
    ["../rubrics/execution_subagent", "rubrics/execution_subagent", "rubrics\\execution_subagent", ".x", "a b", ""],
)
def test_rubric_named_refuses_anything_that_is_not_a_plain_name(name):
    from reward.analysis.report import rubric_named

    assert rubric_named(name) is None
    assert rubric_named("execution_subagent") is not None


@pytest.mark.parametrize("spelling", ["same", "another spelling", "a link"])
def test_report_refuses_to_write_over_its_input(tmp_path, spelling):
    scored = tmp_path / "s.jsonl"
    before = _write_groups(scored, [_plain_group("g1")])
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.html").symlink_to(scored)
    output = {"same": scored, "another spelling": tmp_path / "sub" / ".." / "s.jsonl", "a link": tmp_path / "link.html"}
    res = reward("report", scored, "-o", output[spelling], check=False)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --output") and str(output[spelling]) in lines[0]
    assert scored.read_bytes() == before and res.stdout == ""
