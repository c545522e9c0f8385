"""CreateImage's first half: check what an image (AMI or container) is built from and record it PENDING."""

from __future__ import annotations

from typing import Any

from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.services.builds import records as images


def record_image(
    *,
    recipe_arn: str,
    infrastructure_arn: str,
    container: bool = False,
    distribution_arn: str | None = None,
    tests_enabled: bool = True,
    tests_timeout_minutes: int = 720,
    enhanced_metadata: bool = True,
    tags: dict[str, str] | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
    workflows: list[dict[str, Any]] | None = None,
    execution_role: str | None = None,
) -> str:
    """Record a PENDING image of ``account`` in ``region`` and return its ARN, once the region, the
    resources' owners (``account``'s own or Amazon-managed; short forms name the account's) and existence,
    the distribution configuration and the ``workflows`` (each found, its parameters of the declared
    types; the managed container ones by default for a ``container`` recipe) are checked."""
    from kiln.db.engine import session
    from kiln.services.accounts.regions import require_region
    from kiln.services.builds.distribute import check_distribution
    from kiln.services.builds.plan import check_usable, own_arn
    from kiln.services.configurations.distribution import find_distribution_configuration
    from kiln.services.configurations.infrastructure import find_infrastructure_configuration
    from kiln.services.container_recipes.resource import find_container_recipe
    from kiln.services.recipes.resource import find_recipe
    from kiln.services.workflows.configure import check_configurations

    recipe_type, recipe_field, label = (
        ("container-recipe", "containerRecipeArn", "container recipe") if container
        else ("image-recipe", "imageRecipeArn", "image recipe")
    )
    require_region(region)
    workflows = check_configurations(workflows, account=account, region=region, container=container)
    recipe_arn = own_arn(recipe_arn, recipe_type, account)
    infrastructure_arn = own_arn(infrastructure_arn, "infrastructure-configuration", account)
    distribution_arn = own_arn(distribution_arn, "distribution-configuration", account) \
        if distribution_arn else None
    check_usable(recipe_arn, account, recipe_field, label)
    check_usable(infrastructure_arn, account, "infrastructureConfigurationArn", "infrastructure configuration")
    if distribution_arn:
        check_usable(distribution_arn, account, "distributionConfigurationArn", "distribution configuration")
    with session() as db:
        recipe = find_container_recipe(db, recipe_arn) if container else find_recipe(db, recipe_arn)
        find_infrastructure_configuration(db, infrastructure_arn)
        if distribution_arn:
            body = find_distribution_configuration(db, distribution_arn).body
            check_distribution(list(body.get("distributions") or []), distribution_arn, account=account)
        name, version, recipe_arn = recipe.name, recipe.version, recipe.arn
    return images.create_image(
        name=name, version=version, recipe_arn=recipe_arn, infrastructure_arn=infrastructure_arn,
        distribution_arn=distribution_arn, tests_enabled=tests_enabled,
        tests_timeout_minutes=tests_timeout_minutes, enhanced_metadata=enhanced_metadata, tags=tags,
        region=region, account=account, workflows=workflows, execution_role=execution_role,
    )
