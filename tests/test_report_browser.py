"""`reward report` driven in headless Chromium: search, sort and filter on a 1,000-rollout run.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: fd 3 in, fd 4 out, one JSON
message per NUL), so the test needs no driver package and no port. Text is typed with Input.insertText, as a
keyboard would; selects are changed as a user's pick changes them. What the page shows is read from the DOM.

`python -m tests.test_report_browser 1000 10000` measures the page's size and load time for such runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from reward.analysis.report import render_report
from reward.analysis.report_data import read_report_groups, rubric_view
from reward.analysis.report_rows import dimension_order, weakest_first
from reward.rubric.load import load_rubric

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RUBRIC = load_rubric("execution_subagent")
DIMS = [(d.name, d.group) for d in RUBRIC.spec.dimensions]
WORDS = ("the", "command", "ran", "tests", "passed", "failed", "output", "showed", "error", "missing", "file", "step")


def synth_groups(n_rollouts: int, per_group: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """A scored run as `reward score --include-plans` writes it: unique reasons and plans of realistic length,
    penalties (10%), judge errors with object reprs (5%), meta labels, token counts."""
    rng = random.Random(seed)
    groups = []
    for gi in range(n_rollouts // per_group):
        rollouts, plans = [], {}
        for k in range(per_group):
            i = gi * per_group + k
            rid = f"r{i:05d}"
            base: dict[str, Any] = {"id": rid, "meta": {"kind": ["good", "vague", "bad"][i % 3], "i": i}}
            base["num_tokens"] = 800 + (i * 37) % 5000
            base["has_final_answer"] = True
            if i % 20 == 7:
                msg = f"Connection error: <ssl.SSLContext object at 0x7f{rng.getrandbits(40):010x}> handshake"
                rollouts.append(
                    {
                        **base,
                        "status": "error",
                        "reward": None,
                        "error": {"category": "judge_unavailable", "message": msg},
                    }
                )
                continue
            if i % 10 == 3:
                kind = "no_commands" if i % 20 == 3 else "missing_final_answer"
                rollouts.append(
                    {
                        **base,
                        "status": "penalized",
                        "reward": -100.0 if kind != "no_commands" else -50.0,
                        "penalty": kind,
                        "penalty_detail": f"{kind} detail for {rid}",
                    }
                )
                continue
            dims = {}
            for name, _ in DIMS:
                words = " ".join(rng.choice(WORDS) for _ in range(25))
                dims[name] = {"score": rng.randint(0, 10), "reason": f"{name} of {rid}: {words}"}
            plans[rid] = "EXECUTION PLAN\n" + "\n".join(
                f"{s}. run step {s} of {rid}: " + " ".join(rng.choice(WORDS) for _ in range(18)) for s in range(1, 9)
            )
            rollouts.append(
                {
                    **base,
                    "status": "ok",
                    "reward": round(rng.uniform(-40, 95), 6) - 1e-12,
                    "dimensions": dims,
                    "advantage": rng.uniform(-2, 2),
                }
            )
        rewards = [r["reward"] for r in rollouts if r["reward"] is not None]
        mean = sum(rewards) / len(rewards)
        std = (sum((x - mean) ** 2 for x in rewards) / len(rewards)) ** 0.5
        groups.append({
            "group_id": f"g{gi:04d}", "rubric": "execution_subagent", "rubric_version": RUBRIC.version,
            "judge": {"condense_model": "m", "grade_model": "m", "fake": False}, "mean": mean, "std": std,
            "filtered": gi % 25 == 0, "filter_reason": "reward std below min_std" if gi % 25 == 0 else None,
            "rollouts": rollouts, "reference_plan": f"EXECUTION PLAN (reference of g{gi:04d})\n1. run the suite", "plans": plans,
        })  # fmt: skip
    return groups


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe: one page, commands answered in order."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def fds() -> None:  # the protocol's fixed descriptors in the child
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        assert CHROMIUM is not None
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]  # fmt: skip
        self.proc = subprocess.Popen(
            args, preexec_fn=fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(cmd_r)
        os.close(res_w)
        self._poll = select.poll()
        self._poll.register(self._res_r, select.POLLIN)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            # poll, not select: select refuses descriptors above 1023, which a long test process reaches
            if left <= 0 or not self._poll.poll(left * 1000):
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)  # type: ignore[no-any-return]

    def call(self, method: str, *, session: bool = False, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]
            self.events.append(reply)

    def open(self, url: str, timeout: float = 120) -> None:
        """Load url afresh (a page that differs in its fragment only would not be reloaded)."""
        for target in ("about:blank", url):
            self.events.clear()
            self.call("Page.navigate", session=True, url=target)
            deadline = time.monotonic() + timeout
            while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
                self.events.append(self._read(deadline))

    def js(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def type(self, element_id: str, text: str) -> None:
        self.js(f"document.getElementById({json.dumps(element_id)}).focus()")
        self.call("Input.insertText", session=True, text=text)

    def choose(self, element_id: str, value: str) -> None:
        self.js(f"(e => {{ e.value = {json.dumps(value)}; e.dispatchEvent(new Event('change')); }})"
                f"(document.getElementById({json.dumps(element_id)}))")  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)


def _need_chromium() -> None:
    if CHROMIUM is None:
        if os.environ.get("REWARD_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is required here (REWARD_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")


ROWS = "[...document.querySelectorAll('#r-table tbody tr.rollout')]"


@pytest.fixture(scope="module")
def run_1000(tmp_path_factory):
    _need_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    groups = synth_groups(1000)
    groups[5]["rollouts"][0]["id"] = '<img src=x onerror="document.title=1">'
    groups[5]["rollouts"][0]["dimensions"]["efficiency"]["reason"] = "</script><script>document.title=2</script> needle"
    scored = tmp / "s.jsonl"
    scored.write_text("".join(json.dumps(g) + "\n" for g in groups))
    page = tmp / "r.html"
    read, _ = read_report_groups(scored)
    page.write_text(render_report(list(read), "t"))
    browser = Browser(tmp / "profile")
    yield groups, page, browser
    browser.close()


def _show(browser: Browser, page: Path, fragment: str = "") -> None:
    browser.open(page.resolve().as_uri() + fragment)
    assert browser.js("document.documentElement.dataset.ready") is not None, "the page's script did not run (CSP?)"


def _count(browser: Browser) -> str:
    return browser.js("document.getElementById('count').textContent")  # type: ignore[no-any-return]


@pytest.mark.slow
def test_every_rollout_is_reachable_and_search_finds_one(run_1000):
    _, page, browser = run_1000
    _show(browser, page)
    assert _count(browser) == "1000 of 1000 rollouts"
    assert browser.js(f"{ROWS}.length") == 100  # a page at a time
    assert browser.js("document.getElementById('g-count').textContent") == "125 of 125 groups"
    # the last page holds the last rollout
    browser.js("[...document.querySelectorAll('#pager button')].pop().click()")
    assert browser.js(f"{ROWS}.pop().children[1].textContent") == "r00999"
    # a word of one reason, typed: one rollout, and its hostile id and reason shown as text, never run
    browser.type("q", "needle")
    assert _count(browser) == "1 of 1000 rollouts"
    assert browser.js(f"{ROWS}[0].children[1].textContent") == '<img src=x onerror="document.title=1">'
    assert browser.js("document.querySelectorAll('#r-table img').length") == 0
    browser.js(f"{ROWS}[0].click()")
    detail = browser.js("document.querySelector('#r-table tr.detail').textContent")
    assert "</script><script>document.title=2</script> needle" in detail
    assert browser.js("document.title") == "t"
    # search terms all have to match: the rollout's id and a reason word of another rollout match none
    browser.type("q", " r00001")
    assert _count(browser) == "0 of 1000 rollouts"


@pytest.mark.slow
def test_filters_by_status_penalty_dimension_meta_and_group(run_1000):
    groups, page, browser = run_1000
    rollouts = [(g, r) for g in groups for r in g["rollouts"]]
    _show(browser, page)
    browser.choose("f-status", "penalized")
    n_pen = sum(r["status"] == "penalized" for _, r in rollouts)
    assert _count(browser) == f"{n_pen} of 1000 rollouts"
    assert all(s.startswith("penalized: ") for s in browser.js(f"{ROWS}.map(r => r.children[4].textContent)"))
    browser.choose("f-why", "no_commands")
    assert _count(browser) == f"{sum(r.get('penalty') == 'no_commands' for _, r in rollouts)} of 1000 rollouts"
    browser.js("document.getElementById('reset').click()")
    browser.choose("f-why", "judge_unavailable")
    assert _count(browser) == f"{sum(r['status'] == 'error' for _, r in rollouts)} of 1000 rollouts"
    browser.js("document.getElementById('reset').click()")
    # a dimension at most 2 (a failure-mode one: the filter is on the score as written)
    i = [n for n, _ in DIMS].index("missed_errors")
    browser.choose("f-dim", str(i))
    browser.type("f-val", "2")
    low = [r for _, r in rollouts if r.get("dimensions") and r["dimensions"]["missed_errors"]["score"] <= 2]
    assert _count(browser) == f"{len(low)} of 1000 rollouts"
    browser.choose("f-op", "ge")
    high = [r for _, r in rollouts if r.get("dimensions") and r["dimensions"]["missed_errors"]["score"] >= 2]
    assert _count(browser) == f"{len(high)} of 1000 rollouts"
    browser.js("document.getElementById('reset').click()")
    browser.type("f-meta", "kind=vague")
    vague = [r for _, r in rollouts if r["meta"]["kind"] == "vague"]
    assert _count(browser) == f"{len(vague)} of 1000 rollouts"
    browser.choose("f-status", "ok")
    assert _count(browser) == f"{sum(r['status'] == 'ok' for r in vague)} of 1000 rollouts"
    # a group, picked from the group table: its rollouts, and its reference plan once
    browser.js("document.getElementById('reset').click()")
    browser.js("document.querySelector('#g-table tbody tr:nth-child(3) button').click()")
    assert _count(browser) == "8 of 1000 rollouts"
    assert set(browser.js(f"{ROWS}.map(r => r.children[0].textContent)")) == {"g0002"}
    for k in range(8):  # every row opened: each graded one shows its plan, none repeats the reference
        browser.js(f"{ROWS}[{k}].click()")
    pres = browser.js("[...document.querySelectorAll('pre')].map(p => p.textContent)")
    assert sum("reference of g0002" in p for p in pres) == 1
    assert sorted(p.split(": ")[0] for p in pres if "run step 1 of" in p) == sorted(
        f"EXECUTION PLAN\n1. run step 1 of {rid}" for rid in groups[2]["plans"]
    )


@pytest.mark.slow
def test_sorting_and_the_weakest_dimensions_and_a_linked_view(run_1000, tmp_path):
    groups, page, browser = run_1000
    _show(browser, page, "#status=ok")  # a view from the address: the filter is applied on load
    ok = [r for g in groups for r in g["rollouts"] if r["status"] == "ok"]
    assert _count(browser) == f"{len(ok)} of 1000 rollouts"
    browser.js("document.querySelector('#r-table th[data-sort=reward]').click()")
    browser.js("document.querySelector('#r-table th[data-sort=reward]').click()")  # again: descending
    best = max(ok, key=lambda r: r["reward"])
    assert browser.js(f"{ROWS}[0].children[1].textContent") == best["id"]
    assert "sort=reward" in browser.js("location.hash") and "desc=1" in browser.js("location.hash")
    # the rewards are shown rounded: 2 decimals, never 15
    assert browser.js(f"{ROWS}[0].children[2].textContent") == f"{best['reward']:.2f}"
    # the detail lists every dimension, furthest from its best value first (pitfalls: higher is worse)
    browser.js(f"{ROWS}[0].click()")
    shown = browser.js(
        "[...document.querySelectorAll('#r-table tr.detail table tr td:first-child')].map(td => td.textContent)"
    )
    read, _ = read_report_groups(page.with_name("s.jsonl"))
    rollout = next(r for g in read for r in g.rollouts if r.id == best["id"])
    view = rubric_view(read)
    dims = dimension_order(read, view)
    assert shown == [dims[i] for i in weakest_first(rollout, dims, view)] and len(shown) == len(DIMS)


def with_noise(groups: list[dict[str, Any]], seed: int = 1) -> list[dict[str, Any]]:
    """The groups as `--samples 4` writes them: each with its reward's reliability (one group's is 0: nothing
    reaches the target) and every dimension's."""
    from reward.core.summary import k_needed, spearman_brown

    rng = random.Random(seed)

    def rel(r: float) -> dict[str, Any]:
        return {"reliability": r, "reliability_k": spearman_brown(r, 4), "k_needed": k_needed(r)}

    for gi, g in enumerate(groups):
        r = 0.0 if gi == 3 else round(rng.uniform(0.05, 0.95), 2)  # two decimals: shown as they are
        dims = {name: rel(round(rng.uniform(0, 1), 4)) for name, _ in DIMS}
        g["noise"] = {"samples": 4, "n": 6, "snr": 1.0, "n_penalized": 1, **rel(r), "reliability_target": 0.8,
                      "dimensions": dims}  # fmt: skip
    return groups


