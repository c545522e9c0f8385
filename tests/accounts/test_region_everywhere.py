"""Every regional command takes ``--region``; a resource in another region is not found, as on EC2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiln.services.accounts import regions
from kiln.services.ec2 import instances as service
from kiln.store import api

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")
OTHER = "eu-west-1"


@pytest.fixture
def busybox_ami(busybox_dir: Path) -> str:
    return api.import_rootfs(busybox_dir, name="busybox-base")


@pytest.fixture
def running(kiln, busybox_ami: str) -> str:
    regions.create_region(OTHER)
    launched = kiln("instance", "run", busybox_ami, "--output", "json")
    assert launched.exit_code == 0, launched.stderr
    instance_id = json.loads(launched.stdout)["InstanceId"]
    yield instance_id
    service.terminate_instance(instance_id)


def _state(instance_id: str) -> str:
    return service.describe_instance(instance_id, account=None)["State"]["Name"]


@needs_root
@pytest.mark.parametrize("verb", ["describe", "stop", "terminate", "console", "reboot"])
def test_an_instance_in_another_region_is_not_found(kiln, running: str, verb: str) -> None:
    refused = kiln("instance", verb, running, "--region", OTHER)
    assert refused.exit_code == 1
    # kiln's error form: the error, then the context it was refused in ("... in region eu-west-1")
    first, context = refused.stderr.strip().splitlines()
    assert first == f"error: InvalidInstanceID.NotFound: The instance ID '{running}' does not exist"
    assert context.endswith(f"in region {OTHER}")
    assert _state(running) == "running"  # nothing changed


@needs_root
def test_an_instance_is_found_in_its_own_region(kiln, running: str) -> None:
    described = kiln("instance", "describe", running, "--region", "local", "--output", "json")
    assert described.exit_code == 0, described.stderr
    assert json.loads(described.stdout)["InstanceId"] == running
    stopped = kiln("instance", "stop", running, "--region", "local")
    assert stopped.exit_code == 0, stopped.stderr
    assert _state(running) == "stopped"


@needs_root
def test_instance_list_shows_only_the_regions_instances(kiln, running: str) -> None:
    other = kiln("instance", "list", "--region", OTHER, "--output", "json")
    assert other.exit_code == 0, other.stderr
    assert json.loads(other.stdout)["Instances"] == []
    here = kiln("instance", "list", "--region", "local", "--output", "json")
    assert [i["InstanceId"] for i in json.loads(here.stdout)["Instances"]] == [running]
