"""A judge reply's `logprobs` field, however malformed, never fails the call: it is read only when logprobs were
asked for, and any odd shape there means "no usable logprobs" (the verdict keeps its written values, marked
`scores_from: written`, as tests/test_logprob_scores.py checks), never an exception (a 500 in `reward serve`)."""

from __future__ import annotations

import asyncio
import math
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward.judge.base import CallSettings, Reply, Usage
from reward.judge.litellm_judge import LiteLLMJudge
from reward.judge.llm import litellm
from reward.judge.logprob_reply import token_logprobs
from reward.rubric.logprob_scores import TokenLogprob
from tests.conftest import TEST_MODEL, settings_for

MSG = [{"role": "user", "content": "## Task Query\n\nhello"}]
GOOD = {"content": [{"token": "hello", "logprob": -0.25, "top_logprobs": [{"token": "hello", "logprob": -0.25}]}]}
HOSTILE: list[Any] = [
    {"content": [{"token": "hello", "logprob": -0.1, "top_logprobs": 5}]},  # the reviewer's: 'int' not iterable
    "garbage",
    5,
    True,
    [1, 2],
    {"content": "hello"},
    {"content": {"token": "hello"}},
    {"content": [[["nested"]]]},
    {"content": [{"token": 5, "logprob": -0.1}]},
    {"content": [{"token": "hello", "logprob": "low"}]},
    {"content": [{"token": "hello", "logprob": 1e308}]},  # no logprob is positive
    {"content": [{"token": "hello", "logprob": -0.1, "top_logprobs": [5]}]},
    {"content": [{"token": "hello", "logprob": -0.1, "top_logprobs": [{"token": None, "logprob": "a"}]}]},
    {"content": [{"token": "hello", "logprob": -0.1, "top_logprobs": "hello"}]},
    {"content": [{"token": "hello", "logprob": -0.1}, None]},
]


def body(logprobs: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "test-judge",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hello"},
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def client(fake_judge):
    # grade asks for logprobs (the fake's model takes them), condense does not
    return LiteLLMJudge(settings_for(fake_judge, grade=CallSettings(TEST_MODEL, 0.0, 64, 5), num_retries=0))


def replies(client: LiteLLMJudge, fake_judge, logprobs: Any) -> list[Reply]:
    fake_judge.script(*[{"kind": "condense", "body": body(logprobs)}] * 2)  # the fake sees both as condense

    async def main() -> list[Reply]:
        try:
            return [await client.complete(role, MSG, Usage()) for role in ("condense", "grade")]
        finally:
            await client.aclose()

    with warnings.catch_warnings():  # pydantic warns when litellm keeps the odd field as it came
        warnings.simplefilter("ignore")
        return asyncio.run(main())


@pytest.mark.parametrize("logprobs", HOSTILE, ids=lambda v: repr(v)[:40])
def test_a_malformed_logprobs_field_is_no_logprobs_never_an_error(client, fake_judge, logprobs):
    condensed, graded = replies(client, fake_judge, logprobs)
    assert condensed.content == graded.content == "hello"
    assert condensed.logprobs is None and graded.logprobs is None
    calls = fake_judge.state.calls
    assert [c["top_logprobs"] for c in calls] == [None, 5]  # asked for on grade only


def test_well_formed_logprobs_are_read_only_where_they_were_asked_for(client, fake_judge):
    condensed, graded = replies(client, fake_judge, GOOD)
    assert condensed.logprobs is None  # not asked for: whatever came is ignored
    assert graded.logprobs == (TokenLogprob("hello", -0.25, (("hello", -0.25),)),)


# --- fuzzed: any JSON where the logprobs go, as a plain dict and as litellm parses it --------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
token_like = st.fixed_dictionaries(
    {"token": st.text(max_size=3) | json_values, "logprob": st.floats() | st.integers() | json_values},
    optional={
        "top_logprobs": st.lists(st.fixed_dictionaries({"token": json_values, "logprob": json_values}), max_size=3)
        | json_values
    },
)
logprobs_like = json_values | st.fixed_dictionaries({"content": st.lists(token_like, max_size=4) | json_values})


def usable(out: tuple[TokenLogprob, ...] | None) -> bool:
    """Either nothing, or tokens a score can be read from: text, and logprobs that are numbers <= 0."""
    if out is None:
        return True
    return bool(out) and all(
        isinstance(t.token, str)
        and not math.isnan(t.logprob)
        and t.logprob <= 0
        and all(isinstance(a, str) and not math.isnan(b) and b <= 0 for a, b in t.top)
        for t in out
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logprobs=logprobs_like)
def test_no_logprobs_shape_makes_the_reader_raise(logprobs):
    choice = body(logprobs)["choices"][0]
    assert usable(token_logprobs(choice))  # never raises, never a token a score could not be read from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = litellm.ModelResponse(**body(logprobs)).choices[0]
        except Exception:  # litellm refused the body itself: a call error, not the reader's
            return
        assert usable(token_logprobs(parsed))


@given(
    tokens=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=4),
            st.floats(max_value=0, allow_nan=False),
            st.lists(st.tuples(st.text(max_size=4), st.floats(max_value=0, allow_nan=False)), max_size=3),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_well_formed_logprobs_are_read_whole(tokens):
    content = [
        {"token": t, "logprob": lp, "top_logprobs": [{"token": a, "logprob": b} for a, b in top]}
        for t, lp, top in tokens
    ]
    want = tuple(TokenLogprob(t, lp, tuple(top)) for t, lp, top in tokens)
    assert token_logprobs({"logprobs": {"content": content}}) == want
