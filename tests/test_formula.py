import pytest

from reward.rubric.formula import combine, graded_range, graded_reward, group_means, normalise, penalty_warnings
from reward.rubric.verdict import DimensionScore


def scores_for(rubric, pos: int, pit: int, fa: int) -> dict[str, DimensionScore]:
    value = {"positive": pos, "pitfall": pit, "final_answer": fa}
    return {d.name: DimensionScore(value[d.group], "r") for d in rubric.spec.dimensions}


def test_normalise():
    assert normalise(0, 0, 10) == 0.0
    assert normalise(7, 0, 10) == 0.7
    assert normalise(3, 1, 5) == 0.5


def test_combine_paper_formula_hand_computed(rubric):
    # (1-0.5)*(0.8-0.2) + 0.5*0.6 = 0.3 + 0.3 = 0.6 -> 60
    spec = rubric.spec
    assert combine(spec, {"positive": 0.8, "pitfall": 0.2, "final_answer": 0.6}) == pytest.approx(60.0)
    # alpha 0.25: 0.75*(0.5-0.5) + 0.25*1.0 = 0.25
    other = spec.model_copy(update={"constants": {"alpha": 0.25}, "reward_scale": 1.0})
    assert combine(other, {"positive": 0.5, "pitfall": 0.5, "final_answer": 1.0}) == pytest.approx(0.25)


def test_graded_reward_uses_group_means(rubric):
    scores = scores_for(rubric, pos=8, pit=2, fa=6)
    # Mixed scores inside a group: positive dims 10 and 0 alternate.
    names = [d.name for d in rubric.spec.in_group("positive")]
    for i, n in enumerate(names):
        scores[n] = DimensionScore(10 if i % 2 == 0 else 0, "r")  # 4 x 10, 3 x 0 -> 40/70
    reward, means = graded_reward(rubric.spec, scores)
    assert means["positive"] == pytest.approx(4 / 7)
    assert means["pitfall"] == pytest.approx(0.2)
    assert means["final_answer"] == pytest.approx(0.6)
    assert reward == pytest.approx(100 * (0.5 * (4 / 7 - 0.2) + 0.5 * 0.6))


def test_graded_range_is_minus_50_to_100_and_penalties_sit_below(rubric):
    lo, hi = graded_range(rubric.spec)
    assert (lo, hi) == (pytest.approx(-50.0), pytest.approx(100.0))
    assert graded_reward(rubric.spec, scores_for(rubric, 0, 10, 0))[0] == pytest.approx(-50.0)
    assert graded_reward(rubric.spec, scores_for(rubric, 10, 0, 10))[0] == pytest.approx(100.0)
    p = rubric.spec.penalties
    # -50 ties the worst possible graded rollout (s_pos=0, s_pit=1, s_fa=0); no graded reward is lower.
    assert max(p.too_long, p.missing_final_answer, p.no_commands) <= lo


def test_group_means_with_nonzero_scale_minimum(rubric):
    spec = rubric.spec.model_copy(update={"scale": rubric.spec.scale.model_copy(update={"min": 1, "max": 5})})
    means = group_means(spec, scores_for(rubric, 5, 1, 3))
    assert means == {"positive": 1.0, "pitfall": 0.0, "final_answer": 0.5}


def test_weights_weigh_a_group_mean(rubric):
    dims = [
        d.model_copy(update={"weight": 3.0}) if d.name == "command_correctness" else d for d in rubric.spec.dimensions
    ]
    spec = rubric.spec.model_copy(update={"dimensions": dims})
    scores = scores_for(rubric, 0, 0, 0)
    scores["command_correctness"] = DimensionScore(10, "r")
    # 3 x 1.0 over a total weight of 3 + 6 = 9
    assert group_means(spec, scores)["positive"] == pytest.approx(3 / 9)
    assert group_means(rubric.spec, scores)["positive"] == pytest.approx(1 / 7)


def test_the_paper_formula_is_bit_for_bit_equation_2(rubric):
    # The expression is evaluated in the order eq. 2 was computed before formulas were data: no 1e-16 drift.
    means = {"positive": 0.7142857142857143, "pitfall": 0.225, "final_answer": 0.7666666666666666}
    alpha = 0.5
    legacy = 100.0 * ((1 - alpha) * (means["positive"] - means["pitfall"]) + alpha * means["final_answer"])
    assert combine(rubric.spec, means) == legacy


def test_penalty_warnings_name_a_penalty_above_the_graded_range(rubric):
    assert penalty_warnings(rubric.spec) == []
    high = rubric.spec.model_copy(update={"penalties": rubric.spec.penalties.model_copy(update={"no_commands": -10.0})})
    assert penalty_warnings(high) == ["penalty no_commands = -10 is above the lowest graded reward (-50)"]


def test_min_std_default_kept_under_another_scale_is_warned():
    from reward.rubric.formula import filter_warnings, rubric_warnings
    from reward.rubric.load import load_rubric

    bundled = load_rubric("execution_subagent").spec
    assert filter_warnings(bundled) == []  # scale 100, min_std written explicitly
    scaled = bundled.model_copy(update={"reward_scale": 1.0, "group_filter": type(bundled.group_filter)()})
    (warning,) = filter_warnings(scaled)
    assert "100x as strict" in warning and "min_std: 0.0001" in warning
    assert warning in rubric_warnings(scaled)
    explicit = bundled.model_copy(
        update={"reward_scale": 1.0, "group_filter": type(bundled.group_filter)(min_std=0.01)}
    )
    assert filter_warnings(explicit) == []  # said on purpose
    assert filter_warnings(load_rubric("response_quality").spec) == []  # scale 1 with min_std 0.0 written


def test_a_reward_that_is_not_finite_is_an_error_never_null_beside_status_ok(rubric):
    from reward.rubric.expression import ExpressionError

    # past the load-time bounds (model_copy does not validate): the computation itself refuses
    huge = rubric.spec.model_copy(update={"reward_scale": 1e308, "constants": {"alpha": -1.0}})  # 1e308 * 2
    with pytest.raises(ExpressionError, match=r"the reward is inf .*: not finite"):
        combine(huge, {"positive": 1.0, "pitfall": 0.0, "final_answer": 0.0})
    with pytest.raises(ExpressionError, match="not finite"):
        graded_reward(huge, scores_for(rubric, 10, 0, 0))
