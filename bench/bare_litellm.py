"""CPU seconds per bare `litellm.acompletion` call against a judge (run in its own process).

python bench/bare_litellm.py API_BASE N CONCURRENCY  ->  prints a JSON object
"""

import asyncio
import json
import resource
import sys

from reward.llm import litellm  # sets LITELLM_LOCAL_MODEL_COST_MAP before importing litellm


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(api_base: str, n: int, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)
    prompt = [{"role": "user", "content": "## Task Query\n\nRun the tests.\n\n" + "output line\n" * 150}]

    async def one() -> None:
        async with sem:
            await litellm.acompletion(
                model="openai/bench-judge", api_base=api_base, api_key="bench", messages=prompt, timeout=60
            )

    await asyncio.gather(*(one() for _ in range(min(64, n))))  # warm up connections and imports
    c0 = cpu()
    await asyncio.gather(*(one() for _ in range(n)))
    print(json.dumps({"calls": n, "cpu_per_call_s": (cpu() - c0) / n}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
