"""Offline scoring of a file: resume, torn lines, invalid lines, errored groups re-scored."""

import asyncio
import json

import pytest

from reward.errors import RunError
from reward.scoring.output_file import load_done
from reward.scoring.runner import score_file
from tests.conftest import group, rollout, step


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(scorer, inp, out, **kw):
    return asyncio.run(score_file(scorer, inp, out, **kw))


def test_scores_every_group_once_and_reports_invalid_lines(make_scorer, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    bad = group("bad")
    bad["rollouts"][0]["steps"][0]["exit_code"] = "x"
    write_jsonl(inp, [group("a"), "{not json", bad, group("b"), group("a")])
    report = run(make_scorer(), inp, out)
    assert sorted(g["group_id"] for g in read_jsonl(out)) == ["a", "b"]
    problems = [str(p) for p in report.invalid]
    assert problems[0].startswith("line 2: invalid JSON")
    assert problems[1].startswith("line 3: rollouts[0].steps[0].exit_code")
    assert problems[2] == "line 5: group_id: duplicate 'a'"
    assert report.scored == 2


def test_resume_skips_done_groups_and_drops_a_torn_last_line(make_scorer, fake_judge, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group(f"g{i}", rollouts=[rollout(f"g{i}r{j}") for j in range(3)]) for i in range(4)])
    run(make_scorer(), inp, out)
    lines = out.read_text().splitlines()
    # Simulate a crash: two whole lines kept, the third torn in half.
    out.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][: len(lines[2]) // 2])
    fake_judge.reset()
    report = run(make_scorer(cache=tmp_path / "fresh-cache"), inp, out)
    assert report.skipped == 2 and report.scored == 2
    rows = read_jsonl(out)  # every line parses: the torn one is gone
    assert sorted(r["group_id"] for r in rows) == ["g0", "g1", "g2", "g3"]
    # only the two missing groups were scored: their common reference once + 2 x 3 rollouts condensed
    assert fake_judge.counts() == {"total": 13, "condense": 7, "grade": 6}


def test_groups_with_judge_errors_are_rescored_on_rerun(make_scorer, fake_judge, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group("g", rollouts=[rollout("x")], reference={"plan": "EXECUTION PLAN"})])
    fake_judge.script({"kind": "condense", "status": 400, "message": "nope"})
    run(make_scorer(num_retries=0), inp, out)
    assert read_jsonl(out)[0]["rollouts"][0]["status"] == "error"
    run(make_scorer(num_retries=0), inp, out)
    rows = read_jsonl(out)
    assert len(rows) == 1 and rows[0]["rollouts"][0]["status"] == "ok"


def test_keep_errors_leaves_them_alone(make_scorer, fake_judge, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group("g", rollouts=[rollout("x")], reference={"plan": "EXECUTION PLAN"})])
    fake_judge.script({"kind": "condense", "status": 400})
    run(make_scorer(num_retries=0), inp, out)
    report = run(make_scorer(num_retries=0), inp, out, retry_errors=False)
    assert report.skipped == 1 and read_jsonl(out)[0]["rollouts"][0]["status"] == "error"


def test_output_from_another_rubric_version_is_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    write_jsonl(out, [{"group_id": "a", "rubric_version": "old", "rollouts": []}])
    with pytest.raises(RunError, match="rubric version old"):
        load_done(out, "group_id", rubric_version="new")


