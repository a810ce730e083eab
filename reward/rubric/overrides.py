"""`--set PATH=VALUE`: one-flag experiments on a rubric, equal to editing its file.

A sweep point should not need a copied YAML with a new name. An override is applied to the rubric's YAML
data after parsing and before validation, so it is checked exactly as the same edit in the file would be,
and an error names the override (`--set penalties.no_comands=-30: penalties.no_comands: Extra inputs are
not permitted`) where a file's error names its line.

PATH is dotted: mapping keys, and list elements by index or by their `name` (`dimensions.efficiency.weight`).
VALUE is YAML: `0.7` is a number, `null` disables a penalty, `'0.7'` is a string; a flow collection
(`[a, b]`, `{min: 0, max: 1}`) is allowed, block YAML is not (a value like `a: b` is refused: quote it).

The overrides a command line gives apply to every rubric that command loads (`active()`), so commands that
build their scorer through `open_scorer` get them without another parameter on every layer; `load_rubric`
also takes them explicitly.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reward.errors import RewardError
from reward.rubric.yaml_source import YamlSourceError, load_yaml

if TYPE_CHECKING:
    from reward.core.results import Basis
    from reward.rubric.load import Rubric


class OverrideError(RewardError):
    """An override that cannot be parsed or applied; the message starts with `--set PATH=VALUE`."""


Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Override:
    """One `--set`: the text as given, the dotted path and the parsed value."""

    text: str
    path: tuple[str, ...]
    value: Any

    @property
    def flag(self) -> str:
        return f"--set {self.text}"


def parse_override(text: str) -> Override:
    """`PATH=VALUE` with VALUE read as YAML (a scalar or a flow collection)."""
    path_text, sep, value_text = text.partition("=")
    flag = f"--set {text}"
    if not sep:
        raise OverrideError(f"{flag}: expected PATH=VALUE (e.g. constants.alpha=0.7)")
    path = tuple(part.strip() for part in path_text.strip().split("."))
    if not all(path):
        raise OverrideError(f"{flag}: the path {path_text.strip()!r} has an empty part")
    value_text = value_text.strip()
    if not value_text:
        raise OverrideError(f"{flag}: no value (write null to remove one, '' for an empty string)")
    try:
        value, _ = load_yaml(value_text, flag)
    except YamlSourceError as exc:
        raise OverrideError(str(exc)) from None
    if isinstance(value, dict | list) and value_text[0] not in "[{":
        raise OverrideError(
            f"{flag}: {value_text!r} is block YAML for a {type(value).__name__}; quote it for a string, "
            "or write a flow collection ([a, b] or {k: v})"
        )
    return Override(text=f"{'.'.join(path)}={value_text}", path=path, value=value)


def parse_overrides(texts: Sequence[str]) -> list[Override]:
    return [parse_override(t) for t in texts]


def _index(items: list[Any], part: str, override: Override, where: str) -> int:
    """A list element by index or by its `name`."""
    if part.lstrip("-").isdigit():
        i = int(part)
        if 0 <= i < len(items):
            return i
        raise OverrideError(f"{override.flag}: {where} has {len(items)} elements, no index {i}")
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    names = [str(item["name"]) for item in items if isinstance(item, dict) and "name" in item]
    known = f" (names: {', '.join(names)})" if names else ""
    raise OverrideError(f"{override.flag}: {where} has no element named {part!r}{known}")


def apply_override(data: dict[str, Any], override: Override) -> Loc:
    """Set the value in `data` (in place); returns its location as a validation error's loc would name it
    (list elements by index). Missing mapping keys are created: validation decides whether they may exist."""
    node: Any = data
    loc: list[str | int] = []
    for depth, part in enumerate(override.path):
        where = ".".join(override.path[:depth]) or "the rubric"
        last = depth == len(override.path) - 1
        if isinstance(node, dict):
            if last:
                node[part] = copy.deepcopy(override.value)
            elif not isinstance(node.get(part), dict | list):
                if part in node and node[part] is not None:
                    shown = ".".join(override.path[: depth + 1])
                    raise OverrideError(f"{override.flag}: {shown} is {node[part]!r}, not a mapping or a list")
                node[part] = {}
            loc.append(part)
        elif isinstance(node, list):
            i = _index(node, part, override, where)
            if last:
                node[i] = copy.deepcopy(override.value)
            loc.append(i)
        else:  # only reached below a created or existing container: a scalar was refused above
            raise OverrideError(f"{override.flag}: {where} is not a mapping or a list")
        if not last:
            node = node[loc[-1]]
    return tuple(loc)


def apply_overrides(data: Any, overrides: Sequence[Override]) -> tuple[dict[str, Any], dict[Loc, str]]:
    """A copy of the rubric's data with the overrides applied in order (a later one wins), and each
    overridden location with its flag (for error messages)."""
    if not isinstance(data, dict):
        raise OverrideError("--set: the rubric is not a mapping at the top level")
    edited = copy.deepcopy(data)
    where: dict[Loc, str] = {}
    for o in overrides:
        where[apply_override(edited, o)] = o.flag
    return edited, where


_ACTIVE: contextvars.ContextVar[tuple[Override, ...]] = contextvars.ContextVar("reward_rubric_overrides", default=())


def active() -> tuple[Override, ...]:
    """The overrides of the running command (none outside `applying`)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def applying(texts: Sequence[str] | None) -> Iterator[tuple[Override, ...]]:
    """Within the block, every rubric loaded without explicit overrides gets these (parsed first: a bad one
    is an error before anything else happens)."""
    parsed = tuple(parse_overrides(texts or ()))
    token = _ACTIVE.set(parsed)
    try:
        yield parsed
    finally:
        _ACTIVE.reset(token)


def recorded(basis: Basis, rubric: Rubric) -> Basis:
    """`basis` with the rubric's overrides recorded (an output must say it was not scored with the file's
    rubric as it is, and with which edits)."""
    return basis.model_copy(update={"overrides": list(rubric.overrides) or None})
