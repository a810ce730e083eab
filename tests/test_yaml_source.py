from typing import Annotated, Literal

import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from reward.rubric.yaml_source import MAX_ALIASED_NODES, YamlSourceError, describe_errors, load_yaml

DOC = """\
# a comment
name: demo
scale:
  min: 0
  max: 1.0
dimensions:
  - name: accuracy
    group: quality
  - name: efficiency
    group: 7
  - group: quality
"""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Dimension(Strict):
    name: str
    group: str


class Scale(Strict):
    min: float
    max: float


def _ordered(scale: Scale) -> Scale:
    if scale.min >= scale.max:
        raise ValueError("min must be below max")
    return scale


class Spec(Strict):
    name: str
    scale: Annotated[Scale, AfterValidator(_ordered)] | Literal["unit"]
    dimensions: list[Dimension]
    judge: str


def test_plain_document_keeps_pyyaml_typing():
    data, lines = load_yaml("a: 0.0\nb: 0\nc: '0'\nd: yes\ne: null\n", "x.yaml")
    assert data == {"a": 0.0, "b": 0, "c": "0", "d": True, "e": None}
    assert type(data["a"]) is float and type(data["b"]) is int
    assert lines.line_of(("e",)) == 5


def test_duplicate_top_level_key_names_both_lines():
    with pytest.raises(YamlSourceError) as err:
        load_yaml("name: a\nscale: {}\nname: b\n", "r.yaml")
    assert str(err.value) == "r.yaml:3: duplicate key 'name' (first at line 1)"


def test_duplicate_key_inside_a_list_item():
    text = "dimensions:\n  - name: a\n    group: g\n  - name: b\n    group: g\n    name: c\n"
    with pytest.raises(YamlSourceError, match=r"^r.yaml:6: duplicate key 'name' \(first at line 4\)$"):
        load_yaml(text, "r.yaml")


def test_same_key_in_sibling_mappings_and_merge_override_are_fine():
    text = "base: &b {x: 1, y: 2}\na: {x: 1}\nb: {x: 2}\nc:\n  <<: *b\n  x: 3\n"
    data, _ = load_yaml(text, "r.yaml")
    assert data["c"] == {"x": 3, "y": 2}


def test_syntax_error_names_line_and_column():
    with pytest.raises(YamlSourceError) as err:
        load_yaml("name: a\nscale: [1, 2\nformula: x\n", "r.yaml")
    message = str(err.value)
    assert message.startswith("r.yaml:3:")
    assert ": invalid YAML: " in message and "Traceback" not in message
    with pytest.raises(YamlSourceError, match=r"^r.yaml:2:\d+: invalid YAML: mapping values are not allowed"):
        load_yaml("a: b\nc: d: e\n", "r.yaml")


def test_unsafe_tag_is_invalid_yaml_not_an_object():
    with pytest.raises(YamlSourceError, match=r"^r.yaml:1:\d+: invalid YAML: could not determine a constructor"):
        load_yaml("a: !!python/object/apply:os.system ['true']\n", "r.yaml")


def test_empty_document_has_no_lines():
    data, lines = load_yaml("# nothing\n", "r.yaml")
    assert data is None and lines.line_of(("name",)) is None


def test_line_of_nested_list_item_field():
    _, lines = load_yaml(DOC, "r.yaml")
    assert lines.line_of(("dimensions", 1, "group")) == 10
    assert lines.line_of(("dimensions", 1)) == 9
    assert lines.line_of(("scale", "max")) == 5


def test_line_of_missing_field_is_its_parent():
    _, lines = load_yaml(DOC, "r.yaml")
    assert lines.line_of(("dimensions", 2, "name")) == 11
    assert lines.line_of(("dimensions", 9)) == 6  # no such item: the list's own key


def test_line_of_skips_union_tags_and_validator_names():
    _, lines = load_yaml(DOC, "r.yaml")
    assert lines.line_of(("scale", "function-after[_ordered(), Scale]", "max")) == 5
    assert lines.line_of(("scale", "literal['unit']")) == 3


def test_describe_errors_names_line_path_and_dimension():
    data, lines = load_yaml(DOC, "r.yaml")
    with pytest.raises(ValidationError) as err:
        Spec.model_validate(data)
    described = describe_errors(err.value, lines, data, "r.yaml").splitlines()
    assert "r.yaml:10: dimensions[1].group (dimension efficiency): Input should be a valid string" in described
    # the third item has no name: it is named by its index only, at its own line
    assert "r.yaml:11: dimensions[2].name: Field required" in described
    # missing at the top level: the document's first line
    assert "r.yaml:2: judge: Field required" in described
    assert len(described) == 3


def test_describe_errors_on_a_validator_message():
    data, lines = load_yaml("name: n\nscale:\n  min: 1\n  max: 0\ndimensions: []\njudge: j\n", "r.yaml")
    with pytest.raises(ValidationError) as err:
        Spec.model_validate(data)
    described = describe_errors(err.value, lines, data, "r.yaml").splitlines()
    # the union tags are dropped from the path: one line per union member, at the key's line
    assert described == [
        "r.yaml:2: scale: Value error, min must be below max",
        "r.yaml:2: scale: Input should be 'unit'",
    ]


def test_describe_errors_at_the_top_level():
    data, lines = load_yaml("- a\n", "r.yaml")
    with pytest.raises(ValidationError) as err:
        Spec.model_validate(data)
    assert describe_errors(err.value, lines, data, "r.yaml").startswith("r.yaml:1: <top level>: ")


def test_deeply_nested_document_is_an_error_not_a_recursion_error():
    with pytest.raises(YamlSourceError, match=r"^deep.yaml: invalid YAML: nested too deeply$"):
        load_yaml("[" * 10_000 + "]" * 10_000, "deep.yaml")
    with pytest.raises(YamlSourceError, match=r"^deep.yaml: invalid YAML: nested too deeply$"):
        load_yaml("".join(f"{'  ' * i}k:\n" for i in range(5_000)), "deep.yaml")


def test_moderately_nested_document_parses():
    data, lines = load_yaml("[" * 50 + "1" + "]" * 50, "r.yaml")
    for _ in range(50):
        data = data[0]
    assert data == 1 and lines.line_of((0,) * 50) == 1


def test_alias_bomb_is_refused():
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(
        YamlSourceError, match=rf"^bomb.yaml:\d+: aliases expand to more than {MAX_ALIASED_NODES} nodes$"
    ):
        load_yaml("\n".join(levels) + "\n", "bomb.yaml")


def test_reused_anchors_within_the_cap_are_fine():
    data, _ = load_yaml("anchors: &std {low: bad, high: good}\nd1: *std\nd2: *std\n", "r.yaml")
    assert data["d1"] == data["d2"] == {"low": "bad", "high": "good"}


def test_recursive_alias_is_refused():
    with pytest.raises(YamlSourceError, match=r"^r.yaml:1: alias \*a refers to a collection that contains it$"):
        load_yaml("a: &a [1, *a]\n", "r.yaml")
