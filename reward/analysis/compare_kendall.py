"""Kendall's tau-b and advantage sign flips: how two runs order the same rollouts within a group."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties in either sequence handled); None when it is undefined (fewer than two
    items, or every item tied in one sequence). Knight's O(n log n) algorithm: the pairs are counted from
    tie groups and the inversions of a merge sort, not one by one."""
    if len(x) != len(y):
        raise ValueError("kendall_tau needs two sequences of the same length")
    rx, ry = _tie_ranks(x), _tie_ranks(y)
    pairs = sorted(zip(rx, ry, strict=True))
    n0 = len(pairs) * (len(pairs) - 1) // 2
    n1 = _tied_pairs(rx)  # tied in x (including those tied in both)
    n2 = _tied_pairs(ry)
    n3 = _tied_pairs(pairs)  # tied in both
    # Sorted by (x, y), a pair is discordant exactly when its y values are inverted.
    discordant = _inversions([b for _, b in pairs])
    # concordant - discordant, and (C + D + tied in x only) * (C + D + tied in y only), from the counts
    denom = math.sqrt((n0 - n2) * (n0 - n1))
    return None if denom == 0 else (n0 - n1 - n2 + n3 - 2 * discordant) / denom


def _tie_ranks(v: Sequence[float]) -> list[int]:
    """Dense ranks, a value tied (by `_sign`) with the one below it in sorted order sharing its rank."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0] * len(v)
    rank = 0
    for prev, i in pairwise(order):
        rank += _sign(v[i] - v[prev]) != 0
        ranks[i] = rank
    return ranks


def _tied_pairs(values: Sequence[object]) -> int:
    counts = Counter(values)
    return sum(t * (t - 1) // 2 for t in counts.values())


def _inversions(v: list[int]) -> int:
    """Pairs i < j with v[i] > v[j], counted by a bottom-up merge sort."""
    count, width, n = 0, 1, len(v)
    src = v[:]
    while width < n:
        dst: list[int] = []
        for lo in range(0, n, 2 * width):
            left, right = src[lo : lo + width], src[lo + width : lo + 2 * width]
            i = j = 0
            while i < len(left) and j < len(right):
                if right[j] < left[i]:  # right[j] is below every left[i:]
                    count += len(left) - i
                    dst.append(right[j])
                    j += 1
                else:
                    dst.append(left[i])
                    i += 1
            dst += left[i:]
            dst += right[j:]
        src, width = dst, 2 * width
    return count


def _sign(v: float) -> int:
    # Rewards are means of small integers; rounding keeps float noise from breaking a real tie.
    v = round(v, 9)
    return (v > 0) - (v < 0)


def sign_flips(a: Sequence[float | None], b: Sequence[float | None]) -> int:
    """Advantages that are positive in one run and negative in the other (None or 0 never flips)."""
    return sum(1 for x, y in zip(a, b, strict=True) if x is not None and y is not None and _sign(x) * _sign(y) < 0)
