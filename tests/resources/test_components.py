from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kiln.errors import AlreadyExists, Forbidden, InUse, InvalidInput, NotFound
from kiln.services.common.unit import DryRunOperation, IdempotentParameterMismatch
from kiln.services.components.managed import MANAGED_COMPONENTS, managed_document
from kiln.services.components.resource import (
    create_component,
    delete_component,
    get_component,
    list_components,
    resolve_component,
)
from kiln.services.recipes.resource import create_image_recipe

SELF = "arn:aws:imagebuilder:local:123456789012:component"


def make(name: str, version: str, data: str, **extra: object) -> str:
    body = {"name": name, "semanticVersion": version, "platform": "Linux", "data": data, **extra}
    return create_component(body)["componentBuildVersionArn"]


def test_create_gets_build_one_and_get_returns_image_builder_shape(build_doc: str) -> None:
    arn = make("Sample Comp", "1.0.0", build_doc, description="desc", tags={"team": "a"})
    assert arn == f"{SELF}/sample-comp/1.0.0/1"
    component = get_component(arn)["component"]
    assert component["name"] == "Sample Comp"
    assert component["type"] == "BUILD"
    assert component["owner"] == "123456789012"
    assert component["data"] == build_doc
    assert component["tags"] == {"team": "a"}
    assert component["dateCreated"].endswith("Z")
    assert component["parameters"] == [
        {"name": "Greeting", "type": "String", "defaultValue": ["hello"], "description": "What to say."},
        {"name": "Target", "type": "String", "description": "Required, no default."},
    ]


def test_test_only_document_is_a_test_component(test_doc: str) -> None:
    arn = make("checks", "1.0.0", test_doc)
    assert get_component(arn)["component"]["type"] == "TEST"


def test_same_content_again_is_a_no_op(simple_doc: str) -> None:
    first = make("same", "1.0.0", simple_doc, description="d")
    again = make("same", "1.0.0", simple_doc, description="d")
    assert first == again
    assert len(list_components(name="same")["componentVersionList"]) == 1


def test_changed_content_same_version_is_refused(simple_doc: str) -> None:
    make("same", "1.0.0", simple_doc)
    with pytest.raises(AlreadyExists) as caught:
        make("same", "1.0.0", simple_doc.replace("hello", "bye"))
    assert "immutable" in (caught.value.hint or "")
    assert "1.0.1" in (caught.value.hint or "")


def test_client_token_reuse(simple_doc: str) -> None:
    body = {
        "name": "tok",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "data": simple_doc,
        "clientToken": "t1",
    }
    first = create_component(body)
    assert create_component(body)["componentBuildVersionArn"] == first["componentBuildVersionArn"]
    with pytest.raises(IdempotentParameterMismatch):
        create_component({**body, "semanticVersion": "2.0.0"})


