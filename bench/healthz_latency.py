"""How long `/healthz` waits while `reward serve` takes one 60 MB request of repetitive output.

    python bench/healthz_latency.py [--mb 60]

Starts the fake judge and one server worker, then sends a /score request of --mb megabytes (8 rollouts of
repetitive terminal output, no `num_tokens`, so the server must parse, clean and count it) while a second
client asks /healthz every 20 ms. Prints (and writes to bench/healthz_latency.json) the longest and median
probe latency, the number of probes and the big request's status and wall time. With `--rollouts 20` each
rollout is under 128 x 30,000 bytes, so every one is tokenized (in pieces, off the event loop).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PLAN, fake_judge, server


def big_body(mb: float, n: int = 8, per: int | None = None) -> bytes:
    """About `mb` megabytes of JSON in `n` rollouts (escapes make some patterns longer than their characters)."""
    if per is None:
        probe = len(big_body(mb, n, 100_000))
        return big_body(mb, n, int(100_000 * mb * 1_000_000 / probe))
    patterns = [
        "a",  # one run without a word break: the tokenizer's worst case
        "PASSED tests/test_parser.py::test_row\n",
        "x=1;",
        "\x1b[32m.\x1b[0m",
        "Downloading 10%\r20%\r100%\n",
        "é",
        "0123456789abcdef",
        "warning: unused variable `x`\n",
    ]
    rollouts = [
        {
            "id": f"r{i}",
            "steps": [{"command": "make test", "exit_code": 0, "output": (p * (per // len(p) + 1))[:per]}],
            "final_answer": "<final_answer>done</final_answer>",
        }
        for i, p in ((i, patterns[i % len(patterns)]) for i in range(n))
    ]
    group = {"group_id": f"big-{time.time_ns()}", "query": "Run the tests", "reference": {"plan": PLAN}}
    return json.dumps({"groups": [{**group, "rollouts": rollouts}]}).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=60.0)
    ap.add_argument("--rollouts", type=int, default=8, help="20 makes each under 3.84 MB: tokenized, in pieces")
    args = ap.parse_args()
    body = big_body(args.mb, args.rollouts)
    judge = fake_judge(0.0)
    srv = server(judge, Path(tempfile.mkdtemp(prefix="reward-healthz-")) / "cache", workers=1, concurrency=64)
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=120) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                c.get(srv.url + "/healthz")
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.02)

    try:
        with httpx.Client(timeout=600) as c:
            c.get(srv.url + "/healthz")
            prober = threading.Thread(target=probe, daemon=True)
            prober.start()
            t0 = time.perf_counter()
            r = c.post(srv.url + "/score", content=body, headers={"content-type": "application/json"})
            wall = time.perf_counter() - t0
            done.set()
            prober.join()
        statuses = (
            [x["status"] + ":" + str(x["penalty"]) for x in r.json()["groups"][0]["rollouts"]] if r.is_success else []
        )
        result = {
            "body_mb": round(len(body) / 1e6, 1),
            "rollouts_in_request": args.rollouts,
            "status": r.status_code,
            "request_wall_s": round(wall, 2),
            "healthz_probes": len(latencies),
            "healthz_max_s": round(max(latencies), 3),
            "healthz_median_s": round(statistics.median(latencies), 4),
            "outcomes": dict(collections.Counter(statuses)) if statuses else r.text[:200],
        }
        print(json.dumps(result, indent=2))
        (Path(__file__).parent / "healthz_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    finally:
        srv.stop()
        judge.stop()


if __name__ == "__main__":
    main()
