"""The cached judge: a cache is storage someone else may write to. A planted or corrupt plan or verdict is a miss
(asked again, overwritten, counted), never a reward, never a 500; the key is what the judge is sent."""

import copy
import json

import pytest

from reward.cache.disk import Store
from reward.cache.redis_store import RedisStore
from reward.core.trajectory import Group
from reward.judge.base import Usage
from reward.scoring.build import run_scoring
from tests.conftest import group


def score(scorer, data):
    return run_scoring(scorer, scorer.score_group(Group.model_validate(data), Usage()))


def rewards(result):
    return [r.reward for r in result.rollouts]


def poison_verdicts(value, how):
    bad = copy.deepcopy(value)
    if "scores" not in bad:
        return bad
    first = next(iter(bad["scores"]))
    if how == "huge":
        bad["scores"][first][0] = 1000
    elif how == "string":
        bad["scores"][first][0] = "9"
    elif how == "negative":
        bad["scores"][first][0] = -5
    elif how == "nan":
        bad["scores"][first][0] = float("nan")
    elif how == "missing":
        del bad["scores"][first]
    elif how == "extra":
        bad["scores"]["bonus"] = [10, "planted"]
    elif how == "fake-flag":
        bad["fake"] = "no"
    elif how == "shape":
        bad = {"scores": [1, 2, 3], "fake": False}
    return bad


POISONS = ["huge", "string", "negative", "nan", "missing", "extra", "fake-flag", "shape"]


@pytest.mark.parametrize("how", POISONS)
def test_a_planted_verdict_on_disk_is_asked_again_never_a_reward(make_local_scorer, tmp_path, how):
    cache = tmp_path / "cache"
    clean = score(make_local_scorer(cache=cache), group())
    store = Store(cache)
    keys = [k for k in store._disk.iterkeys() if k.startswith("verdict:")]
    assert len(keys) == 4
    for k in keys:
        store._disk.set(k, json.dumps(poison_verdicts(json.loads(store._disk.get(k)), how)))
    store.close()
    scorer = make_local_scorer(cache=cache)
    again = score(scorer, group())
    assert scorer.judge.counts()["grade"] == 4  # every planted verdict was a miss: asked again
    assert scorer.store.invalid_values == 4
    assert rewards(again) == rewards(clean) and all(-50 <= r <= 100 for r in rewards(again))
    assert all(r.status == "ok" for r in again.rollouts)
    scorer.store.close()
    third = make_local_scorer(cache=cache)  # the answers asked again replaced the planted values
    assert rewards(score(third, group())) == rewards(clean) and third.judge.counts()["total"] == 0


# A well-formed value a judge reply could not have been: a refusal, a text missing the template's sections.
REFUSED = ["I'm sorry, but I can't help with that.", "Looks fine to me."]


@pytest.mark.parametrize("plan", [123, "", None, ["a"], {"text": "x"}, *REFUSED])
def test_a_planted_plan_is_asked_again(make_local_scorer, tmp_path, plan):
    cache = tmp_path / "cache"
    clean = score(make_local_scorer(cache=cache), group())
    store = Store(cache)
    for k in [k for k in store._disk.iterkeys() if k.startswith("plan:")]:
        store._disk.set(k, json.dumps({"plan": plan, "fake": True}))
    store.close()
    scorer = make_local_scorer(cache=cache)
    assert rewards(score(scorer, group())) == rewards(clean)
    assert scorer.judge.counts()["condense"] == 5 and scorer.store.invalid_values == 5


@pytest.mark.parametrize("how", ["huge", "string", "fake-flag"])
def test_a_planted_verdict_in_redis_is_asked_again(make_local_scorer, redis_server, monkeypatch, tmp_path, how):
    from reward.cache.redis_store import PREFIX

    first = make_local_scorer()
    first.store = first.cached.store = RedisStore(redis_server.url)
    clean = score(first, group())
    client = redis_server.client()
    keys = [k.decode() for k in client.keys(PREFIX + "verdict:*")]
    assert len(keys) == 4
    for k in keys:
        client.set(k, json.dumps(poison_verdicts(json.loads(client.get(k)), how)))
    scorer = make_local_scorer()
    scorer.store = scorer.cached.store = RedisStore(redis_server.url)
    again = score(scorer, group())
    assert scorer.judge.counts()["grade"] == 4 and scorer.store.invalid_values == 4
    assert rewards(again) == rewards(clean)


def test_the_endpoint_is_resolved_as_litellm_resolves_it(monkeypatch):
    from reward.judge.llm import endpoint

    for var in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert endpoint("openai/gpt-4.1", "http://gw:1/v1/") == "http://gw:1/v1"  # given: wins
    assert endpoint("openai/gpt-4.1", None) == "https://api.openai.com"
    monkeypatch.setenv("OPENAI_API_BASE", "http://second:2/v1")
    assert endpoint("openai/gpt-4.1", None) == "http://second:2/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://first:1/v1")  # litellm reads this one first
    assert endpoint("gpt-4.1", None) == "http://first:1/v1"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://claude:3")
    assert endpoint("anthropic/claude-sonnet-4-5", None) == "http://claude:3"


def test_a_judgement_from_one_endpoint_is_never_served_for_another(fake_judge, rubric, monkeypatch, tmp_path):
    """OPENAI_BASE_URL points litellm at one judge, then at another: the second is asked, not the cache."""
    from reward.judge.fake.http import FakeJudgeServer
    from reward.judge.litellm_judge import LiteLLMJudge
    from reward.scoring.scorer import Scorer
    from tests.conftest import settings_for

    settings = settings_for(fake_judge, api_base=None, condense=settings_for(fake_judge).condense)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_judge.api_base)

    def run():
        store = Store(tmp_path / "cache")
        try:
            return score(Scorer(rubric, LiteLLMJudge(settings), store), group())
        finally:
            store.close()

    first = run()
    assert fake_judge.counts()["total"] == 9
    with FakeJudgeServer() as other:
        monkeypatch.setenv("OPENAI_BASE_URL", other.api_base)
        second = run()
        assert other.counts()["total"] == 9  # asked anew: the endpoint is part of every key
    assert rewards(second) == rewards(first)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_judge.api_base)
    fake_judge.reset()
    run()
    assert fake_judge.counts()["total"] == 0  # the first endpoint's answers are still its own