def test_dry_run_creates_nothing(simple_doc: str) -> None:
    with pytest.raises(DryRunOperation):
        create_component(
            {
                "name": "dry",
                "semanticVersion": "1.0.0",
                "platform": "Linux",
                "data": simple_doc,
                "dryRun": True,
            }
        )
    assert list_components(name="dry")["componentVersionList"] == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("phases: [\n", "not valid YAML"),
        ("- a\n- b\n", "mapping"),
        ("phases: []\n", "schemaVersion"),
        ("schemaVersion: 1.0\nphases:\n  - name: other\n    steps: []\n", "at least one of the phases build"),
    ],
)
def test_bad_documents_are_refused(data: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make("bad", "1.0.0", data)
    assert problem in caught.value.message
    assert list_components(name="bad")["componentVersionList"] == []


def test_resolution_picks_newest_matching(simple_doc: str) -> None:
    for version in ("1.0.0", "1.2.0", "1.10.1", "2.0.0"):
        make("multi", version, simple_doc + f"# {version}\n")
    assert resolve_component(f"{SELF}/multi/x.x.x").version == "2.0.0"
    assert resolve_component(f"{SELF}/multi/1.x.x").version == "1.10.1"
    assert resolve_component(f"{SELF}/multi/1.2.x").version == "1.2.0"
    assert resolve_component("component/multi/1.0.0").arn == f"{SELF}/multi/1.0.0/1"
    with pytest.raises(NotFound):
        resolve_component(f"{SELF}/multi/3.x.x")
    references = get_component(f"{SELF}/multi/1.2.0/1")["latestVersionReferences"]
    assert references == {
        "latestVersionArn": f"{SELF}/multi/2.0.0/1",
        "latestMajorVersionArn": f"{SELF}/multi/1.10.1/1",
        "latestMinorVersionArn": f"{SELF}/multi/1.2.0/1",
        "latestPatchVersionArn": f"{SELF}/multi/1.2.0/1",
    }


def test_list_by_name_gives_newest_only(simple_doc: str) -> None:
    make("multi", "1.0.0", simple_doc)
    make("multi", "1.1.0", simple_doc + "# 1.1\n")
    listed = list_components(by_name=True)["componentVersionList"]
    assert [entry["arn"] for entry in listed] == [f"{SELF}/multi/1.1.0"]


def test_managed_components_seeded_once_and_parse_as_awstoe(fresh_database) -> None:
    listed = list_components(owner="Amazon")["componentVersionList"]
    names = sorted(entry["name"] for entry in listed)
    assert names == sorted(managed.name for managed in MANAGED_COMPONENTS)
    assert all(entry["owner"] == "Amazon" for entry in listed)
    assert len(list_components(owner="Amazon")["componentVersionList"]) == len(names)  # idempotent seeding
    assert list_components(owner="Self")["componentVersionList"] == []
    for managed in MANAGED_COMPONENTS:
        document = yaml.safe_load(managed_document(managed.name))
        assert str(document["schemaVersion"]) == "1.0"
        assert document["name"] == managed.name
        for phase in document["phases"]:
            assert phase["name"] in ("build", "validate", "test")
            for step in phase["steps"]:
                allowed = ("ExecuteBash", "UpdateOS", "Reboot") if managed.implemented else ("kiln:NoImplementation",)
                assert step["action"] in allowed
    arn = "arn:aws:imagebuilder:local:aws:component/update-linux/1.0.0/1"
    assert (
        get_component("arn:aws:imagebuilder:local:aws:component/update-linux/x.x.x")["component"]["arn"]
        == arn
    )


def test_managed_components_cannot_be_deleted() -> None:
    with pytest.raises(Forbidden):
        delete_component("arn:aws:imagebuilder:local:aws:component/update-linux/1.0.0/1")


def test_delete_refused_while_a_recipe_needs_it(simple_doc: str) -> None:
    arn = make("used", "1.0.0", simple_doc)
    recipe = create_image_recipe(
        {
            "name": "user",
            "semanticVersion": "1.0.0",
            "parentImage": "debian:bookworm",
            "components": [{"componentArn": f"{SELF}/used/1.x.x"}],
        }
    )["imageRecipeArn"]
    with pytest.raises(InUse) as caught:
        delete_component(arn)
    assert recipe in caught.value.message
    # With a second matching version the wildcard still resolves, so the first may go.
    make("used", "1.1.0", simple_doc + "# 1.1\n")
    delete_component(arn)
    with pytest.raises(NotFound):
        get_component(arn)


def test_delete_needs_build_arn(simple_doc: str) -> None:
    make("plain", "1.0.0", simple_doc)
    with pytest.raises(InvalidInput):
        delete_component(f"{SELF}/plain/1.0.0")
    assert delete_component(f"{SELF}/plain/1.0.0/1")["componentBuildVersionArn"] == f"{SELF}/plain/1.0.0/1"


def test_document_from_file_uri(tmp_path: Path, simple_doc: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(simple_doc)
    arn = create_component(
        {"name": "fromfile", "semanticVersion": "1.0.0", "platform": "Linux", "uri": f"file://{path}"}
    )["componentBuildVersionArn"]
    assert get_component(arn)["component"]["data"] == simple_doc
    with pytest.raises(NotFound):
        create_component(
            {
                "name": "missing",
                "semanticVersion": "1.0.0",
                "platform": "Linux",
                "uri": f"file://{tmp_path}/nope.yaml",
            }
        )
    with pytest.raises(InvalidInput):
        create_component(
            {"name": "weird", "semanticVersion": "1.0.0", "platform": "Linux", "uri": "ftp://x/y"}
        )


def test_components_are_checked_by_the_awstoe_validator(simple_doc: str) -> None:
    bad = simple_doc.replace("ExecuteBash", "ExecuteBsah")
    with pytest.raises(InvalidInput) as caught:
        make("checked", "1.0.1", bad)
    assert "unknown action 'ExecuteBsah'" in caught.value.message
    assert re.search(r"data:\d+:\d+: ", caught.value.message)
