"""Judge pinning: a reward is only comparable across a run while the judge behind it stays the same.

Two ways it silently changes: a floating alias (`gpt-4.1`, `*-latest`) that the provider repoints at a new
snapshot, and a model retired under a running experiment. litellm's model map knows both: dated snapshots
sit next to their alias, and many models carry a `deprecation_date`. A floating alias or a retirement within
`SOON_DAYS` is a warning; a model past its retirement date is refused unless REWARD_ALLOW_RETIRED_JUDGE is set
(its calls would fail, or be served by whatever the provider routes them to).
"""

from __future__ import annotations

import datetime as dt
import re

from reward.judge.llm import litellm

SOON_DAYS = 60
_DATED = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4})$")  # -2025-04-14, -20250929, -0613


def _name(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


def is_floating(model: str) -> bool:
    """An alias the provider may repoint: `*-latest`, or a name litellm also knows in dated form."""
    name = _name(model)
    if name.endswith("-latest"):
        return True
    if _DATED.search(name):
        return False
    prefix = name + "-"
    return any(k.startswith(prefix) and _DATED.fullmatch("-" + k[len(prefix) :]) for k in litellm.model_cost)


def retirement(model: str) -> dt.date | None:
    info = litellm.model_cost.get(model) or litellm.model_cost.get(_name(model)) or {}
    raw = info.get("deprecation_date")
    try:
        return dt.date.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def pinning_problems(models: list[str], today: dt.date | None = None) -> tuple[list[str], list[str]]:
    """(warnings, refusals) for the judge models, each one line naming the model."""
    today = today or dt.date.today()
    warnings: list[str] = []
    refusals: list[str] = []
    for model in dict.fromkeys(models):
        retired = retirement(model)
        if retired is not None and retired <= today:
            refusals.append(
                f"judge {model} was retired on {retired.isoformat()} (litellm's model map): choose a current "
                "model, or set REWARD_ALLOW_RETIRED_JUDGE=1 if your endpoint still serves it"
            )
            continue
        if retired is not None and (retired - today).days <= SOON_DAYS:
            warnings.append(
                f"judge {model} retires on {retired.isoformat()}: plan the move to another judge before then "
                "(rewards from two judges are not on one scale)"
            )
        if is_floating(model):
            warnings.append(
                f"judge {model} is a floating alias: the provider may change the model behind it during a run; "
                "pin a dated snapshot"
            )
    return warnings, refusals
