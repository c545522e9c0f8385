"""Shared set-up of the distribution tests: regions, accounts, and a recipe with a distribution."""

from __future__ import annotations

from typing import Any

from tests.builds.conftest import component_doc

CONSUMER = "111122223333"  # receives copies (targetAccountIds)
PARTNER = "444455556666"  # may launch through launchPermission
OUTSIDER = "777788889999"  # nothing shared with it
REGIONS = ("us-east-1", "eu-west-1")


def make_world() -> None:
    from kiln.services.accounts.accounts import create_account
    from kiln.services.accounts.regions import create_region

    for region in REGIONS:
        create_region(region)
    create_account("consumer", account_id=CONSUMER)
    create_account("partner", account_id=PARTNER)
    create_account("outsider", account_id=OUTSIDER)


def make_build_inputs(parent_ami: str, distributions: list[dict[str, Any]], *, build: str = "echo one > /etc/one",
                      name: str = "web", version: str = "1.0.0") -> dict[str, str]:
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.distribution import create_distribution_configuration
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    component = create_component({"name": f"{name}-setup", "semanticVersion": version, "platform": "Linux",
                                  "data": component_doc(f"{name}-setup", build)})
    recipe = create_image_recipe({"name": name, "semanticVersion": version, "parentImage": parent_ami,
                                  "components": [{"componentArn": component["componentBuildVersionArn"]}]})
    suffix = version.replace(".", "-")
    infrastructure = create_infrastructure_configuration({"name": f"{name}-infra-{suffix}", "subnetId": "none"})
    distribution = create_distribution_configuration({"name": f"{name}-dist-{suffix}",
                                                      "distributions": distributions})
    return {"recipe": recipe["imageRecipeArn"],
            "infrastructure": infrastructure["infrastructureConfigurationArn"],
            "distribution": distribution["distributionConfigurationArn"]}


def build(arns: dict[str, str], **options: Any) -> dict[str, Any]:
    from kiln.services.builds.workflow import create_and_build

    return create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                            distribution_arn=arns["distribution"], tests_enabled=False, **options)


def tagged_amis(image_arn: str) -> list[tuple[str, str, str]]:
    """(region, owner, AMI id) of every registered AMI in every region carrying the build's tag."""
    from kiln.store.api import describe_images

    return [
        (region, info.owner_id, info.id)
        for region in ("local", *REGIONS)
        for info in describe_images(region, filters={"tag:Ec2ImageBuilderArn": [image_arn]},
                                    include_deprecated=True, include_disabled=True)
    ]
