"""An instance keeps its AMI's layers, like an EBS volume outliving its AMI, until it is terminated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root (namespaces, overlayfs)")


def test_instance_layers_survive_its_ami_until_terminate(parent_ami: str, tmp_path: Path, kiln_home: Path) -> None:
    from kiln.runtime import instances
    from kiln.runtime.exec import exec_in
    from kiln.services.ec2.instances import release_terminated_pins, run_instance
    from kiln.store import api

    upper = tmp_path / "upper"
    (upper / "opt").mkdir(parents=True)
    (upper / "opt" / "payload").write_text("still here\n")
    child = api.create_image_from_upper(parent_ami, upper, name="child")
    child_layer = api.image_layers(child)[-1].digest
    blob = kiln_home / "regions" / "local" / "blobs" / "sha256" / child_layer.split(":", 1)[1]

    instance = run_instance(child)
    instances.stop(instance.id)
    api.deregister_image(child, delete_snapshots=True)
    api.gc(grace_seconds=0)
    assert blob.exists()
    instances.start(instance.id)
    assert exec_in(instance.id, ["cat", "/opt/payload"], timeout=30).stdout == "still here\n"

    instances.terminate(instance.id, force=True)
    assert release_terminated_pins() == [instance.id]
    api.gc(grace_seconds=0)
    assert not blob.exists()
