"""Load a YAML file so that its mistakes can be reported by line: duplicate keys are errors (PyYAML keeps the
last one silently), syntax errors name line and column, and a pydantic error's loc maps back to a line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from reward.core.trajectory import format_loc
from reward.errors import RewardError

# Nodes that aliases may pull in, all together: reuse of an anchor is fine, a "billion laughs" document
# (a few lines that expand into a structure of exponential size for whoever walks it) is not.
MAX_ALIASED_NODES = 10_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlSourceError(RewardError, ValueError):
    pass


class _Loader(yaml.SafeLoader):
    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.sizes: dict[int, int] = {}  # id(node) -> nodes in its expansion, once it is complete
        self.aliased = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                where = f"{self.source}:{event.start_mark.line + 1}"
                if id(target) not in self.sizes:  # still being composed: the alias is inside its own anchor
                    raise YamlSourceError(f"{where}: alias *{event.anchor} refers to a collection that contains it")
                self.aliased += self.sizes[id(target)]
                if self.aliased > MAX_ALIASED_NODES:
                    raise YamlSourceError(f"{where}: aliases expand to more than {MAX_ALIASED_NODES} nodes")
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if node is not None:
            self.sizes[id(node)] = 1 + sum(self.sizes[id(child)] for child in _children(node))
        return node

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        # Checked on the composed nodes, before merge keys (<<) are flattened in: overriding a merged key is fine.
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # a non-scalar key is unhashable: construction rejects it
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in seen:
                raise YamlSourceError(f"{self.source}:{line}: duplicate key {key!r} (first at line {seen[key]})")
            seen[key] = line
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


class YamlLines:
    """Lines of the nodes of one document, looked up along a pydantic error loc."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        """1-based line of the deepest entry along `loc` that the document has (a mapping entry is at its key).
        Elements that are not in the document (a missing key, a union tag, a validator name) are skipped."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        node, line = value_node, key_node.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
        return line


def load_yaml(text: str, source: str) -> tuple[Any, YamlLines]:
    """Parse one YAML document with PyYAML's safe typing; every problem is a YamlSourceError naming `source`."""
    loader = _Loader(text, source)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise YamlSourceError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:  # the reader's errors (a control character, bad encoding) carry no mark
        raise YamlSourceError(f"{source}: invalid YAML: {exc}") from exc
    except RecursionError:  # PyYAML composes nested collections recursively
        raise YamlSourceError(f"{source}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return data, YamlLines(root)


def _readable(loc: tuple[str | int, ...], data: Any, missing: bool) -> tuple[tuple[str | int, ...], str | None]:
    """The loc without the parts that are not in the data (union tags, validator names) except the missing key
    of a `missing` error, and the name of the dimension it goes through."""
    kept: list[str | int] = []
    dimension = None
    for i, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            if kept and kept[-1] == "dimensions" and isinstance(data, dict) and isinstance(data.get("name"), str):
                dimension = data["name"]
        elif not (missing and i == len(loc) - 1):
            continue
        kept.append(part)
    return tuple(kept), dimension


def _override_of(path: tuple[str | int, ...], overridden: Mapping[tuple[str | int, ...], str]) -> str | None:
    """The override that set `path` or a parent of it (the longest match), if any."""
    for n in range(len(path), 0, -1):
        if path[:n] in overridden:
            return overridden[path[:n]]
    return None


def describe_errors(
    exc: ValidationError,
    lines: YamlLines,
    data: Any,
    source: str,
    overridden: Mapping[tuple[str | int, ...], str] | None = None,
) -> str:
    """One line per error: `source:line: path (dimension NAME): message`. A value set by an override (`--set`,
    in `overridden` by its location) is not on any line of the file: its error names the override instead,
    `source: --set PATH=VALUE: path: message`."""
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        blamed = getattr(cause, "loc", None)
        if not loc and isinstance(blamed, tuple):  # a cross-field problem names the field to blame
            loc, error = blamed, {**error, "msg": str(cause)}
        path, dimension = _readable(loc, data, error["type"] == "missing")
        line = lines.line_of(loc)
        where = f"{source}:{line}" if line is not None else source
        flag = _override_of(path, overridden or {})
        if flag is not None:
            where = f"{source}: {flag}"
        named = f" (dimension {dimension})" if dimension is not None else ""
        out.append(f"{where}: {format_loc(path) if path else '<top level>'}{named}: {error['msg']}")
    return "\n".join(out)
