"""Hostile inputs and broken environments against the service in-process: a clear 4xx naming the path, or a
categorised per-rollout error; never a 5xx, a hang or a number that was not computed."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from reward.service.app import create_app
from reward.service.reward_service import RewardService, ServiceSettings
from tests.conftest import ROOT, group, rollout, step

JSON = {"content-type": "application/json"}


@pytest.fixture
def service(service_env, tmp_path):
    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "cache"))
    yield svc


@pytest.fixture
def client(service):
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c


def body(*groups: dict) -> str:
    return json.dumps({"groups": list(groups)})


# --- 1. a full cache disk ------------------------------------------------------------------------------


def test_full_cache_disk_scores_without_cache_readyz_false_then_recovers(client, service, monkeypatch):
    from tests.conftest import full_disk

    disk = full_disk(service.store, monkeypatch)
    r = client.post("/score", content=body(group("full-1")), headers=JSON, timeout=30)
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["groups"][0]["rollouts"]] == ["ok"] * 4  # not judge_timeout
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "disk is full" in ready.json()["cache"]
    assert ready.json()["cache_write_failures"] >= 1
    disk["full"] = False
    r = client.post("/score", content=body(group("full-2", rollouts=[rollout("new")])), headers=JSON, timeout=30)
    assert r.status_code == 200 and r.json()["groups"][0]["rollouts"][0]["status"] == "ok"
    assert client.get("/readyz").status_code == 200


def test_readyz_recovers_with_the_disk_even_when_nothing_new_is_written(client, service, monkeypatch):
    """Values computed while the disk was full sit in memory: the same traffic again writes nothing, and an
    unready replica gets no new traffic. /readyz's own write through the cache decides, and clears it."""
    from tests.conftest import full_disk

    disk = full_disk(service.store, monkeypatch)
    assert client.post("/score", content=body(group("full-3")), headers=JSON, timeout=30).status_code == 200
    assert client.get("/readyz").status_code == 503  # still full: the probe's write fails too
    disk["full"] = False
    assert client.post("/score", content=body(group("full-3")), headers=JSON, timeout=30).status_code == 200
    for _ in range(100):  # each /readyz queues one probe write on the writer thread; a later one sees it
        ready = client.get("/readyz")
        if ready.status_code == 200:
            break
        time.sleep(0.05)
    assert ready.status_code == 200 and ready.json()["cache"] == "writable"


