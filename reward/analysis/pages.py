"""What the self-contained HTML pages share: the jinja2 environment of their templates (reward/analysis/html).

Everything a page needs is inside it (CSS inline, plots as SVG data URIs): it opens from disk with no
network. Every value from a scored file (reasons, ids, labels) is HTML-escaped by autoescape: a rollout is
the policy's output and may contain markup.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

page_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "html"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def fmt(x: float | None, spec: str = ".2f") -> str:
    """A number as a page shows it; a missing one is a dash, never 0."""
    return "–" if x is None else format(x, spec)


page_env.filters["fmt"] = fmt
