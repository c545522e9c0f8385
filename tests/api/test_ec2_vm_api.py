"""RunInstances over the API with the instance tag ``kiln:vm=true`` launches a VM instance through the
same service path as ``kiln instance run --vm``, with the request's UserData, KeyName,
MetadataOptions and root volume settings. (The AMI has a stand-in kernel: QEMU runs, the guest does
not boot, which this test does not need.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.api.conftest import Server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="importing a root file system needs root")


def test_run_instances_with_the_vm_tag_launches_a_vm(server: Server, busybox_copy: Callable[[str], Path]) -> None:
    from kiln.runtime import instances, procs, vm_disk, vm_seed
    from kiln.services.ec2 import key_pairs
    from kiln.store import api

    root = busybox_copy("with-kernel")
    (root / "boot").mkdir(exist_ok=True)
    (root / "boot" / "vmlinuz-6.1.0-99-cloud-amd64").write_bytes(b"a stand-in kernel\n")
    ami = api.import_rootfs(root, name="with-kernel")
    key_pairs.create_key_pair("laptop", key_type="ed25519")
    ec2 = server.client("ec2")
    answer = ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.nano", KeyName="laptop",
        UserData="#cloud-config\nhostname: web\n", MetadataOptions={"HttpTokens": "required"},
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 9, "DeleteOnTermination": False}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "kiln:vm", "Value": "true"}]}],
    )  # fmt: skip
    instance_id = answer["Instances"][0]["InstanceId"]
    try:
        described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
        assert tags["kiln:Hypervisor"] == "qemu" and tags["kiln:Accelerator"] in ("kvm", "tcg")
        assert described["KeyName"] == "laptop" and described["MetadataOptions"]["HttpTokens"] == "required"
        assert described["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] is False
        instance = instances.get(instance_id)
        vm = instance.vm
        assert vm is not None and instance.init is not None
        assert procs.is_alive(instance.init.pid, instance.init.start_time)
        assert vm_disk.info(Path(vm["root"]))["virtual-size"] == 9 << 30
        assert vm_seed.read_seed(Path(vm["seed"]), "user-data") == b"#cloud-config\nhostname: web\n"
        assert key_pairs.public_key("laptop") in vm_seed.read_seed(Path(vm["seed"]), "meta-data").decode()
    finally:
        instances.terminate(instance_id, force=True)
    kept = Path(vm["kept_root"])
    assert kept.is_file() and not Path(vm["root"]).exists(), "DeleteOnTermination false keeps the root volume"
