"""Safe YAML loading that keeps the line and column of every node.

Documents are composed with PyYAML's SafeLoader (no Python tags), refused above
:data:`MAX_BYTES`. Anchors and aliases work (documents share a script between phases with them),
but the expanded document may hold at most :data:`MAX_NODES` values, so an alias bomb is refused
while it is being expanded, long before it costs memory. The result is plain Python data plus a
table from each value's path to its position in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000

Path = tuple[str | int, ...]


class YamlError(Exception):
    """A document that cannot be loaded; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Loaded:
    """Plain data and where each value (``values``) and mapping key (``keys``) sits in the file."""

    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The position of ``path``, falling back to the nearest enclosing node."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if key and path in self.values:
                return self.values[path]
            path = path[:-1]
            table = self.values
        return self.values.get((), (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# libyaml when present (10x faster); the pure-Python loader otherwise. Both are safe loaders.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Builder:
    def __init__(self) -> None:
        self.constructor = yaml.SafeLoader("")
        self.loaded = Loaded(None)
        self.nodes = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        # An alias composes to the very node its anchor named, so counting every node built counts
        # the expanded document: an alias bomb stops here after MAX_NODES values.
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlError(
                f"document expands to more than {MAX_NODES} values (anchors and aliases nested too deep?)",
                *_mark(node),
            )
        self.loaded.values[path] = _mark(node)
        if isinstance(node, yaml.ScalarNode):
            value = self.constructor.construct_object(node)
            if not isinstance(value, str | int | float | bool) and value is not None:
                value = node.value  # timestamps, binary: keep the text
            return value
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.MappingNode | yaml.SequenceNode):
                    raise YamlError(
                        "a value starting with '{{' must be quoted (YAML reads it as a mapping)",
                        *_mark(key_node),
                    )
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise YamlError("merge keys (<<) are not allowed", *_mark(key_node))
                key = str(self.constructor.construct_object(key_node))
                if key in result:
                    raise YamlError(f"duplicate key {key!r}", *_mark(key_node))
                self.loaded.keys[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        raise YamlError(f"unsupported YAML node {node.tag}", *_mark(node))


def plain(node: yaml.Node) -> Any:
    """Plain data of one composed node, with the same rules and bounds as :func:`load`."""
    try:
        return _Builder().build(node, ())
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(f"invalid YAML value: {error.problem}", line, column) from None


def load(text: str | bytes) -> Loaded:
    """Load one YAML document with positions; raise :class:`YamlError` on anything unsafe."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise YamlError(f"document is {len(raw)} bytes; the limit is {MAX_BYTES} bytes (1 MiB)")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlError(f"document is not UTF-8: {error}") from None
    try:
        node = yaml.compose(decoded, Loader=_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(f"invalid YAML: {error.problem or error}", line, column) from None
    except yaml.YAMLError as error:
        raise YamlError(f"invalid YAML: {error}") from None
    if node is None:
        raise YamlError("document is empty; expected a mapping")
    if not isinstance(node, yaml.MappingNode):
        raise YamlError("the top level of a document must be a mapping", *_mark(node))
    builder = _Builder()
    try:
        builder.loaded.data = builder.build(node, ())
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(f"invalid YAML value: {error.problem}", line, column) from None
    return builder.loaded
