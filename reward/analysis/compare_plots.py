"""The plots of `reward compare --html` (the shared drawing helpers are reward.analysis.plots')."""

from __future__ import annotations

from collections.abc import Sequence

from reward.analysis.plots import BLUE, GREY, ORANGE, _figure, _plot, to_data_uri


@_plot
def reward_scatter(a: Sequence[float], b: Sequence[float]) -> str:
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    ax.scatter(a, b, color=BLUE, s=14, alpha=0.7)
    if a and b:
        lo, hi = min([*a, *b]), max([*a, *b])
        ax.plot([lo, hi], [lo, hi], color=GREY, linewidth=1)
    ax.set_xlabel("reward in A")
    ax.set_ylabel("reward in B")
    ax.set_title("Rewards of the same rollouts")
    return to_data_uri(fig)


@_plot
def dimension_shift(names: Sequence[str], mean_a: Sequence[float], mean_b: Sequence[float]) -> str:
    fig = _figure(7, 0.35 * max(len(names), 3) + 1.2)
    ax = fig.add_subplot()
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], mean_a, height=0.4, color=BLUE, label="A")
    ax.barh([y + 0.2 for y in ys], mean_b, height=0.4, color=ORANGE, label="B")
    ax.set_yticks(list(ys), list(names))
    ax.invert_yaxis()
    ax.legend(frameon=False)
    ax.set_xlabel("mean score")
    ax.set_title("Per-dimension means")
    return to_data_uri(fig)
