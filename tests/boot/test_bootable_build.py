"""A recipe asking for a bootable image (the kiln-bootable-linux component) over a parent that has
neither a kernel nor apt-get fails when the build is planned: one clear reason, no instance, no AMI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")


def test_a_parent_without_a_kernel_cannot_be_made_bootable(busybox_dir: Path) -> None:
    from kiln.runtime import instances
    from kiln.services.builds import records as images
    from kiln.services.builds.workflow import BuildFailed, create_and_build
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe
    from kiln.store import api

    parent = api.import_rootfs(busybox_dir, name="busybox-parent")
    recipe = create_image_recipe({
        "name": "wants-boot", "semanticVersion": "1.0.0", "parentImage": parent,
        "components": [{"componentArn": "arn:aws:imagebuilder:local:aws:component/kiln-bootable-linux/x.x.x"}],
    })
    infrastructure = create_infrastructure_configuration({"name": "boot-infra", "subnetId": "none"})
    before = {image.id for image in api.describe_images()}
    with pytest.raises(BuildFailed) as failed:
        create_and_build(recipe_arn=recipe["imageRecipeArn"],
                         infrastructure_arn=infrastructure["infrastructureConfigurationArn"])
    [image] = images.list_images()
    assert image["state"]["status"] == "FAILED"
    reason = image["state"]["reason"]
    assert str(failed.value).startswith(reason)
    assert f"parent image {parent} has no kernel" in reason and "kiln-bootable-linux" in reason, reason
    assert "components[0]" in reason, reason
    assert {image.id for image in api.describe_images()} == before, "no AMI"
    assert instances.list_instances() == [], "no build instance was launched"
