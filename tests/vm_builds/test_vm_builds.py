"""Builds and tests in VMs: an infrastructure configuration with ``resourceTags`` ``kiln:vm: "true"``
runs the build's components and the image's tests inside QEMU guests booted from the parent's bootable
disk (the bootable Debian image of tests/vm/vm_image.yaml), under KVM when usable, else TCG (minutes per
boot). Never skipped.

A component writes a file and validates it in the build VM, a test component checks it in the test VM
(each looks for the VM's virtio disk, which no sandbox has): the output image holds the file, the
guest's package inventory and the sanitize script's removals. A failing step fails the build with the
step's error and leaves no VM, overlay or process. A bad value of the setting is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.vm_support import BuiltImage, module_home

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (namespaces, overlayfs)"),
    pytest.mark.network,
    pytest.mark.slow,
]

WRITES = """
name: vm-writes
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: WriteMarker
        action: ExecuteBash
        inputs:
          commands:
            - echo "kernel=$(uname -r) disk=$(ls /dev/vda)" > /etc/kiln-vm-built
            - echo wrote-the-marker
  - name: validate
    steps:
      - name: CheckMarker
        action: ExecuteBash
        inputs:
          commands:
            - grep -q 'disk=/dev/vda$' /etc/kiln-vm-built
  - name: test
    steps:
      - name: MarkerInTestVm
        action: ExecuteBash
        inputs:
          commands:
            - test -b /dev/vda
            - grep -q 'disk=/dev/vda$' /etc/kiln-vm-built
            - echo tested-in-a-vm
"""
FAILS = """
name: vm-fails
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: BreaksHere
        action: ExecuteBash
        inputs:
          commands:
            - echo going-to-fail
            - exit 7
