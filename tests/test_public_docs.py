"""The public Python API is documented: every public module, class, function and method of the adapters and
the top-level exports has a docstring, and the package docstring's in-process example runs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import reward
import reward.adapters


def _undocumented(module) -> list[str]:
    missing = [] if module.__doc__ else [module.__name__]
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if not obj.__doc__:
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                missing += [
                    f"{module.__name__}.{name}.{m}"
                    for m, f in vars(obj).items()
                    if not m.startswith("_") and inspect.isfunction(f) and not f.__doc__
                ]
    return missing


def test_adapters_and_client_are_documented():
    missing: list[str] = []
    for info in pkgutil.iter_modules(reward.adapters.__path__):
        missing += _undocumented(importlib.import_module(f"reward.adapters.{info.name}"))
    assert missing == []


def test_top_level_exports_are_documented():
    missing = [name for name in reward.__all__ if not getattr(reward, name).__doc__]
    assert missing == []


def test_the_package_docstring_example_runs(tmp_path):
    import asyncio
    import json

    from tests.conftest import EXAMPLES

    line = json.loads(EXAMPLES.read_text(encoding="utf-8").splitlines()[0])
    rubric = reward.load_rubric("execution_subagent")
    judge = reward.InProcessFakeJudge(reward.judge_settings(rubric))
    scorer = reward.Scorer(rubric, judge, reward.Store(None))
    result = asyncio.run(scorer.score_group(reward.Group.model_validate(line), reward.Usage()))
    assert result.judge.fake and len(result.rollouts) == 8
    assert "reward.InProcessFakeJudge(reward.judge_settings(rubric))" in (reward.__doc__ or "")
