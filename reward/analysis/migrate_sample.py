"""Which graded rollouts a judge migration re-grades: a sample stratified by group and by reward.

A map fitted on one corner of the scale is wrong elsewhere, and rank flips need two rollouts of one group. So
the groups are taken across the quantiles of their mean reward (all of them when the budget allows two per
group), the budget is dealt round-robin over them (every group gets its second rollout before any its third),
and within a group the rollouts are taken at evenly spaced reward ranks (lowest and highest first). The same
file and N always give the same sample.
"""

from __future__ import annotations

from collections.abc import Sequence


def _spread(n_items: int, k: int) -> list[int]:
    """k distinct indices of 0..n_items-1 evenly spaced from both ends (k <= n_items)."""
    if k <= 0:
        return []
    if k == 1:
        return [n_items // 2]
    return sorted({round(i * (n_items - 1) / (k - 1)) for i in range(k)})


def stratified_sample(groups: Sequence[tuple[str, Sequence[tuple[str, float]]]], n: int) -> list[tuple[str, str]]:
    """(group id, rollout id) of at most `n` rollouts out of `groups`: (group id, [(rollout id, reward)])
    of graded rollouts. All of them when there are no more than `n`."""
    groups = [(g, list(rs)) for g, rs in groups if rs]
    total = sum(len(rs) for _, rs in groups)
    if n >= total:
        return [(g, r) for g, rs in groups for r, _ in rs]
    # groups across the quantiles of their mean reward: two rollouts each where the budget allows
    by_mean = sorted(groups, key=lambda item: (sum(x for _, x in item[1]) / len(item[1]), item[0]))
    chosen = [by_mean[i] for i in _spread(len(by_mean), min(len(by_mean), max(1, n // 2)))]
    quota = dict.fromkeys((g for g, _ in chosen), 0)
    left = n
    while left:
        dealt = False
        for g, rs in chosen:
            if left and quota[g] < len(rs):
                quota[g] += 1
                left -= 1
                dealt = True
        if not dealt:
            break
    picks: list[tuple[str, str]] = []
    for g, rs in chosen:
        ranked = sorted(rs, key=lambda item: (item[1], item[0]))
        picks.extend((g, ranked[i][0]) for i in _spread(len(ranked), quota[g]))
    return picks
