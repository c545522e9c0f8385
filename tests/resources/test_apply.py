from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from kiln.errors import AlreadyExists, InvalidInput
from kiln.model.shapes import Shape
from kiln.services.apply import apply_file, apply_text, kinds, register_kind
from kiln.services.common.kinds import KindHandler, Ref
from kiln.services.components.resource import list_components
from kiln.services.configurations.distribution import list_distribution_configurations
from kiln.services.configurations.infrastructure import (
    get_infrastructure_configuration,
    list_infrastructure_configurations,
)
from kiln.services.recipes.resource import list_image_recipes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SELF = "arn:aws:imagebuilder:local:123456789012"


def nothing_created() -> bool:
    return (
        list_components()["componentVersionList"] == []
        and list_image_recipes()["imageRecipeSummaryList"] == []
        and list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []
        and list_distribution_configurations()["distributionConfigurationSummaryList"] == []
    )


def component_doc(name: str, version: str = "1.0.0", echo: str = "hello") -> str:
    data = textwrap.indent(
        textwrap.dedent(
            f"""\
            schemaVersion: 1.0
            phases:
              - name: build
                steps:
                  - name: Say
                    action: ExecuteBash
                    inputs:
                      commands:
                        - echo {echo}
            """
        ),
        "  ",
    )
    return f"kind: Component\nname: {name}\nsemanticVersion: {version}\nplatform: Linux\ndata: |\n{data}"


RECIPE = textwrap.dedent(
    f"""\
    kind: ImageRecipe
    name: web
    semanticVersion: 1.0.0
    parentImage: debian:bookworm
    components:
      - componentArn: component/update-linux/x.x.x
      - componentArn: {SELF}:component/web-setup/1.x.x
    """
)


def test_demo_applies_and_reapplies_unchanged() -> None:
    from kiln.services.demo import prepare_demo_world

    prepare_demo_world()  # the regions and the account the demo's distribution names
    first = apply_file(EXAMPLES / "demo.yaml")
    assert [outcome.status for outcome in first.outcomes] == ["created"] * 5
    kinds_applied = [outcome.kind for outcome in first.outcomes]
    # The recipe comes first in the file but is applied after both components it references.
    assert kinds_applied.index("ImageRecipe") > kinds_applied.index("Component")
    assert kinds_applied.count("Component") == 2
    assert f"{SELF}:image-recipe/demo-nginx/1.0.0" in [outcome.arn for outcome in first.outcomes]
    again = apply_file(EXAMPLES / "demo.yaml")
    assert [outcome.status for outcome in again.outcomes] == ["unchanged"] * 5
    assert [outcome.arn for outcome in again.outcomes] == [outcome.arn for outcome in first.outcomes]
    infra = get_infrastructure_configuration(f"{SELF}:infrastructure-configuration/demo-infrastructure")
    assert infra["infrastructureConfiguration"]["terminateInstanceOnFailure"] is False


def test_demo_documents_are_image_builder_bodies() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "demo.yaml").read_text()))
    kinds_in_file = {document["kind"] for document in documents}
    assert kinds_in_file == {
        "Component",
        "ImageRecipe",
        "InfrastructureConfiguration",
        "DistributionConfiguration",
    }
    nginx = next(d for d in documents if d.get("name") == "demo-nginx-install")
    assert "nginx-light" in nginx["data"]
    distribution = next(d for d in documents if d["kind"] == "DistributionConfiguration")
    assert distribution["distributions"][0]["amiDistributionConfiguration"]["name"] == (
        "demo-nginx-{{ imagebuilder:buildDate }}"
    )


def test_third_document_bad_creates_nothing() -> None:
    text = "\n---\n".join(
        [
            component_doc("web-setup"),
            RECIPE,
            "kind: InfrastructureConfiguration\nname: infra\nterminateInstanceOnFailure: maybe-not\n",
        ]
    )
    with pytest.raises(InvalidInput) as caught:
        apply_text(text, source="stack.yaml")
    location = caught.value.location or ""
    assert location.startswith("stack.yaml: document 3 (line ")
    assert "InfrastructureConfiguration" in location
    assert location.endswith("terminateInstanceOnFailure")
    assert nothing_created()