@pytest.fixture(scope="module")
def noisy_run(run_1000):
    groups = with_noise(synth_groups(200))
    tmp = run_1000[1].parent
    scored = tmp / "noisy.jsonl"
    scored.write_text("".join(json.dumps(g) + "\n" for g in groups))
    page = tmp / "noisy.html"
    read, _ = read_report_groups(scored)
    page.write_text(render_report(list(read), "t"))
    return groups, page, run_1000[2]


GROUP_HEAD = "[...document.querySelectorAll('#g-table thead th')].map(th => th.textContent)"
GROUP_CELLS = "[...document.querySelectorAll('#g-table tbody tr')].map(tr => tr.children.length)"


@pytest.mark.slow
def test_reliability_is_shown_for_the_run_per_group_and_per_dimension(noisy_run):
    import statistics

    from reward.core.summary import k_needed

    groups, page, browser = noisy_run
    _show(browser, page)
    rels = [g["noise"]["reliability"] for g in groups]
    mid = statistics.median(rels)
    summary = browser.js("document.getElementById('rel-summary').textContent")
    assert f"{mid:.2f} (median over groups" in summary and f"{k_needed(mid)} for the median group" in summary
    assert "1 group at 0 (no K reaches it)" in summary
    dims = browser.js("[...document.querySelectorAll('#rel-dimensions tr td:first-child')].map(td => td.textContent)")
    assert sorted(dims) == sorted(n for n, _ in DIMS)
    # the group table: two columns more, one value per group, every row as wide as the header
    head = browser.js(GROUP_HEAD)
    assert head[head.index("SNR") + 1 : head.index("SNR") + 3] == ["reliability", "K needed"]
    assert set(browser.js(GROUP_CELLS)) == {len(head)}
    shown = browser.js("[...document.querySelectorAll('#g-table td.rel')].map(td => td.textContent)")
    assert [s.split(" (")[0] for s in shown] == [f"{r:.2f}" for r in rels]
    assert browser.js("document.querySelectorAll('#g-table td.kn')[3].textContent") == "–"  # reliability 0
    # sorted by reliability: the least reliable group first
    browser.js("document.querySelector('#g-table th[data-sort=rel]').click()")
    assert browser.js("document.querySelector('#g-table tbody td.gid').textContent") == "g0003"
    # a group's panel says it too
    browser.js("document.querySelector('#g-table tbody tr:nth-child(2) button').click()")
    second = sorted(groups, key=lambda g: g["noise"]["reliability"])[1]
    panel = browser.js("document.getElementById('grouppanel').textContent")
    assert f"reliability {second['noise']['reliability']:.2f}" in panel
    assert f"K needed {second['noise']['k_needed']}" in panel


