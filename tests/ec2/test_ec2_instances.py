"""Every entry point launches and terminates instances through ``kiln.services.ec2.instances``: one
launchability check (the store's), and an instance's layer pins released when it is terminated."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kiln.ec2_errors import InvalidAMIIDDisabled
from kiln.errors import NotFound
from kiln.services.ec2 import instances as service
from kiln.store import api
from kiln.store.layout import Layout

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


@pytest.fixture
def busybox_ami(busybox_dir: Path) -> str:
    return api.import_rootfs(busybox_dir, name="busybox-base")


def _pins() -> set[str]:
    return api.pin_holders(service.PIN_PREFIX)


def test_cli_terminate_releases_the_instance_pins_at_once(kiln, busybox_ami: str) -> None:
    launched = kiln("instance", "run", busybox_ami, "--output", "json")
    assert launched.exit_code == 0, launched.stderr
    instance_id = json.loads(launched.stdout)["InstanceId"]
    assert _pins() == {service.PIN_PREFIX + instance_id}

    terminated = kiln("instance", "terminate", instance_id)
    assert terminated.exit_code == 0
    assert terminated.stdout.strip() == f"{instance_id} terminated"
    assert _pins() == set()  # not left for the next command's recovery


def test_cli_run_of_a_disabled_ami_is_refused_with_ec2s_code(kiln, busybox_ami: str) -> None:
    api.disable_image(busybox_ami)
    refused = kiln("instance", "run", busybox_ami)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: InvalidAMIID.Disabled: The image {busybox_ami} is disabled")
    with pytest.raises(InvalidAMIIDDisabled):  # the build steps' path: the same check
        service.run_instance(busybox_ami)
    assert service.describe_instances()["Instances"] == []


def test_an_ami_with_a_quarantined_blob_is_not_launched(kiln, busybox_ami: str) -> None:
    service.terminate_instance(service.run_instance(busybox_ami).id)  # its layer is unpacked now
    Layout.for_region("local").blobs.quarantine(api.image_layers(busybox_ami)[0].digest)
    with pytest.raises(NotFound, match="quarantined"):
        service.run_instance(busybox_ami)
    refused = kiln("instance", "run", busybox_ami)
    assert refused.exit_code == 1
    assert "quarantined" in refused.stderr
    assert [i["State"]["Name"] for i in service.describe_instances()["Instances"]] == ["terminated"]


def test_cli_run_on_the_network_with_and_without_host_local_addresses(kiln, busybox_ami: str) -> None:
    refused = kiln("instance", "run", busybox_ami, "--host-local-network")  # the default network is none
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: ") and "HostLocalNetwork" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert service.describe_instances()["Instances"] == []

    for flags, host_local in (([], False), (["--host-local-network"], True)):
        launched = kiln("instance", "run", busybox_ami, "--network", "host", *flags, "--output", "json")
        assert launched.exit_code == 0, launched.stderr
        described = json.loads(launched.stdout)
        assert (described["Kiln"]["Network"], described["Kiln"]["HostLocalNetwork"]) == ("host", host_local)
        routes = kiln("instance", "exec", described["InstanceId"], "--", "ip", "route")
        assert ("prohibit 169.254.0.0/16" in routes.stdout) is not host_local
        assert kiln("instance", "terminate", described["InstanceId"]).exit_code == 0
