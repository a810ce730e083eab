"""Replicas on one Redis: judge calls for 1, 2 and 4 replicas on one step, 2 replicas' throughput against
1 (same run), and the rate the judge sees under a shared rpm limit.

    python bench/replicas.py            # needs redis-server on PATH; about 3 minutes on 2 cores
    python bench/replicas.py --skip-rate
    python bench/replicas.py --only-rate --rate-replicas 1   # the shared limit's rate for 1, then 2 replicas

Everything runs here: the fake judge, a redis-server on a free port, `reward serve` replicas.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reward.judge.fake.http import FakeJudgeServer  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.server_proc import ServerProcess, server_env  # noqa: E402


def step(tag: str, n_groups: int, size: int) -> list[dict]:
    """A GRPO step: distinct queries and references, distinct trajectories."""

    def traj(cmd: str, out: str) -> dict:
        return {
            "steps": [{"command": cmd, "exit_code": 0, "output": out}],
            "final_answer": f"<final_answer>{out}</final_answer>",
        }

    return [
        {
            "group_id": f"{tag}-{g}",
            "query": f"Run the tests of module {tag}_{g} and report failures.",
            "reference": traj(f"pytest -q tests/test_{tag}_{g}.py", "3 passed"),
            "rollouts": [
                {"id": f"r{i}", **traj(f"pytest -q tests/test_{tag}_{g}.py -k case{i}", f"{i} passed")}
                for i in range(size)
            ],
        }
        for g in range(n_groups)
    ]


def post(url: str, groups: list[dict]) -> dict:
    r = httpx.post(f"{url}/score", json={"groups": groups}, timeout=300)
    r.raise_for_status()
    return r.json()


def send(replicas: list[ServerProcess], groups: list[dict], split: bool) -> list[dict]:
    """The step to every replica (split=False), or divided among them (split=True)."""
    if split:
        parts = [(r, groups[i :: len(replicas)]) for i, r in enumerate(replicas)]
    else:
        parts = [(r, groups) for r in replicas]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(lambda p: post(p[0].url, p[1]), parts))


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def counts(fj: FakeJudgeServer, replicas: list[ServerProcess], n_groups: int, size: int) -> dict:
    out = {}
    fj.state.latency = 0.2  # calls overlap across replicas
    for n in (1, 2, 4):
        for split in (False, True):
            if n == 1 and split:
                continue
            fj.reset()
            send(replicas[:n], step(f"c{n}{int(split)}", n_groups, size), split)
            out[f"{n} replicas, {'step split' if split else 'whole step to each'}"] = fj.counts()
    return out


def throughput(fj: FakeJudgeServer, replicas: list[ServerProcess], n_groups: int, size: int, runs: int) -> dict:
    """Wall time of a step (new items each time) over 1 and 2 replicas, sent as two requests either way."""
    fj.state.latency = 0.0
    times: dict[int, list[float]] = {1: [], 2: []}
    for run in range(runs):
        for n in (1, 2):
            groups = step(f"t{run}-{n}", n_groups, size)
            targets = [replicas[0], replicas[0]] if n == 1 else replicas[:2]
            start = time.perf_counter()
            send(targets, groups, split=True)
            times[n].append(time.perf_counter() - start)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {"1 replica s": round(one, 2), "2 replicas s": round(two, 2), "speed-up": round(one / two, 2), "runs": runs}


def busiest(samples: list[tuple[float, int]], width: float = 60.0) -> int:
    """The most calls between two samples at most `width` seconds apart (a lower bound on any window)."""
    return max((c2 - c1 for t1, c1 in samples for t2, c2 in samples if 0 < t2 - t1 <= width), default=0)


def rate(
    fj: FakeJudgeServer, redis_url: str, tmp: Path, rpm: int, seconds: float, n: int = 2, in_flight: int | None = None
) -> dict:
    """`n` replicas keep receiving new groups; the judge's calls per minute against the limits."""
    config = tmp / "router.yaml"
    limits: dict = {"rpm": rpm} if in_flight is None else {"rpm": rpm, "max_parallel_requests": in_flight}
    deployment = lambda name: {  # noqa: E731
        "model_name": name,
        "litellm_params": {"model": "openai/test-judge", "api_base": fj.api_base, "api_key": "sk-test", **limits},
    }
    config.write_text(yaml.safe_dump({"model_list": [deployment("condense"), deployment("grade")], "num_retries": 0}))
    env = server_env(
        dict(os.environ),
        fj.api_base,
        tmp / "unused",
        REWARD_CACHE_URL=redis_url,
        REWARD_JUDGE_ROUTER_CONFIG=str(config),
    )
    with ThreadPoolExecutor(2) as pool:
        pair = list(pool.map(lambda _: ServerProcess(env), range(n)))
    fj.reset()
    fj.state.latency = 0.05
    per_minute: dict[str, int] = {}
    statuses: dict[str, int] = {}
    samples: list[tuple[float, int]] = []
    last = 0
    start = time.monotonic()
    stop = start + seconds
    i = 0
    try:
        while time.monotonic() < stop:
            with ThreadPoolExecutor(n) as pool:
                answers = list(pool.map(lambda r, i=i: post(r.url, step(f"rate{i}-{r.port}", 2, 4)), pair))
            for answer in answers:
                for g in answer["groups"]:
                    for r in g["rollouts"]:
                        key = r["status"] if r["status"] == "ok" else r["error"]["category"]
                        statuses[key] = statuses.get(key, 0) + 1
            i += 1
            total = fj.counts()["total"]
            samples.append((time.monotonic() - start, total))
            minute = datetime.now(UTC).strftime("%H:%M")
            per_minute[minute] = per_minute.get(minute, 0) + total - last
            last = total
            time.sleep(0.2)
    finally:
        for r in pair:
            r.stop()
    return {
        "replicas": n,
        "rpm per deployment": rpm,
        "deployments": 2,
        "limit per minute (both)": 2 * rpm,
        "judge calls per minute": per_minute,
        "judge calls in the busiest 60 s": busiest(samples),
        "judge calls in all": last,
        "judge calls by role": {k: v for k, v in fj.counts().items() if k != "total"},
        "seconds": round(samples[-1][0], 1) if samples else 0,
        "in flight at the judge (peak)": fj.state.peak_in_flight,
        "in flight allowed (both)": None if in_flight is None else 2 * in_flight,
        "rollouts": statuses,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=16)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rpm", type=int, default=60)
    ap.add_argument("--rate-seconds", type=float, default=130)
    ap.add_argument("--skip-rate", action="store_true")
    ap.add_argument("--only-rate", action="store_true")
    ap.add_argument("--rate-replicas", type=int, default=2)
    ap.add_argument("--in-flight", type=int, default=None, help="max_parallel_requests per deployment")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    result: dict = {"load before": load()}
    with FakeJudgeServer() as fj:
        redis = RedisServer(tmp).start()
        try:
            if not args.only_rate:
                env = server_env(dict(os.environ), fj.api_base, tmp / "unused", REWARD_CACHE_URL=redis.url)
                with ThreadPoolExecutor(2) as pool:  # four at once may take longer than a start is given here
                    replicas = list(pool.map(lambda _: ServerProcess(env), range(4)))
                try:
                    result["judge calls"] = counts(fj, replicas, args.groups, args.size)
                    result["throughput"] = throughput(fj, replicas, args.groups, args.size, args.runs)
                finally:
                    for r in replicas:
                        r.stop()
            if not args.skip_rate:
                result["shared rpm limit"] = rate(
                    fj, redis.url, tmp, args.rpm, args.rate_seconds, args.rate_replicas, args.in_flight
                )
        finally:
            redis.stop()
    result["load after"] = load()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
