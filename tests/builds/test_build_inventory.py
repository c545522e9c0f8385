"""A build's InventoryCollection reads the package database from the build instance's layers (the
parent's and the root volume's): what the components changed counts, nothing runs inside."""

from __future__ import annotations

import json
import os

import pytest
from tests.conftest import Kiln
from tests.inventory.package_dbs import dpkg_stanza, os_release, write

from kiln.services.builds import records as images
from kiln.services.builds.workflow import create_and_build

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")

NEW_PACKAGE = dpkg_stanza("nginx-light", "1.22.1-9", source="nginx")


@pytest.fixture
def parent_ami(busybox_copy) -> str:
    from kiln.store.api import import_rootfs

    root = busybox_copy("debianish")
    bash = root / "bin" / "bash"
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    os_release(root, 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    write(root, "var/lib/dpkg/status", dpkg_stanza("libc6", "2.36-9+deb12u4", source="glibc"))
    write(root, "root/new-stanza", "\n" + NEW_PACKAGE)
    return import_rootfs(root, name="debianish-parent")


def _build(arns: dict[str, str]) -> dict:
    return create_and_build(recipe_arn=arns["recipe"], infrastructure_arn=arns["infrastructure"],
                            distribution_arn=arns["distribution"], tests_enabled=False)


def test_inventory_sees_what_the_build_installed(make_recipe, kiln: Kiln) -> None:
    image = _build(make_recipe("cat /root/new-stanza >> /var/lib/dpkg/status"))
    assert image["osVersion"] == "Debian 12"
    assert images.packages(image["arn"]) == [
        {"packageName": "libc6", "packageVersion": "2.36-9+deb12u4"},
        {"packageName": "nginx-light", "packageVersion": "1.22.1-9"},
    ]
    records = json.loads(kiln("image", "packages", image["arn"], "--output", "json").stdout)["imagePackageList"]
    assert [(r["name"], r["source_name"], r["ecosystem"]) for r in records] == [
        ("libc6", "glibc", "Debian:12"), ("nginx-light", "nginx", "Debian:12")]
    ami = image["outputResources"]["amis"][0]["image"]
    from_ami = json.loads(kiln("image", "packages", ami, "--output", "json").stdout)["imagePackageList"]
    assert from_ami == records
    by_arn = kiln("image", "sbom", image["arn"], "--format", "cyclonedx-json")
    assert by_arn.exit_code == 0, by_arn.stderr
    assert by_arn.stdout == kiln("image", "sbom", ami, "--format", "cyclonedx-json").stdout
    image_properties = json.loads(by_arn.stdout)["metadata"]["component"]["properties"]
    assert {"name": "kiln:image:id", "value": ami} in image_properties
    steps = {s["name"]: s for s in images.list_steps(image["arn"])}
    assert steps["InventoryCollection"]["outputs"]["packageCount"] == 2


def test_a_removed_database_leaves_an_empty_list(make_recipe, kiln: Kiln) -> None:
    image = _build(make_recipe("rm -r /var/lib/dpkg"))  # a whiteout in the root volume hides the parent's
    assert image["state"]["status"] == "AVAILABLE"
    assert images.packages(image["arn"]) == []
    # the AMI's top layer carries the whiteout (an OCI .wh. entry, unpacked as overlayfs' own)
    ami = image["outputResources"]["amis"][0]["image"]
    result = kiln("image", "packages", ami)
    assert result.exit_code == 1 and f"no package database found in {ami}" in result.stderr
