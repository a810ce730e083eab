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


# Colours of a rubric's groups in declaration order: failure-mode groups (higher is worse) in warm colours,
# the others in cool ones. The bundled rubric's positive / pitfall / final_answer get green / red / blue.
GOOD_COLOURS = (GREEN, BLUE, "#8172b3", "#64b5cd", "#937860", "#da8bc3")
BAD_COLOURS = (RED, ORANGE, "#a0522d", "#ccb974")


def group_colours(failure_mode: dict[str, bool]) -> dict[str, str]:
    """Each rubric group's colour, from its direction and declared order (never from its name)."""
    colours, good, bad = {}, 0, 0
    for name, worse in failure_mode.items():
        if worse:
            colours[name], bad = BAD_COLOURS[bad % len(BAD_COLOURS)], bad + 1
        else:
            colours[name], good = GOOD_COLOURS[good % len(GOOD_COLOURS)], good + 1
    return colours


@_plot
def dimension_boxes(
    scores: dict[str, list[float]],
    groups: dict[str, str],
    scale: tuple[float, float],
    failure_mode: dict[str, bool] | None = None,
) -> str:
    """Box plots of every dimension's scores on the rubric's scale, coloured and labelled by rubric group."""
    names = list(scores)
    colours = group_colours(failure_mode or {})
    fig = _figure(7, 0.35 * max(len(names), 3) + 1.2)
    ax = fig.add_subplot()
    if names:
        parts = ax.boxplot([scores[n] for n in names], orientation="horizontal", widths=0.6, patch_artist=True)
        for patch, n in zip(parts["boxes"], names, strict=True):
            patch.set_facecolor(colours.get(groups.get(n, ""), GREY))
            patch.set_alpha(0.6)
        means = [sum(scores[n]) / len(scores[n]) for n in names]
        ax.scatter(means, range(1, len(names) + 1), marker="D", color="black", s=14, zorder=3)
        ax.set_yticks(range(1, len(names) + 1), [f"{n} ({groups[n]})" if n in groups else n for n in names])
        ax.invert_yaxis()
    pad = (scale[1] - scale[0]) / 20
    ax.set_xlim(scale[0] - pad, scale[1] + pad)
    worse = [g for g, w in (failure_mode or {}).items() if w]
    ax.set_xlabel(f"score (higher is worse in: {', '.join(worse)})" if worse else "score (higher is better)")
    ax.set_title("Per-dimension scores of graded rollouts (◆ mean)")
    return to_data_uri(fig)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# Label levels around a group's line, in points: above, below, further above, further below.
_LEVELS = (4.0, -4.0, 11.0, -11.0)
_CHAR_PT = 3.3  # the width of a 5.5 pt character, about


def _label_levels(points: list[tuple[str, float]], points_per_unit: float) -> list[int | None]:
    """A level (index into _LEVELS) for each label, left to right, so that labels at one level do not overlap;
    None where all levels are taken there (the id is still in the table)."""
    ends = [-float("inf")] * len(_LEVELS)
    levels: list[int | None] = []
    for rid, x in points:
        half = (len(rid) * _CHAR_PT + 3) / 2 / points_per_unit
        level = next((k for k, end in enumerate(ends) if x - half > end), None)
        if level is not None:
            ends[level] = x + half
        levels.append(level)
    return levels


@_plot
def group_spread(rows: Sequence[tuple[str, list[tuple[str, float]], bool]]) -> str:
    """One line per group: its rewards as dots, each labelled with its rollout id (so a dot can be looked up
    in the table); filtered groups (no GRPO signal) in grey."""
    fig = _figure(8, 0.55 * max(len(rows), 3) + 1.2)
    ax = fig.add_subplot()
    values = [v for _, rewards, _ in rows for _, v in rewards]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) / 20 or 1.0
    ax.set_xlim(lo - pad, hi + pad)
    points_per_unit = 6.0 * 72 / (hi - lo + 2 * pad)  # the axes are about 6 of the figure's 8 inches wide
    for y, (_, rewards, filtered) in enumerate(rows):
        colour = GREY if filtered else BLUE
        xs = [v for _, v in rewards]
        if xs:
            ax.hlines(y, min(xs), max(xs), color=colour, alpha=0.5)
            ax.scatter(xs, [y] * len(xs), color=colour, s=16, zorder=3)
        labelled = sorted(((_short(rid, 16), v) for rid, v in rewards), key=lambda x: x[1])
        for (rid, v), level in zip(labelled, _label_levels(labelled, points_per_unit), strict=True):
            if level is None:
                continue
            offset = _LEVELS[level]
            ax.annotate(rid, (v, y), xytext=(0, offset), textcoords="offset points", ha="center",
                        va="bottom" if offset > 0 else "top", fontsize=5.5, color="#333333")  # fmt: skip
    ax.set_yticks(range(len(rows)), [_short(g, 40) for g, _, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("reward (grey: filtered, no signal for GRPO; labels: rollout ids)")
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
