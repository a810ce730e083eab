"""Does the configured judge have credentials? Checked before a run or a server starts, so a missing key is
one line naming the variable, not a run of `judge_auth` errors (or a Ready pod answering 503 to every step).

litellm knows which environment variables a provider reads (`validate_environment`). Only providers whose
credentials are API-key variables are refused; others (AWS, Vertex, Azure AD) may find credentials elsewhere
(an instance role, a credentials file) and are left to their first call.
"""

from __future__ import annotations

import os
from typing import Any

from reward.judge.base import JudgeSettings
from reward.judge.llm import choose_route, litellm

_ENV_REF = "os.environ/"


def _missing(model: str, api_base: str | None, api_key: str | None) -> list[str]:
    if api_key:
        if api_key.startswith(_ENV_REF):  # a router config's reference to a variable
            name = api_key[len(_ENV_REF) :]
            return [] if os.environ.get(name) else [name]
        return []
    route = choose_route(model, api_base)
    if route.kind == "openai_compatible":
        return []  # a self-hosted OpenAI-compatible server: no key is required
    missing: list[str] = litellm.validate_environment(model=route.model, api_base=api_base).get("missing_keys") or []
    if api_base:
        missing = [k for k in missing if not k.endswith("_API_BASE")]
    return missing if missing and all(k.endswith("_API_KEY") for k in missing) else []


def _deployments(router_config: dict[str, Any]) -> list[dict[str, Any]]:
    models = router_config.get("model_list") or []
    return [m.get("litellm_params") or {} for m in models if isinstance(m, dict)]


def missing_credentials(settings: JudgeSettings, router_config: dict[str, Any] | None = None) -> list[str]:
    """One line per judge model that cannot be called for want of a key, naming the variable(s); empty when
    every model has what it needs (or its provider gets credentials some other way)."""
    problems: list[str] = []
    if router_config is not None:
        targets = [(str(p.get("model", "")), p.get("api_base"), p.get("api_key")) for p in _deployments(router_config)]
    else:
        models = dict.fromkeys([settings.condense.model, settings.grade.model])
        targets = [(m, settings.api_base, settings.api_key) for m in models]
    for model, api_base, api_key in targets:
        if not model:
            continue
        missing = _missing(model, api_base, api_key)
        if missing:
            names = " or ".join(missing)
            hint = "" if router_config is not None else " (or REWARD_JUDGE_API_KEY / --judge-api-key)"
            problems.append(f"judge {model}: no credentials: set {names}{hint}")
    return problems
