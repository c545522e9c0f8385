"""EC2 DescribeImageReferences over kiln's resources: launch templates within a version depth (through
parameters too), image parameters, recipes and instances of the caller in the region; bad requests get
EC2's codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiln.ec2_errors import InvalidAMIIDNotFound, InvalidParameterCombination, InvalidParameterValue, MissingParameter
from kiln.services.accounts import accounts
from kiln.services.components.resource import create_component
from kiln.services.ec2 import images, instances
from kiln.services.fleet import launch_templates as lt
from kiln.services.fleet.image_references import describe_image_references
from kiln.services.fleet.launch_templates import TemplateRef
from kiln.services.parameters import parameter_store as ssm
from kiln.services.recipes.resource import create_image_recipe

PEER = "210987654321"
DOC = "name: noop\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: Nothing\n" \
      "        action: ExecuteBash\n        inputs:\n          commands: ['true']\n"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def amis(busybox_dir: Path) -> list[str]:
    return [str(images.import_image(busybox_dir, name=f"web-{n}")["ImageId"]) for n in (1, 2)]


def _refs(image_ids: list[str], **kwargs: object) -> list[tuple[str, str, str]]:
    found = describe_image_references(image_ids, **kwargs)["ImageReferences"]  # type: ignore[arg-type]
    return [(r["ImageId"], r["ResourceType"], r["Arn"].rsplit(":", 1)[1]) for r in found]


def test_templates_parameters_and_recipes_that_use_an_ami(amis: list[str]) -> None:
    web1, web2 = amis
    ssm.put_parameter("/golden/web/latest", web1, data_type="aws:ec2:image")
    ssm.put_parameter("/golden/web/text", web1)  # text: not an image reference
    direct = lt.create_launch_template("direct", {"ImageId": web1})["LaunchTemplate"]["LaunchTemplateId"]
    via = lt.create_launch_template("via-ssm", {"ImageId": "resolve:ssm:/golden/web/latest"})["LaunchTemplate"][
        "LaunchTemplateId"]
    for _ in range(3):  # web1 sinks below a version depth of 3
        lt.create_launch_template_version(TemplateRef(direct), {"ImageId": web2})
    component = create_component({"name": "noop", "semanticVersion": "1.0.0", "platform": "Linux", "data": DOC})
    recipe = create_image_recipe({"name": "web", "semanticVersion": "1.0.0", "parentImage": web1,
                                  "components": [{"componentArn": component["componentBuildVersionArn"]}]})

    assert _refs([web1], include_all_resource_types=True) == [
        *sorted([(web1, "ec2:LaunchTemplate", f"launch-template/{direct}"),
                 (web1, "ec2:LaunchTemplate", f"launch-template/{via}")]),
        (web1, "ssm:Parameter", "parameter/golden/web/latest"),
        (web1, "imagebuilder:ImageRecipe", recipe["imageRecipeArn"].split(":", 5)[5]),
    ]
    depth = [{"ResourceType": "ec2:LaunchTemplate",
              "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": ["3"]}]}]
    assert _refs([web1, web2], resource_types=depth) == sorted([
        (web1, "ec2:LaunchTemplate", f"launch-template/{via}"),
        (web2, "ec2:LaunchTemplate", f"launch-template/{direct}"),
    ])
    # Only the caller's resources: another account that may see web1 finds nothing of its own.
    accounts.create_account("peer", account_id=PEER)
    images.modify_launch_permission(web1, add=[{"UserId": PEER}])
    assert _refs([web1], include_all_resource_types=True, account=PEER) == []


def test_bad_requests_are_refused(amis: list[str]) -> None:
    with pytest.raises(MissingParameter):
        describe_image_references([amis[0]])
    with pytest.raises(InvalidParameterCombination):
        describe_image_references([amis[0]], include_all_resource_types=True,
                                  resource_types=[{"ResourceType": "ec2:Instance"}])
    with pytest.raises(InvalidParameterValue, match="ResourceType"):
        describe_image_references([amis[0]], resource_types=[{"ResourceType": "ec2:Volume"}])
    with pytest.raises(InvalidParameterValue, match="version-depth"):
        describe_image_references([amis[0]], resource_types=[{"ResourceType": "ec2:LaunchTemplate",
                                  "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": ["0"]}]}])
    with pytest.raises(InvalidParameterValue, match="1 to 10"):
        describe_image_references(amis * 6, include_all_resource_types=True)
    with pytest.raises(InvalidAMIIDNotFound):
        describe_image_references(["ami-0123456789abcdef0"], include_all_resource_types=True)


@needs_root
def test_instances_by_state_and_on_the_command_line(kiln, amis: list[str]) -> None:
    instance = instances.run_instance(amis[0])
    try:
        running = [{"ResourceType": "ec2:Instance",
                    "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": ["running"]}]}]
        assert _refs([amis[0]], resource_types=running) == [(amis[0], "ec2:Instance", f"instance/{instance.id}")]
        stopped = [{"ResourceType": "ec2:Instance",
                    "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": ["stopped"]}]}]
        assert _refs([amis[0]], resource_types=stopped) == []
        result = kiln("image", "references", amis[0], "--output", "json")
        assert json.loads(result.stdout)["ImageReferences"] == [
            {"ImageId": amis[0], "ResourceType": "ec2:Instance",
             "Arn": f"arn:aws:ec2:local:123456789012:instance/{instance.id}"}]
        text = kiln("image", "references", amis[0], "--resource-type", "ec2:Instance", "--state-name", "running")
        assert text.stdout.splitlines()[1].split() == [amis[0], "ec2:Instance",
                                                       f"arn:aws:ec2:local:123456789012:instance/{instance.id}"]
    finally:
        instances.terminate_instance(instance.id)