@pytest.mark.slow
def test_sigkill_mid_run_loses_nothing_duplicates_nothing_and_repeats_no_finished_call(fake_judge, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import cli_env, run_cli

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    groups = [
        group(
            f"g{i}",
            rollouts=[rollout(f"r{j}", steps=[step(f"make g{i}r{j}")]) for j in range(4)],
            reference={"plan": "EXECUTION PLAN"},
        )
        for i in range(12)
    ]
    write_jsonl(inp, groups)
    env = cli_env(fake_judge, tmp_path / "cache")
    cmd = [sys.executable, "-m", "reward", "score", str(inp), "-o", str(out), "--no-progress", "-c", "4"]
    fake_judge.state.latency = 0.3
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    raw = out.read_bytes()
    assert raw.endswith(b"\n")  # whole lines only, even under SIGKILL
    done_first = {json.loads(line)["group_id"] for line in raw.decode().splitlines()}
    assert 3 <= len(done_first) < 12
    first_prompts = {c["messages"][1]["content"] for c in fake_judge.state.calls}
    fake_judge.reset()
    fake_judge.state.latency = 0.0  # the resume need not be slow: only the killed run had to be caught mid-way
    run_cli(*cmd[3:], env=env)  # the resume, in this process
    rows = read_jsonl(out)
    assert sorted(r["group_id"] for r in rows) == sorted(f"g{i}" for i in range(12))  # none lost, none twice
    second_prompts = [c["messages"][1]["content"] for c in fake_judge.state.calls]
    for gid in done_first:  # finished groups cost nothing again
        assert not any(f"make {gid}r" in p for p in second_prompts)
    repeated = [p for p in second_prompts if p in first_prompts]
    assert len(repeated) <= 8  # at most the calls in flight when the process died (concurrency 4)


def hostile_lines() -> list[str]:
    g = json.dumps(group("x"))
    return [
        g.replace('"exit_code": 0', '"exit_code": ' + "9" * 5000, 1),  # a 5000-digit exit code
        '{"group_id": "deep", "query": ' + "[" * 100_000 + "]" * 100_000 + "}",  # deep nesting
        g.replace('"exit_code": 0', '"exit_code": NaN', 1),
        g.replace('"exit_code": 0', '"exit_code": Infinity', 1),
        g.replace('"exit_code": 0', '"exit_code": 1e400', 1),
        '{"group_id": "m", "query": "q", "reference": {"plan": "P"}, "rollouts": [{"messages": '
        + "[" * 50_000
        + "]" * 50_000
        + "}]}",
        "[1, 2, 3]",
        '"just a string"',
        "\udcff\x00{",
    ]


def test_every_hostile_line_is_a_line_error_and_the_other_groups_are_scored(make_scorer, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    bad = hostile_lines()
    inp.write_text(
        "\n".join([json.dumps(group("first")), *bad, json.dumps(group("last"))]) + "\n",
        encoding="utf-8",
        errors="surrogateescape",
    )
    # a non-object in tool_calls is the policy's behaviour, not bad input: scored (no valid command)
    calls = {"role": "assistant", "content": "", "tool_calls": [1, "x"]}
    answer = {"role": "assistant", "content": "<final_answer>done</final_answer>"}
    tool_calls = group("tc", rollouts=[{"messages": [calls, answer]}])
    with inp.open("a", encoding="utf-8") as f:
        f.write(json.dumps(tool_calls) + "\n")
    report = run(make_scorer(), inp, out)
    scored = {g["group_id"]: g for g in read_jsonl(out)}
    assert sorted(scored) == ["first", "last", "tc"]
    assert scored["tc"]["rollouts"][0]["penalty"] == "no_commands"
    lines = sorted(p.lineno for p in report.invalid)
    assert lines == list(range(2, 2 + len(bad))), [str(p) for p in report.invalid]
    text = "\n".join(str(p) for p in report.invalid)
    assert "more than 4300 digits" in text and "nested too deeply" in text and "NaN is not valid JSON" in text
    assert "Traceback" not in text


def test_a_second_run_on_the_same_output_refuses_clearly(make_scorer, tmp_path):
    import fcntl
    import os

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group("a")])
    fd = os.open(tmp_path / "out.jsonl.lock", os.O_RDWR | os.O_CREAT)  # another run holds the file
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(RunError, match="another run is writing to this file"):
            run(make_scorer(), inp, out)
        assert not out.exists()
    finally:
        os.close(fd)
    assert run(make_scorer(), inp, out).scored == 1  # released: the next run goes ahead