def test_the_readiness_write_never_runs_on_the_event_loop(tmp_path):
    """SQLite may wait its whole busy timeout (60 s) for a lock another worker holds: /readyz must answer at
    once (not ready), the write going to the writer thread."""
    import sqlite3

    from reward.cache.disk import Store

    store = Store(tmp_path / "cache")
    store.write_error = "OperationalError: database or disk is full"
    holder = sqlite3.connect(tmp_path / "cache" / "cache.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        assert store.probe()[0] is False
        assert time.monotonic() - t0 < 0.5
    finally:
        holder.rollback()
        holder.close()
    for _ in range(200):
        if store.probe()[0]:
            break
        time.sleep(0.05)
    assert store.probe() == (True, "writable")
    store.close()


# --- 3. malformed input over HTTP: a 4xx naming the problem, never a 5xx ----------------------------------


def hostile_bodies() -> dict[str, tuple[str, str]]:
    """name: (path, raw body)."""
    g = json.dumps({"groups": [group("h")]})
    deep_json = "[" * 200_000 + "]" * 200_000
    just_deep = "[" * 900 + "]" * 900  # parses, then meets the validators
    msgs = '{"groups": [{"group_id": "m", "query": "q", "reference": {"plan": "P"}, "rollouts": [{"messages": %s}]}]}'
    tool_calls = [{"role": "assistant", "content": "", "tool_calls": [1, None, "x", {"function": 3}]}]

    def slime(label: str) -> str:
        return '{"prompt": "p", "response": "r", "label": ' + label + "}"

    def openrlhf(label: str) -> str:
        return '{"query": ["q"], "prompts": ["p"], "labels": [' + label + "]}"

    out: dict[str, tuple[str, str]] = {}
    for name, value in {
        "5000-digit int": "9" * 5000,
        "NaN": "NaN",
        "Infinity": "-Infinity",
        "1e400": "1e400",
        "deep": deep_json,
        "deep but parseable": just_deep,
        "deep object": '{"a":' * 900 + "1" + "}" * 900,
    }.items():
        out[f"score exit_code {name}"] = ("/score", g.replace('"exit_code": 0', f'"exit_code": {value}', 1))
        out[f"score query {name}"] = ("/score", g.replace('"query": "Run', f'"query": {value}, "x": "', 1))
        out[f"score messages {name}"] = ("/score", msgs % value)
        out[f"slime label {name}"] = ("/slime", slime(value))
        out[f"slime label.query {name}"] = ("/slime", slime('{"reference": {"plan": "P"}, "query": ' + value + "}"))
        out[f"openrlhf label {name}"] = ("/openrlhf", openrlhf(value))
    out["score tool_calls non-objects"] = ("/score", msgs % json.dumps(tool_calls))
    out["score messages non-objects"] = ("/score", msgs % '[1, null, [], "x"]')
    out["score groups not a list"] = ("/score", '{"groups": 5}')
    out["score body a list"] = ("/score", "[1, 2]")
    out["score body a number"] = ("/score", "9" * 5000)
    out["score truncated"] = ("/score", g[: len(g) // 2])
    out["score NUL and surrogates"] = ("/score", g.replace("Run pytest", "\\u0000\\ud800\\udfff"))
    out["score not UTF-8"] = ("/score", g.encode("utf-8").replace(b"Run", b"\xff\xfe").decode("latin-1"))
    out["slime response object"] = ("/slime", '{"prompt": "p", "response": {"a": 1}, "label": "x"}')
    out["openrlhf lengths differ"] = ("/openrlhf", '{"query": ["a", "b"], "prompts": [], "labels": ["x"]}')
    return out


@pytest.mark.parametrize("name", sorted(hostile_bodies()))
def test_hostile_body_is_a_4xx_naming_the_problem_never_a_5xx(client, name):
    path, raw = hostile_bodies()[name]
    data = raw.encode("latin-1") if name == "score not UTF-8" else raw.encode("utf-8", "surrogatepass")
    r = client.post(path, content=data, headers=JSON, timeout=60)
    assert 400 <= r.status_code < 500 or r.status_code == 200, (r.status_code, r.text[:300])
    if r.status_code != 200:
        detail = r.json()["detail"]
        assert detail and all(isinstance(p, str) and ":" in p for p in detail), detail
        assert "Traceback" not in r.text
    else:  # accepted: then every rollout is a real result or a categorised error, never a 5xx
        assert "rewards" in r.json() or "reward" in r.json() or "groups" in r.json()


# --- 6. a fake judgement is never served as a real one ----------------------------------------------------


def test_slime_and_openrlhf_answers_carry_the_fake_mark(client):
    label = json.dumps({"reference": {"plan": "EXECUTION PLAN"}, "query": "Run pytest"})
    text = (
        "<|im_start|>assistant\n<tool_call>\n"
        + json.dumps({"name": "run_in_terminal", "arguments": {"command": "pytest -q"}})
        + "\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n3 passed\nExit code: 0\n</tool_response>"
        + "<|im_end|>\n<|im_start|>assistant\n<final_answer>3 passed</final_answer><|im_end|>"
    )
    r = client.post("/slime", json={"prompt": "Run pytest", "response": text, "label": label})
    assert r.status_code == 200 and r.json()["reward"] is not None and r.json()["fake"] is True
    r = client.post("/openrlhf", json={"query": [text], "prompts": [""], "labels": [label]})
    assert r.status_code == 200 and r.json()["extra_logs"]["fake_judge"] == [1.0]


def test_a_dry_run_against_the_fake_judge_is_never_served_to_another_judge(make_scorer, fake_judge, tmp_path):
    """Same model name, same cache: a judgement made by one endpoint is not an answer for another."""
    import asyncio

    from reward.core.trajectory import Group
    from reward.judge.base import Usage

    cache = tmp_path / "shared"
    data = Group.model_validate(group("dry", rollouts=[rollout("a"), rollout("b")]))
    dry = asyncio.run(make_scorer(cache=cache).score_group(data, Usage()))
    assert dry.judge.fake and all(r.status == "ok" for r in dry.rollouts)
    # production: the real judge (another endpoint) is unreachable
    prod = make_scorer(cache=cache, api_base="http://127.0.0.1:9/v1", num_retries=0, timeout_s=2.0)
    result = asyncio.run(prod.score_group(data, Usage()))
    assert [(r.status, r.reward) for r in result.rollouts] == [("error", None)] * 2
    assert {r.error.category for r in result.rollouts} == {"judge_unavailable"}


def test_plans_written_by_the_fake_judge_stay_fake_when_loaded(make_scorer, fake_judge, tmp_path, rubric):
    import asyncio

    from reward.core.trajectory import Group
    from reward.judge.base import Usage
    from reward.judge.fake.http import fake_verdict
    from reward.native.prepare import load_plans, prepare_group
    from reward.rubric.verdict import verdict_schema
    from reward.scoring.runner import plan_file

    refs, plans = tmp_path / "refs.jsonl", tmp_path / "plans.jsonl"
    refs.write_text(json.dumps({"id": "ref-1", "query": "q", "steps": [step()], "final_answer": "done"}) + "\n")
    scorer = make_scorer()
    asyncio.run(plan_file(scorer, refs, plans))
    assert json.loads(plans.read_text())["fake"] is True
    loaded = load_plans([plans])
    assert loaded["ref-1"].fake is True
    # grading by a judge that is not the fake one: the group is still fake, through its reference
    real = {"system_fingerprint": "real-judge", "model": "m", "id": "x", "object": "chat.completion"}
    plan = loaded["ref-1"].plan
    verdict = json.dumps(fake_verdict("", verdict_schema(rubric.spec)))
    choice = {"index": 0, "finish_reason": "stop"}
    fake_judge.script(
        {
            "kind": "condense",
            "body": {**real, "choices": [{**choice, "message": {"role": "assistant", "content": plan}}]},
        },
        {
            "kind": "grade",
            "body": {**real, "choices": [{**choice, "message": {"role": "assistant", "content": verdict}}]},
        },
    )
    data = prepare_group(
        Group.model_validate(group("by-id", rollouts=[rollout("z")], reference={"id": "ref-1"})), loaded
    )
    result = asyncio.run(scorer.score_group(data, Usage()))
    assert result.rollouts[0].status == "ok" and result.judge.fake is True


def test_plans_file_is_split_on_newlines_only(tmp_path):
    from reward.native.prepare import load_plans

    plan = "EXECUTION PLAN\u2028Task Outcome: success.\x85\x1c\x1d\x1eKey Findings: \u2029none"
    path = tmp_path / "plans.jsonl"
    path.write_text(
        json.dumps({"id": "a", "plan": plan}, ensure_ascii=False)
        + "\r\n"
        + json.dumps({"id": "b", "plan": "P"})
        + "\n",
        encoding="utf-8",
    )
    loaded = load_plans([path])
    assert loaded["a"].plan == plan and loaded["b"].plan == "P" and loaded["a"].fake is False


# --- 7. CPU work on large inputs runs off the event loop ---------------------------------------------------


def _off_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def test_large_rollouts_are_counted_and_cleaned_off_the_event_loop(make_scorer, fake_judge):
    import asyncio

    from reward.core.trajectory import Group
    from reward.judge.base import Usage
    from reward.judge.llm import count_tokens

    where = []

    def counter(text):
        where.append(_off_loop())
        return count_tokens(text)

    scorer = make_scorer()
    scorer.counter = counter
    big = rollout("big", steps=[step("cat log", 0, "PASSED test_x\n" * 40_000)])  # 560 KB, no num_tokens
    result = asyncio.run(scorer.score_group(Group.model_validate(group("big", rollouts=[big])), Usage()))
    assert result.rollouts[0].penalty == "too_long"
    assert where and all(where)


def test_request_bodies_are_parsed_off_the_event_loop(client, monkeypatch):
    import reward.service.app as server

    where = []
    real = server._parse_body

    def parse(body):
        where.append(_off_loop())
        return real(body)

    monkeypatch.setattr(server, "_parse_body", parse)
    assert client.post("/score", content=body(group("parsed")), headers=JSON).status_code == 200
    assert where == [True]


# --- property-based: nested and numeric edge cases anywhere in a request ------------------------------------

HOSTILE_BODIES = int(__import__("os").environ.get("REWARD_FUZZ_BODIES", "300"))


def _fragments():
    from hypothesis import strategies as st

    depth = st.integers(1, 3000)
    return st.one_of(
        st.integers(1, 9000).map(lambda n: "9" * n),  # up to 9000 digits
        st.integers(1, 9000).map(lambda n: "-" + "9" * n),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e-400", "-0", "0.0", "true", "null"]),
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.sampled_from(['"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '""', '"' + "x" * 5000 + '"']),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
    )


def _paths(value, prefix=()):
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


MARK = "@@HOSTILE@@"


def _with_fragment(doc, path, fragment: str) -> str:
    import copy

    doc = copy.deepcopy(doc)
    if not path:
        return fragment
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = MARK
    return json.dumps(doc).replace(json.dumps(MARK), fragment, 1)


def test_fuzz_nested_and_numeric_edge_cases_anywhere_are_never_a_5xx(client):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    messages = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "run_in_terminal", "arguments": json.dumps({"command": "pytest"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "3 passed", "exit_code": 0},
        {"role": "assistant", "content": "<final_answer>3 passed</final_answer>"},
    ]
    docs = {
        "/score": {"groups": [group("fz", rollouts=[rollout("a"), {"id": "m", "messages": messages}])]},
        "/slime": {"prompt": "p", "response": "r", "label": {"reference": {"plan": "P"}, "query": "q"}},
        "/openrlhf": {"query": ["q"], "prompts": ["p"], "labels": [{"reference": {"plan": "P"}}]},
    }
    targets = [(p, path) for p, d in docs.items() for path in _paths(d)]
    seen = {"2xx": 0, "4xx": 0}

    @settings(max_examples=HOSTILE_BODIES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(target=st.sampled_from(targets), fragment=_fragments())
    def check(target, fragment):
        path, where = target
        raw = _with_fragment(docs[path], where, fragment)
        r = client.post(path, content=raw.encode("utf-8", "surrogatepass"), headers=JSON, timeout=60)
        assert r.status_code < 500 or (r.status_code == 503 and r.headers.get("retry-after")), (
            path,
            where,
            fragment[:80],
            r.status_code,
            r.text[:300],
        )
        if 400 <= r.status_code < 500:
            assert all(isinstance(p, str) for p in r.json()["detail"])
        seen["2xx" if r.status_code < 300 else "4xx"] += 1

    check()
    assert seen["4xx"] > 0
    print(f"fuzzed {sum(seen.values())} hostile request bodies: {seen}")


def test_lone_surrogates_in_ids_become_replacement_characters_not_a_500(client):
    raw = json.dumps({"groups": [group("s\ud800", rollouts=[rollout("\udfffid")])]})
    r = client.post("/score", content=raw.encode(), headers=JSON)
    assert r.status_code == 200
    g = r.json()["groups"][0]
    assert g["group_id"] == "s\ufffd" and g["rollouts"][0]["id"] == "\ufffdid"


# --- label fields of any JSON type: a 422 naming the field, never a 5xx -------------------------------------


def _nested(depth: int) -> dict:
    value: dict = {"a": 1}
    for _ in range(depth):
        value = {"a": [value]}
    return value


WRONG_TYPES = {
    "object": {"a": 1},
    "list": [1, "x"],
    "number": 7,
    "float": 1.5,
    "true": True,
    "false": False,
    "null": None,
    "deep": _nested(400),  # 800 levels: under the body parser's limit
    "wide": list(range(5000)),
}
# field -> where it sits in the label and what must be named; null is "absent" for the optional ones
LABEL_FIELDS = {
    "group_id": (("group_id",), "group_id", False),
    "query": (("query",), "query", False),
    "reference": (("reference",), "reference", True),
    "reference.plan": (("reference", "plan"), "reference.plan", True),
    "reference.id": (("reference", "id"), "reference.id", True),
    "reference.steps": (("reference", "steps"), "reference.steps", True),
    "reference.steps.command": (("reference", "steps", 0, "command"), "reference.steps[0].command", True),
    "reference.final_answer": (("reference", "final_answer"), "reference.final_answer", True),
    "reference.messages": (("reference", "messages"), "reference.messages", False),
    "reference.text": (("reference", "text"), "reference.text", False),
}


def _label(path: tuple, value: object) -> dict:
    label: dict = {"reference": {"plan": "P"}, "query": "q", "group_id": "g"}
    if path[0] == "reference" and len(path) > 1:
        label["reference"] = {"steps": [{"command": "ls"}]} if path[1] == "steps" else {}
    target = label
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return label


def _label_cases() -> list[tuple[str, str, str, bool]]:
    return [
        (field, kind, endpoint, as_text)
        for field, (_, _, null_is_wrong) in LABEL_FIELDS.items()
        for kind in WRONG_TYPES
        if kind != "null" or null_is_wrong
        for endpoint in ("/openrlhf", "/slime")
        for as_text in (False, True)
    ]


def _post_label(client: TestClient, endpoint: str, label: object) -> httpx.Response:
    if endpoint == "/openrlhf":
        return client.post(endpoint, json={"query": ["q"], "prompts": ["p"], "labels": [label]}, timeout=60)
    return client.post(endpoint, json={"prompt": "p", "response": "r", "label": label}, timeout=60)


@pytest.mark.parametrize(("field", "kind", "endpoint", "as_text"), _label_cases())
def test_a_label_field_of_any_json_type_is_a_422_naming_the_field(client, field, kind, endpoint, as_text):
    path, named, _ = LABEL_FIELDS[field]
    label = _label(path, WRONG_TYPES[kind])
    r = _post_label(client, endpoint, json.dumps(label) if as_text else label)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    where = "labels[0]" if endpoint == "/openrlhf" else "label"
    detail = r.json()["detail"]
    assert any(d.startswith(f"{where}.{named}") for d in detail), detail[:3]
    assert "Traceback" not in r.text


@pytest.mark.parametrize("endpoint", ["/openrlhf", "/slime"])
@pytest.mark.parametrize("as_text", [False, True])
def test_a_valid_label_still_scores(client, endpoint, as_text):
    label = {"reference": {"plan": "EXECUTION PLAN"}, "query": "Run pytest", "group_id": "g-valid"}
    r = _post_label(client, endpoint, json.dumps(label) if as_text else label)
    assert r.status_code == 200, r.text[:300]
    assert (r.json()["rewards"][0] if endpoint == "/openrlhf" else r.json()["reward"]) is not None


def test_the_problem_names_the_label_it_came_from_not_a_group(client):
    labels = [{"reference": {"plan": "P"}, "query": "q"}, {"reference": {"id": "not-loaded"}, "query": "q2"}]
    r = client.post("/openrlhf", json={"query": ["a", "b"], "prompts": ["p", "p"], "labels": labels})
    assert r.status_code == 422 and r.json()["detail"] == [
        "labels[1].reference.id: no reference plan with id 'not-loaded' is loaded"
    ]


@pytest.mark.parametrize("as_text", [False, True])
def test_labels_nested_up_to_the_parsers_limit_are_never_a_5xx(client, as_text):
    for depth in range(900, 1000, 10):  # json.dumps and == of the reference recurse deeper than parsing it did
        label = '{"reference": {"steps": ' + "[" * depth + "]" * depth + "}}"
        raw = '{"query": ["q"], "prompts": ["p"], "labels": [' + (json.dumps(label) if as_text else label) + "]}"
        r = client.post("/openrlhf", content=raw, headers=JSON, timeout=60)
        assert r.status_code == 422, (depth, r.status_code, r.text[:300])
        assert all(d.startswith(("labels[0]", "body:")) for d in r.json()["detail"]), (depth, r.text[:300])


@pytest.mark.parametrize("content", [[{"text": 5}], [{"type": "text", "text": None}], {"a": 1}, 7])
def test_a_slime_prompt_whose_user_content_is_not_text_is_a_422(client, content):
    body = {"prompt": [{"role": "user", "content": content}], "response": "r", "label": {"reference": {"plan": "P"}}}
    r = client.post("/slime", json=body)
    assert r.status_code == 422 and r.json()["detail"][0].startswith("prompt:"), r.text[:300]


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize("field", ["meta", "inputs"])
def test_free_json_too_deep_to_write_back_is_a_422_before_any_judge_call(client, field):
    """meta / inputs are echoed in the answer, whose writer refuses nesting past ~255: deeper ones (still
    parseable) were scored, paid for, then a 500. Now a 422 naming the field; 64 deep is fine."""
    deep = group("deep", rollouts=[rollout("a")])
    deep["rollouts"][0][field] = _nested(300)
    r = client.post("/score", json={"groups": [deep]})
    assert r.status_code == 422 and f"rollouts[0].{field}" in r.text and "nested more than 64 deep" in r.text
    ok = group("ok", rollouts=[rollout("a")])
    ok["rollouts"][0]["meta"] = _nested(64)
    answered = client.post("/score", json={"groups": [ok]})
    assert answered.status_code == 200 and answered.json()["groups"][0]["rollouts"][0]["meta"] == _nested(64)


def test_a_line_with_too_deep_meta_is_a_line_error_and_the_other_groups_are_scored(fake_judge, tmp_path):
    from tests.conftest import EXAMPLES, cli_env, read_jsonl, run_cli

    lines = EXAMPLES.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["rollouts"][0]["meta"] = _nested(300)
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
    out = tmp_path / "out.jsonl"
    ran = run_cli("score", inp, "-o", out, "--no-progress", env=cli_env(fake_judge, tmp_path / "c"), check=False)
    assert "Traceback" not in ran.stderr and "nested more than 64 deep" in ran.stderr + ran.stdout
    assert len(read_jsonl(out)) == len(lines) - 1


def test_a_stalled_cache_probe_stalls_readyz_never_the_event_loop(client, service, monkeypatch):
    """The readiness probe writes to the cache's disk (or Redis): on a stalled NFS/EBS volume that write hangs.
    Run on the event loop it stalled every request, /healthz (the liveness check) included."""
    import threading

    real, entered, release = service.store.probe, threading.Event(), threading.Event()

    def stalled() -> tuple[bool, str]:
        entered.set()
        release.wait(30)
        return real()

    monkeypatch.setattr(service.store, "probe", stalled)
    answers: list[int] = []
    waiting = threading.Thread(target=lambda: answers.append(client.get("/readyz").status_code))
    waiting.start()
    try:
        assert entered.wait(30)
        started = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert time.monotonic() - started < 5  # answered while the probe is still stuck
        assert waiting.is_alive()
    finally:
        release.set()
        waiting.join(30)
    assert answers == [200]
