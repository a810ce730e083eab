"""Plots for the HTML reports, drawn with matplotlib and embedded as SVG data URIs.

Figures are built with `matplotlib.figure.Figure` (no pyplot, no global backend state). Each SVG goes into
an <img> as a data URI: the page needs no network, the SVGs' element ids cannot collide, and an SVG in an
<img> runs no script. Text is drawn as paths, so no font is needed to view it and no label from a rollout
file is ever markup. Text is never mathtext either: a label with `$` in it is drawn as typed.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import ParamSpec

from reward.errors import UsageError

# What installs the plotting library: matplotlib is the `report` extra, not a dependency, so the server (and its
# image) goes without it. Kept short: the CLI prints it as one line even on an 80-column console.
INSTALL_HINT = "pip install 'rubric-reward[report]'"

try:
    import matplotlib
    from matplotlib.figure import Figure
except ModuleNotFoundError as exc:
    if exc.name != "matplotlib":  # matplotlib is there but broken (one of its own modules): the real error
        raise
    # A RewardError: the CLI prints this one line and exits 2, instead of a traceback from a command's import.
    raise UsageError(f"the HTML report needs matplotlib: {INSTALL_HINT}") from exc

BLUE, ORANGE, RED, GREEN, GREY = "#4c72b0", "#dd8452", "#c44e52", "#55a868", "#8c8c8c"
GROUP_COLOURS = {"positive": GREEN, "pitfall": RED, "final_answer": BLUE}


def _settings() -> AbstractContextManager[None]:
    """Set while a figure is built and saved (tick labels are made at draw time), restored after: the
    caller's matplotlib settings are left as they were."""
    return matplotlib.rc_context({"text.parse_math": False, "svg.hashsalt": "reward", "svg.fonttype": "path"})


P = ParamSpec("P")


def _plot(draw: Callable[P, str]) -> Callable[P, str]:
    @functools.wraps(draw)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> str:
        with _settings():
            return draw(*args, **kwargs)

    return wrapped


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    with _settings():
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@_plot
def reward_histogram(graded: Sequence[float], penalized: Sequence[float]) -> str:
    fig = _figure(7, 3.2)
    ax = fig.add_subplot()
    data = [list(graded), list(penalized)]
    values = [v for d in data for v in d]
    if values:
        lo, hi = min(values), max(values)
        bins = 30 if hi > lo else 1
        ax.hist(data, bins=bins, range=(lo, hi + 1e-9), stacked=True, color=[BLUE, RED], label=["graded", "penalised"])
        ax.legend(frameon=False)
    ax.set_xlabel("reward")
    ax.set_ylabel("rollouts")
    ax.set_title("Reward distribution")
    return to_data_uri(fig)


@_plot
def dimension_boxes(scores: dict[str, list[float]], groups: dict[str, str], scale: tuple[float, float]) -> str:
    names = list(scores)
    fig = _figure(7, 0.35 * max(len(names), 3) + 1.2)
    ax = fig.add_subplot()
    if names:
        parts = ax.boxplot([scores[n] for n in names], orientation="horizontal", widths=0.6, patch_artist=True)
        for patch, n in zip(parts["boxes"], names, strict=True):
            patch.set_facecolor(GROUP_COLOURS.get(groups.get(n, ""), GREY))
            patch.set_alpha(0.6)
        means = [sum(scores[n]) / len(scores[n]) for n in names]
        ax.scatter(means, range(1, len(names) + 1), marker="D", color="black", s=14, zorder=3)
        ax.set_yticks(range(1, len(names) + 1), [f"{n} ({groups[n]})" if n in groups else n for n in names])
        ax.invert_yaxis()
    ax.set_xlim(scale[0] - 0.5, scale[1] + 0.5)
    ax.set_xlabel("score (pitfall dimensions: higher is worse)")
    ax.set_title("Per-dimension scores of graded rollouts (◆ mean)")
    return to_data_uri(fig)


@_plot
def group_spread(rows: Sequence[tuple[str, list[float], bool]]) -> str:
    """One line per group: its rewards as dots; filtered groups (no GRPO signal) in grey."""
    fig = _figure(7, 0.3 * max(len(rows), 3) + 1.2)
    ax = fig.add_subplot()
    for y, (_, rewards, filtered) in enumerate(rows):
        colour = GREY if filtered else BLUE
        if rewards:
            ax.hlines(y, min(rewards), max(rewards), color=colour, alpha=0.5)
            ax.scatter(rewards, [y] * len(rewards), color=colour, s=16, zorder=3)
    ax.set_yticks(range(len(rows)), [g if len(g) <= 40 else g[:39] + "…" for g, _, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("reward (grey: filtered, no signal for GRPO)")
    ax.set_title("Rewards within each group, widest spread first")
    return to_data_uri(fig)


@_plot
def rate_bars(rates: dict[str, float]) -> str:
    names = list(rates)
    fig = _figure(7, 0.35 * max(len(names), 3) + 1.0)
    ax = fig.add_subplot()
    colours = [RED if n.startswith("error") else ORANGE if n.startswith("penalty") else GREY for n in names]
    ax.barh(range(len(names)), [rates[n] for n in names], color=colours)
    for y, n in enumerate(names):
        ax.text(rates[n], y, f" {rates[n]:.1%}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*rates.values(), 0.05]) * 1.25)
    ax.set_xlabel("fraction (of rollouts; filter: of groups)")
    ax.set_title("Penalty, filter and error rates")
    return to_data_uri(fig)
