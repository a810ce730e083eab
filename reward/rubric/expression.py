"""The reward formula of a rubric: a small, safe arithmetic expression over group means and constants.

`(1 - alpha) * (positive - pitfall) + alpha * final_answer` is parsed with Python's `ast` and only numbers,
names, `+ - * /`, unary minus and `min`, `max`, `abs` are accepted: nothing is evaluated that the rubric
author did not write as arithmetic. Two restrictions keep every reward finite and its range computable:
a division is only by a constant, and a product has a constant on at least one side (the formula is
piecewise linear in the group means, so its extremes lie at the corners of [0, 1]^groups).
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from reward.errors import RewardError

MAX_LENGTH = 500
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs}


class ExpressionError(RewardError, ValueError):
    """A formula that is not a safe arithmetic expression over the names it may use."""


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id not in _FUNCTIONS}


class Expression:
    """A validated formula; `names` are the variables it reads (group means and constants)."""

    def __init__(
        self, source: str, variables: set[str], constants: set[str], may_be_zero: frozenset[str] = frozenset()
    ) -> None:
        if len(source) > MAX_LENGTH:
            raise ExpressionError(f"the formula is longer than {MAX_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise ExpressionError(f"the formula is not an arithmetic expression: {exc}") from None
        self.source = source
        self._constants = constants
        self._may_be_zero = may_be_zero  # constants set per group that can be 0: no dividing by them
        self._check(tree.body, variables | constants)
        self.names = _names(tree.body)
        self._code = tree.body

    def _varying(self, node: ast.AST) -> bool:
        return bool(_names(node) - self._constants)

    def _check(self, node: ast.AST, allowed: set[str]) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ExpressionError(f"only numbers may appear as constants, not {node.value!r}")
            try:
                finite = math.isfinite(float(node.value))
            except OverflowError:  # an integer literal beyond the float range
                finite = False
            if not finite:
                raise ExpressionError("constants must be finite numbers")
        elif isinstance(node, ast.Name):
            if node.id not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise ExpressionError(f"unknown name {node.id!r} in the formula (known: {known})")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            self._check(node.operand, allowed)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, allowed)
            self._check(node.right, allowed)
            if isinstance(node.op, ast.Div) and self._varying(node.right):
                raise ExpressionError("a formula may only divide by a constant (a group mean can be 0)")
            if isinstance(node.op, ast.Div) and (zero := sorted(_names(node.right) & self._may_be_zero)):
                raise ExpressionError(f"a formula may not divide by {', '.join(zero)}: it can be 0")
            if isinstance(node.op, ast.Mult) and self._varying(node.left) and self._varying(node.right):
                raise ExpressionError("a product needs a constant on one side (the formula must be linear)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
            arity_ok = len(node.args) == 1 if node.func.id == "abs" else len(node.args) >= 2
            if node.keywords or not arity_ok or any(isinstance(a, ast.Starred) for a in node.args):
                wanted = "one argument" if node.func.id == "abs" else "two or more arguments"
                raise ExpressionError(f"{node.func.id}() takes {wanted}, positional ({ast.unparse(node)})")
            for arg in node.args:
                self._check(arg, allowed)
        else:
            raise ExpressionError(
                f"{ast.unparse(node)!r} is not allowed in a formula (numbers, names, + - * /, min, max, abs)"
            )

    def evaluate(self, values: Mapping[str, float]) -> float:
        def ev(node: ast.AST) -> Any:
            if isinstance(node, ast.Constant):
                return node.value
            if isinstance(node, ast.Name):
                return values[node.id]
            if isinstance(node, ast.UnaryOp):
                v = ev(node.operand)
                return -v if isinstance(node.op, ast.USub) else v
            if isinstance(node, ast.BinOp):
                return _BINARY[type(node.op)](ev(node.left), ev(node.right))
            assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))

        try:
            result = float(ev(self._code))
        except (ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"the formula cannot be computed: {exc}") from None
        if not math.isfinite(result):
            raise ExpressionError(f"the formula gave {result}")
        return result

    def extremes(self, variables: list[str], constants: Mapping[str, float]) -> tuple[float, float]:
        """The lowest and highest value over [0, 1] for every variable (exact: piecewise linear)."""
        used = [v for v in variables if v in self.names]
        values = [
            self.evaluate({**constants, **dict.fromkeys(variables, 0.0), **dict(zip(used, corner, strict=True))})
            for corner in itertools.product((0.0, 1.0), repeat=len(used))
        ]
        return min(values), max(values)