@pytest.mark.slow
def test_a_run_without_reliability_has_no_empty_section_or_column(run_1000):
    _, page, browser = run_1000
    _show(browser, page)
    assert browser.js("document.getElementById('reliability') === null")
    head = browser.js(GROUP_HEAD)
    assert "reliability" not in head and "K needed" not in head
    assert set(browser.js(GROUP_CELLS)) == {len(head)}
    browser.js("document.querySelector('#g-table tbody tr:nth-child(2) button').click()")
    assert "reliability" not in browser.js("document.getElementById('grouppanel').textContent")


def measure(n: int, tmp: Path) -> dict[str, float]:
    """Size, render time and browser load time of the report of an n-rollout run."""
    scored = tmp / f"s{n}.jsonl"
    scored.write_text("".join(json.dumps(g) + "\n" for g in synth_groups(n)))
    page = tmp / f"r{n}.html"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "reward", "report", str(scored), "-o", str(page)], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    render_s = time.monotonic() - start
    browser = Browser(tmp / f"profile{n}")
    try:
        start = time.monotonic()
        browser.open(page.resolve().as_uri())
        load_s = time.monotonic() - start
        ready_ms = float(browser.js("document.documentElement.dataset.ready"))
        start = time.monotonic()
        browser.type("q", "vague")
        search_s = time.monotonic() - start
        start = time.monotonic()
        browser.js("document.querySelector('#r-table th[data-sort=reward]').click()")
        sort_s = time.monotonic() - start
    finally:
        browser.close()
    return {"rollouts": n, "scored_MB": scored.stat().st_size / 1e6, "page_MB": page.stat().st_size / 1e6,
            "reward_report_s": render_s, "load_event_s": load_s, "script_ready_ms": ready_ms,
            "first_search_s": search_s, "sort_s": sort_s}  # fmt: skip


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        for arg in sys.argv[1:] or ["1000", "10000"]:
            print(json.dumps({k: round(v, 3) for k, v in measure(int(arg), Path(d)).items()}))