def test_full_cache_disk_offline_every_group_is_still_written(make_scorer, fake_judge, tmp_path, monkeypatch):
    from tests.conftest import full_disk

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group(f"g{i}") for i in range(6)])
    scorer = make_scorer(cache=tmp_path / "full")
    full_disk(scorer.store, monkeypatch)
    report = asyncio.run(asyncio.wait_for(score_file(scorer, inp, out), 120))  # used to hang forever
    assert report.scored == 6 and len(read_jsonl(out)) == 6
    assert all(r["status"] == "ok" for g in read_jsonl(out) for r in g["rollouts"])
    assert scorer.store.write_failures > 0


# --- one output, one judge: a resume with another judge model or K refuses -----------------------------------


def test_resuming_with_another_judge_model_or_k_is_refused_naming_both(make_local_scorer, tmp_path):
    from dataclasses import replace

    from reward.judge.base import CallSettings

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group("a"), group("b")])
    run(make_local_scorer(), inp, out)
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n")  # the run stopped after one group
    other = CallSettings("openai/another-judge", 0.0, 1024)
    another = make_local_scorer()
    another.judge.settings = replace(another.judge.settings, condense=other, grade=other)
    with pytest.raises(RunError, match=r"openai/test-judge.*openai/another-judge"):
        run(another, inp, out)
    with pytest.raises(RunError, match=r"K = 1 .* uses 3"):
        run(make_local_scorer(samples=3), inp, out)
    assert out.read_text() == lines[0] + "\n"  # nothing appended by a refused run
    report = run(make_local_scorer(), inp, out)  # the same judge and K resume
    assert report.skipped == 1 and report.scored == 1


# --- output disk full: one error, exit 3, no torn line, no temporary left ------------------------------------


def test_a_failing_output_write_leaves_whole_lines_only(make_local_scorer, tmp_path, monkeypatch):
    import errno
    import os

    from reward.errors import OutputError
    from reward.scoring import output_file

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, [group(f"g{i}") for i in range(4)])
    real_write, writes = os.write, []

    def filling(fd, data):  # the second record finds the disk full half-way through
        writes.append(len(data))
        if len(writes) == 2:
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(output_file.os, "write", filling)
    with pytest.raises(OutputError, match="No space left on device"):
        run(make_local_scorer(), inp, out, groups_in_flight=1)
    monkeypatch.undo()
    assert out.read_bytes().endswith(b"\n") and len(read_jsonl(out)) == 1  # the torn half is gone
    assert not list(tmp_path.glob("*.tmp"))
    report = run(make_local_scorer(), inp, out)  # room again: the run resumes
    assert report.skipped == 1 and report.scored == 3 and len(read_jsonl(out)) == 4


@pytest.mark.slow
def test_a_full_filesystem_is_one_line_exit_3_and_resumable(fake_judge, tmp_path):
    """A real full filesystem (a 16 KiB tmpfs; needs the right to mount, as root in CI)."""
    import subprocess

    from tests.conftest import EXAMPLES, cli_env, run_cli

    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(tiny)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        env = cli_env(fake_judge, tmp_path / "cache")
        out = tiny / "out.jsonl"
        ran = run_cli("score", EXAMPLES, "-o", out, "--no-progress", env=env, check=False)
        assert ran.returncode == 3, ran.stderr
        errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(out) in errors[0] and "No space left on device" in errors[0]
        assert "Traceback" not in ran.stderr
        assert out.read_bytes().endswith(b"\n") or out.read_bytes() == b""
        assert all(json.loads(line) for line in out.read_text().splitlines())
        assert not list(tiny.glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(tiny)], check=False)


def test_an_output_whose_folder_cannot_be_made_is_one_line_exit_3(fake_judge, tmp_path):
    """-o under a regular file: the folder cannot be created. One error line naming it, exit 3, no traceback
    (the plain run and --batch take the output's lock the same way)."""
    from tests.conftest import EXAMPLES, cli_env, run_cli

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n")
    out = blocker / "out.jsonl"
    ran = run_cli("score", EXAMPLES, "-o", out, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"), check=False)
    assert ran.returncode == 3, ran.stderr
    assert "Traceback" not in ran.stderr
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(blocker) in errors[0]
    assert blocker.read_text() == "not a folder\n"
