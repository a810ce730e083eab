"""The self-contained HTML comparison of scored runs (`reward compare --html`)."""

from __future__ import annotations

from reward.analysis import compare_plots
from reward.analysis.compare import Comparison, mean_tau
from reward.analysis.pages import page_env
from reward.analysis.scored import ScoredGroup


def render_comparison(c: Comparison, a: list[ScoredGroup], b: list[ScoredGroup], title: str) -> str:
    b_rewards = {(g.group_id, r.id): r.reward for g in b for r in g.rollouts if r.status == "ok"}
    xs: list[float] = []
    ys: list[float] = []
    for g in a:
        for r in g.rollouts:
            other = b_rewards.get((g.group_id, r.id))
            if r.status == "ok" and r.reward is not None and other is not None:
                xs.append(r.reward)
                ys.append(other)
    names = [n for n, d in c.dimensions.items() if d.mean_a is not None and d.mean_b is not None]
    plot_list = [compare_plots.reward_scatter(xs, ys)]
    if names:
        plot_list.append(
            compare_plots.dimension_shift(
                names, [c.dimensions[n].mean_a or 0.0 for n in names], [c.dimensions[n].mean_b or 0.0 for n in names]
            )
        )
    return page_env.get_template("compare.html.j2").render(
        title=title, c=c, mean_tau=mean_tau(c), plots=plot_list, fake=any(g.judge.fake for g in [*a, *b])
    )
