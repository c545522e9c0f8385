"""AWS-managed components by name: listed as Amazon's, accepted in recipes, and those kiln does not
implement (every Windows one) fail the build at their step, naming the component and the OS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kiln.documents.host import HostExecutor
from kiln.services.builds.steps import run_document
from kiln.services.components.managed import IMPLEMENTED, NOT_IMPLEMENTED, managed_document
from kiln.services.components.resource import get_component, list_components

AWS = "arn:aws:imagebuilder:us-east-1:aws:component"


def names(filters: list[dict[str, Any]]) -> set[str]:
    listed = list_components(owner="Amazon", filters=filters)["componentVersionList"]
    assert all(entry["owner"] == "Amazon" for entry in listed)
    return {entry["name"] for entry in listed}


def test_amazon_listing_with_filters() -> None:
    windows = names([{"name": "platform", "values": ["Windows"]}])
    assert {"update-windows", "stig-build-windows-high", "aws-cli-version-2-windows"} <= windows
    assert windows == {m.name for m in NOT_IMPLEMENTED if m.platform == "Windows"}
    linux = names([{"name": "platform", "values": ["Linux"]}])
    assert {m.name for m in IMPLEMENTED} <= linux and not linux & windows
    tests = names([{"name": "type", "values": ["TEST"]}])
    assert {"chrony-time-configuration-test", "reboot-test-linux", "inspector-test-linux",
            "simple-boot-test-linux", "windows-activation-test"} <= tests
    assert "aws-cli-version-2-linux" not in tests
    assert names([{"name": "name", "values": ["docker-ce-linux"]}]) == {"docker-ce-linux"}
    assert list_components(owner="Self")["componentVersionList"] == []


def test_wildcard_references_resolve_to_the_managed_component() -> None:
    got = get_component(f"{AWS}/amazon-cloudwatch-agent-linux/x.x.x")["component"]
    assert got["arn"].endswith(":aws:component/amazon-cloudwatch-agent-linux/1.0.0/1")
    assert got["platform"] == "Linux" and got["type"] == "BUILD"
    got = get_component("component/update-windows/1.x.x")["component"]
    assert got["platform"] == "Windows" and got["owner"] == "Amazon"


@pytest.mark.parametrize("name", ["amazon-cloudwatch-agent-linux", "update-windows", "inspector-test-linux"])
def test_unimplemented_document_fails_naming_component_and_os(name: str, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    phase = "test" if "test" in name else "build"
    ok, message = run_document(HostExecutor(), managed_document(name), name=name, phases=(phase,),
                               parameters={}, log_dir=tmp_path / "logs", working_directory=str(tmp_path))
    assert not ok
    info = HostExecutor().os_info()
    assert message == (f"step NoKilnImplementation failed: managed component {name} has no kiln "
                       f"implementation for {info.id} {info.version_id}")


@pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)")
def test_recipe_accepts_them_and_the_build_fails_at_the_step(busybox_copy: Any) -> None:
    from kiln.services.builds import records as images
    from kiln.services.builds.workflow import BuildFailed, create_and_build
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe
    from kiln.store.api import import_rootfs

    root = busybox_copy("busybox")
    (root / "etc" / "os-release").write_text('ID=busybox\nVERSION_ID="1.36"\n')
    bash = root / "bin" / "bash"  # busybox's sh stands in for bash (hello-world-linux runs first)
    bash.write_text('#!/bin/busybox sh\nexec /bin/busybox sh "$@"\n')
    bash.chmod(0o755)
    parent = import_rootfs(root, name="busybox-parent")
    recipe = create_image_recipe({
        "name": "agents", "semanticVersion": "1.0.0", "parentImage": parent,
        "components": [{"componentArn": f"{AWS}/hello-world-linux/x.x.x"},
                       {"componentArn": f"{AWS}/amazon-cloudwatch-agent-linux/x.x.x"},
                       {"componentArn": f"{AWS}/update-windows/x.x.x"}],
    })["imageRecipeArn"]
    infrastructure = create_infrastructure_configuration(
        {"name": "agents-infra", "subnetId": "none"})["infrastructureConfigurationArn"]
    try:
        with pytest.raises(BuildFailed) as failure:
            create_and_build(recipe_arn=recipe, infrastructure_arn=infrastructure)
        reason = images.list_images(name="agents")[-1]["state"]["reason"]
        assert "managed component amazon-cloudwatch-agent-linux has no kiln implementation for busybox 1.36" in (
            reason)
        assert "step NoKilnImplementation failed" in reason
        assert "no component matches" not in reason + str(failure.value)
    finally:
        from kiln.runtime import instances

        for instance in instances.list_instances(states=("pending", "running", "stopping", "stopped")):
            instances.terminate(instance.id, force=True)
