"""The CLI's one body reader, one KEY=VALUE parser and one table renderer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.cli.output import table
from kiln.cli.resource_input import cli_input, filters, key_values, launch_permissions, tags
from kiln.errors import InvalidInput

ARN = "arn:aws:imagebuilder:local:123456789012:image-recipe/a-rather-long-recipe-name-for-a-narrow-terminal/1.0.0"


def test_tables_never_cut_a_cell_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    table(["ARN", "STATUS"], [[ARN, "ENABLED"], ["short", None]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ARN", "STATUS"]
    assert lines[1].split() == [ARN, "ENABLED"]
    assert lines[2] == "short"
    assert lines[1].index("ENABLED") == lines[0].index("STATUS")  # aligned columns


def test_the_body_comes_from_a_path_a_file_url_or_the_text(tmp_path: Path) -> None:
    path = tmp_path / "body.yaml"
    path.write_text("kind: ImageRecipe\nname: web\n")
    assert cli_input(None, str(path)) == {"name": "web"}  # ``kind`` (kiln apply files) is dropped
    assert cli_input(None, f"file://{path}") == {"name": "web"}
    assert cli_input(json.dumps({"name": "inline"}), None) == {"name": "inline"}
    assert cli_input(None, "name: inline\nversion: 1\n") == {"name": "inline", "version": 1}


@pytest.mark.parametrize(
    ("json_input", "yaml_input", "message"),
    [
        (None, None, "give exactly one of --cli-input-yaml or --cli-input-json"),
        ("{}", "a: 1", "give exactly one of --cli-input-yaml or --cli-input-json"),
        (None, "/nowhere/policy.yaml", "cannot read /nowhere/policy.yaml"),
        ("file:///nowhere/body.json", None, "cannot read /nowhere/body.json"),
        ('{"name": ', None, "not valid JSON"),
        (None, "[1, 2]", "the request body must be an object"),
    ],
)
def test_bad_bodies_are_one_clear_error(json_input: str | None, yaml_input: str | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[")):
        cli_input(json_input, yaml_input)


def test_one_key_value_parser() -> None:
    assert key_values(["a=1", "b=x=y", "c="], "--tag") == {"a": "1", "b": "x=y", "c": ""}
    assert key_values(["a=1,2"], "--tag") == {"a": "1,2"}
    assert tags(["team = web, env=prod", "tier=1"]) == {"team": "web", "env": "prod", "tier": "1"}
    assert tags(None) is None
    assert filters(["name=a*,b*", "name=c", "state=available"]) == {"name": ["a*", "b*", "c"], "state": ["available"]}
    assert launch_permissions(["Group=all", "UserId=123456789012"], "--add") == [
        {"Group": "all"},
        {"UserId": "123456789012"},
    ]
    for bad, parse in (("novalue", lambda v: key_values([v], "--env")), ("=1", lambda v: filters([v]))):
        with pytest.raises(InvalidInput) as caught:
            parse(bad)
        assert f"{bad!r} is not" in caught.value.message
