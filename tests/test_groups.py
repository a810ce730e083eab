import numpy as np
import pytest

from reward.core.group_stats import group_stats


def test_mean_population_std_and_advantages():
    rewards = [10.0, 20.0, 30.0, 40.0]
    s = group_stats(rewards, 0.01, 1e-6)
    assert s.mean == pytest.approx(25.0)
    assert s.std == pytest.approx(np.sqrt(125.0))  # population, not sample (which would be sqrt(166.7))
    assert not s.filtered
    assert s.advantages == pytest.approx([(r - 25.0) / (np.sqrt(125.0) + 1e-6) for r in rewards])


def test_zero_variance_group_is_filtered_with_no_advantages():
    s = group_stats([-100.0] * 8, 0.01, 1e-6)
    assert s.filtered and s.std == 0.0
    assert s.advantages == [None] * 8
    assert "std" in s.filter_reason


def test_std_just_below_threshold_is_filtered_and_just_above_is_kept():
    assert group_stats([50.0, 50.018], 0.01, 1e-6).filtered  # std 0.009
    assert not group_stats([50.0, 50.022], 0.01, 1e-6).filtered  # std 0.011


def test_errors_are_left_out_of_statistics_and_get_no_advantage():
    s = group_stats([10.0, None, 30.0], 0.01, 1e-6)
    assert s.n_scored == 2
    assert s.mean == pytest.approx(20.0)
    assert s.std == pytest.approx(10.0)
    assert s.advantages[1] is None
    assert s.advantages[0] == pytest.approx(-10.0 / (10.0 + 1e-6))


def test_all_errors():
    s = group_stats([None, None], 0.01, 1e-6)
    assert s.mean is None and s.std is None and s.filtered and s.n_scored == 0


@pytest.mark.parametrize("rewards", [[1e308, -1e308, 1e308], [1.7e308, 1.7e308], [float("inf"), 1.0]])
def test_a_mean_or_std_that_is_not_finite_gives_no_statistics_and_no_advantages(rewards):
    # were: std inf and advantages 0.0 (or NaN), a group that looked normal
    s = group_stats(rewards, 0.01, 1e-6)
    assert s.mean is None and s.std is None and s.filtered
    assert s.advantages == [None] * len(rewards)
    assert "not finite" in s.filter_reason