"""


@dataclass
class VmHome:
    home: Path
    parent: str  # the bootable AMI the VM builds start from


@pytest.fixture(scope="module")
def vm_home(shared_vm_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmHome]:
    """The bootable Debian image (the VM tests' own recipe, built once per session) in a KILN_HOME of
    this module's own; every VM left is terminated."""
    for home in module_home(shared_vm_image, tmp_path_factory, "vm-builds"):
        yield VmHome(home, shared_vm_image.ami)


@pytest.fixture
def in_vm_home(vm_home: VmHome, monkeypatch: pytest.MonkeyPatch) -> Iterator[VmHome]:
    from kiln.db.engine import reset_engines

    monkeypatch.setenv("KILN_HOME", str(vm_home.home))
    reset_engines()
    yield vm_home
    reset_engines()


def _vm_build_inputs(name: str, parent: str, document: str) -> tuple[str, str]:
    """(recipe ARN, infrastructure ARN) of a recipe over ``parent`` with one component, built in VMs."""
    from kiln.services.components.resource import create_component
    from kiln.services.configurations.infrastructure import create_infrastructure_configuration
    from kiln.services.recipes.resource import create_image_recipe

    component = create_component({"name": name, "semanticVersion": "1.0.0", "platform": "Linux",
                                  "data": document})["componentBuildVersionArn"]
    recipe = create_image_recipe({"name": name, "semanticVersion": "1.0.0", "parentImage": parent,
                                  "components": [{"componentArn": component}], "workingDirectory": "/tmp"})
    infrastructure = create_infrastructure_configuration({
        "name": f"{name}-infra", "instanceTypes": ["t3.micro"], "resourceTags": {"kiln:vm": "true"}})
    return recipe["imageRecipeArn"], infrastructure["infrastructureConfigurationArn"]


def _instances_of(image_arn: str) -> dict[str, Any]:
    """The instances the build launched, by their kiln:Purpose tag."""
    from kiln.runtime import instances

    return {i.tags["kiln:Purpose"]: i for i in instances.list_instances() if i.tags.get("kiln:ImageArn") == image_arn}


def _no_vm_left(home: Path, instance_ids: list[str]) -> None:
    """The instances are terminated, their directories and overlays gone, no QEMU of theirs runs."""
    from kiln.runtime import instances

    for instance_id in instance_ids:
        assert instances.get(instance_id).state == "terminated", instance_id
        assert not (home / "instances" / instance_id).exists() and not (home / "scratch" / instance_id).exists()
    assert instances.list_instances(states=("pending", "running", "stopping", "stopped")) == []
    names = {f"kiln-{instance_id}" for instance_id in instance_ids}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            assert not names & {arg.decode(errors="replace") for arg in argv}, f"a QEMU is left: {argv}"


def test_components_and_tests_run_in_vms(in_vm_home: VmHome) -> None:
    from kiln.services.builds import records as images
    from kiln.services.builds.workflow import create_and_build
    from kiln.store import api
    from kiln.store.layer_view import LayerView

    recipe, infrastructure = _vm_build_inputs("vm-writes", in_vm_home.parent, WRITES)
    lines: list[str] = []
    image = create_and_build(recipe_arn=recipe, infrastructure_arn=infrastructure, progress=lines.append)
    assert image["state"]["status"] == "AVAILABLE", image["state"]
    ami = image["outputResources"]["amis"][0]["image"]
    row = images.get_row(image["arn"])
    launched = _instances_of(image["arn"])
    build_vm, test_vm = launched["build"], launched["test"]
    assert build_vm.vm is not None and test_vm.vm is not None, "both instances were VMs"
    assert build_vm.tags["kiln:vm"] == "true" and build_vm.tags["kiln:Purpose"] == "build"
    # the engine's progress in the guest, streamed into the build's log as a sandbox's is
    assert "      step WriteMarker [ExecuteBash]: success" in lines, lines
    assert "      step MarkerInTestVm [ExecuteBash]: success" in lines, lines
    # the guest's TOE log folders were copied into the image's log directory
    logs = Path(row.log_directory)
    build_console = next((logs / "build").glob("00-vm-writes/TOE_*/console.log")).read_text()
    assert "wrote-the-marker" in build_console
    assert "tested-in-a-vm" in next((logs / "test").glob("00-vm-writes/TOE_*/console.log")).read_text()

    # the output image: the file the component wrote in the VM, the guest's packages, sanitized
    view = LayerView(api.layer_dirs(ami, "local"))
    marker = view.read_bytes("/etc/kiln-vm-built")
    assert marker is not None and marker.decode().endswith("disk=/dev/vda\n"), marker
    assert f"kernel={os.uname().release} " not in marker.decode(), "the guest's own kernel ran the step"
    assert view.read_bytes("/root/.ssh/authorized_keys") is None, "SanitizeInstance ran in the guest"
    assert view.read_bytes("/run/kiln-toe/kiln_toe_runner.py") is None, "kiln's runner is not in the image"
    assert image["osVersion"].startswith("Debian"), image.get("osVersion")
    assert any(package["name"] == "cloud-init" for package in images.package_records(image["arn"]))
    assert api.get_image(ami, "local").boot.boot_mode == api.get_image(in_vm_home.parent, "local").boot.boot_mode
    _no_vm_left(in_vm_home.home, [build_vm.id, test_vm.id])


def test_a_failing_step_fails_the_build_and_leaves_no_vm(in_vm_home: VmHome) -> None:
    from kiln.services.builds import records as images
    from kiln.services.builds.workflow import BuildFailed, create_and_build
    from kiln.store import api

    amis_before = {image.id for image in api.describe_images()}
    recipe, infrastructure = _vm_build_inputs("vm-fails", in_vm_home.parent, FAILS)
    with pytest.raises(BuildFailed) as failed:
        create_and_build(recipe_arn=recipe, infrastructure_arn=infrastructure)
    [image] = [i for i in images.list_images() if i["name"] == "vm-fails"]
    reason = image["state"]["reason"]
    assert image["state"]["status"] == "FAILED" and str(failed.value).startswith(reason)
    assert "step BreaksHere failed: exit status 7" in reason, reason
    launched = _instances_of(image["arn"])
    assert list(launched) == ["build"], launched
    _no_vm_left(in_vm_home.home, [launched["build"].id])
    assert {image.id for image in api.describe_images()} == amis_before, "no AMI was left"
    overlays = list((in_vm_home.home / "instances").glob("*/root.qcow2"))
    assert overlays == [], overlays
