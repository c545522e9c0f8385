from __future__ import annotations

import pytest

from kiln.documents.yamlload import MAX_BYTES, YamlError, load


def test_positions_of_values_and_keys() -> None:
    loaded = load("a: 1\nb:\n  - x: '{{ y }}'\n")
    assert loaded.data == {"a": 1, "b": [{"x": "{{ y }}"}]}
    assert loaded.values[("b", 0, "x")] == (3, 8)
    assert loaded.keys[("b", 0, "x")] == (3, 5)
    # a missing path falls back to the nearest enclosing node
    assert loaded.position(("b", 0, "missing")) == (3, 5)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("- 1\n- 2\n", 1, 1, "must be a mapping"),
        ("a: {{ x }}\n", 1, 5, "must be quoted"),
        ("a: 1\na: 2\n", 2, 1, "duplicate key"),
        ("a: [\n", 2, 1, "invalid YAML"),
        ("", 1, 1, "empty"),
        ("a: !!python/object:os.system x\n", 1, 4, "invalid YAML value"),
    ],
)
def test_refusals(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(YamlError) as caught:
        load(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert fragment in caught.value.message


def test_alias_bomb_is_refused_before_expansion() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20)
    )
    with pytest.raises(YamlError, match="expands to more than"):
        load(bomb)


def test_anchors_and_aliases_share_a_value() -> None:
    loaded = load("a: &script |\n  echo hi\nb: *script\n")
    assert loaded.data == {"a": "echo hi\n", "b": "echo hi\n"}


def test_size_limit() -> None:
    with pytest.raises(YamlError, match="limit"):
        load("a: '" + "x" * MAX_BYTES + "'\n")
