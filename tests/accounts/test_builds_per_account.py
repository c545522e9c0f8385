"""Builds and pipelines act as the caller's account: the image ARN, the output AMI and its snapshots
are the account's, lookups see only its own (and Amazon-managed) resources, its pipelines build as it
from the scheduler's job path, its lifecycle policies act on its images only."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from tests.builds.conftest import component_doc

from kiln.db.base import utcnow
from kiln.home import DEFAULT_ACCOUNT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

BUILDER = "333344445555"


@pytest.fixture
def parent_ami(busybox_copy) -> str:  # type: ignore[no-untyped-def]
    """The default account's busybox parent AMI (``bash`` is busybox's sh in this tiny image)."""
    from kiln.store.api import import_rootfs

    root = busybox_copy("busybox")
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    return import_rootfs(root, name="busybox-parent")


@pytest.fixture
def builder(parent_ami: str) -> str:
    """Account B, which may launch the (default account's) busybox parent AMI: it is shared with B."""
    from kiln.services.accounts.accounts import create_account
    from kiln.services.ec2.images import modify_launch_permission

    create_account("builder", account_id=BUILDER)
    modify_launch_permission(parent_ami, add=[{"UserId": BUILDER}])
    return BUILDER


def _stack(parent: str, tmp_path: Path) -> Path:
    component = textwrap.indent(component_doc("b-setup", "echo built-by-b > /built"), "  ")
    text = f"""\
kind: Component
name: b-setup
semanticVersion: 1.0.0
platform: Linux
data: |
{component}
---
kind: ImageRecipe
name: b-web
semanticVersion: 1.0.0
parentImage: {parent}
components:
  - componentArn: component/b-setup/1.0.0
---
kind: InfrastructureConfiguration
name: b-infra
subnetId: none
---
kind: ImagePipeline
name: b-nightly
imageRecipeArn: image-recipe/b-web/1.0.0
infrastructureConfigurationArn: infrastructure-configuration/b-infra
imageTestsConfiguration: {{imageTestsEnabled: false}}
schedule:
  scheduleExpression: cron(0 3 * * ? *)
  pipelineExecutionStartCondition: EXPRESSION_MATCH_ONLY
---
kind: LifecyclePolicy
name: b-keep-newest
executionRole: arn:aws:iam::{BUILDER}:role/lifecycle
resourceType: AMI_IMAGE
policyDetails:
  - action: {{type: DELETE, includeResources: {{amis: true, snapshots: true}}}}
    filter: {{type: COUNT, value: 1}}
resourceSelection:
  recipes:
    - {{name: b-web, semanticVersion: 1.x.x}}
"""
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def _json(kiln, *args: str) -> dict:  # type: ignore[no-untyped-def]
    result = kiln(*args, "--output", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _snapshots_of(ami: str, account: str) -> list[str]:
    from kiln.services.ec2.images import describe_image

    image = describe_image(ami, account=account)
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def test_an_account_applies_builds_and_sees_only_its_own(kiln, builder: str, parent_ami: str,
                                                          tmp_path: Path) -> None:
    from kiln.services.lifecycle.policies import get_policy

    applied = _json(kiln, "apply", "-f", str(_stack(parent_ami, tmp_path)), "--account", builder)["resources"]
    arns = {resource["kind"]: resource["arn"] for resource in applied}
    assert set(arns) == {"Component", "ImageRecipe", "InfrastructureConfiguration", "ImagePipeline",
                         "LifecyclePolicy"}
    assert all(f":{builder}:" in arn for arn in arns.values()), arns
    assert get_policy(arns["LifecyclePolicy"], caller=builder).name == "b-keep-newest"
    # The pipeline names B's recipe (the short form is the caller's), not one of the default account.
    pipeline = _json(kiln, "pipeline", "get", "image-pipeline/b-nightly", "--account", builder)["imagePipeline"]
    assert pipeline["imageRecipeArn"] == arns["ImageRecipe"]
    hidden_pipeline = kiln("pipeline", "get", arns["ImagePipeline"])
    assert hidden_pipeline.exit_code == 1 and f"image pipeline {arns['ImagePipeline']} does not exist" in \
        hidden_pipeline.stderr

    created = _json(kiln, "image", "create", "--recipe", "image-recipe/b-web/1.0.0",
                    "--infrastructure", "infrastructure-configuration/b-infra", "--no-tests", "--account", builder)
    image = created["image"]
    assert image["arn"] == f"arn:aws:imagebuilder:local:{builder}:image/b-web/1.0.0/1"
    assert image["state"]["status"] == "AVAILABLE"
    [output] = image["outputResources"]["amis"]
    assert output["accountId"] == builder
    ami = output["image"]

    # The AMI is B's: B sees it as owner; the default account does not see it until B shares it.
    described = _json(kiln, "image", "describe", ami, "--account", builder)
    assert described["OwnerId"] == builder
    hidden = kiln("image", "describe", ami)
    assert hidden.exit_code != 0 and ami in hidden.stderr
    assert ami not in kiln("image", "list").stdout
    assert ami in kiln("image", "list", "--account", builder).stdout

    # Image Builder's own listings: only the caller's builds; another account's ARN is not found.
    assert image["arn"] not in kiln("image", "builds").stdout
    assert [i["arn"] for i in _json(kiln, "image", "builds", "--account", builder)["imageSummaryList"]] == [
        image["arn"]]
    refused = kiln("image", "get", image["arn"])
    assert refused.exit_code == 1 and f"image {image['arn']} not found" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _json(kiln, "image", "get", image["arn"], "--account", builder)["image"]["arn"] == image["arn"]
    assert arns["ImagePipeline"] not in kiln("pipeline", "list").stdout
    assert arns["ImagePipeline"] in kiln("pipeline", "list", "--account", builder).stdout

    from kiln.services.ec2.images import modify_launch_permission

    modify_launch_permission(ami, add=[{"UserId": DEFAULT_ACCOUNT}], account=builder)
    assert _json(kiln, "image", "describe", ami)["OwnerId"] == builder


def test_a_pipeline_builds_as_its_account_and_its_lifecycle_policy_acts_on_it(
    kiln, builder: str, parent_ami: str, tmp_path: Path
) -> None:
    from kiln.services.builds import records as images
    from kiln.services.lifecycle.policies import create_policy
    from kiln.services.lifecycle.runner import run
    from kiln.services.pipelines.jobs import KEY_PREFIX, run_due
    from kiln.store.api import list_snapshots

    applied = _json(kiln, "apply", "-f", str(_stack(parent_ami, tmp_path)), "--account", builder)["resources"]
    arns = {resource["kind"]: resource["arn"] for resource in applied}

    # Two builds of B's pipeline: by hand as B, then its scheduled run through the scheduler's job path.
    started = _json(kiln, "pipeline", "start", "image-pipeline/b-nightly", "--account", builder)
    first = started["imageBuildVersionArn"]
    run_due(KEY_PREFIX + arns["ImagePipeline"], utcnow().isoformat())
    built = images.list_images(pipeline_arn=arns["ImagePipeline"])
    assert [b["arn"] for b in built] == [first, f"arn:aws:imagebuilder:local:{builder}:image/b-web/1.0.0/2"]
    assert all(b["state"]["status"] == "AVAILABLE" for b in built)
    for build in built:
        assert [a["accountId"] for a in build["outputResources"]["amis"]] == [builder]
    executions = _json(kiln, "pipeline", "executions", arns["ImagePipeline"], "--account", builder)["executions"]
    assert [(e["trigger"], e["imageArn"]) for e in executions] == [("MANUAL", first), ("SCHEDULE", built[1]["arn"])]
    old_ami = built[0]["outputResources"]["amis"][0]["image"]
    old_snapshots = _snapshots_of(old_ami, builder)
    assert old_snapshots
    # The default account cannot start B's pipeline: it does not exist for it.
    refused = kiln("pipeline", "start", arns["ImagePipeline"])
    assert refused.exit_code == 1 and "does not exist" in refused.stderr

    # A policy of the default account with the same selection does not see B's images.
    mine = create_policy({
        "name": "default-keep-newest", "executionRole": "arn:aws:iam::123456789012:role/lifecycle",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [{"action": {"type": "DELETE", "includeResources": {"amis": True, "snapshots": True}},
                           "filter": {"type": "COUNT", "value": 1}}],
        "resourceSelection": {"recipes": [{"name": "b-web", "semanticVersion": "1.x.x"}]},
    })
    assert run(mine, as_of=utcnow()).state.status.value == "SUCCESS"
    assert [images.get_image(b["arn"])["state"]["status"] for b in built] == ["AVAILABLE", "AVAILABLE"]

    # B's policy (from kiln apply --account) deletes B's older image, its AMI and its snapshots.
    assert run(arns["LifecyclePolicy"], as_of=utcnow()).state.status.value == "SUCCESS"
    assert [images.get_image(b["arn"])["state"]["status"] for b in built] == ["DELETED", "AVAILABLE"]
    remaining = {snapshot.id for snapshot in list_snapshots()}
    assert not set(old_snapshots) & remaining
    assert set(_snapshots_of(built[1]["outputResources"]["amis"][0]["image"], builder)) <= remaining


def test_another_accounts_resources_are_not_found(kiln, builder: str, parent_ami: str,
                                                  tmp_path: Path) -> None:
    from kiln.services.accounts.accounts import create_account

    applied = _json(kiln, "apply", "-f", str(_stack(parent_ami, tmp_path)), "--account", builder)["resources"]
    arns = {resource["kind"]: resource["arn"] for resource in applied}
    create_account("other", account_id="666677778888")
    # Another account naming B's recipe by ARN: refused before anything is recorded, as not found.
    result = kiln("image", "create", "--recipe", arns["ImageRecipe"], "--infrastructure",
                  arns["InfrastructureConfiguration"], "--account", "666677778888")
    assert result.exit_code == 1 and f"image recipe {arns['ImageRecipe']} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert _json(kiln, "image", "builds", "--account", "666677778888")["imageSummaryList"] == []
    assert _json(kiln, "image", "builds", "--account", builder)["imageSummaryList"] == []
    # Nor may its recipe name B's component: Image Builder refuses it as not found, nothing is made.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"kind: ImageRecipe\nname: other\nsemanticVersion: 1.0.0\nparentImage: {parent_ami}\n"
                      f"components:\n  - componentArn: {arns['Component']}\n")
    refused = kiln("apply", "-f", str(recipe), "--account", "666677778888")
    assert refused.exit_code == 1 and f"no component matches {arns['Component']}" in refused.stderr
    assert f"{recipe}: document 1" in refused.stderr
    from kiln.services.recipes.resource import list_image_recipes

    assert list_image_recipes(account="666677778888")["imageRecipeSummaryList"] == []


@pytest.mark.parametrize("command", [("apply", "-f", "stack.yaml"), ("image", "builds"),
                                     ("pipeline", "start", "image-pipeline/b-nightly")])
def test_an_unknown_account_is_one_clear_error(kiln, tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "stack.yaml").write_text("kind: InfrastructureConfiguration\nname: x\n")
    result = kiln(*command, "--account", "999999999999", cwd=tmp_path)
    assert result.exit_code in (1, 2)
    assert "account 999999999999 does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    env_result = kiln(*command, env={"KILN_ACCOUNT": "999999999999"}, cwd=tmp_path)
    assert env_result.exit_code in (1, 2) and "999999999999" in env_result.stderr
    from kiln.services.configurations.infrastructure import list_infrastructure_configurations

    assert list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_a_distribution_of_an_accounts_build_is_owned_by_that_account(
    kiln, builder: str, parent_ami: str, tmp_path: Path
) -> None:
    from kiln.services.builds.workflow import create_and_build
    from kiln.services.configurations.distribution import create_distribution_configuration
    from kiln.services.ec2.images import describe_image
    from kiln.services.parameters.parameter_store import get_parameter

    applied = _json(kiln, "apply", "-f", str(_stack(parent_ami, tmp_path)), "--account", builder)["resources"]
    arns = {resource["kind"]: resource["arn"] for resource in applied}
    distribution = create_distribution_configuration({
        "name": "b-dist",
        "distributions": [{
            "region": "local",
            "amiDistributionConfiguration": {"name": "b-web-{{ imagebuilder:buildVersion }}",
                                             "targetAccountIds": [DEFAULT_ACCOUNT]},
            "ssmParameterConfigurations": [{"parameterName": "/b/web/latest", "dataType": "aws:ec2:image"}],
        }],
    }, account=builder)["distributionConfigurationArn"]
    image = create_and_build(recipe_arn=arns["ImageRecipe"], infrastructure_arn=arns["InfrastructureConfiguration"],
                             distribution_arn=distribution, tests_enabled=False, account=builder)
    assert image["state"]["status"] == "AVAILABLE"
    amis = {(a["region"], a["accountId"]): a["image"] for a in image["outputResources"]["amis"]}
    assert set(amis) == {("local", builder), ("local", DEFAULT_ACCOUNT)}
    assert describe_image(amis["local", builder], account=builder)["OwnerId"] == builder
    assert describe_image(amis["local", DEFAULT_ACCOUNT])["OwnerId"] == DEFAULT_ACCOUNT
    # The parameter with no amiAccountId is the building account's, naming its own AMI.
    assert get_parameter("/b/web/latest", account=builder)["Value"] == amis["local", builder]
