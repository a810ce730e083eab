"""The sandbox rubric templates render in: jinja's immutable sandbox, bounded in what one render may build and do.

Rollout text is adversarial (the policy being trained writes it), and a branch a trial render never takes
(`{% if "TRIGGER" in patch %}`) still runs at scoring time. So, in every render: a string, list or prompt past
MAX_CHARS, an integer past MAX_INT_BITS, more than MAX_EMITTED characters output (macro bodies included) or more
than MAX_WORK calls, loop iterations and range items is a SecurityError, raised before the value is built where it
can be (string repetition, padding, replace, join, formatting widths), after it otherwise. Intercepted operators
are never folded at compile time, and a folded filter that raises is left for the render: a template's constants
cannot exhaust memory when it loads either. Not a resource sandbox for arbitrary code: a bound on what a rubric's
template can build from rollout text, not a limit on the process.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import generate_lorem_ipsum

MAX_CHARS = 8_000_000  # one value or one prompt: about 2M tokens, more than a judge's context holds
MAX_EMITTED = 4 * MAX_CHARS  # output of one render, counted at every level (a macro's output again where used)
MAX_INT_BITS = 10_000
MAX_WORK = 250_000  # calls, loop iterations and range items of one render: about a second at most


@dataclass
class Budget:
    work: int = 0
    emitted: int = 0


_BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def render_budget() -> Iterator[None]:
    """A fresh budget for the renders inside (per thread and task: a context variable)."""
    token = _BUDGET.set(Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _spend(work: int = 0, emitted: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is None:  # outside render(): nothing renders there but jinja's own constant folding
        return
    budget.work += work
    budget.emitted += emitted
    if budget.work > MAX_WORK:
        raise SecurityError(f"the template does more than {MAX_WORK:,} calls, loop iterations and range items")
    if budget.emitted > MAX_EMITTED:
        raise SecurityError(f"the template outputs more than {MAX_EMITTED:,} characters")


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} would build more than {MAX_CHARS:,} characters or items: templates may not")


def _size(value: Any, limit: int = MAX_CHARS) -> int:
    """About the length of str(value) (a container's items counted each time they occur), stopping past limit."""
    total, stack = 0, [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, str | bytes):
            total += len(v)
        elif isinstance(v, Mapping):
            total += 2 * len(v) + 2
            if total <= limit:
                stack += [*v.keys(), *v.values()]
        elif isinstance(v, list | tuple | set | frozenset):
            total += len(v) + 2
            if total <= limit:
                stack += list(v)
        elif hasattr(v, "__dict__") and not callable(v):  # a namespace, a template view's object
            total += 2
            stack += list(vars(v).values())
        else:
            total += 1
    return total


def _check(what: str, size: int) -> None:
    if size > MAX_CHARS:
        raise _too_big(what)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")


def _percent_size(fmt: str | bytes, values: Any) -> int:
    """Most characters `fmt % values` gives: each conversion's width and precision plus the largest value."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    each = _size(values)
    total = len(text)
    for width, precision, kind in _PERCENT.findall(text):
        if "*" in (width, precision):
            return MAX_CHARS + 1  # widths from the values: refused
        total += int(width or 0) + int(precision or 0) + (each if kind != "%" else 0)
    return total


def _format_size(fmt: str, args: Any, kwargs: Any) -> int:
    """Most characters `fmt.format(...)` gives: each field's widths plus the largest value."""
    each = _size(args) + _size(kwargs)
    total = len(fmt)
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return 0  # format() raises the same
    for _, name, spec, _ in fields:
        if name is None:
            continue
        if spec and "{" in spec:
            return MAX_CHARS + 1  # widths from the values: refused
        total += each + sum(int(n) for n in re.findall(r"\d+", spec or ""))
    return total


def _method_size(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """Most characters a str or bytes method that can grow its string gives (0: not such a method)."""
    s, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(s, str | bytes):
        return 0
    if name in ("center", "ljust", "rjust", "zfill"):
        return int(args[0])
    if name == "expandtabs":
        tab = "\t" if isinstance(s, str) else b"\t"
        return len(s) + s.count(tab) * int(args[0] if args else kwargs.get("tabsize", 8))  # type: ignore[arg-type]
    if name == "replace":
        old, new = args[0], args[1]
        hits = s.count(old) if old else len(s) + 1
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        return len(s) + min(hits, count if count >= 0 else hits) * max(len(new) - len(old), 0)
    if name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        return len(s) * longest
    return 0


class _Generator(CodeGenerator):
    """Jinja's code generator, with every loop's iterations counted and every `~` checked (`environment.*`)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if node.recursive:  # its inner iterations bypass the count below; no rubric template needs one
            self.fail("recursive loops are not allowed in rubric templates", node.lineno)
        counted = nodes.EnvironmentAttribute("counted")  # `environment.counted(iterable)`: jinja has no custom nodes
        if not (isinstance(node.iter, nodes.Call) and node.iter.node == counted):
            node.iter = nodes.Call(counted, [node.iter], [], None, None, lineno=node.iter.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(context.eval_ctx, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


@pass_eval_context
def _emit(eval_ctx: EvalContext, value: Any) -> Any:
    # every `{{ ... }}` output, before str(): counted (and, being eval_ctx-bound, never folded at compile time)
    budget = _BUDGET.get()
    if budget is not None:  # inline: this runs for every output
        budget.emitted += len(value) if type(value) is str else _size(value, MAX_EMITTED)
        if budget.emitted > MAX_EMITTED:
            _spend()
    return value


def _counted_range(*args: int) -> range:
    numbers = safe_range(*args)
    _spend(work=len(numbers))
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    _check("lipsum()", n * max * 12)
    return generate_lorem_ipsum(n, html, min, max)


def _guarded(original: Callable[..., Any], name: str, size: Callable[..., int]) -> Callable[..., Any]:
    """A filter that refuses to run where `size` (of the filter's own arguments) is past MAX_CHARS."""
    skip = 0 if getattr(original, "jinja_pass_arg", None) is None else 1

    @functools.wraps(original)  # keeps jinja_pass_arg
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            estimate = size(*args[skip:], **kwargs)
        except (TypeError, ValueError, AttributeError):
            estimate = 0  # arguments the filter refuses itself
        _check(f"the {name} filter", estimate)
        result = original(*args, **kwargs)
        # an estimate from the arguments can fall short (tojson's \u003c escapes are 6 characters for 1): the
        # result itself is held to the bound too, before anything else can build on it
        if isinstance(result, str | list | tuple):
            _check(f"the {name} filter", len(result))
        return result

    return guarded


def _join_size(items: list[Any], d: Any = "", attribute: Any = None) -> int:
    return _size(items) + len(str(d)) * max(len(items) - 1, 0)


def _indent_size(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(s)
    return len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else int(width))


def _replace_size(s: Any, old: Any, new: Any, count: int | None = None) -> int:
    text, old, new = str(s), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    return len(text) + min(hits, hits if count is None else count) * max(len(new) - len(old), 0)


def _wrap_size(s: Any, *_: Any, **__: Any) -> int:
    return len(str(s))  # the breaks it adds are held to the bound on the result (_guarded)


def _sum_size(iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    # a sum of lists or strings is quadratic in time: only numbers
    return 0 if isinstance(start, int | float) else MAX_CHARS + 1


_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80: int(width),
    "indent": _indent_size,
    "format": lambda value, *args, **kwargs: _percent_size(str(value), kwargs or args),
    "replace": _replace_size,
    "batch": lambda value, linecount, fill_with=None: int(linecount) * max(1, _size(fill_with)),
    "slice": lambda value, slices, fill_with=None: int(slices) * max(1, _size(fill_with)),
    "wordwrap": _wrap_size,
    "sum": _sum_size,
    "string": _size,
    "pprint": _size,
    "tojson": lambda value, indent=None: _size(value),  # its escapes and indents: held on the result
    "escape": _size,
    "e": _size,
    "forceescape": _size,
    "urlencode": _size,
}


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the bounds above (module docstring)."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_emit, **options)
        self.globals["range"] = _counted_range
        self.globals["lipsum"] = _lipsum
        for name, size in _FILTER_SIZES.items():
            self.filters[name] = _guarded(self.filters[name], name, size)
        join = self.filters["join"]

        @pass_eval_context
        def bounded_join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
            items = list(value)  # once: a generator cannot be sized and then joined
            _check("the join filter", _join_size(items, d, attribute))
            return str(join(eval_ctx, items, d, attribute))

        self.filters["join"] = bounded_join

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_product(left, right)
        elif operator == "+" and isinstance(left, str | bytes | list | tuple):
            _check("`+`", _size(left) + _size(right))
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise SecurityError(f"{left} ** {right}: an integer of more than {MAX_INT_BITS:,} bits")
        elif operator == "%" and isinstance(left, str | bytes):
            _check("`%` formatting", _percent_size(left, right))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend(work=1)
        if not isinstance(getattr(__obj, "__self__", None), str | bytes):
            pass  # a macro, a global, another object's method: nothing grows a string before it returns
        elif __obj.__name__ == "join":
            items = list(args[0]) if args else []  # once: a generator cannot be sized and then joined
            _check("str.join", _join_size(items, __obj.__self__))
            args = (items, *args[1:])
        else:
            try:
                size = _method_size(__obj, args, kwargs)
            except (TypeError, ValueError, IndexError, AttributeError):
                size = 0  # arguments the method refuses itself
            _check(f"{__obj.__name__}()", size)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | bytes):  # a macro's output, a method's result
            _check("a call", len(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # jinja wraps str.format (and format_map) where it is looked up, so its call is checked here
        if not isinstance(value, MethodType | BuiltinMethodType):  # every attribute looked up comes here: fast
            return None
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt, by_map = str(value.__self__), value.__name__ == "format_map"

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            _check("str.format", _format_size(fmt, () if by_map else args, args[0] if by_map and args else kwargs))
            return wrapped(*args, **kwargs)

        return checked

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = _BUDGET.get()
        for item in iterable:
            if budget is not None:  # inline: this runs for every iteration
                budget.work += 1
                if budget.work > MAX_WORK:
                    _spend()
            yield item

    def checked_concat(self, eval_ctx: EvalContext, parts: tuple[Any, ...]) -> Any:
        _check("`~`", sum(len(p) if isinstance(p, str) else _size(p) for p in parts))
        return markup_join(parts) if eval_ctx.autoescape or eval_ctx.volatile else str_join(parts)


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise SecurityError(f"an integer of more than {MAX_INT_BITS:,} bits")
        return
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int):
        _check("repetition (`*`)", _size(sequence) * times)
