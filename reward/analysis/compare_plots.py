"""The plots of `reward compare --html` (the shared drawing helpers are reward.analysis.plots')."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reward.analysis.plots import BLUE, GREEN, GREY, ORANGE, RED, _figure, _plot, to_data_uri

RUN_COLOURS = (BLUE, ORANGE, GREEN, RED, "#8172b3", "#937860", "#da8bc3", "#64b5cd", "#ccb974")


@_plot
def reward_scatter(a: Sequence[float], b: Sequence[float], labels: tuple[str, str] = ("A", "B")) -> str:
    fig = _figure(5, 5)
    ax = fig.add_subplot()
    ax.scatter(a, b, color=BLUE, s=14, alpha=0.7)
    if a and b:
        lo, hi = min([*a, *b]), max([*a, *b])
        ax.plot([lo, hi], [lo, hi], color=GREY, linewidth=1)
    ax.set_xlabel(f"reward in {labels[0]}")
    ax.set_ylabel(f"reward in {labels[1]}")
    ax.set_title("Rewards of the same rollouts")
    return to_data_uri(fig)


@_plot
def dimension_shift(names: Sequence[str], means: Mapping[str, Sequence[float | None]]) -> str:
    """Each run's mean score per dimension, one bar per run; a dimension a run does not have (added or removed
    between the rubrics) gets no bar there and says which runs have it, instead of being left out."""
    fig = _figure(7, 0.35 * max(len(names), 3) * max(1, len(means) / 2) + 1.2)
    ax = fig.add_subplot()
    ys = range(len(names))
    height = 0.8 / max(len(means), 1)
    for i, (label, values) in enumerate(means.items()):
        offset = (i - (len(means) - 1) / 2) * height
        present = [(y, v) for y, v in zip(ys, values, strict=True) if v is not None]
        ax.barh(
            [y + offset for y, _ in present],
            [v for _, v in present],
            height=height,
            color=RUN_COLOURS[i % len(RUN_COLOURS)],
            label=label,
        )
    ticks = []
    for j, n in enumerate(names):
        has = [label for label, values in means.items() if values[j] is not None]
        ticks.append(n if len(has) == len(means) else f"{n} (only {', '.join(has)})")
    ax.set_yticks(list(ys), ticks)
    ax.invert_yaxis()
    ax.legend(frameon=False)
    ax.set_xlabel("mean score")
    ax.set_title("Per-dimension means")
    return to_data_uri(fig)


@_plot
def dimension_agreement(
    names: Sequence[str], taus: Sequence[float | None], parts: Sequence[float | None], marked: Sequence[bool]
) -> str:
    """Per dimension: the within-group Kendall tau of its scores (how much the judge reordered it) and its part
    of the mean reward change; reworded dimensions in orange, so it shows whether they moved more than the rest."""
    fig = _figure(9, 0.32 * max(len(names), 3) + 1.4)
    left, right = fig.subplots(1, 2, sharey=True)
    ys = list(range(len(names)))
    colours = [ORANGE if m else BLUE for m in marked]
    left.barh(ys, [0.0 if t is None else t for t in taus], color=colours)
    for y, t in zip(ys, taus, strict=True):
        if t is None:
            left.text(0, y, " undefined", va="center", fontsize=8, color=GREY)
    left.set_xlim(-1.05, 1.05)
    left.axvline(1.0, color=GREY, linewidth=0.8)
    left.set_yticks(ys, [f"{n} (reworded)" if m else n for n, m in zip(names, marked, strict=True)])
    left.invert_yaxis()
    left.set_xlabel("Kendall τ within groups (1: same order)")
    right.barh(ys, [p or 0.0 for p in parts], color=colours)
    right.axvline(0.0, color=GREY, linewidth=0.8)
    right.set_xlabel("part of the mean reward change")
    fig.suptitle("Per-dimension agreement and reward change")
    return to_data_uri(fig)
