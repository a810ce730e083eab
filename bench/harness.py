"""Processes and measurements for the benchmark: the fake judge and `reward serve` as real processes,
process-tree CPU time from /proc, and GRPO-shaped load over HTTP."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK  # ppid, utime + stime


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its live descendants (uvicorn workers are children)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                stats[int(entry)] = st
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(p for p, (ppid, _) in stats.items() if ppid == pid)
    return total


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def children(pid: int) -> dict[int, float]:
    """CPU seconds of each live child of a process (the workers of `reward serve --workers N`)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st and st[0] == pid:
                out[int(entry)] = st[1]
    return out


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], probe: str, script: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # stderr to a file, never an unread pipe: a full pipe would stall the server mid-benchmark.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="reward-bench-", suffix=".log", delete=False)  # noqa: SIM115
        argv = [script, str(self.port), *args] if script else ["-m", "reward", *args, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_http(self.url + probe, self.proc)

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fake_judge(latency: float) -> Proc:
    return Proc(["fake-judge", "--latency", str(latency)], dict(os.environ), "/v1/models")


def stub_judge(latency: float, lognormal: bool = False, seed: int = 0) -> Proc:
    """The near-zero-cost judge stand-in (bench/stub_judge.py), in its own process; `lognormal`: each call's
    latency drawn around the median `latency` (sigma 1)."""
    args = [str(latency), *(["lognormal", str(seed)] if lognormal else [])]
    return Proc(args, dict(os.environ), "/v1/models", script=str(ROOT / "bench" / "stub_judge.py"))


def judge_stats(judge: Proc) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(judge.url + "/_stats", timeout=10) as r:
        return json.loads(r.read())


def server(
    judge: Proc,
    cache: Path,
    workers: int,
    concurrency: int,
    rubric_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Proc:
    env = dict(os.environ)
    env.update(extra_env or {})
    env.update(
        REWARD_JUDGE_MODEL="openai/bench-judge",
        REWARD_JUDGE_API_BASE=judge.url + "/v1",
        REWARD_JUDGE_API_KEY="bench",
        REWARD_CACHE_DIR=str(cache),
        REWARD_JUDGE_CONCURRENCY=str(concurrency),
    )
    if rubric_dir is not None:
        env["REWARD_RUBRIC_DIR"] = str(rubric_dir)
    return Proc(["serve", "--workers", str(workers)], env, "/readyz")


# --- load ----------------------------------------------------------------------------------------------

_EXAMPLES = [json.loads(line) for line in (ROOT / "examples" / "rollouts.jsonl").read_text().splitlines() if line]
_GRADED = [
    (g["query"], r)
    for g in _EXAMPLES
    for r in g["rollouts"]
    if r.get("steps")
    and "</final_answer>" in r.get("final_answer", "")
    and r.get("num_tokens", 0) <= 30_000
    and r["final_answer"].split("<final_answer>")[-1].split("</final_answer>")[0].strip()
]
PLAN = (
    "EXECUTION PLAN\n\nTask Outcome: failure. The last command exited 1.\n\nCommands Executed:\n- `run the tests` "
    "(exit code 1)\n\nKey Findings:\n- 1 failed\n\nError Recovery: none.\n\nFinal State: failures reported."
)


def step_groups(b: int, g: int, tag: str) -> list[dict[str, Any]]:
    """B groups x G distinct, gradable rollouts (realistic example content, a unique marker each),
    references given as plans."""
    groups = []
    for i in range(b):
        rollouts = []
        query = _GRADED[(i * g) % len(_GRADED)][0]  # the group's task: that of its first rollout
        for j in range(g):
            _, base = _GRADED[(i * g + j) % len(_GRADED)]
            r = copy.deepcopy(base)
            r["id"] = f"r{j}"
            r["steps"][0]["command"] += f"  # {tag}-{i}-{j}"
            r.pop("num_tokens", None)
            rollouts.append(r)
        groups.append({"group_id": f"{tag}-{i}", "query": query, "reference": {"plan": PLAN}, "rollouts": rollouts})
    return groups


async def post_all(url: str, bodies: list[dict[str, Any]], concurrent: bool = True) -> tuple[float, list[dict]]:
    """POST every body to url (all at once, or one after another); wall seconds and the parsed answers."""
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=600)) as s:

        async def one(body: dict[str, Any]) -> dict:
            async with s.post(url, json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"{r.status}: {(await r.text())[:300]}")
                return await r.json()

        t0 = time.perf_counter()
        if concurrent:
            out = await asyncio.gather(*(one(b) for b in bodies))
        else:
            out = [await one(b) for b in bodies]
        return time.perf_counter() - t0, list(out)


def post(url: str, bodies: list[dict[str, Any]], concurrent: bool = True) -> tuple[float, list[dict]]:
    return asyncio.run(post_all(url, bodies, concurrent))


def usage_sum(answers: list[dict]) -> dict[str, float]:
    keys = (
        "judge_calls",
        "condense_calls",
        "grade_calls",
        "prompt_tokens",
        "completion_tokens",
        "cache_hits",
        "coalesced",
        "cached_tokens",
    )
    return {k: sum(a["usage"][k] for a in answers) for k in keys}
