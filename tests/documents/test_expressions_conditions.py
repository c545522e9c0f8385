from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kiln.documents import conditions, loops
from kiln.documents.expressions import ExpressionError, Scope, parse, resolve
from kiln.documents.host import HostExecutor
from kiln.documents.model import Loop


def scope() -> Scope:
    return Scope(
        variables={"Name": "kiln", "Count": 3, "Flag": True},
        steps={"build": {
            "One": {"inputs": {"commands": ["echo a"]}, "outputs": {"stdout": "a"}},
            "Files": {"inputs": [{"path": "/x"}, {"path": "/y"}], "outputs": {"content": "c"}},
        }},
        loops={"loop": (1, "b"), "named": (1, "b")},
        context={"osPlatform": "linux"},
        env={"HOME": "/root"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ Name }}", "kiln"),
        ("{{Count}}", "3"),
        ("{{ Flag }}", "true"),
        ("x-{{ Name }}-{{ Count }}", "x-kiln-3"),
        ("{{ build.One.outputs.stdout }}", "a"),
        ("{{ build.One.inputs.commands }}", ["echo a"]),
        ("{{ build.Files.inputs[1].path }}", "/y"),
        ("{{ build.Files.outputs[0].content }}", "c"),
        ("{{ loop.index }}:{{ named.value }}", "1:b"),
        ("{{ env:HOME }}", "/root"),
        ("{{ context:osPlatform }}", "linux"),
        ("no references", "no references"),
    ],
)
def test_resolution(text: str, expected: object) -> None:
    assert resolve(text, scope()) == expected


def test_loop_reference_outside_a_loop_stays_literal() -> None:
    outside = scope()
    outside.loops = {}
    assert resolve("echo {{ loop.value }}", outside) == "echo {{ loop.value }}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{{ Nope }}", "undefined parameter"),
        ("{{ build.Missing.outputs.stdout }}", "has not run"),
        ("{{ build.One.outputs.nothing }}", "no output 'nothing'"),
        ("{{ build.Files.inputs[5].path }}", "out of range"),
        ("{{ env:NOT_SET_ANYWHERE }}", "not set"),
        ("{{ aws:ssm:/x }}", "needs AWS"),
    ],
)
def test_resolution_errors(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=fragment):
        resolve(text, scope())


def test_nested_values_resolve() -> None:
    assert resolve({"a": ["{{ Name }}", 1], "b": {"c": "{{ Count }}"}}, scope()) == {
        "a": ["kiln", 1], "b": {"c": "3"}}
    assert parse("build.S.outputs.stdout").kind == "chain"
    assert parse("something odd here").kind == "unknown"


def test_loop_iterations() -> None:
    assert loops.iterations(Loop(range=(0, 4, 2)), str) == [(0, "0"), (1, "2"), (2, "4")]
    assert loops.iterations(Loop(items=["a", 1]), lambda v: v) == [(0, "a"), (1, "1")]
    assert loops.iterations(Loop(delimited="a b", delimiter=" "), lambda v: v) == [(0, "a"), (1, "b")]
    assert loops.check({"for": {"start": 0, "end": 2, "updateBy": 1}, "extra": 1}) == [
        (("extra",), "unknown loop key 'extra'", True)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"stringEquals": "ABC", "value": "abc"}, True),
        ({"stringLessThan": "b", "value": "A"}, True),
        ({"stringGreaterThanEquals": "b", "value": "a"}, False),
        ({"stringIsEmpty": ""}, True),
        ({"stringIsEmpty": " "}, False),
        ({"stringIsWhitespace": "  "}, True),
        ({"stringIsWhitespace": ""}, False),
        ({"numberLessThan": 2, "value": 1}, True),
        ({"numberEquals": "1.0", "value": 1}, True),
        ({"numberGreaterThan": 1, "value": "not a number"}, False),
        ({"patternMatches": "^[a-z]+$", "value": "ThisIsValue"}, True),
        ({"binaryExists": "sh"}, True),
        ({"binaryExists": "no-such-binary-kiln"}, False),
        ({"folderExists": "/tmp"}, True),
        ({"fileExists": "/tmp"}, False),
        ({"and": [{"stringIsEmpty": ""}, {"not": {"stringIsEmpty": ""}}]}, False),
        ({"or": [{"stringIsEmpty": "x"}, {"stringEquals": "a", "value": "A"}]}, True),
    ],
)
def test_operators(expression: dict, expected: bool) -> None:
    assert conditions.evaluate(expression, lambda v: v, HostExecutor()) is expected


def test_file_hash_operator(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"kiln")
    digest = hashlib.sha256(b"kiln").hexdigest().upper()
    expression = {"fileSHA256Equals": digest, "path": str(target)}
    assert conditions.evaluate(expression, lambda v: v, HostExecutor())
    assert not conditions.evaluate({**expression, "fileSHA256Equals": "00"}, lambda v: v, HostExecutor())


def test_decide_and_check() -> None:
    executor = HostExecutor()
    assert conditions.decide({"stringIsEmpty": ""}, lambda v: v, executor) == "Execute"
    assert conditions.decide({"stringIsEmpty": "x"}, lambda v: v, executor) == "Skip"
    assert conditions.decide({"stringIsEmpty": "x", "else": "Abort"}, lambda v: v, executor) == "Abort"
    assert conditions.check({"stringEquals": "a"}) == [((), "'stringEquals' needs 'value'", False)]
    assert conditions.check({"value": 1}) == [((), "expected exactly one operator, found none", False)]
