"""Property-based fuzzing of the HTTP API from its own OpenAPI schema: no input may cause a 5xx.

A bounded number of examples per operation (REWARD_FUZZ_EXAMPLES, default 80) keeps it inside the suite's
time budget; half the cases are schemathesis' negative ones (wrong types, out-of-range numbers, missing and
extra fields at any depth). The server runs as a real process against the fake judge, with small limits so
that huge generated bodies meet the 413 path.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.server_proc import ServerProcess, server_env

FUZZ_EXAMPLES = int(os.environ.get("REWARD_FUZZ_EXAMPLES", "80"))


@pytest.fixture(scope="module")
def api(fake_judge_server, tmp_path_factory):
    env = server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("fuzz") / "cache")
    env.update(REWARD_MAX_BODY_BYTES="100000", REWARD_MAX_ROLLOUTS="64", REWARD_REQUEST_DEADLINE="10")
    proc = ServerProcess(env)
    yield proc
    proc.stop()


def operations(api):
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_is_fuzzed_and_none_answers_5xx(api, fake_judge_server):
    ops = operations(api)
    assert {f"{op.method.upper()} {op.path}" for op in ops} >= {
        "POST /score",
        "POST /openrlhf",
        "POST /slime",
        "GET /rubrics",
    }
    seen: dict[str, int] = {}
    for op in ops:

        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)))
        def check(case):
            response = case.call(base_url=api.url, timeout=30)
            seen[case.path] = seen.get(case.path, 0) + 1
            # 503 is the documented answer to a judge failure / overload, always with Retry-After
            assert response.status_code < 500 or (
                response.status_code == 503 and response.headers.get("retry-after")
            ), (case.method, case.path, response.status_code, response.text[:500])

        check()
    assert all(n >= 1 for n in seen.values()) and sum(seen.values()) >= len(ops)
    print(f"fuzzed {sum(seen.values())} requests over {len(ops)} operations: {seen}")
    fake_judge_server.reset()
