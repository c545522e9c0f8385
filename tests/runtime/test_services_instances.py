"""Instances from AMIs through the image store. Runs once ``kiln.store.api`` exists (after merge).

Store names used besides ``layer_dirs`` and ``create_image_from_upper`` (the agreed interface) are
marked STORE below; adapt them here and in ``kiln/services/instances.py`` (``_store_*``) if the
store names them differently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

store = pytest.importorskip("kiln.store.api", reason="kiln.store.api is not in this branch (image store)")

from kiln.errors import KilnError  # noqa: E402
from kiln.runtime import instances  # noqa: E402
from kiln.runtime.exec import exec_in  # noqa: E402
from kiln.services.ec2 import instances as service  # noqa: E402


@pytest.fixture
def busybox_ami(busybox_copy) -> str:
    rootfs = busybox_copy("rootfs")
    (Path(rootfs) / "etc" / "motd").write_text("base image\n")
    return str(store.import_rootfs(rootfs, name="busybox-base", region="local"))  # STORE


def test_run_from_an_ami_sets_its_last_launched_time(busybox_ami: str) -> None:
    assert store.get_image(busybox_ami, "local").last_launched_time is None  # STORE
    instance = service.run_instance(busybox_ami)
    try:
        assert instance.state == "running" and instance.image_id == busybox_ami
        assert exec_in(instance.id, ["cat", "/etc/motd"]).stdout == "base image\n"
        launched = store.get_image(busybox_ami, "local").last_launched_time  # STORE
        assert launched is not None and launched >= instance.launch_time.replace(microsecond=0)
    finally:
        instances.terminate(instance.id)


def test_a_disabled_ami_cannot_be_launched(busybox_ami: str) -> None:
    store.disable_image(busybox_ami, "local")  # STORE
    with pytest.raises(KilnError, match="disabled"):
        service.run_instance(busybox_ami)
    assert instances.list_instances() == []


def test_create_image_captures_added_and_deleted_files(busybox_ami: str) -> None:
    parent = service.run_instance(busybox_ami)
    try:
        exec_in(parent.id, ["sh", "-c", "echo baked > /etc/baked; rm /etc/motd"])
        child_ami = service.create_image(parent.id, name="busybox-child")
        assert child_ami.startswith("ami-") and child_ami != busybox_ami
        assert instances.get(parent.id).state == "running"  # stopped for the capture, started again
    finally:
        instances.terminate(parent.id)
    child = service.run_instance(child_ami)
    try:
        assert exec_in(child.id, ["cat", "/etc/baked"]).stdout == "baked\n"
        assert exec_in(child.id, ["test", "-e", "/etc/motd"]).exit_code == 1  # the deletion is captured
    finally:
        instances.terminate(child.id)


def test_cli_run_prints_the_instance_id(kiln, busybox_ami: str) -> None:
    import json

    done = kiln("instance", "run", busybox_ami, "--output", "json")
    assert done.exit_code == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["InstanceId"].startswith("i-") and described["ImageId"] == busybox_ami
    instances.terminate(described["InstanceId"])