def test_failure_while_applying_rolls_everything_back() -> None:
    # Valid shapes, but the recipe references a component that does not exist.
    text = "\n---\n".join(
        [component_doc("other"), RECIPE, "kind: InfrastructureConfiguration\nname: infra\n"]
    )
    with pytest.raises(InvalidInput) as caught:
        apply_text(text, source="stack.yaml")
    assert "document 2" in (caught.value.location or "")
    assert "components[1].componentArn" in (caught.value.location or "")
    assert nothing_created()


def test_changed_immutable_version_is_refused_and_changes_nothing() -> None:
    apply_text(component_doc("web-setup"), source="v1.yaml")
    changed = "\n---\n".join(
        ["kind: InfrastructureConfiguration\nname: infra\n", component_doc("web-setup", echo="bye")]
    )
    with pytest.raises(AlreadyExists) as caught:
        apply_text(changed, source="v2.yaml")
    assert "v2.yaml: document 2" in str(caught.value)
    assert "semanticVersion" in (caught.value.hint or "")
    assert list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []
    bumped = apply_text(component_doc("web-setup", version="1.0.1", echo="bye"), source="v3.yaml")
    assert bumped.outcomes[0].status == "created"


def test_mutable_configuration_is_updated() -> None:
    apply_text("kind: InfrastructureConfiguration\nname: infra\ninstanceTypes: [t3.micro]\n")
    result = apply_text("kind: InfrastructureConfiguration\nname: infra\ninstanceTypes: [t3.large]\n")
    assert result.outcomes[0].status == "updated"
    got = get_infrastructure_configuration(f"{SELF}:infrastructure-configuration/infra")[
        "infrastructureConfiguration"
    ]
    assert got["instanceTypes"] == ["t3.large"]


def test_unknown_kind_and_missing_kind() -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_text("kind: Gadget\nname: x\n", source="f.yaml")
    assert "Gadget" in caught.value.message
    assert "Component" in (caught.value.hint or "")
    with pytest.raises(InvalidInput) as caught:
        apply_text("name: x\n", source="f.yaml")
    assert "no kind" in caught.value.message


def test_duplicate_definitions_are_refused() -> None:
    text = "\n---\n".join([component_doc("dup"), component_doc("dup", echo="other")])
    with pytest.raises(InvalidInput) as caught:
        apply_text(text, source="f.yaml")
    assert "document 1" in caught.value.message
    assert nothing_created()


def test_json_input_and_dry_run(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(
        json.dumps(
            [
                {"kind": "InfrastructureConfiguration", "name": "infra"},
                {"kind": "DistributionConfiguration", "name": "dist", "distributions": [{"region": "local"}]},
            ]
        )
    )
    preview = apply_file(path, dry_run=True)
    assert [outcome.status for outcome in preview.outcomes] == ["created", "created"]
    assert nothing_created()
    applied = apply_file(path)
    assert [outcome.arn for outcome in applied.outcomes] == [
        f"{SELF}:infrastructure-configuration/infra",
        f"{SELF}:distribution-configuration/dist",
    ]


def test_relative_file_uri_is_taken_from_the_file_folder(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "c.yaml").write_text(
        "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
        "      - name: A\n        action: ExecuteBash\n        inputs:\n          commands: [echo a]\n"
    )
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "kind: Component\nname: from-file\nsemanticVersion: 1.0.0\nplatform: Linux\nuri: file:docs/c.yaml\n"
    )
    assert apply_file(stack).outcomes[0].status == "created"


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        apply_text("kind: Component\nname: [unclosed\n", source="broken.yaml")
    assert (caught.value.location or "").startswith("broken.yaml (line")


def test_other_families_can_register_kinds() -> None:
    created: list[str] = []

    class Widget(Shape):
        name: str

    def apply_widget(db: object, request: Widget, ctx: object, where: str) -> tuple[str, str]:
        created.append(request.name)
        return f"widget/{request.name}", "created"

    register_kind(KindHandler("Widget", Widget, lambda r: Ref("widget", r.name), lambda r: [], apply_widget))
    try:
        assert "Widget" in kinds()
        result = apply_text("kind: Widget\nname: w1\n")
        assert created == ["w1"]
        assert result.outcomes[0].arn == "widget/w1"
    finally:
        from kiln.services import apply as module
        module._handlers.pop("Widget", None)
