import pytest

from reward.rubric.expression import Expression, ExpressionError

GROUPS = {"pos", "pit", "fa"}


def expr(source: str, constants: set[str] | None = None) -> Expression:
    return Expression(source, GROUPS, constants or {"alpha"})


def test_evaluates_arithmetic_over_names():
    e = expr("(1 - alpha) * (pos - pit) + alpha * fa")
    assert e.evaluate({"alpha": 0.5, "pos": 0.8, "pit": 0.2, "fa": 0.6}) == pytest.approx(0.6)
    assert e.names == {"alpha", "pos", "pit", "fa"}
    assert expr("min(pos, fa) - abs(pit - 0.5) / 2").evaluate({"pos": 1, "pit": 0, "fa": 0.4}) == pytest.approx(0.15)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os').system('true')", "not allowed"),
        ("pos.__class__", "not allowed"),
        ("pos if fa else pit", "not allowed"),
        ("pos ** 2", "not allowed"),
        ("[pos][0]", "not allowed"),
        ("'a'", "only numbers"),
        ("True + pos", "only numbers"),
        ("nope + pos", "unknown name 'nope'"),
        ("pos / fa", "only divide by a constant"),
        ("pos * fa", "constant on one side"),
        ("max(pos, key=fa)", "positional"),
        ("abs(pos, fa)", "takes one argument"),
        ("max(pos)", "two or more arguments"),
        ("min(*[pos, fa])", "not allowed|two or more"),
        ("pos +", "not an arithmetic expression"),
        ("1e999 * pos", "finite"),
        ("1" + "0" * 400 + " * pos", "finite"),
        ("pos" + " + pos" * 300, "longer than"),
    ],
)
def test_refuses_what_is_not_safe_linear_arithmetic(source, message):
    with pytest.raises(ExpressionError, match=message):
        expr(source)


def test_division_by_a_zero_constant_is_an_error_not_a_crash():
    e = Expression("pos / zero", GROUPS, {"zero"})
    with pytest.raises(ExpressionError, match="cannot be computed"):
        e.evaluate({"pos": 1.0, "zero": 0.0})


def test_extremes_are_exact_at_the_corners():
    e = expr("(1 - alpha) * (pos - pit) + alpha * fa")
    assert e.extremes(["pos", "pit", "fa"], {"alpha": 0.5}) == (-0.5, 1.0)
    assert expr("max(pos, fa) - pit").extremes(["pos", "pit", "fa"], {}) == (-1.0, 1.0)
