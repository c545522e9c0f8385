"""The resource commands as a user runs them: the ``kiln`` command line (in-process), exit codes, JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SELF = "arn:aws:imagebuilder:local:123456789012"


def test_component_create_get_list_delete(kiln, tmp_path: Path, simple_doc: str) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text(simple_doc)
    created = kiln(
        "component",
        "create",
        "--name",
        "cli-comp",
        "--semantic-version",
        "1.0.0",
        "--data-file",
        str(doc),
        "--tags",
        "team=a",
        "--description",
        "from the CLI",
    )
    assert created.exit_code == 0, created.stderr
    arn = f"{SELF}:component/cli-comp/1.0.0/1"
    assert created.stdout.strip() == arn

    got = kiln("component", "get", arn, "--output", "json")
    assert got.exit_code == 0, got.stderr
    component = json.loads(got.stdout)["component"]
    assert (component["arn"], component["tags"], component["description"]) == (
        arn,
        {"team": "a"},
        "from the CLI",
    )

    listed = json.loads(kiln("component", "list", "--output", "json").stdout)
    assert [entry["arn"] for entry in listed["componentVersionList"]] == [f"{SELF}:component/cli-comp/1.0.0"]
    amazon = json.loads(kiln("component", "list", "--owner", "Amazon", "--output", "json").stdout)
    assert "kiln-hardening-linux" in {entry["name"] for entry in amazon["componentVersionList"]}

    deleted = kiln("component", "delete", arn, "--output", "json")
    assert deleted.exit_code == 0
    assert json.loads(deleted.stdout)["componentBuildVersionArn"] == arn
    missing = kiln("component", "get", arn)
    assert missing.exit_code != 0
    assert missing.stderr.startswith("error:")
    assert len(missing.stderr.strip().splitlines()) <= 2


def test_component_create_errors_exit_non_zero(kiln, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases: [\n")
    result = kiln(
        "component", "create", "--name", "bad", "--semantic-version", "1.0.0", "--data-file", str(bad)
    )
    assert result.exit_code != 0
    assert "not valid YAML" in result.stderr
    wildcard = kiln(
        "component", "create", "--name", "bad", "--semantic-version", "1.x.0", "--data-file", str(bad)
    )
    assert wildcard.exit_code != 0
    assert "semanticVersion" in wildcard.stderr


def test_apply_text_and_json_output(kiln) -> None:
    from kiln.services.demo import prepare_demo_world

    prepare_demo_world()  # the regions and the account the demo's distribution names
    first = kiln("apply", "-f", str(EXAMPLES / "demo.yaml"))
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 5
    assert all(line.endswith(" created") for line in lines)
    assert f"{SELF}:image-recipe/demo-nginx/1.0.0 created" in lines
    again = kiln("apply", "-f", str(EXAMPLES / "demo.yaml"), "--output", "json")
    data = json.loads(again.stdout)
    assert {entry["status"] for entry in data["resources"]} == {"unchanged"}
    assert data["dryRun"] is False


def test_apply_error_exit_code_and_message(kiln, tmp_path: Path) -> None:
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "kind: InfrastructureConfiguration\nname: okay\n---\n"
        "kind: InfrastructureConfiguration\nname: other\nbogus: 1\n"
    )
    result = kiln("apply", "-f", str(stack))
    assert result.exit_code != 0
    assert "document 2" in result.stderr
    assert "bogus" in result.stderr
    listed = json.loads(kiln("infrastructure", "list", "--output", "json").stdout)
    assert listed["infrastructureConfigurationSummaryList"] == []


def test_recipe_infrastructure_distribution_from_cli_input(kiln, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "name: cli-recipe\nsemanticVersion: 1.0.0\nparentImage: debian:bookworm\n"
        "components:\n  - componentArn: arn:aws:imagebuilder:local:aws:component/hello-world-linux/x.x.x\n"
    )
    created = kiln("recipe", "create", "--cli-input-yaml", str(recipe))
    assert created.exit_code == 0, created.stderr
    assert created.stdout.strip() == f"{SELF}:image-recipe/cli-recipe/1.0.0"
    got = json.loads(kiln("recipe", "get", created.stdout.strip(), "--output", "json").stdout)
    assert got["imageRecipe"]["parentImage"] == "debian:bookworm"

    infra = kiln(
        "infrastructure", "create", "--cli-input-json", json.dumps({"name": "cli-infra"}), "--output", "json"
    )
    arn = json.loads(infra.stdout)["infrastructureConfigurationArn"]
    update = {"infrastructureConfigurationArn": arn, "terminateInstanceOnFailure": False}
    assert kiln("infrastructure", "update", "--cli-input-json", json.dumps(update)).exit_code == 0
    shown = json.loads(kiln("infrastructure", "get", arn, "--output", "json").stdout)
    assert shown["infrastructureConfiguration"]["terminateInstanceOnFailure"] is False

    dist = tmp_path / "dist.json"
    dist.write_text(json.dumps({"name": "cli-dist", "distributions": [{"region": "local"}]}))
    made = kiln("distribution", "create", "--cli-input-json", f"file://{dist}")
    assert made.exit_code == 0, made.stderr
    assert kiln("distribution", "delete", made.stdout.strip()).exit_code == 0
    neither = kiln("distribution", "create")
    assert neither.exit_code != 0
