"""Rendering of the judge prompts from jinja2 templates (StrictUndefined: a missing variable is an error)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

from reward.rubric import Rubric
from reward.trajectory import CondenseInput

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # plain-text prompts, not HTML
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)

Messages = list[dict[str, str]]


@lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def render(source: str, variables: dict[str, Any]) -> Messages:
    """Render a template that defines `system()` and `user()` macros into chat messages."""
    module = _compile(source).make_module(variables)
    return [
        {"role": "system", "content": str(module.system()).strip()},
        {"role": "user", "content": str(module.user()).strip()},
    ]


def condense_messages(rubric: Rubric, ci: CondenseInput) -> Messages:
    t = rubric.spec.truncation
    return render(
        rubric.condense_template,
        {
            "query": ci.query,
            "steps": ci.steps,
            "final_answer": ci.final_answer,
            "head": t.head,
            "tail": t.tail,
        },
    )


def grade_messages(
    rubric: Rubric, *, query: str, reference_plan: str, candidate_plan: str, final_answer: str
) -> Messages:
    return render(
        rubric.grade_template,
        {
            "query": query,
            "reference_plan": reference_plan,
            "candidate_plan": candidate_plan,
            "final_answer": final_answer,
            "dimensions": rubric.spec.dimensions,
            "scale": rubric.spec.scale,
        },
    )
