"""The recipe's root volumeSize (its block device mapping) is the output AMI's root volume: the AMI
records it (DescribeImages' VolumeSize), its bootable disk export has that size, and so has the disk
a VM instance of it would boot (without booting one)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

COMPONENT = """name: touch
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Touch
        action: CreateFile
        inputs:
          - path: /etc/built
            content: built
"""


def _kernel_parent(busybox_copy: Callable[[str], Path]) -> str:
    from kiln.store import api

    root = busybox_copy("with-kernel")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"a stand-in kernel\n")
    return api.import_rootfs(root, name="with-kernel")


def test_the_recipe_volume_size_sizes_the_ami_and_its_disk(busybox_copy: Callable[[str], Path],
                                                           tmp_path: Path) -> None:
    from kiln.runtime import vm_disk
    from kiln.services.builds.workflow import create_and_build
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.ec2 import images
    from kiln.services.ec2.vm_disks import bootable_disk
    from kiln.services.recipes.resource import create_image_recipe
    from kiln.store import api

    parent = _kernel_parent(busybox_copy)
    component = create_component({"name": "touch", "semanticVersion": "1.0.0", "platform": "Linux",
                                  "data": COMPONENT})
    recipe = create_image_recipe({
        "name": "sized", "semanticVersion": "1.0.0", "parentImage": parent,
        "components": [{"componentArn": component["componentBuildVersionArn"]}],
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 3, "volumeType": "gp3"}}],
    })
    infrastructure = create_infrastructure_configuration({"name": "sized-infra", "subnetId": "none"})
    image = create_and_build(recipe_arn=recipe["imageRecipeArn"],
                             infrastructure_arn=infrastructure["infrastructureConfigurationArn"], tests_enabled=False)
    ami = image["outputResources"]["amis"][0]["image"]
    described = images.describe_images(image_ids=[ami])["Images"][0]
    assert described["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 3
    assert "VolumeSize" not in images.describe_images(image_ids=[parent])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
    exported = images.export_image(ami, "qcow2", tmp_path / "disk.qcow2")
    assert exported["Bootable"] is True and exported["VirtualSize"] == 3 << 30
    assert vm_disk.info(tmp_path / "disk.qcow2")["virtual-size"] == 3 << 30
    explicit = images.export_image(ami, "raw", tmp_path / "disk.raw", volume_size=4)  # the caller's size wins
    assert explicit["VirtualSize"] == 4 << 30
    backing = bootable_disk(api.get_image(ami, "local"), "local")
    assert vm_disk.info(backing)["virtual-size"] == 3 << 30
